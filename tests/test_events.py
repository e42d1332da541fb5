"""Event payloads are declared once (runbook/incident/events.py): what is written
is checked against them, and evidence has one shape whoever wrote it."""

from __future__ import annotations

import pytest

from runbook import paths, remediate
from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.events import PAYLOADS, PayloadMismatch, payload_problems
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.report.facts import evidence_index
from runbook.report.postmortem import render
from tests.conftest import record_collector_run

ACTOR = "tester@lab"
PLAYBOOK = """\
name: events-lab
title: Events test playbook
stages:
  remediate:
    - id: say
      kind: remediate
      title: Say something on both streams
      command: echo out; echo err >&2
      rollback: Nothing to undo.
"""


@pytest.fixture
def incident() -> Incident:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "events-lab.yaml").write_text(PLAYBOOK)
    host = Host(name="localhost", address="localhost", local=True)
    return IncidentStore().create(playbook=find_playbook("events-lab"), hosts=[host],
                                  title="events test", actor=ACTOR)


def test_every_event_type_has_one_declaration() -> None:
    assert set(PAYLOADS) == set(EventType)


def test_a_payload_that_drifts_is_named_field_by_field() -> None:
    problems = payload_problems(EventType.STEP_SKIPPED, {"step": 3, "why": "x"})
    assert "step: Input should be a valid string" in problems
    assert "reason: Field required" in problems
    assert "why: Extra inputs are not permitted" in problems
    # A type this version does not know (a newer runbook's) is not judged.
    assert payload_problems("pager.acknowledged", {"anything": 1}) == []


def test_a_drifting_writer_fails_under_the_tests(incident: Incident) -> None:
    before = len(incident.state().events)
    with pytest.raises(PayloadMismatch, match="note.added.*text"):
        incident.append(EventType.NOTE_ADDED, {"body": "misnamed"}, ACTOR)
    assert len(incident.state().events) == before


def test_in_production_a_drifting_event_is_kept_and_logged(
        incident: Incident, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_STRICT_EVENTS")
    event = incident.append(EventType.NOTE_ADDED, {"body": "misnamed"}, ACTOR)
    assert incident.state().events[-1].id == event.id, "what happened is not lost"
    log = (paths.log_dir() / "runbook.log").read_text()
    assert "writing to incident " + incident.id in log and "body" in log


def test_a_remediation_records_its_evidence_as_a_collection_does(incident: Incident) -> None:
    record_collector_run(incident, "localhost", "df",
                         b"Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                         b"/dev/vda1 100 10 90 10% /\n")
    proposal = remediate.propose(incident, "say", ACTOR)
    remediate.execute(incident, proposal.command_id, ACTOR, proposal.confirmation)
    events = incident.state().events
    ran = next(e.data for e in events if e.type == EventType.COLLECTOR_RAN)
    executed = next(e.data for e in events if e.type == EventType.COMMAND_EXECUTED)
    shared = {"host", "command", "exit_code", "status", "stdout", "stderr", "meta",
              "stdout_bytes", "stderr_bytes", "truncated", "sha256", "started_at", "ended_at"}
    assert shared <= set(ran) and shared <= set(executed)
    assert "evidence" not in executed
    directory = incident.store.directory(incident.id)
    assert (directory / executed["stdout"]).read_bytes() == b"out\n"
    assert (directory / executed["stderr"]).read_bytes() == b"err\n"
    index = evidence_index(incident.state(), directory)
    assert [(e["kind"], e["present"]) for e in index] == [("collector", True), ("command", True)]


def test_a_journal_with_nested_remediation_evidence_still_reads(incident: Incident) -> None:
    """Before evidence had one shape, `command.executed` nested it: such a
    journal folds to the same flat results, indexed and linked from the report."""
    proposal = remediate.propose(incident, "say", ACTOR)
    directory = incident.store.directory(incident.id)
    (directory / "evidence" / "localhost").mkdir(parents=True, exist_ok=True)
    (directory / "evidence/localhost/old.stdout").write_bytes(b"out\n")
    incident.journal.append(EventType.COMMAND_STARTED, {  # as an older runbook wrote them
        "command_id": proposal.command_id, "step": "say", "hosts": ["localhost"],
        "confirmation": proposal.confirmation, "approvers": []}, ACTOR)
    incident.journal.append(EventType.COMMAND_EXECUTED, {
        "command_id": proposal.command_id, "step": "say", "host": "localhost",
        "command": "echo out; echo err >&2", "exit_code": 0, "status": "ok",
        "evidence": {"stdout": "evidence/localhost/old.stdout",
                     "stderr": "evidence/localhost/old.stderr", "stdout_bytes": 4,
                     "stderr_bytes": 0, "truncated": False, "sha256": "x"}}, ACTOR)
    state = incident.state()
    [result] = state.commands[proposal.command_id].results
    assert result["stdout"] == "evidence/localhost/old.stdout" and "evidence" not in result
    [entry] = [e for e in evidence_index(state, directory) if e["kind"] == "command"]
    assert entry["present"] and entry["stdout_bytes"] == 4
    assert "evidence/localhost/old.stdout" in render(state, incident_dir=directory)
