"""supervisord for real: Debian's `supervisor` with inet_http_server on loopback
and two programs (plus one that cannot start); stop one and read the findings,
directly and through an SSH tunnel to a lab host."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook.detect import supervisord
from runbook.drill.sshd_lab import SshdLab, free_port
from runbook.findings import Level
from runbook.hosts import Host
from runbook.incident.store import IncidentStore
from tests.conftest import run_cli
from tests.fleet import lab_hosts, lab_options, write_inventory

USER, PASSWORD = "ops", "s3cret-pass"


@dataclass
class Supervisor:
    port: int
    config: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/RPC2"

    def rpc(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(f"http://{USER}:{PASSWORD}@127.0.0.1:{self.port}/RPC2")

    def states(self) -> dict[str, str]:
        return {p["name"]: p["statename"] for p in self.rpc().supervisor.getAllProcessInfo()}


def _config(directory: Path, port: int) -> str:
    return f"""\
[supervisord]
nodaemon=true
logfile={directory}/supervisord.log
pidfile={directory}/supervisord.pid
childlogdir={directory}

[inet_http_server]
port=127.0.0.1:{port}
username={USER}
password={PASSWORD}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=http://127.0.0.1:{port}
username={USER}
password={PASSWORD}

[program:web]
command=sleep 600
startsecs=1

[program:worker]
command=sleep 600
startsecs=1

[program:broken]
command=/nonexistent/bin/worker --serve
startretries=0
autorestart=false
"""


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    binary = shutil.which("supervisord")
    if binary is None:
        pytest.skip("supervisord is not installed (apt-get install supervisor)")
    directory = tmp_path / "supervisor"
    directory.mkdir()
    port = free_port()
    config = directory / "supervisord.conf"
    config.write_text(_config(directory, port))
    process = subprocess.Popen([binary, "-n", "-c", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    running = Supervisor(port, config, process)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                states = running.states()
                if states.get("web") == states.get("worker") == "RUNNING" \
                        and states.get("broken") == "FATAL":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                log = (directory / "supervisord.log")
                raise AssertionError("supervisord did not start its programs: "
                                     + (log.read_text() if log.exists() else "no log"))
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()  # supervisord stops its programs on SIGTERM
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_running_programs_are_fine_and_a_fatal_one_is_a_finding(supervisor: Supervisor) -> None:
    report = supervisord.check(supervisor.url, username=USER, password=PASSWORD)
    assert report.error is None
    assert {p["name"] for p in report.processes} == {"web", "worker", "broken"}
    [fatal] = [f for f in report.findings if f.level == Level.CRITICAL]
    assert fatal.resource == "program:broken"
    assert fatal.summary.startswith("broken is FATAL (exit status 0; spawn error: can't find "
                                    "command '/nonexistent/bin/worker'")
    assert report.findings[-1].summary.startswith("2/3 programs RUNNING")


def test_a_stopped_program_is_a_finding_with_its_state(supervisor: Supervisor) -> None:
    subprocess.run(["supervisorctl", "-c", str(supervisor.config), "stop", "worker"],
                   check=True, capture_output=True, timeout=30)
    assert supervisor.states()["worker"] == "STOPPED"
    report = supervisord.check(supervisor.url, username=USER, password=PASSWORD)
    stopped = [f for f in report.findings if f.resource == "program:worker"]
    assert [(f.level, f.summary) for f in stopped] == [(Level.WARNING, "worker is STOPPED")]
    assert report.findings[-1].summary.startswith("1/3 programs RUNNING")


def test_wrong_password_and_nothing_listening_are_findings(supervisor: Supervisor,
                                                           dead_endpoint: object) -> None:
    refused = supervisord.check(supervisor.url, username=USER, password="wrong")
    assert refused.error is not None and "HTTP 401" in refused.error
    assert refused.findings[0].level == Level.CRITICAL
    gone = supervisord.check(f"http://127.0.0.1:{dead_endpoint.port}/RPC2",  # type: ignore[attr-defined]
                             timeout=2)
    assert gone.error is not None and "not reachable" in gone.error


def test_cli_with_credentials_in_the_url_records_without_them(supervisor: Supervisor) -> None:
    supervisor.rpc().supervisor.stopProcess("web")
    incident = run_cli("new", "--playbook", "process-down", "--host", "localhost",
                       "--title", "web down").stdout.strip()
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{supervisor.port}/RPC2"
    result = run_cli("supervisor", url, "--incident", incident, "--json", check=False)
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    states = {p["name"]: p["statename"] for p in payload["processes"]}
    assert states == {"web": "STOPPED", "worker": "RUNNING", "broken": "FATAL"}
    directory = IncidentStore().directory(incident)
    kept = directory.joinpath("events.jsonl").read_text() + "".join(
        p.read_text() for p in directory.rglob("*") if p.is_file() and p.suffix != ".jsonl")
    assert PASSWORD not in kept
    state = IncidentStore().load(incident)
    assert state.detected_at is not None
    assert {f["resource"] for f in state.evidence[0]["findings"]} >= {"program:web",
                                                                     "program:broken"}


def test_through_an_ssh_tunnel_to_the_hosts_loopback(supervisor: Supervisor,
                                                     sshd_fleet: SshdLab, tmp_path: Path) -> None:
    supervisor.rpc().supervisor.stopProcess("worker")
    host: Host = lab_hosts(sshd_fleet)[0]
    report = supervisord.check_host(host, port=supervisor.port, ssh=lab_options(sshd_fleet),
                                    username=USER, password=PASSWORD)
    assert report.error is None, report.error
    assert report.where == f"lab1 -> 127.0.0.1:{supervisor.port}"
    worker = [f for f in report.findings if f.resource == "program:worker"]
    assert worker[0].summary == "worker is STOPPED" and worker[0].host == "lab1"
    # and from the command line, with the lab's inventory and known_hosts
    inventory = write_inventory(sshd_fleet, tmp_path / "inventory.yaml")
    result = run_cli("supervisor", "--host", "lab1", "--port", str(supervisor.port),
                     "--user", USER, "-i", str(inventory), "--known-hosts",
                     str(sshd_fleet.known_hosts), "--json",
                     env={"RUNBOOK_SUPERVISOR_PASSWORD": PASSWORD}, check=False)
    assert result.returncode == 1, result.stderr
    assert "worker is STOPPED" in result.stdout


def test_a_tunnel_to_a_port_with_nothing_listening(sshd_fleet: SshdLab,
                                                   dead_endpoint: object) -> None:
    host = lab_hosts(sshd_fleet)[0]
    report = supervisord.check_host(host, port=dead_endpoint.port,  # type: ignore[attr-defined]
                                    ssh=lab_options(sshd_fleet), timeout=5)
    assert report.error is not None and "refused a tunnel" in report.error
