"""A JSON stats endpoint as metrics, and a heartbeat as up or down.

`GET /stats` answering `{"db": {"pool": {"waiting": 7}}, "queues": [{"size": 3}]}`
becomes `db.pool.waiting = 7` and `queues.0.size = 3`: nested objects are
joined with dots, lists by index. Numbers and booleans (1/0) are metrics;
text is kept for `==`/`!=` thresholds (`status!=ok`). A threshold naming no
metric the endpoint returned is a finding too: a renamed metric must not
silence an alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from runbook.detect.fetch import Fetched, fetch
from runbook.detect.record import redact_url
from runbook.detect.thresholds import Threshold
from runbook.findings import Finding, Level, Signal

MAX_METRICS = 100_000


def flatten(value: Any, prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested JSON -> {dotted.name: leaf}. Leaves are numbers, booleans, text or None."""
    out = {} if out is None else out
    if len(out) >= MAX_METRICS:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        out[prefix or "value"] = value
    return out


@dataclass
class StatsReport:
    url: str
    metrics: dict[str, Any] = field(default_factory=dict)
    heartbeat: dict[str, Any] | None = None
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "error": self.error, "heartbeat": self.heartbeat,
                "metrics": self.metrics, "findings": [f.as_dict() for f in self.findings]}


def check(url: str | None, *, heartbeat: str | None = None,
          thresholds: list[Threshold] = (), timeout: float = 10.0) -> StatsReport:  # type: ignore[assignment]
    report = StatsReport(redact_url(url) if url else "")
    if heartbeat:
        report.heartbeat = _beat(heartbeat, timeout)
        report.findings.append(_heartbeat_finding(report.heartbeat))
    if url:
        got = fetch(url, timeout=timeout)
        report.error = got.error or _parse(got, report)
        report.findings += judge(report, thresholds)
    return report


def _parse(got: Fetched, report: StatsReport) -> str | None:
    try:
        report.metrics = flatten(json.loads(got.body))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"the answer is not JSON: {exc}"
    return None


def _beat(url: str, timeout: float) -> dict[str, Any]:
    got = fetch(url, timeout=timeout, max_bytes=64 * 1024)
    return {"url": redact_url(url), "up": got.ok, "status": got.status,
            "elapsed_ms": round(got.elapsed_ms, 1), "error": got.error}


def _heartbeat_finding(beat: dict[str, Any]) -> Finding:
    if beat["up"]:
        return Finding(Level.INFO, Signal.INFO, f"heartbeat:{beat['url']}",
                       f"heartbeat {beat['url']} is up (HTTP {beat['status']} in "
                       f"{beat['elapsed_ms']:.0f} ms)")
    return Finding(Level.CRITICAL, Signal.ERRORS, f"heartbeat:{beat['url']}",
                   f"heartbeat {beat['url']} is down: {beat['error']}")


def judge(report: StatsReport, thresholds: list[Threshold]) -> list[Finding]:
    resource = f"stats:{report.url}"
    if report.error:
        return [Finding(Level.CRITICAL, Signal.ERRORS, resource,
                        f"stats endpoint {report.url}: {report.error}")]
    findings: list[Finding] = []
    for threshold in thresholds:
        names = [n for n in report.metrics if threshold.matches(n)]
        if not names:
            findings.append(Finding(Level.WARNING, Signal.ERRORS, resource,
                                    f"no metric matches {threshold.text!r} in {report.url}"))
        for name in names:
            value = report.metrics[name]
            if threshold.crossed(value):
                findings.append(threshold.finding(name, json.dumps(value), f"metric:{name}"))
    findings.append(Finding(Level.INFO, Signal.INFO, resource,
                            f"{len(report.metrics)} metric(s) from {report.url}"))
    return findings
