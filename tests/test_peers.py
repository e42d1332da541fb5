"""A host compared with its peers. The df outputs are real captures of one ext4
filesystem filled to three levels (tests/data/outputs/df/peers/README.md),
journalled as three hosts' runs the way a collection records them."""

from __future__ import annotations

from pathlib import Path

from runbook.findings import Level
from runbook.hosts import Host
from runbook.incident.store import Incident, IncidentStore
from runbook.peers import peer_findings
from runbook.playbook import find_playbook
from tests.conftest import record_collector_run

PEERS = Path(__file__).parent / "data" / "outputs" / "df" / "peers"


def incident_with(hosts: dict[str, tuple[str, str]]) -> Incident:
    """hosts: name -> (role, capture file)."""
    incident = IncidentStore().create(
        playbook=find_playbook("generic-host"), title="peers",
        hosts=[Host(name, f"10.0.0.{i}", role=role) for i, (name, (role, _)) in
               enumerate(hosts.items(), 1)], actor="tester@lab")
    for name, (_, capture) in hosts.items():
        record_collector_run(incident, name, "df", (PEERS / capture).read_bytes())
    return incident


def test_the_one_host_unlike_its_peers_is_named_and_only_it() -> None:
    incident = incident_with({"web1": ("web", "df-hP-var-43.txt"),
                              "web2": ("web", "df-hP-var-97.txt"),
                              "web3": ("web", "df-hP-var-47.txt")})
    found = peer_findings(incident.state(), incident.store.directory(incident.id))
    [odd] = [f for f in found if f.level != Level.INFO]
    assert odd.host == "web2" and odd.resource == "disk:/mnt/peer-var"
    assert odd.summary == "web2: /mnt/peer-var 97% used; its 2 peers in role web: 43–47%"
    assert odd.evidence is not None and odd.evidence.endswith("97% /mnt/peer-var")
    # The filesystems the three share at the same level are not findings.
    assert all(f.resource == "disk:/mnt/peer-var" for f in found)


def test_two_hosts_are_too_few_to_compare_and_it_says_so() -> None:
    incident = incident_with({"web1": ("web", "df-hP-var-43.txt"),
                              "web2": ("web", "df-hP-var-97.txt"),
                              "db1": ("db", "df-hP-var-47.txt")})
    found = peer_findings(incident.state(), incident.store.directory(incident.id))
    assert not [f for f in found if f.level != Level.INFO]
    assert [f.summary for f in found] == [
        "only 2 hosts in role web have df output (web1, web2): 3 are needed to tell which "
        "one is odd, so they were not compared"]


LOAD = Path(__file__).parent / "data" / "outputs" / "load"


def test_memory_and_load_are_compared_too_and_name_only_the_odd_host() -> None:
    """Real captures of this machine: app2's are from under resident memory and
    CPU hogs (tests/data/outputs/load/README.md), its twins' from quiet moments."""
    incident = IncidentStore().create(
        playbook=find_playbook("generic-host"), title="peers",
        hosts=[Host(f"app{i}", f"10.0.1.{i}", role="app") for i in (1, 2, 3)],
        actor="tester@lab")
    captures = {"app1": ("close-wait/free.txt", "close-wait/uptime.txt"),
                "app2": ("memory/free.txt", "cpu/uptime.txt"),
                "app3": ("cpu/free.txt", "../uptime/uptime-nproc.txt")}
    for host, (free, uptime) in captures.items():
        record_collector_run(incident, host, "free", (LOAD / free).read_bytes())
        record_collector_run(incident, host, "uptime", (LOAD / uptime).read_bytes())
    found = peer_findings(incident.state(), incident.store.directory(incident.id))
    assert {f.host for f in found} == {"app2"}
    by_resource = {f.resource: f for f in found}
    assert by_resource["memory"].summary == (
        "app2: memory 91.7% used, not counting cache; its 2 peers in role app: 1.3–1.9%")
    assert by_resource["memory"].evidence.startswith("Mem:")
    assert by_resource["cpu"].summary == (
        "app2: load 1.62 per CPU; its 2 peers in role app: 0.1–0.16 per CPU")
    assert by_resource["cpu"].signal == "saturation"
