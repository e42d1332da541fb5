"""A drill's life: start (lab up, fault in, incident opened), diagnose, stop.

The drill incident's journal records the drill too (`drill.*` events, which
the incident fold keeps in the timeline and otherwise ignores): the scenario
as it was, the seed, the lab's hosts and the fault. Scoring and the report
read nothing else.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.clock import utc_now_iso
from runbook.connect_settings import ConnectSettings
from runbook.drill.faults import FAULTS, FaultContext
from runbook.drill.lab import (
    DrillLab,
    DrillLabError,
    LabState,
    drill_store,
    drills_root,
    find_state,
    require_root,
    teardown,
)
from runbook.drill.scenario import Scenario, diagnosis_matches, find_scenario
from runbook.errors import RunbookError
from runbook.incident import EventType, IncidentState, events
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook


@dataclass
class StartedDrill:
    id: str
    scenario: Scenario
    seed: int
    briefing: str
    inventory: Path
    known_hosts: Path
    lab: DrillLab

    def connect(self) -> ConnectSettings:
        """What the app needs to reach this lab and nothing else."""
        return lab_connect(self.inventory, self.known_hosts)


def lab_connect(inventory: Path, known_hosts: Path) -> ConnectSettings:
    # Only the lab's inventory and known_hosts, never accept a new key: a host
    # outside the lab fails the host-key check even if someone adds it to the incident.
    return ConnectSettings(inventories=(inventory,), known_hosts=(known_hosts,),
                           accept_new=False, connect_timeout=5.0)


def start_drill(name: str, actor: str, seed: int | None = None) -> StartedDrill:
    loaded = find_scenario(name)
    scenario = loaded.scenario
    require_root()  # before anything is created: no half-opened drill without a lab
    seed = secrets.randbelow(2**31) if seed is None else seed
    rng = random.Random(seed)
    playbook = find_playbook(scenario.playbook)
    store = drill_store()
    # The scenario's alert, in the shape a real Alertmanager alert is filed in, so
    # the playbook's templates read it the same way.
    labels = dict(scenario.alert.labels)
    alert = events.AlertRecord(
        source="drill", group_key="", receiver="", fingerprint="", status="firing",
        alertname=labels.get("alertname", ""), labels=labels,
        annotations=dict(scenario.alert.annotations), starts_at=utc_now_iso("microseconds"),
        ends_at=None, generator_url="")
    incident = store.create(playbook=playbook, hosts=[], title=f"DRILL: {scenario.title}",
                            actor=actor, severity=scenario.severity, drill=True, alert=alert,
                            origin="drill")
    directory = drills_root() / incident.id
    state = LabState.create(directory, incident_id=incident.id, scenario=scenario.name,
                            seed=seed, store=str(store.root))
    lab = DrillLab(directory, state, scenario.lab.host_specs())
    try:
        lab.start(rng)
        ctx = FaultContext(state, scenario.fault_host, dict(scenario.fault.params), rng, lab)
        kind = FAULTS[scenario.fault.kind]
        state.update(fault={"kind": scenario.fault.kind, "host": scenario.fault_host,
                            "params": dict(scenario.fault.params)})
        host_vars = {scenario.fault_host: kind.prepare(ctx)}
        ctx.save()
        hosts = lab.hosts(host_vars)
        inventory = lab.write_inventory(hosts)
        incident.append(EventType.HOSTS_ADDED,
                        events.HostsAdded(hosts=[h.as_record() for h in hosts]), actor)
        kind.inject(ctx)
        ctx.save()
        state.update(status="running")
        incident.append(EventType.DRILL_STARTED, events.DrillStarted(
            scenario=scenario.name, definition=scenario.model_dump(mode="json"),
            source=str(loaded.path), seed=seed,
            lab=[events.LabHost(name=h.name, address=h.address, port=h.port) for h in hosts],
            fault={k: v for k, v in state.data["fault"].items() if k != "params"},
            simulated=scenario.fault.simulated), actor)
    except BaseException as exc:
        teardown(state)
        incident.append(EventType.DRILL_ABORTED,
                        events.DrillAborted(reason=str(exc) or type(exc).__name__), actor)
        raise
    assert lab.sshd is not None
    return StartedDrill(incident.id, scenario, seed, scenario.briefing, inventory,
                        lab.sshd.known_hosts, lab)


@dataclass
class AppLaunch:
    """What the app is given for a drill: its store, the lab's files only, and a
    RUNBOOK_HOME of the lab's own (so the team's announcement channels, real
    inventory and logs are out of reach while the drill runs)."""

    store: IncidentStore
    incident_id: str
    connect: ConnectSettings
    home: Path


def app_launch(drill_id: str) -> AppLaunch:
    incident = drill_incident(drill_id)
    data = find_state(incident.id).data
    home = Path(data["directory"]) / "home"
    home.mkdir(parents=True, exist_ok=True)
    return AppLaunch(incident.store, incident.id,
                     lab_connect(Path(data["inventory"]), Path(data["known_hosts"])), home)


def drill_incident(drill_id: str) -> Incident:
    store = drill_store()
    return Incident(store, store.resolve_id(drill_id))


def drill_scenario(state: IncidentState) -> Scenario:
    """The scenario as it was when the drill started (from the journal)."""
    started = started_event(state)
    return Scenario.model_validate(started["definition"])


def started_event(state: IncidentState) -> dict[str, Any]:
    for event in state.events:
        if event.type == EventType.DRILL_STARTED:
            return event.data
    raise RunbookError(f"{state.id} is not a started drill",
                       "start one with `runbook drill start NAME`")


def fault_host(state: IncidentState) -> str | None:
    """The lab host the drill's fault was put on (from `drill.started`)."""
    host = (started_event(state).get("fault") or {}).get("host")
    return str(host) if host else None


def diagnose(drill_id: str, cause: str, actor: str) -> tuple[bool, str]:
    """Record the trainee's stated root cause, chosen (an id) or typed."""
    incident = drill_incident(drill_id)
    state = incident.state()
    scenario = drill_scenario(state)
    matched, why = diagnosis_matches(scenario, cause, fault_host(state))
    incident.append(EventType.DRILL_DIAGNOSED,
                    events.DrillDiagnosed(cause=cause, matched=matched, why=why), actor)
    return matched, why


@dataclass
class StoppedDrill:
    id: str
    undone: bool
    teardown_lines: list[str]


def stop_drill(drill_id: str, actor: str) -> StoppedDrill:
    """Undo the fault, stop the lab, remove its files; the journal stays."""
    incident = drill_incident(drill_id)
    try:
        state = find_state(incident.id)
    except DrillLabError:
        raise DrillLabError(f"drill {incident.id} has no running lab (already stopped?)",
                            "`runbook drill cleanup` removes anything left over") from None
    undone = False
    fault = dict(state.data.get("fault") or {})
    if fault.get("kind") in FAULTS:
        ctx = FaultContext(state, str(fault.get("host")), dict(fault.get("params") or {}),
                           random.Random(), None, fault)
        try:
            FAULTS[fault["kind"]].undo(ctx)
            undone = True
        except Exception:  # noqa: BLE001 - teardown removes it anyway
            undone = False
    done = teardown(state)
    incident.append(EventType.DRILL_STOPPED,
                    events.DrillStopped(fault_undone=undone, teardown=done.lines()), actor)
    return StoppedDrill(incident.id, undone, done.lines())


def cleanup() -> list[tuple[str, list[str]]]:
    """Every drill's leftovers, whatever state it was left in (a crash, kill -9)."""
    from runbook.drill.lab import drill_states, marked_processes

    results = []
    for state in drill_states():
        lines = teardown(state).lines()
        store = drill_store()
        incident_id = state.data.get("incident_id")
        if incident_id and (store.directory(incident_id) / "events.jsonl").exists():
            Incident(store, incident_id).append(EventType.DRILL_STOPPED, events.DrillStopped(
                fault_undone=False, teardown=lines, by="cleanup"), "runbook-cleanup")
        results.append((state.drill_id, lines))
    strays = []
    for process in marked_processes():
        try:
            strays.append(f"stopped unrecorded drill process {process.pid} "
                          f"({' '.join(process.cmdline()[:3])})")
            process.kill()
        except Exception:  # noqa: BLE001 - gone already
            continue
    if strays:
        results.append(("(no state file)", strays))
    return results


def running_drills() -> list[LabState]:
    from runbook.drill.lab import drill_states

    return [s for s in drill_states() if s.data.get("status") == "running"]
