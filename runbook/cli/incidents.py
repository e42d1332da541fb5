"""Incident commands: open, list, show, and record steps, answers, roles and status."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from runbook.cli import console
from runbook.cli.root import (
    Context,
    _acknowledge,
    _print_json,
    _run_tui,
    _warn,
    cli,
    connect_options,
    inventory_option,
    json_option,
    out,
    pass_context,
)
from runbook.clock import utc_iso
from runbook.connect_settings import ConnectSettings
from runbook.incident import as_json
from runbook.incident.store import ROLES
from runbook.playbook import find_playbook
from runbook.safe_output import echo


@cli.command()
@click.option("--playbook", "-p", "playbook_name", required=True,
              help="Playbook name (see `runbook playbook list`) or a path to a YAML file.")
@click.option("--host", "-H", "hosts", multiple=True, metavar="SELECTOR",
              help="Host name, group, role:NAME, tag:NAME, project:NAME, glob, or "
                   "[user@]host[:port]. Repeatable. Default: localhost.")
@click.option("--title", "-t", required=True, help="What is wrong, in a line.")
@click.option("--severity", "-s", help="SEV1..SEV4 (default: the playbook's).")
@click.option("--commander", help="Incident commander's name.")
@inventory_option
@json_option
@pass_context
def new(context: Context, playbook_name: str, hosts: tuple[str, ...], title: str,
        severity: str | None, commander: str | None, inventories: tuple[Path, ...],
        as_json_output: bool) -> None:
    """Open an incident and print its id."""
    from runbook.inventory import load_inventory

    loaded = find_playbook(playbook_name)
    inventory = load_inventory(list(inventories))
    _warn(inventory.warnings)
    selected = inventory.select(list(hosts) or ["localhost"])
    strangers = [h.name for h in selected if h.source == "ad-hoc"]
    if strangers and inventory.hosts:
        _warn([f"not in the inventory, taken as typed: {', '.join(strangers)}"])
    incident = context.store.create(playbook=loaded, hosts=selected, title=title,
                                    severity=severity, commander=commander,
                                    actor=context.actor)
    if as_json_output:
        _print_json(as_json(incident.state()))
        return
    echo(incident.id)
    err = console.error_console()
    err.print(f"opened {incident.id}: {title} ({len(selected)} host(s), playbook "
              f"{loaded.playbook.name}). Next: runbook show {incident.id}")


@cli.command("list")
@click.option("--status", type=click.Choice(["open", "resolved", "closed", "all"]),
              default="all", show_default=True, help="Which incidents to list.")
@json_option
@pass_context
def list_incidents(context: Context, status: str, as_json_output: bool) -> None:
    """List incidents, open and closed, newest first."""
    states = sorted(context.store.all(), key=lambda s: s.opened_at or datetime.min.replace(
        tzinfo=UTC), reverse=True)
    if status != "all":
        states = [s for s in states if str(s.status) == status]
    if as_json_output:
        _print_json([{
            "id": s.id, "title": s.title, "status": str(s.status), "severity": s.severity,
            "drill": s.drill, "playbook": s.playbook_name, "hosts": [h.name for h in s.hosts],
            "opened_at": utc_iso(s.opened_at, "microseconds"),
            "resolved_at": utc_iso(s.resolved_at, "microseconds"),
            "progress": {"finished": s.progress[0], "total": s.progress[1]},
            "damaged_lines": len(s.damaged),
        } for s in states])
        return
    if not states:
        out.print("No incidents yet. Open one with `runbook new`.")
        return
    out.print(console.incident_list(states))


@cli.command()
@click.argument("incident_id")
@json_option
@pass_context
def show(context: Context, incident_id: str, as_json_output: bool) -> None:
    """Show an incident: scope, steps and the full timeline. ID may be a prefix,
    the 4-character suffix, or `last`."""
    incident = context.incident(incident_id)
    state = incident.state()
    from runbook.peers import peer_findings
    from runbook.use import use_summaries

    directory = context.store.directory(incident.id)
    peers = peer_findings(state, directory)
    summaries = use_summaries(state, directory, peers)
    if as_json_output:
        _print_json({**as_json(state), "peers": [f.as_dict() for f in peers],
                     "use": [s.as_dict() for s in summaries]})
        return
    out.print(console.incident_detail(state, datetime.now(UTC), peers, summaries))


@cli.command()
@click.argument("incident_id")
@click.argument("text", nargs=-1, required=True)
@pass_context
def note(context: Context, incident_id: str, text: tuple[str, ...]) -> None:
    """Add a note to the timeline."""
    incident = context.incident(incident_id)
    event = incident.note(" ".join(text), context.actor)
    _acknowledge(incident, event.ts, "note recorded")


@cli.command()
@click.argument("incident_id")
@click.argument("step_id")
@click.option("--comment", help="What was found or done.")
@pass_context
def done(context: Context, incident_id: str, step_id: str, comment: str | None) -> None:
    """Mark a step done."""
    incident = context.incident(incident_id)
    event = incident.complete_step(step_id, context.actor, comment)
    _acknowledge(incident, event.ts, f"{step_id} done")


@cli.command()
@click.argument("incident_id")
@click.argument("step_id")
@click.argument("reason", nargs=-1, required=True)
@pass_context
def skip(context: Context, incident_id: str, step_id: str, reason: tuple[str, ...]) -> None:
    """Skip a step, with the reason."""
    incident = context.incident(incident_id)
    event = incident.skip_step(step_id, " ".join(reason), context.actor)
    _acknowledge(incident, event.ts, f"{step_id} skipped")


@cli.command()
@click.argument("incident_id")
@click.argument("step_id")
@click.argument("text", nargs=-1, required=True)
@pass_context
def answer(context: Context, incident_id: str, step_id: str, text: tuple[str, ...]) -> None:
    """Answer a question step (impact, what changed, root cause ...)."""
    incident = context.incident(incident_id)
    event = incident.answer(step_id, " ".join(text), context.actor)
    _acknowledge(incident, event.ts, f"answer to {step_id} recorded")


@cli.command()
@click.argument("incident_id")
@click.argument("level")
@click.option("--reason", help="Why the severity changed.")
@pass_context
def severity(context: Context, incident_id: str, level: str, reason: str | None) -> None:
    """Set the severity (SEV1..SEV4)."""
    incident = context.incident(incident_id)
    event = incident.set_severity(level, context.actor, reason)
    _acknowledge(incident, event.ts, f"severity {event.data['severity']}")


@cli.command()
@click.argument("incident_id")
@click.argument("role", type=click.Choice(ROLES))
@click.argument("name")
@pass_context
def role(context: Context, incident_id: str, role: str, name: str) -> None:
    """Assign a role: commander, scribe, communications, subject-expert."""
    incident = context.incident(incident_id)
    event = incident.assign_role(role, name, context.actor)
    _acknowledge(incident, event.ts, f"{role}: {name}")


@cli.command()
@click.argument("incident_id")
@click.option("--summary", help="One line on how it was resolved.")
@pass_context
def resolve(context: Context, incident_id: str, summary: str | None) -> None:
    """Mark the incident resolved (the impact has ended)."""
    incident = context.incident(incident_id)
    event = incident.resolve(context.actor, summary)
    _acknowledge(incident, event.ts, "resolved")


@cli.command()
@click.argument("incident_id")
@pass_context
def close(context: Context, incident_id: str) -> None:
    """Close a resolved incident (the follow-up is done)."""
    from runbook.report import archive

    incident = context.incident(incident_id)
    event = archive.close(incident, context.actor)
    _acknowledge(incident, event.ts, "closed")


@cli.command()
@click.argument("incident_id")
@click.option("--reason", required=True, help="Why it is open again.")
@pass_context
def reopen(context: Context, incident_id: str, reason: str) -> None:
    """Reopen a resolved or closed incident."""
    incident = context.incident(incident_id)
    event = incident.reopen(context.actor, reason)
    _acknowledge(incident, event.ts, "reopened")


@cli.command()
@click.argument("incident_id", required=False)
@connect_options()
@pass_context
def tui(context: Context, incident_id: str | None, connect: ConnectSettings) -> None:
    """Open the app (what plain `runbook` does in a terminal), on INCIDENT_ID if given.

    The connection options apply to every collection and remediation started
    from the app."""
    _run_tui(context, incident_id, connect)
