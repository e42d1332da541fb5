"""Alertmanager's webhook (payload version 4) in, incidents out.

`AlertReceiver.receive(payload)` is the whole decision, without HTTP (see
listener.py for the server):

- a firing alert whose notification group (`groupKey`) has an open incident is
  added to it as `alert.received`; otherwise it opens an incident (playbook,
  hosts and severity from alerts.yaml rules, see alert_rules.py), detected at
  the alert's `startsAt`;
- a resolved alert is recorded in its group's incident as `alert.resolved`;
- Alertmanager repeats the whole group in every notification, so an alert
  already recorded in the same status is not recorded again.

Label values come from whoever can reach Alertmanager: they are stored as
data, never put into a shell command, and become hosts only when they pass
`is_valid_host_name` (otherwise the alert is recorded without hosts, with a
warning).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runbook.clock import utc_iso
from runbook.detect.alert_rules import AlertRule, AlertRules
from runbook.errors import RunbookError
from runbook.hosts import Host, is_valid_host_name
from runbook.incident import EventType, Status
from runbook.incident.events import AlertRecord
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.sanitize import clean_line
from runbook.templating import render_text

SOURCE = "alertmanager"
_PORT = re.compile(r"^(?P<host>\[[^\]]+\]|[^:]+):\d+$")


class AmAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # noqa: N815 - Alertmanager's field names
    endsAt: datetime | None = None  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = ""


class AmWebhook(BaseModel):
    model_config = ConfigDict(extra="ignore")
    version: Literal["4"]
    groupKey: str = Field(min_length=1)  # noqa: N815
    status: Literal["firing", "resolved"]
    receiver: str = ""
    truncatedAlerts: int = 0  # noqa: N815
    groupLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    commonLabels: dict[str, str] = Field(default_factory=dict)  # noqa: N815
    externalURL: str = ""  # noqa: N815
    alerts: list[AmAlert]


# Alertmanager's webhook nests four levels deep; JSON nested far deeper is an
# attack on the parser (a recursion that ends the thread), refused before parsing.
MAX_NESTING = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(body: bytes, stop_at: int = MAX_NESTING) -> int:
    """How deep the JSON's arrays and objects nest (strings set aside), counted
    no further than `stop_at`."""
    depth = deepest = 0
    for bracket in _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET):
        depth += 1 if bracket in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > stop_at:
                break
    return deepest


def parse_payload(body: bytes) -> AmWebhook:
    """The webhook body, validated; a RunbookError saying what is wrong otherwise."""
    import json

    if nesting_depth(body) > MAX_NESTING:
        raise RunbookError(f"JSON nested more than {MAX_NESTING} levels deep: "
                           "not an Alertmanager webhook")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RunbookError(f"malformed JSON: {exc}") from None
    try:
        return AmWebhook.model_validate(document)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RunbookError(f"not an Alertmanager v4 webhook: {where}: {first['msg']}") from None


@dataclass
class AlertOutcome:
    """What happened to one alert: for the listener's output and its HTTP reply."""

    status: str
    alertname: str
    labels: dict[str, str]
    incident: str | None
    action: str  # opened, added, resolved, repeated, ignored
    hosts: list[str] = field(default_factory=list)
    playbook: str | None = None
    warnings: list[str] = field(default_factory=list)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {"received_at": utc_iso(self.received_at, "microseconds"),
                "status": self.status, "alertname": self.alertname, "labels": self.labels,
                "incident": self.incident, "action": self.action, "hosts": self.hosts,
                "playbook": self.playbook, "warnings": self.warnings}

    def line(self) -> str:
        """One line for a terminal; label values are cleaned of control sequences."""
        where = f"-> {self.incident} ({self.action})" if self.incident else f"({self.action})"
        hosts = f" hosts {','.join(self.hosts)}" if self.hosts else ""
        text = (f"{self.received_at:%Y-%m-%dT%H:%M:%SZ} {self.status:<8} {self.alertname} "
                f"{where}{hosts}" + "".join(f"; warning: {w}" for w in self.warnings))
        return clean_line(text)


def alert_host(labels: dict[str, str]) -> str | None:
    """The host an alert is about: `instance` without its port, or `host`, `hostname`."""
    for key in ("instance", "host", "hostname"):
        value = labels.get(key, "").strip()
        if value:
            match = _PORT.match(value)
            return (match.group("host") if match else value).strip("[]")
    return None


def alert_record(alert: AmAlert, payload: AmWebhook) -> AlertRecord:
    """The alert as journal data (and the `alert` field of templates)."""
    return AlertRecord(
        source=SOURCE, group_key=payload.groupKey, receiver=payload.receiver,
        fingerprint=alert.fingerprint, status=alert.status,
        alertname=alert.labels.get("alertname", ""), labels=dict(alert.labels),
        annotations=dict(alert.annotations),
        starts_at=_alert_time(alert.startsAt), ends_at=_alert_time(alert.endsAt),
        generator_url=alert.generatorURL)


class AlertReceiver:
    """Files alerts into incidents.

    One webhook is one alert group: its alerts are matched against the group's
    incident once, and what is new is written in one journal write. Webhooks of
    the same group are taken one at a time (two notifications arriving together
    must not open two incidents); webhooks of different groups go on side by
    side, so a 2,000-alert notification never holds up another group's alert.
    """

    def __init__(self, store: IncidentStore, rules: AlertRules, actor: str,
                 select_hosts: Any = None) -> None:
        self.store = store
        self.rules = rules
        self.actor = actor
        self.select_hosts = select_hosts or _ad_hoc_hosts
        self.groups = GroupIndex(store)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def receive(self, payload: AmWebhook) -> list[AlertOutcome]:
        with self._locks_lock:
            lock = self._locks.setdefault(payload.groupKey, threading.Lock())
        with lock:
            return _GroupBatch(self, payload).run()


class GroupIndex:
    """Which incidents were opened for which alert group, read from the journals
    once per process and then kept up to date, instead of every journal being
    replayed for every alert. Incidents opened elsewhere since (another listener
    on the same store) are picked up by looking only at the new directories."""

    def __init__(self, store: IncidentStore) -> None:
        self.store = store
        self._by_group: dict[str, dict[str, datetime]] = {}  # group -> {id: opened at}
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def candidates(self, group_key: str) -> list[str]:
        """The group's incident ids, the most recently opened first."""
        with self._lock:
            for incident_id in self.store.ids():
                if incident_id not in self._seen:
                    self._seen.add(incident_id)
                    state = self.store.load(incident_id)
                    key = (state.alert or {}).get("group_key")
                    if key:
                        self._by_group.setdefault(key, {})[incident_id] = (
                            state.opened_at or datetime.min.replace(tzinfo=UTC))
            opened = self._by_group.get(group_key, {})
            return sorted(opened, key=lambda i: (opened[i], i), reverse=True)

    def opened(self, group_key: str, incident_id: str) -> None:
        with self._lock:
            self._seen.add(incident_id)
            self._by_group.setdefault(group_key, {})[incident_id] = datetime.now(UTC)


class _GroupBatch:
    """One webhook's alerts against its group's incident."""

    def __init__(self, receiver: AlertReceiver, payload: AmWebhook) -> None:
        self.receiver = receiver
        self.payload = payload
        self.incident: Incident | None = None
        self.status: Status | None = None
        self.seen = _LastStatus()
        self.pending: list[tuple[str, dict[str, Any], str]] = []

    def run(self) -> list[AlertOutcome]:
        self._find_incident()
        outcomes = [self._one(alert) for alert in self.payload.alerts]
        self._flush()
        return outcomes

    def _find_incident(self) -> None:
        receiver = self.receiver
        for incident_id in receiver.groups.candidates(self.payload.groupKey):
            state = receiver.store.load(incident_id)
            if state.status in (Status.OPEN, Status.RESOLVED):
                self.incident = Incident(receiver.store, incident_id)
                self.status = state.status
                self.seen = _LastStatus(state.alerts)
                return

    def _one(self, alert: AmAlert) -> AlertOutcome:
        name = alert.labels.get("alertname", "(no alertname)")
        outcome = AlertOutcome(alert.status, name, dict(alert.labels), None, "ignored")
        record = alert_record(alert, self.payload)
        firing = alert.status == "firing"
        # A firing alert goes to an open incident; a resolved one also to a
        # resolved (not closed) one. A group whose incident was resolved fires anew.
        if self.incident is not None and (self.status == Status.OPEN or not firing):
            outcome.incident = self.incident.id
            if self.seen.get(record) == alert.status:
                outcome.action = "repeated"
                return outcome
            kind = EventType.ALERT_RECEIVED if firing else EventType.ALERT_RESOLVED
            self.pending.append((kind, record, self.receiver.actor))
            self.seen.add(record)
            outcome.action = "added" if firing else "resolved"
            return outcome
        if not firing:
            outcome.warnings.append("no incident for this alert group: nothing to record it in")
            return outcome
        self._flush()
        return self._open(alert, record, outcome)

    def _open(self, alert: AmAlert, record: dict[str, Any],
              outcome: AlertOutcome) -> AlertOutcome:
        receiver = self.receiver
        rule = receiver.rules.pick(alert.labels)
        context = _template_context(alert, self.payload)
        hosts = _rule_hosts(receiver.select_hosts, rule, context, outcome.warnings)
        loaded = find_playbook(rule.playbook)
        summary = alert.annotations.get("summary", "").strip()
        title = render_text(rule.title, context) if rule.title else \
            outcome.alertname + (f": {summary}" if summary else "")
        incident = receiver.store.create(
            playbook=loaded, hosts=hosts, title=_one_line(title), actor=receiver.actor,
            severity=rule.severity, alert=record, detected_at=alert.startsAt.astimezone(UTC),
            origin="alert")
        receiver.groups.opened(self.payload.groupKey, incident.id)
        incident.append(EventType.ALERT_RECEIVED, record, receiver.actor)
        self.incident, self.status = incident, Status.OPEN
        self.seen = _LastStatus([record])
        outcome.incident, outcome.action = incident.id, "opened"
        outcome.hosts, outcome.playbook = [h.name for h in hosts], loaded.playbook.name
        return outcome

    def _flush(self) -> None:
        if self.pending and self.incident is not None:
            self.incident.append_many(self.pending)
        self.pending = []


def _rule_hosts(select: Any, rule: AlertRule, context: dict[str, Any],
                warnings: list[str]) -> list[Host]:
    """The hosts a rule's templates name, each refused whole unless it is a
    host name; `select` turns the names into inventory hosts."""
    good: list[str] = []
    for template in rule.hosts:
        try:
            name = render_text(template, context).strip()
        except RunbookError as exc:
            warnings.append(f"hosts template: {exc.message}")
            continue
        if name and is_valid_host_name(name):
            good.append(name)
        elif name:  # refused whole: never split, cleaned or quoted into a host
            warnings.append(f"not a host name, kept as a label only: {name[:80]!r}")
    try:
        return list(select(good)) if good else []
    except RunbookError as exc:
        warnings.append(f"hosts {', '.join(good)}: {exc.message}")
        return []


class _LastStatus:
    """The status each alert last had in the incident: by fingerprint, or by
    labels for an alert without one (as Alertmanager identifies alerts)."""

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self._count = 0
        self._by_fingerprint: dict[str, tuple[int, str]] = {}
        self._by_labels_unprinted: dict[tuple, tuple[int, str]] = {}
        self._by_labels: dict[tuple, tuple[int, str]] = {}
        for record in records:
            self.add(record)

    def add(self, record: dict[str, Any]) -> None:
        self._count += 1
        entry = (self._count, str(record.get("status")))
        labels = _labels_key(record)
        self._by_labels[labels] = entry
        if record.get("fingerprint"):
            self._by_fingerprint[str(record["fingerprint"])] = entry
        else:
            self._by_labels_unprinted[labels] = entry

    def get(self, record: dict[str, Any]) -> str | None:
        labels = _labels_key(record)
        if record.get("fingerprint"):
            found = [e for e in (self._by_fingerprint.get(str(record["fingerprint"])),
                                 self._by_labels_unprinted.get(labels)) if e]
        else:
            found = [e for e in (self._by_labels.get(labels),) if e]
        return max(found)[1] if found else None


def _labels_key(record: dict[str, Any]) -> tuple:
    return tuple(sorted((record.get("labels") or {}).items()))


def _template_context(alert: AmAlert, payload: AmWebhook) -> dict[str, Any]:
    return {"labels": dict(alert.labels), "annotations": dict(alert.annotations),
            "host": alert_host(alert.labels) or "", "alertname": alert.labels.get("alertname", ""),
            "status": alert.status, "group_key": payload.groupKey}


def _ad_hoc_hosts(names: list[str]) -> list[Host]:
    from runbook.inventory import load_inventory

    return load_inventory().select(names)


def _one_line(text: str) -> str:
    line = clean_line(" ".join(text.split()))
    return (line[:197] + "...") if len(line) > 200 else (line or "alert")


def _alert_time(moment: datetime | None) -> str | None:
    if moment is None or moment.year < 2:  # Alertmanager's "zero time" for a firing alert
        return None
    return utc_iso(moment, "microseconds")
