"""Remediation against real sshd daemons on loopback (tests/fleet.py) and localhost:
proposed, reviewed, confirmed, run once, and every byte and exit code kept."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runbook import paths, remediate
from runbook.drill.sshd_lab import SshdLab
from runbook.errors import HostSelectionError, RunbookError, TemplateError
from runbook.hosts import Host
from runbook.incident import EventType, IncidentState, as_json
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from tests.conftest import run_cli
from tests.fleet import DeadEndpoint, lab_hosts, lab_options, write_inventory

PROPOSER = "tester@lab"  # RUNBOOK_ACTOR in tests/conftest.py
REVIEWER = "bob"

PLAYBOOK = """\
name: remedy-lab
title: Remediation test playbook
stages:
  scope:
    - id: note
      kind: question
      title: A note to print
      prompt: What should the hosts print?
    - id: marker
      kind: question
      title: Marker path
      prompt: Which file marks that the command ran?
  remediate:
    - id: print-note
      kind: remediate
      title: Print the note and mark the run
      command: printf '%s\\n' {{ answers['note'] }} && touch {{ answers['marker'] }}.{{ host }}
      rollback: Remove the marker files.
      review: true
    - id: say-hello
      kind: remediate
      title: Say hello, fail on lab2
      command: echo hello from {{ host }}; echo to stderr >&2; test {{ host }} != lab2
      rollback: Nothing to undo.
    - id: web-only
      kind: remediate
      title: Only the web hosts
      command: echo {{ host }}
      rollback: Nothing to undo.
      hosts: role:web
    - id: who-am-i
      kind: remediate
      title: Print the user id, as root
      command: id -u
      rollback: Nothing to undo.
      needs_root: true
    - id: too-slow
      kind: remediate
      title: Sleep past the timeout
      command: echo started; sleep 30
      rollback: Nothing to undo.
      timeout: 1
    - id: hang
      kind: remediate
      title: Start, then hang until stopped
      command: echo started; sleep {{ answers['note'] }}
      rollback: Nothing to undo.
      timeout: 600
    - id: must-finish
      kind: remediate
      title: A long job that must finish whatever happens to runbook
      command: echo started; sleep {{ answers['marker'] }}
      rollback: Nothing to undo.
      timeout: 600
      survives_disconnect: true
  report:
    - id: tell
      kind: checklist
      title: Tell someone
"""


@pytest.fixture(autouse=True)
def playbook() -> Path:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "remedy-lab.yaml"
    path.write_text(PLAYBOOK)
    return path


@pytest.fixture
def marker() -> Iterator[Path]:
    """A path prefix the commands touch (`<marker>.<host>`); cleaned up after."""
    base = Path(f"/tmp/runbook-remedy-{uuid.uuid4().hex}")
    yield base
    for path in base.parent.glob(base.name + "*"):
        path.unlink()


@pytest.fixture
def pwned() -> Iterator[Path]:
    """A file an injected shell command would create; it must never exist."""
    path = Path(f"/tmp/pwned-{uuid.uuid4().hex}")
    yield path
    path.unlink(missing_ok=True)


def open_incident(hosts: list[Host], **answers: str) -> Incident:
    incident = IncidentStore().create(playbook=find_playbook("remedy-lab"), hosts=hosts,
                                      title="remediation test", actor=PROPOSER)
    for step, text in answers.items():
        incident.answer(step, text, PROPOSER)
    return incident


def events(incident: Incident, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in incident.state().events if e.type == kind]


def command_events(incident: Incident) -> list[str]:
    return [e.type for e in incident.state().events if e.type.startswith("command.")]


def markers(base: Path) -> list[str]:
    return sorted(p.name.removeprefix(base.name) for p in base.parent.glob(base.name + "*"))


def run(incident: Incident, command_id: str, sshd_fleet: SshdLab, confirmation: str,
        **kw: Any) -> list[remediate.ExecutionResult]:
    return remediate.execute(incident, command_id, PROPOSER, confirmation,
                             lab_options(sshd_fleet, connect_timeout=3), **kw)


def flat(text: str) -> str:
    """Rich wraps messages to the terminal width: compare words, not line breaks."""
    return " ".join(text.split())


def evidence_text(incident: Incident, event: dict[str, Any], stream: str = "stdout") -> bytes:
    return (IncidentStore().directory(incident.id) / event[stream]).read_bytes()


# -- propose ---------------------------------------------------------------------------


def test_an_answer_with_shell_in_it_stays_one_quoted_word(sshd_fleet: SshdLab, marker: Path,
                                                         pwned: Path) -> None:
    hostile = f"disk full; touch {pwned}; rm -rf / ; it's $(id) `id`"
    incident = open_incident(lab_hosts(sshd_fleet)[:2], note=hostile, marker=str(marker))

    proposal = remediate.propose(incident, "print-note", PROPOSER)

    # This exact text is the guard: nothing below runs unless the value is one
    # single-quoted word, so the test can never run what the answer says.
    quoted = "'disk full; touch " + str(pwned) + "; rm -rf / ; it'\"'\"'s $(id) `id`'"
    assert proposal.commands == {
        h: f"printf '%s\\n' {quoted} && touch {marker}.{h}" for h in ("lab1", "lab2")}
    assert shlex.split(proposal.commands["lab1"])[2] == hostile
    [proposed] = events(incident, EventType.COMMAND_PROPOSED)
    assert proposed["commands"] == proposal.commands
    assert proposed["template"].startswith("printf '%s\\n' {{ answers['note'] }}")
    assert proposed["hosts"] == ["lab1", "lab2"]
    assert (proposed["review_required"], proposed["needs_root"], proposed["timeout"]) == (
        True, False, 300)
    assert proposed["rollback"] == "Remove the marker files."
    assert proposal.confirmation == "run on 2 hosts"

    remediate.approve(incident, proposal.command_id, REVIEWER, REVIEWER)
    results = run(incident, proposal.command_id, sshd_fleet, "run on 2 hosts")

    assert [(r.host, r.status, r.exit_code) for r in results] == [
        ("lab1", "ok", 0), ("lab2", "ok", 0)]
    for event in events(incident, EventType.COMMAND_EXECUTED):
        assert evidence_text(incident, event) == hostile.encode() + b"\n"
    assert not pwned.exists()
    assert markers(marker) == [".lab1", ".lab2"]


def test_a_value_refused_for_the_shell_records_nothing(marker: Path) -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)],
                             note="two\nlines", marker=str(marker))
    before = len(incident.state().events)

    with pytest.raises(TemplateError, match="control characters"):
        remediate.propose(incident, "print-note", PROPOSER)

    unanswered = open_incident([Host(name="localhost", address="localhost", local=True)])
    with pytest.raises(TemplateError, match="no value"):
        remediate.propose(unanswered, "print-note", PROPOSER)
    assert len(incident.state().events) == before
    assert command_events(incident) == command_events(unanswered) == []


def test_propose_refuses_what_is_not_an_open_remediation() -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)])

    with pytest.raises(RunbookError, match="not a remediation"):
        remediate.propose(incident, "note", PROPOSER)
    with pytest.raises(RunbookError, match="no step 'nope'") as caught:
        remediate.propose(incident, "nope", PROPOSER)
    assert "print-note" in (caught.value.hint or "")
    incident.resolve(PROPOSER)
    with pytest.raises(RunbookError, match="is resolved"):
        remediate.propose(incident, "say-hello", PROPOSER)
    assert command_events(incident) == []


def test_targets_come_from_the_step_selector_and_can_only_be_narrowed() -> None:
    hosts = [Host(name="web1", address="10.0.0.1", role="web", tags=("eu",)),
             Host(name="web2", address="10.0.0.2", role="web"),
             Host(name="db1", address="10.0.0.3", role="db", tags=("eu",))]
    incident = open_incident(hosts)

    assert remediate.propose(incident, "web-only", PROPOSER).commands == {
        "web1": "echo web1", "web2": "echo web2"}
    assert remediate.propose(incident, "say-hello", PROPOSER).hosts == ["web1", "web2", "db1"]
    assert remediate.propose(incident, "say-hello", PROPOSER, ["tag:eu"]).hosts == [
        "web1", "db1"]
    assert remediate.propose(incident, "web-only", PROPOSER, "web2").hosts == ["web2"]
    with pytest.raises(HostSelectionError, match="db1 is not a target of step 'web-only'"):
        remediate.propose(incident, "web-only", PROPOSER, ["db1"])
    with pytest.raises(HostSelectionError, match="no host matches 'web9'"):
        remediate.propose(incident, "say-hello", PROPOSER, ["web9"])
    with pytest.raises(HostSelectionError):
        remediate.propose(incident, "say-hello", PROPOSER, ["web1;id"])
    assert len(events(incident, EventType.COMMAND_PROPOSED)) == 4


# -- review, confirmation, once only -----------------------------------------------------


def test_execute_refuses_without_review_wrong_words_or_a_second_time(
        sshd_fleet: SshdLab, marker: Path) -> None:
    incident = open_incident(lab_hosts(sshd_fleet)[:3], note="hi", marker=str(marker))
    command_id = remediate.propose(incident, "print-note", PROPOSER).command_id

    with pytest.raises(RunbookError, match="needs a review by someone other than") as caught:
        run(incident, command_id, sshd_fleet, "run on 3 hosts")
    assert "runbook approve" in (caught.value.hint or "")

    for same in ("tester", "TESTER@elsewhere", PROPOSER):
        with pytest.raises(RunbookError, match="cannot also be its reviewer"):
            remediate.approve(incident, command_id, same, PROPOSER)
    for nobody in ("", "  ", "me", "lgtm", "bob\x1b[2J"):
        with pytest.raises(RunbookError, match="not a reviewer's name"):
            remediate.approve(incident, command_id, nobody, PROPOSER)
    # The phrase typed into the reviewer's field, and the operator who will run it.
    for phrase in ("run on 3 hosts", "Run on 1 host", "run  on 12 hosts"):
        with pytest.raises(RunbookError, match="is the confirmation phrase"):
            remediate.approve(incident, command_id, phrase, PROPOSER)
    with pytest.raises(RunbookError, match="carol is running command .* cannot also"):
        remediate.approve(incident, command_id, "carol", "carol@bastion",
                          runner="carol@bastion")
    assert events(incident, EventType.COMMAND_APPROVED) == []

    remediate.approve(incident, command_id, REVIEWER, PROPOSER)
    with pytest.raises(RunbookError, match="already approved"):
        remediate.approve(incident, command_id, "Bob", PROPOSER)
    for wrong in ("yes", "run on 2 hosts", "run", "run on 3 host", command_id):
        with pytest.raises(RunbookError, match="type exactly 'run on 3 hosts'"):
            run(incident, command_id, sshd_fleet, wrong)
    assert command_events(incident) == ["command.proposed", "command.approved"]
    assert markers(marker) == []  # nothing ran anywhere

    results = run(incident, command_id, sshd_fleet, "  Run on 3   hosts ")
    assert all(r.ok for r in results)
    assert markers(marker) == [".lab1", ".lab2", ".lab3"]
    for path in marker.parent.glob(marker.name + "*"):
        path.unlink()

    with pytest.raises(RunbookError, match="already ran") as again:
        run(incident, command_id, sshd_fleet, "run on 3 hosts")
    assert "propose it again" in (again.value.hint or "")
    with pytest.raises(RunbookError, match="already run"):
        remediate.approve(incident, command_id, "carol", PROPOSER)
    assert markers(marker) == []
    assert len(events(incident, EventType.COMMAND_EXECUTED)) == 3


def test_a_step_without_review_runs_on_confirmation_alone() -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)])
    proposal = remediate.propose(incident, "say-hello", PROPOSER)

    [result] = remediate.execute(incident, proposal.command_id, PROPOSER, "run on 1 host")

    assert (result.host, result.status, result.exit_code) == ("localhost", "ok", 0)
    [started] = events(incident, EventType.COMMAND_STARTED)
    assert started["confirmation"] == "run on 1 host" and started["approvers"] == []


def test_two_launches_at_once_cannot_both_run() -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)])
    command_id = remediate.propose(incident, "say-hello", PROPOSER).command_id
    lock = IncidentStore().directory(incident.id) / ".remediate.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another runbook process, mid-launch
        with pytest.raises(RunbookError, match="another runbook process"):
            remediate.execute(incident, command_id, PROPOSER, "run on 1 host")
    finally:
        os.close(fd)
    assert command_events(incident) == ["command.proposed"]


# -- running -------------------------------------------------------------------------------


def test_a_good_run_records_exit_codes_approvers_and_evidence_per_host(
        sshd_fleet: SshdLab, marker: Path) -> None:
    incident = open_incident(lab_hosts(sshd_fleet)[:2], note="restarting", marker=str(marker))
    command_id = remediate.propose(incident, "print-note", PROPOSER).command_id
    remediate.approve(incident, command_id, REVIEWER, "carol@bastion")
    shown: list[tuple[str, str, bytes]] = []

    results = run(incident, command_id, sshd_fleet, "run on 2 hosts",
                  on_output=lambda h, s, b: shown.append((h, s, b)))

    assert all(r.ok and r.status == "ok" for r in results)
    for host in ("lab1", "lab2"):
        assert b"".join(b for h, s, b in shown if h == host and s == "stdout") == b"restarting\n"
    state = incident.state()
    command = state.commands[command_id]
    assert command.executed and command.started_by == PROPOSER
    assert command.approvals == [REVIEWER]
    [started] = events(incident, EventType.COMMAND_STARTED)
    assert started == {"command_id": command_id, "step": "print-note",
                       "hosts": ["lab1", "lab2"], "confirmation": "run on 2 hosts",
                       "approvers": [REVIEWER], "survives_disconnect": False}
    executed = {e["host"]: e for e in events(incident, EventType.COMMAND_EXECUTED)}
    assert set(executed) == {"lab1", "lab2"}
    for host, event in executed.items():
        assert event["command"] == command.commands[host]  # exactly what was approved
        assert (event["exit_code"], event["status"], event["timed_out"]) == (0, "ok", False)
        assert event["approvers"] == [REVIEWER] and event["proposed_by"] == PROPOSER
        assert event["stdout"].startswith(f"evidence/{host}/")
        assert event["stdout"].endswith("-remediate-print-note.stdout")
        assert evidence_text(incident, event) == b"restarting\n"
        assert event["stdout_bytes"] == len(b"restarting\n")
    meta = json.loads((IncidentStore().directory(incident.id)
                       / executed["lab1"]["meta"]).read_text())
    assert (meta["host"], meta["exit_code"], meta["command"]) == (
        "lab1", 0, command.commands["lab1"])
    timeline = as_json(state)["timeline"]
    assert any(t["summary"].startswith("Running command") for t in timeline)
    assert as_json(state)["commands"][0]["commands"] == command.commands


def test_a_failing_and_an_unreachable_host_are_recorded_while_the_others_run(
        sshd_fleet: SshdLab, dead_endpoint: DeadEndpoint) -> None:
    dead = Host(name="dead", address=dead_endpoint.address, port=dead_endpoint.port,
                user=sshd_fleet.user, identity_file=str(sshd_fleet.client_key))
    incident = open_incident([*lab_hosts(sshd_fleet)[:3], dead])
    command_id = remediate.propose(incident, "say-hello", PROPOSER).command_id

    results = {r.host: r for r in run(incident, command_id, sshd_fleet, "run on 4 hosts")}

    assert {h: (r.status, r.exit_code) for h, r in results.items()} == {
        "lab1": ("ok", 0), "lab2": ("failed", 1), "lab3": ("ok", 0),
        "dead": ("unreachable", None)}
    assert "nothing listening" in (results["dead"].message or "")
    executed = {e["host"]: e for e in events(incident, EventType.COMMAND_EXECUTED)}
    assert set(executed) == {"lab1", "lab2", "lab3", "dead"}
    assert evidence_text(incident, executed["lab2"]) == b"hello from lab2\n"
    assert evidence_text(incident, executed["lab2"], "stderr") == b"to stderr\n"
    assert executed["dead"]["status"] == "unreachable"
    assert executed["dead"]["exit_code"] is None
    assert b"not run: connection refused" in evidence_text(incident, executed["dead"], "stderr")


def test_a_stopped_daemon_is_a_failed_execution(own_sshd_lab: SshdLab) -> None:
    incident = open_incident(lab_hosts(own_sshd_lab))
    command_id = remediate.propose(incident, "say-hello", PROPOSER).command_id
    own_sshd_lab.stop()

    [result] = remediate.execute(incident, command_id, PROPOSER, "run on 1 host",
                                 lab_options(own_sshd_lab))

    assert (result.status, result.exit_code, result.ok) == ("unreachable", None, False)
    [event] = events(incident, EventType.COMMAND_EXECUTED)
    assert event["status"] == "unreachable"


def test_a_command_past_its_timeout_is_stopped_and_recorded(sshd_fleet: SshdLab) -> None:
    incident = open_incident(lab_hosts(sshd_fleet)[:1])
    command_id = remediate.propose(incident, "too-slow", PROPOSER).command_id

    [result] = run(incident, command_id, sshd_fleet, "run on 1 host")

    assert (result.status, result.timed_out, result.exit_code) == ("timeout", True, None)
    assert "stopped on the host" in (result.message or "")
    [event] = events(incident, EventType.COMMAND_EXECUTED)
    assert event["timed_out"] is True
    assert evidence_text(incident, event) == b"started\n"


def test_cancelling_stops_the_command_on_its_hosts_and_keeps_what_ran(
        sshd_fleet: SshdLab) -> None:
    """Cancel reaches a remediation as it reaches a collection: the command is
    stopped on every host by the runner there, and what it printed is kept."""
    import threading
    import time

    from tests.test_collect_ssh import still_running

    duration = f"8765.{uuid.uuid4().int % 10**6:06d}"
    incident = open_incident(lab_hosts(sshd_fleet)[:2], note=duration)
    proposal = remediate.propose(incident, "hang", PROPOSER)
    execution = remediate.Execution(incident, proposal.command_id, PROPOSER,
                                    proposal.confirmation, lab_options(sshd_fleet))
    results: list[list[remediate.ExecutionResult]] = []
    worker = threading.Thread(target=lambda: results.append(execution.run()))
    worker.start()
    deadline = time.monotonic() + 20
    while len(still_running(["sleep", duration])) < 2:
        assert time.monotonic() < deadline, "the command never started on both hosts"
        time.sleep(0.05)
    execution.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert still_running(["sleep", duration]) == [], "left running on a host"
    executed = events(incident, EventType.COMMAND_EXECUTED)
    assert len(executed) == 2
    for event in executed:
        assert event["status"] != "ok"
        assert evidence_text(incident, event) == b"started\n"


def test_a_dropped_connection_stops_a_remediation_unless_its_step_says_it_must_finish(
        sshd_fleet: SshdLab) -> None:
    """runbook's link to the host dies mid-run (here the connection's own sshd
    process is killed, as a crash or a cut link would): the host's runner stops
    the command, as it stops collectors; a step marked `survives_disconnect`
    keeps running, and the journal said so before it started."""
    import threading
    import time

    from tests.test_collect_ssh import still_running

    stopped = f"7654.{uuid.uuid4().int % 10**6:06d}"
    finishing = f"7655.{uuid.uuid4().int % 10**6:06d}"
    host = sshd_fleet.hosts[2]
    incident = open_incident(lab_hosts(sshd_fleet)[2:3], note=stopped, marker=finishing)
    started: list[str] = []
    for step, duration in (("hang", stopped), ("must-finish", finishing)):
        proposal = remediate.propose(incident, step, PROPOSER)
        execution = remediate.Execution(incident, proposal.command_id, PROPOSER,
                                        proposal.confirmation, lab_options(sshd_fleet))
        worker = threading.Thread(target=execution.run)
        worker.start()
        deadline = time.monotonic() + 20
        while not still_running(["sleep", duration]):
            assert time.monotonic() < deadline, f"{step} never started"
            time.sleep(0.05)
        for connection in host.connections():
            connection.kill()
        worker.join(30)
        assert not worker.is_alive()
        started.append(proposal.command_id)
    try:
        deadline = time.monotonic() + 5
        while still_running(["sleep", stopped]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert still_running(["sleep", stopped]) == [], "stopped with its connection"
        assert len(still_running(["sleep", finishing])) == 1, "kept running, as its step says"
        launches = {e["command_id"]: e for e in events(incident, EventType.COMMAND_STARTED)}
        assert launches[started[0]]["survives_disconnect"] is False
        assert launches[started[1]]["survives_disconnect"] is True
        timeline = [e for e in incident.state().events if e.type == EventType.COMMAND_STARTED]
        from runbook.incident import summarize

        assert "may still be running" in summarize(timeline[1])
        assert "may still be running" not in summarize(timeline[0])
    finally:
        for pid in still_running(["sleep", finishing]):
            os.kill(pid, 9)


def test_needs_root_adds_sudo_only_when_the_login_is_not_root(sshd_fleet: SshdLab) -> None:
    deploy = Host(name="app1", address="10.0.0.7", user="deploy")
    as_root = Host(name="app2", address="10.0.0.8", user="root")
    incident = open_incident([deploy, as_root])
    command_id = remediate.propose(incident, "who-am-i", PROPOSER).command_id

    assert remediate.dry_run(incident, command_id) == [
        ("app1", "sudo -n /bin/sh -c 'id -u'"), ("app2", "id -u")]

    if sshd_fleet.user != "root":
        pytest.skip("the lab logs in as root only when the tests run as root")
    lab = open_incident(lab_hosts(sshd_fleet)[:1])
    lab_id = remediate.propose(lab, "who-am-i", PROPOSER).command_id
    [result] = run(lab, lab_id, sshd_fleet, "run on 1 host")
    assert (result.command, result.exit_code) == ("id -u", 0)
    [event] = events(lab, EventType.COMMAND_EXECUTED)
    assert evidence_text(lab, event) == b"0\n"


def test_dry_run_shows_the_exact_commands_and_runs_and_records_nothing(
        sshd_fleet: SshdLab, marker: Path) -> None:
    incident = open_incident(lab_hosts(sshd_fleet)[:2], note="x y", marker=str(marker))
    proposal = remediate.propose(incident, "print-note", PROPOSER)
    before = incident.state().events

    plan = remediate.dry_run(incident, proposal.command_id)

    assert plan == list(proposal.commands.items())
    assert plan[0] == ("lab1", f"printf '%s\\n' 'x y' && touch {marker}.lab1")
    assert incident.state().events == before
    assert markers(marker) == []
    assert remediate.dry_run(incident, proposal.command_id[:4]) == plan  # a unique prefix


# -- the command line ------------------------------------------------------------------------


def test_cli_propose_approve_execute_end_to_end(sshd_fleet: SshdLab, tmp_path: Path,
                                                marker: Path) -> None:
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident_id = run_cli("new", "-p", "remedy-lab", "-i", str(inventory), "-H", "lab1",
                          "-H", "lab2", "-t", "cli remediation").stdout.strip()
    run_cli("answer", incident_id, "note", "all; good")
    run_cli("answer", incident_id, "marker", str(marker))
    ssh = ("--known-hosts", str(sshd_fleet.known_hosts), "--connect-timeout", "3")

    proposed = run_cli("propose", incident_id, "print-note")
    command_id = proposed.stdout.split()[1]
    assert f"--- lab1\nprintf '%s\\n' 'all; good' && touch {marker}.lab1\n" in proposed.stdout
    assert 'runbook approve' in flat(proposed.stderr)
    assert '--confirm "run on 2 hosts"' in flat(proposed.stderr)
    data = json.loads(run_cli("propose", incident_id, "print-note", "--host", "lab2",
                              "--json").stdout)
    assert data["hosts"] == ["lab2"] and data["confirmation"] == "run on 1 host"

    refused = run_cli("execute", incident_id, command_id, "--confirm", "run on 2 hosts", *ssh,
                      check=False)
    assert refused.returncode == 2 and "needs a review" in flat(refused.stderr)
    assert "Traceback" not in flat(refused.stderr)
    self_review = run_cli("approve", incident_id, command_id, "--reviewer", "tester",
                          check=False)
    assert self_review.returncode == 2 and "cannot also be its reviewer" in flat(self_review.stderr)
    approved = json.loads(run_cli("approve", incident_id, command_id, "--reviewer", REVIEWER,
                                  "--json").stdout)
    assert approved["review_satisfied"] is True

    dry = run_cli("execute", incident_id, command_id, "--dry-run")
    assert "nothing runs, nothing is recorded" in dry.stdout
    assert f"printf '%s\\n' 'all; good' && touch {marker}.lab2" in dry.stdout
    wrong = run_cli("execute", incident_id, command_id, "--confirm", "yes", *ssh, check=False)
    assert wrong.returncode == 2 and "run on 2 hosts" in flat(wrong.stderr)
    missing = run_cli("execute", incident_id, command_id, *ssh, check=False)
    assert missing.returncode == 2 and '--confirm "run on 2 hosts"' in flat(missing.stderr)
    assert markers(marker) == []

    ran = run_cli("execute", incident_id, command_id, "--confirm", "run on 2 hosts", *ssh)
    assert "lab1 | all; good" in ran.stdout and "lab2 | all; good" in ran.stdout
    assert markers(marker) == [".lab1", ".lab2"]
    again = run_cli("execute", incident_id, command_id, "--confirm", "run on 2 hosts", *ssh,
                    check=False)
    assert again.returncode == 2 and "already ran" in flat(again.stderr)

    state = json.loads(run_cli("show", incident_id, "--json").stdout)
    [command] = [c for c in state["commands"] if c["id"] == command_id]
    assert command["approvals"] == [REVIEWER] and command["executed"] is True
    assert sorted((r["host"], r["exit_code"]) for r in command["results"]) == [
        ("lab1", 0), ("lab2", 0)]

    hello = json.loads(run_cli("propose", incident_id, "say-hello", "--json").stdout)
    failed = run_cli("execute", incident_id, hello["command_id"], "--confirm", "run on 2 hosts",
                     "--json", *ssh, check=False)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert report["all_ok"] is False
    assert {r["host"]: r["exit_code"] for r in report["results"]} == {"lab1": 0, "lab2": 1}
    assert "lab2 | hello from lab2" in flat(failed.stderr)  # live output on stderr with --json


def test_cli_commands_have_help() -> None:
    for command in ("propose", "approve", "execute", "announce"):
        result = run_cli(command, "--help")
        assert "Usage: runbook " + command in result.stdout


def test_state_without_the_proposal_fields_still_folds() -> None:
    """A journal written before proposals held per-host commands: the fold still
    reads it, and execution refuses rather than guessing the command."""
    incident = open_incident([Host(name="localhost", address="localhost", local=True)])
    incident.journal.append(EventType.COMMAND_PROPOSED, {  # as an older runbook wrote it
        "command_id": "old1", "step": "say-hello", "command": "echo hi",
        "hosts": ["localhost"], "rollback": "-", "review_required": False}, PROPOSER)
    state: IncidentState = incident.state()
    assert state.commands["old1"].commands == {}
    with pytest.raises(RunbookError, match="does not hold the exact command"):
        remediate.execute(incident, "old1", PROPOSER, "run on 1 host")


def test_remediate_and_announce_do_not_import_textual() -> None:
    code = ("import sys, runbook.remediate, runbook.announce; "
            "print('textual' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
