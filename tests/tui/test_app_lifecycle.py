"""The incident worked from open to closed without leaving the app, against the
real lab fleet (tests/fleet.py): a remediation narrowed to one host and reviewed
by a second person, the step done by its own action, the lifecycle keys, keys
that work whatever had focus, filters, and a shell on a host."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, SelectionList

from runbook import paths
from runbook.drill.sshd_lab import SshdLab
from runbook.incident import StepStatus
from runbook.incident.store import Incident, IncidentStore
from runbook.tui.screens.prompts import ChoicePrompt, TextPrompt
from runbook.tui.screens.remediate import RemediateScreen
from runbook.tui.widgets.hosts_panel import HostsPanel
from runbook.tui.widgets.stage_list import StageList
from runbook.tui.widgets.timeline import TimelinePanel
from tests.fleet import write_inventory
from tests.tui.test_incident_flow import (
    PROPOSER,
    act,
    goto,
    journal,
    make_app,
    open_incident,
    opened,
    recorded,
    screen_text,
    settle,
    static_text,
    status,
    type_line,
    wait_until,
)

pytestmark = pytest.mark.asyncio

PLAYBOOK = """\
name: lifecycle-lab
title: Lifecycle test playbook
stages:
  detect:
    - id: look
      kind: checklist
      title: Look at the graphs
  remediate:
    - id: fix
      kind: remediate
      title: Write a marker on the host
      command: echo fixed on {{ host }}
      rollback: Nothing to undo.
      review: true
    - id: after-fix
      kind: checklist
      title: Check the graphs again
  report:
    - id: resolved-notice
      kind: announce
      purpose: resolved
      title: Say it is over
      template: "Resolved: {{ title }}"
    - id: write-postmortem
      kind: report
      title: Write the postmortem
"""


@pytest.fixture
def inventory(sshd_fleet: SshdLab, tmp_path: Path) -> Path:
    return write_inventory(sshd_fleet, tmp_path / "inventory.yaml")


@pytest.fixture
def playbook() -> str:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "lifecycle-lab.yaml").write_text(PLAYBOOK)
    return "lifecycle-lab"


def footer(app: Any) -> str:
    return screen_text(app).split("\n")[-1]


async def answer_prompt(pilot: Any, text: str) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TextPrompt),
                     what="the prompt")
    await type_line(pilot, text)


async def choose(pilot: Any, option_id: str) -> None:
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ChoicePrompt),
                     what="the choice")
    prompt = pilot.app.screen
    ids = [key for key, _ in prompt.options]
    for _ in range(ids.index(option_id)):
        await pilot.press("down")
    await act(pilot, "enter")


async def test_a_remediation_narrowed_to_one_host_runs_there_only_and_finishes_its_step(
        sshd_fleet: SshdLab, inventory: Path, playbook: str) -> None:
    iid = open_incident(inventory, ["lab1", "lab2"], playbook=playbook).id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, iid)
        await goto(pilot, "fix")
        assert "x Fix" in footer(app) and "a Answer" not in footer(app)
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, RemediateScreen)
                         and app.screen.command is not None, what="the proposal")
        remedy = app.screen
        assert isinstance(remedy, RemediateScreen)
        shown = screen_text(app)
        # Every field is on screen and labelled at 80x24.
        for label in ("Hosts: 2 of 2 ticked", "Runs on 2 of 2 hosts", "on lab2:",
                      "echo fixed on lab1",
                      f"Reviewer (a second person, not {PROPOSER}):",
                      "To run it, type: run on 2 hosts (after the review)"):
            assert label in shown, shown

        # Untick lab2 and plan again: a new proposal, for lab1 alone.
        listing = remedy.query_one("#hosts", SelectionList)
        listing.focus()
        await pilot.pause()
        listing.highlighted = 1
        await pilot.press("space", "p")
        await wait_until(pilot, lambda: remedy.command is not None
                         and remedy.command.hosts == ["lab1"], what="the narrowed plan")
        await settle(pilot)
        shown = screen_text(app)
        assert "Hosts: 1 of 2 ticked" in shown and "on lab1:" in shown
        assert "To run it, type: run on 1 host" in shown
        assert [p["hosts"] for p in recorded(iid, "command.proposed")] == [
            ["lab1", "lab2"], ["lab1"]]

        reviewer = remedy.query_one("#reviewer", Input)
        reviewer.focus()
        await pilot.pause()
        await type_line(pilot, PROPOSER.split("@")[0])  # the operator's own name
        assert app.toasted("cannot also be its reviewer", "error")
        await type_line(pilot, "bob")
        confirm = remedy.query_one("#confirm", Input)
        await wait_until(pilot, lambda: not confirm.disabled, what="the confirmation")
        await type_line(pilot, "run on 1 host")
        await wait_until(pilot, lambda: remedy.step_done, what="the run and the step")
        [executed] = recorded(iid, "command.executed")
        assert executed["host"] == "lab1" and executed["exit_code"] == 0
        assert executed["approvers"] == ["bob"]
        assert status(iid, "fix") == StepStatus.DONE
        await act(pilot, "escape")
        assert app.screen is screen
        await wait_until(pilot, lambda: screen.selected == "after-fix",
                         what="the cursor on the next step")


async def test_the_lifecycle_from_the_keys_and_the_palette(
        sshd_fleet: SshdLab, inventory: Path, playbook: str) -> None:
    iid = open_incident(inventory, ["lab1"], playbook=playbook).id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, iid)

        def palette() -> list[str]:
            return [c.title for c in app.get_system_commands(screen)]

        assert any(t.startswith("Resolve (R)") for t in palette())
        assert not any(t.startswith(("Close (C)", "Reopen (O)")) for t in palette())

        await act(pilot, "S")
        await choose(pilot, "SEV1")
        await answer_prompt(pilot, "checkout is down")
        await act(pilot, "o")
        await choose(pilot, "scribe")
        await answer_prompt(pilot, "carol")
        state = journal(iid)
        assert state.severity == "SEV1" and state.roles["scribe"] == "carol"

        # The resolved notice cannot go out while the incident is open.
        await goto(pilot, "resolved-notice")
        await pilot.press("e")
        await wait_until(pilot, lambda: "Resolved:" in app.screen.query_one("#message").text,
                         what="the drafted notice")
        await act(pilot, "ctrl+w")
        assert app.toasted("is still open: the resolved notice", "error")
        assert recorded(iid, "announcement.sent") == []
        await act(pilot, "escape")

        await act(pilot, "R")
        await answer_prompt(pilot, "rolled back the deploy")
        assert journal(iid).status == "resolved"
        assert "O Reopen" in footer(app) and "C Close" in footer(app)
        assert "R Resolve" not in footer(app)
        assert any(t.startswith("Close (C)") for t in palette())

        await act(pilot, "C")
        await choose(pilot, "close")
        assert journal(iid).status == "closed"
        await act(pilot, "O")
        await answer_prompt(pilot, "it came back")
        state = journal(iid)
        assert state.status == "open"
        kinds = [e.type for e in state.events]
        assert kinds.index("incident.resolved") < kinds.index("incident.closed") \
            < kinds.index("incident.reopened")
        assert state.events[kinds.index("incident.resolved")].data["summary"] == \
            "rolled back the deploy"


async def test_j_and_k_move_whatever_had_focus_and_slash_filters_the_table(
        sshd_fleet: SshdLab, inventory: Path, playbook: str) -> None:
    iid = open_incident(inventory, ["lab1", "lab2"], playbook=playbook).id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, iid)
        Incident(IncidentStore(), iid).note("lab2 looks fine", PROPOSER)
        Incident(IncidentStore(), iid).note("lab1 swaps hard", PROPOSER)
        screen.reload()
        await settle(pilot)
        # Into the timeline table, then back to the Step tab with 1: j still moves.
        await act(pilot, "4", "tab")
        assert isinstance(screen.focused, TimelinePanel)
        await act(pilot, "1")
        stages = screen.query_one(StageList)
        before = stages.cursor_line
        await act(pilot, "j")
        assert isinstance(screen.focused, StageList) and stages.cursor_line == before + 1

        # / on the timeline keeps the rows that match; Esc brings them all back.
        await act(pilot, "4")
        timeline = screen.query_one(TimelinePanel)
        everything = timeline.row_count
        await act(pilot, "slash")
        assert screen.focused is screen.query_one("#filter", Input)
        await pilot.press(*"swaps")
        await settle(pilot)
        assert timeline.row_count == 1 and "lab1 swaps hard" in str(timeline.plain_rows())
        await act(pilot, "escape")
        assert timeline.row_count == everything

        # From one table to another with 2: the keys follow to the table shown,
        # and its selected row is written out in full under it.
        await act(pilot, "2")
        assert isinstance(screen.focused, HostsPanel)
        detail = static_text(screen, "#hosts-detail")
        assert detail.startswith("host: lab1")


async def test_q_quits_at_once_when_nothing_runs(sshd_fleet: SshdLab, inventory: Path,
                                                 playbook: str) -> None:
    iid = open_incident(inventory, ["lab1"], playbook=playbook).id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        await opened(pilot, iid)
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


async def test_a_shell_on_the_host_is_journalled_with_its_exit_status(
        sshd_fleet: SshdLab, inventory: Path, playbook: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`!` opens the real OpenSSH client to the real lab sshd, with runbook's user,
    port, key and known_hosts. The fake here is only the terminal: Pilot has none
    to hand over, so the shell runs `exit 7` instead of waiting for a person."""
    import runbook.host_shell as host_shell

    ran: list[list[str]] = []

    def without_a_terminal(argv: list[str]) -> int:
        ran.append(argv)
        return subprocess.run([*argv, "exit 7"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30).returncode

    monkeypatch.setattr(host_shell, "_run_in_terminal", without_a_terminal)
    iid = open_incident(inventory, ["lab1", "lab2"], playbook=playbook).id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, iid)
        await act(pilot, "2", "tab", "j")  # the Hosts tab, cursor on lab2
        monkeypatch.setattr(type(app), "suspend", lambda _app: contextlib.nullcontext())
        await act(pilot, "exclamation_mark")
        await choose(pilot, "plain")
        await wait_until(pilot, lambda: bool(recorded(iid, "shell.closed")),
                         what="the shell to end")
        assert app.toasted("Back from lab2: exit 7")
        assert app.screen is screen
    [argv] = ran
    lab2 = next(h for h in sshd_fleet.hosts if h.name == "lab2")
    assert argv[0] == "ssh" and argv[-1] == lab2.address
    assert ["-p", str(lab2.port)] == argv[argv.index("-p"):argv.index("-p") + 2]
    assert f"UserKnownHostsFile={sshd_fleet.known_hosts}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    [opened_event] = recorded(iid, "shell.opened")
    [closed] = recorded(iid, "shell.closed")
    assert opened_event["host"] == closed["host"] == "lab2"
    assert closed["exit_status"] == 7 and closed["capture"] is None
