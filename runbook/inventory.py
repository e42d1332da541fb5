"""Where hosts come from, and how the operator picks them.

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
import glob
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

import paramiko
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbook import paths as runbook_paths
from runbook.errors import HostSelectionError, InventoryError
from runbook.hosts import BRACKETED, LOCAL_NAMES, Host, is_ipv6, is_valid_host_name, parse_target
from runbook.inventory_ansible import parse_ansible_ini, parse_ansible_yaml
from runbook.yamlsource import line_of, load_yaml, validate

FORMATS = ("runbook inventory YAML (top-level 'hosts:', optional 'defaults:' and 'groups:'), "
           "Ansible YAML (top-level 'all:' or groups with hosts/children/vars), "
           "Ansible INI ([group] sections, 'host key=value' lines), "
           "OpenSSH client config ('Host alias' blocks)")
SELECTOR_HELP = ("a host, a group (or group:NAME), role:NAME, tag:NAME, project:NAME, all, "
                 "a glob such as web*, or an ad-hoc [user@]host[:port]")
NAME_RULE = "letters, digits, '.', '-', '_' (no spaces or shell characters)"

# Characters a selector may hold. Everything else (spaces, ';', '$', quotes,
# backticks, '=', '/') is refused outright, never quoted and passed on.
_SELECTOR_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789_.-:%@*?[],")
_PREFIXES = ("group", "role", "tag", "project")
_INI_SECTION = re.compile(r"^\s*\[[^\]]+\]\s*$")
_SSH_KEYWORD = re.compile(r"^\s*(host|match|include)\s", re.IGNORECASE)
# OpenSSH refuses Include nesting deeper than this (READCONF_MAX_DEPTH).
_MAX_INCLUDE_DEPTH = 16


@dataclass
class Inventory:
    hosts: dict[str, Host] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    # Problems that were skipped rather than raised (a broken default ~/.ssh/config).
    warnings: list[str] = field(default_factory=list)
    # Kept so that ad-hoc hosts get the same HostName/User/Port/ProxyJump as `ssh`.
    ssh_config: paramiko.SSHConfig | None = field(default=None, repr=False, compare=False)

    def get(self, name: str) -> Host | None:
        return self.hosts.get(name)

    def merge(self, other: Inventory) -> None:
        """Lay `other` over this inventory: its hosts replace same-named ones,
        group members add up."""
        self.hosts.update(other.hosts)
        for group, members in other.groups.items():
            self.groups[group] = list(dict.fromkeys([*self.groups.get(group, ()), *members]))
        self.sources.extend(other.sources)
        self.warnings.extend(other.warnings)
        self.ssh_config = other.ssh_config or self.ssh_config
        membership: dict[str, list[str]] = {}
        for group, members in self.groups.items():
            for name in members:
                membership.setdefault(name, []).append(group)
        for name, host in self.hosts.items():
            groups = tuple(membership.get(name, ()))
            if groups != host.groups:
                self.hosts[name] = replace(host, groups=groups)

    def select(self, selectors: Sequence[str], *, allow_ad_hoc: bool = True) -> list[Host]:
        """The hosts the selectors name, de-duplicated by name, in order of first
        appearance. `allow_ad_hoc=False` refuses hosts the inventory lacks."""
        if isinstance(selectors, str):
            selectors = [selectors]
        chosen: dict[str, Host] = {}
        for selector in selectors:
            for part in _split_selector(selector):
                for host in self._match(part, allow_ad_hoc):
                    chosen.setdefault(host.name, host)
        return list(chosen.values())

    def _match(self, selector: str, allow_ad_hoc: bool) -> list[Host]:
        if selector == "all":
            if not self.hosts:
                raise HostSelectionError("'all' matches no host: the inventory is empty",
                                         f"add hosts to {runbook_paths.default_inventory()} "
                                         "or pass --inventory FILE")
            return list(self.hosts.values())
        kind, colon, value = selector.partition(":")
        if colon and kind in _PREFIXES and value:
            return self._found(selector, self._by(kind, value))
        if selector in self.hosts:
            return [self.hosts[selector]]
        if selector in self.groups:
            return self._found(selector, self._by("group", selector))
        if "*" in selector or "?" in selector or ("[" in selector and not _is_bracketed(selector)):
            return self._found(selector, [h for n, h in self.hosts.items()
                                          if fnmatchcase(n, selector)])
        target = parse_target(selector)
        if target is None or (not allow_ad_hoc and target[1] not in self.hosts):
            raise self._no_match(selector)
        return [self._ad_hoc(*target)]

    def _by(self, kind: str, pattern: str) -> list[Host]:
        if kind == "group":
            names = [n for g, members in self.groups.items() if fnmatchcase(g, pattern)
                     for n in members]
            return [self.hosts[n] for n in dict.fromkeys(names) if n in self.hosts]
        if kind == "tag":
            return [h for h in self.hosts.values()
                    if any(fnmatchcase(t, pattern) for t in h.tags)]
        return [h for h in self.hosts.values()
                if fnmatchcase(getattr(h, kind) or "", pattern)]

    def _found(self, selector: str, hosts: list[Host]) -> list[Host]:
        if not hosts:
            raise self._no_match(selector)
        return hosts

    def _ad_hoc(self, user: str | None, name: str, port: int | None) -> Host:
        if name in self.hosts:  # `root@web1`: the inventory host, as another user
            base = self.hosts[name]
            return replace(base, user=user or base.user, port=port or base.port)
        if user is None and port is None and name in LOCAL_NAMES:
            return Host(name=name, address=name, local=True, source="local")
        settings: dict[str, Any] = {"address": name}
        if self.ssh_config is not None:
            try:
                settings = _ssh_settings(self.ssh_config, name)
            except ValueError as exc:
                raise HostSelectionError(f"{name}: the ssh config gives {exc}",
                                         "fix the matching Host block in the ssh config") from None
        # As with `ssh -p/-l`, what the operator typed beats the config.
        settings["user"] = user or settings.get("user")
        settings["port"] = port or settings.get("port", 22)
        return Host(name=name, source="ad-hoc", **settings)

    def _no_match(self, selector: str) -> HostSelectionError:
        kind, colon, value = selector.partition(":")
        prefixed = bool(colon) and kind in _PREFIXES
        probe = (value if prefixed else selector).replace("*", "").replace("?", "")
        # Compare bare names (so 'role:' does not make every role look close),
        # then show each the way it is selected.
        shown: dict[str, list[str]] = {name: [name] for name in self.hosts}
        for other in _PREFIXES:
            for name in self._values(other):
                plain = other == "group" and not prefixed
                shown.setdefault(name, []).append(name if plain else f"{other}:{name}")
        close = difflib.get_close_matches(probe, list(shown), n=3, cutoff=0.55)
        choices = list(dict.fromkeys(s for name in close for s in shown[name]))[:4]
        hint = (f"did you mean {', '.join(choices)}?" if choices
                else f"a selector is {SELECTOR_HELP}")
        return HostSelectionError(f"no host matches {selector!r}", hint)

    def _values(self, kind: str) -> list[str]:
        if kind == "group":
            return list(self.groups)
        if kind == "tag":
            return list(dict.fromkeys(t for h in self.hosts.values() for t in h.tags))
        return list(dict.fromkeys(v for h in self.hosts.values() if (v := getattr(h, kind))))


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
            inventory.merge(_read_ssh_config(default_ssh, strict=False))
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
        settings = _ssh_settings(config, host.address)
    except ValueError:
        return host
    return replace(host, user=host.user or settings["user"],
                   identity_file=host.identity_file or settings["identity_file"],
                   jump=host.jump or settings["jump"])


def parse_inventory_file(path: Path) -> Inventory:
    """Read one inventory file, whatever its format (see FORMATS)."""
    path = Path(path)
    text = _read_text(path)
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
        return _runbook_inventory(path, document)
    raise InventoryError(path, None, None, "not an inventory format runbook understands",
                         FORMATS)


# --- runbook inventory YAML -------------------------------------------------------

class HostSettings(BaseModel):
    """What `defaults:` may set, and every host may override."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    jump: str | None = None
    project: str | None = None
    role: str | None = None
    tags: list[str] = Field(default_factory=list)
    local: bool | None = None
    vars: dict[str, str] = Field(default_factory=dict)

    @field_validator("port", mode="before")
    @classmethod
    def _port_is_a_number(cls, port: Any) -> Any:
        # YAML's `true` would otherwise be taken as port 1.
        if isinstance(port, bool):
            raise ValueError(f"port must be a number from 1 to 65535, not {str(port).lower()}")
        return port

    @field_validator("port")
    @classmethod
    def _port_in_range(cls, port: int | None) -> int | None:
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port must be from 1 to 65535, got {port}")
        return port


class HostEntry(HostSettings):
    address: str | None = None


class InventoryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    defaults: HostSettings = Field(default_factory=HostSettings)
    hosts: dict[str, HostEntry] = Field(default_factory=dict)
    groups: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _empty_is_nothing(cls, data: Any) -> Any:
        # `defaults:` with nothing under it, or `web1:` with no settings, is fine.
        if isinstance(data, dict):
            data = {k: ({} if v is None and k != "groups" else v) for k, v in data.items()}
            if isinstance(data.get("hosts"), dict):
                data["hosts"] = {k: {} if v is None else v for k, v in data["hosts"].items()}
        return data


def _runbook_inventory(path: Path, document: Any) -> Inventory:
    spec = validate(InventoryFile, document, path, InventoryError)

    def fail(location: list[Any], field: str, problem: str, expected: str | None = None) -> None:
        raise InventoryError(path, line_of(document, location), field, problem, expected)

    def setting(name: str, entry: HostEntry, key: str) -> tuple[Any, list[Any], str]:
        """The value a host gets, and where it was written (for errors)."""
        if key in entry.model_fields_set:
            return getattr(entry, key), ["hosts", name, key], f"hosts.{name}.{key}"
        return getattr(spec.defaults, key), ["defaults", key], f"defaults.{key}"

    for name in spec.hosts:
        if not is_valid_host_name(name):
            fail(["hosts", name], f"hosts.{name}", f"{name!r} is not a valid host name", NAME_RULE)
    hosts: dict[str, Host] = {}
    for name, entry in spec.hosts.items():
        if "address" in entry.model_fields_set and not (entry.address or "").strip():
            fail(["hosts", name, "address"], f"hosts.{name}.address", "address is empty",
                 f"an address, or no `address:` line to use the name {name!r}")
        address = entry.address or name
        if not _is_address(address):
            fail(["hosts", name, "address"], f"hosts.{name}.address",
                 f"{address!r} is not a valid host name or address", NAME_RULE)
        jump, where, field_name = setting(name, entry, "jump")
        if jump is not None and not _is_jump(jump, spec.hosts):
            fail(where, field_name, f"{jump!r} is neither a host in this inventory nor "
                 "[user@]host[:port]", _close_hint(jump, spec.hosts))
        identity = setting(name, entry, "identity_file")[0]
        hosts[name] = Host(
            name=name, address=address,
            port=setting(name, entry, "port")[0] or 22,
            user=setting(name, entry, "user")[0],
            identity_file=str(Path(identity).expanduser()) if identity else None,
            jump=jump,
            project=setting(name, entry, "project")[0],
            role=setting(name, entry, "role")[0],
            tags=tuple(dict.fromkeys([*spec.defaults.tags, *entry.tags])),
            local=bool(setting(name, entry, "local")[0]),
            source="inventory",
            vars={**spec.defaults.vars, **entry.vars},
        )
    groups: dict[str, list[str]] = {}
    for group, members in spec.groups.items():
        if not is_valid_host_name(group) or group == "all" or group in hosts:
            why = ("'all' is reserved for every host" if group == "all" else
                   "a host has the same name" if group in hosts else "not a valid group name")
            fail(["groups", group], f"groups.{group}", f"group {group!r}: {why}", NAME_RULE)
        for index, member in enumerate(members):
            if member not in hosts:
                fail(["groups", group, index], f"groups.{group}[{index}]",
                     f"{member!r} is not a host in this inventory", _close_hint(member, hosts))
        groups[group] = list(dict.fromkeys(members))
    inventory = Inventory(sources=[str(path)])
    inventory.merge(Inventory(hosts, groups))
    return inventory


def _is_jump(jump: str, hosts: dict[str, Any]) -> bool:
    # ProxyJump syntax: one or more comma-separated hops, each a known host or
    # [user@]host[:port] (optionally as ssh://...).
    hops = [hop.removeprefix("ssh://") for hop in jump.split(",")]
    return all(hop in hosts or parse_target(hop) is not None for hop in hops)


def _is_ssh_jump(value: str) -> bool:
    """ProxyJump as OpenSSH reads it: `none`, or hops that are ssh config
    aliases or [user@]host[:port] (which `_is_jump` accepts with no known hosts)."""
    text = value.strip().strip('"')
    return text.lower() == "none" or (bool(text) and _is_jump(text, {}))


def _close_hint(word: str, names: Any) -> str | None:
    close = difflib.get_close_matches(word, list(names), n=3)
    return f"one of {', '.join(close)}" if close else None


# --- OpenSSH client config --------------------------------------------------------

def parse_ssh_config(path: Path) -> Inventory:
    """Every concrete `Host` alias of an ssh config, as ssh would resolve it.
    A file that cannot be read is an InventoryError."""
    return _read_ssh_config(Path(path), strict=True)


def _read_ssh_config(path: Path, *, strict: bool) -> Inventory:
    """`strict=False` (the default ~/.ssh/config) turns problems into warnings:
    a broken personal ssh config must not stop every runbook command."""
    inventory = Inventory()
    try:
        config, aliases = _parse_ssh_config_text(path)
    except InventoryError as exc:
        if strict:
            raise
        inventory.warnings.append(f"ignored {exc}")
        return inventory
    inventory.sources.append(str(path))
    inventory.ssh_config = config
    for alias, (file, number) in aliases.items():
        if not is_valid_host_name(alias):
            inventory.warnings.append(f"{file}:{number}: skipped ssh config alias {alias!r}: "
                                      "not a usable host name")
            continue
        try:
            settings = _ssh_settings(config, alias)
        except ValueError as exc:
            if strict:
                raise InventoryError(file, number, alias, str(exc)) from None
            inventory.warnings.append(f"{file}:{number}: skipped ssh config alias {alias!r}: {exc}")
            continue
        inventory.hosts[alias] = Host(name=alias, source="ssh_config", **settings)
    return inventory


def _ssh_config_lines(path: Path, depth: int) -> list[tuple[str, Path, int]]:
    """The config's meaningful lines with their origin, Includes inlined
    (paramiko does not follow Include)."""
    if depth > _MAX_INCLUDE_DEPTH:
        raise InventoryError(path, None, None, "Include nested too deeply (does a file "
                             "include itself?)")
    lines: list[tuple[str, Path, int]] = []
    block: tuple[str, Path, int] | None = None
    for number, raw in enumerate(_read_text(path).splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(paramiko.SSHConfig.SETTINGS_REGEX, line)
        if not match:
            raise InventoryError(path, number, None, f"cannot read {line!r}", "Keyword value")
        keyword = match.group(1).lower()
        if keyword == "proxyjump" and not _is_ssh_jump(match.group(2)):
            raise InventoryError(path, number, "ProxyJump",
                                 f"{match.group(2)!r} is not a jump host",
                                 "[user@]host[:port], comma-separated for a chain, or none")
        if keyword != "include":
            if keyword in ("host", "match"):
                block = (line, path, number)
            lines.append((line, path, number))
            continue
        for included in _include_targets(path, number, match.group(2)):
            inner = _ssh_config_lines(included, depth + 1)
            lines.extend(inner)
            # An included file that opens its own Host blocks must not swallow
            # the lines that follow the Include in ours: reopen our block.
            if block and any(re.match(r"(?i)(host|match)\b", text) for text, _, _ in inner):
                lines.append(block)
    return lines


def _parse_ssh_config_text(
        path: Path) -> tuple[paramiko.SSHConfig, dict[str, tuple[Path, int]]]:
    lines = _ssh_config_lines(path, depth=0)
    aliases = _ssh_aliases(lines)
    try:
        config = paramiko.SSHConfig.from_text("\n".join(text for text, _, _ in lines))
    except paramiko.SSHException as exc:
        file, number = _culprit(lines)
        raise InventoryError(file, number, None, f"ssh config: {exc}") from None
    return config, aliases


def _culprit(lines: list[tuple[str, Path, int]]) -> tuple[Path, int | None]:
    """paramiko's parse errors carry no line number: find the line alone."""
    for text, file, number in lines:
        try:
            paramiko.SSHConfig.from_text(text)
        except paramiko.SSHException:
            return file, number
    return lines[0][1], None


def _include_targets(path: Path, number: int, value: str) -> list[Path]:
    try:
        patterns = shlex.split(value)
    except ValueError as exc:
        raise InventoryError(path, number, "Include", f"cannot split {value!r}: {exc}") from None
    found: list[Path] = []
    for pattern in patterns:
        # OpenSSH reads relative Includes from ~/.ssh; that is this file's
        # folder for ~/.ssh/config, and keeps an explicit config self-contained.
        target = Path(pattern).expanduser()
        if not target.is_absolute():
            target = path.parent / target
        found.extend(Path(p) for p in sorted(glob.glob(str(target))) if Path(p).is_file())
    return found


def _ssh_aliases(lines: list[tuple[str, Path, int]]) -> dict[str, tuple[Path, int]]:
    aliases: dict[str, tuple[Path, int]] = {}
    for text, file, number in lines:
        keyword, _, value = re.split(r"(\s*=\s*|\s+)", text, maxsplit=1)
        if keyword.lower() != "host":
            continue
        try:
            patterns = shlex.split(value)
        except ValueError as exc:
            raise InventoryError(file, number, "Host", f"cannot split {value!r}: {exc}") from None
        for pattern in patterns:
            if not any(c in pattern for c in "*?!"):
                aliases.setdefault(pattern, (file, number))
    return aliases


def _ssh_settings(config: paramiko.SSHConfig, name: str) -> dict[str, Any]:
    """Host fields for `name` as `ssh name` would see them. ValueError if the
    config gives something unusable."""
    try:
        options = config.lookup(name)
    except (paramiko.SSHException, ImportError, OSError) as exc:
        raise ValueError(f"lookup failed: {exc}") from None
    address = options.get("hostname") or name
    if not _is_address(address):
        raise ValueError(f"HostName {address!r} is not a valid host name or address")
    port = options.get("port") or "22"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"Port {port!r} is not a number from 1 to 65535")
    identities = options.get("identityfile") or []
    jump = options.get("proxyjump")
    return {
        "address": address,
        "port": int(port),
        "user": options.get("user"),
        "identity_file": str(Path(identities[0]).expanduser()) if identities else None,
        "jump": None if jump is None or jump.lower() == "none" else jump,
    }


# --- shared helpers ---------------------------------------------------------------

def select_among(hosts: list[Host], selectors: Sequence[str]) -> list[Host]:
    """The hosts among `hosts` (an incident's, as journalled) that the selectors
    pick, in the one grammar every command uses: `all`, a name, a glob, a group,
    group:/role:/tag:/project:PATTERN, comma lists. A selector that matches none
    of them is a HostSelectionError: it never widens to every host."""
    groups: dict[str, list[str]] = {}
    for host in hosts:
        for group in host.groups:
            groups.setdefault(group, []).append(host.name)
    scope = Inventory(hosts={h.name: h for h in hosts}, groups=groups)
    picked = {h.name for h in scope.select(list(selectors), allow_ad_hoc=False)}
    return [h for h in hosts if h.name in picked]


def _split_selector(selector: str) -> list[str]:
    """Refuse a selector with anything outside the allowed characters, then
    split `web1,web2` into its parts."""
    if not selector.strip():
        raise HostSelectionError("empty host selector", f"a selector is {SELECTOR_HELP}")
    bad = sorted({c for c in selector if c not in _SELECTOR_CHARS})
    if bad or len(selector) > 1024:
        shown = ", ".join(repr(c) for c in bad) or "its length"
        raise HostSelectionError(
            f"refusing host selector {selector!r}: {shown} cannot appear in a host selector",
            "use letters, digits and . - _ : @ % (and * ? [ ] for globs); "
            "commands are never built from a selector")
    return [part for part in selector.split(",") if part]


def _is_bracketed(selector: str) -> bool:
    """`[::1]:2222` or `root@[::1]` is an address, not a glob."""
    return BRACKETED.match(selector.rpartition("@")[2]) is not None


def _is_address(text: str) -> bool:
    return (":" not in text and is_valid_host_name(text)) or is_ipv6(text)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(path, None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(path, None, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InventoryError(path, None, None, f"cannot read: {exc.strerror}") from None


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
