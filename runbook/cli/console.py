"""Rich renderings of incidents and playbooks for the command line."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from runbook.clock import utc_iso
from runbook.evidence import truncation_note
from runbook.findings import Finding, MergedFinding, Sourced, merge_findings, sourced_from_runs
from runbook.hosts import Host
from runbook.incident import IncidentState, Status, StepStatus, format_duration, summarize
from runbook.playbook import LoadedPlaybook
from runbook.safe_output import SafeConsole
from runbook.sanitize import clean_text

if TYPE_CHECKING:  # the engine (and paramiko) load only for the commands that collect
    from runbook.engine.catalog import Collector
    from runbook.engine.runner import CollectionReport
    from runbook.use import HostUse

STEP_MARKS = {
    StepStatus.PENDING: ("·", "dim"),
    StepStatus.STARTED: ("▶", "bold yellow"),
    StepStatus.DONE: ("✔", "green"),
    StepStatus.SKIPPED: ("↷", "magenta"),
}
SEVERITY_STYLE = {"SEV1": "bold white on red", "SEV2": "bold red", "SEV3": "yellow",
                  "SEV4": "cyan"}
STATUS_STYLE = {Status.OPEN: "bold red", Status.RESOLVED: "green", Status.CLOSED: "dim"}


def shown(value: object, style: str = "") -> Text:
    """A value that came from a host, an alert or a user, as a cell or a line:
    cleaned of control sequences, and never read as rich markup."""
    return Text(clean_text(str(value)), style=style)


def utc_and_local(moment: datetime | None) -> str:
    """UTC inside, the local time beside it (GUIDE: time is UTC, shown with local)."""
    if moment is None:
        return "-"
    local = moment.astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({local:%H:%M %Z})"


def incident_list(states: list[IncidentState]) -> Table:
    table = Table(title="Incidents", expand=False, show_lines=False)
    for column in ("id", "status", "sev", "title", "playbook", "hosts", "opened", "progress"):
        table.add_column(column, overflow="fold")
    for state in states:
        done, total = state.progress
        hosts = ", ".join(h.name for h in state.hosts[:3]) + (
            f" +{len(state.hosts) - 3}" if len(state.hosts) > 3 else "")
        table.add_row(
            state.id,
            Text(str(state.status), style=STATUS_STYLE.get(state.status, "")),
            Text(state.severity, style=SEVERITY_STYLE.get(state.severity, "")),
            shown(("[DRILL] " if state.drill else "") + state.title),
            shown(state.playbook_name),
            shown(hosts or "-"),
            utc_and_local(state.opened_at),
            f"{done}/{total}",
        )
    return table


def incident_detail(state: IncidentState, now: datetime, peers: list[Finding] | None = None,
                    summaries: list[HostUse] | None = None) -> Group:
    since = state.detected_at or state.opened_at
    end = state.resolved_at or now
    elapsed = format_duration(end - since) if since else "-"
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("incident", state.id + ("  [DRILL]" if state.drill else ""))
    head.add_row("severity", Text(state.severity, style=SEVERITY_STYLE.get(state.severity, "")))
    head.add_row("status", Text(str(state.status), style=STATUS_STYLE.get(state.status, "")))
    head.add_row("playbook", shown(state.playbook_name))
    for role, name in state.roles.items():
        head.add_row(shown(role), shown(name))
    head.add_row("opened", utc_and_local(state.opened_at))
    if state.detected_at:
        head.add_row("detected", utc_and_local(state.detected_at))
    if state.resolved_at:
        head.add_row("resolved", utc_and_local(state.resolved_at))
    head.add_row("elapsed", elapsed)
    parts: list[object] = [Panel(head, title=escape(state.title), title_align="left")]
    if state.hosts:
        parts.append(host_table(state.hosts, title="Scope"))
    parts.append(step_table(state))
    parts.append(timeline_table(state))
    if state.evidence:
        parts.append(findings_table(merge_findings(sourced_from_runs(state.latest_runs.values()))))
    if peers:
        parts.append(peers_table(peers))
    parts += use_summary(summaries or [], state.id)
    if state.current_step is not None and str(state.status) == "open":
        parts.append(next_step_panel(state))
    for damaged in state.damaged:
        parts.append(shown(f"journal line {damaged.line} skipped: {damaged.reason}",
                           style="bold yellow"))
    if state.playbook_problem:
        parts.append(shown(state.playbook_problem, style="bold yellow"))
    return Group(*parts)


def next_step_panel(state: IncidentState) -> Panel:
    """The current step's instructions and the command that records it."""
    current = state.current_step
    assert current is not None
    step = current.step
    short = state.id.rsplit("-", 1)[-1]
    if step.kind == "question":
        action = f'runbook answer {short} {step.id} "…"'
        lead = f"**{step.prompt}**\n\n"
    else:
        action = f"runbook done {short} {step.id}"
        lead = ""
    body = Group(
        Markdown(clean_text(lead + (step.instructions or step.title))),
        Text(f"\n{action}    or    runbook skip {short} {step.id} REASON", style="bold cyan"),
    )
    return Panel(body, title=f"Next: {current.stage} › {escape(step.title)}", title_align="left",
                 border_style="cyan")


def host_table(hosts: list[Host], title: str = "Hosts") -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("host", "address", "project", "role", "tags", "source"):
        table.add_column(column, overflow="fold")
    for host in hosts:
        address = "local" if host.local else (
            f"{host.user + '@' if host.user else ''}{host.address}"
            f"{':' + str(host.port) if host.port != 22 else ''}"
            f"{' via ' + host.jump if host.jump else ''}")
        table.add_row(*(shown(cell) for cell in (
            host.name, address, host.project or "-", host.role or "-",
            ", ".join(host.tags) or "-", host.source)))
    return table


def step_table(state: IncidentState) -> Table:
    table = Table(title="Steps", title_justify="left", show_header=True)
    table.add_column("", width=1)
    table.add_column("stage")
    table.add_column("step")
    table.add_column("kind")
    table.add_column("state", overflow="fold")
    current = state.current_step
    previous_stage = None
    for step in state.steps.values():
        mark, style = STEP_MARKS[step.status]
        detail = str(step.status)
        if step.status == StepStatus.SKIPPED and step.reason:
            detail += f": {step.reason}"
        elif step.answer:
            detail += f": {step.answer}"
        label = shown(f"{step.step.id}  {step.step.title}")
        if current is step:
            label.stylize("bold reverse")
        table.add_row(Text(mark, style=style),
                      step.stage if step.stage != previous_stage else "",
                      label, step.step.kind, shown(detail, style=style))
        previous_stage = step.stage
    return table


def timeline_table(state: IncidentState) -> Table:
    table = Table(title="Timeline", title_justify="left")
    table.add_column("time", no_wrap=True)
    table.add_column("who", overflow="fold")
    table.add_column("what", overflow="fold")
    for event in state.events:
        table.add_row(utc_and_local(event.ts), shown(event.actor), shown(summarize(event)))
    return table


def playbook_list(playbooks: list[LoadedPlaybook]) -> Table:
    table = Table(title="Playbooks", title_justify="left")
    for column in ("name", "title", "severity", "stages", "steps", "source"):
        table.add_column(column, overflow="fold")
    for loaded in playbooks:
        book = loaded.playbook
        table.add_row(book.name, book.title, str(book.severity),
                      " → ".join(book.stages), str(sum(1 for _ in book.steps())),
                      "bundled" if loaded.bundled else str(loaded.path))
    return table


def error_console() -> Console:
    return SafeConsole(stderr=True, highlight=False)


LEVEL_STYLE = {"critical": "bold red", "warning": "yellow", "info": "dim"}


def collection_summary(incident_id: str, report: CollectionReport,
                       peers: list[Finding] | None = None,
                       summaries: list[HostUse] | None = None) -> Group:
    """After a collection: one row per host, then the findings worth reading,
    how hosts compare with their peers (runbook.peers), and each host's USE
    summary (runbook.use)."""
    hosts = Table(title=f"Collection for incident {incident_id}", title_justify="left")
    for column in ("host", "state", "ok", "problems", "findings", "message"):
        hosts.add_column(column, overflow="fold")
    sourced: list[Sourced] = []
    for result in report.hosts:
        ok = sum(1 for r in result.runs if r.status == "ok")
        problems = [f"{r.collector}: {r.status}" for r in result.runs
                    if r.status not in ("ok", "skipped", "unreachable")]
        problems += [f"{r.collector}: {note}" for r in result.runs if r.evidence
                     and (note := truncation_note(r.evidence.as_dict()))]
        levels = Counter(str(f.level) for f in result.findings)
        hosts.add_row(
            shown(result.host.name),
            Text(str(result.state), style=_state_style(str(result.state))),
            f"{ok}/{len(result.runs)}", shown("; ".join(problems[:4]) + (
                f" (+{len(problems) - 4})" if len(problems) > 4 else "")),
            ", ".join(f"{n} {lvl}" for lvl, n in sorted(levels.items())) or "-",
            shown(" — ".join(x for x in (result.message, result.hint) if x) or ""))
        sourced += [Sourced(f, utc_iso(r.evidence.started_at) if r.evidence else None)
                    for r in result.runs for f in r.findings]
    parts: list[object] = [hosts, findings_table(merge_findings(sourced))]
    if peers:
        parts.append(peers_table(peers))
    parts += use_summary(summaries or [], incident_id, all_hosts=len(summaries or []) <= 3)
    parts.append(Text(f"Evidence and timeline: runbook show {incident_id}", style="dim"))
    return Group(*parts)


def findings_table(merged: list[MergedFinding]) -> Table | Text:
    """One row per fact: the load that uptime, top and the psutil snapshot all
    report is one finding, with every source in the evidence column."""
    notable = [m for m in merged if str(m.finding.level) != "info"]
    if not notable:
        return Text("No warnings or critical findings.", style="green")
    table = Table(title="Findings", title_justify="left")
    for column in ("level", "host", "resource", "finding", "evidence"):
        table.add_column(column, overflow="fold")
    for m in notable:
        finding = m.finding
        where = ", ".join(f"{s.finding.collector}:{s.finding.line}" if s.finding.line
                          else s.finding.collector for s in m.sources)
        table.add_row(Text(str(finding.level), style=LEVEL_STYLE.get(str(finding.level), "")),
                      shown(finding.host), shown(finding.resource), shown(m.summary),
                      shown(where))
    return table


def peers_table(peers: list[Finding]) -> Table:
    table = Table(title="Compared with peers", title_justify="left")
    for column in ("level", "host", "resource", "finding"):
        table.add_column(column, overflow="fold")
    for finding in peers:
        table.add_row(Text(str(finding.level), style=LEVEL_STYLE.get(str(finding.level), "")),
                      shown(finding.host), shown(finding.resource), shown(finding.summary))
    return table


USE_HEADINGS = (("utilization", "utilisation"), ("saturation", "saturation"),
                ("errors", "errors"))
CELL_STYLE = {"ok": "green", "not checked": "dim"}


def use_summary(summaries: list[HostUse], incident_id: str, all_hosts: bool = True) -> list[object]:
    """A USE table per host (runbook.use). With many hosts, only those with a
    warning or critical cell get a table; the rest are named on one line."""
    parts: list[object] = []
    quiet = []
    for host_use in summaries:
        if not all_hosts and not host_use.problems:
            quiet.append(host_use.host)
            continue
        table = Table(title=f"USE: {clean_text(host_use.host)}", title_justify="left")
        table.add_column("resource", overflow="fold")
        for _, heading in USE_HEADINGS:
            table.add_column(heading, overflow="fold", ratio=1)
        for row in host_use.rows:
            cells: list[Text] = []
            for signal, _ in USE_HEADINGS:
                cell = row.cells.get(signal)  # type: ignore[call-overload]
                if cell is None:
                    cells.append(Text("—", style="dim"))
                elif cell.worst is not None:
                    level = str(cell.worst.finding.level)
                    cells.append(shown(f"{cell.text} [{cell.where}]", LEVEL_STYLE.get(level, "")))
                else:
                    cells.append(shown("ok" if str(cell.state) == "ok" else cell.text,
                                       CELL_STYLE.get(str(cell.state), "")))
            table.add_row(shown(row.label), *cells)
        parts.append(table)
    if quiet:
        parts.append(shown(f"USE: no warnings on {', '.join(quiet)} (their tables: "
                           f"runbook show {incident_id})", "green"))
    return parts


_LEVEL_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _state_style(state: str) -> str:
    return {"ok": "green", "failed": "yellow"}.get(state, "bold red")


def collector_table(collectors: tuple[Collector, ...],
                    bundles: dict[str, tuple[str, ...]]) -> Group:
    table = Table(title="Collectors", title_justify="left")
    for column in ("name", "group", "command", "fallbacks", "root", "timeout", "what"):
        table.add_column(column, overflow="fold")
    for c in collectors:
        table.add_row(c.name, c.group, escape(c.command or f"({c.runs_on})"),
                      escape("; ".join(c.fallbacks)) or "-", "yes" if c.needs_root else "",
                      f"{c.timeout:g}s", c.description)
    bundle_table = Table(title="Bundles", title_justify="left")
    bundle_table.add_column("bundle")
    bundle_table.add_column("collectors", overflow="fold")
    for name, members in bundles.items():
        bundle_table.add_row(name, ", ".join(members))
    return Group(table, bundle_table)
