"""One piece of work per host, in parallel: shared by collection and remediation.

The fan-out owns the connections it opens, so there is one way to cancel
whatever runs: the commands still running are stopped on their hosts (the
runner there does it), then every connection closes. A host that fails is a
value for the caller (`HostError`), never an exception that stops the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from runbook.bugs import log_exception
from runbook.hosts import Host
from runbook.transport.base import Connection, HostError, HostState
from runbook.transport.local import LocalConnection
from runbook.transport.ssh import SshConnector, SshOptions

Item = TypeVar("Item")
Outcome = TypeVar("Outcome")

CANCELLED = "cancelled before it started on this host"


class FanOut:
    def __init__(self, ssh: SshOptions | None = None,
                 resolve_jump: Callable[[str], Host] | None = None,
                 parallel: int = 64) -> None:
        self.connector = SshConnector(ssh, resolve_jump)
        self.parallel = parallel
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._cancelled = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def map(self, work: Callable[[Item], Outcome], items: list[Item],
            name: str = "host") -> list[Outcome]:
        """`work` for every item, at most `parallel` at once, results in order."""
        workers = max(1, min(self.parallel, len(items)))
        try:
            with ThreadPoolExecutor(workers, thread_name_prefix=name) as pool:
                return list(pool.map(work, items))
        finally:
            self.connector.close()

    def connect(self, host: Host) -> Connection:
        """An open connection to `host` (local hosts need none), closed by the
        caller; HostError when it cannot be had, or when the run was cancelled."""
        if self._cancelled.is_set():
            raise HostError(HostState.FAILED, CANCELLED)
        connection: Connection = LocalConnection() if host.local else self.connector.connect(host)
        with self._lock:
            self._connections.append(connection)
        if self._cancelled.is_set():  # cancelled while we were connecting
            connection.close()
            raise HostError(HostState.FAILED, CANCELLED)
        return connection

    def cancel(self) -> None:
        """Stop: the commands still running are stopped on their hosts (as a
        timeout would), then every connection is closed. What was recorded stays."""
        self._cancelled.set()
        with self._lock:
            connections = list(self._connections)
        if not connections:
            return
        with ThreadPoolExecutor(min(32, len(connections)), thread_name_prefix="stop") as pool:
            list(pool.map(_stop_then_close, connections))


def _stop_then_close(connection: Connection) -> None:
    try:
        connection.stop_running()
    except Exception:  # noqa: BLE001 - closing below still ends the commands' channels
        log_exception(f"stopping commands on {connection.description}")
    connection.close()
