"""Remediation and announcements (runbook/remediate/, runbook/announce/)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from runbook.cli import console
from runbook.cli.root import (
    Context,
    _acknowledge,
    _print_json,
    _warn,
    cli,
    connect_options,
    json_option,
    out,
    pass_context,
)
from runbook.connect_settings import ConnectSettings
from runbook.errors import RunbookError
from runbook.incident.store import Incident
from runbook.safe_output import echo


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
    echo(f"command {proposal.command_id} for step {proposal.step} on "
               f"{len(proposal.hosts)} host(s)")
    echo("review: " + ("required, by someone other than the proposer"
                             if proposal.review_required else "not required"))
    echo(f"root: {'yes (sudo -n unless logged in as root)' if proposal.needs_root else 'no'}"
               f"; timeout {proposal.timeout:g}s")
    echo(f"rollback: {proposal.rollback}")
    _echo_commands(list(proposal.commands.items()))
    # Plain echo: these are commands to copy, so rich must not wrap them.
    if proposal.review_required:
        echo(f"next: a reviewer reads it, then: runbook approve {incident.id} "
                   f"{proposal.command_id} --reviewer NAME", err=True)
    echo(f"to run: runbook execute {incident.id} {proposal.command_id} "
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
    echo(f"to run: runbook execute {incident.id} {command.id} "
               f"--confirm \"{confirmation}\"", err=True)


@cli.command()
@click.argument("incident_id")
@click.argument("command_id")
@click.option("--confirm", "confirmation", metavar="TEXT",
              help="Type the confirmation `propose` printed, e.g. \"run on 3 hosts\".")
@click.option("--dry-run", is_flag=True,
              help="Show exactly what would run on each host; run and record nothing.")
@connect_options(parallel=(16, 256, "run"))
@json_option
@pass_context
def execute(context: Context, incident_id: str, command_id: str, confirmation: str | None,
            dry_run: bool, connect: ConnectSettings, parallel: int,
            as_json_output: bool) -> None:
    """Run a proposed, reviewed command on its hosts, streaming the output.

    Needs the approval the step requires and --confirm with the exact words
    `propose` printed. Every host's output is kept as evidence and its exit code
    journalled. Exit status: 0 when every host exited 0, 1 otherwise, 2 when
    refused (no approval, wrong confirmation, already run).
    """
    from runbook import remediate

    incident = context.incident(incident_id)
    if dry_run:
        _dry_run(incident, command_id, as_json_output)
        return
    if confirmation is None:
        command = remediate.find_command(incident.state(), command_id)
        raise RunbookError("execute needs the typed confirmation",
                           f"--confirm \"{remediate.expected_confirmation(command)}\" "
                           "(or --dry-run to see what would run)")
    printer = _LiveOutput(err=as_json_output)
    execution = remediate.Execution(incident, command_id, context.actor, confirmation,
                                    connect.ssh_options(), printer, parallel=parallel,
                                    resolve_jump=connect.jump_resolver())
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
    echo(f"dry run of command {command.id} (step {command.step}): nothing runs, "
               "nothing is recorded")
    _echo_commands(plan)
    if command.executed:
        echo("this command has already run; propose it again to run it again")
    elif not facts["review_satisfied"]:
        echo(f"needs approval first: runbook approve {incident.id} {command.id} "
                   "--reviewer NAME")
    else:
        echo(f"to run: runbook execute {incident.id} {command.id} "
                   f"--confirm \"{facts['confirmation']}\"")


def _echo_commands(plan: list[tuple[str, str]]) -> None:
    # Plain echo, never rich: the commands must print byte for byte, unwrapped.
    for host, command in plan:
        echo(f"--- {host}")
        echo(command)


class _LiveOutput:
    """Remote output as it arrives, a line at a time, each line prefixed with its
    host (`|` stdout, `!` stderr), decoded with replacement and cleaned on the
    way out (`echo`). Called from worker threads."""

    def __init__(self, err: bool) -> None:
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
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        echo(f"{host} {'|' if stream == 'stdout' else '!'} {text}", err=self._err)


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
    from runbook.announce import channels
    from runbook.announce import notices as announcements

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
            echo(text, nl=not text.endswith("\n"))
        return
    if edit_file is not None:
        if not edit_file.exists():
            written = channels.save_to_file(text, edit_file)
            err.print(f"draft written to {written}: edit it, then run the same command again "
                      "to send it (nothing sent yet)", markup=False)
            return
        text = edit_file.read_text(encoding="utf-8")
    spec = destination or (step.channel if channels.is_channel_spec(step.channel)
                           else "stdout")
    if destination is None and step.channel and spec == "stdout":
        err.print(f"the step names channel {step.channel!r}, which runbook cannot send to yet: "
                  "printing it to paste there", markup=False)
    channel = channels.channel_from_spec(
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
    from runbook.announce import channels
    from runbook.announce import notices as announcements
    from runbook.incident import EventType

    incident = context.incident(incident_id)
    sent = [e for e in incident.state().events if e.type == EventType.ANNOUNCEMENT_SENT]
    entry = _unsent([{**e.data, "event_id": e.id} for e in sent], event_id)
    if entry is None:
        raise RunbookError(f"incident {incident.id} has no unsent announcement"
                           + (f" {event_id}" if event_id else ""),
                           "`runbook show ID` lists announcements and whether they were sent")
    channel = channels.channel_from_spec(
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
