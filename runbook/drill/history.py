"""A trainee's drills over time, read from the drill journals (no file of its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from runbook.clock import utc_iso
from runbook.drill.lab import drill_store
from runbook.errors import RunbookError
from runbook.incident import EventType
from runbook.incident.store import IncidentStore


@dataclass
class HistoryEntry:
    drill_id: str
    started_at: datetime
    scenario: str
    trainee: str | None
    score: int
    diagnosed: bool
    time_to_diagnosis: float | None  # seconds
    finished: bool

    def as_json(self) -> dict[str, object]:
        return {**vars(self), "started_at": utc_iso(self.started_at, "microseconds")}


def history(trainee: str | None = None, store: IncidentStore | None = None) -> list[HistoryEntry]:
    """Every scored drill, oldest first; only `trainee`'s when given."""
    from runbook.drill.scoring import score

    store = store or drill_store()
    entries = []
    for state in store.all():
        if not any(e.type == EventType.DRILL_STARTED for e in state.events):
            continue
        try:
            result = score(state)
        except RunbookError:
            continue
        if trainee and result.trainee != trainee:
            continue
        took = result.timings.get("correct diagnosis")
        entries.append(HistoryEntry(
            state.id, result.started_at, result.scenario.name, result.trainee, result.total,
            result.diagnosis.matched, took.total_seconds() if took else None,
            any(e.type == EventType.DRILL_STOPPED for e in state.events)))
    return sorted(entries, key=lambda e: e.started_at)


def progress(entries: list[HistoryEntry]) -> list[str]:
    """One line per scenario drilled more than once: first score to latest."""
    by_scenario: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        by_scenario.setdefault(entry.scenario, []).append(entry)
    lines = []
    for name, runs in sorted(by_scenario.items()):
        if len(runs) > 1:
            change = runs[-1].score - runs[0].score
            lines.append(f"{name}: {runs[0].score} -> {runs[-1].score} over {len(runs)} drills "
                         f"({'+' if change >= 0 else ''}{change})")
    return lines
