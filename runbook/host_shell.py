"""A shell on an incident's host for the operator, by the real OpenSSH client, and
journalled: when it opened, when it closed and how, and (on request) everything
the terminal showed, captured by script(1) into the incident's evidence.

The `ssh` command line says everything runbook's own connections use, so the
shell reaches the host the same way: the address, port, user and key recorded
for it, its jump hosts, and runbook's known_hosts with the same checking
(`StrictHostKeyChecking=yes`, or `accept-new` only when the run was started
with --accept-new). Nothing is read from or written to ~/.ssh/config by
accident: the config file is the one runbook uses (RUNBOOK_SSH_CONFIG), if any.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from runbook.connect_settings import ConnectSettings
from runbook.errors import RunbookError
from runbook.hosts import Host
from runbook.incident import EventType, events
from runbook.incident.store import Incident

# A command line runs this: the default is the real terminal's subprocess.run.
Runner = Callable[[list[str]], int]


def ssh_argv(host: Host, connect: ConnectSettings,
             resolve_jump: Callable[[str], Host] | None = None,
             remote: Sequence[str] = ()) -> list[str]:
    """`ssh …` to `host` as runbook connects to it; `remote` is a command to run
    instead of a login shell."""
    resolve = resolve_jump or connect.jump_resolver()
    hops = [h.strip() for h in (host.jump or "").split(",") if h.strip()]
    return ["ssh", *_options(host, connect, [resolve(h) for h in hops], depth=0),
            "--", host.address, *remote]


def _options(host: Host, connect: ConnectSettings, via: list[Host], depth: int) -> list[str]:
    options = connect.ssh_options()
    args = ["-p", str(host.port), "-o", f"ConnectTimeout={int(options.connect_timeout)}",
            "-o", "StrictHostKeyChecking=" + ("accept-new" if options.accept_new else "yes"),
            "-o", "UserKnownHostsFile=" + " ".join(_escape(str(p), depth + 1)
                                                   for p in options.known_hosts_files),
            "-o", f"ServerAliveInterval={options.keepalive}"]
    config = os.environ.get("RUNBOOK_SSH_CONFIG")
    if config:
        args[:0] = ["-F", _escape(config, depth)]
    if host.user:
        args += ["-l", host.user]
    if host.identity_file:
        args += ["-i", _escape(str(Path(host.identity_file).expanduser()), depth + 1)]
        if not options.default_identities:
            args += ["-o", "IdentitiesOnly=yes"]
    if not options.use_agent:
        args += ["-o", "IdentityAgent=none"]
    if via:
        # The last hop reaches the host: its own ssh, through the hops before it,
        # forwards the connection (ProxyJump cannot give each hop its own key).
        *before, last = via
        inner = ["ssh", *_options(last, connect, before, depth + 1),
                 "-W", _escape("%h:%p", depth), "--", last.address]
        args += ["-o", "ProxyCommand=" + shlex.join(inner)]
    return args


def _escape(text: str, expansions: int) -> str:
    """`text` as written where ssh will expand %-tokens `expansions` times: once
    per ProxyCommand it sits in, and once more in an option that takes tokens
    itself (IdentityFile, UserKnownHostsFile)."""
    return text.replace("%", "%" * (2 ** expansions))


@dataclass(frozen=True)
class ShellSession:
    host: str
    exit_status: int | None
    duration_s: float
    capture: str | None  # the typescript, relative to the incident directory


def open_shell(incident: Incident, host_name: str, actor: str, connect: ConnectSettings, *,
               capture: bool = False, run: Runner | None = None,
               remote: Sequence[str] = ()) -> ShellSession:
    """Journal `shell.opened`, run ssh (under script(1) when `capture`) in the
    terminal, then journal `shell.closed` with its exit status, whatever it was."""
    state = incident.state()
    host = state.host(host_name)
    if host is None:
        raise RunbookError(f"{host_name} is not one of incident {incident.id}'s hosts")
    if state.drill:
        from runbook.drill.guard import refuse_outside_lab

        refuse_outside_lab(state, [host])
    if host.local:
        argv = [os.environ.get("SHELL") or "/bin/sh", *(["-c", shlex.join(remote)]
                                                       if remote else ["-l"])]
    else:
        argv = ssh_argv(host, connect, remote=remote)
    typescript: Path | None = None
    if capture:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S_%fZ")
        typescript = incident.evidence_dir / host.name / f"{stamp}-shell.typescript"
        typescript.parent.mkdir(parents=True, exist_ok=True)
        # -e: script exits with the shell's own status; -f: flushed as it goes,
        # so a killed runbook leaves what was shown so far.
        argv = ["script", "-q", "-e", "-f", "-c", shlex.join(argv), str(typescript)]
    relative = str(typescript.relative_to(incident.store.directory(incident.id))) \
        if typescript else None
    incident.append(EventType.SHELL_OPENED, events.ShellOpened(
        host=host.name, command=shlex.join(argv), capture=relative), actor)
    started = time.monotonic()
    status: int | None = None
    try:
        status = (run or _run_in_terminal)(argv)
    finally:
        # Said even when the shell could not start or runbook is interrupted.
        incident.append(EventType.SHELL_CLOSED, events.ShellClosed(
            host=host.name, exit_status=status,
            duration_s=round(time.monotonic() - started, 3), capture=relative,
            capture_bytes=typescript.stat().st_size if typescript and typescript.exists()
            else None), actor)
    return ShellSession(host.name, status, round(time.monotonic() - started, 3), relative)


def _run_in_terminal(argv: list[str]) -> int:
    try:
        return subprocess.run(argv, check=False).returncode
    except FileNotFoundError as exc:
        raise RunbookError(f"cannot start {argv[0]}: not installed",
                           "install openssh-client (and bsdutils for the capture)") from exc
