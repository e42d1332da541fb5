"""File a detection source's findings into an incident, the way collectors do.

A source run is journalled as a `collector.ran` event (the same shape the
engine writes, plus `"source": "detect"`), with what it read kept as evidence
under `evidence/<host>/`: the timeline, the TUI's evidence list and the
postmortem need no new code to show it. The first firing (non-info) finding
of an incident sets its detected-at time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from runbook.errors import RunbookError
from runbook.evidence import EvidenceWriter
from runbook.findings import Finding, Level
from runbook.hosts import is_valid_host_name
from runbook.incident import EventType, Status, events
from runbook.incident.journal import Event
from runbook.incident.store import Incident

OPERATOR = "operator"  # evidence folder for a source measured from the operator's side


def target_host(url_or_name: str) -> str:
    """A name safe for a folder and a journal field: the URL's host when it is a
    plain host name, else `operator`."""
    host = urlsplit(url_or_name).hostname if "://" in url_or_name else url_or_name
    return host if host and is_valid_host_name(host) else OPERATOR


def redact_url(url: str) -> str:
    """The URL without user:password@ (and without a query string, which often
    carries tokens), for the journal and evidence."""
    parts = urlsplit(url)
    if not parts.scheme:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    return f"{parts.scheme}://{netloc}{parts.path}" + ("?…" if parts.query else "")


def firing(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level != Level.INFO]


def record_detection(incident: Incident, *, source: str, target: str, command: str,
                     findings: list[Finding], raw: bytes, actor: str, ok: bool = True,
                     message: str | None = None, step: str | None = None,
                     fired_at: datetime | None = None) -> Event:
    """Journal one run of a source with its evidence; returns the event.
    `target` is a host name or URL; `fired_at` is when the first firing finding
    was seen (default: now)."""
    state = incident.state()
    if state.status == Status.CLOSED:
        raise RunbookError(f"incident {incident.id} is closed",
                           f"reopen it to record more: `runbook reopen {incident.id} --reason ...`")
    host = target_host(target)
    writer = EvidenceWriter(incident.store.directory(incident.id), host, source)
    writer.stdout(raw)
    evidence = writer.finish(command=command, exit_code=0 if ok else 1,
                             status="ok" if ok else "failed", attempts=[], message=message)
    event = incident.append(EventType.COLLECTOR_RAN, events.CollectorRan(
        **evidence.as_dict(), step=step, source="detect",
        findings=[f.on(f.host or host, source).as_dict() for f in findings]), actor)
    if firing(findings) and state.detected_at is None:
        incident.mark_detected(fired_at or datetime.now(UTC), f"{source} on {target}", actor)
    return event
