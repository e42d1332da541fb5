"""The HTTP sources against a real local server: the probe (with slow and failing
endpoints), a JSON stats endpoint with a heartbeat, and Prometheus's query API."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from runbook.detect import http_probe, json_stats, prometheus
from runbook.detect.thresholds import parse_threshold, parse_thresholds
from runbook.errors import RunbookError
from runbook.findings import Level
from runbook.incident.store import IncidentStore
from tests.conftest import run_cli

STATS = {"db": {"pool": {"size": 10, "waiting": 7}, "primary": True},
         "queues": [{"name": "default", "size": 3}, {"name": "mail", "size": 250}],
         "status": "degraded", "version": "1.2.3"}
PROM_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": [
    {"metric": {"__name__": "node_supervisord_up", "instance": "web1:9100"},
     "value": [1714557600.0, "0"]},
    {"metric": {"__name__": "node_supervisord_up", "instance": "web2:9100"},
     "value": [1714557600.0, "1"]}]}}


class Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    heartbeat_status = 200
    queries: list[str] = []  # noqa: RUF012 - shared with the test on purpose

    def log_message(self, *_: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path == "/heartbeat":
            self._send(self.heartbeat_status, b"ok\n")
        elif parts.path == "/stats":
            self._send(200, json.dumps(STATS).encode(), "application/json")
        elif parts.path == "/not-json":
            self._send(200, b"<html>oops</html>")
        elif parts.path == "/slow":
            time.sleep(0.3)
            self._send(200, b"slow but fine\n")
        elif parts.path == "/fail":
            self._send(503, b"upstream unavailable\n")
        elif parts.path == "/hang":
            time.sleep(3)
            self._send(200, b"too late\n")
        elif parts.path == "/api/v1/query":
            query = parse_qs(parts.query)["query"][0]
            type(self).queries.append(query)
            if query == "bad((":
                self._send(400, json.dumps({"status": "error", "errorType": "bad_data",
                                            "error": "parse error"}).encode())
            elif query == "absent_metric":
                body = {"status": "success", "data": {"resultType": "vector", "result": []}}
                self._send(200, json.dumps(body).encode())
            else:
                self._send(200, json.dumps(PROM_VECTOR).encode(), "application/json")
        else:
            self._send(200, b"hello, prober\n")

    def _send(self, code: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError):  # the prober gave up on /hang, as it should
            self.wfile.write(body)


@pytest.fixture
def site() -> Iterator[str]:
    handler = type("SiteHandler", (Site,), {"heartbeat_status": 200, "queries": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# -- the probe ----------------------------------------------------------------------


def test_probe_times_every_phase_and_checks_the_body(site: str) -> None:
    report = http_probe.probe(site + "/", count=4, expect_status=200, expect_body="prober")
    assert len(report.attempts) == 4
    for attempt in report.attempts:
        assert attempt.status == 200 and attempt.error is None and attempt.body_ok
        # cumulative from the start of the request, like curl -w
        assert 0 <= attempt.dns_ms <= attempt.connect_ms <= attempt.first_byte_ms  # type: ignore[operator]
        assert attempt.first_byte_ms <= attempt.total_ms  # type: ignore[operator]
        assert attempt.tls_ms == 0.0 and attempt.body_bytes == len(b"hello, prober\n")
    total = report.stats("total")
    assert total is not None and total["p50"] <= total["p95"] <= total["max"]
    assert [f.level for f in report.findings] == [Level.INFO]
    assert report.findings[0].summary.startswith("4/4 answered (200 x4); first byte p50")


def test_percentiles_are_measured_values() -> None:
    values = [float(v) for v in range(1, 21)]
    assert http_probe.percentile(values, 50) == 10
    assert http_probe.percentile(values, 95) == 19
    assert http_probe.percentile([5.0], 95) == 5


def test_a_slow_endpoint_crosses_the_time_threshold(site: str) -> None:
    report = http_probe.probe(site + "/slow", count=2, max_total_ms=100)
    assert all(a.total_ms and a.total_ms >= 290 for a in report.attempts)
    assert all(a.first_byte_ms and a.first_byte_ms >= 290 for a in report.attempts)
    [slow] = [f for f in report.findings if f.level == Level.CRITICAL]
    assert "total time p50" in slow.summary and "over 100 ms" in slow.summary
    fast_enough = http_probe.probe(site + "/slow", count=1, max_total_ms=5000)
    assert [f.level for f in fast_enough.findings] == [Level.INFO]


def test_a_failing_endpoint_and_a_wrong_body_are_findings(site: str) -> None:
    report = http_probe.probe(site + "/fail", count=3, expect_body="ok")
    summaries = [f.summary for f in report.findings if f.level == Level.CRITICAL]
    assert "3/3 responses were HTTP 503" in summaries
    assert "3/3 response bodies lack 'ok'" in summaries
    wrong = http_probe.probe(site + "/", count=1, expect_status=204)
    assert any("expected 204" in f.summary for f in wrong.findings)


def test_refused_and_timed_out_requests_are_values(site: str, dead_endpoint: Any) -> None:
    refused = http_probe.probe(f"http://{dead_endpoint.address}:{dead_endpoint.port}/",
                               count=2, timeout=2)
    assert [a.error for a in refused.attempts] == ["connection refused"] * 2
    assert refused.findings[0].level == Level.CRITICAL
    assert "2/2 requests" in refused.findings[0].summary
    started = time.monotonic()
    hung = http_probe.probe(site + "/hang", count=1, timeout=0.5)
    assert time.monotonic() - started < 2.5
    assert hung.attempts[0].error == "timed out after 0.5s (during first byte)"
    with pytest.raises(RunbookError, match="not an http"):
        http_probe.probe("ftp://example.com/")


def test_probe_cli_records_into_an_incident(site: str) -> None:
    incident = run_cli("new", "--playbook", "web-5xx", "--host", "localhost",
                       "--title", "5xx").stdout.strip()
    result = run_cli("probe", site + "/fail?token=s3kr1t-t0ken", "-n", "2", "--incident", incident,
                     "--json", check=False)
    assert result.returncode == 1, result.stderr
    payload = json.loads(result.stdout)
    assert payload["requests"] == 2 and payload["timings_ms"]["total"]["p95"] > 0
    assert payload["url"].endswith("/fail?…")  # the query string (often a token) is not kept
    state = IncidentStore().load(incident)
    [evidence] = state.evidence
    assert evidence["collector"] == "http-probe" and evidence["host"] == "127.0.0.1"
    assert state.detected_at is not None
    journal = (IncidentStore().directory(incident) / "events.jsonl").read_text()
    assert "s3kr1t-t0ken" not in journal
    ok = run_cli("probe", site + "/", "-n", "1")
    assert "1/1 answered (200 x1)" in ok.stdout


# -- JSON stats and heartbeat -------------------------------------------------------------


def test_flatten_joins_objects_with_dots_and_lists_by_index() -> None:
    flat = json_stats.flatten(STATS)
    assert flat["db.pool.waiting"] == 7 and flat["db.primary"] is True
    assert flat["queues.1.size"] == 250 and flat["queues.0.name"] == "default"
    assert json_stats.flatten([1, {"a": None}]) == {"0": 1, "1.a": None}
    assert json_stats.flatten(5) == {"value": 5}


def test_stats_thresholds_and_heartbeat(site: str) -> None:
    report = json_stats.check(site + "/stats", heartbeat=site + "/heartbeat",
                              thresholds=parse_thresholds(["db.pool.waiting>5",
                                                           "queues.*.size>100:warning",
                                                           "status!=ok", "cache.hits>0"]))
    by_level = {lvl: [f.summary for f in report.findings if f.level == lvl] for lvl in Level}
    assert "db.pool.waiting = 7 (threshold db.pool.waiting>5)" in by_level[Level.CRITICAL]
    assert 'status = "degraded" (threshold status!=ok)' in by_level[Level.CRITICAL]
    assert "queues.1.size = 250 (threshold queues.*.size>100:warning)" in by_level[Level.WARNING]
    assert any("no metric matches 'cache.hits>0'" in s for s in by_level[Level.WARNING])
    assert any(s.startswith(f"heartbeat {site}/heartbeat is up (HTTP 200")
               for s in by_level[Level.INFO])


def test_heartbeat_down_and_stats_unreachable(site: str, dead_endpoint: Any) -> None:
    down = json_stats.check(None, heartbeat=site + "/fail")
    assert down.findings[0].level == Level.CRITICAL
    assert "is down: HTTP 503" in down.findings[0].summary
    gone = json_stats.check(f"http://{dead_endpoint.address}:{dead_endpoint.port}/stats",
                            timeout=2)
    assert gone.findings[0].level == Level.CRITICAL and "cannot reach it" in gone.error  # type: ignore[operator]
    garbled = json_stats.check(site + "/not-json")
    assert "not JSON" in (garbled.error or "")


def test_stats_cli(site: str) -> None:
    result = run_cli("stats", site + "/stats", "--heartbeat", site + "/heartbeat",
                     "--threshold", "db.pool.waiting>5", "--json", check=False)
    assert result.returncode == 1
    payload = json.loads(result.stdout)
    assert payload["metrics"]["queues.1.size"] == 250 and payload["heartbeat"]["up"] is True
    calm = run_cli("stats", site + "/stats", "--threshold", "db.pool.waiting>50")
    assert "9 metric(s)" in calm.stdout


# -- Prometheus ------------------------------------------------------------------------------


def test_prometheus_instant_query_with_a_threshold(site: str) -> None:
    report = prometheus.query(site, "node_supervisord_up", threshold=parse_threshold("<1"))
    assert report.result_type == "vector"
    assert [s["value"] for s in report.series] == [0.0, 1.0]
    [down] = [f for f in report.findings if f.level == Level.CRITICAL]
    assert down.summary == 'node_supervisord_up{instance="web1:9100"} = 0 (threshold <1)'
    empty = prometheus.query(site, "absent_metric", threshold=parse_threshold(">0"))
    assert [f.summary for f in empty.findings] == [
        "absent_metric: no series: nothing matches the query"]
    with pytest.raises(RunbookError, match="bad_data: parse error"):
        prometheus.query(site, "bad((")


def test_prom_query_cli(site: str, dead_endpoint: Any) -> None:
    result = run_cli("prom-query", site, "node_supervisord_up", "--threshold", "==0",
                     "--json", check=False)
    assert result.returncode == 1
    assert json.loads(result.stdout)["series"][0]["labels"]["instance"] == "web1:9100"
    gone = run_cli("prom-query", f"http://{dead_endpoint.address}:{dead_endpoint.port}", "up",
                   check=False)
    assert gone.returncode == 1 and "cannot reach it" in gone.stdout
