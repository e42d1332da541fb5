"""`runbook collect` as a use case: which incident, which hosts, which collectors,
and where the results are recorded.

Front ends (CLI, TUI) call `plan_collection` and then run the plan with their
own progress observer. The engine reports each run to a `JournalRecorder`,
which appends it to the incident's journal; the engine never writes the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runbook.clock import utc_iso
from runbook.connect_settings import ConnectSettings
from runbook.engine.catalog import Collector, expand
from runbook.engine.results import CollectorRun
from runbook.engine.runner import (
    DEFAULT_PER_HOST,
    Collection,
    CollectionReport,
    CollectOptions,
    Observer,
)
from runbook.errors import HostSelectionError, RunbookError
from runbook.hosts import Host
from runbook.incident import EventType, IncidentState, events
from runbook.incident.store import Incident, IncidentStore
from runbook.inventory import Inventory, select_among
from runbook.playbook import find_playbook
from runbook.transport.base import HostError

DEFAULT_PLAYBOOK = "generic-host"


@dataclass
class CollectRequest:
    # Selectors. With an incident they pick among its journalled hosts (address,
    # port, user, jump as recorded); none given means all of them.
    hosts: list[str] = field(default_factory=list)
    # With an incident: may a selector that names none of its hosts add hosts from
    # the inventory (`runbook collect --incident ID web3`)? A playbook step may not.
    add_hosts: bool = True
    incident_id: str | None = None
    bundle: str | None = None
    collectors: list[str] = field(default_factory=list)
    connect: ConnectSettings = field(default_factory=ConnectSettings)
    parallel: int = 64
    per_host: int = DEFAULT_PER_HOST
    max_output: int = 64 * 1024 * 1024
    actor: str = "runbook"
    step: str | None = None
    app_logs: list[str] = field(default_factory=list)


@dataclass
class JournalRecorder:
    """Where a collection's results go: the incident's journal, as they happen."""

    incident: Incident
    actor: str = "runbook"
    step: str | None = None

    @property
    def evidence_root(self) -> Path:
        return self.incident.store.directory(self.incident.id)

    def host_failed(self, host: Host, error: HostError) -> None:
        self.incident.append(EventType.HOST_FAILED, events.HostFailed(
            host=host.name, state=str(error.state), reason=error.reason, hint=error.hint,
            step=self.step), self.actor)

    def ran(self, run: CollectorRun) -> None:
        assert run.evidence is not None
        self.incident.append(EventType.COLLECTOR_RAN, events.CollectorRan(
            **run.evidence.as_dict(), step=self.step,
            findings=[f.as_dict() for f in run.findings]), self.actor)


@dataclass
class CollectionPlan:
    incident: Incident
    hosts: list[Host]
    collectors: list[Collector]
    options: CollectOptions
    actor: str = "runbook"
    step: str | None = None
    opened: bool = False  # the incident was opened for this collection

    def collection(self, observer: Observer | None = None) -> Collection:
        recorder = JournalRecorder(self.incident, self.actor, self.step)
        return Collection(recorder, self.hosts, self.collectors, self.options, observer)


@dataclass
class CollectOutcome:
    incident_id: str
    report: CollectionReport

    def as_json(self) -> dict[str, Any]:
        return {
            "incident": self.incident_id,
            "all_answered": self.report.all_answered,
            "started_at": utc_iso(self.report.started_at, "microseconds"),
            "ended_at": utc_iso(self.report.ended_at, "microseconds"),
            "hosts": [{
                "name": h.host.name, "state": str(h.state), "message": h.message,
                "hint": h.hint,
                "runs": [{
                    "collector": r.collector, "status": r.status, "exit_code": r.exit_code,
                    "message": r.message,
                    "truncated": bool(r.evidence and r.evidence.truncated),
                    "evidence": r.evidence.as_dict() if r.evidence else None,
                    "findings": [f.as_dict() for f in r.findings],
                } for r in h.runs],
            } for h in self.report.hosts],
        }


def with_app_logs(host: Host, paths: list[str]) -> Host:
    """The host with extra application log files for the app-logs collector."""
    for path in paths:
        if not path.startswith("/") or any(ord(c) < 32 for c in path):
            raise RunbookError(f"app log {path!r} is not an absolute path",
                               "give full paths like /var/log/app/error.log")
    logs = list(dict.fromkeys([*host.var_list("app_logs"), *paths]))
    return replace(host, vars={**host.vars, "app_logs": "\n".join(logs) + "\n"})


def plan_collection(store: IncidentStore, request: CollectRequest) -> CollectionPlan:
    lookup = expand(request.collectors, request.bundle or (None if request.collectors
                                                           else "full"))
    if lookup.unknown:
        raise RunbookError(f"unknown collector: {', '.join(lookup.unknown)}",
                           "see `runbook collectors`")
    inventory = request.connect.inventory()
    incident: Incident | None = None
    opened = False
    if request.incident_id:
        incident = Incident(store, store.resolve_id(request.incident_id))
        state = incident.state()
        if str(state.status) == "closed":
            raise RunbookError(f"incident {incident.id} is closed",
                               "reopen it, or collect without --incident")
        hosts = incident_hosts(state, request, inventory)
        if state.drill:
            # A drill may only ever touch its own lab, whichever front end asks.
            from runbook.drill.guard import refuse_outside_lab

            refuse_outside_lab(state, hosts)
        known = {h.name for h in state.hosts}
        added = [h for h in hosts if h.name not in known]
        if added:
            incident.append(EventType.HOSTS_ADDED,
                            events.HostsAdded(hosts=[h.as_record() for h in added]),
                            request.actor)
    else:
        if not request.hosts:
            raise RunbookError("name the hosts to collect from",
                               "e.g. `runbook collect localhost` or `runbook collect role:web`")
        hosts = inventory.select(request.hosts)
        names = ", ".join(h.name for h in hosts[:3]) + (" …" if len(hosts) > 3 else "")
        incident = store.create(playbook=find_playbook(DEFAULT_PLAYBOOK), hosts=hosts,
                                title=f"Collection on {names}", actor=request.actor,
                                origin="collect")
        opened = True
    if not hosts:
        raise RunbookError("no hosts to collect from")
    if request.app_logs:
        hosts = [with_app_logs(h, request.app_logs) for h in hosts]
    options = CollectOptions(
        ssh=request.connect.ssh_options(), parallel_hosts=request.parallel,
        per_host=request.per_host, max_output=request.max_output,
        resolve_jump=request.connect.jump_resolver(inventory))
    return CollectionPlan(incident, hosts, list(lookup.collectors), options, request.actor,
                          request.step, opened)


def incident_hosts(state: IncidentState, request: CollectRequest,
                   inventory: Inventory) -> list[Host]:
    """The hosts a collection for an incident runs on: its own, exactly as they
    were journalled, picked by the request's selectors. A selector that picks none
    of them adds hosts from the inventory where the request allows it, and is an
    error where it does not: it never falls back to every host."""
    if not request.hosts:
        return list(state.hosts)
    picked: dict[str, Host] = {}
    for selector in request.hosts:
        try:
            found = select_among(state.hosts, [selector])
        except HostSelectionError as exc:
            if not request.add_hosts:
                names = ", ".join(h.name for h in state.hosts) or "none"
                raise HostSelectionError(
                    f"{selector!r} matches none of incident {state.id}'s hosts ({names}); "
                    "nothing was run", exc.hint) from None
            found = inventory.select([selector])
        for host in found:
            picked.setdefault(host.name, host)
    return list(picked.values())
