"""The journal's vocabulary: every event type, and the data each one carries.

Each payload is declared once here, as a TypedDict. Writers build their data with
these types, readers read it through them, and `Incident.append` checks what is
written against them. A writer that drifts from its declaration is a bug in
runbook: the test suite (RUNBOOK_STRICT_EVENTS=1) fails on it. In production the
event is still written, since losing what an operator did is worse than a
misshapen line, and the mismatch goes to the log.

Readers keep using `.get()`: journals written by older versions lack fields that
are required now, and the fold must still read them.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, NotRequired

from pydantic import ConfigDict
from typing_extensions import TypedDict

if TYPE_CHECKING:
    from pydantic import TypeAdapter


class EventType(StrEnum):
    OPENED = "incident.opened"
    DETECTED = "incident.detected"
    SEVERITY_CHANGED = "severity.changed"
    ROLE_ASSIGNED = "role.assigned"
    HOSTS_ADDED = "hosts.added"
    STEP_STARTED = "step.started"
    STEP_DONE = "step.done"
    STEP_SKIPPED = "step.skipped"
    ANSWER_RECORDED = "answer.recorded"
    NOTE_ADDED = "note.added"
    COLLECTOR_RAN = "collector.ran"
    HOST_FAILED = "host.failed"
    COMMAND_PROPOSED = "command.proposed"
    COMMAND_APPROVED = "command.approved"
    # Written before a remediation runs anywhere: a crash mid-run still shows it
    # was launched, and a launched command is never launched again.
    COMMAND_STARTED = "command.started"
    COMMAND_EXECUTED = "command.executed"
    ANNOUNCEMENT_SENT = "announcement.sent"
    # An operator's own ssh session on a host, from the app (runbook/host_shell.py).
    SHELL_OPENED = "shell.opened"
    SHELL_CLOSED = "shell.closed"
    # An Alertmanager alert filed into the incident (runbook/detect/alertmanager.py).
    ALERT_RECEIVED = "alert.received"
    ALERT_RESOLVED = "alert.resolved"
    RESOLVED = "incident.resolved"
    CLOSED = "incident.closed"
    REOPENED = "incident.reopened"
    # A training drill's own events (runbook/drill/session.py): its lab, the
    # trainee's diagnosis, and how it ended.
    DRILL_STARTED = "drill.started"
    DRILL_DIAGNOSED = "drill.diagnosed"
    DRILL_STOPPED = "drill.stopped"
    DRILL_ABORTED = "drill.aborted"


# -- shapes that several events share ---------------------------------------------------


class HostRecord(TypedDict):
    """A host as the journal remembers it (`Host.as_record`)."""

    name: str
    address: str
    port: int
    user: str | None
    identity_file: str | None
    jump: str | None
    project: str | None
    role: str | None
    tags: list[str]
    groups: list[str]
    local: bool
    source: str
    vars: dict[str, str]


class FindingRecord(TypedDict):
    """One finding (`Finding.as_dict`)."""

    level: str
    signal: str
    resource: str
    summary: str
    line: int | None
    evidence: str | None
    host: str
    collector: str
    fact: str | None
    value: float | int | None


class Evidence(TypedDict):
    """What one command printed on one host, as files beside the journal
    (`EvidenceRecord.as_dict`). Collections and remediations both carry these
    fields at the top of their event; the paths are relative to the incident."""

    host: str
    collector: str
    command: str
    started_at: str
    ended_at: str
    duration_s: float
    exit_code: int | None
    status: str
    stdout: str
    stderr: str
    meta: str
    stdout_bytes: int
    stderr_bytes: int
    truncated: bool
    sha256: str
    attempts: list[dict[str, Any]]
    message: str | None
    stdout_kept: int
    stderr_kept: int


def evidence_of(data: dict[str, Any]) -> dict[str, Any]:
    """The evidence fields of a `collector.ran` or `command.executed` event; {} when
    it has none. Journals written before evidence had one shape nest a
    remediation's under "evidence"; they are read too."""
    if "evidence" in data and isinstance(data.get("evidence"), dict | None):
        return dict(data.get("evidence") or {})
    return data if data.get("stdout") else {}


# -- one payload per event type -----------------------------------------------------------


class PlaybookSnapshot(TypedDict):
    name: str
    source: str
    sha256: str
    bundled: bool
    definition: dict[str, Any]


class Opened(TypedDict):
    # How it came to be: "new" (by hand: `runbook new`, the app), "collect" (an
    # ad-hoc `runbook collect HOST`), "alert" (Alertmanager), "drill".
    origin: str
    title: str
    severity: str
    drill: bool
    commander: str | None
    hosts: list[HostRecord]
    alert: AlertRecord | None
    detected_at: str | None
    playbook: PlaybookSnapshot


class Detected(TypedDict):
    at: str | None
    source: str


class SeverityChanged(TypedDict):
    severity: str
    reason: str | None


class RoleAssigned(TypedDict):
    role: str
    name: str


class HostsAdded(TypedDict):
    hosts: list[HostRecord]


class StepStarted(TypedDict):
    step: str


class StepDone(TypedDict):
    step: str
    comment: NotRequired[str]


class StepSkipped(TypedDict):
    step: str
    reason: str


class AnswerRecorded(TypedDict):
    step: str
    text: str
    records: str | None  # the incident field the answer fills in, if any


class NoteAdded(TypedDict):
    text: str


class CollectorRan(Evidence):
    step: str | None
    findings: list[FindingRecord]
    source: NotRequired[str]  # "detect" when a detection source recorded it


class HostFailed(TypedDict):
    host: str
    state: str
    reason: str
    hint: str | None
    step: str | None


class CommandProposed(TypedDict):
    command_id: str
    step: str
    title: str
    template: str
    command: str  # one line for the timeline
    commands: dict[str, str]  # host -> the exact command it runs
    hosts: list[str]
    selector: str | None
    rollback: str | None
    review_required: bool
    needs_root: bool
    timeout: float | None
    survives_disconnect: bool


class CommandApproved(TypedDict):
    command_id: str
    step: str | None
    approver: str


class CommandStarted(TypedDict):
    command_id: str
    step: str | None
    hosts: list[str]
    confirmation: str
    approvers: list[str]
    survives_disconnect: bool


class CommandOutcome(TypedDict):
    """One host's outcome of a remediation."""

    command_id: str
    step: str | None
    host: str
    command: str
    exit_code: int | None
    status: str
    timed_out: bool
    message: str | None
    hint: str | None
    approvers: list[str]
    proposed_by: str


class CommandExecuted(CommandOutcome, Evidence):
    """The outcome with what the host printed: every host runbook tried to run
    the command on, reached or not, has its evidence."""


class AnnouncementSent(TypedDict):
    step: str
    purpose: str
    channel: str
    text: str
    delivered: bool
    error: str | None


class ShellOpened(TypedDict):
    host: str
    command: str  # the exact command line that ran in the operator's terminal
    capture: str | None  # the typescript being written, relative to the incident


class ShellClosed(TypedDict):
    host: str
    exit_status: int | None  # None: it could not start, or runbook was interrupted
    duration_s: float
    capture: str | None
    capture_bytes: int | None


class AlertRecord(TypedDict):
    """An Alertmanager alert as filed (`detect.alertmanager.alert_record`)."""

    source: str
    group_key: str
    receiver: str
    fingerprint: str
    status: str
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str | None
    ends_at: str | None
    generator_url: str


class Resolved(TypedDict):
    summary: str | None


class Closed(TypedDict):
    pass


class Reopened(TypedDict):
    reason: str


class LabHost(TypedDict):
    name: str
    address: str
    port: int


class DrillStarted(TypedDict):
    scenario: str
    definition: dict[str, Any]
    source: str
    seed: int
    lab: list[LabHost]
    fault: dict[str, Any]
    simulated: str | None  # what the fault does instead where it cannot be real here


class DrillDiagnosed(TypedDict):
    cause: str
    matched: bool
    why: str


class DrillStopped(TypedDict):
    fault_undone: bool
    teardown: list[str]
    by: NotRequired[str]  # "cleanup" when `drill cleanup` found it left over


class DrillAborted(TypedDict):
    reason: str


PAYLOADS: dict[EventType, Any] = {
    EventType.OPENED: Opened,
    EventType.DETECTED: Detected,
    EventType.SEVERITY_CHANGED: SeverityChanged,
    EventType.ROLE_ASSIGNED: RoleAssigned,
    EventType.HOSTS_ADDED: HostsAdded,
    EventType.STEP_STARTED: StepStarted,
    EventType.STEP_DONE: StepDone,
    EventType.STEP_SKIPPED: StepSkipped,
    EventType.ANSWER_RECORDED: AnswerRecorded,
    EventType.NOTE_ADDED: NoteAdded,
    EventType.COLLECTOR_RAN: CollectorRan,
    EventType.HOST_FAILED: HostFailed,
    EventType.COMMAND_PROPOSED: CommandProposed,
    EventType.COMMAND_APPROVED: CommandApproved,
    EventType.COMMAND_STARTED: CommandStarted,
    # Without evidence only when recording it was itself what failed (a bug).
    EventType.COMMAND_EXECUTED: CommandExecuted | CommandOutcome,  # type: ignore[dict-item]
    EventType.ANNOUNCEMENT_SENT: AnnouncementSent,
    EventType.SHELL_OPENED: ShellOpened,
    EventType.SHELL_CLOSED: ShellClosed,
    EventType.ALERT_RECEIVED: AlertRecord,
    EventType.ALERT_RESOLVED: AlertRecord,
    EventType.RESOLVED: Resolved,
    EventType.CLOSED: Closed,
    EventType.REOPENED: Reopened,
    EventType.DRILL_STARTED: DrillStarted,
    EventType.DRILL_DIAGNOSED: DrillDiagnosed,
    EventType.DRILL_STOPPED: DrillStopped,
    EventType.DRILL_ABORTED: DrillAborted,
}


# A field no declaration names is a mismatch too. TypedDict subclasses do not
# inherit a class attribute, so each declaration is given the setting.
for _payload in [value for value in list(globals().values())
                 if isinstance(value, type) and hasattr(value, "__required_keys__")]:
    _payload.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]


# -- checking what is written ---------------------------------------------------------------


class PayloadMismatch(ValueError):
    """An event's data is not what its type declares: a bug in the writer."""


def strict() -> bool:
    """Whether a mismatch fails the write (the test suite) or is only logged."""
    return os.environ.get("RUNBOOK_STRICT_EVENTS") == "1"


def payload_problems(type: str, data: dict[str, Any]) -> list[str]:
    """What is wrong with `data` for an event of `type`, one line per problem;
    [] when it fits. An event type this version does not know is not checked."""
    try:
        kind = EventType(type)
    except ValueError:
        return []
    from pydantic import ValidationError

    try:
        _adapter(kind).validate_python(data, strict=True)
    except ValidationError as exc:
        return [f"{'.'.join(str(p) for p in error['loc']) or '(data)'}: {error['msg']}"
                for error in exc.errors()]
    return []


def check_payload(type: str, data: dict[str, Any]) -> None:
    """Raise PayloadMismatch when `data` does not fit `type`."""
    problems = payload_problems(type, data)
    if problems:
        raise PayloadMismatch(f"{type} event data does not match its declaration: "
                              + "; ".join(problems))


@cache
def _adapter(kind: EventType) -> TypeAdapter[Any]:
    # Built on first use: pydantic is already loaded by every command that writes,
    # but building 26 adapters would slow the ones that only read.
    from pydantic import TypeAdapter

    return TypeAdapter(PAYLOADS[kind])
