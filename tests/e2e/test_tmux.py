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

    def start(self, session: str, command: list[str]) -> None:
        # remain-on-exit keeps a killed pane (and so the server) around until
        # teardown, instead of the server exiting when its last pane dies.
        self("new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT),
             shlex.join(command), ";", "set-option", "-g", "remain-on-exit", "on")

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session)

    def lines(self, session: str) -> list[str]:
        return self.screen(session).split("\n")[:HEIGHT]

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
    keys = ("d Done", "s Skip", "a Answer", "r Run", "n Note")
    screen = wait_for(tmux, "incident", lambda s: last_line_has(*keys)(s) and
                      "detect › Confirm the alert" in s, "the incident screen's footer")
    lines = screen.split("\n")[:HEIGHT]
    assert TITLE in lines[0], lines[0]
    assert "▼ detect 0/2" in lines[1], lines[1]
    # The note line sits right above the footer, inside the 24 rows.
    assert "n: note for the timeline" in lines[HEIGHT - 2], lines[HEIGHT - 2]
