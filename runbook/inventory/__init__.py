"""Where hosts come from, and how the operator picks them.from runbook.yamlsource import load_yaml
Three sources, read in this order so that later ones win for the same host
name: the OpenSSH client config (~/.ssh/config), the default runbook inventory
(`paths.default_inventory()`), then each `--inventory` file (runbook YAML, or
an Ansible INI/YAML inventory). `Inventory.select` turns the operator's
selectors (`web1`, `group:db`, `role:api`, `web*`, `root@10.0.0.7:2222`...)
into hosts, and refuses anything that could smuggle shell syntax.

Decisions worth knowing:
- `identity_file` is `~`-expanded when read, so `Host.identity_file` is ready
  for paramiko; relative paths are left as written (relative to the cwd, as
  `ssh -i` would treat them).
- Hosts declared in an inventory file are taken as written: ssh_config applies
  to its own aliases and to ad-hoc hosts, not to inventory hosts.
- A group's members are the union over all sources; `Host.groups` is made to
  agree with `Inventory.groups` after merging.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from runbook import paths as runbook_paths
from runbook.errors import InventoryError
from runbook.hosts import Host
from runbook.inventory.ansible import parse_ansible_ini, parse_ansible_yaml
from runbook.inventory.model import NAME_RULE, SELECTOR_HELP, Inventory, select_among
from runbook.inventory.runbook_yaml import runbook_inventory
from runbook.inventory.ssh_config import read_ssh_config, read_text
from runbook.inventory.ssh_lookup import ssh_settings
from runbook.yamlsource import load_yaml

if TYPE_CHECKING:  # the type only; paramiko is loaded by the ssh_config source
    import paramiko

__all__ = ["FORMATS", "NAME_RULE", "SELECTOR_HELP", "Inventory", "load_inventory",
           "parse_inventory_file", "parse_ssh_config", "select_among"]

FORMATS = ("runbook inventory YAML (top-level 'hosts:', optional 'defaults:' and 'groups:'), "
           "Ansible YAML (top-level 'all:' or groups with hosts/children/vars), "
           "Ansible INI ([group] sections, 'host key=value' lines), "
           "OpenSSH client config ('Host alias' blocks)")


_INI_SECTION = re.compile(r"^\s*\[[^\]]+\]\s*$")


_SSH_KEYWORD = re.compile(r"^\s*(host|match|include)\s", re.IGNORECASE)


def load_inventory(
    paths: Sequence[Path] = (),
    *,
    ssh_config: Path | None | Literal["default"] = "default",
    use_default_file: bool = True,
) -> Inventory:
    """Read every source in precedence order: ssh_config, the default inventory,
    then each given file. `ssh_config=None` skips it; "default" reads
    `paths.ssh_config_path()` if it exists and only warns if it is broken."""
    inventory = Inventory()
    if ssh_config == "default":
        default_ssh = runbook_paths.ssh_config_path()
        if default_ssh.is_file():
            inventory.merge(read_ssh_config(default_ssh, strict=False))
    elif ssh_config is not None:
        inventory.merge(parse_ssh_config(Path(ssh_config)))
    default_file = runbook_paths.default_inventory()
    if use_default_file and default_file.is_file():
        inventory.merge(parse_inventory_file(default_file))
    for path in paths:
        inventory.merge(parse_inventory_file(Path(path)))
    if inventory.ssh_config is not None:
        inventory.hosts = {name: _with_ssh_defaults(host, inventory.ssh_config)
                           for name, host in inventory.hosts.items()}
    return inventory


def _with_ssh_defaults(host: Host, config: paramiko.SSHConfig) -> Host:
    """Fill what an inventory host leaves unset (user, key, jump host) from the
    ssh config's blocks for its address, as `ssh ADDRESS` would. What the
    inventory says always wins; the port cannot be told apart from its default
    of 22, so it is left alone."""
    if host.local or host.source.startswith("ssh_config"):
        return host
    try:
        settings = ssh_settings(config, host.address)
    except ValueError:
        return host
    return replace(host, user=host.user or settings["user"],
                   identity_file=host.identity_file or settings["identity_file"],
                   jump=host.jump or settings["jump"])


def parse_inventory_file(path: Path) -> Inventory:
    """Read one inventory file, whatever its format (see FORMATS)."""
    path = Path(path)
    text = read_text(path)
    suffix = path.suffix.lower()
    if suffix in (".ini", ".cfg") or (suffix not in (".yaml", ".yml", ".json")
                                      and _looks_like_ini(text)):
        hosts, groups = parse_ansible_ini(path, text)
        return Inventory(hosts, groups, [str(path)])
    if suffix not in (".yaml", ".yml", ".json") and _SSH_KEYWORD.match(_first_line(text)):
        return parse_ssh_config(path)
    document = load_yaml(path, InventoryError, text=text)
    if not document:
        return Inventory(sources=[str(path)])
    kind = _yaml_kind(document)
    if kind == "ansible":
        hosts, groups = parse_ansible_yaml(path, document)
        return Inventory(hosts, groups, [str(path)])
    if kind == "runbook":
        return runbook_inventory(path, document)
    raise InventoryError(path, None, None, "not an inventory format runbook understands",
                         FORMATS)


def parse_ssh_config(path: Path) -> Inventory:
    """Every concrete `Host` alias of an ssh config, as ssh would resolve it.
    A file that cannot be read is an InventoryError."""
    return read_ssh_config(Path(path), strict=True)


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines()
                 if line.strip() and not line.lstrip().startswith("#")), "")


def _looks_like_ini(text: str) -> bool:
    """`[section]` lines, or only `host key=value` lines (which YAML would read
    as one long string)."""
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and line.strip()[0] not in "#;"]
    if not lines:
        return False
    if any(_INI_SECTION.match(line) for line in lines):
        return True
    for line in lines:
        first, *rest = line.split()
        if first.endswith(":") or ": " in line or first.startswith("-") or \
                _SSH_KEYWORD.match(line) or not all("=" in token for token in rest):
            return False
    return True


def _yaml_kind(document: Any) -> str | None:
    if not isinstance(document, dict):
        return None
    keys = [str(k) for k in document]
    if "all" in keys:
        return "ansible"
    runbook_keys = ("defaults", "hosts", "groups")
    if any(k in runbook_keys for k in keys):
        return "runbook"
    if all(v is None or isinstance(v, dict) for v in document.values()) and any(
            isinstance(v, dict) and set(v) & {"hosts", "children", "vars"}
            for v in document.values()):
        return "ansible"
    # A misspelt top-level key ('hostz:') is still meant as runbook YAML; the
    # schema then names the typo.
    if any(difflib.get_close_matches(k, runbook_keys, n=1, cutoff=0.75) for k in keys):
        return "runbook"
    return None
