"""`sar -u`, `sar -r`, `sar -q`: today's history (from the sa file) or live samples.

Rows start with a time (`15:53:11`, or `03:53:11 PM` in 12-hour locales) or
with `Average:`. Each header row names the columns of the rows below it; several
activities may follow one another. The verdict comes from the Average line (or
the last sample when there is none). A history whose average looks fine may
still hide a bad hour, so samples that cross a threshold are noted as INFO.

Thresholds: CPU shares as in top and vmstat; memory used (without cache) 90%
warning, 95% critical; %commit above 100 noted; run queue above the CPU
count warning, above 2x critical; on average 1 or more blocked tasks warning.

`sar -n DEV,EDEV` and `sar -n TCP,ETCP` (the 60-second checklist's network
lines) are judged per interface, with thresholds in NETWORK and RETRANSMITS:
an interface above 70% of its link speed is near saturation (Gregg's USE
method: queueing starts well before 100%), errors of any kind are errors, and
drops are saturation (a ring buffer or backlog overflowed). Retransmitted
segments above 1% of those sent mean loss on the path or an overloaded peer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import (
    Line,
    cpu_findings,
    finding,
    fmt,
    graded,
    integer,
    number,
    numbered,
    strip_time,
)
from .free import AVAILABLE_CRITICAL, AVAILABLE_WARNING

CPUS = re.compile(r"\((\d+) CPU\)")
Row = dict[str, float]
Judge = Callable[[Row, Line, str, int | None], list[Finding]]


@dataclass
class Table:
    columns: tuple[str, ...]
    key: str = ""  # the interface of a per-interface table (sar -n DEV)
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
                             f"CPU (warning above {cpus}, critical above {2 * cpus})", at,
                             fact="run_queue", value=runq))
    blocked = row.get("blocked")
    if blocked is not None and blocked >= 1:
        found.append(finding(Level.WARNING, Signal.SATURATION, "disk",
                             f"{fmt(blocked, 1)} tasks blocked{where}: uninterruptible sleep, "
                             "usually waiting on disk or NFS", at, fact="blocked_tasks",
                             value=blocked))
    return found




@dataclass(frozen=True)
class NetworkThresholds:
    ifutil_warning: float = 70.0  # % of link speed
    ifutil_critical: float = 90.0
    errors_per_s: float = 0.01  # any error in the interval counts (sar prints 2 decimals)
    drops_per_s: float = 10.0  # a few drops of unknown protocols are normal on many NICs


NETWORK = NetworkThresholds()
ERROR_COLUMNS = ("rxerr/s", "txerr/s", "coll/s", "txcarr/s", "rxfram/s", "rxfifo/s", "txfifo/s")
DROP_COLUMNS = ("rxdrop/s", "txdrop/s")


def _interface(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    share = row.get("%ifutil")
    level = graded(share, NETWORK.ifutil_warning, NETWORK.ifutil_critical)
    if share is None or level is None:
        return []
    return [finding(level, Signal.UTILIZATION, "network",
                    f"interface use {fmt(share, 1)}% of its link speed{where} (warning at "
                    f"{fmt(NETWORK.ifutil_warning)}%, critical at {fmt(NETWORK.ifutil_critical)}%)"
                    f": traffic queues", at, fact="ifutil", value=share)]


def _interface_errors(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    found = []
    errors = {c.removesuffix("/s"): row[c] for c in ERROR_COLUMNS
              if row.get(c, 0.0) >= NETWORK.errors_per_s}
    if errors:
        listing = ", ".join(f"{name} {fmt(v)}/s" for name, v in errors.items())
        found.append(finding(Level.WARNING, Signal.ERRORS, "network",
                             f"interface errors{where}: {listing} (a bad cable, NIC or "
                             "duplex mismatch, or a ring buffer overrun)", at,
                             fact="interface_errors", value=sum(errors.values())))
    drops = sum(row.get(c, 0.0) for c in DROP_COLUMNS)
    if drops >= NETWORK.drops_per_s:
        found.append(finding(Level.WARNING, Signal.SATURATION, "network",
                             f"{fmt(drops)} packets dropped per second{where} (warning at "
                             f"{fmt(NETWORK.drops_per_s)}/s): a receive ring or backlog is full",
                             at, fact="interface_drops", value=drops))
    return found


@dataclass(frozen=True)
class RetransmitThresholds:
    warning: float = 1.0  # % of segments sent
    critical: float = 5.0
    at_least_per_s: float = 1.0  # below this, a ratio of a handful of segments says nothing


RETRANSMITS = RetransmitThresholds()


def _retransmits(row: Row, at: Line, where: str, cpus: int | None) -> list[Finding]:
    retrans, sent = row.get("retrans/s"), row.get("oseg/s")
    if retrans is None or retrans < RETRANSMITS.at_least_per_s or not sent:
        return []
    share = 100 * retrans / sent
    level = graded(share, RETRANSMITS.warning, RETRANSMITS.critical)
    if level is None:
        return []
    return [finding(level, Signal.ERRORS, "tcp",
                    f"{fmt(retrans)} TCP segments retransmitted per second, {fmt(share, 1)}% of "
                    f"those sent{where} (warning at {fmt(RETRANSMITS.warning)}%, critical at "
                    f"{fmt(RETRANSMITS.critical)}%): packets are lost on the way, or the peer "
                    "is overloaded", at, fact="tcp_retransmits", value=round(share, 2))]


JUDGES: dict[str, Judge] = {"%idle": _cpu, "%memused": _memory, "runq-sz": _queue,
                            "%ifutil": _interface, "rxerr/s": _interface_errors,
                            "retrans/s": _retransmits}
KEYED_BY = "IFACE"  # sar -n DEV/EDEV: one row per interface and sample


def _tables(lines: list[Line]) -> list[Table]:
    tables: dict[tuple[str, ...], Table] = {}
    current: tuple[str, ...] | None = None
    for line in lines:
        time, rest = strip_time(line.fields)
        is_average = time is None and bool(rest) and rest[0].endswith(":")  # Average:, Moyenne:
        if is_average:
            rest = rest[1:]
        elif time is None or "RESTART" in rest:
            continue
        if rest and all(number(token) is None for token in rest):  # a header row
            current = tuple(rest)
            continue
        if current is None or len(rest) < len(current):
            continue
        named = dict(zip(current, rest, strict=False))
        if named.get("CPU", "all") != "all":
            continue  # a per-CPU row of `sar -P ALL`; the verdict uses the "all" row
        key = named.get(KEYED_BY, "")
        table = tables.setdefault((*current, key), Table(current, key))
        row = {c: v for c, token in named.items() if (v := number(token)) is not None}
        if is_average:
            table.average = (line, row)
        else:
            table.samples.append((line, time or "", row))
    tables_found = list(tables.values())
    _add_segments_sent(tables_found)
    return tables_found


def _add_segments_sent(tables: list[Table]) -> None:
    """`sar -n TCP,ETCP` prints segments sent (TCP) and retransmitted (ETCP) in two
    tables; the retransmit judge needs both, sample by sample."""
    sent = next((t for t in tables if "oseg/s" in t.columns), None)
    if sent is None:
        return
    by_time = {time: row["oseg/s"] for _, time, row in sent.samples if "oseg/s" in row}
    for table in tables:
        if "retrans/s" not in table.columns:
            continue
        for _, time, row in table.samples:
            if time in by_time:
                row["oseg/s"] = by_time[time]
        if table.average and sent.average and "oseg/s" in sent.average[1]:
            table.average[1]["oseg/s"] = sent.average[1]["oseg/s"]


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
        on = f" on {table.key}" if table.key else ""
        if table.average:
            at, row = table.average
            verdict = judge(row, at, f"{on} on the Average line", cpus)
        elif table.samples:
            at, time, row = table.samples[-1]
            verdict = judge(row, at, f"{on} in the last sample ({time})", cpus)
        else:
            continue
        found += [_keyed(f, table.key) for f in verdict + _peaks(table, judge, cpus, verdict)]
    return found


def _keyed(found: Finding, key: str) -> Finding:
    """eth0's drops and eth1's are two facts."""
    return replace(found, fact=f"{found.fact}:{key}") if key and found.fact else found


def _peaks(table: Table, judge: Judge, cpus: int | None,
           verdict: list[Finding]) -> list[Finding]:
    """Samples crossing a threshold that the verdict does not already report."""
    reported = {(f.signal, f.resource) for f in verdict}
    crossed: dict[tuple[Signal, str], list[Finding]] = {}
    for at, time, row in table.samples:
        on = f" on {table.key}" if table.key else ""
        for f in judge(row, at, f"{on} at {time}", cpus):
            if f.level != Level.INFO and (f.signal, f.resource) not in reported:
                crossed.setdefault((f.signal, f.resource), []).append(f)
    n = len(table.samples)
    return [replace(hits[0], level=Level.INFO,
                    summary=f"{len(hits)} of {n} samples crossed a threshold; first: "
                    f"{hits[0].summary}")
            for hits in crossed.values()]
