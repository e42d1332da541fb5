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
