"""The real `runbook` command in a real terminal: tmux at 80x24, driven by keys.

An operator opens an incident with the CLI, then runs plain `runbook`: the app
resumes that incident. Keys mark a step done, answer a question and write a
note; the note shows in the timeline and every action is in the journal. Then
the process is killed with SIGKILL, as a dropped SSH session or an OOM kill
would, and a new `runbook` resumes on the same step with nothing acknowledged
lost. Each tmux server has its own socket (-L), so a developer's tmux is never
touched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed (apt-get install tmux); "
                                       "CI installs it")

WIDTH, HEIGHT = 80, 24
DEADLINE = 20.0  # seconds; a loaded 2-core CI machine starts Textual in 2-5 s
TITLE = "tmux drill"
ANSWER = "disk alert 10:02 UTC, graph confirms"
# The timeline's "what" column shows ~20 characters at 80 columns.
NOTE = "var is full"
LAST_NOTE = "kill -9 next"


def runbook_command() -> list[str]:
    """The installed console script, as an operator runs it; `python -m runbook`
    when the script is not beside this interpreter."""
    script = Path(sysconfig.get_path("scripts")) / "runbook"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "runbook"]


class Tmux:
    """One private tmux server. `-u`: the pane is UTF-8 whatever the locale says,
    so the stage marks (✔ ·) come back from capture-pane as written."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"runbook-e2e-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.env = env

    def __call__(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-u", "-L", self.socket, *args], env=self.env,
                                capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr.strip()}")
        return result.stdout

    def start(self, session: str, command: list[str], width: int = WIDTH,
              height: int = HEIGHT) -> None:
        # remain-on-exit keeps a killed pane (and so the server) around until
        # teardown, instead of the server exiting when its last pane dies.
        self("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height),
             shlex.join(command), ";", "set-option", "-g", "remain-on-exit", "on")

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session)

    def lines(self, session: str, height: int = HEIGHT) -> list[str]:
        return self.screen(session).split("\n")[:height]

    def keys(self, session: str, *keys: str) -> None:
        self("send-keys", "-t", session, *keys)

    def type(self, session: str, text: str) -> None:
        self("send-keys", "-t", session, "-l", text)

    def show(self, session: str, fmt: str) -> str:
        return self("display-message", "-p", "-t", session, fmt).strip()

    def kill_server(self) -> None:
        found = subprocess.run(["tmux", "-L", self.socket, "display-message", "-p",
                                "#{socket_path}"], env=self.env, capture_output=True,
                               text=True, timeout=10)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=10)
        if found.returncode == 0 and found.stdout.strip():
            # tmux 3.3 leaves the socket file behind after kill-server.
            Path(found.stdout.strip()).unlink(missing_ok=True)


@pytest.fixture
def tmux(runbook_home: Path) -> Iterator[Tmux]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.setdefault("TERM", "xterm-256color")
    env.setdefault("LANG", "C.UTF-8")
    server = Tmux(env)  # RUNBOOK_HOME and RUNBOOK_ACTOR come from the autouse fixture
    try:
        yield server
    finally:
        server.kill_server()


def wait_for(tmux: Tmux, session: str, condition: Callable[[str], bool], what: str,
             timeout: float = DEADLINE) -> str:
    """Poll the pane until `condition(screen)` holds; the screen is in the failure."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux.screen(session)
        if condition(screen):
            return screen
        if tmux.show(session, "#{pane_dead}") == "1":
            raise AssertionError(f"runbook exited while waiting for {what}:\n{screen}")
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; screen:\n{screen}")


def wait_for_text(tmux: Tmux, session: str, *texts: str) -> str:
    return wait_for(tmux, session, lambda s: all(t in s for t in texts),
                    " and ".join(repr(t) for t in texts))


def type_into_input(tmux: Tmux, session: str, key: str, text: str) -> None:
    """Press the key that focuses an input, wait for the focus, type, Enter.

    Waiting matters: Textual moves the focus a message later (Widget.focus is
    deferred), and keys that arrive in the same read as `n` are taken as screen
    bindings: "n" then "done ..." typed at once marks the step done. The footer
    is the tell that the input has the focus: it drops the letter bindings."""
    wait_for(tmux, session, lambda s: "d Done" in s.split("\n")[HEIGHT - 1],
             "the stage list to have the focus (footer shows d Done)")
    tmux.keys(session, key)
    wait_for(tmux, session, lambda s: "d Done" not in s.split("\n")[HEIGHT - 1],
             f"the input opened by {key!r} to have the focus")
    tmux.type(session, text)
    tmux.keys(session, "Enter")


def kill_runbook(tmux: Tmux, session: str) -> None:
    """SIGKILL the runbook process in the pane (and anything it started): no
    cleanup, no atexit, no flush: only what was fsync'd survives."""
    pane = psutil.Process(int(tmux.show(session, "#{pane_pid}")))
    victims = [p for p in [pane, *pane.children(recursive=True)]
               if any("runbook" in part for part in p.cmdline())]
    assert victims, f"no runbook process under pane pid {pane.pid}"
    for process in victims:
        os.kill(process.pid, signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    deadline = time.monotonic() + DEADLINE
    while tmux.show(session, "#{pane_dead}") != "1":
        assert time.monotonic() < deadline, "the pane outlived its killed process"
        time.sleep(0.05)


def journal(incident_id: str) -> Any:
    return json.loads(run_cli("show", incident_id, "--json").stdout)


def footer(lines: list[str]) -> str:
    return lines[HEIGHT - 1]


def test_drive_the_incident_then_sigkill_and_resume(tmux: Tmux) -> None:
    incident_id = run_cli("new", "-p", "generic-host", "-H", "localhost",
                          "-t", TITLE).stdout.strip()

    tmux.start("first", runbook_command())
    assert tmux.show("first", "#{pane_width}x#{pane_height}") == f"{WIDTH}x{HEIGHT}"
    # Plain `runbook` resumes the open incident: its title, and the stage list.
    wait_for_text(tmux, "first", TITLE, "detect 0/2", "· Confirm the alert",
                  "detect › Confirm the alert is real")

    tmux.keys("first", "d")
    wait_for_text(tmux, "first", "✔ Confirm the alert", "detect 1/2",
                  "detect › Record what fired")

    type_into_input(tmux, "first", "a", ANSWER)
    wait_for_text(tmux, "first", "detect 2/2", "announce › Name the incident commander")

    type_into_input(tmux, "first", "n", NOTE)
    wait_for_text(tmux, "first", "note recorded")
    tmux.keys("first", "4")
    before = wait_for_text(tmux, "first", "time (UTC · local)", f"Note: {NOTE}")
    assert "Answer to what-fired" in before and "Done: confirm-alert" in before

    state = journal(incident_id)
    assert state["current_step"] == "take-roles"
    steps = {s["id"]: s for s in state["steps"]}
    assert steps["confirm-alert"]["status"] == "done"
    assert steps["confirm-alert"]["actor"] == "tester@lab"
    assert steps["what-fired"]["answer"] == ANSWER
    acknowledged = [e["id"] for e in state["timeline"]]
    notes = [e for e in state["timeline"] if e["type"] == "note.added"]
    assert [n["data"]["text"] for n in notes] == [NOTE]

    # One more note, and the kill lands right after the screen acknowledged it.
    type_into_input(tmux, "first", "n", LAST_NOTE)
    wait_for_text(tmux, "first", f"Note: {LAST_NOTE}")
    kill_runbook(tmux, "first")

    after_kill = journal(incident_id)
    kept = [e["id"] for e in after_kill["timeline"]]
    assert kept[:len(acknowledged)] == acknowledged, "acknowledged events were lost"
    assert LAST_NOTE in [e["data"].get("text") for e in after_kill["timeline"]]
    assert after_kill["damaged_lines"] == []

    tmux.start("second", runbook_command())
    resumed = wait_for_text(tmux, "second", TITLE, "detect 2/2", "✔ Confirm the alert",
                            "announce › Name the incident commander")
    assert "⏱" in resumed.split("\n")[0], "the header is not on the first line"
    tmux.keys("second", "4")
    wait_for_text(tmux, "second", f"Note: {NOTE}", f"Note: {LAST_NOTE}")
    assert journal(incident_id)["timeline"] == after_kill["timeline"], \
        "reopening the incident wrote to the journal"


def test_screens_fit_80x24_with_the_key_footer(tmux: Tmux) -> None:
    def last_line_has(*keys: str) -> Callable[[str], bool]:
        return lambda screen: all(k in footer(screen.split("\n")) for k in keys)

    # Home screen first: no incident to resume.
    tmux.start("home", runbook_command())
    home = wait_for(tmux, "home", last_line_has("n New incident", "? Help"),
                    "the home screen's footer on the last line")
    assert "runbook — incidents" in home.split("\n")[0]
    assert "No incidents yet" in home
    kill_runbook(tmux, "home")

    run_cli("new", "-p", "generic-host", "-H", "localhost", "-t", TITLE)
    tmux.start("incident", runbook_command())
    # A checklist step is selected: its keys, the note, the lifecycle, help.
    keys = ("d Done", "s Skip", "n Note", "R Resolve", "? Help")
    screen = wait_for(tmux, "incident", lambda s: last_line_has(*keys)(s) and
                      "detect › Confirm the alert" in s, "the incident screen's footer")
    lines = screen.split("\n")[:HEIGHT]
    assert TITLE in lines[0], lines[0]
    assert "▼ detect 0/2" in lines[1], lines[1]
    # The note line sits right above the footer, inside the 24 rows.
    assert "n: note for the timeline" in lines[HEIGHT - 2], lines[HEIGHT - 2]


# -- a remediation, and the screens at 60x20 ------------------------------------------------

FIX_PLAYBOOK = """\
name: tmux-fix
title: tmux remediation playbook
stages:
  announce:
    - id: update
      kind: announce
      purpose: update
      title: Tell the channel what was done, with a rather long title to cut
      template: "{{ title }}: fixed on {{ hosts }}"
  remediate:
    - id: write-marker
      kind: remediate
      title: Print a marker on each host, reviewed
      command: echo fixed on {{ host }}
      rollback: Nothing to undo.
      review: true
    - id: check-after
      kind: checklist
      title: Check the graphs after the fix
"""


@pytest.fixture
def fleet_app(sshd_fleet: Any, tmp_path: Path) -> tuple[str, list[str]]:
    """An incident on lab1 and lab2 of the real sshd fleet, and the `runbook tui`
    command line that reaches them (the lab's inventory and known_hosts)."""
    from runbook import paths
    from tests.fleet import write_inventory

    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmux-fix.yaml").write_text(FIX_PLAYBOOK)
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    incident_id = run_cli("new", "-p", "tmux-fix", "-i", str(inventory), "-H", "lab1",
                          "-H", "lab2", "-t", "tmux fix on two hosts").stdout.strip()
    return incident_id, [*runbook_command(), "tui", incident_id, "-i", str(inventory),
                         "--known-hosts", str(sshd_fleet.known_hosts)]


def test_a_reviewed_remediation_on_one_host_at_80x24(tmux: Tmux,
                                                      fleet_app: tuple[str, list[str]]) -> None:
    incident_id, command = fleet_app
    tmux.start("fix", command)
    wait_for_text(tmux, "fix", "announce › Tell the channel")
    tmux.keys("fix", "j")
    tmux.keys("fix", "j")
    wait_for_text(tmux, "fix", "remediate › Print a marker", "x Fix")
    tmux.keys("fix", "x")
    shown = wait_for_text(tmux, "fix", "Hosts: 2 of 2 ticked", "on lab1:", "on lab2:",
                          "Reviewer (a second person, not tester@lab):",
                          "To run it, type: run on 2 hosts (after the review)")
    assert "echo fixed on lab2" in shown
    # Back to the host list, untick lab2, plan again for lab1 alone.
    tmux.keys("fix", "BTab")
    tmux.keys("fix", "BTab")
    tmux.keys("fix", "Down")
    tmux.keys("fix", "Down")
    tmux.keys("fix", "Space")
    wait_for_text(tmux, "fix", "Hosts: 1 of 2 ticked")
    tmux.keys("fix", "p")
    wait_for_text(tmux, "fix", "To run it, type: run on 1 host", "on lab1:")
    assert "on lab2:" not in tmux.screen("fix")
    tmux.type("fix", "bob")
    tmux.keys("fix", "Enter")
    wait_for_text(tmux, "fix", "Reviewed by: bob")
    tmux.type("fix", "run on 1 host")
    tmux.keys("fix", "Enter")
    wait_for_text(tmux, "fix", "— done —", "lab1: ok (exit 0)")

    state = journal(incident_id)
    events = state["timeline"]
    [approved] = [e["data"] for e in events if e["type"] == "command.approved"]
    assert approved["approver"] == "bob"
    executed = [e["data"] for e in events if e["type"] == "command.executed"]
    assert [(e["host"], e["exit_code"]) for e in executed] == [("lab1", 0)]
    steps = {s["id"]: s for s in state["steps"]}
    assert steps["write-marker"]["status"] == "done"
    tmux.keys("fix", "Escape")
    wait_for_text(tmux, "fix", "remediate › Check the graphs after the fix")


def cut_without_ellipsis(screen: str, whole: list[str]) -> list[str]:
    """The texts of `whole` that show only in part: a prefix of five or more
    characters on screen, not followed by the rest or by an ellipsis."""
    flat = " ".join(screen.split())
    cut = []
    for text in whole:
        if text in flat:
            continue
        for size in range(len(text) - 1, 4, -1):
            at = flat.find(text[:size])
            if at >= 0:
                if not flat[at + size:].startswith("…"):
                    cut.append(text[:size])
                break
    return cut


def test_the_screens_at_60x20_cut_nothing_without_an_ellipsis(
        tmux: Tmux, fleet_app: tuple[str, list[str]]) -> None:
    _, command = fleet_app
    width, height = 60, 20
    tmux.start("narrow", command, width, height)
    incident = wait_for_text(tmux, "narrow", "announce › Tell the channel", "? Help")
    lines = tmux.lines("narrow", height)
    key_bar = lines[height - 1]
    assert key_bar.rstrip().endswith("? Help") and "esc Back" in key_bar, key_bar
    titles = ["Print a marker on each host, reviewed", "Check the graphs after the fix",
              "Tell the channel what was done, with a rather long title to cut"]
    stage_column = [line.split("│")[0] for line in lines[1:height - 2]]
    for title in titles:
        shown = [c for c in stage_column if title[:8] in c]
        assert shown, f"{title!r} not in the stage list:\n{incident}"
        assert title in shown[0] or shown[0].rstrip().endswith("…"), shown[0]

    tmux.keys("narrow", "e")
    announce = wait_for_text(tmux, "narrow", "fixed on lab1, lab2")
    bar = announce.split("\n")[height - 1]
    assert bar.rstrip().endswith("Back (nothing sent)") or "…" in bar, bar
    assert cut_without_ellipsis(announce, ["Send via channel", "Back (nothing sent)"]) == [], \
        announce
    tmux.keys("narrow", "Escape")
    wait_for_text(tmux, "narrow", "announce › Tell the channel", "? Help")
    tmux.keys("narrow", "j")
    tmux.keys("narrow", "j")
    wait_for_text(tmux, "narrow", "remediate › Print a marker")
    tmux.keys("narrow", "x")
    remedy = wait_for_text(tmux, "narrow", "Hosts: 2 of 2 ticked", "To run it, type:")
    assert cut_without_ellipsis(remedy, [
        "Reviewer (a second person, not tester@lab):",
        "To run it, type: run on 2 hosts (after the review)",
        "Hosts: 2 of 2 ticked (space ticks, p plans for them)",
        "Back (nothing runs)"]) == [], remedy
