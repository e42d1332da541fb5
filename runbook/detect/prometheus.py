"""An instant query against Prometheus's HTTP API (`GET /api/v1/query`), so a
playbook step can check a metric: `up{job="node"} == 0`, `node_supervisord_up`.

Each series of the result is a value; with a threshold, every series past it
is a finding naming its labels. An empty result is said plainly: for a query
written as a condition (`... == 0`) it means "nothing matches", usually good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from runbook.detect.fetch import fetch
from runbook.detect.record import redact_url
from runbook.detect.thresholds import Threshold
from runbook.errors import RunbookError
from runbook.findings import Finding, Level, Signal


@dataclass
class QueryReport:
    url: str
    query: str
    result_type: str | None = None
    series: list[dict[str, Any]] = field(default_factory=list)  # {"labels": {}, "value": float}
    error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "query": self.query, "result_type": self.result_type,
                "series": self.series, "error": self.error,
                "findings": [f.as_dict() for f in self.findings]}


def query(base_url: str, expression: str, *, threshold: Threshold | None = None,
          timeout: float = 10.0, at: str | None = None) -> QueryReport:
    """Run `expression` at `base_url` (http://prometheus:9090). A query Prometheus
    rejects (bad PromQL) is a RunbookError; an unreachable server is a finding."""
    params = {"query": expression, **({"time": at} if at else {})}
    url = base_url.rstrip("/") + "/api/v1/query?" + urlencode(params)
    report = QueryReport(redact_url(base_url), expression)
    got = fetch(url, timeout=timeout)
    try:
        answer = json.loads(got.body) if got.body else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        answer = None
    if isinstance(answer, dict) and answer.get("status") == "error":
        raise RunbookError(f"Prometheus refused the query: {answer.get('errorType')}: "
                           f"{answer.get('error')}", "check the PromQL")
    if got.error or not isinstance(answer, dict) or answer.get("status") != "success":
        report.error = got.error or "the answer is not Prometheus API JSON"
    else:
        report.result_type, report.series = _series(answer.get("data") or {})
    report.findings = judge(report, threshold)
    return report


def _series(data: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    kind = str(data.get("resultType"))
    result = data.get("result")
    if kind in ("scalar", "string"):
        return kind, [{"labels": {}, "value": _number(result[1])}] if result else []
    rows: list[dict[str, Any]] = []
    for item in result or []:
        labels = dict(item.get("metric") or {})
        if kind == "matrix":
            values = item.get("values") or []
            rows.append({"labels": labels, "value": _number(values[-1][1]) if values else None})
        else:
            rows.append({"labels": labels, "value": _number((item.get("value") or [0, None])[1])})
    return kind, rows


def _number(text: Any) -> float | str | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None if text is None else str(text)


def describe(labels: dict[str, str]) -> str:
    name = labels.get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest else (name or "{}")


def judge(report: QueryReport, threshold: Threshold | None) -> list[Finding]:
    resource = f"prometheus:{report.query}"
    if report.error:
        return [Finding(Level.CRITICAL, Signal.ERRORS, resource,
                        f"Prometheus at {report.url}: {report.error}")]
    findings: list[Finding] = []
    for row in report.series:
        if threshold is not None and threshold.crossed(row["value"]):
            findings.append(threshold.finding(describe(row["labels"]), f"{row['value']:g}"
                                              if isinstance(row["value"], float)
                                              else str(row["value"]), resource))
    text = (f"{len(report.series)} series" if report.series
            else "no series: nothing matches the query")
    findings.append(Finding(Level.INFO, Signal.INFO, resource, f"{report.query}: {text}"))
    return findings
