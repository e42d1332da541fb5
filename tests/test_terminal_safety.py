"""Nothing from a host, an alert or a user reaches the operator's terminal raw.

One incident is opened the way a real one is, by an Alertmanager webhook POSTed
to the real `runbook listen` over HTTP, with terminal sequences in its alert
name and labels. A real collection over SSH then brings back a kernel log whose
OOM line names a process with terminal sequences in it; a JSON stats endpoint
and an inventory carry them too. Every command that prints is run as an
operator would run it, in a pipe and as on a colour
terminal, and its output is read: no control character but runbook's own
colours, and the hostile text shown visibly (`\\x1b]0;pwned...`).

The one fake: the lab host's `dmesg` is a script first on the login shell's PATH that
prints that OOM line, because writing it into this machine's real kernel log
would leave it there for every other test and user of the machine.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from runbook import paths
from runbook.drill.sshd_lab import SshdLab, free_port
from tests.conftest import run_cli
from tests.fleet import start_lab, write_inventory

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\u009b31m\u202e"
# As the operator sees it: each control as its escape (the 8-bit colour code alone
# is removed whole).
SHOWN = r"\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\u202e"
OOM_LINE = ("[Wed Dec  2 03:00:00 2026] Out of memory: Killed process 4242 "
            f"(evil{HOSTILE}) total-vm:1000kB, anon-rss:900kB\n")
# What a terminal could act on, once runbook's own codes are set aside: colours
# (SGR), and the live progress's cursor hiding, line erasing and moving up (none
# of which the hostile text uses).
RUNBOOK_OWN = re.compile(r"\x1b\[[0-9;]*m|\x1b\[\?25[lh]|\x1b\[2K|\x1b\[1A")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def assert_terminal_safe(text: str, where: str) -> None:
    found = CONTROL.search(RUNBOOK_OWN.sub("", text))
    assert found is None, f"{where}: raw {found.group()!r} in {text!r}"


@pytest.fixture
def hostile_lab(tmp_path: Path) -> Iterator[SshdLab]:
    tools = tmp_path / "host-bin"
    tools.mkdir()
    dmesg = tools / "dmesg"
    dmesg.write_bytes(b"#!/bin/sh\nprintf '%s' '" + OOM_LINE.encode() + b"'\n")
    dmesg.chmod(0o755)
    lab = start_lab(tmp_path / "hostile-lab", 1, 200, login_cost=0)
    # The login shell's rc file (the lab's own) puts the script first on PATH.
    with (lab.directory / "home" / ".bashrc").open("a") as rc:
        rc.write(f"export PATH={tools}:$PATH\n")
    try:
        yield lab
    finally:
        lab.stop()


def webhook(alertname: str) -> bytes:
    alert = {"status": "firing", "labels": {"alertname": alertname, "instance": "lab1",
                                            "team": f"ops{HOSTILE}"},
             "annotations": {"summary": f"disk full{HOSTILE}on /data"},
             "startsAt": "2026-12-02T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "f00d"}
    return json.dumps({"version": "4", "groupKey": "{}:{alertname=\"x\"}", "status": "firing",
                       "receiver": "runbook", "groupLabels": {}, "commonLabels": {},
                       "commonAnnotations": {}, "externalURL": "http://am",
                       "truncatedAlerts": 0, "alerts": [alert]}).encode()


def listen_and_post(body: bytes) -> tuple[str, dict]:
    """`runbook listen` as a process; one webhook POSTed; its printed line."""
    port = free_port()
    listener = subprocess.Popen([sys.executable, "-m", "runbook", "listen", "--bind",
                                 f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/alerts", data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=10) as response:
                    reply = json.loads(response.read())
                break
            except OSError:
                assert time.monotonic() < deadline, "the listener did not start"
                time.sleep(0.1)
    finally:
        listener.terminate()
        out, _ = listener.communicate(timeout=10)
    return out, reply


@contextlib.contextmanager
def hostile_endpoint() -> Iterator[str]:
    """A local HTTP stats endpoint answering JSON with sequences in names and values."""
    body = json.dumps({"queue": {f"jobs{HOSTILE}": 7, "state": f"busy{HOSTILE}"}}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/stats"
    finally:
        server.shutdown()
        server.server_close()


def run_both_ways(*args: str, check: bool = True) -> list[tuple[str, str]]:
    """A command's stdout and stderr in a pipe, and again as on a colour terminal."""
    outputs = []
    for env in ({}, {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}):
        result = run_cli(*args, env=env, check=check)
        outputs += [(f"{' '.join(args[:2])} {env or 'pipe'} stdout", result.stdout),
                    (f"{' '.join(args[:2])} {env or 'pipe'} stderr", result.stderr)]
    return outputs


def test_every_command_shows_hostile_alerts_and_output_visibly_never_raw(
        hostile_lab: SshdLab, tmp_path: Path, runbook_home: Path) -> None:
    inventory = write_inventory(hostile_lab, tmp_path / "inventory.yaml")
    # The listener finds the alert's instance in the default inventory.
    paths.default_inventory().parent.mkdir(parents=True, exist_ok=True)
    write_inventory(hostile_lab, paths.default_inventory())

    # The alert arrives: the listener's own line names it, cleaned.
    printed, reply = listen_and_post(webhook(f"Disk{HOSTILE}Full"))
    [outcome] = reply["alerts"]
    assert outcome["action"] == "opened", reply
    incident = outcome["incident"]
    assert_terminal_safe(printed, "listen")
    assert f"Disk{SHOWN}Full" in printed

    # The hosts answer with a hostile kernel log.
    collected = run_both_ways("collect", "--incident", incident, "-i", str(inventory),
                              "--known-hosts", str(hostile_lab.known_hosts), "-c", "dmesg")
    collect_out = collected[0][1]
    assert "OOM" in collect_out or "out of memory" in collect_out, collect_out
    # rich folds long cells over lines: read the table's text with the breaks removed
    assert f"evil{SHOWN}" in re.sub(r"\s*│\s*|\s*\n\s*", "", collect_out), collect_out

    run_cli("note", incident, f"seen{HOSTILE}twice")
    run_cli("answer", incident, "what-fired", f"users{HOSTILE}see errors")
    outputs = collected
    outputs += run_both_ways("list")
    outputs += run_both_ways("show", incident)
    outputs += run_both_ways("show", incident, "--json")
    outputs += run_both_ways("announce", incident, "initial-notice", "--draft")
    announced = tmp_path / "announcement.txt"
    outputs += run_both_ways("announce", incident, "initial-notice", "--to", f"file:{announced}")
    outputs.append(("announcement file", announced.read_text()))
    outputs += run_both_ways("announce", incident, "status-update", "--to", "stdout")
    outputs += run_both_ways("report", incident)

    # A stats endpoint whose metric names and values carry sequences too.
    with hostile_endpoint() as url:
        stats = run_both_ways("stats", url, "--threshold", "queue.*>1", check=False)
        assert f"queue.jobs{SHOWN}" in stats[0][1], stats  # a critical finding: exit 1
        outputs += stats
    # An inventory whose host project and role came from somewhere untrusted.
    (tmp_path / "hostile-inventory.yaml").write_text(
        f"hosts:\n  web1:\n    project: {json.dumps('shop' + HOSTILE)}\n"
        f"    role: {json.dumps('web' + HOSTILE)}\n")
    outputs += run_both_ways("inventory", "list", "-i", str(tmp_path / "hostile-inventory.yaml"))

    run_cli("resolve", incident)
    run_cli("close", incident)
    found = run_both_ways("history", "search", "pwned")
    assert incident in found[0][1], found
    outputs += found
    outputs += run_both_ways("history", "show", incident)

    for where, text in outputs:
        assert_terminal_safe(text, where)
    shown = "\n".join(text for _, text in outputs)
    for visible in (f"Disk{SHOWN}Full", f"seen{SHOWN}twice", f"users{SHOWN}see errors"):
        assert visible in shown or visible.replace("\\", "\\\\") in shown, visible

    # The evidence on disk keeps what the host sent, byte for byte.
    evidence = list((runbook_home / "incidents").rglob("*-dmesg.stdout"))
    assert evidence and any(OOM_LINE.encode() in p.read_bytes() for p in evidence)
