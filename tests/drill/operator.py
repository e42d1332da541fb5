"""A trainee at the keyboard: drives the real app with Pilot, key by key."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input
from textual.worker import WorkerCancelled, WorkerFailed

from runbook.drill.lab import drill_store
from runbook.drill.session import app_launch
from runbook.incident import IncidentState, StepStatus
from runbook.tui import app as app_module
from runbook.tui.app import RunbookApp
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets.stage_list import StageList

SIZE = (100, 30)


class DrillApp(RunbookApp):
    CSS_PATH = Path(app_module.__file__).with_name("app.tcss")


def make_app(drill_id: str, actor: str = "trainee@lab") -> DrillApp:
    """The app as `runbook drill open` starts it: the drill store, the lab's
    inventory and known_hosts only (the tests' RUNBOOK_HOME is already scratch)."""
    launch = app_launch(drill_id)
    return DrillApp(launch.store, launch.incident_id, actor=actor, connect=launch.connect)


def journal(drill_id: str) -> IncidentState:
    return drill_store().load(drill_id)


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 60.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(20):
        # exclusive workers (reload, poll) cancel each other: not a failure here
        with contextlib.suppress(WorkerCancelled, WorkerFailed):
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


def screen(app: RunbookApp) -> IncidentScreen:
    assert isinstance(app.screen, IncidentScreen), f"on {type(app.screen).__name__}"
    return app.screen


async def opened(pilot: Pilot[Any]) -> IncidentScreen:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen)
                     and app.screen.state is not None, what="the incident screen")
    await settle(pilot)
    return screen(app)


async def goto(pilot: Pilot[Any], step_id: str) -> None:
    """Put the stage-list cursor on a step (as a click would) and keep focus there."""
    incident = screen(pilot.app)
    stages = incident.query_one(StageList)
    stages.focus()
    stages.select_step(step_id)
    await pilot.pause()
    if incident.selected != step_id:
        # The cursor was already on that node: no highlight event, so say it directly.
        stages.post_message(StageList.StepChosen(step_id))
    await wait_until(pilot, lambda: incident.selected == step_id, timeout=10,
                     what=f"cursor on {step_id} (selected {incident.selected})")
    await pilot.pause()


async def type_text(pilot: Pilot[Any], text: str) -> None:
    """Fill the focused input and press Enter (typing 80 keys adds nothing but time)."""
    focused = pilot.app.focused
    assert isinstance(focused, Input), f"focus is on {focused!r}"
    focused.value = text
    await pilot.press("enter")


async def answer(pilot: Pilot[Any], drill_id: str, step_id: str, text: str) -> None:
    await goto(pilot, step_id)
    await pilot.press("a")
    await settle(pilot)
    await type_text(pilot, text)
    await wait_until(pilot, lambda: journal(drill_id).answers.get(step_id) == text,
                     what=f"the answer to {step_id}")
    await settle(pilot)


async def skip(pilot: Pilot[Any], drill_id: str, step_id: str, reason: str) -> None:
    await goto(pilot, step_id)
    await pilot.press("s")
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("#prompt-input")),
                     what="the skip prompt")
    await type_text(pilot, reason)
    await wait_until(pilot, lambda: journal(drill_id).steps[step_id].status
                     == StepStatus.SKIPPED, what=f"{step_id} skipped")
    await settle(pilot)


async def collect(pilot: Pilot[Any], drill_id: str, step_id: str) -> None:
    """Run a collect step with r; mark it done by hand when a host did not answer."""
    await goto(pilot, step_id)
    ran_before = len(journal(drill_id).evidence)
    await pilot.press("r")
    await wait_until(pilot, lambda: not screen(pilot.app).collecting
                     and len(journal(drill_id).evidence) > ran_before,
                     timeout=90, what=f"the collection of {step_id}")
    await settle(pilot)
    if journal(drill_id).steps[step_id].status != StepStatus.DONE:
        await goto(pilot, step_id)
        await pilot.press("d")
        await wait_until(pilot, lambda: journal(drill_id).steps[step_id].status
                         == StepStatus.DONE, what=f"{step_id} done")
        await settle(pilot)


async def tick(pilot: Pilot[Any], drill_id: str, step_id: str) -> None:
    await goto(pilot, step_id)
    await pilot.press("d")
    await wait_until(pilot, lambda: journal(drill_id).steps[step_id].status == StepStatus.DONE,
                     what=f"{step_id} done")
    await settle(pilot)
