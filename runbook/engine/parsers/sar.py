"""`sar -u`, `sar -r`, `sar -q`: today's history (from the sa file) or live samples.

Rows start with a time (`15:53:11`, or `03:53:11 PM` in 12-hour locales) or
with `Average:`. Each header row names the columns of the rows below it; several
activities may follow one another. The verdict comes from the Average line (or
the last sample when there is none). A history whose average looks fine may
still hide a bad hour, so samples that cross a threshold are noted as INFO.

Thresholds: CPU shares as in top and vmstat; memory used (without cache) 90%
warning, 95% critical; %commit above 100 noted; run queue above the CPU
count warning, above 2x critical; on average 1 or more blocked tasks warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, cpu_findings, finding, fmt, integer, number, numbered, strip_time
from .free import AVAILABLE_CRITICAL, AVAILABLE_WARNING

CPUS = re.compile(r"\((\d+) CPU\)")
Row = dict[str, float]
Judge = Callable[[Row, Line, str, int | None], list[Finding]]


@dataclass
class Table:
    columns: tuple[str, ...]
    samples: list[tuple[Line, str, Row]] = field(default_factory=list)
    average: tuple[Line, Row] | None = None


def _cpu(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    shares = {name: row[col] for col, name in
              (("%iowait", "iowait"), ("%steal", "steal"), ("%idle", "idle")) if col in row}
    return cpu_findings(shares, at, where)


def _memory(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    used = row.get("%memused")
    if "kbavail" not in row and {"kbmemfree", "kbmemused", "kbbuffers", "kbcached"} <= row.keys():
        # sysstat before 11.x counted buffers and cache as used; take them out.
        total = row["kbmemfree"] + row["kbmemused"]
        used = 100 * (row["kbmemused"] - row["kbbuffers"] - row["kbcached"]) / total if total \
            else None
    found = []
    warning, critical = 100 - AVAILABLE_WARNING, 100 - AVAILABLE_CRITICAL
    if used is not None and used >= warning:
        found.append(finding(Level.CRITICAL if used >= critical else Level.WARNING,
                             Signal.UTILIZATION, "memory",
                             f"memory {fmt(used, 1)}% used, not counting cache{where} "
                             f"(warning at {fmt(warning)}%, critical at {fmt(critical)}%)", at))
    commit = row.get("%commit")
    if commit is not None and commit > 100:
        found.append(finding(Level.INFO, Signal.SATURATION, "memory",
                             f"committed memory is {fmt(commit, 1)}% of RAM and swap{where}: "
                             "more is promised than exists, an OOM risk if it is all used", at))
    return found


def _queue(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    found = []
    runq = row.get("runq-sz")
    if cpus and runq is not None and runq > cpus:
        level = Level.CRITICAL if runq > 2 * cpus else Level.WARNING
        found.append(finding(level, Signal.SATURATION, "cpu",
                             f"run queue {fmt(runq, 1)} on {cpus} CPUs{where}: tasks wait for a "
                             f"CPU (warning above {cpus}, critical above {2 * cpus})", at))
    blocked = row.get("blocked")
    if blocked is not None and blocked >= 1:
        found.append(finding(Level.WARNING, Signal.SATURATION, "disk",
                             f"{fmt(blocked, 1)} tasks blocked{where}: uninterruptible sleep, "
                             "usually waiting on disk or NFS", at))
    return found


JUDGES: dict[str, Judge] = {"%idle": _cpu, "%memused": _memory, "runq-sz": _queue}


def _tables(lines: list[Line]) -> list[Table]:
    tables: dict[tuple[str, ...], Table] = {}
    current: Table | None = None
    for line in lines:
        time, rest = strip_time(line.fields)
        is_average = time is None and bool(rest) and rest[0].endswith(":")  # Average:, Moyenne:
        if is_average:
            rest = rest[1:]
        elif time is None or "RESTART" in rest:
            continue
        if rest and all(number(token) is None for token in rest):  # a header row
            current = tables.setdefault(tuple(rest), Table(tuple(rest)))
            continue
        if current is None or len(rest) < len(current.columns):
            continue
        named = dict(zip(current.columns, rest, strict=False))
        if named.get("CPU", "all") != "all":
            continue  # a per-CPU row of `sar -P ALL`; the verdict uses the "all" row
        row = {c: v for c, token in named.items() if (v := number(token)) is not None}
        if is_average:
            current.average = (line, row)
        else:
            current.samples.append((line, time or "", row))
    return list(tables.values())


def parse_sar(text: str, ctx: ParseContext) -> list[Finding]:
    lines = numbered(text)
    header = next((m for line in lines[:3] if (m := CPUS.search(line.text))), None)
    # sar's own header names the CPU count of the host it ran on: trust it first.
    cpus = (integer(header.group(1)) if header else None) or ctx.cpu_count
    found: list[Finding] = []
    for table in _tables(lines):
        judge = next((j for column, j in JUDGES.items() if column in table.columns), None)
        if judge is None:
            continue
        if table.average:
            at, row = table.average
            verdict = judge(row, at, " on the Average line", cpus)
        elif table.samples:
            at, time, row = table.samples[-1]
            verdict = judge(row, at, f" in the last sample ({time})", cpus)
        else:
            continue
        found += verdict + _peaks(table, judge, cpus, verdict)
    return found


def _peaks(table: Table, judge: Judge, cpus: int | None,
           verdict: list[Finding]) -> list[Finding]:
    """Samples crossing a threshold that the verdict does not already report."""
    reported = {(f.signal, f.resource) for f in verdict}
    crossed: dict[tuple[Signal, str], list[Finding]] = {}
    for at, time, row in table.samples:
        for f in judge(row, at, f" at {time}", cpus):
            if f.level != Level.INFO and (f.signal, f.resource) not in reported:
                crossed.setdefault((f.signal, f.resource), []).append(f)
    n = len(table.samples)
    return [replace(hits[0], level=Level.INFO,
                    summary=f"{len(hits)} of {n} samples crossed a threshold; first: "
                    f"{hits[0].summary}")
            for hits in crossed.values()]
