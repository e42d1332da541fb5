"""The interface every transport offers, and host failures as values."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

OutputCallback = Callable[[bytes], None]

# Run every command under the C locale so parsers see one format (sar's 24h
# times, ps and df headers), whatever the host's LANG is.
LOCALE_PREFIX = "LC_ALL=C LANG=C; export LC_ALL LANG; "

# The first stderr line of a wrapped command carries its process group id, so a
# command that overruns can be stopped on the host, not only abandoned.
PGID_MARKER = b"\x1erunbook-pgid "
PGID_LINE = re.compile(rb"^\x1erunbook-pgid (\d+)\n")


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


class Connection(Protocol):
    """An open way to run commands on one host."""

    description: str
    user: str | None

    @property
    def is_root(self) -> bool: ...

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback) -> CommandOutcome: ...

    def stop_running(self) -> bool:
        """Stop the commands still running, on the host; True if the stop was sent."""
        ...

    def close(self) -> None: ...


def wrap_for_group_kill(command: str) -> str:
    """A shell line that reports its process group, then runs `command` in it."""
    import shlex

    inner = "printf '\\036runbook-pgid %s\\n' \"$$\" >&2; " + LOCALE_PREFIX + command
    return "exec /bin/sh -c " + shlex.quote(inner)


class MarkerFilter:
    """Strips the pgid line from the front of stderr and remembers the pgid."""

    def __init__(self, sink: OutputCallback) -> None:
        self._sink = sink
        self._head = b""
        self._done = False
        self.pgid: int | None = None

    def __call__(self, data: bytes) -> None:
        if self._done:
            self._sink(data)
            return
        self._head += data
        match = PGID_LINE.match(self._head)
        if match:
            self.pgid = int(match.group(1))
            rest, self._head, self._done = self._head[match.end():], b"", True
            if rest:
                self._sink(rest)
        elif b"\n" in self._head or len(self._head) > 64 or not PGID_MARKER.startswith(
                self._head[: len(PGID_MARKER)]):
            # not our line after all: pass everything through
            rest, self._head, self._done = self._head, b"", True
            self._sink(rest)

    def flush(self) -> None:
        if self._head:
            self._sink(self._head)
            self._head = b""
        self._done = True
