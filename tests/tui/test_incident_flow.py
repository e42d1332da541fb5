"""The incident screen driven as an operator drives it: keys in, what the screen
shows and what the journal records out. Collections and remediations run over
real sshd daemons on loopback (tests/fleet.py).
"""

from __future__ import annotations

import io
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.console import Console
from rich.text import Text
from textual import events
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Log, Static

from runbook import paths
from runbook.connect_settings import ConnectSettings
from runbook.drill.sshd_lab import SshdLab
from runbook.incident import IncidentState, StepStatus
from runbook.incident.store import Incident, IncidentStore
from runbook.inventory import load_inventory
from runbook.playbook import find_playbook
from runbook.tui import app as app_module
from runbook.tui.app import RunbookApp
from runbook.tui.screens.announce import AnnounceScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.screens.remediate import RemediateScreen
from runbook.tui.screens.report import ReportScreen
from runbook.tui.widgets.hosts_panel import FindingsPanel, HostsPanel
from runbook.tui.widgets.incident_header import IncidentHeader
from runbook.tui.widgets.row_table import RowTable
from runbook.tui.widgets.stage_list import StageList
from runbook.tui.widgets.step_view import StepView
from runbook.tui.widgets.timeline import TimelinePanel
from tests.conftest import record_collector_run
from tests.fleet import DeadEndpoint, write_inventory

pytestmark = pytest.mark.asyncio

SIZE = (80, 24)
PROPOSER = "alice@lab"
# A unit no host has: `systemctl restart` of it fails at once and changes nothing,
# whatever the lab machine is (with or without systemd).
HARMLESS_UNIT = "runbook-test-no-such-unit.service"
# What a hostile host (or a pasted alert) might send: an OSC title, a screen clear,
# an 8-bit CSI, an OSC 52 clipboard write, and a bell.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\x1b]52;c;cHduZWQ=\x07"
# HOSTILE as the operator sees it: every control shown as its escape, the
# colour sequence (8-bit SGR) removed whole.
SHOWN = r"\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# -- the app, as the operator starts it ------------------------------------------------


class RecordingApp(RunbookApp):
    """The real app; every notification is also kept, so a test can read toasts
    that have already timed out."""

    CSS_PATH = Path(app_module.__file__).with_name("app.tcss")  # relative to the subclass

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.toasts: list[tuple[str, str]] = []

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        self.toasts.append((str(severity), str(message)))
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def toasted(self, fragment: str, severity: str | None = None) -> bool:
        return any(fragment in " ".join(text.split()) and severity in (None, level)
                   for level, text in self.toasts)


def make_app(lab: SshdLab, inventory: Path, incident_id: str | None = None,
             actor: str = PROPOSER) -> RecordingApp:
    return RecordingApp(IncidentStore(), incident_id, actor=actor,
                        connect=ConnectSettings(inventories=(inventory,),
                                                known_hosts=(lab.known_hosts,),
                                                connect_timeout=3.0))


def open_incident(inventory: Path, hosts: list[str], playbook: str = "generic-host",
                  title: str = "lab hosts slow") -> Incident:
    selected = load_inventory([inventory]).select(hosts)
    return IncidentStore().create(playbook=find_playbook(playbook), hosts=selected,
                                  title=title, actor=PROPOSER)


@pytest.fixture
def inventory(sshd_fleet: SshdLab, tmp_path: Path) -> Path:
    return write_inventory(sshd_fleet, tmp_path / "inventory.yaml")


# -- waiting and reading ----------------------------------------------------------------


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20.0,
                     what: str = "condition") -> None:
    """Poll the app until `condition()` holds (workers report back asynchronously)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def settle(pilot: Pilot[Any]) -> None:
    """Wait for every worker, and for the workers they start, to finish and report."""
    for _ in range(20):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in pilot.app.workers):
            return


def journal(incident_id: str) -> IncidentState:
    return IncidentStore().load(incident_id)


def recorded(incident_id: str, kind: str) -> list[dict[str, Any]]:
    return [e.data for e in journal(incident_id).events if e.type == kind]


def incident_screen(app: RunbookApp) -> IncidentScreen:
    screen = app.screen
    assert isinstance(screen, IncidentScreen), f"on {type(screen).__name__}"
    return screen


def screen_text(app: RunbookApp) -> str:
    """Every character on screen, as the terminal would show it."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def cells(table: DataTable[Any] | RowTable) -> list[list[str]]:
    if isinstance(table, RowTable):
        return table.plain_rows()
    rows = []
    for row in range(table.row_count):
        rows.append([cell.plain if isinstance(cell, Text) else str(cell)
                     for cell in table.get_row_at(row)])
    return rows


def host_states(app: RunbookApp) -> dict[str, str]:
    return {row[0]: row[2] for row in cells(incident_screen(app).query_one(HostsPanel))}


def timeline_text(app: RunbookApp) -> str:
    return "\n".join(" | ".join(row) for row in cells(
        incident_screen(app).query_one(TimelinePanel)))


def static_text(screen: Any, selector: str) -> str:
    content = screen.query_one(selector, Static).visual
    if hasattr(content, "plain"):
        return str(content.plain)
    # A rich renderable (the step's Markdown): its text as drawn on a wide line.
    console = Console(width=500, file=io.StringIO(), color_system=None)
    with console.capture() as captured:
        console.print(getattr(content, "_renderable", content))
    return " ".join(captured.get().split())


async def opened(pilot: Pilot[Any], incident_id: str) -> IncidentScreen:
    """The incident screen is up and shows the journal."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen)
                     and app.screen.state is not None, what="the incident screen")
    screen = incident_screen(app)
    assert screen.incident.id == incident_id
    await settle(pilot)
    return screen


async def goto(pilot: Pilot[Any], step_id: str) -> None:
    """Move the stage-list cursor, key by key, to a step."""
    screen = incident_screen(pilot.app)
    assert isinstance(screen.focused, StageList), f"focus is on {screen.focused!r}"
    order = list(screen.state.steps)  # type: ignore[union-attr]
    for _ in range(2 * len(order) + 10):
        if screen.selected == step_id:
            await pilot.pause()
            return
        below = order.index(step_id) > order.index(screen.selected)  # type: ignore[arg-type]
        await pilot.press("down" if below else "up")
    raise AssertionError(f"could not reach {step_id}; selected {screen.selected}")


async def act(pilot: Pilot[Any], *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


async def type_line(pilot: Pilot[Any], text: str) -> None:
    """Paste a line into the focused input (as fast as a person pastes; Pilot
    takes ~0.1 s a key) and press Enter."""
    pilot.app.post_message(events.Paste(text))
    await pilot.pause()
    await pilot.press("enter")
    await settle(pilot)


async def type_keys(pilot: Pilot[Any], text: str) -> None:
    """Type a line key by key, then Enter."""
    await pilot.press(*text, "enter")
    await settle(pilot)


async def skip(pilot: Pilot[Any], reason: str) -> None:
    """s, then the reason in the prompt, then Enter."""
    await pilot.press("s")
    await wait_until(pilot, lambda: bool(pilot.app.screen.query("#prompt-input")),
                     what="the prompt for a reason")
    await type_line(pilot, reason)


def stage_marks(screen: IncidentScreen) -> dict[str, str]:
    """Each step's line in the stage list: its mark and title."""
    stages = screen.query_one(StageList)
    return {step_id: node.label.plain for step_id, node in stages._leaves.items()}


def status(incident_id: str, step_id: str) -> StepStatus:
    return journal(incident_id).steps[step_id].status


def done_before(incident: Incident, step_id: str) -> None:
    """Tick off every step before `step_id` (through the core, as a CLI user would),
    so the app opens on it."""
    for step in incident.state().steps.values():
        if step.step.id == step_id:
            return
        incident.complete_step(step.step.id, PROPOSER, "done earlier")


# -- 1. the whole playbook ----------------------------------------------------------------


async def test_walk_the_whole_generic_host_playbook(sshd_fleet: SshdLab, inventory: Path,
                                                    ) -> None:
    incident = open_incident(inventory, ["lab1", "lab2"], title="lab hosts slow")
    iid = incident.id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        assert screen.selected == "confirm-alert"

        # detect: tick the checklist, answer the question
        await act(pilot, "d")
        assert status(iid, "confirm-alert") == StepStatus.DONE
        assert screen.selected == "what-fired"
        await act(pilot, "a")
        assert screen.focused is screen.query_one("#answer", Input)
        await type_line(pilot, "load alert on lab1 and lab2 at 09:12Z, confirmed on graphs")
        assert journal(iid).answers["what-fired"] == ("load alert on lab1 and lab2 at 09:12Z, "
                                                      "confirmed on graphs")
        assert journal(iid).records["detection"].startswith("load alert")
        assert screen.selected == "take-roles"
        assert isinstance(screen.focused, StageList)

        # announce: the notice is drafted from the journal, saved, and recorded
        await act(pilot, "d")
        assert screen.selected == "initial-notice"
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AnnounceScreen)
                         and "load alert on lab1" in app.screen.query_one("#message").text,
                         what="the drafted announcement")
        drafted = app.screen.query_one("#message").text
        assert "lab hosts slow" in drafted and "lab1, lab2" in drafted
        await act(pilot, "ctrl+w")
        await wait_until(pilot, lambda: isinstance(app.screen, IncidentScreen),
                         what="back on the incident")
        [sent] = recorded(iid, "announcement.sent")
        assert sent["text"] == drafted and sent["delivered"] is True
        assert sent["step"] == "initial-notice" and sent["channel"].startswith("file:")
        assert Path(sent["channel"].removeprefix("file:")).read_text() == drafted
        assert app.toasted("recorded")
        await settle(pilot)
        # Sent: the step is done by the send itself, and the cursor has moved on.
        await wait_until(pilot, lambda: status(iid, "initial-notice") == StepStatus.DONE,
                         what="the announce step to be done")
        assert journal(iid).steps["initial-notice"].reason == "announcement recorded"

        # scope: skip a question with a reason, run a collect step
        assert screen.selected == "confirm-hosts"
        await act(pilot, "d")
        assert screen.selected == "what-changed"
        await skip(pilot, "nothing deployed this week")
        step = journal(iid).steps["what-changed"]
        assert step.status == StepStatus.SKIPPED
        assert step.reason == "nothing deployed this week"
        assert stage_marks(screen)["what-changed"].startswith("↷ ")
        assert screen.selected == "collect-changes"

        await pilot.press("r")
        await wait_until(pilot, lambda: status(iid, "collect-changes") == StepStatus.DONE,
                         what="the collection to finish and the step to be done")
        await settle(pilot)
        assert host_states(app) == {"lab1": "ok", "lab2": "ok"}
        visible = screen_text(app)  # the Hosts tab is up
        assert re.search(r"lab1\s.*\sok\s", visible) and re.search(r"lab2\s.*\sok\s", visible)
        assert app.toasted("Collection finished: 2/2 hosts answered")
        assert stage_marks(screen)["collect-changes"].startswith("✔ ")
        ran = [e for e in recorded(iid, "collector.ran") if e.get("step") == "collect-changes"]
        assert {(e["host"], e["collector"]) for e in ran} == {
            (h, c) for h in ("lab1", "lab2") for c in ("last", "packages", "recent-config")}
        assert all(e["status"] == "ok" for e in ran)
        for run in ran:
            assert (IncidentStore().directory(iid) / run["stdout"]).is_file()
        findings = [f for e in ran for f in e.get("findings") or []]
        assert screen.query_one(FindingsPanel).row_count == len(findings)
        done_rows = {row[0]: row[3] for row in cells(screen.query_one(HostsPanel))}
        assert done_rows == {"lab1": "3/3", "lab2": "3/3"}
        await act(pilot, "1")
        assert screen.selected == "impact", "the cursor goes on once the step is done"
        await act(pilot, "k")  # back to the collect step, which shows the run's outcome
        assert "Last run: 6/6 ok" in static_text(screen, "#step-extra")

        await goto(pilot, "impact")
        await act(pilot, "a")
        await type_line(pilot, "p99 latency doubled for the API on lab1 and lab2")

        # connectivity, logs, load: skipped or ticked, each with its reason
        assert screen.selected == "ping-hosts"
        await skip(pilot, "ssh works, the handshake was instant")
        assert screen.selected == "read-connectivity"
        await act(pilot, "d")
        for step_id in ("collect-logs", "collect-load", "checklist-60s"):
            assert screen.selected == step_id
            await skip(pilot, f"lab drill: {step_id} not needed")
        assert screen.selected == "use-method"
        await act(pilot, "d")

        # remediate: name the unit, review and run the restart
        assert screen.selected == "mitigation-first"
        await act(pilot, "d")
        assert screen.selected == "service-name"
        await act(pilot, "a")
        await type_line(pilot, HARMLESS_UNIT)
        assert screen.selected == "restart-service"
        await act(pilot, "d")  # refused: it has not run
        assert app.toasted("Review and run it (x)", "warning")
        assert status(iid, "restart-service") == StepStatus.PENDING

        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, RemediateScreen)
                         and app.screen.command is not None, what="the proposal")
        remedy = app.screen
        assert isinstance(remedy, RemediateScreen)
        plan = static_text(remedy, "#summary")
        # The exact command once, with the hosts it runs on.
        assert f"on lab1, lab2:\n   systemctl restart -- {HARMLESS_UNIT}" in plan
        assert plan.count(f"systemctl restart -- {HARMLESS_UNIT}") == 1
        assert static_text(remedy, "#reviewer-label") == \
            f"Reviewer (a second person, not {PROPOSER}):"
        assert "run on 2 hosts (after the review)" in static_text(remedy, "#confirm-label")
        reviewer = remedy.query_one("#reviewer", Input)
        confirm = remedy.query_one("#confirm", Input)
        assert reviewer.display and confirm.display and confirm.disabled
        assert remedy.focused is reviewer
        [proposed] = recorded(iid, "command.proposed")
        assert proposed["hosts"] == ["lab1", "lab2"] and proposed["review_required"]

        await type_line(pilot, "alice")  # the proposer cannot review their own command
        assert app.toasted("cannot also be its reviewer", "error")
        assert recorded(iid, "command.approved") == []
        # The phrase typed into the reviewer's box is not taken as a name.
        await type_line(pilot, "run on 2 hosts")
        assert app.toasted("is the confirmation phrase, not a reviewer's name", "error")
        assert recorded(iid, "command.approved") == []
        assert reviewer.display and confirm.disabled

        await type_line(pilot, "bob")
        await wait_until(pilot, lambda: not confirm.disabled, what="the confirmation input")
        assert [a["approver"] for a in recorded(iid, "command.approved")] == ["bob"]
        assert static_text(remedy, "#reviewer-label") == "Reviewed by: bob"
        assert not reviewer.display
        assert remedy.focused is confirm

        await type_line(pilot, "yes")  # wrong words: nothing runs
        assert app.toasted("Not confirmed. Type exactly: run on 2 hosts", "warning")
        assert recorded(iid, "command.started") == []
        assert recorded(iid, "command.executed") == []

        confirm.value = ""
        await type_keys(pilot, "run on 2 hosts")
        await wait_until(pilot, lambda: len(recorded(iid, "command.executed")) == 2,
                         what="the command to run on both hosts")
        await settle(pilot)
        [started] = recorded(iid, "command.started")
        assert started["confirmation"] == "run on 2 hosts" and started["approvers"] == ["bob"]
        executed = {e["host"]: e for e in recorded(iid, "command.executed")}
        assert set(executed) == {"lab1", "lab2"}
        for result in executed.values():
            assert isinstance(result["exit_code"], int) and result["exit_code"] != 0
            assert result["approvers"] == ["bob"] and result["proposed_by"] == PROPOSER
            assert HARMLESS_UNIT in result["command"]
        log = remedy.query_one("#output", Log)
        assert "— done —" in log.lines
        for host, result in executed.items():
            assert f"{host}: {result['status']} (exit {result['exit_code']})" in log.lines
        assert app.toasted("2 host(s) failed", "error")
        await act(pilot, "escape")
        assert app.screen is screen
        await act(pilot, "d")
        assert status(iid, "restart-service") == StepStatus.DONE

        assert screen.selected == "mitigation-result"
        await act(pilot, "a")
        await type_line(pilot, f"restarted {HARMLESS_UNIT} on lab1 and lab2 at 09:40Z")
        await act(pilot, "a")
        await type_line(pilot, "nothing")
        assert screen.selected == "status-update"
        await skip(pilot, "resolved before the first update was due")

        # report: answer one, skip the rest, tick the export
        await act(pilot, "a")
        await type_line(pilot, "Two lab hosts were slow; a restart was tried; all is well.")
        assert screen.selected == "root-cause"
        await act(pilot, "d")  # a question is answered or skipped, not ticked
        assert app.toasted("Answer it (a) or skip it (s).", "warning")
        assert status(iid, "root-cause") == StepStatus.PENDING
        for step_id in ("root-cause", "trigger", "went-well", "went-wrong", "lucky",
                        "action-items", "resolved-notice"):
            assert screen.selected == step_id
            await skip(pilot, "covered in the review meeting")
        assert screen.selected == "export-postmortem"
        await act(pilot, "d")
        state = journal(iid)
        assert state.current_step is None
        assert all(s.finished for s in state.steps.values())
        assert static_text(screen, "#step-title") == "report › Export the postmortem"

        # a note goes into the timeline
        await act(pilot, "n")
        assert screen.focused is screen.query_one("#note", Input)
        await type_keys(pilot, "day shift")
        assert [n.data["text"] for n in journal(iid).notes] == ["day shift"]
        await act(pilot, "4")
        assert "Note: day shift" in timeline_text(app)
        assert "Note: day shift" in screen_text(app)
        assert len(cells(screen.query_one(TimelinePanel))) == len(journal(iid).events)

        # the postmortem: previewed, then written
        await pilot.press("p")
        await wait_until(pilot, lambda: isinstance(app.screen, ReportScreen)
                         and app.screen.text.startswith("# Postmortem"), what="the preview")
        await settle(pilot)
        assert "Postmortem: lab hosts slow" in screen_text(app)
        await act(pilot, "w")
        written = IncidentStore().directory(iid) / "postmortem.md"
        await wait_until(pilot, written.exists, what="postmortem.md")
        report = written.read_text()
        assert report.startswith("# Postmortem: lab hosts slow")
        assert "## Timeline" in report
        assert "Note: day shift" in report
        assert "Skipped what-changed: nothing deployed this week" in report
        # The restart: the same command on both hosts, so one row naming both, with
        # each host's exit status and the reviewer.
        rows = [line for line in report.splitlines()
                if line.startswith("|") and HARMLESS_UNIT in line and "| bob |" in line]
        assert len(rows) == 1, report
        assert f"| {', '.join(executed)} |" in rows[0]
        for host, result in executed.items():
            assert f"{host}: {result['exit_code']} {result['status']}" in rows[0]
        assert app.toasted(f"written: {written}")


# -- 2. a host that fails ------------------------------------------------------------------


async def test_an_unreachable_host_is_shown_and_the_app_stays_usable(
        sshd_fleet: SshdLab, tmp_path: Path, dead_endpoint: DeadEndpoint) -> None:
    dead = (f"  dead:\n    address: {dead_endpoint.address}\n    port: {dead_endpoint.port}\n"
            f"    user: {sshd_fleet.user}\n    identity_file: {sshd_fleet.client_key}\n")
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml", dead)
    incident = open_incident(inventory, ["lab1", "dead", "lab2"])
    done_before(incident, "collect-changes")
    iid = incident.id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        assert screen.selected == "collect-changes"
        await pilot.press("r")
        await wait_until(pilot, lambda: app.toasted("Collection finished"),
                         what="the collection to finish")
        await settle(pilot)

        assert app.toasted("Collection finished: 2/3 hosts answered", "warning")
        assert host_states(app) == {"lab1": "ok", "dead": "unreachable", "lab2": "ok"}
        [dead_row] = [row for row in cells(screen.query_one(HostsPanel)) if row[0] == "dead"]
        assert dead_row[4], "the reason the host failed is shown beside it"
        visible = screen_text(app)
        assert re.search(r"dead\s.*unreachable", visible), visible
        assert len(re.findall(r"│ lab[12]\s.*\sok\s", visible)) == 2, visible

        [failed] = recorded(iid, "host.failed")
        assert failed["host"] == "dead" and failed["state"] == "unreachable"
        ran = recorded(iid, "collector.ran")
        assert {e["host"] for e in ran} == {"lab1", "lab2"}
        assert all(e["status"] == "ok" for e in ran)
        # Not every host answered: the step is not ticked off behind the operator's back.
        assert status(iid, "collect-changes") != StepStatus.DONE

        # No crash, and the app still takes input.
        assert app.is_running and app.screen is screen
        assert not (paths.log_dir() / "runbook.log").exists()
        await act(pilot, "n")
        await type_line(pilot, "dead is being rebooted by the DC team")
        assert [n.data["text"] for n in journal(iid).notes] == [
            "dead is being rebooted by the DC team"]
        await wait_until(pilot, lambda: "Note: dead is being rebooted" in timeline_text(app),
                         what="the note in the timeline")
        await act(pilot, "1")
        await act(pilot, "r")  # and collecting again works
        await wait_until(pilot, lambda: len(recorded(iid, "host.failed")) == 2,
                         what="the second collection")
        await settle(pilot)
        assert host_states(app)["dead"] == "unreachable"


async def test_c_cancels_a_running_collection_and_stops_it_on_the_hosts(
        sshd_fleet: SshdLab, inventory: Path) -> None:
    """The 60-second checklist samples for five seconds on every host; `c` stops
    those commands on the hosts and keeps what was already recorded."""
    incident = open_incident(inventory, ["lab1", "lab2"])
    done_before(incident, "checklist-60s")
    iid = incident.id
    app = make_app(sshd_fleet, inventory, iid)
    sampler = ["vmstat", "1", "5"]

    def samplers() -> list[int]:
        return [p.pid for p in psutil.process_iter(["cmdline", "status"])
                if p.info["status"] != psutil.STATUS_ZOMBIE and p.info["cmdline"] == sampler]

    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        assert screen.selected == "checklist-60s"
        assert "Cancel run" not in screen_text(app), "nothing to cancel yet"
        await pilot.press("r")
        await wait_until(pilot, lambda: len(samplers()) == 2, what="vmstat on both hosts")
        await pilot.pause()
        assert "Cancel run" in screen_text(app), "the footer offers it while a run is on"
        await pilot.press("c")
        await wait_until(pilot, lambda: app.toasted("Collection cancelled"),
                         what="the cancelled collection", timeout=15)
        await settle(pilot)
        assert samplers() == [], "stopped on the hosts, not left running"
        assert status(iid, "checklist-60s") != StepStatus.DONE
        assert recorded(iid, "collector.ran"), "what finished before is recorded"
        assert "Cancel run" not in screen_text(app)
        assert not screen.collecting


# -- 3. resume ----------------------------------------------------------------------------


async def test_a_new_app_resumes_the_incident_where_it_was_left(
        sshd_fleet: SshdLab, inventory: Path) -> None:
    older = open_incident(inventory, ["lab2"], title="an older open incident")
    older.note("still open, but nobody touched it since", PROPOSER)
    iid = open_incident(inventory, ["lab1"], title="resume me").id

    first = make_app(sshd_fleet, inventory)  # no id: it opens the open incident touched last
    async with first.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        await act(pilot, "d")
        await act(pilot, "a")
        await type_line(pilot, "disk alert on lab1")
        await act(pilot, "d")
        await skip(pilot, "the channel already knows")
        await act(pilot, "n")
        await type_line(pilot, "looking at lab1 now")
        left_on = screen.selected  # the app moved on to the next step by itself
        marks = stage_marks(screen)
        rows = cells(screen.query_one(TimelinePanel))
        await pilot.press("ctrl+q")
    assert not first.is_running
    assert left_on == "confirm-hosts"

    second = make_app(sshd_fleet, inventory)
    async with second.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        state = journal(iid)
        # The incident, and the step where work stands, come back without a key pressed.
        assert screen.selected == left_on == state.current_step.step.id  # type: ignore[union-attr]
        stages = screen.query_one(StageList)
        assert stages.cursor_node is not None and stages.cursor_node.data == "confirm-hosts"
        assert static_text(screen, "#step-title") == "scope › Check the affected hosts, " \
                                                      "their project and role"
        # Everything the journal holds is on screen again.
        assert stage_marks(screen) == marks
        assert marks["confirm-alert"].startswith("✔") and marks["what-fired"].startswith("✔")
        assert marks["take-roles"].startswith("✔")
        assert marks["initial-notice"].startswith("↷")
        assert marks["confirm-hosts"].startswith("·")
        assert cells(screen.query_one(TimelinePanel)) == rows
        assert len(rows) == len(state.events)
        timeline = timeline_text(second)
        for line in ("Answer to what-fired: disk alert on lab1",
                     "Skipped initial-notice: the channel already knows",
                     "Note: looking at lab1 now"):
            assert line in timeline
        assert "resume me" in static_text(screen, "IncidentHeader")
        await goto(pilot, "what-fired")
        assert "Answer: disk alert on lab1" in static_text(screen, "#step-extra")


# -- 4. terminal control sequences from hosts and pastes -----------------------------------


HOSTILE_PLAYBOOK = r"""
name: hostile-output
title: A host that prints terminal control sequences
stages:
  detect:
    - id: look
      kind: checklist
      title: Look at the alert
    - id: what-fired
      kind: question
      title: Record what fired
      prompt: What fired?
  announce:
    - id: notice
      kind: announce
      title: Tell people
      purpose: initial
      instructions: "Tell them what fired: {{ answers['what-fired'] | default('?', true) }}"
      template: "What we see: {{ answers['what-fired'] | default('?', true) }}"
  remediate:
    - id: print-hostile
      kind: remediate
      title: Print control sequences
      command: >-
        printf 'before\033]0;pwned\007mid\033[2Jx\302\23331my\033]52;c;cHduZWQ=\007after\n';
        printf 'raw8bit\23331mend\n';
        printf 'err\033]0;pwned-too\007or\n' >&2
      rollback: Nothing to undo.
"""


def assert_clean(text: str, where: str) -> None:
    found = CONTROL.search(text)
    assert found is None, f"{where}: control character {found.group()!r} in {text!r}"


async def test_control_sequences_from_hosts_and_pastes_never_reach_the_screen(
        sshd_fleet: SshdLab, inventory: Path) -> None:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hostile-output.yaml").write_text(HOSTILE_PLAYBOOK)
    incident = open_incident(inventory, ["lab1"], playbook="hostile-output",
                             title=f"title{HOSTILE}end")
    iid = incident.id
    # A df run recorded earlier (say by `runbook collect`): a mount point named to attack,
    # read by the real parser, so its finding names it.
    hostile_df = (f"Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                  f"/dev/vdb 100 97 3 97% /data{HOSTILE}x\n").encode()
    findings = record_collector_run(incident, "lab1", "df", hostile_df, PROPOSER)
    assert findings and HOSTILE in str(findings[0]["resource"])
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        # A skip reason, an answer and a note pasted with escape sequences in them.
        await skip(pilot, f"seen{HOSTILE}before")
        assert journal(iid).steps["look"].reason == f"seen{HOSTILE}before"  # kept as given
        await act(pilot, "a")
        await type_line(pilot, f"alert{HOSTILE}fired")
        assert journal(iid).answers["what-fired"] == f"alert{HOSTILE}fired"
        await act(pilot, "n")
        await type_line(pilot, f"note{HOSTILE}here")
        assert journal(iid).notes[-1].data["text"] == f"note{HOSTILE}here"

        # The step view: instructions filled from the answer, the answer, the reason.
        assert screen.selected == "notice"
        assert f"Tell them what fired: alert{SHOWN}fired" in static_text(
            screen, "#step-instructions")
        assert_clean(screen_text(app), "instructions")
        await goto(pilot, "what-fired")
        assert f"alert{SHOWN}fired" in static_text(screen, "#step-extra")
        assert_clean(screen_text(app), "answer")
        await goto(pilot, "look")
        assert f"seen{SHOWN}before" in static_text(screen, "#step-state")
        assert_clean(screen_text(app), "skip reason")
        assert_clean(app.export_screenshot(), "incident screenshot")

        # The announcement drafted from that answer.
        await goto(pilot, "notice")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, AnnounceScreen)
                         and "What we see" in app.screen.query_one("#message").text,
                         what="the draft")
        assert_clean(app.screen.query_one("#message").text, "announcement draft")
        assert_clean(screen_text(app), "announce screen")
        await act(pilot, "escape")
        assert recorded(iid, "announcement.sent") == []

        # A remediation whose output is hostile, on stdout and stderr.
        await goto(pilot, "print-hostile")
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, RemediateScreen)
                         and app.screen.command is not None, what="the proposal")
        remedy = app.screen
        assert remedy.focused is remedy.query_one("#confirm", Input)
        await type_keys(pilot, "run on 1 host")
        await wait_until(pilot, lambda: recorded(iid, "command.executed"),
                         what="the command to run")
        await wait_until(pilot, lambda: "— done —" in remedy.query_one("#output", Log).lines,
                         what="the output to be shown")
        await settle(pilot)
        [result] = recorded(iid, "command.executed")
        assert result["exit_code"] == 0
        # The evidence keeps the bytes exactly as sent: the sequences really came back.
        raw = (IncidentStore().directory(iid) / result["stdout"]).read_bytes()
        assert b"\x1b]0;pwned\x07" in raw and b"\xc2\x9b31m" in raw and b"\x9b31m" in raw
        lines = remedy.query_one("#output", Log).lines
        assert r"lab1 | before\x1b]0;pwned\x07mid\x1b[2Jxy\x1b]52;c;cHduZWQ=\x07after" in lines
        assert r"lab1 ! err\x1b]0;pwned-too\x07or" in lines
        for line in lines:
            assert_clean(line, "remediation output")
        assert_clean(screen_text(app), "remediate screen")
        assert_clean(app.export_screenshot(), "remediate screenshot")
        await act(pilot, "escape")

        # The findings: every cell, and the tab as shown.
        await act(pilot, "3")
        [finding_row] = cells(screen.query_one(FindingsPanel))
        assert finding_row[2] == f"disk:/data{SHOWN}x"
        for cell in finding_row:
            assert_clean(cell, "findings cell")
        assert_clean(screen_text(app), "findings tab")

        # The timeline: every cell, visible or not.
        await act(pilot, "4")
        rows = cells(screen.query_one(TimelinePanel))
        assert any(f"Note: note{SHOWN}here" in row[2] for row in rows)
        for row in rows:
            for cell in row:
                assert_clean(cell, "timeline cell")
        assert_clean(static_text(screen, "IncidentHeader"), "header")
        assert f"title{SHOWN}end" in static_text(screen, "IncidentHeader")
        assert_clean(screen_text(app), "timeline tab")
        assert_clean(app.export_screenshot(), "timeline screenshot")
        await act(pilot, "escape")  # the incident list shows the title too
        assert_clean(screen_text(app), "incident list")


# -- 5. nothing runs from a stray key -----------------------------------------------------


STRAY_KEYS = [*"abcdefghijklmnopqrstuvwxyz0123456789", "space", "enter", "enter", "enter",
              "backspace", "tab", "up", "down"]


async def test_stray_keys_never_run_a_remediation(sshd_fleet: SshdLab, tmp_path: Path) -> None:
    lab3 = sshd_fleet.hosts[2]
    behind = (f"  behind:\n    address: {lab3.address}\n    port: {lab3.port}\n"
              f"    user: {sshd_fleet.user}\n    identity_file: {sshd_fleet.client_key}\n"
              "    jump: lab1\n")  # an inventory name: its address, user and key come from there
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml", behind)
    incident = open_incident(inventory, ["lab1", "behind"])
    done_before(incident, "restart-service")
    incident.answer("service-name", HARMLESS_UNIT, PROPOSER)
    iid = incident.id
    app = make_app(sshd_fleet, inventory, iid)
    nothing_ran = lambda: (recorded(iid, "command.started") == []  # noqa: E731
                           and recorded(iid, "command.executed") == [])
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened(pilot, iid)
        assert screen.selected == "restart-service"
        # x, then Enter straight away: the reviewer line is empty, nothing happens.
        await pilot.press("x", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RemediateScreen)
                         and app.screen.command is not None, what="the proposal")
        remedy = app.screen
        await act(pilot, "enter")
        assert recorded(iid, "command.approved") == [] and nothing_ran()
        # A "y" is not a reviewer.
        await type_keys(pilot, "y")
        assert app.toasted("is not a reviewer's name", "error")
        assert recorded(iid, "command.approved") == [] and nothing_ran()
        remedy.query_one("#reviewer", Input).value = ""
        await type_keys(pilot, "bob")
        confirm = remedy.query_one("#confirm", Input)
        await wait_until(pilot, lambda: confirm.display and remedy.focused is confirm,
                         what="the confirmation line")

        # Enter, near misses and a random keyboard mash on the confirmation line.
        await act(pilot, "enter")
        for near_miss in ("yes", "run on 1 host", "run on 3 hosts"):
            confirm.value = ""
            await type_line(pilot, near_miss)
            assert nothing_ran(), near_miss
        confirm.value = ""
        mash = random.Random(8224).choices(STRAY_KEYS, k=25)
        for key in mash:
            await pilot.press(key)
            if not isinstance(app.screen, RemediateScreen):  # pragma: no cover
                pytest.fail(f"{key!r} left the remediation screen")
        await settle(pilot)
        assert nothing_ran(), mash
        assert app.toasted("Not confirmed. Type exactly: run on 2 hosts", "warning")
        assert not confirm.disabled

        # Back on the incident: stray keys there run nothing either.
        await act(pilot, "escape")
        assert isinstance(app.screen, IncidentScreen)
        for key in ("enter", "d", "r", "x", "enter", "enter"):
            await pilot.press(key)
        await settle(pilot)
        if isinstance(app.screen, RemediateScreen):
            remedy = app.screen
            await act(pilot, "escape")
        assert nothing_ran()
        assert status(iid, "restart-service") != StepStatus.DONE

        # Only the typed confirmation runs it.
        await act(pilot, "x")
        await wait_until(pilot, lambda: isinstance(app.screen, RemediateScreen)
                         and app.screen.command is not None, what="the proposal")
        await wait_until(pilot, lambda: app.screen.query_one("#confirm", Input).display,
                         what="the confirmation line (already reviewed)")
        await type_keys(pilot, "run on 2 hosts")
        await wait_until(pilot, lambda: len(recorded(iid, "command.executed")) == 2,
                         what="the command to run")
        await settle(pilot)
    [started] = recorded(iid, "command.started")
    assert started["confirmation"] == "run on 2 hosts"
    # Both ran, the one behind its jump host too: an exit code, not "unreachable".
    executed = {e["host"]: e for e in recorded(iid, "command.executed")}
    assert set(executed) == {"lab1", "behind"}
    for result in executed.values():
        assert isinstance(result["exit_code"], int), result
        assert result["approvers"] == ["bob"]


# -- 6. 80 x 24 ----------------------------------------------------------------------------


async def test_the_incident_screen_fits_80_by_24(sshd_fleet: SshdLab, inventory: Path) -> None:
    iid = open_incident(inventory, ["lab1", "lab2", "lab3"], title="api latency on lab1-3").id
    app = make_app(sshd_fleet, inventory, iid)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await opened(pilot, iid)
        lines = screen_text(app).split("\n")
        assert len(lines) == 24 and all(len(line) == 80 for line in lines)
        header, footer = lines[0], lines[-1]
        assert "SEV3" in header and "api latency on lab1-3" in header
        # The keys that work now: a checklist step's, the note, the lifecycle, help.
        for binding in ("d Done", "s Skip", "n Note", "R Resolve", "S Sev", "o Roles",
                        "esc Back", "? Help"):
            assert binding in footer, footer
        for other_steps in ("a Answer", "r Run", "e Announce", "x Fix", "O Reopen"):
            assert other_steps not in footer, footer
        stage_column = "\n".join(line[:27] for line in lines[1:-2])
        for stage in ("detect 0/2", "announce 0/2", "scope 0/4", "connectivity 0/2",
                      "logs 0/1", "load 0/3"):
            assert stage in stage_column, stage_column
        assert "Confirm the alert is" in stage_column
        body = "\n".join(lines[1:-2])
        assert "Step" in body and "Timeline" in body
        assert "detect › Confirm the alert is real" in body
        assert "[d done · s skip" in body
        assert "n: note for the timeline" in lines[-2]
        # Every part has room: nothing collapsed to zero width or height.
        for widget in (screen.query_one(IncidentHeader), screen.query_one(StageList),
                       screen.query_one(StepView), screen.query_one("#note", Input)):
            assert widget.region.width > 0 and widget.region.height > 0, widget
        assert screen.query_one(StageList).region.width >= 20
        assert screen.query_one(StepView).region.width >= 40
