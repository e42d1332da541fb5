"""Sending an announcement from the app through a channel in channels.yaml.

The channel is a real webhook: a local HTTP server (tests/test_channels.py's
`capture`) receives the POST, or answers 503 when it is set to fail. The
incident's only host is this machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList, TextArea

from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.tui.screens.announce import AnnounceScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.screens.prompts import ChoicePrompt
from tests.test_channels import Capture, capture, write_channels  # noqa: F401 - fixture
from tests.tui.test_incident_flow import RecordingApp, settle, wait_until

pytestmark = pytest.mark.asyncio

LOCAL = Host(name="localhost", address="localhost", local=True, source="local")
STEP = "initial-notice"


def incident_on_the_notice() -> Incident:
    """An incident whose current step is the initial notice."""
    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=[LOCAL],
                            title="checkout 502s", actor="alice")
    for step in incident.state().steps:
        if step == STEP:
            break
        incident.complete_step(step, "alice", "done earlier")
    return incident


def announcements(incident: Incident) -> list[dict[str, Any]]:
    return [e.data for e in incident.state().events if e.type == EventType.ANNOUNCEMENT_SENT]


@asynccontextmanager
async def announcing(incident: Incident) -> AsyncIterator[tuple[RecordingApp, Pilot[Any]]]:
    """The app on the incident, `e` pressed, the drafted notice on screen."""
    app = RecordingApp(IncidentStore(), incident.id, actor="alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen)
                         and app.screen.state is not None, what="the incident screen")
        await settle(pilot)
        assert app.screen.selected == STEP  # type: ignore[attr-defined]
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AnnounceScreen)
                         and "checkout 502s" in app.screen.query_one(TextArea).text,
                         what="the drafted notice")
        yield app, pilot


async def choose(pilot: Pilot[Any], name: str) -> None:
    """ctrl+s, then the channel called `name` in the list, then Enter."""
    app = pilot.app
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: isinstance(app.screen, ChoicePrompt), what="the picker")
    options = app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    assert name in ids, ids
    for _ in range(ids.index(name)):
        await pilot.press("down")
    await pilot.press("enter")


def channels(server: Capture) -> None:
    write_channels(f"""\
channels:
  status-hook:
    kind: webhook
    url: {server.url}/hook
  printed:
    kind: stdout
  ops-slack:
    kind: slack
    url: "{server.url}/services/${{RUNBOOK_TEST_UNSET_SECRET}}"
""")


async def test_the_edited_notice_goes_out_through_the_chosen_channel(
        capture: Capture) -> None:  # noqa: F811
    channels(capture)
    incident = incident_on_the_notice()
    async with announcing(incident) as (app, pilot):
        screen = app.screen
        area = screen.query_one(TextArea)
        area.text = area.text + "\nNext update in 30 minutes."
        edited = area.text
        await choose(pilot, "status-hook")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen),
                         what="back on the incident once sent")
        [post] = capture.posts
        assert post[0] == "/hook" and post[2]["text"] == edited
        [sent] = announcements(incident)
        assert sent["channel"] == "status-hook" and sent["delivered"] is True
        assert sent["text"] == edited
        assert app.toasted("sent via status-hook")


async def test_the_picker_lists_what_can_be_sent_and_says_what_is_missing(
        capture: Capture) -> None:  # noqa: F811
    channels(capture)
    incident = incident_on_the_notice()
    async with announcing(incident) as (app, pilot):
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoicePrompt),
                         what="the picker")
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt)
                  for i in range(options.option_count)]
        assert len(labels) == 2, "stdout is not offered: the app owns the terminal"
        assert any("ops-slack" in label and "unset: RUNBOOK_TEST_UNSET_SECRET" in label
                   for label in labels), labels
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, AnnounceScreen), "Escape leaves the text as it was"
        assert announcements(incident) == []


async def test_a_failed_send_is_recorded_unsent_and_the_text_stays(
        capture: Capture) -> None:  # noqa: F811
    channels(capture)
    capture.failing = True
    incident = incident_on_the_notice()
    async with announcing(incident) as (app, pilot):
        screen = app.screen
        drafted = screen.query_one(TextArea).text
        await choose(pilot, "status-hook")
        await wait_until(pilot, lambda: bool(announcements(incident)), what="the record")
        await settle(pilot)
        [sent] = announcements(incident)
        assert sent["delivered"] is False and "503" in sent["error"]
        assert isinstance(app.screen, AnnounceScreen), "nothing lost: still editable"
        assert app.screen.query_one(TextArea).text == drafted
        assert app.toasted("NOT sent via status-hook", "error")


async def test_without_channels_the_app_says_where_to_add_them() -> None:
    incident = incident_on_the_notice()
    async with announcing(incident) as (app, pilot):
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, AnnounceScreen)
        assert app.toasted("channels.yaml", "warning")
