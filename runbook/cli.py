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
