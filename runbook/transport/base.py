"""The interface every transport offers, and host failures as values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

OutputCallback = Callable[[bytes], None]

# Run every command under the C locale so parsers see one format (sar's 24h
# times, ps and df headers), whatever the host's LANG is.
LOCALE_PREFIX = "LC_ALL=C LANG=C; export LC_ALL LANG; "


class HostState(StrEnum):
    PENDING = "pending"
    CONNECTING = "connecting"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"  # connected, but some collectors failed
    TIMEOUT = "timeout"  # accepted TCP but never spoke, or the handshake stalled
    REFUSED = "refused"  # host key unknown or changed, or authentication refused
    UNREACHABLE = "unreachable"  # nothing listening, no route, name unknown


class HostError(Exception):
    """A host that cannot be used: a value to show, never a traceback."""

    def __init__(self, state: HostState, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason
        self.hint = hint


@dataclass
class CommandOutcome:
    exit_code: int | None
    timed_out: bool = False
    stopped_remotely: bool = False
    signal: str | None = None
    error: str | None = None
    # False: the command never began on the host (the host dropped, the run was
    # cancelled first); `error` says why. Such a command did not time out.
    started: bool = True
    # Bytes each stream produced, where the transport dropped some before they
    # reached us (the host runner sends no more than the evidence cap).
    stdout_total: int | None = None
    stderr_total: int | None = None


class Connection(Protocol):
    """An open way to run commands on one host."""

    description: str
    user: str | None

    @property
    def is_root(self) -> bool: ...

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback, cap: int | None = None,
            keep_background: bool = False, survive_disconnect: bool = False) -> CommandOutcome:
        """Run `command` with a timeout that counts from its start on the host.
        `cap`: bytes per stream worth sending back; `keep_background`: leave what
        the command started in the background running after it exits;
        `survive_disconnect`: leave the command running if the connection to
        the host drops (by default the host's runner then stops it)."""
        ...

    def cpu_count(self) -> int | None: ...

    def stop_running(self) -> bool:
        """Stop the commands still running, on the host; True if the stop was sent."""
        ...

    def close(self) -> None: ...
