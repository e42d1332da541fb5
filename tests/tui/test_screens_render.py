"""What the operator sees at 80x24, compared as text with files checked in under
tests/tui/snapshots/. Regenerate them after a deliberate change with

    RUNBOOK_UPDATE_SNAPSHOTS=1 python -m pytest tests/tui/test_screens_render.py

and read the diff before committing it.

pytest-textual-snapshot is not used: it pins syrupy==4.8.0, which pins
pytest<9, and installing it would downgrade the suite's pytest. These are
plain-text screens instead, taken the way `App.export_screenshot()` takes its
SVG (the same compositor update, background screens included), without styles:
colours and the cursor (blinking or not) are not compared, the layout and
every character are. The clock is frozen (journal timestamps, incident ids,
the header's elapsed time) and the local timezone is UTC, so the text is the
same on every run and every machine.
"""

from __future__ import annotations

import difflib
import io
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from runbook.hosts import Host
from runbook.incident import journal, store
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook
from runbook.tui.app import RunbookApp
from runbook.tui.screens.help import HelpScreen
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.widgets import incident_header

pytestmark = pytest.mark.asyncio

SIZE = (80, 24)
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("RUNBOOK_UPDATE_SNAPSHOTS") == "1"
T0 = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
ACTOR = "tester@lab"


# -- a frozen clock -------------------------------------------------------------------


@dataclass
class Clock:
    now: datetime

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    """`datetime.now()` in the journal, the store and the header reads this clock."""
    frozen = Clock(T0)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def, override]
            return frozen.now if tz is None else frozen.now.astimezone(tz)

    for module in (journal, store, incident_header):
        monkeypatch.setattr(module, "datetime", FrozenDatetime)
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"  # the screens show local time beside UTC
    time.tzset()
    try:
        yield frozen
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


# -- fixed incidents ------------------------------------------------------------------


WEB = [Host(name=f"web-{n}", address=f"10.20.0.{n}", source="inventory") for n in (1, 2, 3)]
DB = [Host(name="db-2", address="10.30.0.2", source="inventory")]


def make_incidents(clock: Clock) -> None:
    """One open incident part-way through, one resolved, one closed drill."""
    incidents = IncidentStore()
    clock.at(-180)
    disk = incidents.create(playbook=find_playbook("disk-full"), hosts=DB,
                            title="Disk full on db-2", severity="SEV3", actor=ACTOR)
    clock.at(-150)
    disk.resolve(ACTOR, "rotated the runaway log")
    clock.at(-120)
    drill = incidents.create(playbook=find_playbook("process-down"), hosts=WEB[:1],
                             title="sshd down on web-1", severity="SEV4", drill=True,
                             actor=ACTOR)
    clock.at(-100)
    drill.resolve(ACTOR)
    drill.close(ACTOR)

    clock.at(0)
    checkout = incidents.create(playbook=find_playbook("generic-host"), hosts=WEB,
                                title="Checkout API returning 502s", severity="SEV2",
                                commander="alice", detected_at=T0 - timedelta(minutes=4),
                                actor=ACTOR)
    clock.at(3)
    checkout.complete_step("confirm-alert", ACTOR)
    clock.at(5)
    checkout.answer("what-fired", "5xx rate alert on the checkout LB since 09:26 UTC", ACTOR)
    clock.at(7)
    checkout.note("web-2 was deployed at 09:20", ACTOR)
    clock.at(12 + 34 / 60)  # the header shows 16m34s since detection


# -- rendering -------------------------------------------------------------------------


def screen_text(app: App[object]) -> str:
    """The screen as export_screenshot() composes it, as plain text lines."""
    console = Console(width=SIZE[0], height=SIZE[1], file=io.StringIO(), record=True,
                      color_system=None, force_terminal=True, legacy_windows=False,
                      safe_box=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    lines = console.export_text(styles=False).split("\n")[:SIZE[1]]
    return "\n".join(line.rstrip() for line in lines) + "\n"


async def settled(pilot: Pilot[None], ready: Callable[[], bool], what: str,
                  timeout: float = 15.0) -> str:
    """Wait until `ready()` holds and the workers are done, then until two renders
    in a row are the same; returns that text."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)
    previous = None
    while True:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        text = screen_text(pilot.app)
        if text == previous:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"the screen never settled for {what}:\n{text}")
        previous = text


def assert_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        raise AssertionError(f"no snapshot {path}; create it with RUNBOOK_UPDATE_SNAPSHOTS=1 "
                             f"and check it in. The screen was:\n{text}")
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(difflib.unified_diff(
            expected.splitlines(keepends=True), text.splitlines(keepends=True),
            f"{path.name} (expected)", f"{path.name} (rendered)"))
        raise AssertionError(f"{name} differs from {path} "
                             f"(RUNBOOK_UPDATE_SNAPSHOTS=1 regenerates it):\n{diff}")


def incident_loaded(app: App[object]) -> bool:
    screen = app.screen
    return isinstance(screen, IncidentScreen) and screen.state is not None


def make_app() -> RunbookApp:
    return RunbookApp(IncidentStore(), actor=ACTOR)


# -- the screens ------------------------------------------------------------------------


async def test_incident_screen(clock: Clock) -> None:
    make_incidents(clock)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        text = await settled(pilot, lambda: incident_loaded(app), "the incident screen")
        assert_snapshot("incident_step", text)


async def test_incident_timeline_tab(clock: Clock) -> None:
    make_incidents(clock)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, lambda: incident_loaded(app), "the incident screen")
        await pilot.press("4")
        text = await settled(pilot, lambda: "time (UTC · local)" in screen_text(app),
                             "the timeline tab")
        assert_snapshot("incident_timeline", text)


async def test_home_screen(clock: Clock) -> None:
    make_incidents(clock)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # `runbook` resumes the open incident; Esc goes back to the list.
        await settled(pilot, lambda: incident_loaded(app), "the incident screen")
        await pilot.press("escape")
        text = await settled(pilot, lambda: isinstance(app.screen, HomeScreen) and
                             len(app.screen.ids) == 3, "the home screen")
        assert_snapshot("home", text)


async def test_home_screen_empty(clock: Clock) -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        text = await settled(pilot, lambda: "No incidents yet" in screen_text(app),
                             "the empty home screen")
        assert_snapshot("home_empty", text)


async def test_help_screen(clock: Clock) -> None:
    make_incidents(clock)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settled(pilot, lambda: incident_loaded(app), "the incident screen")
        await pilot.press("question_mark")
        text = await settled(pilot, lambda: isinstance(app.screen, HelpScreen) and
                             "Keys: incident screen" in screen_text(app), "the help screen")
        assert_snapshot("help", text)
