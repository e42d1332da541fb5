"""What the app shows without being asked: similar past incidents in the scope
stage, and incidents opened elsewhere appearing in the list."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.widgets import DataTable, Static

from runbook.hosts import Host
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook
from runbook.report import archive
from runbook.tui.app import RunbookApp
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets.stage_list import StageList

pytestmark = pytest.mark.asyncio

WEB = Host(name="web1", address="10.0.0.5", role="web", project="shop", source="test")


async def wait_until(pilot, condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.1)


async def test_scope_stage_suggests_a_similar_closed_incident() -> None:
    store = IncidentStore()
    past = store.create(playbook=find_playbook("generic-host"), hosts=[WEB],
                        title="web1 ran out of inodes", actor="alice")
    past.resolve("alice", summary="cleared the session files")
    archive.close(past, "alice")  # closing indexes it in the archive
    current = store.create(playbook=find_playbook("generic-host"), hosts=[WEB],
                           title="web1 slow again", actor="bob")
    app = RunbookApp(store, current.id, actor="bob")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen)
                         and app.screen.state is not None)
        screen = app.screen
        stages = screen.query_one(StageList)
        # the app first places the cursor on the current step, once laid out
        await wait_until(pilot, lambda: stages.cursor_node is not None
                         and stages.cursor_node.data == screen.selected)
        scope_step = next(s.step.id for s in screen.state.steps.values() if s.stage == "scope")
        screen.query_one(StageList).select_step(scope_step)
        similar = screen.query_one("#step-similar", Static)
        await wait_until(pilot, lambda: "web1 ran out of inodes" in str(similar.render()))
        assert past.id in str(similar.render())
        # outside the scope stage the suggestion is not shown
        first = next(iter(screen.state.steps))
        screen.query_one(StageList).select_step(first)
        await wait_until(pilot, lambda: "Similar" not in str(similar.render()))


async def test_an_incident_opened_elsewhere_appears_on_the_home_screen() -> None:
    store = IncidentStore()
    app = RunbookApp(store, actor="bob")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)
        table = app.screen.query_one(DataTable)
        assert table.row_count == 0
        # another process (an alert through `runbook listen`, a colleague's CLI)
        await asyncio.to_thread(store.create, playbook=find_playbook("generic-host"),
                                hosts=[WEB], title="alert: HighErrorRate on web1",
                                actor="alertmanager")
        await wait_until(pilot, lambda: table.row_count == 1, timeout=12)
