"""The operator's side of the host runner (host_runner.sh): one shell per host.

The runner is sent once over a byte stream (an SSH session, or a local
subprocess in the tests) and then runs every command it is asked to, each in
its own process group, framing their output into one stream. This module
writes the requests, reads the frames back and turns them into the same
`CommandOutcome` a per-command channel gave, so the engine does not know the
difference.

Why one shell: every SSH session is a login shell on the host, and on real
hosts a login shell sources rc files (pyenv, conda, nvm init: 0.1-0.3 s of CPU
each); one session per command made a sick host pay that cost dozens of times,
and made commands wait for a free session with their timeout running.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Protocol

from runbook.transport.base import CommandOutcome, OutputCallback

RUNNER_SCRIPT = resources.files("runbook.transport").joinpath("host_runner.sh").read_bytes()

# The login shell runs only this, whatever it is (bash, zsh, fish, tcsh): it reads
# exactly the runner's bytes from stdin (dd with bs=1 never reads past them) and
# hands the rest of stdin, the requests, to the runner.
BOOTSTRAP = f"exec /bin/sh -c 'eval \"$(dd bs=1 count={len(RUNNER_SCRIPT)} 2>/dev/null)\"'"

# After the exit status, how long the output may stay open before we stop
# waiting for it (a background process can hold a command's stdout).
EXIT_DRAIN_GRACE = 2.0
# After a stop is sent (TERM, then KILL 2 s later), how long to wait for the
# runner to report the command gone.
STOP_GRACE = 6.0
# How long a command may wait to be started by the runner before it is given up
# as not run (a host whose run queue is in the hundreds).
START_GRACE = 60.0
# A line this long without a newline is not a frame of ours.
MAX_FRAME = 64 * 1024


class ByteStream(Protocol):
    """What the runner is reached through: an SSH channel or a local pipe."""

    def send(self, data: bytes) -> None: ...

    def recv(self, size: int) -> bytes: ...

    def close(self) -> None: ...


class RunnerUnavailable(Exception):
    """The runner did not start, or its stream has ended."""


@dataclass
class _Run:
    """One command in flight on the runner."""

    run_id: int
    on_stdout: OutputCallback
    on_stderr: OutputCallback
    keep_background: bool = False
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    changed: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    exit_code: int | None = None
    exited_at: float | None = None
    timed_out: bool = False
    totals: dict[str, int] = field(default_factory=dict)

    def note(self) -> None:
        self.changed.set()


class RunnerSession:
    """A started runner: `run()` may be called from many threads at once."""

    def __init__(self, stream: ByteStream, *, start_timeout: float = 30.0) -> None:
        self._stream = stream
        self._write_lock = threading.Lock()
        self._runs: dict[int, _Run] = {}
        self._runs_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._hello = threading.Event()
        self._ended = threading.Event()
        self.end_reason = "the host's runner ended"
        self.uid: int | None = None
        self.cpu_count: int | None = None
        self._reader = threading.Thread(target=self._read_frames, name="runner-frames",
                                        daemon=True)
        try:
            self._send(RUNNER_SCRIPT)
        except OSError as exc:
            raise RunnerUnavailable(f"cannot send the runner: {exc}") from None
        self._reader.start()
        if not self._hello.wait(start_timeout):
            self.close()
            raise RunnerUnavailable(f"the host's shell did not start the runner within "
                                    f"{start_timeout:g}s")
        if self._ended.is_set() and self.uid is None:
            raise RunnerUnavailable(self.end_reason)

    @property
    def alive(self) -> bool:
        return not self._ended.is_set()

    # -- running ----------------------------------------------------------------------

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback, cap: int | None = None,
            keep_background: bool = False, survive_disconnect: bool = False) -> CommandOutcome:
        """Run one command through the runner. Its timeout counts from the moment
        the runner reports it started on the host, never from when it was asked
        for; past it, the runner stops the command's whole process group."""
        run = _Run(next(self._ids), on_stdout, on_stderr, keep_background or survive_disconnect)
        with self._runs_lock:
            if self._ended.is_set():
                return _not_run(self.end_reason)
            self._runs[run.run_id] = run
        try:
            try:
                self._send(_request(run.run_id, command, cap,
                                   2 if survive_disconnect else int(keep_background)))
            except OSError as exc:
                return _not_run(f"cannot reach the host's runner: {exc}")
            return self._follow(run, timeout)
        finally:
            with self._runs_lock:
                self._runs.pop(run.run_id, None)

    def _follow(self, run: _Run, timeout: float) -> CommandOutcome:
        if not _wait_for(run.started, self._ended, START_GRACE):
            if self._ended.is_set():
                return _not_run(self.end_reason)
            self._stop(run.run_id)
            return _not_run(f"the host did not start it within {START_GRACE:g}s")
        deadline = run.started_at + timeout
        while not run.finished.is_set():
            run.changed.clear()
            if self._ended.is_set():
                return CommandOutcome(exit_code=run.exit_code, timed_out=run.timed_out,
                                      error=None if run.exit_code is not None
                                      else f"connection lost: {self.end_reason}")
            now = time.monotonic()
            if run.exited_at is not None and now - run.exited_at >= EXIT_DRAIN_GRACE:
                # Exited, but something it left behind keeps its output open:
                # stopped with it, unless the caller asked for it to stay.
                if not run.timed_out and not run.keep_background:
                    self._stop(run.run_id)
                break
            if now >= deadline:
                if run.timed_out:  # stopped, yet the runner never said it was gone
                    return CommandOutcome(exit_code=None, timed_out=True,
                                          stopped_remotely=False)
                run.timed_out = True
                self._stop(run.run_id)
                deadline = now + STOP_GRACE
            wait = deadline - now
            if run.exited_at is not None:
                wait = min(wait, EXIT_DRAIN_GRACE - (now - run.exited_at))
            run.changed.wait(max(0.01, min(wait, 1.0)))
        totals = {"stdout_total": run.totals.get("o"), "stderr_total": run.totals.get("e")}
        if run.timed_out:
            return CommandOutcome(exit_code=None, timed_out=True,
                                  stopped_remotely=run.finished.is_set(), **totals)
        return CommandOutcome(exit_code=run.exit_code, **totals)

    def stop_running(self) -> bool:
        """Stop every command still running (the operator cancelled), and wait
        until the runner has sent what they printed before they were stopped."""
        with self._runs_lock:
            running = [r for r in self._runs.values()
                       if r.started.is_set() and not r.finished.is_set()]
        for run in running:
            self._stop(run.run_id)
        deadline = time.monotonic() + STOP_GRACE
        for run in running:
            while not run.finished.is_set() and not self._ended.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                run.finished.wait(min(remaining, 0.2))
        return self.alive

    def _stop(self, run_id: int) -> None:
        # If the stream is gone, the runner stops everything on its own.
        with contextlib.suppress(OSError):
            self._send(f"k {run_id}\n".encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._send(b"q\n")
        self._ended.set()
        self._stream.close()

    def _send(self, data: bytes) -> None:
        with self._write_lock:
            self._stream.send(data)

    # -- frames -----------------------------------------------------------------------

    def _read_frames(self) -> None:
        pending = b""
        try:
            while True:
                data = self._stream.recv(65536)
                if not data:
                    break
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self._frame(line)
                if len(pending) > MAX_FRAME:
                    pending = b""  # not a frame of ours
        except (OSError, EOFError) as exc:
            self.end_reason = f"the connection to the host's runner failed: {exc}"
        finally:
            with self._runs_lock:
                self._ended.set()
                runs = list(self._runs.values())
            self._hello.set()
            for run in runs:
                run.note()

    def _frame(self, line: bytes) -> None:
        tag, _, rest = line.partition(b" ")
        number, _, payload = rest.partition(b" ")
        if len(tag) != 1 or not number.isdigit():
            # Not a frame: what a chatty rc file printed before the runner started.
            return
        if tag == b"h":
            uid, _, cpus = payload.partition(b" ")
            self.uid = int(uid) if uid.isdigit() else None
            self.cpu_count = int(cpus) if cpus.strip().isdigit() else None
            self._hello.set()
            return
        with self._runs_lock:
            run = self._runs.get(int(number))
        if run is None:
            return  # a run we gave up on
        if tag in (b"o", b"e"):
            try:
                data = bytes.fromhex(payload.decode("ascii"))
            except ValueError:
                return
            (run.on_stdout if tag == b"o" else run.on_stderr)(data)
        elif tag == b"p":
            run.started_at = time.monotonic()
            run.started.set()
        elif tag == b"s":
            run.exit_code = int(payload) if payload.isdigit() else None
            run.exited_at = time.monotonic()
        elif tag == b"n":
            stream, _, count = payload.partition(b" ")
            key = stream.decode(errors="replace")
            run.totals[key] = run.totals.get(key, 0) + (int(count) if count.isdigit() else 0)
        elif tag == b"x":
            run.finished.set()
        run.note()


def _request(run_id: int, command: str, cap: int | None, keep: int) -> bytes:
    """One request line. A one-line command goes as it is (`read -r` keeps every
    byte but a newline, and leading or trailing blanks); any other goes with every
    byte as a printf octal escape, which costs the host one more fork."""
    head = f"r {run_id} {cap or 2**53} {keep}"
    if "\n" not in command and "\r" not in command and command == command.strip(" "):
        return f"{head} raw {command}\n".encode()
    octal = "".join(f"\\{byte:03o}" for byte in command.encode())
    return f"{head} octal {octal}\n".encode()


def _not_run(reason: str) -> CommandOutcome:
    return CommandOutcome(exit_code=None, started=False, error=reason)


def _wait_for(event: threading.Event, ended: threading.Event, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not event.is_set():
        if ended.is_set():
            return event.is_set()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        event.wait(min(remaining, 0.2))
    return True
