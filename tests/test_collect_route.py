"""Which hosts a collection runs on: the incident's own, as journalled.

A host is journalled once, with its address, port, user and jump host. Every
collection for the incident (a playbook step in the app, `runbook collect
--incident`) reaches the engine with those values, picked by one selector
grammar, and a selector that picks nothing runs nothing and says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runbook.collection.collect import CollectRequest, plan_collection
from runbook.collection.worker import request_to_json
from runbook.connect_settings import ConnectSettings
from runbook.drill.sshd_lab import SshdLab
from runbook.errors import HostSelectionError
from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook
from tests.fleet import lab_hosts, write_inventory

ROOT = Path(__file__).resolve().parent.parent


def incident_with(hosts: list[Host]) -> str:
    incident = IncidentStore().create(playbook=find_playbook("generic-host"), hosts=hosts,
                                      title="route", actor="tester@lab")
    return incident.id


def test_the_journalled_port_user_and_jump_reach_the_engine() -> None:
    journalled = Host(name="127.0.0.5", address="127.0.0.5", port=2222, user="root",
                      jump="bastion", source="ad-hoc")
    incident_id = incident_with([journalled])

    plan = plan_collection(IncidentStore(), CollectRequest(
        hosts=["all"], add_hosts=False, incident_id=incident_id, collectors=["uptime"]))

    [host] = plan.hosts
    assert (host.address, host.port, host.user, host.jump) == ("127.0.0.5", 2222, "root",
                                                               "bastion")


def test_a_step_selector_that_matches_nothing_runs_nothing_and_says_so() -> None:
    hosts = [Host(name="web1", address="10.0.0.1", role="web"),
             Host(name="db1", address="10.0.0.2", role="db")]
    incident_id = incident_with(hosts)

    with pytest.raises(HostSelectionError) as raised:
        plan_collection(IncidentStore(), CollectRequest(
            hosts=["role:cache"], add_hosts=False, incident_id=incident_id,
            collectors=["uptime"]))

    assert "'role:cache' matches none of incident" in raised.value.message
    assert "web1, db1" in raised.value.message and "nothing was run" in raised.value.message
    state = IncidentStore().load(incident_id)
    assert [e for e in state.events if e.type == EventType.COLLECTOR_RAN] == []
    assert [h.name for h in state.hosts] == ["web1", "db1"], "no host was added"


def test_step_selectors_use_the_one_grammar() -> None:
    hosts = [Host(name="web1", address="10.0.0.1", role="web", groups=("eu",)),
             Host(name="web2", address="10.0.0.2", role="web", tags=("canary",)),
             Host(name="db1", address="10.0.0.3", role="db", groups=("eu",))]
    incident_id = incident_with(hosts)

    def picked(selector: str) -> list[str]:
        plan = plan_collection(IncidentStore(), CollectRequest(
            hosts=[selector], add_hosts=False, incident_id=incident_id, collectors=["uptime"]))
        return [h.name for h in plan.hosts]

    assert picked("all") == ["web1", "web2", "db1"]
    assert picked("role:web") == ["web1", "web2"]
    assert picked("eu") == ["web1", "db1"]
    assert picked("tag:canary,db1") == ["web2", "db1"]
    assert picked("web*") == ["web1", "web2"]


def test_the_command_line_may_still_add_a_host_to_the_incident(sshd_fleet: SshdLab,
                                                               tmp_path: Path) -> None:
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    first, second = lab_hosts(sshd_fleet)[:2]
    incident_id = incident_with([first])

    plan = plan_collection(IncidentStore(), CollectRequest(
        hosts=[second.name], incident_id=incident_id, collectors=["uptime"],
        connect=ConnectSettings(inventories=(inventory,))))

    assert [h.name for h in plan.hosts] == [second.name]
    assert [h.name for h in IncidentStore().load(incident_id).hosts] == [first.name,
                                                                         second.name]


def test_the_apps_collection_reaches_a_host_by_its_journalled_port_and_user(
        sshd_fleet: SshdLab) -> None:
    """The app's worker, with no inventory at all: only the journal says that lab2
    listens on a high port and logs in with a lab key, and that is enough."""
    lab2 = lab_hosts(sshd_fleet)[1]
    incident_id = incident_with([lab2])
    request = CollectRequest(hosts=["all"], add_hosts=False, incident_id=incident_id,
                             collectors=["uptime"],
                             connect=ConnectSettings(known_hosts=(sshd_fleet.known_hosts,)),
                             step="confirm-alert")

    worker = subprocess.run([sys.executable, "-m", "runbook.collection.worker",
                             request_to_json(request)], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)

    lines = [json.loads(line) for line in worker.stdout.splitlines()]
    assert lines[0]["plan"]["hosts"] == [lab2.name]
    assert lines[-1]["done"] is True and lines[-1]["all_answered"] is True, lines
    [ran] = [e.data for e in IncidentStore().load(incident_id).events
             if e.type == EventType.COLLECTOR_RAN]
    assert (ran["host"], ran["status"], ran["step"]) == (lab2.name, "ok", "confirm-alert")
