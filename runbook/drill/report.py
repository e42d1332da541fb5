"""The drill report: Markdown, watermarked DRILL, built from the journal's score."""

from __future__ import annotations

from datetime import timedelta

from runbook.drill.scoring import DrillScore, score
from runbook.drill.session import started_event
from runbook.incident import IncidentState, format_duration

WATERMARK = "> **DRILL — NOT A REAL INCIDENT.** Training exercise on a loopback lab."


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _took(delta: timedelta | None) -> str:
    return format_duration(delta) if delta is not None else "—"


def drill_report(state: IncidentState, result: DrillScore | None = None) -> str:
    result = result or score(state)
    scenario = result.scenario
    started = started_event(state)
    fault = started.get("fault") or {}
    lines = [
        f"# DRILL report: {scenario.title}", "", WATERMARK, "",
        f"- Drill: `{state.id}` (scenario `{scenario.name}`, seed {result.seed})",
        f"- Trainee: {result.trainee or 'nobody acted'}",
        f"- Started: {result.started_at.isoformat(timespec='seconds')}",
        f"- Playbook: {state.playbook_name}",
        "- Lab: " + ", ".join(f"{h['name']} {h['address']}:{h['port']}"
                               for h in started.get("lab", [])),
        "", f"## Score: {result.total}/100", "",
        "| part | points | of | how it was reached |", "|---|---:|---:|---|",
    ]
    for part in result.parts:
        lines.append(f"| {part.name} | {part.points:.0f} | {part.maximum} | "
                     f"{_cell(part.explanation)} |")
    if result.reasons:
        lines += ["", "Points lost:", *[f"- {_cell(r)}" for r in result.reasons]]
    lines += ["", "## Times (from the drill start)", "", "| milestone | after |", "|---|---|"]
    lines += [f"| {name} | {_took(took)} |" for name, took in result.timings.items()]
    lines += ["", f"Target for a correct diagnosis: "
              f"{format_duration(timedelta(minutes=scenario.time_target_minutes))}."]
    d = result.diagnosis
    lines += ["", "## Diagnosis", "",
              f"- Stated: {_cell(d.stated) if d.stated else 'nothing'}"
              + (f" (by {d.by})" if d.by else ""),
              f"- {'Matched' if d.matched else 'Did not match'}: {_cell(d.why)}",
              f"- Expected: **{scenario.root_cause.id}**: {_cell(scenario.root_cause.text)}"]
    lines += ["", "## Evidence that proves it", "",
              "| finding | collected | where | why it matters |", "|---|---|---|---|"]
    lines += [f"| {_cell(e.label)} | {'yes' if e.found else 'no'} | {_cell(e.where or '—')} | "
              f"{_cell(e.why)} |" for e in result.evidence]
    lines += ["", "## Expected steps", "", "| step | status | detail |", "|---|---|---|"]
    lines += [f"| {s.id}: {_cell(s.title)} | {s.status} | {_cell(s.detail or '')} |"
              for s in result.steps]
    lines += ["", "## The fault", "", f"- Kind: `{fault.get('kind')}` on {fault.get('host')}",
              f"- Undo: {_cell(scenario.fault.undo)}"]
    if scenario.fault.simulated:
        lines.append(f"- Real or simulated: {_cell(scenario.fault.simulated)}")
    lines += ["", WATERMARK, ""]
    return "\n".join(lines)
