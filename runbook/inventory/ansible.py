"""Ansible inventories, INI and YAML, read into runbook hosts.

Only what runbook needs is taken: hosts, groups (children flattened into their
parents) and the connection variables. Variables follow Ansible's precedence:
`all` < parent groups < child groups < host, with groups of the same depth
applied in name order, as Ansible does without `ansible_group_priority`.
Both parsers fill the same `_Tree`; `_resolve` turns it into hosts.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.errors import InventoryError
from runbook.hosts import Host, is_valid_host_name
from runbook.yamlsource import line_of

SOURCE = "ansible"

# Groups Ansible always has. They stay implicit: selecting `all` already means
# every host, and `ungrouped` would only add noise to every host's groups.
IMPLICIT_GROUPS = ("all", "ungrouped")

_GROUP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECTION = re.compile(r"^\[([^\]]*)\]\s*(?:[#;].*)?$")
_RANGE = re.compile(r"\[([^\]]*)\]")
_YAML_GROUP_KEYS = ("hosts", "vars", "children")

# The Ansible variables that say how to connect, newest name first.
_ADDRESS_VARS = ("ansible_host", "ansible_ssh_host")
_PORT_VARS = ("ansible_port", "ansible_ssh_port")
_USER_VARS = ("ansible_user", "ansible_ssh_user")
_KEY_VARS = ("ansible_ssh_private_key_file", "ansible_private_key_file")


@dataclass
class _Var:
    value: Any
    line: int | None
    field: str  # where it was set, as shown in errors: `web1.ansible_port`


@dataclass
class _Group:
    name: str
    line: int | None
    vars: dict[str, _Var] = field(default_factory=dict)
    hosts: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class _Tree:
    """An inventory as declared, before variables are resolved."""

    path: Path
    groups: dict[str, _Group] = field(default_factory=dict)
    host_vars: dict[str, dict[str, _Var]] = field(default_factory=dict)
    host_ports: dict[str, _Var] = field(default_factory=dict)

    def group(self, name: str, line: int | None) -> _Group:
        if name not in self.groups:
            self.groups[name] = _Group(name, line)
        return self.groups[name]

    def add_host(self, name: str, group: str, line: int | None) -> dict[str, _Var]:
        members = self.group(group, line).hosts
        if name not in members:
            members.append(name)
        return self.host_vars.setdefault(name, {})

    def error(self, line: int | None, field: str | None, problem: str,
              expected: str | None = None) -> InventoryError:
        return InventoryError(self.path, line, field, problem, expected)


# --- INI ---------------------------------------------------------------------------

def parse_ansible_ini(path: Path, text: str) -> tuple[dict[str, Host], dict[str, list[str]]]:
    """Read an Ansible INI inventory: `[group]`, `[group:vars]`, `[group:children]`,
    ungrouped hosts at the top, `host key=value ...` lines and host ranges."""
    tree = _Tree(path)
    tree.group("all", None)
    section, kind = "ungrouped", "hosts"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        header = _SECTION.match(line)
        if header:
            section, kind = _ini_section(tree, number, header.group(1).strip())
            tree.group(section, number)
        elif kind == "hosts":
            _ini_host_line(tree, section, number, line)
        elif kind == "vars":
            _ini_var_line(tree, section, number, line)
        else:
            _ini_child_line(tree, section, number, line)
    return _resolve(tree)


def _ini_section(tree: _Tree, number: int, title: str) -> tuple[str, str]:
    name, _, kind = title.partition(":")
    kind = kind or "hosts"
    if kind not in ("hosts", "vars", "children") or title.endswith(":hosts"):
        raise tree.error(number, f"[{title}]", f"unknown section type ':{kind}'",
                         "[group], [group:vars] or [group:children]")
    _check_group_name(tree, number, f"[{title}]", name)
    return name, kind


def _ini_host_line(tree: _Tree, section: str, number: int, line: str) -> None:
    where = f"[{section}]" if section != "ungrouped" else "(ungrouped hosts)"
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise tree.error(number, where, f"cannot split the line: {exc}") from None
    if not tokens:
        return
    pattern, assignments = tokens[0], tokens[1:]
    names, port = _expand_host(tree, number, where, pattern)
    variables: dict[str, _Var] = {}
    for token in assignments:
        key, equals, value = token.partition("=")
        if not equals or not _VAR_NAME.match(key):
            raise tree.error(number, names[0], f"expected key=value after the host name, "
                             f"got {token!r}", "host [key=value ...]")
        variables[key] = _Var(value, number, f"{names[0]}.{key}")
    for name in names:
        # Ansible merges the variables of every line that names the host.
        tree.add_host(name, section, number).update(
            {key: _Var(var.value, var.line, f"{name}.{key}") for key, var in variables.items()})
        if port is not None:
            tree.host_ports[name] = _Var(port, number, name)


def _ini_var_line(tree: _Tree, section: str, number: int, line: str) -> None:
    key, equals, value = line.partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not _VAR_NAME.match(key):
        raise tree.error(number, f"[{section}:vars]", f"expected name=value, got {line!r}",
                         "name=value")
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    tree.group(section, number).vars[key] = _Var(value, number, f"{section}:vars.{key}")


def _ini_child_line(tree: _Tree, section: str, number: int, line: str) -> None:
    child = line.split("#", 1)[0].split(";", 1)[0].strip()
    where = f"[{section}:children]"
    if " " in child or "\t" in child:
        raise tree.error(number, where, f"expected one group name per line, got {line!r}")
    _check_group_name(tree, number, where, child)
    tree.group(child, number)
    if child not in tree.groups[section].children:
        tree.groups[section].children.append(child)


# --- YAML --------------------------------------------------------------------------

def parse_ansible_yaml(path: Path, document: Any) -> tuple[dict[str, Host], dict[str, list[str]]]:
    """Read an Ansible YAML inventory: `all:` (or top-level groups), each group a
    mapping of `hosts`, `vars` and `children`."""
    tree = _Tree(path)
    tree.group("all", None)
    for name, node in document.items():
        _yaml_group(tree, str(name), node, line_of(document, [name]), str(name))
    return _resolve(tree)


def _yaml_group(tree: _Tree, name: str, node: Any, line: int | None, where: str) -> None:
    _check_group_name(tree, line, where, name)
    group = tree.group(name, line)
    if node is None:
        return
    if not isinstance(node, dict):
        raise tree.error(line, where, "a group must be a mapping",
                         "a mapping with hosts, vars or children")
    for key in node:
        if key not in _YAML_GROUP_KEYS:
            close = difflib.get_close_matches(str(key), _YAML_GROUP_KEYS, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise tree.error(line_of(node, [key]), f"{where}.{key}",
                             f"unknown field '{key}'{hint}", ", ".join(_YAML_GROUP_KEYS))
    hosts = _yaml_mapping(tree, node, "hosts", f"{where}.hosts", "a mapping of host names")
    for pattern in hosts:
        host_line, host_where = line_of(hosts, [pattern]), f"{where}.hosts.{pattern}"
        names, port = _expand_host(tree, host_line, host_where, str(pattern))
        variables = _yaml_vars(tree, hosts, pattern, host_where)
        for host in names:
            tree.add_host(host, name, host_line).update(variables)
            if port is not None:
                tree.host_ports[host] = _Var(port, host_line, host_where)
    group.vars.update(_yaml_vars(tree, node, "vars", f"{where}.vars"))
    children = _yaml_mapping(tree, node, "children", f"{where}.children",
                             "a mapping of group names")
    for child, child_node in children.items():
        if str(child) not in group.children:
            group.children.append(str(child))
        _yaml_group(tree, str(child), child_node, line_of(children, [child]),
                    f"{where}.children.{child}")


def _yaml_mapping(tree: _Tree, node: Any, key: Any, where: str, expected: str) -> dict[Any, Any]:
    value = node.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise tree.error(line_of(node, [key]), where, "must be a mapping", expected)
    return value


def _yaml_vars(tree: _Tree, node: Any, key: Any, where: str) -> dict[str, _Var]:
    values = _yaml_mapping(tree, node, key, where, "a mapping of variable names to values")
    return {str(name): _Var(value, line_of(values, [name]), f"{where}.{name}")
            for name, value in values.items()}


# --- shared ------------------------------------------------------------------------

def expand_host_pattern(pattern: str) -> list[str]:
    """`web[01:03]` -> web01, web02, web03; `db-[a:c]` -> db-a, db-b, db-c;
    `[start:end:step]` too. Raises ValueError for a malformed range."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end():]
    parts = match.group(1).split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"range [{match.group(1)}] should be [start:end] or [start:end:step]")
    start, end = parts[0] or "0", parts[1]
    step_text = parts[2] if len(parts) == 3 else "1"
    if not step_text.isdigit() or int(step_text) == 0:
        raise ValueError(f"range step {step_text!r} should be a positive number")
    step = int(step_text)
    if start.isdigit() and end.isdigit():
        # Ansible pads to the width of a zero-padded start: web[01:10] -> web01..web10.
        width = len(start) if start.startswith("0") and len(start) > 1 else 0
        values = [str(n).zfill(width) for n in range(int(start), int(end) + 1, step)]
    elif len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha():
        values = [chr(c) for c in range(ord(start), ord(end) + 1, step)]
    else:
        raise ValueError(f"range [{match.group(1)}] should be numbers or single letters")
    if not values:
        raise ValueError(f"range [{match.group(1)}] is empty: its start is after its end")
    return [head + value + rest for value in values for rest in expand_host_pattern(tail)]


def _expand_host(tree: _Tree, line: int | None, where: str,
                 pattern: str) -> tuple[list[str], str | None]:
    """A host pattern, possibly with a range and a `:port`, as host names."""
    port = None
    # One ':' outside the range brackets is a port; more is an IPv6 address.
    if _RANGE.sub("", pattern).count(":") == 1:
        pattern, port = pattern.rsplit(":", 1)
    try:
        names = expand_host_pattern(pattern)
    except ValueError as exc:
        raise tree.error(line, where, f"host {pattern!r}: {exc}") from None
    for name in names:
        if not is_valid_host_name(name):
            raise tree.error(line, where, f"{name!r} is not a valid host name",
                             "letters, digits, '.', '-', '_' (no spaces or shell characters)")
    return names, port


def _check_group_name(tree: _Tree, line: int | None, where: str, name: str) -> None:
    if not _GROUP_NAME.match(name):
        raise tree.error(line, where, f"{name!r} is not a valid group name",
                         "letters, digits, '_', '-' and '.'")


def _resolve(tree: _Tree) -> tuple[dict[str, Host], dict[str, list[str]]]:
    """Flatten children into parents, apply variables in precedence order, and
    build one Host per declared host."""
    members = {name: _members(tree, name, ()) for name in tree.groups}
    depth = _depths(tree)
    # Hosts that no group names still belong to `all`.
    members["all"] = list(tree.host_vars)
    groups = {name: [h for h in tree.host_vars if h in members[name]]
              for name in tree.groups if name not in IMPLICIT_GROUPS}
    hosts: dict[str, Host] = {}
    for name in tree.host_vars:
        containing = [g for g in tree.groups if name in members[g]]
        variables: dict[str, _Var] = {}
        for group in sorted(containing, key=lambda g: (depth.get(g, 1), g)):
            variables.update(tree.groups[group].vars)
        variables.update(tree.host_vars[name])
        host_groups = tuple(g for g in containing if g not in IMPLICIT_GROUPS)
        hosts[name] = _host(tree, name, variables, host_groups)
    return hosts, groups


def _members(tree: _Tree, name: str, trail: tuple[str, ...]) -> set[str]:
    if name in trail:
        cycle = " -> ".join((*trail, name))
        raise tree.error(tree.groups[name].line, f"{name}:children",
                         f"groups contain each other: {cycle}")
    group = tree.groups[name]
    found = set(group.hosts)
    for child in group.children:
        found |= _members(tree, child, (*trail, name))
    return found


def _depths(tree: _Tree) -> dict[str, int]:
    """How far each group is below `all` (its longest path): a child's vars beat
    its parent's. Runs after `_members`, which refuses cycles."""
    depth: dict[str, int] = {}

    def visit(name: str, level: int) -> None:
        if depth.get(name, -1) >= level:
            return
        depth[name] = level
        for child in tree.groups[name].children:
            visit(child, level + 1)

    visit("all", 0)
    for name in tree.groups:
        if name not in depth:
            visit(name, 1)
    return depth


def _host(tree: _Tree, name: str, variables: dict[str, _Var], groups: tuple[str, ...]) -> Host:
    def first(keys: tuple[str, ...]) -> _Var | None:
        for key in keys:
            if key in variables and variables[key].value is not None:
                return variables[key]
        return None

    address_var = first(_ADDRESS_VARS)
    address = _text(address_var.value) if address_var else name
    if address_var and not _is_address(address):
        raise tree.error(address_var.line, address_var.field,
                         f"{address!r} is not a valid host name or address")
    port_var = first(_PORT_VARS) or tree.host_ports.get(name)
    port = _port(tree, port_var) if port_var else 22
    user_var, key_var = first(_USER_VARS), first(_KEY_VARS)
    connection = first(("ansible_connection",))
    extra = {key: _text(var.value) for key, var in variables.items()
             if not key.startswith("ansible_") and var.value is not None}
    return Host(
        name=name,
        address=address,
        port=port,
        user=_text(user_var.value) if user_var else None,
        identity_file=str(Path(_text(key_var.value)).expanduser()) if key_var else None,
        project=extra.get("project"),
        role=extra.get("role"),
        tags=_tags(variables.get("tags")),
        groups=groups,
        local=bool(connection and _text(connection.value) == "local"),
        source=SOURCE,
        vars=extra,
    )


def _port(tree: _Tree, var: _Var) -> int:
    text = _text(var.value)
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise tree.error(var.line, var.field, f"port must be a number from 1 to 65535, "
                         f"got {text!r}", "1..65535")
    return int(text)


def _tags(var: _Var | None) -> tuple[str, ...]:
    # Not an Ansible variable: a `tags` var (list, or comma-separated text) is
    # read so that `tag:NAME` selection works on Ansible inventories too.
    if var is None or var.value is None:
        return ()
    items = var.value if isinstance(var.value, list) else _text(var.value).split(",")
    return tuple(t for t in (_text(i).strip() for i in items) if t)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _is_address(text: str) -> bool:
    if ":" not in text and is_valid_host_name(text):
        return True
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
