"""l2met log metrics: units, thresholds, garbage, and metrics that stop arriving."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from runbook.detect import l2met
from runbook.detect.thresholds import parse_duration, parse_quantity, parse_threshold
from runbook.errors import RunbookError
from runbook.findings import Level, ParseContext
from runbook.incident.store import IncidentStore
from tests.conftest import run_cli

LOG = "".join([
    "2024-05-01T10:00:00Z app[worker.1]: source=worker.1 ",
    "sample#sidekiq.default.latency=1577.5 sample#sidekiq.default.size=43\n",
    "2024-05-01T10:00:00.5+00:00 app[web.1]: source=web.1 ",
    "sample#memory_total=40.9MB measure#db.query=12ms count#jobs.failed=2\n",
    "this line is plain application logging, no metrics\n",
    "sample#broken=12zz% count#jobs.failed sample#novalue=\n",
    "2024-05-01T10:01:00Z app[worker.1]: source=worker.1 ",
    "sample#sidekiq.default.latency=900 sample#sidekiq.critical.latency=2.5s\n",
    "2024-05-01T10:08:00Z app[web.1]: source=web.1 measure#db.query=1.5s count#jobs.failed=4\n",
    "\x1b]52;c;ZXZpbA==\x07 sample#\n",
])


def read(text: str = LOG, *thresholds: str, **kw: object) -> l2met.L2metReport:
    return l2met.read(text.splitlines(), [parse_threshold(t) for t in thresholds], **kw)  # type: ignore[arg-type]


def summaries(report: l2met.L2metReport, level: Level | None = None) -> list[str]:
    return [f.summary for f in report.findings if level is None or f.level == level]


def test_units_are_compared_in_a_base_unit() -> None:
    assert parse_quantity("40.9MB").base == pytest.approx(40.9 * 1024**2)  # type: ignore[union-attr]
    assert parse_quantity("12ms").base == 12  # type: ignore[union-attr]
    assert parse_quantity("1.5s").base == 1500  # type: ignore[union-attr]
    assert parse_quantity("250us").base == pytest.approx(0.25)  # type: ignore[union-attr]
    assert parse_quantity("43").base == 43  # type: ignore[union-attr]
    assert parse_quantity("12zz%") is None and parse_quantity("nan") is None
    assert parse_threshold("latency>1s").crossed(1500.0)
    assert not parse_threshold("latency>1s").crossed(999.0)
    assert parse_threshold("status!=ok").crossed("degraded")
    assert not parse_threshold("status==ok").crossed("degraded")
    assert parse_duration("5m") == 300 and parse_duration("90") == 90
    with pytest.raises(RunbookError, match="not a threshold"):
        parse_threshold("latency is high")


def test_series_are_kept_per_name_and_source_with_their_units() -> None:
    report = read()
    latency = report.series[("sidekiq.default.latency", "worker.1")]
    assert str(latency.last) == "900" and str(latency.peak) == "1577.5"
    assert latency.points == 2
    assert str(report.series[("memory_total", "web.1")].last) == "40.9MB"
    assert report.series[("db.query", "web.1")].last.base == 1500
    # count# adds up; a bare count# is 1 (it has no source on its line)
    assert report.series[("jobs.failed", "web.1")].total == 6
    assert report.series[("jobs.failed", "")].total == 1


def test_garbage_is_ignored_and_counted() -> None:
    report = read()
    assert report.lines == 7
    assert report.ignored == 2  # the plain log line and the escape-sequence line
    assert report.bad_tokens == 3  # 12zz%, an empty value, a bare `sample#`... counted once each
    info = [s for s in summaries(report, Level.INFO) if "had no metric" in s]
    assert info == ["2 of 7 line(s) had no metric; 3 malformed metric value(s) ignored"]


def test_thresholds_by_glob_make_findings_on_the_latest_value() -> None:
    report = read(LOG, "sidekiq.*.latency>1000", "db.query>1s:warning", "memory_total>1GB")
    critical = summaries(report, Level.CRITICAL)
    # sidekiq.default.latency went back under: only the critical queue is over now
    assert critical == ["sidekiq.critical.latency = 2.5s at 2024-05-01T10:01:00Z from worker.1 "
                        "(threshold sidekiq.*.latency>1000)"]
    assert any("db.query = 1.5s" in s for s in summaries(report, Level.WARNING))
    earlier = [s for s in summaries(report, Level.INFO) if "crossed" in s]
    assert earlier == ["sidekiq.default.latency crossed sidekiq.*.latency>1000 earlier "
                       "(peak 1577.5 at 2024-05-01T10:00:00Z), now 900"]
    assert not any("memory_total" in s for s in summaries(report))
    assert l2met.first_crossing(report) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_a_metric_that_stops_arriving_is_reported() -> None:
    report = read(LOG, stale=300)
    stale = [s for s in summaries(report, Level.WARNING) if s.startswith("no data")]
    # measured against the newest line (10:08): the worker went quiet at 10:01
    assert "no data for 7m00s from sidekiq.critical.latency@worker.1 " \
           "(last at 2024-05-01T10:01:00Z)" in stale
    assert not any("db.query" in s for s in stale)
    later = read(LOG, stale=300, now=datetime(2024, 5, 1, 10, 30, tzinfo=UTC))
    assert any("no data for 22m00s from db.query@web.1" in s for s in summaries(later))


def test_without_timestamps_arrival_time_and_now_are_used() -> None:
    lines = ["sample#queue.size=3", "sample#queue.size=4 source=a"]
    fresh = read("\n".join(lines), stale=60)
    assert not any(s.startswith("no data") for s in summaries(fresh))
    much_later = datetime(2999, 1, 1, tzinfo=UTC)
    stale = read("\n".join(lines), stale=60, now=much_later)
    assert len([s for s in summaries(stale) if s.startswith("no data")]) == 2


def test_the_parser_form_takes_its_thresholds_from_the_context() -> None:
    ctx = ParseContext(extra={"thresholds": [parse_threshold("sidekiq.*.latency>1000")],
                              "stale": 60})
    findings = l2met.parse_l2met(LOG, ctx)
    assert any(f.level == Level.CRITICAL and "sidekiq.critical" in f.summary for f in findings)


def test_cli_reads_stdin_records_evidence_and_sets_detected_at(tmp_path: Path) -> None:
    opened = run_cli("new", "--playbook", "queue-latency", "--host", "localhost",
                     "--title", "queue slow").stdout.strip()
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "runbook", "l2met", "-", "--threshold", "sidekiq.*.latency>1000",
         "--stale", "5m", "--incident", opened, "--json"],
        input=LOG, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr  # firing findings
    payload = json.loads(result.stdout)
    assert payload["ignored_lines"] == 2 and payload["recorded"]["incident"] == opened
    state = IncidentStore().load(opened)
    [evidence] = state.evidence
    assert evidence["collector"] == "l2met" and evidence["source"] == "detect"
    assert evidence["host"] == "operator"
    captured = IncidentStore().directory(opened) / evidence["stdout"]
    assert captured.read_text() == LOG  # the input, kept byte for byte as evidence
    assert state.detected_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    assert any(f["level"] == "critical" for f in evidence["findings"])


def test_cli_reads_a_file_and_a_command(tmp_path: Path) -> None:
    log = tmp_path / "metrics.log"
    log.write_text("sample#db.pool.waiting=1\n")
    quiet = run_cli("l2met", str(log), "--threshold", "db.pool.waiting>5")
    assert quiet.returncode == 0 and "critical" not in quiet.stdout
    loud = run_cli("l2met", "--command", "echo sample#db.pool.waiting=9",
                   "--threshold", "db.pool.waiting>5", check=False)
    assert loud.returncode == 1 and "db.pool.waiting = 9" in loud.stdout
    bad = run_cli("l2met", str(log), "--threshold", "waiting is high", check=False)
    assert bad.returncode == 2 and "not a threshold" in bad.stderr


@pytest.mark.parametrize("module", [
    "runbook.detect.alertmanager", "runbook.detect.listener", "runbook.detect.alert_rules",
    "runbook.detect.http_probe", "runbook.detect.supervisord", "runbook.detect.l2met",
    "runbook.detect.json_stats", "runbook.detect.prometheus", "runbook.detect.record",
    "runbook.announce.channels",
])
def test_detection_modules_do_not_import_textual(module: str) -> None:
    import subprocess
    import sys

    code = f"import sys, {module}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"
