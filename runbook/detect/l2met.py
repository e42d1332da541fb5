"""Metrics as log lines, in the l2met convention:

    2024-05-01T10:00:00Z app[worker.1]: source=worker.1 sample#sidekiq.default.latency=1577.5
        sample#memory_total=40.9MB count#jobs.failed=2 measure#db.query=12ms

`sample#` is a gauge (the latest value counts), `count#` adds up (a bare
`count#x` is 1), `measure#` is a timing or size (the latest and the peak are
kept). `source=` on the line names where it came from: one metric per name and
source. Values may carry units (see thresholds.py).

Absence is a finding too: a metric whose last value is older than `stale`
("no data for 7m") has stopped arriving, which matters as much as a high
value. Time comes from each line's leading ISO 8601 timestamp when it has
one (a line without one takes the time of the line before it); otherwise from
when the line arrived. Staleness is measured against `now`: by default the
newest timestamp in the input (so an archived log judges itself), or the
clock when the lines carry no time.

Lines with no metric are ignored and counted; so are malformed metric tokens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from runbook.clock import utc_iso
from runbook.detect.thresholds import Quantity, Threshold, parse_quantity
from runbook.findings import Finding, Level, ParseContext, Signal
from runbook.incident import format_duration

_TOKEN = re.compile(r"(?<![^\s])(sample|count|measure)#(\S*)")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@-]*$")
_SOURCE = re.compile(r"(?<![^\s])source=(\S+)")
_STAMP = re.compile(r"^\s*(?:<\d+>\d*\s*)?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?"
                    r"(?:Z|[+-]\d\d:?\d\d)?)")


@dataclass
class Series:
    kind: str  # sample, count, measure
    name: str
    source: str
    last: Quantity
    last_at: datetime | None
    peak: Quantity
    peak_at: datetime | None
    total: float = 0.0  # count#: the sum
    points: int = 0
    first_crossed_at: dict[str, datetime | None] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.source}" if self.source else self.name

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "source": self.source,
                "last": str(self.last), "last_at": utc_iso(self.last_at), "peak": str(self.peak),
                "peak_at": utc_iso(self.peak_at), "total": self.total, "points": self.points}


@dataclass
class L2metReport:
    series: dict[tuple[str, str], Series] = field(default_factory=dict)
    lines: int = 0
    ignored: int = 0  # lines without any metric
    bad_tokens: int = 0  # metric tokens whose value is not a number
    timestamped: bool = False
    last_stamp: datetime | None = None
    now: datetime | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"lines": self.lines, "ignored_lines": self.ignored,
                "bad_tokens": self.bad_tokens, "now": utc_iso(self.now),
                "series": [s.as_json() for s in self.series.values()],
                "findings": [f.as_dict() for f in self.findings]}


def read(lines: Iterable[str], thresholds: list[Threshold] = (),  # type: ignore[assignment]
         *, stale: float | None = None, now: datetime | None = None) -> L2metReport:
    """Fold lines into series, then judge them. Lines are read as they come, so
    `lines` may be a pipe; a line without a timestamp is stamped on arrival."""
    report = L2metReport()
    for line in lines:
        report.lines += 1
        _take(report, line, thresholds)
    report.now = now or _latest(report) or datetime.now(UTC)
    report.findings = judge(report, thresholds, stale)
    return report


def _take(report: L2metReport, line: str, thresholds: list[Threshold]) -> None:
    good = [(kind, *_metric(kind, token)) for kind, token in _TOKEN.findall(line)]
    report.bad_tokens += sum(1 for *_, q in good if q is None)
    good = [g for g in good if g[2] is not None]
    if not good:
        report.ignored += 1
        return
    stamp = _STAMP.match(line)
    at = _parse_time(stamp.group(1)) if stamp else None
    if at is not None:
        report.timestamped, report.last_stamp = True, at
    # A line without a time of its own: in a timestamped stream, as the line before
    # it; otherwise, when it arrived.
    at = at or report.last_stamp or datetime.now(UTC)
    source_match = _SOURCE.search(line)
    source = source_match.group(1) if source_match else ""
    for kind, name, quantity in good:
        assert quantity is not None
        key = (name, source)
        series = report.series.get(key)
        if series is None:
            series = report.series[key] = Series(kind, name, source, quantity, at, quantity, at)
        series.last, series.last_at, series.points = quantity, at, series.points + 1
        series.total += quantity.base
        if quantity.base > series.peak.base:
            series.peak, series.peak_at = quantity, at
        for threshold in thresholds:
            if threshold.text not in series.first_crossed_at and threshold.matches(name) \
                    and threshold.crossed(series.total if kind == "count" else quantity.base):
                series.first_crossed_at[threshold.text] = at


def _metric(kind: str, token: str) -> tuple[str, Quantity | None]:
    """`name=12ms` -> (name, 12ms); a bare `count#name` is 1; anything else is None."""
    name, equals, value = token.partition("=")
    if not _NAME.match(name):
        return name, None
    if not equals and kind == "count":
        return name, Quantity(1.0, "")
    return name, parse_quantity(value) if value else None


def judge(report: L2metReport, thresholds: list[Threshold],
          stale: float | None) -> list[Finding]:
    findings: list[Finding] = []
    now = report.now or datetime.now(UTC)
    for series in report.series.values():
        resource = f"metric:{series.label}"
        value = series.total if series.kind == "count" else series.last.base
        shown = f"{series.total:g} (sum)" if series.kind == "count" else str(series.last)
        for threshold in (t for t in thresholds if t.matches(series.name)):
            if threshold.crossed(value):
                findings.append(threshold.finding(
                    series.name, f"{shown} at {utc_iso(series.last_at)}", resource,
                    source=series.source))
            elif threshold.text in series.first_crossed_at:
                findings.append(Finding(
                    Level.INFO, Signal.INFO, resource,
                    f"{series.name} crossed {threshold.text} earlier (peak {series.peak} at "
                    f"{utc_iso(series.peak_at)}), now {shown}"))
        if stale is not None and series.last_at is not None:
            silent = now - series.last_at
            if silent > timedelta(seconds=stale):
                findings.append(Finding(
                    Level.WARNING, Signal.ERRORS, resource,
                    f"no data for {format_duration(silent)} from {series.label} "
                    f"(last at {utc_iso(series.last_at)})"))
    if report.ignored or report.bad_tokens:
        findings.append(Finding(Level.INFO, Signal.INFO, "l2met",
                                f"{report.ignored} of {report.lines} line(s) had no metric; "
                                f"{report.bad_tokens} malformed metric value(s) ignored"))
    return findings


def first_crossing(report: L2metReport) -> datetime | None:
    moments = [m for s in report.series.values() for m in s.first_crossed_at.values() if m]
    return min(moments) if moments else None


def parse_l2met(text: str, ctx: ParseContext) -> list[Finding]:
    """The parser form (text -> findings) for a collector; thresholds and `stale`
    (seconds) come from `ctx.extra`."""
    thresholds = list(ctx.extra.get("thresholds", ()))  # type: ignore[call-overload]
    stale = ctx.extra.get("stale")
    return read(text.splitlines(), thresholds,
                stale=float(stale) if stale is not None else None).findings  # type: ignore[arg-type]


def _latest(report: L2metReport) -> datetime | None:
    if not report.timestamped:
        return None
    moments = [s.last_at for s in report.series.values() if s.last_at]
    return max(moments) if moments else None


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
