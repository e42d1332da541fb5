"""Announcements: drafted from the incident, sent through a channel, and always
journalled with their exact text, sent or not."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook import paths
from runbook.announce import channels
from runbook.announce import notices as announce
from runbook.errors import JournalError, RunbookError
from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from tests.conftest import run_cli

ACTOR = "tester@lab"

PLAYBOOK = """\
name: announce-lab
title: Announcement test playbook
stages:
  detect:
    - id: what-fired
      kind: question
      title: What fired?
      prompt: What fired?
  announce:
    - id: first-notice
      kind: announce
      title: Tell people
      purpose: initial
      template: |
        [{{ severity }}] {{ title }}
        Hosts: {{ hosts }}
        Seen: {{ answers['what-fired'] | default('being confirmed', true) }}
        Commander: {{ commander | default('not yet assigned', true) }}
        Incident {{ id }} ({{ playbook }}), started {{ started_at }}, now {{ now }}.
    - id: to-file
      kind: announce
      title: Tell the file
      purpose: update
      channel: file:announce-out/update.txt
      template: "update: {{ title }}"
    - id: to-slack
      kind: announce
      title: Tell a channel runbook cannot reach yet
      purpose: update
      channel: "slack:#ops"
      template: "update: {{ title }}"
  report:
    - id: all-clear
      kind: announce
      title: Announce the resolution
      purpose: resolved
      template: "RESOLVED: {{ title }} at {{ resolved_at }}"
    - id: postmortem
      kind: checklist
      title: Write it up
"""

HOSTS = [Host(name="web1", address="10.0.0.1"), Host(name="web2", address="10.0.0.2")]


@pytest.fixture(autouse=True)
def playbook() -> Path:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "announce-lab.yaml"
    path.write_text(PLAYBOOK)
    return path


def open_incident() -> Incident:
    return IncidentStore().create(playbook=find_playbook("announce-lab"), hosts=HOSTS,
                                  title="Checkout is slow", severity="2", commander="carol",
                                  actor=ACTOR)


class Broken:
    """A channel whose far end refuses: a value, as real channels return it."""

    name = "webhook:https://hooks.example/incident"

    def send(self, text: str) -> tuple[bool, str | None]:
        return False, "HTTP 503 from hooks.example"


class Buggy:
    name = "buggy"

    def send(self, text: str) -> tuple[bool, str | None]:
        raise ValueError("a bug in the channel")


# -- drafting -----------------------------------------------------------------------------


def test_draft_renders_the_incident_fields() -> None:
    incident = open_incident()
    incident.answer("what-fired", "p99 latency > 2s on checkout", ACTOR)
    state = incident.state()
    now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)

    text = announce.draft(state, "first-notice", now=now)

    started = state.opened_at.isoformat(timespec="seconds").replace("+00:00", "Z")
    assert text == (
        "[SEV2] Checkout is slow\n"
        "Hosts: web1, web2\n"
        "Seen: p99 latency > 2s on checkout\n"
        "Commander: carol\n"
        f"Incident {incident.id} (announce-lab), started {started}, now 2031-05-06T07:08:09Z.\n")


def test_draft_refuses_a_step_that_is_not_an_announcement() -> None:
    state = open_incident().state()
    with pytest.raises(RunbookError, match="not an announcement"):
        announce.draft(state, "what-fired")
    with pytest.raises(RunbookError, match="no step 'nope'") as caught:
        announce.draft(state, "nope")
    assert "first-notice" in (caught.value.hint or "")


# -- channels and the journal -------------------------------------------------------------


def test_the_file_channel_writes_the_exact_text_and_it_is_journalled(tmp_path: Path) -> None:
    incident = open_incident()
    text = "[SEV2] Checkout is slow\nünïcode and 'quotes'; $(not run)\n"
    channel = channels.channel_from_spec(f"file:{tmp_path}/out/notice.txt")

    event, delivered, error = announce.send(incident, "first-notice", text, channel, ACTOR)

    assert (delivered, error) == (True, None)
    assert (tmp_path / "out" / "notice.txt").read_text(encoding="utf-8") == text
    assert event.data == {"step": "first-notice", "purpose": "initial",
                          "channel": f"file:{tmp_path}/out/notice.txt", "text": text,
                          "delivered": True, "error": None}
    [sent] = incident.state().announcements
    assert sent["text"] == text and sent["actor"] == ACTOR


def test_a_failed_send_is_journalled_as_unsent_with_its_text(tmp_path: Path) -> None:
    incident = open_incident()
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    outcomes = [announce.send(incident, "first-notice", "one", Broken(), ACTOR),
                announce.send(incident, "first-notice", "two", Buggy(), ACTOR),
                announce.send(incident, "first-notice", "three",
                              channels.FileChannel(blocker / "x.txt"), ACTOR)]

    assert [o[1] for o in outcomes] == [False, False, False]
    unsent = incident.state().announcements
    assert [(a["text"], a["delivered"]) for a in unsent] == [
        ("one", False), ("two", False), ("three", False)]
    assert unsent[0]["error"] == "HTTP 503 from hooks.example"
    assert unsent[0]["channel"] == "webhook:https://hooks.example/incident"
    assert unsent[1]["error"].startswith("internal error")
    assert "is not a directory" in unsent[2]["error"]
    timeline = [e for e in incident.state().events if e.type == EventType.ANNOUNCEMENT_SENT]
    assert len(timeline) == 3


def test_record_keeps_what_was_sent_elsewhere() -> None:
    incident = open_incident()

    announce.record(incident, "first-notice", "pasted by hand", "slack:#ops", True, None, ACTOR)
    announce.record(incident, "first-notice", "pager down", "pager", False, None, ACTOR)

    first, second = incident.state().announcements
    assert (first["channel"], first["delivered"], first["error"]) == ("slack:#ops", True, None)
    assert (second["delivered"], second["error"]) == (False, "not sent")
    with pytest.raises(RunbookError, match="needs some text"):
        announce.record(incident, "first-notice", "  ", "stdout", True, None, ACTOR)
    with pytest.raises(RunbookError, match="not an announcement"):
        announce.record(incident, "what-fired", "x", "stdout", True, None, ACTOR)


def test_the_resolution_notice_goes_out_after_resolving_but_not_after_closing(
        tmp_path: Path) -> None:
    incident = open_incident()
    # Still open: drafting is fine, sending or recording it is refused, with why.
    early = announce.draft(incident.state(), "all-clear")
    for attempt in (lambda: announce.record(incident, "all-clear", early, "stdout", True,
                                            None, ACTOR),
                    lambda: announce.send(incident, "all-clear", early,
                                          channels.FileChannel(tmp_path / "out.txt"), ACTOR)):
        with pytest.raises(RunbookError, match="still open: the resolved notice") as caught:
            attempt()
        assert "resolve it first" in (caught.value.hint or "")
    assert not (tmp_path / "out.txt").exists() and incident.state().announcements == []

    incident.resolve(ACTOR, "rolled back")
    state = incident.state()
    text = announce.draft(state, "all-clear")
    assert text.startswith("RESOLVED: Checkout is slow at 20")

    announce.record(incident, "all-clear", text, "stdout", True, None, ACTOR)
    incident.close(ACTOR)
    with pytest.raises((RunbookError, JournalError), match="is closed"):
        announce.record(incident, "all-clear", text, "stdout", True, None, ACTOR)
    assert len(incident.state().announcements) == 1


def test_channel_specs() -> None:
    assert channels.channel_from_spec("stdout").name == "stdout"
    assert channels.channel_from_spec("file:/tmp/x.txt").name == "file:/tmp/x.txt"
    for bad in ("slack:#ops", "file:", "", "email"):
        with pytest.raises(RunbookError, match="no channel") as caught:
            channels.channel_from_spec(bad)
        assert "file:PATH" in (caught.value.hint or "")


def test_save_to_file_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "notice.txt"
    assert channels.save_to_file("first, and longer\n", target) == target
    channels.save_to_file("second\n", target)
    assert target.read_text() == "second\n"
    assert [p.name for p in target.parent.iterdir()] == ["notice.txt"]  # no temp files left


# -- OSC 52 ------------------------------------------------------------------------------------


def test_osc52_is_exactly_the_clipboard_sequence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    assert announce.osc52("hello") == "\x1b]52;c;aGVsbG8=\x07"
    assert announce.osc52("SEV1 ü\n") == "\x1b]52;c;U0VWMSDDvAo=\x07"
    assert announce.osc52("") == "\x1b]52;c;\x07"


def test_osc52_inside_tmux_uses_the_passthrough_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped = "\x1bPtmux;\x1b\x1b]52;c;aGVsbG8=\x07\x1b\\"
    assert announce.osc52("hello", tmux=True) == wrapped
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,123,0")
    assert announce.osc52("hello") == wrapped
    assert announce.osc52("hello", tmux=False) == "\x1b]52;c;aGVsbG8=\x07"


# -- the command line ---------------------------------------------------------------------------


def new_incident() -> str:
    return run_cli("new", "-p", "announce-lab", "-H", "localhost", "-t", "Queue is stuck",
                   "--commander", "carol").stdout.strip()


def flat(text: str) -> str:
    """Rich wraps messages to the terminal width: compare words, not line breaks."""
    return " ".join(text.split())


def announcements(incident_id: str) -> list[dict[str, object]]:
    return json.loads(run_cli("show", incident_id, "--json").stdout)["announcements"]


def test_cli_prints_sends_and_records(tmp_path: Path) -> None:
    incident_id = new_incident()

    draft = run_cli("announce", incident_id, "first-notice", "--draft")
    assert draft.stdout.startswith("[SEV3] Queue is stuck\nHosts: localhost\n")
    assert announcements(incident_id) == []  # a draft records nothing

    printed = run_cli("announce", incident_id, "first-notice")
    assert "Commander: carol" in printed.stdout
    assert "initial announcement sent via stdout" in flat(printed.stderr)

    out = tmp_path / "notice.txt"
    sent = json.loads(run_cli("announce", incident_id, "first-notice", "--to", f"file:{out}",
                              "--json").stdout)
    assert sent["delivered"] is True and sent["channel"] == f"file:{out}"
    assert out.read_text() == sent["text"]
    recorded = announcements(incident_id)
    assert [(a["channel"], a["delivered"]) for a in recorded] == [
        ("stdout", True), (f"file:{out}", True)]
    assert recorded[1]["text"] == sent["text"]


def test_cli_failed_send_exits_1_and_is_journalled_unsent(tmp_path: Path) -> None:
    incident_id = new_incident()
    blocker = tmp_path / "file"
    blocker.write_text("")

    failed = run_cli("announce", incident_id, "first-notice", "--to", f"file:{blocker}/x",
                     check=False)

    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "recorded as unsent" in flat(failed.stderr)
    [unsent] = announcements(incident_id)
    assert unsent["delivered"] is False and "not a directory" in str(unsent["error"])
    assert str(unsent["text"]).startswith("[SEV3] Queue is stuck")

    bad = run_cli("announce", incident_id, "first-notice", "--to", "pigeon", check=False)
    assert bad.returncode == 2 and "no channel 'pigeon'" in bad.stderr


def test_cli_edit_file_writes_the_draft_then_sends_the_edited_text(tmp_path: Path) -> None:
    incident_id = new_incident()
    edit = tmp_path / "notice.md"

    first = run_cli("announce", incident_id, "first-notice", "--edit-file", str(edit))
    assert "nothing sent yet" in flat(first.stderr)
    assert edit.read_text().startswith("[SEV3] Queue is stuck")
    assert announcements(incident_id) == []

    edit.write_text("Edited by hand: the queue is draining.\n")
    second = run_cli("announce", incident_id, "first-notice", "--edit-file", str(edit))
    assert second.stdout == "Edited by hand: the queue is draining.\n"
    [sent] = announcements(incident_id)
    assert sent["text"] == "Edited by hand: the queue is draining.\n"


def test_cli_uses_the_step_channel_when_it_can(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    incident_id = new_incident()
    monkeypatch.chdir(tmp_path)

    run_cli("announce", incident_id, "to-file")
    assert (tmp_path / "announce-out" / "update.txt").read_text() == "update: Queue is stuck"
    unreachable = run_cli("announce", incident_id, "to-slack")
    assert "cannot send to yet" in flat(unreachable.stderr)
    assert unreachable.stdout == "update: Queue is stuck\n"
    assert [a["channel"] for a in announcements(incident_id)] == [
        f"file:{tmp_path}/announce-out/update.txt", "stdout"]
