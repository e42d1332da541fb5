"""The keyboard on the incident screen, beyond the walk in test_incident_flow:
type-ahead, and reaching the tables' rows.

Keys typed in one burst (a paste, a laggy SSH link that delivers a line at once)
right after a key that opens an input: the rest of the burst lands in that input.
Those keys go in the way a terminal driver delivers them, all queued before the
app handles the first one; Pilot.press would wait for the app between keys and
so could not show the problem. The incident's only host is this machine:
nothing here connects anywhere.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Input

from runbook.hosts import Host
from runbook.incident import EventType, StepStatus
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.tui.app import RunbookApp
from runbook.tui.screens.evidence import EvidenceScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.screens.prompts import TextViewer
from runbook.tui.widgets.hosts_panel import FindingsPanel
from runbook.tui.widgets.stage_list import StageList
from runbook.tui.widgets.timeline import TimelinePanel
from tests.conftest import record_collector_run
from tests.tui.test_incident_flow import settle, wait_until

pytestmark = pytest.mark.asyncio

LOCAL = Host(name="localhost", address="localhost", local=True, source="local")


def burst(app: RunbookApp, *keys: str) -> None:
    """Queue every key before the app handles any (what a terminal paste does)."""
    for key in keys:
        character = {"enter": "\r", "space": " "}.get(key, key if len(key) == 1 else None)
        event = events.Key(key, character)
        event.set_sender(app)
        app._driver.send_message(event)  # type: ignore[union-attr]


async def opened_app(pilot: Pilot[Any]) -> IncidentScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen)
                     and app.screen.state is not None, what="the incident screen")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, IncidentScreen) and isinstance(screen.focused, StageList)
    return screen


def new_incident() -> str:
    return IncidentStore().create(playbook=find_playbook("generic-host"), hosts=[LOCAL],
                                  title="typeahead", actor="tester").id


async def test_a_note_typed_in_one_burst_after_n_is_recorded_whole() -> None:
    incident_id = new_incident()
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        first = screen.selected
        # "d" and "e" and "x" are commands on the stage list (done, announce, fix):
        # inside the burst they are letters of the note.
        burst(app, "n", *"disk full; expect x", "enter")
        await wait_until(pilot, lambda: any(e.type == EventType.NOTE_ADDED
                                            for e in IncidentStore().load(incident_id).events),
                         what="the note in the journal")
        await settle(pilot)
        state = IncidentStore().load(incident_id)
        [note] = [e.data for e in state.events if e.type == EventType.NOTE_ADDED]
        assert note["text"] == "disk full; expect x"
        assert state.steps[first].status == StepStatus.PENDING, "no letter ran as a command"
        assert isinstance(app.screen, IncidentScreen), "no letter opened another screen"
        assert isinstance(screen.focused, StageList)
        assert screen.query_one("#note", Input).value == ""


async def test_a_skip_reason_typed_in_one_burst_after_s_is_recorded() -> None:
    incident_id = new_incident()
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        first = screen.selected
        assert first is not None
        burst(app, "s", *"paged by mistake", "enter")
        await wait_until(pilot, lambda: IncidentStore().load(incident_id).steps[first].status
                         == StepStatus.SKIPPED, what="the skip in the journal")
        step = IncidentStore().load(incident_id).steps[first]
        assert step.reason == "paged by mistake"


async def test_keys_before_the_input_opens_still_act_as_commands() -> None:
    incident_id = new_incident()
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        stages = screen.query_one(StageList)
        line = stages.cursor_line
        burst(app, "j", "n", *"jk")
        await wait_until(pilot, lambda: screen.query_one("#note", Input).value == "jk",
                         what="'jk' in the note")
        assert stages.cursor_line == line + 1, "the j before n moved the cursor, once"


async def test_a_timeline_event_opens_in_full_with_enter() -> None:
    """The timeline's last column is cut at 80 columns; Enter shows the whole event."""
    incident_id = new_incident()
    long_note = "web-2 was deployed at 14:02 with the new connection pool " * 3 + "\x1b]0;x\x07"
    Incident(IncidentStore(), incident_id).note(long_note, "tester")
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        await pilot.press("4", "tab")
        timeline = screen.query_one(TimelinePanel)
        assert screen.focused is timeline
        assert timeline.cursor_row == timeline.row_count - 1, "the newest event is selected"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, TextViewer), what="the event")
        shown = str(app.screen.query_one("#viewer-text").visual)
        assert "Note: web-2 was deployed" in shown and shown.count("connection pool") >= 6
        assert "\x1b" not in shown and "\x07" not in shown
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and screen.focused is timeline


async def test_enter_on_a_finding_opens_its_evidence_at_the_line() -> None:
    """Findings tab, Tab into the table, the worst finding first, Enter: the
    evidence viewer opens on the line the finding came from."""
    incident_id = new_incident()
    store = IncidentStore()
    output = (b"Filesystem 1024-blocks Used Available Capacity Mounted on\n"
              b"/dev/vda1 100 10 90 10% /\n"
              b"/dev/vdb 100 97 3 97% /data\n")
    findings = record_collector_run(Incident(store, incident_id), "localhost", "df", output)
    assert [f["resource"] for f in findings if f["level"] != "info"] == ["disk:/data"]
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        await pilot.press("3", "tab")
        table = screen.query_one(FindingsPanel)
        assert screen.focused is table and table.cursor_row == 0
        assert table.plain_rows()[0][2] == "disk:/data", "worst first"
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, EvidenceScreen),
                         what="the evidence viewer")
        viewer = app.screen
        await wait_until(pilot, lambda: viewer.query_one("#evidence").current_line == 3,
                         what="the finding's line")
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_the_use_tab_gives_a_word_per_cell_and_the_row_in_full_below() -> None:
    """5 opens the USE summary; Tab into it; the line under the table gives the
    selected resource's cells in full, with the evidence of the finding."""
    from runbook.tui.widgets.use_panel import UsePanel

    incident_id = new_incident()
    output = (b"Filesystem 1024-blocks Used Available Capacity Mounted on\n"
              b"/dev/vda1 100 10 90 10% /\n"
              b"/dev/vdb 100 97 3 97% /data\n")
    record_collector_run(Incident(IncidentStore(), incident_id), "localhost", "df", output)
    app = RunbookApp(IncidentStore(), incident_id, actor="tester")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened_app(pilot)
        await pilot.press("5", "tab")
        table = screen.query_one(UsePanel)
        await wait_until(pilot, lambda: table.row_count > 0, what="the USE rows")
        rows = table.plain_rows()
        assert ["localhost", "space /data", "CRIT", "—", "—"] in rows
        assert ["localhost", "space /", "ok", "—", "—"] in rows
        assert ["localhost", "CPU", "unchk", "unchk", "—"] in rows
        await pilot.press(*["j"] * [r[1] for r in rows].index("space /data"))
        detail = str(screen.query_one("#use-detail").render())
        assert "utilization: critical: /data is 97% full" in detail
        assert "[df:3 /dev/vdb 100 97 3 97% /data]" in detail
