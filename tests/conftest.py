"""Shared fixtures: every test gets its own RUNBOOK_HOME, so nothing touches the
developer's data, and `runbook` subprocesses see the same isolated home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def runbook_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "runbook-home"
    monkeypatch.setenv("RUNBOOK_HOME", str(home))
    monkeypatch.setenv("RUNBOOK_ACTOR", "tester@lab")
    # An empty ssh config, so the developer's ~/.ssh/config never leaks into tests.
    empty = tmp_path / "ssh_config"
    empty.write_text("")
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(empty))
    return home


def run_cli(*args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real `runbook` entry point in a subprocess, as an operator would."""
    result = subprocess.run(
        [sys.executable, "-m", "runbook", *args],
        capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"runbook {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result
