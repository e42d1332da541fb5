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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runbook.detect.alert_rules import AlertRule, AlertRules
from runbook.errors import RunbookError
from runbook.hosts import Host, is_valid_host_name
from runbook.incident import EventType, IncidentState, Status
from runbook.playbook import find_playbook
from runbook.sanitize import clean_line
from runbook.store import Incident, IncidentStore
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


def parse_payload(body: bytes) -> AmWebhook:
    """The webhook body, validated; a RunbookError saying what is wrong otherwise."""
    import json

    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
        return {"received_at": self.received_at.isoformat().replace("+00:00", "Z"),
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


def alert_record(alert: AmAlert, payload: AmWebhook) -> dict[str, Any]:
    """The alert as journal data (and the `alert` field of templates)."""
    return {
        "source": SOURCE, "group_key": payload.groupKey, "receiver": payload.receiver,
        "fingerprint": alert.fingerprint, "status": alert.status,
        "alertname": alert.labels.get("alertname", ""), "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "starts_at": _iso(alert.startsAt), "ends_at": _iso(alert.endsAt),
        "generator_url": alert.generatorURL,
    }


class AlertReceiver:
    """Files alerts into incidents. One at a time: two notifications for the same
    group arriving together must not open two incidents."""

    def __init__(self, store: IncidentStore, rules: AlertRules, actor: str,
                 select_hosts: Any = None) -> None:
        self.store = store
        self.rules = rules
        self.actor = actor
        self._select = select_hosts or _ad_hoc_hosts
        self._lock = threading.Lock()

    def receive(self, payload: AmWebhook) -> list[AlertOutcome]:
        with self._lock:
            return [self._one(alert, payload) for alert in payload.alerts]

    def _one(self, alert: AmAlert, payload: AmWebhook) -> AlertOutcome:
        name = alert.labels.get("alertname", "(no alertname)")
        outcome = AlertOutcome(alert.status, name, dict(alert.labels), None, "ignored")
        record = alert_record(alert, payload)
        incident = self._incident_for(payload.groupKey, alert.status == "firing")
        if incident is not None:
            outcome.incident = incident.id
            state = incident.state()
            if _last_status(state, record) == alert.status:
                outcome.action = "repeated"
                return outcome
            kind = EventType.ALERT_RECEIVED if alert.status == "firing" \
                else EventType.ALERT_RESOLVED
            incident.append(kind, record, self.actor)
            outcome.action = "added" if alert.status == "firing" else "resolved"
            return outcome
        if alert.status == "resolved":
            outcome.warnings.append("no incident for this alert group: nothing to record it in")
            return outcome
        return self._open(alert, payload, record, outcome)

    def _open(self, alert: AmAlert, payload: AmWebhook, record: dict[str, Any],
              outcome: AlertOutcome) -> AlertOutcome:
        rule = self.rules.pick(alert.labels)
        context = _template_context(alert, payload)
        hosts = self._hosts(rule, context, outcome.warnings)
        loaded = find_playbook(rule.playbook)
        summary = alert.annotations.get("summary", "").strip()
        title = render_text(rule.title, context) if rule.title else \
            outcome.alertname + (f": {summary}" if summary else "")
        incident = self.store.create(
            playbook=loaded, hosts=hosts, title=_one_line(title), actor=self.actor,
            severity=rule.severity, alert=record, detected_at=alert.startsAt.astimezone(UTC))
        incident.append(EventType.ALERT_RECEIVED, record, self.actor)
        outcome.incident, outcome.action = incident.id, "opened"
        outcome.hosts, outcome.playbook = [h.name for h in hosts], loaded.playbook.name
        return outcome

    def _hosts(self, rule: AlertRule, context: dict[str, Any], warnings: list[str]) -> list[Host]:
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
            return list(self._select(good)) if good else []
        except RunbookError as exc:
            warnings.append(f"hosts {', '.join(good)}: {exc.message}")
            return []

    def _incident_for(self, group_key: str, firing: bool) -> Incident | None:
        """The newest incident of this alert group: open for a firing alert,
        open or resolved (not closed) for a resolved one."""
        wanted = (Status.OPEN,) if firing else (Status.OPEN, Status.RESOLVED)
        matches = [s for s in self.store.all()
                   if s.status in wanted and (s.alert or {}).get("group_key") == group_key]
        if not matches:
            return None
        newest = max(matches, key=lambda s: s.opened_at or datetime.min.replace(tzinfo=UTC))
        return Incident(self.store, newest.id)


def _last_status(state: IncidentState, record: dict[str, Any]) -> str | None:
    """The status this alert last had in the incident (by fingerprint, else labels)."""
    def same(other: dict[str, Any]) -> bool:
        if record["fingerprint"] and other.get("fingerprint"):
            return bool(other["fingerprint"] == record["fingerprint"])
        return bool(other.get("labels") == record["labels"])

    found = [a for a in state.alerts if same(a)]
    return str(found[-1].get("status")) if found else None


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


def _iso(moment: datetime | None) -> str | None:
    if moment is None or moment.year < 2:  # Alertmanager's "zero time" for a firing alert
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
