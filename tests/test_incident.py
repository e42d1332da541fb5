"""Incident state comes from replaying the journal, and only from it."""

from __future__ import annotations

import pytest

from runbook.errors import IncidentNotFound, JournalError, RunbookError
from runbook.hosts import Host
from runbook.incident import EventType, Status, StepStatus, as_json
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook

WEB = Host(name="web1", address="10.0.0.5", project="shop", role="web", source="test")


def open_incident(store: IncidentStore, **kw):
    return store.create(playbook=find_playbook("generic-host"), hosts=[WEB],
                        title=kw.pop("title", "web1 is slow"), actor="alice", **kw)


def test_opening_records_playbook_snapshot_hosts_and_commander() -> None:
    store = IncidentStore()
    incident = open_incident(store, severity="2", commander="bob")
    state = store.load(incident.id)
    assert state.title == "web1 is slow"
    assert state.severity == "SEV2"
    assert state.status == Status.OPEN
    assert state.commander == "bob"
    assert [h.name for h in state.hosts] == ["web1"]
    assert state.hosts[0].project == "shop" and state.hosts[0].role == "web"
    assert state.playbook_name == "generic-host"
    assert state.current_step is not None
    assert state.current_step.stage == "detect"
    assert (store.directory(incident.id) / "evidence").is_dir()
    opened = state.events[0]
    assert opened.type == EventType.OPENED and opened.actor == "alice"
    assert opened.data["playbook"]["sha256"]


def test_replay_folds_every_action_in_order() -> None:
    store = IncidentStore()
    incident = open_incident(store)
    steps = list(store.load(incident.id).steps.values())
    question = next(s for s in steps if s.step.kind == "question")
    checklist = next(s for s in steps if s.step.kind == "checklist")
    other = next(s for s in steps if s.step.kind == "collect")

    incident.start_step(checklist.step.id, "alice")
    incident.complete_step(checklist.step.id, "alice", comment="confirmed on the graph")
    incident.answer(question.step.id, "checkout returns 502 for 30% of users", "alice")
    incident.skip_step(other.step.id, "host is down, nothing to collect", "bob")
    incident.note("rolled back the 14:02 deploy", "bob")
    incident.set_severity("SEV1", "alice", reason="revenue impact")
    incident.assign_role("scribe", "carol", "alice")
    incident.resolve("alice", summary="rollback")

    state = store.load(incident.id)
    assert state.steps[checklist.step.id].status == StepStatus.DONE
    assert state.steps[checklist.step.id].reason == "confirmed on the graph"
    assert state.steps[question.step.id].answer == "checkout returns 502 for 30% of users"
    assert state.answers[question.step.id].startswith("checkout")
    if question.step.records:
        assert state.records[question.step.records].startswith("checkout")
    assert state.steps[other.step.id].status == StepStatus.SKIPPED
    assert state.steps[other.step.id].reason == "host is down, nothing to collect"
    assert [n.data["text"] for n in state.notes] == ["rolled back the 14:02 deploy"]
    assert state.severity == "SEV1"
    assert state.roles["scribe"] == "carol"
    assert state.status == Status.RESOLVED and state.resolved_at is not None
    assert [e.type for e in state.events] == [
        "incident.opened", "step.started", "step.done", "answer.recorded", "step.skipped",
        "note.added", "severity.changed", "role.assigned", "incident.resolved"]
    # the same journal replays to the same state in a fresh store object
    again = IncidentStore().load(incident.id)
    assert as_json(again) == as_json(state)


def test_following_the_journal_gives_the_state_a_full_replay_gives() -> None:
    """The app folds only what was appended since its last read; after any split
    of the journal into reads, that is the state a fresh replay builds."""
    store = IncidentStore()
    incident = open_incident(store)
    steps = list(store.load(incident.id).steps.values())
    follower = store.follow(incident.id)
    reads = [follower.read()]
    for index, step in enumerate(steps[:6]):
        if step.step.kind == "question":
            incident.answer(step.step.id, f"answer {index}", "alice")
        else:
            incident.complete_step(step.step.id, "alice", comment=f"done {index}")
        incident.note(f"note {index}", "bob")
        if index % 2:
            reads.append(follower.read())
    incident.set_severity("SEV1", "alice", reason="worse")
    incident.resolve("alice", summary="fixed")
    reads.append(follower.read())
    reads.append(follower.read())  # nothing new
    assert all(state is reads[0] for state in reads), "one state, folded further"
    assert as_json(follower.state) == as_json(store.load(incident.id))
    assert len(follower.state.events) == len(store.load(incident.id).events)


def test_current_step_moves_forward_as_steps_finish() -> None:
    store = IncidentStore()
    incident = open_incident(store)
    order = list(store.load(incident.id).steps)
    incident.skip_step(order[0], "already known", "alice")
    assert store.load(incident.id).current_step.step.id == order[1]
    incident.complete_step(order[1], "alice")
    assert store.load(incident.id).current_step.step.id == order[2]
    assert store.load(incident.id).progress == (2, len(order))


def test_bad_requests_are_refused_with_a_message_and_record_nothing() -> None:
    store = IncidentStore()
    incident = open_incident(store)
    before = len(store.load(incident.id).events)
    with pytest.raises(RunbookError, match="no step 'nope'"):
        incident.complete_step("nope", "alice")
    with pytest.raises(RunbookError, match="needs a reason"):
        incident.skip_step(next(iter(store.load(incident.id).steps)), "  ", "alice")
    with pytest.raises(RunbookError, match="not a severity"):
        incident.set_severity("SEV9", "alice")
    with pytest.raises(RunbookError, match="unknown role"):
        incident.assign_role("king", "bob", "alice")
    with pytest.raises(RunbookError, match="still open"):
        incident.close("alice")
    not_a_question = next(s for s in store.load(incident.id).steps.values()
                          if s.step.kind != "question")
    with pytest.raises(RunbookError, match="not a question"):
        incident.answer(not_a_question.step.id, "text", "alice")
    assert len(store.load(incident.id).events) == before


def test_closed_incident_refuses_new_events_until_reopened() -> None:
    store = IncidentStore()
    incident = open_incident(store)
    incident.resolve("alice")
    incident.close("alice")
    with pytest.raises(JournalError, match="closed"):
        incident.note("late thought", "alice")
    incident.reopen("alice", reason="it came back")
    incident.note("it came back at 04:10", "alice")
    state = store.load(incident.id)
    assert state.status == Status.OPEN and state.resolved_at is None
    assert state.notes[-1].data["text"] == "it came back at 04:10"


def test_ids_resolve_by_prefix_suffix_and_last() -> None:
    store = IncidentStore()
    first = open_incident(store, title="one")
    second = open_incident(store, title="two")
    assert store.resolve_id(first.id) == first.id
    assert store.resolve_id(first.id.rsplit("-", 1)[1]) == first.id
    second.note("touched last", "alice")
    assert store.resolve_id("last") == second.id
    with pytest.raises(IncidentNotFound, match="no incident"):
        store.resolve_id("zzzz")
    with pytest.raises(IncidentNotFound, match="matches 2"):
        store.resolve_id(first.id[:8])


def test_template_context_carries_incident_fields() -> None:
    store = IncidentStore()
    incident = open_incident(store, commander="bob")
    context = store.load(incident.id).template_context()
    assert context["hosts"] == ["web1"]
    assert context["commander"] == "bob"
    assert context["started_at"].endswith("Z")
    from runbook.templating import INCIDENT_FIELDS
    assert set(context) <= set(INCIDENT_FIELDS)


def test_state_survives_a_damaged_journal_line() -> None:
    store = IncidentStore()
    incident = open_incident(store)
    incident.note("before", "alice")
    with open(incident.journal.path, "ab") as handle:
        handle.write(b'{"v":1,"type":"note.added","da')
    incident.note("after", "alice")
    state = store.load(incident.id)
    assert [n.data["text"] for n in state.notes] == ["before", "after"]
    assert len(state.damaged) == 1
