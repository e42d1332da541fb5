"""`uptime; getconf _NPROCESSORS_ONLN`: load averages against the CPU count.

Linux load counts runnable tasks and tasks in uninterruptible (disk) sleep, so
a load above the CPU count means work is queueing. Above 2x it is critical.
"""

from __future__ import annotations

import re

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, fmt, integer, number, numbered, worst

# "load average: 0.30, 0.65, 0.42" (Linux), "load averages: 1.2 1.0 0.9" (BSD),
# "load average: 0,30, 0,65, 0,42" (a comma-decimal locale).
LOAD = re.compile(r"load averages?:\s*(\d+[.,]\d+),?\s+(\d+[.,]\d+),?\s+(\d+[.,]\d+)")


def load_findings(at: Line, cpus: int) -> list[Finding]:
    match = LOAD.search(at.text)
    if not match or cpus <= 0:
        return []
    printed = match.groups()
    loads = [number(g) or 0.0 for g in printed]
    levels = [Level.CRITICAL if load > 2 * cpus else Level.WARNING
              for load in loads if load > cpus]
    if not levels:
        return []
    one, _, fifteen = loads
    trend = ("rising" if one > fifteen * 1.2 else "falling" if one < fifteen * 0.8
             else "steady")
    summary = (f"load average {printed[0]} on {cpus} CPUs ({fmt(one / cpus, 1)} per CPU); "
               f"5-min {printed[1]}, 15-min {printed[2]}, {trend} "
               f"(warning above {cpus}, critical above {2 * cpus})")
    return [finding(worst(levels), Signal.SATURATION, "cpu", summary, at)]


def parse_uptime(text: str, ctx: ParseContext) -> list[Finding]:
    lines = numbered(text)
    # The collector appends `getconf _NPROCESSORS_ONLN`: a line holding one integer.
    nproc = [n for line in lines if (n := integer(line.text))]
    cpus = nproc[0] if nproc else ctx.cpu_count
    if not cpus:
        return []  # without a CPU count a load number cannot be judged
    return [f for line in lines if LOAD.search(line.text) for f in load_findings(line, cpus)]
