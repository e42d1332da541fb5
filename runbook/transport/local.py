"""Run commands on this machine: subprocess in its own process group."""

from __future__ import annotations

import getpass
import os
import selectors
import signal
import subprocess
import time

from runbook.transport.base import LOCALE_PREFIX, CommandOutcome, OutputCallback

CHUNK = 65536


class LocalConnection:
    def __init__(self) -> None:
        self.user: str | None = getpass.getuser()
        self.description = f"local ({self.user})"

    @property
    def is_root(self) -> bool:
        return os.geteuid() == 0

    def run(self, command: str, *, timeout: float, on_stdout: OutputCallback,
            on_stderr: OutputCallback) -> CommandOutcome:
        process = subprocess.Popen(
            ["/bin/sh", "-c", LOCALE_PREFIX + command], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
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

    def close(self) -> None:
        return None


def stop_group(process: subprocess.Popen[bytes], grace: float = 2.0) -> None:
    """TERM the command's whole process group, then KILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=grace)
            break
        except subprocess.TimeoutExpired:
            continue
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()
