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
        if sys.stdin.isatty() and sys.stdout.isatty():
            _run_tui(ctx.obj, None, [], {})
        else:
            _overview(ctx.obj)


def _run_tui(context: Context, incident_id: str | None, inventories: list[Path],
             settings: dict[str, Any]) -> None:
    from runbook.tui.app import RunbookApp

    RunbookApp(context.store, incident_id, context.actor, inventories, settings).run()


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


# -- remediation and announcements (runbook/remediate.py, runbook/announce.py) -----


@cli.command()
@click.argument("incident_id")
@click.argument("step_id")
@click.option("--host", "-H", "hosts", multiple=True, metavar="SELECTOR",
              help="Narrow the step's targets to these incident hosts (name, group, role:, "
                   "tag:, project:, glob). Repeatable. Default: the step's own hosts.")
@json_option
@pass_context
def propose(context: Context, incident_id: str, step_id: str, hosts: tuple[str, ...],
            as_json_output: bool) -> None:
    """Propose a remediation step's command: print the exact command for each host.

    Nothing runs. Values from answers and alerts are shell-quoted. The printed
    command id is what `approve` and `execute` take.
    """
    from runbook import remediate

    incident = context.incident(incident_id)
    proposal = remediate.propose(incident, step_id, context.actor, list(hosts) or None)
    if as_json_output:
        _print_json({"incident": incident.id, "command_id": proposal.command_id,
                     "step": proposal.step, "hosts": proposal.hosts,
                     "commands": proposal.commands, "rollback": proposal.rollback,
                     "review_required": proposal.review_required,
                     "needs_root": proposal.needs_root, "timeout": proposal.timeout,
                     "confirmation": proposal.confirmation})
        return
    click.echo(f"command {proposal.command_id} for step {proposal.step} on "
               f"{len(proposal.hosts)} host(s)")
    click.echo("review: " + ("required, by someone other than the proposer"
                             if proposal.review_required else "not required"))
    click.echo(f"root: {'yes (sudo -n unless logged in as root)' if proposal.needs_root else 'no'}"
               f"; timeout {proposal.timeout:g}s")
    click.echo(f"rollback: {proposal.rollback}")
    _echo_commands(list(proposal.commands.items()))
    # Plain echo: these are commands to copy, so rich must not wrap them.
    if proposal.review_required:
        click.echo(f"next: a reviewer reads it, then: runbook approve {incident.id} "
                   f"{proposal.command_id} --reviewer NAME", err=True)
    click.echo(f"to run: runbook execute {incident.id} {proposal.command_id} "
               f"--confirm \"{proposal.confirmation}\"", err=True)


@cli.command()
@click.argument("incident_id")
@click.argument("command_id")
@click.option("--reviewer", required=True, metavar="NAME",
              help="The person who read the exact commands (not the proposer, when the step "
                   "requires review).")
@json_option
@pass_context
def approve(context: Context, incident_id: str, command_id: str, reviewer: str,
            as_json_output: bool) -> None:
    """Record a reviewer's approval of a proposed command."""
    from runbook import remediate

    incident = context.incident(incident_id)
    event = remediate.approve(incident, command_id, reviewer, context.actor)
    command = remediate.find_command(incident.state(), event.data["command_id"])
    confirmation = remediate.expected_confirmation(command)
    if as_json_output:
        _print_json({"incident": incident.id, "command_id": command.id,
                     "approver": event.data["approver"], "approvals": command.approvals,
                     "review_satisfied": remediate.review_satisfied(command),
                     "confirmation": confirmation})
        return
    _acknowledge(incident, event.ts, f"command {command.id} approved by "
                                     f"{escape(event.data['approver'])}")
    click.echo(f"to run: runbook execute {incident.id} {command.id} "
               f"--confirm \"{confirmation}\"", err=True)


@cli.command()
@click.argument("incident_id")
@click.argument("command_id")
@click.option("--confirm", "confirmation", metavar="TEXT",
              help="Type the confirmation `propose` printed, e.g. \"run on 3 hosts\".")
@click.option("--dry-run", is_flag=True,
              help="Show exactly what would run on each host; run and record nothing.")
@click.option("--accept-new", is_flag=True,
              help="Record unknown host keys (OpenSSH accept-new). Changed keys are "
                   "always refused.")
@click.option("--known-hosts", "known_hosts", multiple=True, type=click.Path(path_type=Path),
              help="known_hosts file(s) to check keys against (default: ~/.ssh/known_hosts "
                   "and /etc/ssh/ssh_known_hosts).")
@click.option("--parallel", default=16, show_default=True, type=click.IntRange(1, 256),
              help="Hosts run at once.")
@click.option("--connect-timeout", default=10.0, show_default=True, type=float,
              help="Seconds to connect and authenticate, per host.")
@inventory_option
@json_option
@pass_context
def execute(context: Context, incident_id: str, command_id: str, confirmation: str | None,
            dry_run: bool, accept_new: bool, known_hosts: tuple[Path, ...], parallel: int,
            connect_timeout: float, inventories: tuple[Path, ...],
            as_json_output: bool) -> None:
    """Run a proposed, reviewed command on its hosts, streaming the output.

    Needs the approval the step requires and --confirm with the exact words
    `propose` printed. Every host's output is kept as evidence and its exit code
    journalled. Exit status: 0 when every host exited 0, 1 otherwise, 2 when
    refused (no approval, wrong confirmation, already run).
    """
    from runbook import remediate
    from runbook.transport.known_hosts import default_known_hosts_files
    from runbook.transport.ssh import SshOptions

    incident = context.incident(incident_id)
    if dry_run:
        _dry_run(incident, command_id, as_json_output)
        return
    if confirmation is None:
        command = remediate.find_command(incident.state(), command_id)
        raise RunbookError("execute needs the typed confirmation",
                           f"--confirm \"{remediate.expected_confirmation(command)}\" "
                           "(or --dry-run to see what would run)")
    jumps: dict[str, Any] = {}

    def resolve_jump(text: str) -> Any:
        from runbook.inventory import load_inventory

        if "inventory" not in jumps:
            jumps["inventory"] = load_inventory(list(inventories))
        return jumps["inventory"].select([text])[0]

    options = SshOptions(connect_timeout=connect_timeout, accept_new=accept_new,
                         known_hosts_files=list(known_hosts or default_known_hosts_files()))
    printer = _LiveOutput(err=as_json_output)
    execution = remediate.Execution(incident, command_id, context.actor, confirmation, options,
                                    printer, parallel=parallel, resolve_jump=resolve_jump)
    command = execution.check()
    console.error_console().print(f"{incident.id}: running command {command.id} on "
                                  f"{', '.join(command.hosts)}", markup=False)
    finished: list[list[remediate.ExecutionResult]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            finished.append(execution.run())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            failure.append(exc)

    # In a worker, so Ctrl-C reaches us at once; what already ran stays recorded.
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        execution.cancel()
        worker.join(30)
        printer.flush()
        console.error_console().print(f"interrupted: what ran is recorded in incident "
                                      f"{incident.id}")
        sys.exit(130)
    printer.flush()
    if failure:
        raise failure[0]
    results = finished[0]
    everything_ok = all(r.ok for r in results)
    if as_json_output:
        _print_json({"incident": incident.id, "command_id": command.id, "all_ok": everything_ok,
                     "results": [r.as_dict() for r in results]})
    else:
        out.print(_execution_table(incident.id, command.id, results))
    sys.exit(0 if everything_ok else 1)


def _dry_run(incident: Incident, command_id: str, as_json_output: bool) -> None:
    from runbook import remediate

    plan = remediate.dry_run(incident, command_id)
    command = remediate.find_command(incident.state(), command_id)
    facts = {"review_satisfied": remediate.review_satisfied(command),
             "executed": command.executed,
             "confirmation": remediate.expected_confirmation(command)}
    if as_json_output:
        _print_json({"incident": incident.id, "command_id": command.id, "dry_run": True,
                     "commands": [{"host": h, "command": c} for h, c in plan], **facts})
        return
    click.echo(f"dry run of command {command.id} (step {command.step}): nothing runs, "
               "nothing is recorded")
    _echo_commands(plan)
    if command.executed:
        click.echo("this command has already run; propose it again to run it again")
    elif not facts["review_satisfied"]:
        click.echo(f"needs approval first: runbook approve {incident.id} {command.id} "
                   "--reviewer NAME")
    else:
        click.echo(f"to run: runbook execute {incident.id} {command.id} "
                   f"--confirm \"{facts['confirmation']}\"")


def _echo_commands(plan: list[tuple[str, str]]) -> None:
    # Plain echo, never rich: the commands must print byte for byte, unwrapped.
    for host, command in plan:
        click.echo(f"--- {host}")
        click.echo(command)


class _LiveOutput:
    """Remote output as it arrives, a line at a time, each line prefixed with its
    host (`|` stdout, `!` stderr), decoded with replacement and with terminal
    control sequences removed. Called from worker threads."""

    _CONTROL = (r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                r"|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")

    def __init__(self, err: bool) -> None:
        import re

        self._control = re.compile(self._CONTROL)
        self._err = err
        self._pending: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str, stream: str, data: bytes) -> None:
        with self._lock:
            *lines, rest = (self._pending.get((host, stream), b"") + data).split(b"\n")
            if len(rest) > 8192:  # a line without an end: show it in pieces
                lines, rest = [*lines, rest], b""
            self._pending[(host, stream)] = rest
            for line in lines:
                self._emit(host, stream, line)

    def flush(self) -> None:
        with self._lock:
            for (host, stream), rest in self._pending.items():
                if rest:
                    self._emit(host, stream, rest)
            self._pending.clear()

    def _emit(self, host: str, stream: str, line: bytes) -> None:
        text = self._control.sub("", line.decode("utf-8", errors="replace").rstrip("\r"))
        click.echo(f"{host} {'|' if stream == 'stdout' else '!'} {text}", err=self._err)


def _execution_table(incident_id: str, command_id: str, results: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"Command {command_id} in incident {incident_id}", title_justify="left")
    for column in ("host", "status", "exit"):
        table.add_column(column)
    table.add_column("evidence / reason", overflow="fold")
    for result in results:
        style = "green" if result.ok else "bold red"
        detail = result.evidence.stdout if result.ok and result.evidence else (
            result.message or (result.evidence.stdout if result.evidence else ""))
        table.add_row(escape(result.host), f"[{style}]{escape(result.status)}[/]",
                      "-" if result.exit_code is None else str(result.exit_code),
                      escape(detail))
    return table


@cli.command()
@click.argument("incident_id")
@click.argument("step_id")
@click.option("--to", "destination", metavar="CHANNEL",
              help="Where to send it: stdout (print it to paste; the default) or file:PATH. "
                   "Default: the step's channel when it is one of those.")
@click.option("--edit-file", type=click.Path(path_type=Path), metavar="FILE",
              help="Edit before sending: if FILE does not exist, the draft is written there "
                   "and nothing is sent; edit it, then run the same command again to send "
                   "FILE's text.")
@click.option("--draft", "draft_only", is_flag=True,
              help="Only print the draft; send and record nothing.")
@click.option("--copy", "copy_to_clipboard", is_flag=True,
              help="Also put the text on your clipboard (OSC 52: works over SSH and in tmux "
                   "with allow-passthrough).")
@json_option
@pass_context
def announce(context: Context, incident_id: str, step_id: str, destination: str | None,
             edit_file: Path | None, draft_only: bool, copy_to_clipboard: bool,
             as_json_output: bool) -> None:
    """Fill an announcement step's template from the incident, send it, record it.

    The exact text is journalled with where it went. A send that fails is
    journalled as not sent (exit 1), so the notice is never lost.
    """
    from runbook import announce as announcements

    incident = context.incident(incident_id)
    state = incident.state()
    step = announcements.announce_step(state, step_id)
    text = announcements.draft(state, step_id)
    err = console.error_console()
    if draft_only:
        if as_json_output:
            _print_json({"incident": incident.id, "step": step.id, "purpose": step.purpose,
                         "text": text})
        else:
            click.echo(text, nl=not text.endswith("\n"))
        return
    if edit_file is not None:
        if not edit_file.exists():
            written = announcements.save_to_file(text, edit_file)
            err.print(f"draft written to {written}: edit it, then run the same command again "
                      "to send it (nothing sent yet)", markup=False)
            return
        text = edit_file.read_text(encoding="utf-8")
    spec = destination or (step.channel if announcements.is_channel_spec(step.channel)
                           else "stdout")
    if destination is None and step.channel and spec == "stdout":
        err.print(f"the step names channel {step.channel!r}, which runbook cannot send to yet: "
                  "printing it to paste there", markup=False)
    channel = announcements.channel_from_spec(
        spec, write=(lambda _text: None) if as_json_output else None)
    event, delivered, error = announcements.send(incident, step.id, text, channel,
                                                 context.actor)
    if copy_to_clipboard:
        _copy_to_clipboard(announcements.osc52(text))
    if as_json_output:
        _print_json({"incident": incident.id, "step": step.id, "purpose": step.purpose,
                     "channel": channel.name, "delivered": delivered, "error": error,
                     "text": text, "event_id": event.id})
    elif delivered:
        _acknowledge(incident, event.ts, f"{step.purpose} announcement sent via "
                                         f"{escape(channel.name)}")
    else:
        err.print(f"[bold red]not sent[/] via {escape(channel.name)}: {escape(error or '?')}; "
                  "the text is recorded as unsent in the journal")
    if not delivered:
        sys.exit(1)


def _copy_to_clipboard(sequence: str) -> None:
    try:
        with open("/dev/tty", "w") as tty:  # noqa: PTH123 - a device, not a path to manage
            tty.write(sequence)
        return
    except OSError:
        pass
    if sys.stderr.isatty():
        sys.stderr.write(sequence)
        sys.stderr.flush()
    else:
        _warn(["--copy: no terminal to send the clipboard sequence to"])


@cli.command()
@click.argument("incident_id", required=False)
@click.option("--accept-new", is_flag=True, help="Record unknown host keys (accept-new).")
@click.option("--known-hosts", "known_hosts", multiple=True, type=click.Path(path_type=Path),
              help="known_hosts file(s) for collections started from the app.")
@inventory_option
@pass_context
def tui(context: Context, incident_id: str | None, accept_new: bool,
        known_hosts: tuple[Path, ...], inventories: tuple[Path, ...]) -> None:
    """Open the app (what plain `runbook` does in a terminal), on INCIDENT_ID if given."""
    settings: dict[str, Any] = {"accept_new": accept_new}
    if known_hosts:
        settings["known_hosts"] = list(known_hosts)
    _run_tui(context, incident_id, list(inventories), settings)


# -- detection and channels (runbook/detect/, runbook/announce_channels.py) -------

incident_record_option = click.option(
    "--incident", "incident_id", metavar="ID",
    help="Record the result into this incident as evidence (a collector.ran event); "
         "its first firing finding sets the detected-at time.")
threshold_option = click.option(
    "--threshold", "thresholds", multiple=True, metavar="[NAME]OP VALUE[:LEVEL]",
    help="e.g. 'sidekiq.*.latency>1000', 'db.pool.waiting>=5:warning'. NAME is a glob; "
         "values may have units (12ms, 1.5s, 40MB). Repeatable.")


@cli.command()
@click.option("--bind", default="127.0.0.1:9095", show_default=True, metavar="HOST:PORT",
              help="Where to listen (loopback unless --allow-remote).")
@click.option("--token", envvar="RUNBOOK_LISTEN_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' (env RUNBOOK_LISTEN_TOKEN).")
@click.option("--max-body", default="1M", show_default=True, metavar="SIZE",
              help="Refuse bodies larger than this (413).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --bind.")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Alert rules (default: the config dir's alerts.yaml, if any).")
@json_option
@pass_context
def listen(context: Context, bind: str, token: str | None, max_body: str, allow_remote: bool,
           rules_file: Path | None, as_json_output: bool) -> None:
    """Receive Alertmanager webhooks at POST /alerts and open or update incidents.

    Prints one line per alert (--json: one JSON object per line). Stop with Ctrl-C.
    """
    import signal

    from runbook.detect.alert_rules import load_rules
    from runbook.detect.alertmanager import AlertOutcome, AlertReceiver
    from runbook.detect.listener import AlertListener, is_loopback, parse_bind

    host, port = parse_bind(bind, allow_remote)
    rules = load_rules(rules_file)
    err = console.error_console()

    def show(outcome: AlertOutcome) -> None:
        click.echo(json.dumps(outcome.as_json()) if as_json_output else outcome.line())

    def refused(code: int, reason: str) -> None:
        err.print(f"refused ({code}): {reason}", markup=False, highlight=False)

    listener = AlertListener(AlertReceiver(context.store, rules, context.actor), host, port,
                             token=token, max_body=parse_size(max_body), on_outcome=show,
                             on_refusal=refused)
    if not is_loopback(host) and not token:
        _warn(["listening beyond loopback without --token: anyone who can reach it can "
               "open incidents"])
    err.print(f"listening on {listener.url} ({len(rules.rules)} rule(s)"
              f"{', token required' if token else ''})", markup=False, highlight=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        listener.serve_forever()
    finally:
        listener.server.server_close()


@cli.command()
@click.argument("url")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="Requests to make (each on a new connection).")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds per request.")
@click.option("--interval", default=0.0, type=float, help="Seconds between requests.")
@click.option("--expect-status", type=int, help="The status every answer must have "
              "(default: any below 400).")
@click.option("--expect-body", metavar="TEXT", help="Text every body must contain.")
@click.option("--max-total-ms", type=float, metavar="MS",
              help="Finding when total time's p95 (warning) or p50 (critical) is over MS.")
@click.option("--insecure", is_flag=True, help="Do not check the TLS certificate.")
@incident_record_option
@json_option
@pass_context
def probe(context: Context, url: str, count: int, timeout: float, interval: float,
          expect_status: int | None, expect_body: str | None, max_total_ms: float | None,
          insecure: bool, incident_id: str | None, as_json_output: bool) -> None:
    """Time N requests to URL: dns, connect, tls, first byte, total; p50/p95/max.

    Exit status 1 when there is a warning or critical finding.
    """
    from runbook.detect.http_probe import probe as run_probe

    report = run_probe(url, count=count, timeout=timeout, expect_status=expect_status,
                       expect_body=expect_body, max_total_ms=max_total_ms, interval=interval,
                       verify_tls=not insecure)
    _detected(context, "http-probe", report.url, f"GET {report.url} x{count}",
              report.findings, report.as_json(), incident_id, as_json_output)


@cli.command()
@click.argument("url", required=False)
@click.option("--host", "-H", "host_selector", metavar="HOST",
              help="Reach supervisord on this inventory host's 127.0.0.1:PORT through an "
                   "SSH tunnel (directly for localhost).")
@click.option("--port", default=9001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--user", "username", metavar="NAME", help="inet_http_server username.")
@click.option("--password", envvar="RUNBOOK_SUPERVISOR_PASSWORD", metavar="PASSWORD",
              help="inet_http_server password (env RUNBOOK_SUPERVISOR_PASSWORD).")
@click.option("--timeout", default=10.0, show_default=True, type=float)
@click.option("--accept-new", is_flag=True, help="Record an unknown SSH host key.")
@click.option("--known-hosts", "known_hosts", multiple=True, type=click.Path(path_type=Path),
              help="known_hosts file(s) for the SSH connection.")
@inventory_option
@incident_record_option
@json_option
@pass_context
def supervisor(context: Context, url: str | None, host_selector: str | None, port: int,
               username: str | None, password: str | None, timeout: float, accept_new: bool,
               known_hosts: tuple[Path, ...], inventories: tuple[Path, ...],
               incident_id: str | None, as_json_output: bool) -> None:
    """supervisord's programs over XML-RPC; every program not RUNNING is a finding.

    Give the URL (http://127.0.0.1:9001/RPC2) or --host to tunnel over SSH.
    """
    from runbook.detect import supervisord

    if bool(url) == bool(host_selector):
        raise RunbookError("give either a URL or --host", "e.g. `runbook supervisor "
                           "http://127.0.0.1:9001/RPC2` or `runbook supervisor --host web1`")
    if url:
        report = supervisord.check(url, username=username, password=password, timeout=timeout)
        target = report.where
    else:
        from runbook.inventory import load_inventory
        from runbook.transport.known_hosts import default_known_hosts_files
        from runbook.transport.ssh import SshOptions

        hosts = load_inventory(list(inventories)).select([host_selector or ""])
        if len(hosts) != 1:
            raise RunbookError(f"--host {host_selector} names {len(hosts)} hosts", "name one host")
        host = hosts[0]
        options = SshOptions(connect_timeout=timeout, accept_new=accept_new,
                             known_hosts_files=list(known_hosts) or default_known_hosts_files())
        report = supervisord.check_host(host, port=port, ssh=options, username=username,
                                        password=password, timeout=timeout)
        target = host.name
    _detected(context, "supervisord", target, f"supervisor.getAllProcessInfo at {report.where}",
              report.findings, report.as_json(), incident_id, as_json_output)


@cli.command()
@click.argument("source", required=False, default="-", metavar="[FILE|-]")
@click.option("--command", "command_line", metavar="CMD",
              help="Read the output of this local command (run without a shell) instead.")
@threshold_option
@click.option("--stale", metavar="DURATION",
              help="Finding for a metric with no data for this long (90s, 5m, 1h).")
@click.option("--now", "now_text", metavar="TIME",
              help="Judge staleness at this ISO time, or 'now' (default: the newest line's "
                   "timestamp, or the clock for lines without one).")
@incident_record_option
@json_option
@pass_context
def l2met(context: Context, source: str, command_line: str | None, thresholds: tuple[str, ...],
          stale: str | None, now_text: str | None, incident_id: str | None,
          as_json_output: bool) -> None:
    """Read l2met metrics (sample#, count#, measure#) from a file, stdin or a command."""
    from runbook.detect import l2met as reader
    from runbook.detect.thresholds import parse_duration, parse_thresholds

    limits = parse_thresholds(thresholds)
    stale_s = parse_duration(stale) if stale else None
    now = _parse_now(now_text)
    if command_line:
        text = _command_output(command_line)
        report = reader.read(text.splitlines(), limits, stale=stale_s, now=now)
        where, raw = f"command: {command_line}", text.encode()
    elif source == "-":
        captured: list[str] = []
        report = reader.read((captured.append(line) or line for line in sys.stdin), limits,
                             stale=stale_s, now=now)
        where, raw = "stdin", "".join(captured).encode()
    else:
        path = Path(source)
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                report = reader.read(handle, limits, stale=stale_s, now=now)
            raw = path.read_bytes()[:64 * 1024 * 1024]
        except OSError as exc:
            raise RunbookError(f"cannot read {source}: {exc.strerror or exc}") from None
        where = str(path.absolute())
    _detected(context, "l2met", "operator", f"l2met {where}", report.findings, report.as_json(),
              incident_id, as_json_output, raw=raw, fired_at=reader.first_crossing(report))


def _parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RunbookError(f"{text!r} is not a time", "ISO 8601, e.g. 2024-05-01T10:00:00Z, "
                           "or 'now'") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _command_output(command_line: str, timeout: float = 60.0) -> str:
    import shlex
    import subprocess

    try:
        done = subprocess.run(shlex.split(command_line), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise RunbookError(f"cannot run {command_line!r}: {exc}") from None
    return done.stdout.decode("utf-8", errors="replace")


@cli.command()
@click.argument("url", required=False)
@click.option("--heartbeat", metavar="URL", help="Up when it answers 2xx, else down.")
@threshold_option
@click.option("--timeout", default=10.0, show_default=True, type=float)
@incident_record_option
@json_option
@pass_context
def stats(context: Context, url: str | None, heartbeat: str | None,
          thresholds: tuple[str, ...], timeout: float, incident_id: str | None,
          as_json_output: bool) -> None:
    """Read a JSON stats endpoint as dotted metrics (db.pool.waiting), with thresholds."""
    from runbook.detect import json_stats
    from runbook.detect.thresholds import parse_thresholds

    if not url and not heartbeat:
        raise RunbookError("give a stats URL, --heartbeat URL, or both")
    report = json_stats.check(url, heartbeat=heartbeat, thresholds=parse_thresholds(thresholds),
                              timeout=timeout)
    target = report.url or (report.heartbeat or {}).get("url", "operator")
    _detected(context, "json-stats", target, f"GET {target}", report.findings,
              report.as_json(), incident_id, as_json_output)


@cli.command("prom-query")
@click.argument("url")
@click.argument("query")
@click.option("--threshold", "threshold_text", metavar="OP VALUE",
              help="e.g. '>0': each series past it is a finding.")
@click.option("--time", "at", metavar="TIME", help="Evaluate at this time (RFC 3339 or unix).")
@click.option("--timeout", default=10.0, show_default=True, type=float)
@incident_record_option
@json_option
@pass_context
def prom_query(context: Context, url: str, query: str, threshold_text: str | None,
               at: str | None, timeout: float, incident_id: str | None,
               as_json_output: bool) -> None:
    """Run an instant PromQL QUERY against Prometheus at URL (/api/v1/query)."""
    from runbook.detect import prometheus
    from runbook.detect.thresholds import parse_threshold

    threshold = parse_threshold(threshold_text) if threshold_text else None
    report = prometheus.query(url, query, threshold=threshold, timeout=timeout, at=at)
    _detected(context, "prometheus", report.url, f"query {query} at {report.url}",
              report.findings, report.as_json(), incident_id, as_json_output)


def _detected(context: Context, source: str, target: str, command: str, findings: list[Any],
              payload: dict[str, Any], incident_id: str | None, as_json_output: bool, *,
              raw: bytes | None = None, fired_at: datetime | None = None) -> None:
    """Print a source's findings, record them when asked; exit 1 when any fires."""
    from runbook.detect.record import firing, record_detection

    recorded = None
    if incident_id:
        incident = context.incident(incident_id)
        body = raw if raw is not None else json.dumps(payload, indent=2, default=str).encode()
        event = record_detection(incident, source=source, target=target, command=command,
                                 findings=findings, raw=body, actor=context.actor,
                                 fired_at=fired_at)
        recorded = {"incident": incident.id, "event_id": event.id}
    if as_json_output:
        _print_json({**payload, "recorded": recorded})
    else:
        styles = {"critical": "bold red", "warning": "yellow", "info": "dim"}
        for finding in findings:
            out.print(f"[{styles[str(finding.level)]}]{str(finding.level):<8}[/] "
                      f"{escape(finding.resource)}: {escape(finding.summary)}")
        if recorded:
            console.error_console().print(f"recorded in incident {recorded['incident']}",
                                          markup=False)
    if firing(findings):
        sys.exit(1)


@cli.command()
@click.argument("incident_id")
@click.option("--to", "destination", metavar="CHANNEL",
              help="Send it here instead (default: the channel it failed on).")
@click.option("--event", "event_id", metavar="EVENT_ID",
              help="Which unsent announcement (default: the latest one not sent since).")
@json_option
@pass_context
def resend(context: Context, incident_id: str, destination: str | None, event_id: str | None,
           as_json_output: bool) -> None:
    """Send an announcement that failed again, with its exact recorded text."""
    from runbook import announce as announcements
    from runbook.incident import EventType

    incident = context.incident(incident_id)
    sent = [e for e in incident.state().events if e.type == EventType.ANNOUNCEMENT_SENT]
    entry = _unsent([{**e.data, "event_id": e.id} for e in sent], event_id)
    if entry is None:
        raise RunbookError(f"incident {incident.id} has no unsent announcement"
                           + (f" {event_id}" if event_id else ""),
                           "`runbook show ID` lists announcements and whether they were sent")
    channel = announcements.channel_from_spec(
        destination or str(entry["channel"]),
        write=(lambda _text: None) if as_json_output else None)
    event, delivered, error = announcements.send(incident, str(entry["step"]),
                                                 str(entry["text"]), channel, context.actor)
    if as_json_output:
        _print_json({"incident": incident.id, "step": entry["step"], "channel": channel.name,
                     "delivered": delivered, "error": error, "event_id": event.id})
    elif delivered:
        _acknowledge(incident, event.ts, f"announcement sent via {escape(channel.name)}")
    else:
        console.error_console().print(f"[bold red]not sent[/] via {escape(channel.name)}: "
                                      f"{escape(error or '?')}; recorded as unsent again")
    if not delivered:
        sys.exit(1)


def _unsent(entries: list[dict[str, Any]], event_id: str | None) -> dict[str, Any] | None:
    """The announcement to resend: the given one, or the latest unsent one whose
    step has not been announced successfully since."""
    if event_id:
        return next((e for e in entries if e["event_id"] == event_id
                     and not e.get("delivered")), None)
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if not entry.get("delivered"):
            later = entries[index + 1:]
            if not any(e.get("delivered") and e.get("step") == entry.get("step") for e in later):
                return entry
    return None


@cli.command()
@json_option
def channels(as_json_output: bool) -> None:
    """List the announcement channels in channels.yaml (never their secrets)."""
    from runbook.announce_channels import channels_path, describe, load_channels

    described = [describe(name, config) for name, config in load_channels().items()]
    if as_json_output:
        _print_json({"file": str(channels_path()), "channels": described})
        return
    if not described:
        out.print(f"No channels configured in {escape(str(channels_path()))}; stdout and "
                  "file:PATH always work. See docs/announce.md.")
    for item in described:
        missing = [v for v, present in item["variables"].items() if not present]
        note = f" [yellow](unset: {', '.join(missing)})[/]" if missing else ""
        out.print(f"{escape(item['name'])}  [dim]{item['kind']}[/]{note}")


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
@click.option("--app-log", "app_logs", multiple=True, metavar="PATH",
              help="An application log file for the app-logs collector (repeatable).")
@inventory_option
@json_option
@pass_context
def collect(context: Context, hosts: tuple[str, ...], incident_id: str | None,
            bundle: str | None, collector_names: tuple[str, ...], accept_new: bool,
            known_hosts: tuple[Path, ...], parallel: int, connect_timeout: float,
            max_output: str, app_logs: tuple[str, ...], inventories: tuple[Path, ...],
            as_json_output: bool) -> None:
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
        max_output=parse_size(max_output), inventories=list(inventories), actor=context.actor,
        app_logs=list(app_logs))
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


# -- postmortem and archive (runbook/report/) ------------------------------------


@cli.command()
@click.argument("incident_id")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to FILE (evidence links then resolve from FILE's folder). "
                   "Default: standard output.")
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True,
              help="Headings and labels: English, or Japanese (障害報告書).")
@click.option("--template", type=click.Path(path_type=Path, dir_okay=False),
              help="Your own Jinja2 template instead of the built-in one (sandboxed; the "
                   "fields are in docs/report.md).")
@click.option("--redact-hosts", is_flag=True,
              help="Also replace host names, IPs and MACs with placeholders (host-1, "
                   "10.0.0.x-1, mac-1), consistently, for sharing outside the company.")
@click.option("--no-redact", is_flag=True,
              help="Do not mask passwords, tokens and keys (prints a warning).")
@json_option
@pass_context
def report(context: Context, incident_id: str, output: Path | None, lang: str,
           template: Path | None, redact_hosts: bool, no_redact: bool,
           as_json_output: bool) -> None:
    """Write the postmortem as Markdown, or export the whole incident with --json.

    Both are written from the journal and redacted by default (secrets always,
    hosts with --redact-hosts); the evidence on disk is never changed.
    """
    from runbook.report.export import incident_export
    from runbook.report.postmortem import default_redactor, render

    if as_json_output and template is not None:
        raise RunbookError("--template shapes the Markdown postmortem, not the JSON export",
                           "drop --json or --template")
    incident = context.incident(incident_id)
    state = incident.state()
    if no_redact:
        _warn(["--no-redact: passwords, tokens and keys in commands, answers and output "
               "are NOT masked in this export; do not share it"])
    redaction = default_redactor(state, secrets=not no_redact, hosts=redact_hosts)
    directory = context.store.directory(incident.id)
    if as_json_output:
        text = json.dumps(incident_export(state, redaction=redaction, incident_dir=directory),
                          indent=2, ensure_ascii=False, default=str) + "\n"
    else:
        text = render(state, template, lang=lang, redaction=redaction, incident_dir=directory,
                      link_base=output.resolve().parent if output else None)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"cannot write {output}: {exc.strerror}") from None
    console.error_console().print(f"written: {output}", markup=False, highlight=False)


@cli.group()
def history() -> None:
    """Search past incidents (the archive of closed ones, rebuilt from the journals)."""


@history.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 500),
              help="Show at most this many incidents.")
@json_option
def history_search(words: tuple[str, ...], limit: int, as_json_output: bool) -> None:
    """Find closed incidents by words in their title, hosts, findings, answers, notes,
    commands or postmortem, best match first, with what fixed them.

    Every word must match; `a OR b` matches either, `"two words"` a phrase, `word*`
    a prefix.
    """
    from runbook.report import archive

    with archive.opened() as index:
        hits = index.search(" ".join(words), limit)
        total = index.count()
    if as_json_output:
        _print_json([h.as_dict() for h in hits])
        return
    if not hits:
        hint = " (the archive is empty: runbook history reindex)" if total == 0 else ""
        out.print(f"No past incident matches, among {total} archived{hint}.")
        return
    for hit in hits:
        out.print(f"[bold]{escape(hit.id)}[/]  {escape(hit.severity)}  closed "
                  f"{escape(hit.closed_at or '-')}  {escape(hit.title)}")
        snippet = escape(" ".join(hit.snippet.split()))
        out.print("  " + snippet.replace(archive.MARK_START, "[bold yellow]").replace(
            archive.MARK_END, "[/]"))
        for command, hosts in archive.what_worked(hit.remediation):
            out.print(f"  [green]worked:[/] {escape(command)}  [dim](exit 0 on "
                      f"{escape(', '.join(hosts))})[/]")


@history.command("show")
@click.argument("incident_id")
@click.option("--postmortem", is_flag=True, help="Print the archived postmortem (Markdown).")
@json_option
def history_show(incident_id: str, postmortem: bool, as_json_output: bool) -> None:
    """Show one archived incident: hosts, findings, answers and what worked."""
    from runbook.report import archive

    with archive.opened() as index:
        record = index.get(incident_id)
    if as_json_output:
        _print_json(record)
        return
    if postmortem:
        click.echo(record["postmortem"], nl=not record["postmortem"].endswith("\n"))
        return
    out.print(f"[bold]{escape(record['id'])}[/]: {escape(record['title'])} "
              f"({escape(record['severity'])}, playbook {escape(record['playbook'])})")
    out.print(f"opened {escape(record['opened_at'] or '-')}, resolved "
              f"{escape(record['resolved_at'] or '-')}, "
              f"closed {escape(record['closed_at'] or '-')}")
    out.print(f"hosts: {escape(', '.join(record['hosts']) or '-')}; roles: "
              f"{escape(', '.join(record['roles']) or '-')}")
    sections = [("findings", record["findings"]),
                ("answers", [f"{k}: {v}" for k, v in record["answers"].items()]),
                ("worked", [f"{c}  (exit 0 on {', '.join(h)})"
                            for c, h in archive.what_worked(record["remediation"])])]
    for title, lines in sections:
        if lines:
            out.print(f"\n[bold underline]{title}[/]")
            for line in lines:
                out.print("  " + escape(" ".join(str(line).split())))
    out.print(f"\n[dim]the postmortem: runbook history show {escape(record['id'])} "
              "--postmortem[/]")


@history.command("reindex")
@json_option
@pass_context
def history_reindex(context: Context, as_json_output: bool) -> None:
    """Rebuild the archive from the journals of every closed incident."""
    from runbook.report import archive

    result = archive.reindex(context.store)
    if as_json_output:
        _print_json({"indexed": result.indexed, "skipped_not_closed": result.skipped,
                     "failed": result.failed, "archive": str(archive.archive_path())})
    else:
        out.print(f"indexed {len(result.indexed)} closed incident(s); "
                  f"{len(result.skipped)} not closed; {len(result.failed)} failed"
                  + (" (details in the log: $RUNBOOK_HOME/logs/runbook.log)"
                     if result.failed else ""))
    if result.failed:
        sys.exit(1)


# -- drills (runbook/drill/) ----------------------------------------------------


@cli.group()
def drill() -> None:
    """Training drills: a real fault on a loopback lab, worked and scored."""


@drill.command("list")
@click.option("--running", is_flag=True, help="Only the drills whose lab is up.")
@json_option
def drill_list(running: bool, as_json_output: bool) -> None:
    """The scenarios you can start (bundled and your team's), or the running drills."""
    from runbook.drill.scenario import load_catalog
    from runbook.drill.session import running_drills

    if running:
        labs = [{"id": s.drill_id, "scenario": s.data.get("scenario"),
                 "started": s.data.get("created_at"), "hosts": s.data.get("hosts")}
                for s in running_drills()]
        if as_json_output:
            _print_json(labs)
            return
        for lab in labs:
            click.echo(f"{lab['id']}  {lab['scenario']}  since {lab['started']}")
        if not labs:
            console.error_console().print("no drill is running")
        return
    catalog = load_catalog()
    _warn([str(e) for e in catalog.errors])
    rows = [{"name": n, "title": s.scenario.title, "fault": s.scenario.fault.kind,
             "playbook": s.scenario.playbook, "target_minutes": s.scenario.time_target_minutes,
             "source": "bundled" if s.bundled else str(s.path)}
            for n, s in sorted(catalog.scenarios.items())]
    if as_json_output:
        _print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']:<18} {row['fault']:<17} {row['title']}")


@drill.command("start")
@click.argument("name")
@click.option("--seed", type=int, help="Replay a drill exactly (which host, names, addresses).")
@json_option
@pass_context
def drill_start(context: Context, name: str, seed: int | None, as_json_output: bool) -> None:
    """Start the lab, inject the fault, open the DRILL incident; print its id and briefing."""
    from runbook.drill.session import start_drill

    started = start_drill(name, context.actor, seed)
    scenario = started.scenario
    if as_json_output:
        _print_json({"id": started.id, "scenario": scenario.name, "seed": started.seed,
                     "briefing": scenario.briefing, "alert": scenario.alert.model_dump(),
                     "inventory": str(started.inventory),
                     "causes": [c.id for c in scenario.choices()]})
        return
    click.echo(started.id)
    click.echo(f"\nDRILL: {scenario.title} (seed {started.seed})\n\n{scenario.briefing.strip()}")
    labels = ", ".join(f"{k}={v}" for k, v in scenario.alert.labels.items())
    click.echo(f"\nAlert firing: {labels}")
    for key, value in scenario.alert.annotations.items():
        click.echo(f"  {key}: {value}")
    click.echo("\nPossible causes (or type your own): "
               + ", ".join(c.id for c in scenario.choices()))
    click.echo(f"\nWork it:   runbook drill open {started.id}\n"
               f"Diagnose:  runbook drill diagnose {started.id} CAUSE\n"
               f"Finish:    runbook drill stop {started.id} && "
               f"runbook drill report {started.id}")


def _drill_lab_files(drill_id: str) -> tuple[Path, Path]:
    from runbook.drill.lab import find_state

    data = find_state(drill_id).data
    return Path(data["inventory"]), Path(data["known_hosts"])


@drill.command("open")
@click.argument("drill_id")
@pass_context
def drill_open(context: Context, drill_id: str) -> None:
    """Work the drill in the app: only the lab's hosts and keys are reachable."""
    import os

    from runbook.drill.session import app_launch
    from runbook.tui.app import RunbookApp

    launch = app_launch(drill_id)
    os.environ["RUNBOOK_HOME"] = str(launch.home)  # the store above is already resolved
    RunbookApp(launch.store, launch.incident_id, context.actor, [launch.inventory],
               launch.settings).run()


@drill.command("collect")
@click.argument("drill_id")
@click.option("--step", help="The collect step to run (its bundle or collectors).")
@click.option("--bundle", "-b", help="A bundle of collectors instead.")
@click.option("--collector", "-c", "collectors", multiple=True, help="A collector. Repeatable.")
@pass_context
def drill_collect(context: Context, drill_id: str, step: str | None, bundle: str | None,
                  collectors: tuple[str, ...]) -> None:
    """Run collectors on the drill's lab hosts (refused for any host outside the lab)."""
    from runbook.collect import CollectRequest
    from runbook.drill import guard
    from runbook.drill.lab import drill_store
    from runbook.drill.session import app_settings, drill_incident

    incident = drill_incident(drill_id)
    inventory, known_hosts = _drill_lab_files(incident.id)
    wanted = list(collectors)
    if step:
        found = incident.state().steps.get(step)
        if found is None or found.step.kind != "collect":
            raise RunbookError(f"{step!r} is not a collect step of drill {incident.id}")
        bundle, wanted = found.step.bundle, list(found.step.collectors)
    request = CollectRequest(incident_id=incident.id, bundle=bundle, collectors=wanted,
                             actor=context.actor, step=step, inventories=[inventory],
                             **app_settings(known_hosts))
    report = guard.collect(drill_store(), request)
    out.print(console.collection_summary(incident.id, report))
    if step and report.all_answered:
        incident.complete_step(step, context.actor, "collected")


@drill.command("diagnose")
@click.argument("drill_id")
@click.argument("cause", nargs=-1, required=True)
@pass_context
def drill_diagnose(context: Context, drill_id: str, cause: tuple[str, ...]) -> None:
    """State the root cause: a cause id from `drill start`'s list, or your own words."""
    from runbook.drill.session import diagnose

    diagnose(drill_id, " ".join(cause), context.actor)
    # Whether it matched is in the report, not here: no guessing until it fits.
    console.error_console().print(f"recorded: {escape(' '.join(cause))}; the last one stated "
                                  "counts (see `runbook drill report`)")


@drill.command("stop")
@click.argument("drill_id", required=False)
@pass_context
def drill_stop(context: Context, drill_id: str | None) -> None:
    """Undo the fault and stop the lab (the only running drill when no ID is given)."""
    from runbook.drill.session import running_drills, stop_drill

    if drill_id is None:
        running = running_drills()
        if len(running) != 1:
            raise RunbookError(f"{len(running)} drills are running: name one",
                               "runbook drill list --running")
        drill_id = running[0].drill_id
    stopped = stop_drill(drill_id, context.actor)
    err = console.error_console()
    err.print(f"{stopped.id}: fault {'undone' if stopped.undone else 'NOT undone'}; "
              "lab stopped")
    for line in stopped.teardown_lines:
        err.print(f"  {escape(line)}")


@drill.command("cleanup")
def drill_cleanup() -> None:
    """Find and remove every drill leftover: processes, mounts, daemons, files."""
    from runbook.drill.session import cleanup

    results = cleanup()
    for drill_id, lines in results:
        click.echo(f"{drill_id}: " + ("nothing left" if not lines else ""))
        for line in lines:
            click.echo(f"  {line}")
    if not results:
        click.echo("no drill leftovers")


@drill.command("report")
@click.argument("drill_id")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write it to FILE.")
@json_option
def drill_report(drill_id: str, output: Path | None, as_json_output: bool) -> None:
    """The drill's scored report (Markdown, watermarked DRILL)."""
    from runbook.drill.report import drill_report as render
    from runbook.drill.scoring import score
    from runbook.drill.session import drill_incident

    state = drill_incident(drill_id).state()
    result = score(state)
    if as_json_output:
        _print_json(result.as_json())
        return
    text = render(state, result)
    if output:
        output.write_text(text, encoding="utf-8")
        console.error_console().print(f"wrote {output}")
    else:
        click.echo(text)


@drill.command("history")
@click.option("--trainee", help="Only this trainee's drills (default: everyone's).")
@json_option
def drill_history(trainee: str | None, as_json_output: bool) -> None:
    """Drills over time, with scores: progress per scenario."""
    from runbook.drill.history import history, progress

    entries = history(trainee)
    if as_json_output:
        _print_json([e.as_json() for e in entries])
        return
    for e in entries:
        took = f"{e.time_to_diagnosis:.0f}s" if e.time_to_diagnosis is not None else "-"
        click.echo(f"{e.started_at:%Y-%m-%d %H:%M}  {e.scenario:<18} {e.score:>3}/100  "
                   f"diagnosis {'right' if e.diagnosed else 'wrong'} ({took})  "
                   f"{e.trainee or '-'}  {e.drill_id}")
    for line in progress(entries):
        click.echo(line)
    if not entries:
        click.echo("no drills yet: runbook drill list")


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
