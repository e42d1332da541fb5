"""Alerts in: the webhook listener on its own (bad input of every kind), and a
real Debian `prometheus-alertmanager` routing to `runbook listen`."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from runbook import paths
from runbook.detect.alert_rules import AlertRulesError, load_rules
from runbook.detect.alertmanager import AlertReceiver, alert_host
from runbook.detect.listener import AlertListener, parse_bind
from runbook.drill.sshd_lab import free_port
from runbook.errors import RunbookError
from runbook.hosts import Host
from runbook.incident import IncidentState
from runbook.incident.store import IncidentStore

TOKEN = "t0ken-for-tests"
RULES = """\
rules:
  - match: {alertname: NodeSupervisordDown}
    playbook: process-down
    severity: SEV2
  - match_re: {alertname: 'Disk.*'}
    playbook: disk-full
    hosts: "{{ labels.node }}"
"""


def webhook(*alerts: dict[str, Any], group_key: str = '{}:{alertname="HostDown"}',
            status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "groupKey": group_key, "status": status, "receiver": "runbook",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager", "truncatedAlerts": 0, "alerts": list(alerts)}


def alert(labels: dict[str, str], status: str = "firing", summary: str = "",
          fingerprint: str = "") -> dict[str, Any]:
    return {"status": status, "labels": labels,
            "annotations": {"summary": summary} if summary else {},
            "startsAt": "2024-05-01T10:00:00Z",
            "endsAt": "2024-05-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint}


def adhoc(names: list[str]) -> list[Host]:
    return [Host(name=n, address=n) for n in names]


@pytest.fixture
def listener() -> Iterator[AlertListener]:
    receiver = AlertReceiver(IncidentStore(), load_rules(), "tester@lab", select_hosts=adhoc)
    running = AlertListener(receiver, "127.0.0.1", 0, token=TOKEN, max_body=4096).start()
    try:
        yield running
    finally:
        running.stop()


def post(url: str, body: bytes | dict[str, Any], token: str | None = TOKEN,
         method: str = "POST") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def only_incident() -> IncidentState:
    [state] = IncidentStore().all()
    return state


# -- the receiver and the listener -------------------------------------------------------


def test_a_firing_alert_opens_a_generic_host_incident(listener: AlertListener) -> None:
    code, reply = post(listener.url, webhook(alert(
        {"alertname": "HostDown", "instance": "web1.example.com:9100", "job": "node"},
        summary="web1 is not answering", fingerprint="aaa")))
    assert code == 200 and reply["alerts"][0]["action"] == "opened"
    state = only_incident()
    assert state.playbook_name == "generic-host"
    assert state.title == "HostDown: web1 is not answering"
    assert [h.name for h in state.hosts] == ["web1.example.com"]
    assert state.detected_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)  # startsAt
    assert state.alert is not None and state.alert["labels"]["job"] == "node"
    assert [a["status"] for a in state.alerts] == ["firing"]


def test_the_same_group_adds_to_the_incident_and_resolves_in_its_timeline(
        listener: AlertListener) -> None:
    first = alert({"alertname": "HostDown", "instance": "web1:9100"}, fingerprint="aaa")
    second = alert({"alertname": "HostDown", "instance": "web2:9100"}, fingerprint="bbb")
    post(listener.url, webhook(first))
    code, reply = post(listener.url, webhook(first, second))  # Alertmanager repeats the group
    assert [a["action"] for a in reply["alerts"]] == ["repeated", "added"]
    resolved = {**first, "status": "resolved", "endsAt": "2024-05-01T10:05:00Z"}
    code, reply = post(listener.url, webhook(resolved, second))
    assert [a["action"] for a in reply["alerts"]] == ["resolved", "repeated"]
    state = only_incident()
    assert [(a["fingerprint"], a["status"]) for a in state.alerts] == [
        ("aaa", "firing"), ("bbb", "firing"), ("aaa", "resolved")]
    assert state.detected_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert state.status == "open"  # people resolve incidents; alerts only inform them
    # another group is another incident
    post(listener.url, webhook(first, group_key='{}:{alertname="Other"}'))
    assert len(IncidentStore().all()) == 2


def test_rules_pick_playbook_hosts_and_severity(listener: AlertListener) -> None:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "alerts.yaml").write_text(RULES)
    listener.receiver.rules = load_rules()
    post(listener.url, webhook(alert({"alertname": "NodeSupervisordDown",
                                      "instance": "app3:9100"}), group_key="g1"))
    post(listener.url, webhook(alert({"alertname": "DiskFull", "node": "db1",
                                      "instance": "10.0.0.5:9100"}), group_key="g2"))
    states = {s.alert["group_key"]: s for s in IncidentStore().all()}  # type: ignore[index]
    assert (states["g1"].playbook_name, states["g1"].severity) == ("process-down", "SEV2")
    assert [h.name for h in states["g1"].hosts] == ["app3"]
    assert states["g2"].playbook_name == "disk-full"
    assert [h.name for h in states["g2"].hosts] == ["db1"]


def test_rules_are_validated_with_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "alerts.yaml"
    broken.write_text("rules:\n  - match: {alertname: X}\n    playbook: generic-host\n"
                      "  - match_re: {alertname: '(unclosed'}\n")
    with pytest.raises(AlertRulesError) as caught:
        load_rules(broken)
    assert caught.value.line == 4 and "not a regular expression" in caught.value.problem
    broken.write_text("rules:\n  - match: {alertname: X}\n    playbook: no-such-book\n")
    with pytest.raises(AlertRulesError) as caught:
        load_rules(broken)
    assert caught.value.line == 3 and caught.value.field == "rules[0].playbook"
    broken.write_text("rules:\n  - match: {alertname: X}\n    hots: '{{ host }}'\n")
    with pytest.raises(AlertRulesError) as caught:
        load_rules(broken)
    assert caught.value.line == 3 and "did you mean 'hosts'" in caught.value.problem
    assert load_rules().rules == ()  # no file: no rules


@pytest.mark.parametrize("instance", [
    "web1;rm -rf /", "$(touch /tmp/pwned):9100", "`id`", "web1 && reboot", "a'b", "x\ny",
])
def test_label_values_with_shell_characters_never_become_hosts(
        listener: AlertListener, instance: str) -> None:
    code, reply = post(listener.url, webhook(alert({"alertname": "HostDown",
                                                     "instance": instance})))
    assert code == 200 and reply["alerts"][0]["action"] == "opened"
    assert any("not a host name" in w for w in reply["alerts"][0]["warnings"])
    state = only_incident()
    assert state.hosts == []
    assert state.alert is not None and state.alert["labels"]["instance"] == instance  # data


def test_malformed_json_is_400_with_a_reason(listener: AlertListener) -> None:
    code, reply = post(listener.url, b'{"version": "4", "alerts": [')
    assert code == 400 and reply["error"].startswith("malformed JSON:")
    code, reply = post(listener.url, {"version": "4", "groupKey": "g", "status": "firing",
                                      "alerts": [{"status": "burning", "labels": {}}]})
    assert code == 400 and "alerts.0.status" in reply["error"]
    code, reply = post(listener.url, {**webhook(), "version": "3"})
    assert code == 400 and "version" in reply["error"]
    assert IncidentStore().all() == []


def test_json_nested_too_deep_is_400_and_the_listener_goes_on(listener: AlertListener) -> None:
    deep = b"[" * 200_000 + b"]" * 200_000  # under the cap of a real listener (1 MB)
    receiver = listener.receiver
    bigger = AlertListener(receiver, "127.0.0.1", 0, max_body=1024 * 1024).start()
    try:
        code, reply = post(bigger.url, deep, token=None)
        assert code == 400 and "nested more than" in reply["error"]
        code, _ = post(bigger.url, webhook(alert({"alertname": "HostDown", "instance": "web1"})),
                       token=None)
        assert code == 200
    finally:
        bigger.stop()


def test_a_bulk_webhook_is_one_journal_write_and_its_repeat_records_nothing(
        listener: AlertListener) -> None:
    alerts = [alert({"alertname": "DiskFull", "instance": f"web{i % 7}", "mount": f"/d{i}"},
                    fingerprint=f"fp{i:04d}") for i in range(2000)]
    body = json.dumps(webhook(*alerts, group_key="bulk")).encode()
    big = AlertListener(listener.receiver, "127.0.0.1", 0, max_body=2 * 1024 * 1024).start()
    try:
        code, reply = post(big.url, body, token=None)
        assert code == 200
        actions = [a["action"] for a in reply["alerts"]]
        assert actions[0] == "opened" and actions[1:] == ["added"] * 1999
        state = only_incident()
        assert len(state.alerts) == 2000
        # Alertmanager repeats the notification: each alert is recognised, nothing added.
        code, reply = post(big.url, body, token=None)
        assert {a["action"] for a in reply["alerts"]} == {"repeated"}
        assert len(only_incident().alerts) == 2000
        # One resolved among them is recorded as such, once.
        resolved = dict(alerts[5], status="resolved", endsAt="2024-05-01T10:05:00Z")
        code, reply = post(big.url, webhook(resolved, group_key="bulk"), token=None)
        assert [a["action"] for a in reply["alerts"]] == ["resolved"]
        code, reply = post(big.url, webhook(resolved, group_key="bulk"), token=None)
        assert [a["action"] for a in reply["alerts"]] == ["repeated"]
    finally:
        big.stop()


def test_a_stalled_request_holds_up_no_other_alert(listener: AlertListener) -> None:
    import socket

    host, port = listener.address
    stalled = socket.create_connection((host, port))
    try:
        # Headers promise a body that never comes: the request holds its own thread.
        stalled.sendall(b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n"
                        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n\r\n{\"ver")
        started = time.monotonic()
        code, reply = post(listener.url, webhook(alert({"alertname": "HostDown",
                                                        "instance": "web1"})))
        assert code == 200 and reply["alerts"][0]["action"] == "opened"
        assert time.monotonic() - started < 5
    finally:
        stalled.close()


def test_a_client_that_resets_prints_no_traceback() -> None:
    """`runbook listen` as a process: clients that vanish mid-request or before
    the reply leave nothing on its stderr, and it goes on answering."""
    import socket
    import struct

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "listen", "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        body = json.dumps(webhook(alert({"alertname": "HostDown", "instance": "web1"}))).encode()
        for cut in (10, len(body) // 2, len(body)):
            client = socket.create_connection(("127.0.0.1", port))
            client.sendall(b"POST /alerts HTTP/1.1\r\nHost: x\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\n\r\n" + body[:cut])
            # SO_LINGER 0: close sends a reset, as a crashed client's kernel does.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(0.5)
        code, _ = post(f"http://127.0.0.1:{port}/alerts", body, token=None)
        assert code == 200
    finally:
        _stop(process)
    stderr = process.stderr.read() if process.stderr else ""
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


def test_an_oversized_body_is_413(listener: AlertListener) -> None:
    big = webhook(alert({"alertname": "HostDown", "instance": "web1", "x": "y" * 5000}))
    code, reply = post(listener.url, big)
    assert code == 413 and "over the limit of 4096 bytes" in reply["error"]
    assert IncidentStore().all() == []


def test_a_missing_or_wrong_token_is_401(listener: AlertListener) -> None:
    body = webhook(alert({"alertname": "HostDown", "instance": "web1"}))
    assert post(listener.url, body, token=None)[0] == 401
    assert post(listener.url, body, token="guess")[0] == 401
    assert IncidentStore().all() == []
    assert post(listener.url, body)[0] == 200


def test_other_paths_and_methods(listener: AlertListener) -> None:
    base = listener.url.removesuffix("/alerts")
    assert post(base + "/elsewhere", webhook())[0] == 404
    with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(listener.url, timeout=5)
    assert caught.value.code == 405


def test_bind_is_loopback_unless_allowed() -> None:
    assert parse_bind("127.0.0.1:9095") == ("127.0.0.1", 9095)
    assert parse_bind("[::1]:0") == ("::1", 0)
    assert parse_bind(":9095") == ("127.0.0.1", 9095)
    with pytest.raises(RunbookError, match="not a loopback address"):
        parse_bind("0.0.0.0:9095")
    assert parse_bind("0.0.0.0:9095", allow_remote=True) == ("0.0.0.0", 9095)
    with pytest.raises(RunbookError, match="HOST:PORT"):
        parse_bind("localhost")


def test_listen_refuses_a_remote_bind_and_a_broken_rules_file() -> None:
    from tests.conftest import run_cli

    remote = run_cli("listen", "--bind", "0.0.0.0:0", check=False)
    assert remote.returncode == 2 and "not a loopback address" in remote.stderr
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "alerts.yaml").write_text("rules:\n  - playbook: nope\n")
    broken = run_cli("listen", "--bind", "127.0.0.1:0", check=False)
    assert broken.returncode == 2 and "alerts.yaml:2" in broken.stderr


def test_alert_host_strips_the_port() -> None:
    assert alert_host({"instance": "web1:9100"}) == "web1"
    assert alert_host({"instance": "[2001:db8::1]:9100"}) == "2001:db8::1"
    assert alert_host({"hostname": "db2"}) == "db2"
    assert alert_host({"job": "x"}) is None


# -- the real Alertmanager ----------------------------------------------------------------


class Lines:
    """A process's stdout lines, read in a thread so the test can wait for one."""

    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line)

    def wait_for(self, test: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if test(line):
                return line
        raise AssertionError(f"no such line within {timeout}s; saw: {self.seen}")


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def runbook_listen() -> Iterator[tuple[int, Lines]]:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "alerts.yaml").write_text(RULES)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runbook", "listen", "--bind", f"127.0.0.1:{port}",
         "--token", TOKEN, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, env=os.environ.copy())
    try:
        _wait_http(f"http://127.0.0.1:{port}/healthz")
        yield port, Lines(process.stdout)
    finally:
        _stop(process)


@pytest.fixture
def alertmanager(tmp_path: Path, runbook_listen: tuple[int, Lines]) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.skip("Alertmanager is not installed (apt-get install prometheus-alertmanager)")
    listen_port, _ = runbook_listen
    config = tmp_path / "alertmanager.yml"
    config.write_text(f"""\
route:
  receiver: runbook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: runbook
    webhook_configs:
      - url: http://127.0.0.1:{listen_port}/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {TOKEN}
""")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am-data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
         "--log.level=warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        _wait_http(f"http://127.0.0.1:{port}/-/ready")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(process)
        log.close()


def _am_post(base: str, alerts: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(base + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def test_alertmanager_routes_an_alert_to_an_incident_and_then_its_resolution(
        alertmanager: str, runbook_listen: tuple[int, Lines]) -> None:
    _, lines = runbook_listen
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    labels = {"alertname": "NodeSupervisordDown", "instance": "app7.internal:9100",
              "job": "node", "severity": "page"}
    firing = {"labels": labels, "annotations": {"summary": "supervisord is down on app7"},
              "startsAt": started.isoformat().replace("+00:00", "Z"),
              "generatorURL": "http://prometheus.local/graph"}
    _am_post(alertmanager, [firing])
    opened = json.loads(lines.wait_for(lambda line: '"action": "opened"' in line))
    assert opened["alertname"] == "NodeSupervisordDown" and opened["hosts"] == ["app7.internal"]
    state = IncidentStore().load(opened["incident"])
    assert state.playbook_name == "process-down" and state.severity == "SEV2"
    assert [h.name for h in state.hosts] == ["app7.internal"]
    assert state.title == "NodeSupervisordDown: supervisord is down on app7"
    assert state.detected_at == started
    assert state.alert is not None and state.alert["labels"]["job"] == "node"

    ended = datetime.now(UTC) - timedelta(seconds=5)
    _am_post(alertmanager, [{**firing, "endsAt": ended.isoformat().replace("+00:00", "Z")}])
    resolved = json.loads(lines.wait_for(lambda line: '"action": "resolved"' in line))
    assert resolved["incident"] == opened["incident"]
    state = IncidentStore().load(opened["incident"])
    assert [a["status"] for a in state.alerts] == ["firing", "resolved"]
    assert state.alerts[-1]["ends_at"] is not None
    timeline = [e.type for e in state.events]
    assert timeline[:2] == ["incident.opened", "alert.received"]
    assert "alert.resolved" in timeline
