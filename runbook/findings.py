"""What a parser concludes from a command's output.

Findings follow the USE method (Brendan Gregg): for each resource, its
utilization, its saturation and its errors. Each finding keeps the evidence
line it came from, so the operator (and the postmortem) can check it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Signal(StrEnum):
    UTILIZATION = "utilization"
    SATURATION = "saturation"
    ERRORS = "errors"
    INFO = "info"  # context worth showing that is not a USE signal (top processes …)


@dataclass(frozen=True)
class Finding:
    level: Level
    signal: Signal
    resource: str  # cpu, memory, swap, disk:/var, inodes:/var, network, kernel, tcp, port:443 …
    summary: str  # one line in the operator's words: "load 12.3 on 4 CPUs"
    line: int | None = None  # 1-based line in the collector's stdout
    evidence: str | None = None  # that line's text
    host: str = ""
    collector: str = ""
    # The fact it states, where several collectors can state it ("load",
    # "cpu_idle", "zombies", "memory_available" …), and its number: findings of
    # one fact about one host are one finding (see merge_findings).
    fact: str | None = None
    value: float | None = None

    def on(self, host: str, collector: str) -> Finding:
        return replace(self, host=host, collector=collector)

    def as_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Finding:
        return cls(level=Level(str(data["level"])), signal=Signal(str(data["signal"])),
                   resource=str(data["resource"]), summary=str(data["summary"]),
                   line=data.get("line"), evidence=data.get("evidence"),  # type: ignore[arg-type]
                   host=str(data.get("host", "")), collector=str(data.get("collector", "")),
                   fact=data.get("fact"), value=data.get("value"))  # type: ignore[arg-type]


_SEVERITY = {Level.CRITICAL: 0, Level.WARNING: 1, Level.INFO: 2}


@dataclass(frozen=True)
class Sourced:
    """A finding with when its output was captured (UTC ISO text, or None)."""

    finding: Finding
    captured_at: str | None = None
    file: str | None = None  # the output it was read from, relative to the incident


@dataclass(frozen=True)
class MergedFinding:
    """One fact about one host, as every collector that saw it stated it: `uptime`,
    `top` and the psutil snapshot all report the load; it is one finding."""

    sources: tuple[Sourced, ...]  # worst first

    @property
    def finding(self) -> Finding:
        return self.sources[0].finding

    @property
    def collectors(self) -> list[str]:
        return list(dict.fromkeys(s.finding.collector for s in self.sources))

    @property
    def disagreement(self) -> str | None:
        """Where the sources give different numbers for the fact, all of them:
        `ps 1 (10:02:11Z), top 2 (10:02:12Z)`. None when they agree."""
        values = [s for s in self.sources if s.finding.value is not None]
        numbers = [float(s.finding.value) for s in values]  # type: ignore[arg-type]
        if len(numbers) < 2 or not _differ(min(numbers), max(numbers)):
            return None
        return ", ".join(f"{s.finding.collector} {_number(s.finding.value)}"
                         + (f" ({clock(s.captured_at)})" if s.captured_at else "")
                         for s in values)

    @property
    def summary(self) -> str:
        """The worst source's words, then who else saw it, or how they differ."""
        others = self.collectors[1:]
        if self.disagreement:
            return f"{self.finding.summary} [sources disagree: {self.disagreement}]"
        if others:
            return f"{self.finding.summary} [also {', '.join(others)}]"
        return self.finding.summary


def _differ(low: float, high: float) -> bool:
    """Two readings of one fact differ when the gap is a whole unit and more than
    5% of the larger: zombies 1 and 2 differ, CPU idle 0% and 0.3% (read a
    second apart) do not."""
    gap = high - low
    return gap >= 1 and gap > 0.05 * max(abs(low), abs(high))


def clock(captured_at: str) -> str:
    """`2026-12-02T21:49:04.23Z` -> `21:49:04Z`: the sources of one finding are
    captured minutes apart on one day."""
    date, sep, time = captured_at.partition("T")
    return f"{time[:8]}Z" if sep and len(time) >= 8 else captured_at


def _number(value: float | None) -> str:
    return f"{value:g}" if value is not None else "?"


def sourced_from_runs(runs: Iterable[Mapping[str, Any]]) -> list[Sourced]:
    """The findings of journal runs (collector.ran data), each with its capture time."""
    found = []
    for run in runs:
        for raw in run.get("findings") or []:
            finding = Finding.from_dict(raw)
            if not finding.host or not finding.collector:  # journals before findings named them
                finding = finding.on(finding.host or str(run.get("host") or ""),
                                     finding.collector or str(run.get("collector") or ""))
            found.append(Sourced(finding, run.get("started_at"), run.get("stdout")))
    return found


def merge_findings(found: list[Sourced]) -> list[MergedFinding]:
    """One finding per fact: those about the same host and resource that state
    the same fact (the same `fact`, or failing that the same words) are one,
    keeping every source. Worst first, then in the order they came."""
    groups: dict[tuple[str, str, str], list[Sourced]] = {}
    for item in found:
        f = item.finding
        groups.setdefault((f.host, f.resource, f.fact or f"summary:{f.summary}"), []).append(item)
    merged = [MergedFinding(tuple(sorted(items, key=lambda s: _SEVERITY[s.finding.level])))
              for items in groups.values()]
    return sorted(merged, key=lambda m: _SEVERITY[m.finding.level])


@dataclass(frozen=True)
class ParseContext:
    """What a parser may know about the host beyond the text itself."""

    cpu_count: int | None = None
    expected_ports: tuple[int, ...] = ()
    # thresholds, as percentages unless named otherwise
    disk_warning: float = 90.0
    disk_critical: float = 95.0
    extra: dict[str, object] = field(default_factory=dict)


# A parser is a pure function from decoded stdout to findings.
Parser = Callable[[str, ParseContext], list[Finding]]
