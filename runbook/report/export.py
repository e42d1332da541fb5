"""The whole incident as JSON for other tools: state, timeline, findings, the
evidence index and what the postmortem derives, redacted like the Markdown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook.incident import IncidentState, as_json
from runbook.report import facts
from runbook.report.postmortem import default_redactor, incident_directory
from runbook.report.redact import Redactor

FORMAT = "runbook.incident-export/1"


def incident_export(state: IncidentState, *, redaction: Redactor | None = None,
                    incident_dir: Path | None = None, now: datetime | None = None
                    ) -> dict[str, Any]:
    redaction = redaction or default_redactor(state)
    directory = incident_dir or incident_directory(state)
    now = now or datetime.now(UTC)
    model = facts.build(state, incident_dir=directory, redactor=redaction, now=now)
    return {
        "format": FORMAT,
        "generated_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "redaction": {"secrets": redaction.secrets, "hosts": redaction.hosts,
                      "extra_patterns": len(redaction.extra)},
        "incident": redaction.value(as_json(state)),
        "findings": redaction.value(facts.findings(state, facts.Links(directory, None))),
        "excerpts": [{k: x[k] for k in ("host", "collector", "line", "first", "last", "file",
                                        "text")} for x in model["excerpts"]],
        "evidence_index": redaction.value(facts.evidence_index(state, directory)),
        "postmortem": {k: model[k] for k in ("times", "durations", "records", "executed",
                                             "action_items", "lessons", "skipped")},
    }
