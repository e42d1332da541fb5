"""An incident's state, derived only by replaying its journal events.

Nothing here does I/O: `fold(events)` is a pure function, so the CLI, the TUI,
the report and the drills all see the same state from the same journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from runbook.clock import utc_iso
from runbook.hosts import Host
from runbook.incident.events import EventType, evidence_of
from runbook.incident.journal import DamagedLine, Event
from runbook.playbook import Playbook


class Status(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


class StepStatus(StrEnum):
    PENDING = "pending"
    STARTED = "started"
    DONE = "done"
    SKIPPED = "skipped"


@dataclass
class StepState:
    stage: str
    step: Any  # one of the playbook step models
    status: StepStatus = StepStatus.PENDING
    reason: str | None = None
    answer: str | None = None
    updated_at: datetime | None = None
    actor: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in (StepStatus.DONE, StepStatus.SKIPPED)


@dataclass
class CommandState:
    id: str
    step: str | None
    command: str
    hosts: list[str]
    rollback: str | None
    review_required: bool
    proposed_by: str
    approvals: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    template: str | None = None
    commands: dict[str, str] = field(default_factory=dict)  # host -> the exact command
    needs_root: bool = False
    timeout: float | None = None
    proposed_at: datetime | None = None
    started_at: datetime | None = None
    started_by: str | None = None
    survives_disconnect: bool = False

    @property
    def executed(self) -> bool:
        """Launched (or finished): it never runs again; re-running needs a new proposal."""
        return self.started_at is not None or bool(self.results)


@dataclass
class IncidentState:
    id: str
    title: str = ""
    severity: str = "SEV3"
    status: Status = Status.OPEN
    drill: bool = False
    origin: str = "new"  # see incident.events.Opened
    playbook_name: str = ""
    playbook: Playbook | None = None
    playbook_problem: str | None = None
    hosts: list[Host] = field(default_factory=list)
    roles: dict[str, str] = field(default_factory=dict)
    opened_at: datetime | None = None
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    alert: dict[str, Any] | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    records: dict[str, str] = field(default_factory=dict)
    notes: list[Event] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    host_problems: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, CommandState] = field(default_factory=dict)
    announcements: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)  # alert.received/resolved data
    events: list[Event] = field(default_factory=list)
    damaged: list[DamagedLine] = field(default_factory=list)

    @property
    def commander(self) -> str | None:
        return self.roles.get("commander")

    @property
    def current_step(self) -> StepState | None:
        """Where the operator is: the first step not yet done or skipped."""
        return next((s for s in self.steps.values() if not s.finished), None)

    @property
    def progress(self) -> tuple[int, int]:
        done = sum(1 for s in self.steps.values() if s.finished)
        return done, len(self.steps)

    @property
    def latest_runs(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest run of each collector on each host: (host, collector) -> run."""
        return {(str(run.get("host")), str(run.get("collector"))): run for run in self.evidence}

    @property
    def last_activity(self) -> datetime | None:
        return self.events[-1].ts if self.events else None

    def step_of_kind(self, step_id: str, kind: str, noun: str) -> Any:
        """The step's playbook model when it is of `kind`; a RunbookError naming
        the steps that are, otherwise."""
        from runbook.errors import RunbookError

        if step_id not in self.steps:
            known = [s.step.id for s in self.steps.values() if s.step.kind == kind]
            raise RunbookError(f"incident {self.id} has no step {step_id!r}",
                               f"{noun} steps: {', '.join(known) or 'none'}")
        step = self.steps[step_id].step
        if step.kind != kind:
            raise RunbookError(f"step {step_id!r} is a {step.kind} step, not {noun}",
                               f"only `kind: {kind}` steps can do that")
        return step

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)

    def template_context(self, now: datetime | None = None) -> dict[str, Any]:
        """The fields a playbook template may use (see templating.INCIDENT_FIELDS)."""
        reference = now or self.last_activity
        since = self.detected_at or self.opened_at
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "status": str(self.status),
            "playbook": self.playbook_name,
            "hosts": [h.name for h in self.hosts],
            "started_at": utc_iso(self.opened_at),
            "detected_at": utc_iso(self.detected_at),
            "resolved_at": utc_iso(self.resolved_at),
            "commander": self.roles.get("commander"),
            "scribe": self.roles.get("scribe"),
            "answers": dict(self.answers),
            "alert": dict(self.alert or {}),
            "elapsed": format_duration(reference - since) if reference and since else "",
            "now": utc_iso(reference),
        }


def format_duration(delta: Any) -> str:
    seconds = max(0, int(delta.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s"


def fold(incident_id: str, events: list[Event],
         damaged: list[DamagedLine] | None = None) -> IncidentState:
    """Replay events into state. Unknown event types are kept in the timeline
    and otherwise ignored, so an older runbook can still read a newer journal."""
    state = IncidentState(id=incident_id)
    apply_events(state, events, damaged or [])
    return state


def apply_events(state: IncidentState, events: list[Event],
                 damaged: list[DamagedLine]) -> None:
    """Fold more of the journal into a state: the same as folding it all again."""
    for event in events:
        state.events.append(event)
        _apply(state, event)
    known = {line.line for line in state.damaged}
    state.damaged += [line for line in damaged if line.line not in known]


def _apply(state: IncidentState, event: Event) -> None:
    data = event.data
    kind = event.type
    if kind == EventType.OPENED:
        _apply_opened(state, event)
    elif kind == EventType.DETECTED:
        state.detected_at = _parse_time(data.get("at")) or event.ts
    elif kind == EventType.SEVERITY_CHANGED:
        state.severity = str(data.get("severity", state.severity))
    elif kind == EventType.ROLE_ASSIGNED:
        state.roles[str(data.get("role"))] = str(data.get("name"))
    elif kind == EventType.HOSTS_ADDED:
        known = {h.name for h in state.hosts}
        state.hosts += [Host.from_record(r) for r in data.get("hosts", [])
                        if r.get("name") not in known]
    elif kind in (EventType.STEP_STARTED, EventType.STEP_DONE, EventType.STEP_SKIPPED):
        _apply_step(state, event)
    elif kind == EventType.ANSWER_RECORDED:
        step_id = str(data.get("step"))
        text = str(data.get("text", ""))
        state.answers[step_id] = text
        if data.get("records"):
            state.records[str(data["records"])] = text
        if step_id in state.steps:
            step = state.steps[step_id]
            step.answer, step.status = text, StepStatus.DONE
            step.updated_at, step.actor = event.ts, event.actor
    elif kind == EventType.NOTE_ADDED:
        state.notes.append(event)
    elif kind == EventType.COLLECTOR_RAN:
        state.evidence.append({**data, "event_id": event.id, "ts": event.ts})
        state.host_problems.pop(str(data.get("host")), None)
    elif kind == EventType.HOST_FAILED:
        state.host_problems[str(data.get("host"))] = {**data, "ts": event.ts}
    elif kind.startswith("command."):
        _apply_command(state, event)
    elif kind == EventType.ANNOUNCEMENT_SENT:
        state.announcements.append({**data, "ts": event.ts, "actor": event.actor})
    elif kind in (EventType.ALERT_RECEIVED, EventType.ALERT_RESOLVED):
        state.alerts.append({**data, "ts": event.ts})
    elif kind == EventType.RESOLVED:
        state.status, state.resolved_at = Status.RESOLVED, event.ts
    elif kind == EventType.CLOSED:
        state.status, state.closed_at = Status.CLOSED, event.ts
    elif kind == EventType.REOPENED:
        state.status, state.resolved_at, state.closed_at = Status.OPEN, None, None


def _apply_opened(state: IncidentState, event: Event) -> None:
    data = event.data
    state.title = str(data.get("title", ""))
    state.severity = str(data.get("severity", "SEV3"))
    state.drill = bool(data.get("drill", False))
    state.origin = str(data.get("origin") or "new")
    state.opened_at = event.ts
    state.detected_at = _parse_time(data.get("detected_at"))
    state.alert = data.get("alert")
    state.hosts = [Host.from_record(r) for r in data.get("hosts", [])]
    if data.get("commander"):
        state.roles["commander"] = str(data["commander"])
    book = data.get("playbook") or {}
    state.playbook_name = str(book.get("name", ""))
    try:
        state.playbook = Playbook.model_validate(book.get("definition") or {})
    except ValidationError as exc:
        # The snapshot was written by another runbook version; keep the rest usable.
        state.playbook_problem = f"playbook snapshot unreadable: {exc.error_count()} error(s)"
        return
    state.steps = {step.id: StepState(stage, step) for stage, step in state.playbook.steps()}


def _apply_step(state: IncidentState, event: Event) -> None:
    step = state.steps.get(str(event.data.get("step")))
    if step is None:
        return
    step.updated_at, step.actor = event.ts, event.actor
    if event.type == EventType.STEP_STARTED:
        if not step.finished:
            step.status = StepStatus.STARTED
    elif event.type == EventType.STEP_DONE:
        step.status, step.reason = StepStatus.DONE, event.data.get("comment")
    else:
        step.status, step.reason = StepStatus.SKIPPED, event.data.get("reason")


def _apply_command(state: IncidentState, event: Event) -> None:
    data = event.data
    command_id = str(data.get("command_id"))
    if event.type == EventType.COMMAND_PROPOSED:
        state.commands[command_id] = CommandState(
            id=command_id, step=data.get("step"), command=str(data.get("command", "")),
            hosts=list(data.get("hosts", [])), rollback=data.get("rollback"),
            review_required=bool(data.get("review_required")), proposed_by=event.actor,
            template=data.get("template"), commands=dict(data.get("commands") or {}),
            needs_root=bool(data.get("needs_root")), timeout=data.get("timeout"),
            proposed_at=event.ts, survives_disconnect=bool(data.get("survives_disconnect")))
        return
    command = state.commands.get(command_id)
    if command is None:
        return
    if event.type == EventType.COMMAND_APPROVED:
        command.approvals.append(str(data.get("approver") or event.actor))
    elif event.type == EventType.COMMAND_STARTED:
        command.started_at, command.started_by = event.ts, event.actor
    elif event.type == EventType.COMMAND_EXECUTED:
        # One shape for every reader, whichever shape the journal was written in.
        outcome = {k: v for k, v in data.items() if k != "evidence"}
        command.results.append({**evidence_of(data), **outcome, "ts": event.ts})


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
