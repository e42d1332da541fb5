"""The `runbook` command. Each subcommand is a thin call into the core."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from runbook import __version__, console
from runbook.bugs import log_exception
from runbook.engine.catalog import BUNDLES, COLLECTORS
from runbook.errors import PlaybookError, RunbookError, SourceError
from runbook.incident import as_json
from runbook.playbook import find_playbook, load_all, load_playbook
from runbook.store import ROLES, Incident, IncidentStore, default_actor

out = Console(highlight=False, soft_wrap=False)
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 70

inventory_option = click.option(
    "--inventory", "-i", "inventories", multiple=True, type=click.Path(path_type=Path),
    help="Inventory file: runbook YAML, Ansible INI/YAML. Repeatable. "
         "Default: the config dir's inventory.yaml, plus ~/.ssh/config aliases.")
json_option = click.option("--json", "as_json_output", is_flag=True,
                           help="Print machine-readable JSON instead of tables.")


class Context:
    def __init__(self, actor: str | None) -> None:
        self.actor = actor or default_actor()
        self.store = IncidentStore()

    def incident(self, text: str) -> Incident:
        return Incident(self.store, self.store.resolve_id(text))


pass_context = click.make_pass_decorator(Context)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("--as", "actor", metavar="NAME", envvar="RUNBOOK_ACTOR",
              help="Who is acting, for the journal (default: user@host; env RUNBOOK_ACTOR).")
@click.pass_context
def cli(ctx: click.Context, actor: str | None) -> None:
    """Walk through an incident: detect, announce, scope, check, fix, report.

    Every action lands in the incident's journal with a UTC timestamp and who
    did it; `runbook show` replays it. Data lives in RUNBOOK_HOME (default: the
    platform data dir).
    """
    ctx.obj = Context(actor)
    if ctx.invoked_subcommand is None:
        _overview(ctx.obj)


def _overview(context: Context) -> None:
    open_ones = [s for s in context.store.all() if str(s.status) != "closed"]
    if open_ones:
        out.print(console.incident_list(open_ones))
        out.print("Resume one with [bold]runbook show ID[/], or start another with "
                  "[bold]runbook new[/].")
    else:
        out.print("No open incidents. Start one:\n"
                  "  runbook new --playbook generic-host --host localhost --title 'what is wrong'\n"
                  "See [bold]runbook --help[/] for every command.")


# -- incidents ----------------------------------------------------------------


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
    click.echo(incident.id)
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
            "opened_at": _iso(s.opened_at), "resolved_at": _iso(s.resolved_at),
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
    state = context.incident(incident_id).state()
    if as_json_output:
        _print_json(as_json(state))
        return
    out.print(console.incident_detail(state, datetime.now(UTC)))


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
    incident = context.incident(incident_id)
    event = incident.close(context.actor)
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


# -- collection ---------------------------------------------------------------


@cli.command()
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option("--incident", "incident_id", help="Record into this incident (default: open a "
              "new one, so nothing is ever lost). Without HOSTs, its hosts are used.")
@click.option("--bundle", "-b", type=click.Choice(sorted(BUNDLES)),
              help="A named set of collectors (default: full).")
@click.option("--collector", "-c", "collector_names", multiple=True, metavar="NAME",
              help="One collector (repeatable). See `runbook collectors`.")
@click.option("--accept-new", is_flag=True,
              help="Record unknown host keys (OpenSSH accept-new). Changed keys are "
                   "always refused.")
@click.option("--known-hosts", "known_hosts", multiple=True, type=click.Path(path_type=Path),
              help="known_hosts file(s) to check keys against (default: ~/.ssh/known_hosts "
                   "and /etc/ssh/ssh_known_hosts); new keys are written to the first.")
@click.option("--parallel", default=64, show_default=True, type=click.IntRange(1, 1024),
              help="Hosts collected at once.")
@click.option("--connect-timeout", default=10.0, show_default=True, type=float,
              help="Seconds to connect and authenticate, per host.")
@click.option("--max-output", default="64M", show_default=True, metavar="SIZE",
              help="Keep at most this much of each output stream (K, M, G).")
@inventory_option
@json_option
@pass_context
def collect(context: Context, hosts: tuple[str, ...], incident_id: str | None,
            bundle: str | None, collector_names: tuple[str, ...], accept_new: bool,
            known_hosts: tuple[Path, ...], parallel: int, connect_timeout: float,
            max_output: str, inventories: tuple[Path, ...], as_json_output: bool) -> None:
    """Run diagnostic collectors on hosts in parallel and keep every output as evidence.

    Exit status: 0 when every host answered, 1 when some did not, 2 on bad input.
    """
    from rich.live import Live

    from runbook.collect import CollectOutcome, CollectRequest, plan_collection
    from runbook.engine.runner import CollectionReport
    from runbook.progress import LiveProgress

    request = CollectRequest(
        hosts=list(hosts), incident_id=incident_id, bundle=bundle,
        collectors=list(collector_names), accept_new=accept_new,
        known_hosts=list(known_hosts), parallel=parallel, connect_timeout=connect_timeout,
        max_output=parse_size(max_output), inventories=list(inventories), actor=context.actor)
    plan = plan_collection(context.store, request)
    console.error_console().print(
        f"incident {plan.incident.id}: {len(plan.collectors)} collector(s) on "
        f"{len(plan.hosts)} host(s)")
    progress = LiveProgress([h.name for h in plan.hosts], [c.name for c in plan.collectors])
    collection = plan.collection(progress)
    finished: list[CollectionReport] = []
    # The collection runs in a worker so Ctrl-C reaches us at once; cancelling
    # closes the connections, and what was already recorded stays recorded.
    worker = threading.Thread(target=lambda: finished.append(collection.run()), daemon=True)
    try:
        with Live(progress, console=console.error_console(), refresh_per_second=4,
                  transient=True, redirect_stdout=False):
            worker.start()
            while worker.is_alive():
                worker.join(0.2)
    except KeyboardInterrupt:
        collection.cancel()
        worker.join(30)
        console.error_console().print(
            f"interrupted: what was collected is in incident {plan.incident.id}")
        sys.exit(130)
    if not finished:
        raise RunbookError("the collection stopped without a report",
                           "see $RUNBOOK_HOME/logs/runbook.log")
    outcome = CollectOutcome(plan.incident.id, finished[0])
    if as_json_output:
        _print_json(outcome.as_json())
    else:
        out.print(console.collection_summary(outcome.incident_id, outcome.report))
    sys.exit(0 if outcome.report.all_answered else 1)


@cli.command()
@json_option
def collectors(as_json_output: bool) -> None:
    """List the collectors and bundles."""
    if as_json_output:
        _print_json({"collectors": [c.__dict__ for c in COLLECTORS],
                     "bundles": {k: list(v) for k, v in BUNDLES.items()}})
        return
    out.print(console.collector_table(COLLECTORS, BUNDLES))


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    number, unit = text[:-1], text[-1:].upper()
    if unit.isdigit():
        number, unit = text, ""
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise RunbookError(f"{text!r} is not a size", "like 500K, 64M or 1G")
    return int(float(number) * units[unit])


# -- playbooks ----------------------------------------------------------------


@cli.group()
def playbook() -> None:
    """List, show and validate playbooks."""


@playbook.command("list")
@json_option
def playbook_list(as_json_output: bool) -> None:
    """List bundled and user playbooks (and any that fail to load)."""
    catalog = load_all()
    books = sorted(catalog.playbooks.values(), key=lambda b: b.playbook.name)
    if as_json_output:
        _print_json({
            "playbooks": [{"name": b.playbook.name, "title": b.playbook.title,
                           "severity": str(b.playbook.severity),
                           "stages": list(b.playbook.stages), "path": str(b.path),
                           "bundled": b.bundled} for b in books],
            "errors": [e.as_dict() for e in catalog.errors],
        })
        return
    out.print(console.playbook_list(books))
    for error in catalog.errors:
        _print_error(error)


@playbook.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def playbook_validate(files: tuple[Path, ...], as_json_output: bool) -> None:
    """Validate playbook files; exit 1 if any is invalid."""
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            loaded = load_playbook(path)
        except PlaybookError as exc:
            results.append({"file": str(path), "ok": False, "error": exc.as_dict(),
                            "message": str(exc)})
            if not as_json_output:
                _print_error(exc)
            continue
        results.append({"file": str(path), "ok": True, "name": loaded.playbook.name})
        if not as_json_output:
            out.print(f"[green]OK[/] {loaded.playbook.name} ({path})")
    if as_json_output:
        _print_json(results)
    if not all(r["ok"] for r in results):
        sys.exit(1)


@playbook.command("show")
@click.argument("name")
@json_option
def playbook_show(name: str, as_json_output: bool) -> None:
    """Show a playbook's stages and steps."""
    loaded = find_playbook(name)
    if as_json_output:
        _print_json(loaded.playbook.model_dump(mode="json"))
        return
    book = loaded.playbook
    out.print(f"[bold]{book.name}[/]: {book.title} ({book.severity})\n{book.description}")
    for stage, steps in book.stages.items():
        out.print(f"\n[bold underline]{stage}[/]")
        for step in steps:
            out.print(f"  {step.id:<28} [dim]{step.kind:<10}[/] {step.title}")


# -- inventory ----------------------------------------------------------------


@cli.group()
def inventory() -> None:
    """Show the hosts runbook knows and what a selector picks."""


@inventory.command("list")
@click.argument("selectors", nargs=-1)
@inventory_option
@json_option
def inventory_list(selectors: tuple[str, ...], inventories: tuple[Path, ...],
                   as_json_output: bool) -> None:
    """List hosts, or the hosts SELECTORS pick (name, group, role:, tag:, project:, glob)."""
    from runbook.inventory import load_inventory

    loaded = load_inventory(list(inventories))
    hosts = loaded.select(list(selectors)) if selectors else list(loaded.hosts.values())
    if as_json_output:
        _print_json([h.as_record() for h in hosts])
        return
    _warn(loaded.warnings)
    if not hosts:
        out.print("No hosts in the inventory. `localhost` always works; see docs/inventory.md.")
        return
    out.print(console.host_table(hosts))


# -- plumbing -----------------------------------------------------------------


def _acknowledge(incident: Incident, moment: datetime, what: str) -> None:
    console.error_console().print(f"{incident.id}: {what} at {console.utc_and_local(moment)}")


def _warn(warnings: list[str]) -> None:
    err = console.error_console()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _print_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _print_error(error: RunbookError) -> None:
    err = console.error_console()
    err.print(f"[bold red]error:[/] {error.message}", markup=True, highlight=False)
    if error.hint:
        err.print(f"  [dim]{error.hint}[/]")


def run(entry: Callable[..., Any], args: list[str] | None = None) -> int:
    """Run the CLI and turn every failure into a message and an exit status."""
    try:
        entry.main(args=args, prog_name="runbook", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        console.error_console().print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SourceError as exc:
        _print_error(exc)
        return EXIT_USER_ERROR
    except RunbookError as exc:
        _print_error(exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception:  # noqa: BLE001 - our bug: log it, never show a traceback
        where = log_exception("cli")
        console.error_console().print(
            "[bold red]internal error[/]: this is a bug in runbook; nothing recorded was lost."
            + (f" Details: {where}" if where else ""))
        return EXIT_INTERNAL
    return 0


def main() -> None:
    sys.exit(run(cli))
