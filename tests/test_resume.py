"""Plain `runbook` picks up the incident the operator was working in, never one
that an ad-hoc `runbook collect HOST` opened only to hold its evidence."""

from __future__ import annotations

import pytest

from runbook.incident.store import Incident, IncidentStore
from runbook.tui.app import RunbookApp
from runbook.tui.screens.incident import IncidentScreen
from tests.conftest import run_cli

ACTOR = "tester@lab"  # RUNBOOK_ACTOR in tests/conftest.py


def test_an_ad_hoc_collection_says_it_opened_an_incident_and_is_not_resumed() -> None:
    worked = run_cli("new", "-p", "generic-host", "-H", "localhost",
                     "-t", "disk full").stdout.strip()
    run_cli("note", worked, "looking at /var")
    collected = run_cli("collect", "localhost", "-c", "uptime")
    opened = collected.stderr.split("opened incident ", 1)[1].split()[0]
    assert opened != worked
    assert f"--incident {opened}" in collected.stderr, "how to add to it is said too"

    store = IncidentStore()
    assert store.load(opened).origin == "collect" and store.load(worked).origin == "new"
    last = store.last_worked(ACTOR)
    assert last is not None and last.id == worked, "the newer collection took over"

    # Someone works in the collection's incident: for them it is the one to resume.
    Incident(store, opened).note("this one is mine", "bob@bastion")
    bob = store.last_worked("bob@bastion")
    assert bob is not None and bob.id == opened
    again = store.last_worked(ACTOR)
    assert again is not None and again.id == worked


@pytest.mark.asyncio
async def test_the_app_without_an_argument_opens_the_incident_worked_in_last() -> None:
    worked = run_cli("new", "-p", "generic-host", "-H", "localhost",
                     "-t", "disk full").stdout.strip()
    run_cli("collect", "localhost", "-c", "uptime")
    app = RunbookApp(IncidentStore(), actor=ACTOR)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if isinstance(app.screen, IncidentScreen) and app.screen.state is not None:
                break
            await pilot.pause(0.05)
        assert isinstance(app.screen, IncidentScreen)
        assert app.screen.incident.id == worked
        # Let the screen finish mounting before the app exits (Textual's tabs
        # raise when torn down mid-mount).
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
