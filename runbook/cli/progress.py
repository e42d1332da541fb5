"""Live per-host, per-collector progress for `runbook collect` (rich)."""

from __future__ import annotations

import threading
import time
from collections import Counter

from rich.console import Group
from rich.table import Table
from rich.text import Text

from runbook.engine.results import FINISHED, PROBLEMS, RunStatus
from runbook.transport.base import HostState

STATE_STYLE = {
    HostState.PENDING: "dim", HostState.CONNECTING: "yellow", HostState.RUNNING: "cyan",
    HostState.OK: "green", HostState.FAILED: "bold yellow", HostState.TIMEOUT: "bold red",
    HostState.REFUSED: "bold red", HostState.UNREACHABLE: "bold red",
}
STATUS_STYLE = {
    RunStatus.OK: "green", RunStatus.FAILED: "yellow", RunStatus.TIMEOUT: "red",
    RunStatus.NOT_INSTALLED: "magenta", RunStatus.NEEDS_ROOT: "magenta",
    RunStatus.ERROR: "red", RunStatus.SKIPPED: "dim", RunStatus.UNREACHABLE: "red",
    RunStatus.NOT_RUN: "red", RunStatus.RUNNING: "cyan", RunStatus.PENDING: "dim",
}


class LiveProgress:
    """An Observer that keeps the latest state of every host and collector."""

    def __init__(self, hosts: list[str], collectors: list[str]) -> None:
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.hosts = {h: HostState.PENDING for h in hosts}
        self.messages: dict[str, str | None] = {}
        self.collectors = {h: {c: RunStatus.PENDING for c in collectors} for h in hosts}

    def host_changed(self, host: str, state: HostState, message: str | None) -> None:
        with self._lock:
            self.hosts[host] = state
            self.messages[host] = message

    def collector_changed(self, host: str, collector: str, status: str,
                          detail: str | None) -> None:
        with self._lock:
            self.collectors.setdefault(host, {})[collector] = status

    def __rich__(self) -> Group:
        with self._lock:
            table = Table(expand=False, box=None, padding=(0, 1))
            for column in ("host", "state", "done", "running now", "problems"):
                table.add_column(column, overflow="ellipsis", no_wrap=True)
            done_total = 0
            all_total = 0
            for host, state in self.hosts.items():
                statuses = self.collectors.get(host, {})
                done = sum(1 for s in statuses.values() if s in FINISHED)
                done_total += done
                all_total += len(statuses)
                running = [c for c, s in statuses.items() if s == RunStatus.RUNNING]
                bad = Counter(s for s in statuses.values() if s in PROBLEMS)
                problems = self.messages.get(host) or ", ".join(
                    f"{n} {s}" for s, n in bad.items())
                table.add_row(host, Text(str(state), style=STATE_STYLE.get(state, "")),
                              f"{done}/{len(statuses)}",
                              ", ".join(running[:4]) + (" …" if len(running) > 4 else ""),
                              Text(problems or "", style="yellow"))
            elapsed = time.monotonic() - self.started
            head = Text(f"collecting: {done_total}/{all_total} runs, {elapsed:.1f}s",
                        style="bold")
            return Group(head, table)
