"""App-level events: what workers tell screens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from runbook.incident.journal import Replay


@dataclass
class JournalRead(Message):
    """What was appended to the journal since the screen's last read."""

    replay: Replay


@dataclass
class HostProgress(Message):
    host: str
    state: str
    message: str | None


@dataclass
class CollectorProgress(Message):
    host: str
    collector: str
    status: str
    detail: str | None


@dataclass
class CollectionDone(Message):
    """The child process finished: how many hosts answered, how many findings."""

    step: str | None
    summary: dict[str, Any]


@dataclass
class ActionFailed(Message):
    """An intent the core refused (a RunbookError): shown, never a traceback."""

    message: str
    hint: str | None = None
