"""Kernel messages from `dmesg -T`, raw `dmesg`, `journalctl -k` and kern.log.

Each kind of trouble is declared once below. Repeated lines are grouped: one
finding per kind, with the count, the processes or devices named, the first
line as evidence and the time of the last one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, numbered, plural

Describe = Callable[[int, str], str]  # (count, "java (1234), node (99)") -> summary


@dataclass(frozen=True)
class Kind:
    name: str
    pattern: re.Pattern[str]
    level: Level
    signal: Signal
    resource: str
    describe: Describe
    detail: re.Pattern[str] | None = None  # named groups, rendered with detail_format
    detail_format: str = "{name} ({pid})"
    unless: tuple[str, ...] = ()  # not reported when one of these kinds was found


def _kind(name: str, pattern: str, level: Level, signal: Signal, resource: str,
          describe: Describe, detail: str | None = None, **kw: object) -> Kind:
    return Kind(name, re.compile(pattern), level, signal, resource, describe,
                re.compile(detail) if detail else None, **kw)  # type: ignore[arg-type]


def _named(d: str, joiner: str = ": ") -> str:
    return f"{joiner}{d}" if d else ""


KILLED = r"Killed process (?P<pid>\d+) \((?P<name>[^)]*)\)"
FS_DEVICE = r"(?:-fs(?: error)?|XFS|BTRFS \w+) \((?:device )?(?P<dev>[\w.-]+)[:)]"
C, W = Level.CRITICAL, Level.WARNING
E, S = Signal.ERRORS, Signal.SATURATION

# First match wins, so the specific kinds come before the general ones
# ("XFS (sda): log I/O error" is a filesystem error before it is an I/O error).
KINDS: tuple[Kind, ...] = (
    _kind("oom_cgroup", r"Memory cgroup out of memory: Killed process", C, E, "memory",
          lambda n, d: "a container hit its memory limit: the OOM killer killed "
          f"{plural(n, 'process', 'processes')} in a memory cgroup{_named(d)}", KILLED),
    _kind("oom", r"\bKilled process \d+", C, E, "memory",
          lambda n, d: f"the host ran out of memory: the OOM killer killed "
          f"{plural(n, 'process', 'processes')}{_named(d)}", KILLED),
    _kind("oom_invoked", r"invoked oom-killer", C, E, "memory",
          lambda n, d: f"the OOM killer was invoked{_named(d, ' by ')} ({plural(n, 'time')}); "
          "the kill line is not in this output",
          r"(?P<name>\S+) invoked oom-killer", detail_format="{name}",
          unless=("oom", "oom_cgroup")),
    _kind("read_only", r"Remounting filesystem read-only|[Ff]ilesystem has been shut down|"
          r"[Ss]hutting down filesystem|forced shutdown", C, E, "disk",
          lambda n, d: f"a filesystem went read-only or shut down{_named(d, ' on ')}: "
          "writes to it fail", FS_DEVICE, detail_format="{dev}"),
    _kind("fs_error", r"EXT[234]-fs error|XFS \([^)]+\):.*(?:[Ee]rror|[Cc]orrupt)|"
          r"BTRFS (?:error|critical)", C, E, "disk",
          lambda n, d: f"{plural(n, 'filesystem error')}{_named(d, ' on ')}",
          FS_DEVICE, detail_format="{dev}"),
    _kind("io_error", r"I/O error|blk_update_request|critical medium error", C, E, "disk",
          lambda n, d: f"{plural(n, 'disk I/O error')}{_named(d, ' on ')}",
          r"\bdev (?P<dev>[\w-]+)", detail_format="{dev}"),
    _kind("hung_task", r"blocked for more than \d+ seconds", W, S, "processes",
          lambda n, d: f"{plural(n, 'hung task')} stuck in uninterruptible sleep past the "
          f"kernel's hung-task timeout, usually on disk or NFS{_named(d)}",
          r"task (?P<name>.+?):(?P<pid>\d+) blocked"),
    _kind("lockup", r"soft lockup|hard LOCKUP|detected stall", C, S, "cpu",
          lambda n, d: f"{plural(n, 'CPU lockup or stall message')}{_named(d)}: "
          "a CPU stopped scheduling",
          r"(?P<cpu>CPU#\d+) stuck for (?P<secs>\d+)s", detail_format="{cpu} {secs}s"),
    _kind("crash", r"segfault at|general protection fault|trap invalid opcode", W, E,
          "processes", lambda n, d: f"{plural(n, 'process crash', 'process crashes')} "
          f"(segfault or protection fault){_named(d)}", r"(?P<name>[^\s\[]+)\[(?P<pid>\d+)\]"),
    _kind("conntrack", r"conntrack: table full", C, E, "network",
          lambda n, d: f"conntrack table full, packets dropped ({plural(n, 'line')}): raise "
          "net.netfilter.nf_conntrack_max or find the connection storm"),
    _kind("tcp_memory", r"TCP: out of memory", C, E, "tcp",
          lambda n, d: f"TCP out of memory ({plural(n, 'line')}): socket buffers exceed "
          "net.ipv4.tcp_mem"),
    _kind("syn_flood", r"[Pp]ossible SYN flooding on port", W, S, "tcp",
          lambda n, d: f"possible SYN flooding{_named(d, ' on port ')} ({plural(n, 'message')})"
          ": a flood, or a listen backlog too small for the load",
          r"SYN flooding on port (?:\S+:)?(?P<port>\d+)", detail_format="{port}"),
    _kind("link_down", r"NIC Link is Down|: Link is Down|: Link down\b|"
          r"link status definitely down", C, E, "network",
          lambda n, d: f"network link down{_named(d, ' on ')} ({plural(n, 'message')})",
          r"(?P<iface>[\w.-]+):? (?:NIC )?Link (?:is )?[Dd]own", detail_format="{iface}"),
    _kind("hardware", r"\[Hardware Error\]|Machine check events logged|EDAC \S+: \d+ [CU]E ",
          W, E, "hardware",
          lambda n, d: f"{plural(n, 'hardware error message')} (machine check or ECC memory)"),
)
LINK_UP = re.compile(r"(?P<iface>[\w.-]+):? (?:NIC )?Link (?:is )?[Uu]p\b")
TIMESTAMP = re.compile(
    r"^\[(?P<human>\w{3} \w{3} +\d+ [\d:]+ \d{4})\]"  # dmesg -T
    r"|^\[\s*(?P<boot>\d+\.\d+)\]"  # raw dmesg: seconds since boot
    r"|^(?P<syslog>\w{3} +\d+ [\d:]+|\d{4}-\d\d-\d\dT[\d:.+-]+) \S+ kernel:")  # journal, syslog
SHOWN = 5  # processes or devices named in a summary


def parse_dmesg(text: str, ctx: ParseContext) -> list[Finding]:
    groups: dict[str, list[Line]] = {}
    for line in numbered(text):
        kind = next((k for k in KINDS if k.pattern.search(line.text)), None)
        if kind:
            groups.setdefault(kind.name, []).append(line)
    found = []
    for kind in KINDS:
        lines = groups.get(kind.name)
        if lines and not any(other in groups for other in kind.unless):
            found.append(_grouped(kind, lines, text))
    return found


def _grouped(kind: Kind, lines: list[Line], text: str) -> Finding:
    details: list[str] = []
    evidence = lines[0]
    for line in lines:
        match = kind.detail.search(line.text) if kind.detail else None
        if match:
            if not details:
                evidence = line
            label = kind.detail_format.format(**match.groupdict())
            if label not in details:
                details.append(label)
    named = ", ".join(details[:SHOWN])
    named += f" and {len(details) - SHOWN} more" if len(details) > SHOWN else ""
    summary = kind.describe(len(lines), named)
    level = kind.level
    if kind.name == "link_down" and details and _all_up_again(details, lines[-1], text):
        level, summary = Level.WARNING, summary + " (the link came back up: it flapped)"
    if len(lines) > 1 and (when := _timestamp(lines[-1].text)):
        summary += f"; last at {when}"
    return finding(level, kind.signal, kind.resource, summary, evidence)


def _all_up_again(interfaces: list[str], last_down: Line, text: str) -> bool:
    later = text.split("\n")[last_down.number:]
    up = {m["iface"] for raw in later if (m := LINK_UP.search(raw))}
    return set(interfaces) <= up


def _timestamp(text: str) -> str | None:
    match = TIMESTAMP.match(text.strip())
    if not match:
        return None
    if match["boot"]:
        return f"{match['boot']}s after boot"
    return match["human"] or match["syslog"]
