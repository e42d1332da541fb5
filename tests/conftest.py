"""Shared fixtures: every test gets its own RUNBOOK_HOME, so nothing touches the
developer's data, and `runbook` subprocesses see the same isolated home."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from runbook.drill.sshd_lab import SshdLab
    from runbook.incident.store import Incident
    from tests.fleet import Blackhole, DeadEndpoint


@pytest.fixture(autouse=True)
def runbook_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "runbook-home"
    monkeypatch.setenv("RUNBOOK_HOME", str(home))
    monkeypatch.setenv("RUNBOOK_ACTOR", "tester@lab")
    # An empty ssh config, so the developer's ~/.ssh/config never leaks into tests.
    empty = tmp_path / "ssh_config"
    empty.write_text("")
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(empty))
    # A writer whose event data drifts from its declaration (incident/events.py)
    # fails the test that wrote it; in production it is only logged.
    monkeypatch.setenv("RUNBOOK_STRICT_EVENTS", "1")
    return home


def record_collector_run(incident: Incident, host: str, collector: str, output: bytes,
                         actor: str = "tester@lab", cpu_count: int | None = None,
                         status: str = "ok", message: str | None = None
                         ) -> list[dict[str, object]]:
    """Journal one collector run with output the test chose, the way a collection
    records it: the evidence file, the real parser's findings, one `collector.ran`.
    Returns the findings as journalled. The parser is the collector's in the
    catalog; `cpu_count` is what the runner would have asked the host."""
    from runbook.collection.collect import JournalRecorder
    from runbook.engine.catalog import BY_NAME
    from runbook.engine.parsers import parse
    from runbook.engine.results import CollectorRun, RunStatus
    from runbook.evidence import EvidenceWriter
    from runbook.findings import ParseContext

    writer = EvidenceWriter(incident.store.directory(incident.id), host, collector)
    writer.stdout(output)
    record = writer.finish(command=collector, exit_code=0 if status == "ok" else 127,
                           status=status, attempts=[], message=message)
    parser = BY_NAME[collector].parser if collector in BY_NAME else collector
    findings = [f.on(host, collector)
                for f in parse(parser or "", output, ParseContext(cpu_count=cpu_count))]
    JournalRecorder(incident, actor).ran(
        CollectorRun(host, collector, RunStatus(status), record.exit_code, findings, record,
                     message))
    return [f.as_dict() for f in findings]


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


# -- a real sshd fleet on loopback (see tests/fleet.py) ---------------------------


@pytest.fixture(scope="session")
def sshd_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdLab]:
    """Four real sshd daemons (lab1..lab4 on 127.0.0.60-63), shared by the session,
    whose login shells cost what real hosts' do (LOGIN_COST of CPU for the rc file).
    Tests must not change their keys or known_hosts: use `own_sshd_lab` for that."""
    from tests.fleet import FLEET_FIRST_OCTET, FLEET_SIZE, LOGIN_COST, start_lab

    lab = start_lab(tmp_path_factory.mktemp("sshd-fleet"), FLEET_SIZE, FLEET_FIRST_OCTET,
                    login_cost=LOGIN_COST)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def own_sshd_lab(tmp_path: Path) -> Iterator[SshdLab]:
    """A one-host lab of the test's own, free to have its host key rotated."""
    from tests.fleet import LOGIN_COST, start_lab

    lab = start_lab(tmp_path / "own-lab", 1, 90, login_cost=LOGIN_COST)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    """A loopback TCP listener that accepts and never sends a byte."""
    from tests.fleet import Blackhole

    hole = Blackhole("127.0.0.1")
    try:
        yield hole
    finally:
        hole.stop()


@pytest.fixture
def dead_endpoint() -> Iterator[DeadEndpoint]:
    """A loopback address:port with nothing listening (connections are refused)."""
    from tests.fleet import DeadEndpoint

    endpoint = DeadEndpoint.open("127.0.0.1")
    try:
        yield endpoint
    finally:
        endpoint.close()
