"""The OpenSSH client config (~/.ssh/config) as an inventory source: every
concrete `Host` alias, with `Include` followed as ssh does (paramiko does not)."""

from __future__ import annotations

import glob
import re
import shlex
from pathlib import Path
from typing import Any

import paramiko

from runbook.errors import InventoryError
from runbook.hosts import Host, is_valid_host_name, parse_target
from runbook.inventory.model import Inventory
from runbook.inventory.ssh_lookup import ssh_settings

# OpenSSH refuses Include nesting deeper than this (READCONF_MAX_DEPTH).
_MAX_INCLUDE_DEPTH = 16


def read_ssh_config(path: Path, *, strict: bool) -> Inventory:
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
            settings = ssh_settings(config, alias)
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
    for number, raw in enumerate(read_text(path).splitlines(), start=1):
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


def is_jump(jump: str, hosts: dict[str, Any]) -> bool:
    # ProxyJump syntax: one or more comma-separated hops, each a known host or
    # [user@]host[:port] (optionally as ssh://...).
    hops = [hop.removeprefix("ssh://") for hop in jump.split(",")]
    return all(hop in hosts or parse_target(hop) is not None for hop in hops)


def _is_ssh_jump(value: str) -> bool:
    """ProxyJump as OpenSSH reads it: `none`, or hops that are ssh config
    aliases or [user@]host[:port] (which `is_jump` accepts with no known hosts)."""
    text = value.strip().strip('"')
    return text.lower() == "none" or (bool(text) and is_jump(text, {}))


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(path, None, None, "file not found") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(path, None, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise InventoryError(path, None, None, f"cannot read: {exc.strerror}") from None
