"""What the postmortem says, as plain data derived from the journal alone.

`build()` turns an `IncidentState` into dicts, lists and strings: the context
of the Markdown template and the body of the JSON export. Nothing is invented:
a section with no data is left empty, and the template writes TODO there.
Everything that came from a person or a host passes through the redactor
before any template or exporter sees it.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from runbook.evidence import read_head, truncation_note
from runbook.findings import Finding, MergedFinding, Sourced, merge_findings, sourced_from_runs
from runbook.incident import EventType, IncidentState, format_duration, summarize
from runbook.incident.events import evidence_of
from runbook.peers import peer_findings
from runbook.report.labels import ITEM_TYPES, LESSON_PARTS
from runbook.report.redact import Redactor
from runbook.sanitize import clean_line, clean_text
from runbook.use import USE_SIGNALS, HostUse, UseRow, cleared_by_later_run, use_summaries

RECORDS = ("summary", "impact", "detection", "changes", "root_cause", "trigger", "resolution",
           "lessons", "went_well", "went_wrong", "lucky", "action_items")
CONTEXT_LINES = 3
EXCERPT_READ_LIMIT = 8 * 1024 * 1024  # what parsers read (evidence.read_head), so lines agree

# Events that show a person has picked the incident up (for time to acknowledge).
_HUMAN_EVENTS = {EventType.STEP_STARTED, EventType.STEP_DONE, EventType.STEP_SKIPPED,
                 EventType.ANSWER_RECORDED, EventType.NOTE_ADDED, EventType.ROLE_ASSIGNED,
                 EventType.SEVERITY_CHANGED, EventType.COMMAND_PROPOSED,
                 EventType.COMMAND_APPROVED, EventType.ANNOUNCEMENT_SENT, EventType.RESOLVED}


def moment(when: datetime | None, tz: tzinfo | None = None) -> dict[str, str] | None:
    """UTC inside, the local time beside it (GUIDE)."""
    if when is None:
        return None
    local = when.astimezone(tz)
    return {"utc": f"{when.astimezone(UTC):%Y-%m-%d %H:%M:%S}Z",
            "local": f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip(),
            "iso": when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")}


def _duration(start: datetime | None, end: datetime | None) -> str | None:
    if start is None or end is None or end < start:
        return None
    return format_duration(end - start)


class Links:
    """Evidence paths: relative to the incident directory in the journal, and to
    wherever the report is written in its links."""

    def __init__(self, incident_dir: Path, link_base: Path | None) -> None:
        self.incident_dir = incident_dir
        self.link_base = link_base

    def href(self, relative: str | None) -> str | None:
        if not relative:
            return None
        if self.link_base is None:
            return relative
        return os.path.relpath(self.incident_dir / relative, self.link_base)


def build(state: IncidentState, *, incident_dir: Path, redactor: Redactor,
          link_base: Path | None = None, now: datetime | None = None,
          tz: tzinfo | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    links = Links(incident_dir, link_base)
    started = state.detected_at or _alert_start(state) or state.opened_at
    acknowledged = next((e.ts for e in state.events if e.type in _HUMAN_EVENTS), None)
    resolved = state.resolved_at
    records = {key: clean_text(state.records.get(key, "")).strip() for key in RECORDS}
    model: dict[str, Any] = {
        "incident": _incident(state),
        "times": {"started": moment(started, tz), "opened": moment(state.opened_at, tz),
                  "acknowledged": moment(acknowledged, tz), "resolved": moment(resolved, tz),
                  "closed": moment(state.closed_at, tz), "generated": moment(now, tz)},
        "durations": {
            "impact": _duration(started, resolved or now),
            "ongoing": resolved is None,
            "detect": _duration(started, state.opened_at) if started != state.opened_at
            else None,
            "acknowledge": _duration(state.opened_at, acknowledged),
            "resolve": _duration(started, resolved),
        },
        "records": records,
        "alert": _alert_lines(state.alert),
        "detection_sources": [_detection(e.data, e.actor, tz) for e in state.events
                              if e.type == EventType.DETECTED],
        "resolution_summary": next((str(e.data["summary"]) for e in reversed(state.events)
                                    if e.type == EventType.RESOLVED and e.data.get("summary")),
                                   ""),
        "executed": _executed(state, links, tz),
        "commands": [],
        "timeline": _timeline(state, links, tz),
        "action_items": action_items(records["action_items"]),
        "lessons": _lessons(records),
        "runs": _runs(state, links, tz),
        # The local time is written beside UTC only where it says something else.
        "show_local": _offset(tz) != timedelta(0),
        "skipped": [{"id": s.step.id, "title": s.step.title, "reason": s.reason or ""}
                    for s in state.steps.values() if str(s.status) == "skipped"],
        "damaged": [{"line": d.line, "reason": d.reason} for d in state.damaged],
        "evidence_dir": str(incident_dir / "evidence"),
    }
    model["commands"] = _commands(model["executed"])
    findings = _findings(state, links)
    peers = peer_findings(state, incident_dir)
    model["hosts"] = _by_host(state, links, peers,
                              use_summaries(state, incident_dir, peers, every_run=True))
    model = redactor.value(model)
    # Excerpt text is redacted as it is cut from the file (redactor.window).
    order = {h.name: i for i, h in enumerate(state.hosts)}
    by_host = sorted(findings, key=lambda f: (order.get(f["host"], len(order)), f["host"],
                                              f["file"] or "", f["line"] or 0))
    model["excerpts"] = [{**redactor.value({k: v for k, v in x.items() if k != "text"}),
                          "text": x["text"]}
                         for x in _excerpts(by_host, incident_dir, redactor)]
    return model


def _incident(state: IncidentState) -> dict[str, Any]:
    authors: list[str] = []
    for event in state.events:
        if event.actor and event.actor not in authors:
            authors.append(event.actor)
    return {
        "id": state.id, "title": state.title, "severity": state.severity,
        "status": str(state.status), "final": str(state.status) == "closed",
        "state": str(state.status), "drill": state.drill, "playbook": state.playbook_name,
        "commander": state.roles.get("commander") or "", "roles": dict(state.roles),
        "authors": authors,
        "hosts": [{"name": h.name, "address": h.address, "role": h.role or ""}
                  for h in state.hosts],
    }


def _detection(data: dict[str, Any], actor: str, tz: tzinfo | None) -> str:
    try:
        at = moment(datetime.fromisoformat(str(data.get("at")).replace("Z", "+00:00")), tz)
    except ValueError:
        at = None
    return f"{data.get('source') or actor}" + (f" ({at['utc']})" if at else "")


def _alert_start(state: IncidentState) -> datetime | None:
    alert = state.alert or {}
    for key in ("startsAt", "starts_at", "started_at", "fired_at"):
        value = alert.get(key)
        if value:
            try:
                return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def _alert_lines(alert: dict[str, Any] | None, prefix: str = "") -> list[str]:
    lines: list[str] = []
    for key, value in (alert or {}).items():
        if isinstance(value, dict):
            lines += _alert_lines(value, f"{prefix}{key}.")
        elif value not in (None, "", [], {}):
            lines.append(f"{prefix}{key}: {value}")
    return lines


def _executed(state: IncidentState, links: Links, tz: tzinfo | None) -> list[dict[str, Any]]:
    rows = []
    for command in state.commands.values():
        for result in command.results:
            host = str(result.get("host", ""))
            rows.append({
                "time": moment(result.get("ts"), tz),
                "host": host,
                "command": str(result.get("command") or command.commands.get(host)
                               or command.command),
                "exit_code": result.get("exit_code"),
                "status": str(result.get("status") or ""),
                "approvers": list(result.get("approvers") or command.approvals),
                "run_by": command.started_by or command.proposed_by,
                "step": command.step or "",
                "command_id": command.id,
                "stdout": links.href(result.get("stdout")),
                "stderr": links.href(result.get("stderr"))
                if result.get("stderr_bytes") else None,
            })
    return sorted(rows, key=lambda r: r["time"]["iso"] if r["time"] else "")


def _commands(executed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-host runs of each proposal, one row per distinct command: a long
    command is printed once, with the hosts it ran on and each one's outcome. A
    later run of the same command is its own proposal, so its own row."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for run in executed:
        key = (run["command_id"], run["command"])
        row = rows.setdefault(key, {**run, "hosts": [], "outcomes": [], "files": []})
        row["hosts"].append(run["host"])
        code = run["exit_code"] if run["exit_code"] is not None else "—"
        row["outcomes"].append(f"{run['host']}: {code} {run['status']}".strip())
        row["files"] += [{"label": f"{run['host']} {stream}", "href": run[stream]}
                         for stream in ("stdout", "stderr") if run[stream]]
    return list(rows.values())


# Written by a collection as it runs: one row per collection in the timeline.
_RUN_EVENTS = (EventType.COLLECTOR_RAN, EventType.HOST_FAILED)


def _collections(state: IncidentState) -> list[list[tuple[int, Any]]]:
    """The journal's collections: runs in a row from one actor for one step,
    each run with its event number."""
    groups: list[list[tuple[int, Any]]] = []
    for number, event in enumerate(state.events, start=1):
        if event.type not in _RUN_EVENTS:
            continue
        last = groups[-1][-1] if groups else None
        if last is not None and last[0] == number - 1 and last[1].actor == event.actor \
                and last[1].data.get("step") == event.data.get("step"):
            groups[-1].append((number, event))
        else:
            groups.append([(number, event)])
    return groups


def _collection_text(runs: list[tuple[int, Any]]) -> str:
    ran = [e.data for _, e in runs if e.type == EventType.COLLECTOR_RAN]
    failed_hosts = sorted({str(e.data.get("host")) for _, e in runs
                           if e.type == EventType.HOST_FAILED})
    hosts = sorted({str(d.get("host")) for d in ran} | set(failed_hosts))
    collectors = sorted({str(d.get("collector")) for d in ran})
    notable = sum(1 for d in ran for f in d.get("findings") or [] if f.get("level") != "info")
    bad = sum(1 for d in ran if d.get("status") != "ok")
    step = runs[0][1].data.get("step")
    shown = ", ".join(collectors[:4]) + (f" +{len(collectors) - 4}" if len(collectors) > 4
                                         else "")
    return (f"Collected {len(ran)} run(s) on {len(hosts)} host(s)"
            + (f" for step {step}" if step else "") + f" ({shown}): {notable} finding(s)"
            + (f", {bad} run(s) not ok" if bad else "")
            + (f"; unreachable or refused: {', '.join(failed_hosts)}" if failed_hosts else ""))


def _timeline(state: IncidentState, links: Links, tz: tzinfo | None) -> list[dict[str, Any]]:
    """Every event a person made, one row each; a collection is one row, its runs
    are listed under supporting information (`runs`)."""
    firsts = {runs[0][0]: (index, runs) for index, runs in enumerate(_collections(state), 1)}
    rows = []
    for number, event in enumerate(state.events, start=1):
        data = event.data
        files: list[dict[str, str | None]] = []
        collection = None  # its runs are under "Collection N" in the supporting information
        if event.type in _RUN_EVENTS:
            if number not in firsts:
                continue
            collection, runs = firsts[number]
            text = _collection_text(runs)
        else:
            text = summarize(event)
            record = evidence_of(data) if event.type == EventType.COMMAND_EXECUTED else None
            if record:
                # A cut capture says so on its link: the file is not all the host printed.
                cut = " (truncated)" if record.get("truncated") else ""
                files.append({"label": "stdout" + cut,
                              "href": links.href(record.get("stdout"))})
                if record.get("stderr_bytes"):
                    files.append({"label": "stderr" + cut,
                                  "href": links.href(record.get("stderr"))})
        time = moment(event.ts, tz)
        assert time is not None
        rows.append({"n": number, "utc": time["utc"], "local": time["local"],
                     "actor": event.actor, "type": event.type,
                     "text": clean_line(text.replace("\n", " ")), "collection": collection,
                     "files": [f for f in files if f["href"]]})
    return rows


def _runs(state: IncidentState, links: Links, tz: tzinfo | None) -> list[dict[str, Any]]:
    """Each collection's runs, for the supporting information."""
    out = []
    for index, runs in enumerate(_collections(state), 1):
        rows = []
        for number, event in runs:
            data = event.data
            time = moment(event.ts, tz)
            if event.type == EventType.HOST_FAILED:
                rows.append({"n": number, "utc": time["utc"] if time else "",
                             "host": str(data.get("host")), "collector": "—",
                             "status": str(data.get("state")),
                             "detail": str(data.get("reason") or ""), "files": []})
                continue
            cut = " (truncated)" if data.get("truncated") else ""
            files = [{"label": "stdout" + cut, "href": links.href(data.get("stdout"))}]
            if data.get("stderr_bytes"):
                files.append({"label": "stderr" + cut, "href": links.href(data.get("stderr"))})
            notable = [f for f in data.get("findings") or [] if f.get("level") != "info"]
            rows.append({"n": number, "utc": time["utc"] if time else "",
                         "host": str(data.get("host")), "collector": str(data.get("collector")),
                         "status": f"{data.get('status')} (exit {data.get('exit_code')})",
                         "detail": f"{len(notable)} finding(s)" if notable else "",
                         "files": [f for f in files if f["href"]]})
        out.append({"index": index, "text": _collection_text(runs), "rows": rows})
    return out


_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")


def action_items(text: str) -> list[dict[str, Any]]:
    """`- fix X | prevent | alice | 2026-12-01 | JIRA-1`, one item a line. Fields
    left out stay empty (the template writes TODO); nothing is guessed."""
    items = []
    for raw in text.splitlines():
        line = _BULLET.sub("", raw).strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split("|")]
        parts += [""] * (5 - len(parts))
        item, kind, owner, due = parts[:4]
        tracking = " | ".join(p for p in parts[4:] if p)
        known = ITEM_TYPES.get(kind.lower())
        items.append({"item": item, "type": known or kind, "type_known": bool(known),
                      "owner": owner, "due": due, "tracking": tracking,
                      "tracking_is_url": bool(re.match(r"https?://[^\s<>|\[\]()`]+$", tracking))})
    return items


_LESSON_PREFIX = re.compile(
    r"^\s*(?:[-*+•]\s*)?(?P<label>" + "|".join(
        re.escape(k) for k in sorted(LESSON_PARTS, key=len, reverse=True))
    + r")\s*[:：]\s*(?P<rest>.*)$", re.I)


def _offset(tz: tzinfo | None) -> timedelta | None:
    return datetime.now(UTC).astimezone(tz).utcoffset()


def _lessons(records: dict[str, str]) -> dict[str, str]:
    """Each part from its own question (`records: went_well` ...), else from the
    labelled parts of one `lessons` answer."""
    parts = lessons(records["lessons"])
    for key in ("went_well", "went_wrong", "lucky"):
        if records[key]:
            parts[key] = records[key]
    return parts


def lessons(text: str) -> dict[str, str]:
    """A lessons answer sorted into its parts when it labels them (`went well: …`);
    unlabelled text is kept as written, never reassigned."""
    parts: dict[str, list[str]] = {"text": [], "went_well": [], "went_wrong": [], "lucky": []}
    current = "text"
    for line in text.splitlines():
        match = _LESSON_PREFIX.match(line)
        if match:
            current = LESSON_PARTS[match.group("label").lower()]
            line = match.group("rest")
        parts[current].append(line)
    return {key: "\n".join(lines).strip() for key, lines in parts.items()}


def findings(state: IncidentState, links: Links) -> list[dict[str, Any]]:
    """Every finding (info included) with the evidence file it points at."""
    return _findings(state, links)


def _findings(state: IncidentState, links: Links) -> list[dict[str, Any]]:
    found = []
    for run in state.evidence:
        for finding in run.get("findings") or []:
            found.append({
                "host": str(finding.get("host") or run.get("host") or ""),
                "collector": str(finding.get("collector") or run.get("collector") or ""),
                "level": str(finding.get("level", "")),
                "signal": str(finding.get("signal", "")),
                "resource": str(finding.get("resource", "")),
                "summary": clean_line(str(finding.get("summary", ""))),
                "line": finding.get("line"),
                "evidence": clean_line(str(finding.get("evidence") or "")),
                "file": run.get("stdout"),
                "href": links.href(run.get("stdout")),
                "bytes": run.get("stdout_bytes"),
                "sha256": run.get("sha256"),
                "truncated": truncation_note(run),
            })
    return found


def _by_host(state: IncidentState, links: Links, peers: list[Finding],
             summaries: list[HostUse]) -> list[dict[str, Any]]:
    """Each host's findings, one per fact over the whole incident (a later run
    that reads another number is named with its time), and its USE summary."""
    merged = merge_findings(sourced_from_runs(state.evidence) + [Sourced(f) for f in peers])
    names = [h.name for h in state.hosts]
    names += sorted({m.finding.host for m in merged} - set(names))
    use = {u.host: u for u in summaries}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for (host, collector), run in state.latest_runs.items():
        runs.setdefault(host, {})[collector] = run
    hosts = []
    for name in names:
        mine = [m for m in merged if m.finding.host == name]
        problem = state.host_problems.get(name)
        hosts.append({
            "name": name,
            "role": (state.host(name).role if state.host(name) else None) or "",
            "problem": f"{problem.get('state')}: {problem.get('reason')}" if problem else "",
            "findings": [_merged_row(m, links, runs.get(name, {})) for m in mine
                         if str(m.finding.level) != "info"],
            "info_count": sum(1 for m in mine if str(m.finding.level) == "info"),
            "use": [_use_row(row) for row in use[name].rows] if name in use else [],
        })
    return hosts


def _merged_row(merged: MergedFinding, links: Links,
                runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    f = merged.finding
    gone = cleared_by_later_run(merged, runs)
    return {"level": str(f.level), "signal": str(f.signal), "resource": f.resource,
            "summary": clean_line(merged.summary + (f"; {gone}" if gone else "")),
            "collector": ", ".join(merged.collectors),
            "line": f.line, "evidence": clean_line(f.evidence or ""),
            "href": links.href(merged.sources[0].file)}


def _use_row(row: UseRow) -> dict[str, Any]:
    """A USE row as the report shows it: a cell's text, or None where the
    signal means nothing for the resource."""
    cells = {}
    for signal in USE_SIGNALS:
        cell = row.cells.get(signal)
        cells[str(signal)] = None if cell is None else clean_line(cell.in_full)
    return {"label": clean_line(row.label), **cells}


def _excerpts(findings: list[dict[str, Any]], incident_dir: Path,
              redactor: Redactor) -> list[dict[str, Any]]:
    """±3 lines of evidence around each notable finding, sanitized and redacted
    (the file itself is only read)."""
    cache: dict[str, list[str] | None] = {}
    excerpts = []
    seen: set[tuple[str, int]] = set()
    for finding in findings:
        line, file = finding["line"], finding["file"]
        if finding["level"] == "info" or not isinstance(line, int) or not file \
                or (file, line) in seen:
            continue
        seen.add((file, line))
        if file not in cache:
            cache[file] = _read_lines(incident_dir / file)
        lines = cache[file]
        if not lines or line > len(lines):
            continue
        first, last = max(0, line - 1 - CONTEXT_LINES), min(len(lines), line + CONTEXT_LINES) - 1
        window = redactor.window(lines, first, last)
        width = len(str(last + 1))
        text = "\n".join(f"{'>' if first + i + 1 == line else ' '} {first + i + 1:>{width}}  {t}"
                         for i, t in enumerate(window))
        excerpts.append({**finding, "first": first + 1, "last": last + 1, "text": text})
    return excerpts


def _read_lines(path: Path) -> list[str] | None:
    try:
        return clean_text(read_head(path, EXCERPT_READ_LIMIT)).split("\n")
    except OSError:
        return None


_INDEXED = ("host", "collector", "command", "exit_code", "status", "started_at", "ended_at",
            "stdout", "stderr", "meta", "stdout_bytes", "stderr_bytes", "truncated", "sha256")


def evidence_index(state: IncidentState, incident_dir: Path) -> list[dict[str, Any]]:
    """Every evidence file the journal points at, for other tools: collections'
    and remediations' alike, as their events share one evidence shape."""
    def entry(kind: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
        stdout = record.get("stdout")
        return {**kind, **{key: record.get(key) for key in _INDEXED},
                "present": bool(stdout) and (incident_dir / str(stdout)).is_file()}

    index = [entry({"kind": "collector", "event_id": run.get("event_id")}, run)
             for run in state.evidence]
    index += [entry({"kind": "command", "command_id": command.id}, result)
              for command in state.commands.values() for result in command.results
              if result.get("stdout")]
    return index
