"""The postmortem draft, written from the journal alone.

The built-in layout is a Jinja2 template in the package; empty sections say
TODO instead of inventing text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from runbook.incident import IncidentState, format_duration, summarize
from runbook.sanitize import clean_line

TEMPLATE = "postmortem.en.md.j2"


def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True,
                               trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters["cell"] = _cell
    env.filters["utc"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%SZ") if t else "—"
    env.filters["local"] = lambda t: t.astimezone().strftime("%H:%M %Z") if t else ""
    return env


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return clean_line(str(value)).replace("|", "\\|").replace("\n", " ")


def context(state: IncidentState, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    since = state.detected_at or state.opened_at
    end = state.resolved_at or now
    findings = [f for run in state.evidence for f in (run.get("findings") or [])
                if f.get("level") != "info"]
    executed = [(c, r) for c in state.commands.values() for r in c.results]
    return {
        "state": state,
        "title": state.title,
        "status": "final" if str(state.status) == "closed" else "draft",
        "duration": format_duration(end - since) if since else "—",
        "authors": sorted({e.actor for e in state.events}),
        "records": state.records,
        "timeline": [(e, clean_line(summarize(e))) for e in state.events],
        "findings": findings,
        "executed": executed,
        "skipped": [s for s in state.steps.values() if str(s.status) == "skipped"],
        "generated_at": now,
    }


def render(state: IncidentState, template: Path | None = None) -> str:
    env = _environment()
    if template is not None:
        source = template.read_text(encoding="utf-8")
    else:
        source = resources.files("runbook.report").joinpath("templates", TEMPLATE).read_text(
            encoding="utf-8")
    return env.from_string(source).render(**context(state))
