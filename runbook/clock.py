"""Time as runbook writes it: UTC, ISO 8601, with a `Z` (GUIDE: time is UTC
inside, shown with the local time beside it). One helper, so the journal, the
exports, `--json` and the archive all write a moment the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

Precision = Literal["seconds", "milliseconds", "microseconds"]


def utc_iso(moment: datetime | None, timespec: Precision = "seconds") -> str | None:
    """`2026-12-02T03:04:05Z` (or to the millisecond or microsecond); None for None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_now_iso(timespec: Precision = "seconds") -> str:
    return utc_iso(datetime.now(UTC), timespec) or ""
