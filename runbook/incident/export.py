"""An incident's whole state in plain JSON types, for `--json` and other tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from runbook.clock import utc_iso
from runbook.incident.state import IncidentState
from runbook.incident.timeline import summarize


def as_json(state: IncidentState) -> dict[str, Any]:
    """The whole state in plain JSON types, for `--json` and other tools."""
    current = state.current_step
    return {
        "id": state.id,
        "title": state.title,
        "severity": state.severity,
        "status": str(state.status),
        "drill": state.drill,
        "playbook": state.playbook_name,
        "playbook_problem": state.playbook_problem,
        "roles": dict(state.roles),
        "opened_at": utc_iso(state.opened_at),
        "detected_at": utc_iso(state.detected_at),
        "resolved_at": utc_iso(state.resolved_at),
        "closed_at": utc_iso(state.closed_at),
        "hosts": [h.as_record() for h in state.hosts],
        "current_step": current.step.id if current else None,
        "progress": {"finished": state.progress[0], "total": state.progress[1]},
        "steps": [
            {"id": s.step.id, "stage": s.stage, "kind": s.step.kind, "title": s.step.title,
             "status": str(s.status), "reason": s.reason, "answer": s.answer,
             "updated_at": utc_iso(s.updated_at), "actor": s.actor}
            for s in state.steps.values()
        ],
        "host_problems": {h: {k: (utc_iso(v) if isinstance(v, datetime) else v)
                              for k, v in p.items()} for h, p in state.host_problems.items()},
        "answers": dict(state.answers),
        "records": dict(state.records),
        "evidence": [{k: (utc_iso(v) if isinstance(v, datetime) else v) for k, v in e.items()}
                     for e in state.evidence],
        "commands": [
            {"id": c.id, "step": c.step, "command": c.command, "hosts": c.hosts,
             "rollback": c.rollback, "review_required": c.review_required,
             "proposed_by": c.proposed_by, "approvals": c.approvals,
             "template": c.template, "commands": c.commands, "needs_root": c.needs_root,
             "timeout": c.timeout, "proposed_at": utc_iso(c.proposed_at),
             "started_at": utc_iso(c.started_at), "started_by": c.started_by,
             "executed": c.executed,
             "results": [{k: (utc_iso(v) if isinstance(v, datetime) else v)
                          for k, v in r.items()} for r in c.results]}
            for c in state.commands.values()
        ],
        "announcements": [{k: (utc_iso(v) if isinstance(v, datetime) else v) for k, v in a.items()}
                          for a in state.announcements],
        "alerts": [{k: (utc_iso(v) if isinstance(v, datetime) else v) for k, v in a.items()}
                   for a in state.alerts],
        "timeline": [
            {"id": e.id, "ts": utc_iso(e.ts, "milliseconds"), "actor": e.actor, "type": e.type,
             "summary": summarize(e), "data": e.data}
            for e in state.events
        ],
        "damaged_lines": [{"line": d.line, "reason": d.reason} for d in state.damaged],
    }
