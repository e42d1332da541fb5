"""`uptime; getconf _NPROCESSORS_ONLN`: load averages against the CPU count.

Linux load counts runnable tasks and tasks in uninterruptible (disk) sleep, so
a load above the CPU count means work is queueing (the saturation of the USE
method; Brendan Gregg's 60-second checklist starts here). Only the 1-minute
average is the present: it sets the level. The 5- and 15-minute ones say
where it is heading; a high load that is falling away is information.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, fmt, integer, number, numbered

# "load average: 0.30, 0.65, 0.42" (Linux), "load averages: 1.2 1.0 0.9" (BSD),
# "load average: 0,30, 0,65, 0,42" (a comma-decimal locale).
LOAD = re.compile(r"load averages?:\s*(\d+[.,]\d+),?\s+(\d+[.,]\d+),?\s+(\d+[.,]\d+)")


@dataclass(frozen=True)
class LoadThresholds:
    """Load per CPU. Above 1 a task waits for a CPU (or for disk: Linux counts
    D-state tasks too); above 2 at least as many wait as run."""

    warning_per_cpu: float = 1.0
    critical_per_cpu: float = 2.0


LOAD_THRESHOLDS = LoadThresholds()


def load_findings(at: Line, cpus: int,
                  limits: LoadThresholds = LOAD_THRESHOLDS) -> list[Finding]:
    match = LOAD.search(at.text)
    if not match or cpus <= 0:
        return []
    printed = match.groups()
    one, five, fifteen = (number(g) or 0.0 for g in printed)
    warning, critical = limits.warning_per_cpu * cpus, limits.critical_per_cpu * cpus
    trend = ("rising" if one > fifteen * 1.2 else "falling" if one < fifteen * 0.8
             else "steady")
    bounds = f"warning above {fmt(warning)}, critical above {fmt(critical)}"
    if one > warning:
        level = Level.CRITICAL if one > critical else Level.WARNING
        summary = (f"load average {printed[0]} on {cpus} CPUs ({fmt(one / cpus, 1)} per "
                   f"CPU); 5-min {printed[1]}, 15-min {printed[2]}, {trend} ({bounds})")
        return [finding(level, Signal.SATURATION, "cpu", summary, at, fact="load",
                        value=one)]
    if max(five, fifteen) > warning:
        # It was saturated and is no longer: worth knowing, not worth paging.
        summary = (f"load average {printed[0]} on {cpus} CPUs now, down from 5-min "
                   f"{printed[1]}, 15-min {printed[2]}: the CPUs were saturated earlier "
                   f"({bounds})")
        return [finding(Level.INFO, Signal.SATURATION, "cpu", summary, at, fact="load",
                        value=one)]
    return []


def _cpus(lines: list[Line], ctx: ParseContext) -> int | None:
    # The collector appends `getconf _NPROCESSORS_ONLN`: a line holding one integer.
    nproc = [n for line in lines if (n := integer(line.text))]
    return nproc[0] if nproc else ctx.cpu_count


def parse_uptime(text: str, ctx: ParseContext) -> list[Finding]:
    lines = numbered(text)
    cpus = _cpus(lines, ctx)
    if not cpus:
        return []  # without a CPU count a load number cannot be judged
    return [f for line in lines if LOAD.search(line.text) for f in load_findings(line, cpus)]


def load_per_cpu(text: str) -> tuple[float, Line] | None:
    """The 1-minute load per CPU and its line, from the collector's own CPU count;
    None without one (what hosts are compared on, runbook.peers)."""
    lines = numbered(text)
    cpus = _cpus(lines, ParseContext())
    for line in lines:
        if cpus and (match := LOAD.search(line.text)):
            return (number(match.group(1)) or 0.0) / cpus, line
    return None
