"""Run commands on this machine: subprocess in its own process group."""

from __future__ import annotations

import contextlib
import getpass
import os
import selectors
import signal
import subprocess
import threading
import time

import psutil

from runbook.transport.base import LOCALE_PREFIX, CommandOutcome, OutputCallback

CHUNK = 65536


class LocalConnection:
    def __init__(self) -> None:
        self._running: set[subprocess.Popen[bytes]] = set()
        self._running_lock = threading.Lock()
        self.user: str | None = getpass.getuser()
        self.description = f"local ({self.user})"

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def cpu_count(self) -> int | None:
        return os.cpu_count()

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback, cap: int | None = None,
            keep_background: bool = False, survive_disconnect: bool = False) -> CommandOutcome:
        """`cap`, `keep_background` and `survive_disconnect` change nothing here:
        output is read as it comes, and only a timeout or a stop touches the
        command's process group."""
        process = subprocess.Popen(
            ["/bin/sh", "-c", LOCALE_PREFIX + command], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert process.stdout is not None and process.stderr is not None
        with self._running_lock:
            self._running.add(process)
        try:
            return self._follow(process, timeout, on_stdout, on_stderr)
        finally:
            with self._running_lock:
                self._running.discard(process)

    def _follow(self, process: subprocess.Popen[bytes], timeout: float,
                on_stdout: OutputCallback, on_stderr: OutputCallback) -> CommandOutcome:
        assert process.stdout is not None and process.stderr is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ, on_stdout)
            selector.register(process.stderr, selectors.EVENT_READ, on_stderr)
            open_streams = 2
            while open_streams:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stop_group(process)
                    return CommandOutcome(exit_code=None, timed_out=True, stopped_remotely=True)
                for key, _ in selector.select(timeout=min(remaining, 0.5)):
                    data = os.read(key.fd, CHUNK)
                    if data:
                        key.data(data)
                    else:
                        selector.unregister(key.fileobj)
                        open_streams -= 1
        try:
            code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop_group(process)
            return CommandOutcome(exit_code=None, timed_out=True, stopped_remotely=True)
        if code < 0:
            return CommandOutcome(exit_code=None, signal=signal.Signals(-code).name)
        return CommandOutcome(exit_code=code)

    def stop_running(self) -> bool:
        """Stop every command still running (the operator cancelled)."""
        with self._running_lock:
            groups = [process.pid for process in self._running]
        stop_groups(groups, grace=1.0)
        return True

    def close(self) -> None:
        return None


def stop_group(process: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """Stop the command's whole process group, then reap it and close its pipes."""
    stop_groups([process.pid], grace)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def stop_groups(pgids: list[int], grace: float) -> None:
    """TERM each process group, then KILL whatever outlives the grace.

    Waiting for the shell alone is not enough: a background child that got the same
    TERM may still be running after the shell has gone, or may ignore TERM.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = [pgid for pgid in pgids if group_is_running(pgid)]
        if not alive:
            return
        for pgid in alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
        deadline = time.monotonic() + grace
        while any(group_is_running(pgid) for pgid in alive) and time.monotonic() < deadline:
            time.sleep(0.02)


def group_is_running(pgid: int) -> bool:
    """Whether any process of the group is still alive; zombies awaiting their
    reaper count as gone."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False
