"""`top -b -n 2 -d 1`: the summary area (CPU shares, tasks, memory, load).

The CPU shares of top's first frame cover only the instant since top started,
so with two frames the last one is read (one second of CPU time); a single
frame is read as it is.

CPU shares use the same thresholds as vmstat and sar; memory the same as free;
the load line the same as uptime when the CPU count is known.
"""

from __future__ import annotations

import re

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, cpu_findings, finding, integer, number, numbered, plural
from .free import memory_findings
from .uptime import load_findings

# "%Cpu(s):  0.0 us,100.0 sy, …, 0.0 st" (procps-ng) and "Cpu(s):  2.3%us, …" (old procps)
CPU_LINE = re.compile(r"^%?Cpu\(s\)")
SHARE = re.compile(r"(\d+(?:[.,]\d+)?)\s*%?\s*(us|sy|ni|id|wa|hi|si|st)\b")
SHARE_NAMES = {"wa": "iowait", "st": "steal", "id": "idle"}
ZOMBIES = re.compile(r"(\d+)\s+zombie")
MEMORY = re.compile(r"(\d+(?:[.,]\d+)?)k?\s+(total|free|used|avail Mem)\b")
UNIT_MIB = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "TiB": 1024.0 ** 2}


def parse_top(text: str, ctx: ParseContext) -> list[Finding]:
    lines = numbered(text)
    frames = [i for i, line in enumerate(lines) if line.text.startswith("top -")]
    lines = lines[frames[-1]:] if frames else lines
    found: list[Finding] = []
    memory: dict[str, tuple[Line, dict[str, float]]] = {}
    for line in lines[:12]:  # the summary area; the process table follows
        head = line.text.lstrip()
        if head.startswith("top -") and ctx.cpu_count:
            found += load_findings(line, ctx.cpu_count)
        elif head.startswith(("Tasks:", "Threads:")):
            found += _zombies(line)
        elif CPU_LINE.match(head):
            shares = {SHARE_NAMES[k]: v for value, k in SHARE.findall(head)
                      if k in SHARE_NAMES and (v := number(value)) is not None}
            found += cpu_findings(shares, line)
        elif re.match(r"^(\w+ )?(Mem|Swap)\b", head):
            unit = UNIT_MIB.get(head.split()[0], 1 / 1024)  # very old top: bare "Mem:" in KiB
            kind = "swap" if "Swap" in head.split(":")[0] else "mem"
            memory[kind] = (line, {k: n * unit for value, k in MEMORY.findall(head)
                                   if (n := number(value)) is not None})
    if "mem" in memory and "swap" in memory and "avail Mem" in memory["swap"][1]:
        mem_at, mem = memory["mem"]
        swap_at, swap = memory["swap"]
        if "total" in mem:
            found += memory_findings(mem["total"], swap["avail Mem"], mem_at,
                                     swap.get("total", 0.0), swap.get("used", 0.0), swap_at)
    return found


def _zombies(line: Line) -> list[Finding]:
    match = ZOMBIES.search(line.text)
    count = (integer(match.group(1)) or 0) if match else 0
    if count == 0:
        return []
    return [finding(Level.WARNING, Signal.ERRORS, "processes",
                    f"{plural(count, 'zombie process', 'zombie processes')}: their parent is "
                    "not reaping them", line, fact="zombies", value=count)]
