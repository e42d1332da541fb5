"""A drill incident refuses every target outside its lab, before anything runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from runbook.collection.collect import CollectRequest, plan_collection
from runbook.drill.guard import OutsideLab, refuse_outside_lab
from runbook.drill.lab import drill_store
from runbook.drill.session import StartedDrill, start_drill, stop_drill
from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.remediate import execute, propose
from tests.drill.conftest import require_drill_lab


@pytest.fixture(scope="module")
def drill(module_env: None) -> Iterator[StartedDrill]:
    require_drill_lab()
    started = start_drill("disk-full", "tester@lab", seed=3)
    try:
        yield started
    finally:
        stop_drill(started.id, "tester@lab")


def lab_host(drill: StartedDrill) -> Host:
    return drill_store().load(drill.id).hosts[0]


def test_lab_hosts_pass(drill: StartedDrill) -> None:
    state = drill_store().load(drill.id)
    assert state.drill and state.hosts
    assert refuse_outside_lab(state, state.hosts) is None  # raises when refused


@pytest.mark.parametrize("change", [
    {"address": "10.1.2.3"},
    {"address": "db.example.com"},
    {"port": 22},
    {"local": True},
    {"jump": "bastion"},
])
def test_anything_else_is_refused(drill: StartedDrill, change: dict[str, object]) -> None:
    state = drill_store().load(drill.id)
    stranger = replace(lab_host(drill), **change)  # type: ignore[arg-type]
    with pytest.raises(OutsideLab, match="refused"):
        refuse_outside_lab(state, [stranger])


def test_a_real_incident_is_not_checked(drill: StartedDrill) -> None:
    real = IncidentStore().create(playbook=find_playbook("generic-host"),
                                  hosts=[Host("db.example.com", "10.1.2.3")],
                                  title="real", actor="tester@lab")
    assert not real.state().drill
    assert refuse_outside_lab(real.state(), real.state().hosts) is None  # raises when refused


def test_collecting_a_stranger_is_refused_before_anything_is_journalled(
        drill: StartedDrill) -> None:
    before = len(drill_store().load(drill.id).events)
    request = CollectRequest(hosts=["localhost"], incident_id=drill.id, collectors=["uptime"],
                             actor="tester@lab", connect=drill.connect())
    with pytest.raises(OutsideLab, match="localhost"):
        plan_collection(drill_store(), request).collection().run()
    assert len(drill_store().load(drill.id).events) == before


def test_remediation_on_a_stranger_is_refused_before_it_starts(drill: StartedDrill) -> None:
    incident = Incident(drill_store(), drill.id)
    # As if someone slipped a real host into the drill's journal.
    stranger = Host("prod-db1", "10.1.2.3", source="inventory")
    incident.append(EventType.HOSTS_ADDED, {"hosts": [stranger.as_record()]}, "intruder@lab")
    incident.answer("log-file", "/var/log/app/report-writer.log", "tester@lab")
    proposal = propose(incident, "truncate-log", "tester@lab")
    assert "prod-db1" in proposal.commands
    incident.append(EventType.COMMAND_APPROVED, {"command_id": proposal.command_id,
                                                 "step": proposal.step,
                                                 "approver": "reviewer@lab"}, "reviewer@lab")
    with pytest.raises(OutsideLab, match="prod-db1"):
        execute(incident, proposal.command_id, "tester@lab", proposal.confirmation)
    assert not [e for e in incident.state().events if e.type == EventType.COMMAND_STARTED]
