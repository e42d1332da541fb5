"""Remediation execution: a reviewed, confirmed command run on its hosts.

`execute` needs the typed confirmation (`policy.expected_confirmation`),
journals `command.started` before anything runs, and never runs a command
twice; every host's exit code, output and evidence are journalled.
"""


from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from runbook.bugs import internal_error, log_exception
from runbook.engine.fanout import CANCELLED, FanOut
from runbook.engine.runner import SUDO_REFUSED
from runbook.errors import RunbookError
from runbook.evidence import DEFAULT_CAP, EvidenceRecord, EvidenceWriter
from runbook.hosts import Host
from runbook.incident import CommandState, EventType, IncidentState, Status
from runbook.incident.events import CommandOutcome, CommandStarted
from runbook.incident.store import Incident
from runbook.remediate.policy import (
    confirmation_matches,
    expected_confirmation,
    final_command,
    find_command,
    not_open_error,
    open_state,
    require_rendered,
    review_satisfied,
    same_person,
)
from runbook.transport.base import HostError
from runbook.transport.ssh import SshOptions

OutputSink = Callable[[str, str, bytes], None]  # (host, "stdout" | "stderr", bytes)


DEFAULT_PARALLEL = 16
# Words that are not a person: an approval must say who read the command.


class ExecStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"  # ran, exited non-zero or was killed by a signal
    TIMEOUT = "timeout"
    ERROR = "error"  # the connection broke while it ran
    NEEDS_ROOT = "needs-root"  # sudo -n refused: the command did not run
    CANCELLED = "cancelled"  # stopped by the operator before it started on this host
    # A host that could not be reached records the HostState: unreachable,
    # timeout (never spoke SSH) or refused (host key, authentication).


@dataclass
class ExecutionResult:
    host: str
    command: str
    status: str
    exit_code: int | None = None
    timed_out: bool = False
    message: str | None = None
    hint: str | None = None
    evidence: EvidenceRecord | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "command": self.command, "status": self.status,
                "exit_code": self.exit_code, "timed_out": self.timed_out,
                "message": self.message, "hint": self.hint,
                "evidence": self.evidence.as_dict() if self.evidence else None}


def execute(incident: Incident, command_id: str, actor: str, confirmation: str,
            ssh_options: SshOptions | None = None, on_output: OutputSink | None = None,
            **options: Any) -> list[ExecutionResult]:
    """Run a proposed command on its hosts; see `Execution` for the options."""
    return Execution(incident, command_id, actor, confirmation, ssh_options, on_output,
                     **options).run()


class Execution:
    """One run of one proposal, on each of its hosts in parallel (bounded).

    `check()` raises RunbookError for anything the operator must fix; `run()`
    checks again under a lock, journals `command.started`, then runs. A host
    that fails is a result, never an exception that stops the others.
    """

    def __init__(self, incident: Incident, command_id: str, actor: str, confirmation: str,
                 ssh_options: SshOptions | None = None, on_output: OutputSink | None = None,
                 *, parallel: int = DEFAULT_PARALLEL,
                 resolve_jump: Callable[[str], Host] | None = None,
                 max_output: int = DEFAULT_CAP) -> None:
        self.incident = incident
        self.command_id = command_id
        self.actor = actor
        self.confirmation = confirmation
        self.on_output = on_output
        self.max_output = max_output
        self.fanout = FanOut(ssh_options or SshOptions(), resolve_jump, parallel)

    def check(self, state: IncidentState | None = None) -> CommandState:
        state = state or open_state(self.incident)
        if state.status != Status.OPEN:
            raise not_open_error(self.incident, state)
        command = find_command(state, self.command_id)
        require_rendered(self.incident, command)
        if state.drill:
            # A drill may only ever touch its own lab, whichever front end asks.
            from runbook.drill.guard import refuse_outside_lab

            known = {h.name for h in state.hosts}
            strangers = [name for name in command.hosts if name not in known]
            if strangers:
                from runbook.drill.guard import OutsideLab

                raise OutsideLab(f"refused: {', '.join(strangers)} not among drill "
                                 f"{state.id}'s hosts", "a drill never touches real hosts")
            refuse_outside_lab(state, [h for h in state.hosts if h.name in command.hosts])
        if command.executed:
            ran = (command.started_at.isoformat(timespec="seconds").replace("+00:00", "Z")
                   if command.started_at else "earlier")
            raise RunbookError(
                f"command {command.id} already ran ({ran}, by {command.started_by or '?'}); "
                "a command never runs twice",
                f"to run it again, propose it again: `runbook propose {self.incident.id} "
                f"{command.step}`, and review and confirm the new one")
        if not review_satisfied(command):
            others = [a for a in command.approvals if not same_person(a, command.proposed_by)]
            raise RunbookError(
                f"command {command.id} needs a review by someone other than "
                f"{command.proposed_by} before it runs" + ("" if others else " (none yet)"),
                f"the reviewer reads it (`runbook execute {self.incident.id} {command.id} "
                f"--dry-run`), then: `runbook approve {self.incident.id} {command.id} "
                "--reviewer NAME`")
        if not confirmation_matches(self.confirmation, command):
            expected = expected_confirmation(command)
            raise RunbookError(
                f"confirmation {self.confirmation!r} does not match: to run command "
                f"{command.id} type exactly {expected!r}",
                f"it runs on: {', '.join(command.hosts)}; "
                f"--confirm \"{expected}\"")
        return command

    def run(self) -> list[ExecutionResult]:
        with _launch_lock(self.incident):
            command = self.check()
            state = self.incident.state()
            self.incident.append(EventType.COMMAND_STARTED, CommandStarted(
                command_id=command.id, step=command.step, hosts=command.hosts,
                confirmation=" ".join(self.confirmation.split()),
                approvers=list(command.approvals),
                # Said before it runs: if runbook dies, this is what is left to read.
                survives_disconnect=command.survives_disconnect), self.actor)
        return self.fanout.map(lambda name: self._run_host_guarded(state, command, name),
                               command.hosts, name="remediate")

    def cancel(self) -> None:
        """Stop, as a collection stops: hosts not started are recorded as
        cancelled; commands running are stopped on their hosts, then every
        connection closes. What ran is recorded."""
        self.fanout.cancel()

    # -- one host -----------------------------------------------------------------------

    def _run_host_guarded(self, state: IncidentState, command: CommandState,
                          name: str) -> ExecutionResult:
        try:
            return self._run_host(state, command, name)
        except Exception:  # noqa: BLE001 - our bug; the other hosts go on
            result = ExecutionResult(
                name, command.commands.get(name, ""), ExecStatus.ERROR,
                message=internal_error(f"remediate {command.id} on {name}"))
            self._record(command, result)
            return result

    def _run_host(self, state: IncidentState, command: CommandState,
                  name: str) -> ExecutionResult:
        writer = EvidenceWriter(self.incident.store.directory(self.incident.id), name,
                                f"remediate-{command.step or command.id}", self.max_output)
        planned = command.commands[name]
        host = state.host(name)
        if host is None:
            return self._unrun(command, writer, planned, ExecStatus.ERROR,
                               f"{name} is not one of the incident's hosts", None)
        if self.fanout.cancelled:
            return self._unrun(command, writer, planned, ExecStatus.CANCELLED, CANCELLED, None)
        try:
            connection = self.fanout.connect(host)
        except HostError as exc:
            if self.fanout.cancelled:
                return self._unrun(command, writer, planned, ExecStatus.CANCELLED, CANCELLED,
                                   None)
            return self._unrun(command, writer, planned, str(exc.state), exc.reason, exc.hint)
        try:
            use_sudo = command.needs_root and not connection.is_root
            final = final_command(command, planned, connection.is_root)
            head = bytearray()

            def on_stdout(data: bytes) -> None:
                writer.stdout(data)
                self._show(name, "stdout", data)

            def on_stderr(data: bytes) -> None:
                if len(head) < 4096:
                    head.extend(data[: 4096 - len(head)])
                writer.stderr(data)
                self._show(name, "stderr", data)

            # A remediation may start a service by hand: what it leaves running stays.
            outcome = connection.run(final, timeout=command.timeout or 300,
                                     on_stdout=on_stdout, on_stderr=on_stderr,
                                     cap=self.max_output + 1, keep_background=True,
                                     survive_disconnect=command.survives_disconnect)
            writer.stdout.account(outcome.stdout_total)
            writer.stderr.account(outcome.stderr_total)
        finally:
            connection.close()
        message: str | None = None
        if not outcome.started:
            status, message = ExecStatus.ERROR, f"not run: {outcome.error}"
        elif outcome.timed_out:
            status = ExecStatus.TIMEOUT
            message = (f"timed out after {command.timeout or 300:g}s; "
                       + ("stopped on the host" if outcome.stopped_remotely
                          else "could not be stopped on the host"))
        elif outcome.error:
            status, message = ExecStatus.ERROR, outcome.error
        elif outcome.exit_code == 0:
            status = ExecStatus.OK
        elif use_sudo and SUDO_REFUSED.search(bytes(head)):
            # Unlike a collector, a remediation never falls back to running without root.
            status = ExecStatus.NEEDS_ROOT
            message = (f"sudo -n refused for {connection.user}: the command did not run "
                       "(it is never retried without root)")
        else:
            status = ExecStatus.FAILED
            message = outcome.signal
        record = writer.finish(command=final, exit_code=outcome.exit_code, status=status,
                               attempts=[], message=message)
        result = ExecutionResult(name, final, status, outcome.exit_code, outcome.timed_out,
                                 message, None, record)
        self._record(command, result)
        return result

    def _unrun(self, command: CommandState, writer: EvidenceWriter, planned: str, status: str,
               reason: str, hint: str | None) -> ExecutionResult:
        """A host where the command never started: recorded, with the reason as evidence."""
        writer.stderr(f"[runbook: not run: {reason}]\n".encode())
        record = writer.finish(command=planned, exit_code=None, status=status, attempts=[],
                               message=reason)
        result = ExecutionResult(writer.host, planned, status, None, False, reason, hint, record)
        self._record(command, result)
        return result

    def _show(self, host: str, stream: str, data: bytes) -> None:
        if self.on_output is None:
            return
        try:
            self.on_output(host, stream, data)
        except Exception:  # noqa: BLE001 - a broken display must not lose the evidence
            log_exception(f"remediate output display for {host}")
            self.on_output = None

    def _record(self, command: CommandState, result: ExecutionResult) -> None:
        outcome = CommandOutcome(
            command_id=command.id, step=command.step, host=result.host,
            command=result.command, exit_code=result.exit_code, status=str(result.status),
            timed_out=result.timed_out, message=result.message, hint=result.hint,
            approvers=list(command.approvals), proposed_by=command.proposed_by)
        # The evidence fields sit beside the outcome, as a collection's do.
        evidence = result.evidence.as_dict() if result.evidence else {}
        self.incident.append(EventType.COMMAND_EXECUTED, {**evidence, **outcome}, self.actor)


@contextmanager
def _launch_lock(incident: Incident) -> Iterator[None]:
    """Held from the last check to `command.started`: two operators confirming the
    same command at the same moment cannot both launch it."""
    path = incident.store.directory(incident.id) / ".remediate.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunbookError("another runbook process is launching a command in incident "
                               f"{incident.id} right now", "wait a moment, then check "
                               f"`runbook show {incident.id}`") from None
        yield
    finally:
        os.close(fd)


# -- lookups ---------------------------------------------------------------------------
