"""A shell on an incident's host: the real OpenSSH client against the lab's real
sshd daemons (tests/fleet.py), reaching each host as runbook's own connections
do, and journalled. Only the person at the keyboard is missing: each shell runs
one command instead of waiting for input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from runbook.connect_settings import ConnectSettings
from runbook.host_shell import open_shell, ssh_argv
from runbook.hosts import Host
from runbook.incident.store import Incident, IncidentStore
from runbook.inventory import load_inventory
from runbook.playbook import find_playbook
from tests.fleet import write_inventory

ACTOR = "tester@lab"


def incident_on(inventory: Path, names: list[str]) -> Incident:
    hosts = load_inventory([inventory]).select(names)
    return IncidentStore().create(playbook=find_playbook("generic-host"), hosts=hosts,
                                  title="shell test", actor=ACTOR)


def without_a_terminal(argv: list[str]) -> int:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=60).returncode


def test_the_shell_reaches_the_host_as_runbook_does_and_its_exit_is_recorded(
        sshd_fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident = incident_on(inventory, ["lab2"])
    connect = ConnectSettings(inventories=(inventory,), known_hosts=(sshd_fleet.known_hosts,))
    session = open_shell(incident, "lab2", ACTOR, connect, run=without_a_terminal,
                         remote=[f'test "$(id -un)" = {sshd_fleet.user} && exit 5'])
    assert session.exit_status == 5, "the login user, then the remote exit status"
    events = [e for e in incident.state().events if e.type.startswith("shell.")]
    assert [e.type for e in events] == ["shell.opened", "shell.closed"]
    assert events[1].data["exit_status"] == 5 and events[1].data["host"] == "lab2"
    assert "StrictHostKeyChecking=yes" in events[0].data["command"]


def test_an_unknown_host_key_is_refused_and_not_learnt(sshd_fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident = incident_on(inventory, ["lab1"])
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    connect = ConnectSettings(inventories=(inventory,), known_hosts=(empty,))
    session = open_shell(incident, "lab1", ACTOR, connect, run=without_a_terminal,
                         remote=["true"])
    assert session.exit_status == 255  # ssh's own failure, before any shell ran
    assert empty.read_text() == "", "the key was written without asking"
    [closed] = [e.data for e in incident.state().events if e.type == "shell.closed"]
    assert closed["exit_status"] == 255


def test_a_captured_shell_keeps_what_was_shown_as_evidence(sshd_fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident = incident_on(inventory, ["lab1"])
    connect = ConnectSettings(inventories=(inventory,), known_hosts=(sshd_fleet.known_hosts,))
    session = open_shell(incident, "lab1", ACTOR, connect, capture=True,
                         run=without_a_terminal, remote=["echo", "supervisor-says-RUNNING"])
    assert session.exit_status == 0 and session.capture is not None
    typescript = incident.store.directory(incident.id) / session.capture
    assert b"supervisor-says-RUNNING" in typescript.read_bytes()
    [closed] = [e.data for e in incident.state().events if e.type == "shell.closed"]
    assert closed["capture"] == session.capture and closed["capture_bytes"] > 0


def test_a_host_behind_a_jump_host_is_reached_through_it(sshd_fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lab3 = sshd_fleet.hosts[2]
    behind = (f"  behind:\n    address: {lab3.address}\n    port: {lab3.port}\n"
              f"    user: {sshd_fleet.user}\n    identity_file: {sshd_fleet.client_key}\n"
              "    jump: lab1\n")
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml", behind)
    incident = incident_on(inventory, ["behind"])
    connect = ConnectSettings(inventories=(inventory,), known_hosts=(sshd_fleet.known_hosts,))
    lab1_log = sshd_fleet.hosts[0].directory / "sshd.log"
    before = lab1_log.read_text(errors="replace").count("Accepted publickey")
    session = open_shell(incident, "behind", ACTOR, connect, run=without_a_terminal,
                         remote=["exit", "4"])
    assert session.exit_status == 4
    # Only "behind" was asked for, yet lab1 let a login in: the jump host carried it.
    behind_host = incident.state().host("behind")
    assert behind_host is not None
    assert any(a.startswith("ProxyCommand=") for a in ssh_argv(behind_host, connect))
    assert lab1_log.read_text(errors="replace").count("Accepted publickey") > before


def test_a_host_that_is_not_the_incidents_is_refused(sshd_fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from runbook.errors import RunbookError

    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident = incident_on(inventory, ["lab1"])
    with pytest.raises(RunbookError, match="not one of incident"):
        open_shell(incident, "lab2", ACTOR, ConnectSettings(), run=without_a_terminal)
    assert not [e for e in incident.state().events if e.type.startswith("shell.")]


def test_percent_signs_survive_each_level_of_proxy_commands() -> None:
    hops = {"j1": Host("j1", "10.0.0.1", identity_file="/keys/100%.key"),
            "j2": Host("j2", "10.0.0.2")}
    target = Host("db", "10.0.0.3", jump="j1,j2")
    argv = ssh_argv(target, ConnectSettings(known_hosts=(Path("/kh"),)), hops.__getitem__)
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    # The outer ssh expands %h:%p once; the inner one gets %%h:%%p, which it expands.
    assert "-W %h:%p -- 10.0.0.2" in proxy and "%%h:%%p" in proxy
    # j1's key sits two ProxyCommands down and IdentityFile expands it once more.
    assert "100%%%%%%%%.key" in proxy
    alone = ssh_argv(Host("db", "10.0.0.3", identity_file="/keys/100%.key"),
                     ConnectSettings(known_hosts=(Path("/kh"),)))
    assert alone[alone.index("-i") + 1] == "/keys/100%%.key"
