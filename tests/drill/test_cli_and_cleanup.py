"""The drill commands as an operator types them, and cleanup after a crash:
a `kill -9` of the process that started a lab leaves daemons and hogs running,
and `runbook drill cleanup` finds and removes every one of them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runbook.drill.lab import drill_states, drills_root, leftover_mounts, marked_processes
from tests.conftest import run_cli
from tests.drill.conftest import require_drill_lab


@pytest.fixture(autouse=True)
def _own_home(_use_drill_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))


def test_list_shows_the_six() -> None:
    listed = run_cli("drill", "list").stdout
    for name in ("disk-full", "memory-pressure", "cpu-saturation", "process-down",
                 "port-closed", "host-unreachable"):
        assert name in listed


def test_start_collect_diagnose_stop_report_history() -> None:
    require_drill_lab()
    started = run_cli("drill", "start", "disk-full", "--seed", "11")
    drill_id = started.stdout.splitlines()[0]
    try:
        assert "Reports volume full on files1" in started.stdout
        assert "seed 11" in started.stdout and "disk-full" in started.stdout
        assert drill_id in run_cli("drill", "list", "--running").stdout
        collected = run_cli("drill", "collect", drill_id, "--step", "collect-disk")
        assert "/srv/data" in collected.stdout
        run_cli("drill", "diagnose", drill_id, "files1:", "/srv/data", "is", "full")
    finally:
        stopped = run_cli("drill", "stop", drill_id)
    assert "lab stopped" in stopped.stderr
    report = run_cli("drill", "report", drill_id).stdout
    assert report.startswith("# DRILL report: Reports volume full on files1")
    assert report.count("DRILL — NOT A REAL INCIDENT") == 2
    assert "| diagnosis | 40 | 40 |" in report
    assert "| evidence | 20 | 20 |" in report
    scored = json.loads(run_cli("drill", "report", drill_id, "--json").stdout)
    assert scored["diagnosis"]["matched"] is True
    history = json.loads(run_cli("drill", "history", "--json").stdout)
    assert [h["drill_id"] for h in history] == [drill_id]
    assert history[0]["finished"] is True
    # the drill never shows among real incidents
    assert drill_id not in run_cli("list", "--status", "all").stdout


def test_stop_refuses_an_unknown_drill() -> None:
    result = run_cli("drill", "stop", "nope", check=False)
    assert result.returncode == 2 and "error" in result.stderr


STARTER = """
import sys, time
from runbook.drill.session import start_drill
started = start_drill(sys.argv[1], "crasher@lab", seed=5)
print(started.id, flush=True)
time.sleep(120)
"""


def _lab_endpoints() -> list[tuple[str, int]]:
    return [(h["address"], h["port"]) for s in drill_states() for h in s.data["hosts"]]


@pytest.mark.parametrize("scenario", ["process-down", "memory-pressure", "disk-full"])
def test_cleanup_after_kill_9(scenario: str) -> None:
    require_drill_lab()
    starter = subprocess.Popen([sys.executable, "-c", STARTER, scenario],
                               stdout=subprocess.PIPE, text=True)
    try:
        drill_id = starter.stdout.readline().strip()  # type: ignore[union-attr]
        assert drill_id
    finally:
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait()
    endpoints = _lab_endpoints()
    assert endpoints and marked_processes(drill_id), "the lab outlives its starter"
    output = run_cli("drill", "cleanup").stdout
    assert drill_id in output and "stopped sshd" in output
    assert marked_processes() == []
    assert not (drills_root() / drill_id).exists()
    assert leftover_mounts(drills_root()) == []
    for address, port in endpoints:
        with pytest.raises(OSError), socket.create_connection((address, port), timeout=1):
            pass
    assert "no drill leftovers" in run_cli("drill", "cleanup").stdout


def test_cleanup_after_kill_9_in_the_middle_of_starting() -> None:
    require_drill_lab()
    starter = subprocess.Popen([sys.executable, "-c", STARTER, "process-down"],
                               stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    # Kill it as soon as the first daemon is recorded: the lab is half built.
    while time.monotonic() < deadline and not any(
            s.data.get("processes") for s in drill_states()):
        time.sleep(0.02)
    os.kill(starter.pid, signal.SIGKILL)
    starter.wait()
    run_cli("drill", "cleanup")
    assert marked_processes() == []
    assert not any(p.is_dir() for p in drills_root().iterdir() if p.name != "incidents")
