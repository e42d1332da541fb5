"""Run declared collectors on hosts, in parallel, keeping every byte as evidence.

One connection and one runner per host, its collectors through it (samplers
together, the rest a few at a time); hosts in parallel up to a bound. A host
that fails is a value (`HostResult.state`), never an exception that stops the
others. Every run goes to the recorder as it finishes, so an interrupted
collection keeps what it already recorded.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from runbook.bugs import internal_error, log_exception
from runbook.engine.catalog import Collector
from runbook.engine.fanout import FanOut
from runbook.engine.results import (
    CollectionReport,
    CollectorRun,
    HostResult,
    Recorder,
    RunStatus,
)
from runbook.evidence import DEFAULT_CAP, EvidenceRecord, EvidenceWriter, read_head
from runbook.findings import Finding, ParseContext
from runbook.hosts import Host
from runbook.transport.base import CommandOutcome, Connection, HostError, HostState
from runbook.transport.local import LocalConnection
from runbook.transport.ssh import SshConnection, SshOptions

__all__ = ["Collection", "CollectionReport", "CollectOptions", "CollectorRun", "HostResult",
           "Observer", "Recorder", "RunStatus", "render_command", "sudo"]

# Commands that are not samplers run this many at a time on one host: a sick
# host's run queue is the thing being diagnosed, so the collection adds little.
DEFAULT_PER_HOST = 2
PER_HOST_VAR = "runbook_per_host"


SUDO_REFUSED = re.compile(
    rb"sudo: (a password is required|a terminal is required|.*not in the sudoers|"
    rb"no tty present|.*may not run sudo)", re.I)
NOT_INSTALLED_CODES = (126, 127)


class Observer(Protocol):
    """Progress for a screen: called from worker threads."""

    def host_changed(self, host: str, state: HostState, message: str | None) -> None: ...

    def collector_changed(self, host: str, collector: str, status: str,
                          detail: str | None) -> None: ...


class _NoObserver:
    def host_changed(self, host: str, state: HostState, message: str | None) -> None:
        return None

    def collector_changed(self, host: str, collector: str, status: str,
                          detail: str | None) -> None:
        return None


@dataclass
class CollectOptions:
    ssh: SshOptions = field(default_factory=SshOptions)
    parallel_hosts: int = 64
    # Commands at once per host (samplers aside); a host's runbook_per_host wins.
    per_host: int = DEFAULT_PER_HOST
    max_output: int = DEFAULT_CAP
    resolve_jump: Callable[[str], Host] | None = None


class Collection:
    """One collection run: these collectors on these hosts, reported to a recorder."""

    def __init__(self, recorder: Recorder, hosts: list[Host], collectors: list[Collector],
                 options: CollectOptions | None = None,
                 observer: Observer | None = None) -> None:
        self.recorder = recorder
        self.hosts = hosts
        self.collectors = collectors
        self.options = options or CollectOptions()
        self.observer = observer or _NoObserver()
        self.fanout = FanOut(self.options.ssh, self.options.resolve_jump,
                             self.options.parallel_hosts)
        self._lock = threading.Lock()
        self._run_slots = threading.BoundedSemaphore(64)

    def run(self) -> CollectionReport:
        # Where the hard limit is low, queue collectors instead of running out of files.
        self._run_slots = threading.BoundedSemaphore(raise_open_file_limit())
        started = datetime.now(UTC)
        results = [HostResult(h) for h in self.hosts]
        self.fanout.map(self._collect_host_guarded, results)
        return CollectionReport(results, started, datetime.now(UTC))

    @property
    def cancelled(self) -> bool:
        return self.fanout.cancelled

    def cancel(self) -> None:
        """Stop: the commands still running are stopped on their hosts (as a
        timeout would), then every connection is closed. What was recorded stays."""
        self.fanout.cancel()

    # -- one host ---------------------------------------------------------------

    def _collect_host_guarded(self, result: HostResult) -> None:
        try:
            self._collect_host(result)
        except Exception:  # noqa: BLE001 - our bug; the other hosts go on
            result.state = HostState.FAILED
            result.message = internal_error(f"host {result.host.name}")
            self.observer.host_changed(result.host.name, result.state, result.message)

    def _collect_host(self, result: HostResult) -> None:
        host = result.host
        on_operator = [c for c in self.collectors if c.runs_on == "operator"]
        on_host = [c for c in self.collectors if c.runs_on != "operator"]
        with ThreadPoolExecutor(1, thread_name_prefix="operator") as side:
            # ping runs from here whether or not SSH works: that is the point of it
            pinged = [side.submit(self._guarded, self._run_on, LocalConnection(), host, c,
                                  result) for c in on_operator]
            if on_host:
                self._collect_on_host(result, on_host)
            for future in pinged:
                future.result()
        if result.state in (HostState.PENDING, HostState.RUNNING, HostState.CONNECTING):
            failed = any(r.status not in (RunStatus.OK, RunStatus.SKIPPED) for r in result.runs)
            result.state = HostState.FAILED if failed else HostState.OK
        self.observer.host_changed(host.name, result.state, result.message)

    def _collect_on_host(self, result: HostResult, collectors: list[Collector]) -> None:
        host = result.host
        self.observer.host_changed(host.name, HostState.CONNECTING, None)
        try:
            connection = self.fanout.connect(host)
        except HostError as exc:
            result.state, result.message, result.hint = exc.state, exc.reason, exc.hint
            self.observer.host_changed(host.name, exc.state, exc.reason)
            self.recorder.host_failed(host, exc)
            for collector in collectors:
                if collector.runs_on == "handshake":
                    self._record_text(result, collector, f"FAILED: {exc.reason}\n",
                                      RunStatus.UNREACHABLE, exc.reason)
                else:
                    result.runs.append(CollectorRun(host.name, collector.name,
                                                    RunStatus.UNREACHABLE, message=exc.reason))
                    self.observer.collector_changed(host.name, collector.name,
                                                    RunStatus.UNREACHABLE, exc.reason)
            return
        self.observer.host_changed(host.name, HostState.RUNNING, None)
        context = self._parse_context(connection, host)
        # The samplers start together (they sleep most of their time); the other
        # commands queue for a few slots, so a sick host is not asked for much at once.
        samplers = [c for c in collectors if c.samples_for > 0]
        others = [c for c in collectors if c.samples_for <= 0]
        try:
            with ThreadPoolExecutor(max(1, len(samplers)), thread_name_prefix="sampler") as side, \
                    ThreadPoolExecutor(self._per_host(host), thread_name_prefix="cmd") as pool:
                futures = [side.submit(self._guarded, self._dispatch, connection, host, c,
                                       result, context) for c in samplers]
                futures += [pool.submit(self._guarded, self._dispatch, connection, host, c,
                                        result, context) for c in others]
                for future in futures:
                    future.result()
        finally:
            connection.close()

    def _per_host(self, host: Host) -> int:
        given = host.vars.get(PER_HOST_VAR, "")
        return max(1, int(given) if given.isdigit() else self.options.per_host)

    def _guarded(self, work: Callable[..., None], connection: Connection, host: Host,
                 collector: Collector, result: HostResult, *rest: Any) -> None:
        """A bug in one collector is logged and shown as its status, nothing more."""
        try:
            work(connection, host, collector, result, *rest)
        except Exception:  # noqa: BLE001 - our bug; the other collectors go on
            message = internal_error(f"collector {collector.name} on {host.name}")
            with self._lock:
                result.runs.append(CollectorRun(host.name, collector.name, RunStatus.ERROR,
                                                message=message))
            self.observer.collector_changed(host.name, collector.name, RunStatus.ERROR, message)

    def _dispatch(self, connection: Connection, host: Host, collector: Collector,
                  result: HostResult, context: ParseContext) -> None:
        if collector.runs_on == "handshake":
            if isinstance(connection, SshConnection):
                self._record_text(result, collector, connection.report.as_text(),
                                  RunStatus.OK, None)
            else:
                self._skip(result, collector, "local host: no SSH to check")
        elif collector.runs_on == "psutil":
            if host.local:
                from runbook.transport.local_metrics import snapshot

                self._record_text(result, collector, snapshot(collector.samples_for or 1.0),
                                  RunStatus.OK, None, context)
            else:
                self._skip(result, collector, "psutil metrics are for local hosts")
        else:
            self._run_on(connection, host, collector, result, context)

    # -- one collector ----------------------------------------------------------

    def _run_on(self, connection: Connection, host: Host, collector: Collector,
                result: HostResult, context: ParseContext | None = None) -> None:
        if self.fanout.cancelled:
            self._not_run(result, collector, "collection cancelled")
            return
        try:
            commands = [render_command(c, host) for c in (collector.command, *collector.fallbacks)]
        except MissingField as exc:
            self._skip(result, collector, str(exc))
            return
        with self._run_slots:
            self._run_commands(connection, host, collector, result, context, commands)

    def _run_commands(self, connection: Connection, host: Host, collector: Collector,
                      result: HostResult, context: ParseContext | None,
                      commands: list[str]) -> None:
        self.observer.collector_changed(host.name, collector.name, RunStatus.RUNNING, None)
        writer = EvidenceWriter(self.recorder.evidence_root, host.name, collector.name,
                                self.options.max_output)
        attempts: list[dict[str, Any]] = []
        outcome = CommandOutcome(exit_code=None)
        command = commands[0]
        message: str | None = None
        for index, plain in enumerate(commands):
            use_sudo = collector.needs_root and not connection.is_root
            command = sudo(plain) if use_sudo else plain
            if index:
                writer.stderr(f"[runbook: trying fallback: {command}]\n".encode())
            outcome, err_head = self._attempt(connection, command, collector, writer)
            if use_sudo and outcome.exit_code not in (None, 0) and SUDO_REFUSED.search(err_head):
                attempts.append(_attempt_record(command, outcome, err_head))
                message = "sudo -n refused: ran without root, output may be partial"
                command = plain
                writer.stderr(f"[runbook: {message}]\n".encode())
                outcome, err_head = self._attempt(connection, command, collector, writer)
            attempts.append(_attempt_record(command, outcome, err_head))
            if outcome.timed_out or outcome.error or outcome.exit_code == 0 \
                    or writer.stdout.written > 0:
                break
        status = _status(outcome, attempts, message)
        if not outcome.started:
            message = f"not run: {outcome.error}"
        elif outcome.timed_out:
            message = (f"timed out after {collector.timeout:g}s; "
                       + ("stopped on the host" if outcome.stopped_remotely
                          else "could not be stopped on the host"))
        elif outcome.error:
            message = outcome.error
        elif status == RunStatus.NOT_INSTALLED:
            message = "not installed: " + ", ".join(a["command"].split()[0] for a in attempts)
        elif outcome.signal:
            message = outcome.signal
        elif len(attempts) > 1 and status == RunStatus.OK and message is None:
            first = attempts[0]
            why = "not installed" if first["exit_code"] in NOT_INSTALLED_CODES else (
                f"exit {first['exit_code']}")
            message = f"fallback `{command}` ({first['command'].split()[0]}: {why})"
        record = writer.finish(command=command, exit_code=outcome.exit_code, status=status,
                               attempts=attempts, message=message)
        findings = self._parse(collector, record, context, host)
        self._record(result, CollectorRun(host.name, collector.name, status, outcome.exit_code,
                                          findings, record, message))

    def _attempt(self, connection: Connection, command: str, collector: Collector,
                 writer: EvidenceWriter) -> tuple[CommandOutcome, bytes]:
        head = bytearray()

        def on_stderr(data: bytes) -> None:
            if len(head) < 4096:
                head.extend(data[: 4096 - len(head)])
            writer.stderr(data)

        # One byte past the cap is worth sending: it is what tells the writer that
        # the stream was cut; the runner counts the rest without sending it.
        outcome = connection.run(command, timeout=collector.timeout, on_stdout=writer.stdout,
                                 on_stderr=on_stderr, cap=self.options.max_output + 1)
        writer.stdout.account(outcome.stdout_total)
        writer.stderr.account(outcome.stderr_total)
        return outcome, bytes(head)

    def _parse(self, collector: Collector, record: EvidenceRecord,
               context: ParseContext | None, host: Host) -> list[Finding]:
        if not collector.parser or record.stdout_bytes == 0:
            return []
        try:
            from runbook.engine.parsers import parse

            text = read_head(self.recorder.evidence_root / record.stdout)
            found = parse(collector.parser, text, context or ParseContext())
        except Exception:  # noqa: BLE001 - a parser bug must not lose the evidence
            log_exception(f"parser {collector.parser} on {host.name}")
            return []
        return [f.on(host.name, collector.name) for f in found]

    def _parse_context(self, connection: Connection, host: Host) -> ParseContext:
        ports = tuple(int(p) for p in host.var_list("expected_ports") if p.isdigit())
        return ParseContext(cpu_count=connection.cpu_count(), expected_ports=ports)

    # -- recording ----------------------------------------------------------------

    def _record_text(self, result: HostResult, collector: Collector, text: str, status: str,
                     message: str | None, context: ParseContext | None = None) -> None:
        writer = EvidenceWriter(self.recorder.evidence_root, result.host.name, collector.name,
                                self.options.max_output)
        writer.stdout(text.encode())
        record = writer.finish(command=f"({collector.description})", exit_code=None,
                               status=status, attempts=[], message=message)
        findings = self._parse(collector, record, context, result.host)
        self._record(result, CollectorRun(result.host.name, collector.name, status, None,
                                          findings, record, message))

    def _not_run(self, result: HostResult, collector: Collector, why: str) -> None:
        with self._lock:
            result.runs.append(CollectorRun(result.host.name, collector.name, RunStatus.NOT_RUN,
                                            message=why))
        self.observer.collector_changed(result.host.name, collector.name, RunStatus.NOT_RUN,
                                        why)

    def _skip(self, result: HostResult, collector: Collector, why: str) -> None:
        result.runs.append(CollectorRun(result.host.name, collector.name, RunStatus.SKIPPED,
                                        message=why))
        self.observer.collector_changed(result.host.name, collector.name, RunStatus.SKIPPED, why)

    def _record(self, result: HostResult, run: CollectorRun) -> None:
        assert run.evidence is not None
        self.recorder.ran(run)
        with self._lock:
            result.runs.append(run)
        self.observer.collector_changed(run.host, run.collector, run.status, run.message)


# Evidence stdout and stderr (2), meta and log writes; a host's one session and
# its pipe are counted in the margin.
FDS_PER_RUN = 4


def raise_open_file_limit(wanted: int = 65536) -> int:
    """Each running collector holds two evidence files and each host a socket and
    a session's pipe: 50 hosts pass the common soft limit of 1024 descriptors, so
    lift it towards the hard one. Returns how many collectors may run at once."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    usable = wanted if soft == resource.RLIM_INFINITY else soft
    return max(4, (usable - 128) // FDS_PER_RUN)


class MissingField(Exception):
    pass


def render_command(template: str, host: Host) -> str:
    """Fill a collector's `{address}` / `{app_logs}` with shell-quoted values."""
    fields: dict[str, str] = {}
    if "{address}" in template:
        fields["address"] = shlex.quote(host.address)
    if "{app_logs}" in template:
        logs = host.var_list("app_logs")
        if not logs:
            raise MissingField("no app_logs named for this host in the inventory")
        fields["app_logs"] = " ".join(shlex.quote(p) for p in logs)
    if not fields:
        return template
    return re.sub(r"\{(address|app_logs)\}", lambda m: fields[m.group(1)], template)


def sudo(command: str) -> str:
    return "sudo -n /bin/sh -c " + shlex.quote(command)


def _attempt_record(command: str, outcome: CommandOutcome, err_head: bytes) -> dict[str, Any]:
    first = err_head.decode(errors="replace").strip().splitlines()
    return {"command": command, "exit_code": outcome.exit_code, "timed_out": outcome.timed_out,
            "started": outcome.started, "error": outcome.error,
            "stderr_first_line": first[0][:200] if first else None}


def _status(outcome: CommandOutcome, attempts: list[dict[str, Any]],
            message: str | None) -> RunStatus:
    if not outcome.started:
        return RunStatus.NOT_RUN
    if outcome.timed_out:
        return RunStatus.TIMEOUT
    if outcome.error:
        return RunStatus.ERROR
    if outcome.exit_code == 0:
        return RunStatus.OK
    if attempts and all(a["exit_code"] in NOT_INSTALLED_CODES for a in attempts):
        return RunStatus.NOT_INSTALLED
    if message and "sudo" in message:
        return RunStatus.NEEDS_ROOT
    return RunStatus.FAILED
