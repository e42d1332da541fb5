"""Where incidents live on disk, and the operations that append to them.

Each operation checks the request against the replayed state first (does the
step exist, is the incident still open) and then appends exactly one event.
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook import paths
from runbook.bugs import log_exception
from runbook.clock import utc_iso
from runbook.errors import IncidentNotFound, JournalError, RunbookError
from runbook.hosts import Host
from runbook.incident import events
from runbook.incident.events import EventType, PayloadMismatch, check_payload, strict
from runbook.incident.journal import JOURNAL_NAME, Event, Journal, Replay
from runbook.incident.state import IncidentState, Status, StepStatus, apply_events, fold
from runbook.playbook import LoadedPlaybook, Severity

ROLES = ("commander", "scribe", "communications", "subject-expert")
# Written by runbook as work runs, not by a person's choice: they do not make an
# incident the one an operator was working in.
_MACHINE_EVENTS = frozenset({EventType.HOSTS_ADDED, EventType.COLLECTOR_RAN,
                             EventType.HOST_FAILED, EventType.ALERT_RECEIVED,
                             EventType.ALERT_RESOLVED, EventType.COMMAND_EXECUTED})


def same_person(a: str, b: str) -> bool:
    """`alice`, `Alice` and `alice@bastion` are one person: actors are user@host."""
    def who(text: str) -> str:
        return text.strip().casefold().split("@", 1)[0]

    return a.strip().casefold() == b.strip().casefold() or who(a) == who(b)


def default_actor() -> str:
    """Who is acting: RUNBOOK_ACTOR, else user@host, as an audit trail wants it."""
    explicit = os.environ.get("RUNBOOK_ACTOR")
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class IncidentStore:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.incidents_dir()

    def directory(self, incident_id: str) -> Path:
        return self.root / incident_id

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / JOURNAL_NAME).exists())

    def resolve_id(self, text: str) -> str:
        """An exact id, a unique prefix, or the unique random suffix (`7f3a`)."""
        ids = self.ids()
        if text in ids:
            return text
        if text in ("last", "latest") and ids:
            return max(ids, key=lambda i: self.load(i).last_activity or datetime.min.replace(
                tzinfo=UTC))
        matches = [i for i in ids if i.startswith(text) or i.endswith(f"-{text}")]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise IncidentNotFound(f"no incident {text!r}",
                                   "see `runbook list` for the incidents on this machine")
        raise IncidentNotFound(f"{text!r} matches {len(matches)} incidents: "
                               f"{', '.join(matches[:5])}", "give more of the id")

    def load(self, incident_id: str) -> IncidentState:
        replay = Journal(self.directory(incident_id)).replay()
        return fold(incident_id, replay.events, replay.damaged)

    def follow(self, incident_id: str) -> JournalFollower:
        return JournalFollower(incident_id, Journal(self.directory(incident_id)))

    def all(self) -> list[IncidentState]:
        return [self.load(i) for i in self.ids()]

    def last_worked(self, actor: str) -> IncidentState | None:
        """The open incident `actor` last did something in, where `runbook` with no
        argument picks up. One that a bare `runbook collect HOST` opened as a
        place for its evidence counts only once someone has worked in it; when
        `actor` has worked in none, the open incident with the latest activity."""
        def by_hand(state: IncidentState) -> list[Event]:
            # A collection's own opening was not a choice to work there either.
            machine = _MACHINE_EVENTS | ({EventType.OPENED} if state.origin == "collect"
                                         else set())
            return [e for e in state.events if e.type not in machine]

        open_ones = [s for s in self.all() if s.status == Status.OPEN]
        worked = [s for s in open_ones if s.origin != "collect" or by_hand(s)]
        mine = [(e.ts, s) for s in worked for e in by_hand(s) if same_person(e.actor, actor)]
        if mine:
            return max(mine, key=lambda pair: pair[0])[1]
        latest = [(s.last_activity, s) for s in worked if s.last_activity is not None]
        return max(latest, key=lambda pair: pair[0])[1] if latest else None

    def create(
        self,
        *,
        playbook: LoadedPlaybook,
        hosts: list[Host],
        title: str,
        actor: str,
        severity: str | None = None,
        commander: str | None = None,
        drill: bool = False,
        alert: events.AlertRecord | None = None,
        detected_at: datetime | None = None,
        origin: str = "new",
    ) -> Incident:
        if not title.strip():
            raise RunbookError("an incident needs a title", "pass --title 'what is wrong'")
        level = _severity(severity) if severity else playbook.playbook.severity
        self.root.mkdir(parents=True, exist_ok=True)
        incident_id = self._claim_id(datetime.now(UTC))
        (self.directory(incident_id) / "evidence").mkdir(parents=True, exist_ok=True)
        definition = playbook.playbook.model_dump(mode="json", exclude_defaults=False)
        incident = Incident(self, incident_id)
        incident.append(EventType.OPENED, events.Opened(
            origin=origin, title=title.strip(), severity=str(level), drill=drill,
            commander=commander,
            hosts=[h.as_record() for h in hosts], alert=alert,
            detected_at=utc_iso(detected_at, "microseconds"),
            playbook=events.PlaybookSnapshot(
                name=playbook.playbook.name, source=str(playbook.path),
                sha256=playbook.sha256, bundled=playbook.bundled, definition=definition),
        ), actor)
        return incident

    def _claim_id(self, now: datetime) -> str:
        for _ in range(100):
            candidate = f"{now:%Y%m%d-%H%M}-{secrets.token_hex(2)}"
            try:
                self.directory(candidate).mkdir()
            except FileExistsError:
                continue
            return candidate
        raise JournalError(f"could not allocate an incident id under {self.root}")


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError:
        raise RunbookError(f"{text!r} is not a severity", "use SEV1, SEV2, SEV3 or SEV4") \
            from None


class Incident:
    """Operations on one incident. Each appends one event after checking it."""

    def __init__(self, store: IncidentStore, incident_id: str) -> None:
        self.store = store
        self.id = incident_id
        self.journal = Journal(store.directory(incident_id))
        self.evidence_dir = store.directory(incident_id) / "evidence"

    def state(self) -> IncidentState:
        return self.store.load(self.id)

    def append(self, type: str, data: Mapping[str, Any], actor: str) -> Event:
        [event] = self.append_many([(type, data, actor)])
        return event

    def append_many(self, entries: list[tuple[str, Mapping[str, Any], str]]) -> list[Event]:
        """Write events whose data is declared in `incident.events`. Data that does
        not fit is a bug in the writer: it fails under the test suite, and is
        otherwise logged and written anyway, since what happened must not be lost."""
        for type, data, _ in entries:
            try:
                check_payload(str(type), dict(data))
            except PayloadMismatch as exc:
                if strict():
                    raise
                log_exception(f"writing to incident {self.id}", exc)
        return self.journal.append_many([(str(t), dict(d), a) for t, d, a in entries])

    # -- checks ---------------------------------------------------------------

    def _open_state(self, allow_resolved: bool = True) -> IncidentState:
        state = self.state()
        if state.status == Status.CLOSED:
            raise JournalError(f"incident {self.id} is closed",
                               "reopen it with `runbook reopen` to record more")
        if state.status == Status.RESOLVED and not allow_resolved:
            raise JournalError(f"incident {self.id} is already resolved")
        return state

    def _step(self, state: IncidentState, step_id: str):  # noqa: ANN202
        if step_id not in state.steps:
            known = ", ".join(state.steps) or "none"
            raise RunbookError(f"incident {self.id} has no step {step_id!r}",
                               f"steps: {known}")
        return state.steps[step_id]

    # -- operations -------------------------------------------------------------

    def note(self, text: str, actor: str) -> Event:
        if not text.strip():
            raise RunbookError("a note needs some text")
        self._open_state()
        return self.append(EventType.NOTE_ADDED, events.NoteAdded(text=text), actor)

    def start_step(self, step_id: str, actor: str) -> Event | None:
        state = self._open_state()
        step = self._step(state, step_id)
        if step.status != StepStatus.PENDING:
            return None  # already under way or finished: nothing new to record
        return self.append(EventType.STEP_STARTED, events.StepStarted(step=step_id), actor)

    def complete_step(self, step_id: str, actor: str, comment: str | None = None) -> Event:
        state = self._open_state()
        self._step(state, step_id)
        data = events.StepDone(step=step_id)
        if comment:
            data["comment"] = comment
        return self.append(EventType.STEP_DONE, data, actor)

    def skip_step(self, step_id: str, reason: str, actor: str) -> Event:
        if not reason.strip():
            raise RunbookError("skipping a step needs a reason",
                               "the postmortem shows why each step was skipped")
        state = self._open_state()
        self._step(state, step_id)
        return self.append(EventType.STEP_SKIPPED,
                           events.StepSkipped(step=step_id, reason=reason), actor)

    def answer(self, step_id: str, text: str, actor: str) -> Event:
        if not text.strip():
            raise RunbookError("an answer needs some text")
        state = self._open_state()
        step = self._step(state, step_id)
        if step.step.kind != "question":
            raise RunbookError(f"step {step_id!r} is a {step.step.kind} step, not a question")
        return self.append(EventType.ANSWER_RECORDED, events.AnswerRecorded(
            step=step_id, text=text, records=step.step.records), actor)

    def set_severity(self, severity: str, actor: str, reason: str | None = None) -> Event:
        self._open_state()
        return self.append(EventType.SEVERITY_CHANGED, events.SeverityChanged(
            severity=str(_severity(severity)), reason=reason), actor)

    def assign_role(self, role: str, name: str, actor: str) -> Event:
        if role not in ROLES:
            raise RunbookError(f"unknown role {role!r}", f"one of {', '.join(ROLES)}")
        if not name.strip():
            raise RunbookError("a role needs a person's name")
        self._open_state()
        return self.append(EventType.ROLE_ASSIGNED,
                           events.RoleAssigned(role=role, name=name), actor)

    def mark_detected(self, at: datetime, source: str, actor: str) -> Event:
        self._open_state()
        return self.append(EventType.DETECTED, events.Detected(
            at=utc_iso(at, "microseconds"), source=source), actor)

    def resolve(self, actor: str, summary: str | None = None) -> Event:
        self._open_state(allow_resolved=False)
        return self.append(EventType.RESOLVED, events.Resolved(summary=summary), actor)

    def close(self, actor: str) -> Event:
        state = self._open_state()
        if state.status != Status.RESOLVED:
            raise RunbookError(f"incident {self.id} is still open",
                               "resolve it first: `runbook resolve ID`")
        # The archive is told by the use case that closes (report.archive.close),
        # so the store knows nothing of it.
        return self.append(EventType.CLOSED, events.Closed(), actor)

    def reopen(self, actor: str, reason: str) -> Event:
        if self.state().status == Status.OPEN:
            raise RunbookError(f"incident {self.id} is already open")
        return self.append(EventType.REOPENED, events.Reopened(reason=reason), actor)


class JournalFollower:
    """One incident's state, kept current by folding only what was appended since
    the last read. Reading (`fetch`, any thread) is apart from folding (`apply`),
    so a front end can read in a worker and fold where it draws."""

    def __init__(self, incident_id: str, journal: Journal) -> None:
        self.journal = journal
        self.state = IncidentState(id=incident_id)
        self.end = 0
        self._lines = 0

    def fetch(self) -> Replay:
        return self.journal.replay(self.end, self._lines)

    def apply(self, replay: Replay) -> bool:
        """Fold a fetched read in; False if another read got there first (then
        this one is stale and dropped), or if there was nothing new."""
        if replay.start != self.end:
            return False
        apply_events(self.state, replay.events, replay.damaged)
        self.end, self._lines = replay.end, replay.lines
        return bool(replay.events or replay.damaged)

    def read(self) -> IncidentState:
        self.apply(self.fetch())
        return self.state
