"""The psutil snapshot of a local host (runbook.transport.local_metrics).

The same thresholds as the command parsers judge it: load as uptime does,
memory and swap as free does, CPU shares as top does, TCP states as netstat does.
"""

from __future__ import annotations

import re

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, cpu_findings, finding, integer, number, numbered
from .free import memory_findings
from .netstat import THRESHOLDS
from .uptime import load_findings

PAIRS = re.compile(r"(\w+)=(\S+)")


def _values(line: Line) -> dict[str, str]:
    return dict(PAIRS.findall(line.text))


def parse_system(text: str, ctx: ParseContext) -> list[Finding]:
    lines = {line.text.split(":", 1)[0]: line for line in numbered(text) if ":" in line.text}
    found: list[Finding] = []
    cpus_line = lines.get("cpus")
    cpus = integer(cpus_line.text.split(":", 1)[1]) if cpus_line else ctx.cpu_count
    if cpus and "load average" in lines:
        found += load_findings(lines["load average"], cpus)
    if "cpu_percent" in lines:
        shares = {k: v for k, raw in _values(lines["cpu_percent"]).items()
                  if (v := number(raw)) is not None}
        found += cpu_findings(shares, lines["cpu_percent"])
    if "memory" in lines:
        memory = _values(lines["memory"])
        swap = _values(lines["swap"]) if "swap" in lines else {}
        found += memory_findings(
            number(memory.get("total_mb", "0")) or 0.0,
            number(memory.get("available_mb", "0")) or 0.0, lines["memory"],
            number(swap.get("total_mb", "0")) or 0.0, number(swap.get("used_mb", "0")) or 0.0,
            lines.get("swap"))
    found += _top_processes(text)
    if "tcp_states" in lines:
        found += _tcp(lines["tcp_states"])
    return found


def _top_processes(text: str) -> list[Finding]:
    found: list[Finding] = []
    for label, metric, unit in (("top_cpu", "cpu", "% CPU"), ("top_mem", "mem", "% memory")):
        rows = [line for line in numbered(text) if line.text.startswith(label + ":")]
        if rows:
            names = ", ".join(f"{v.get('name')} (pid {v.get('pid')}, {v.get(metric)}{unit})"
                              for v in map(_values, rows[:3]))
            found.append(finding(Level.INFO, Signal.INFO, "process",
                                 f"top by {unit.strip('% ')}: {names}", rows[0]))
    return found


def _tcp(line: Line) -> list[Finding]:
    counts = {k: integer(v) or 0 for k, v in _values(line).items()}
    found = []
    for state, (warning, critical, signal, meaning) in THRESHOLDS.items():
        count = counts.get(state, 0)
        if count > warning:
            level = Level.CRITICAL if count > critical else Level.WARNING
            found.append(finding(level, signal, "tcp",
                                 f"{count} TCP sockets in {state} (warning above {warning}, "
                                 f"critical above {critical}): {meaning}", line,
                                 fact=f"tcp_{state.lower()}", value=count))
    return found
