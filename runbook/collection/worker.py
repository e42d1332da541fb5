"""Run one collection in a child process and report progress as JSON lines.

The app starts collections this way so that the SSH work (hundreds of reader
threads, paramiko's crypto) never competes with the screen for the interpreter
lock. The journal is safe for several writers, so the child records into the
incident exactly as an in-process collection would.

    python -m runbook.collection.worker '{"incident_id": "...", "hosts": [...], ...}' [STORE_ROOT]
    python -m runbook.collection.worker    # the same two, as lines on stdin

The app starts the second form ahead of time, so the imports (0.4 s of CPU)
are done before the operator presses `r`.

Lines on stdout: {"plan": {"hosts": [...], ...}} once the hosts are known, then
{"host": ..., "state": ...}, {"host": ..., "collector": ..., "status": ...}, and
last {"done": true, ...}; or {"error": ..., "hint": ...}.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runbook.bugs import report_bug
from runbook.errors import RunbookError
from runbook.incident.store import IncidentStore

if TYPE_CHECKING:  # the engine is imported by the worker, not by the app that starts it
    from runbook.collection.collect import CollectRequest


class JsonLines:
    """An engine Observer that writes each change as one JSON line."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def emit(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def host_changed(self, host: str, state: Any, message: str | None) -> None:
        self.emit({"host": host, "state": str(state), "message": message})

    def collector_changed(self, host: str, collector: str, status: str,
                          detail: str | None) -> None:
        self.emit({"host": host, "collector": collector, "status": status, "detail": detail})


def request_from_json(text: str) -> CollectRequest:
    from runbook.collection.collect import CollectRequest
    from runbook.connect_settings import ConnectSettings

    data = json.loads(text)
    data["connect"] = ConnectSettings.from_json(data.get("connect") or {})
    return CollectRequest(**data)


def request_to_json(request: CollectRequest) -> str:
    return json.dumps({**request.__dict__, "connect": request.connect.as_json()})


# Background work: on a small bastion the operator's screen, not the collection,
# gets the CPU first. The remote commands are not affected.
WORKER_NICENESS = 5


def lowered_priority() -> list[str]:
    """The prefix that starts the worker niced, imports included (they are the
    heaviest part of its first second)."""
    nice = shutil.which("nice")
    return [nice, "-n", str(WORKER_NICENESS)] if nice else []


class SpareWorker:
    """One worker process started ahead of time and waiting for its request, so
    that a collection begins without 0.4 s of imports; taken, it is replaced.
    Safe to call from several threads; after `close` it starts nothing more."""

    def __init__(self) -> None:
        self._spare: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def _spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*lowered_priority(), sys.executable, "-m", "runbook.collection.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)

    def prepare(self) -> None:
        """Have a spare ready (call from a worker thread: this forks)."""
        with self._lock:
            if not self._closed and (self._spare is None or self._spare.poll() is not None):
                self._spare = self._spawn()

    def start(self, request: CollectRequest, store_root: Path) -> subprocess.Popen[str]:
        """A worker running `request`: the spare if it is alive, else a new one."""
        with self._lock:
            child, self._spare = self._spare, None
        if child is None or child.poll() is not None:
            child = self._spawn()
        assert child.stdin is not None
        child.stdin.write(f"{request_to_json(request)}\n{store_root}\n")
        child.stdin.close()
        return child

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None and spare.poll() is None:
            spare.terminate()  # it was only waiting on stdin
            with contextlib.suppress(subprocess.TimeoutExpired):
                spare.wait(timeout=2)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = JsonLines(sys.stdout)
    if os.getpriority(os.PRIO_PROCESS, 0) < WORKER_NICENESS:  # started without `nice`
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICENESS - os.getpriority(os.PRIO_PROCESS, 0))
    if not args:
        # Started ahead of time, imports done: the request comes on stdin when the
        # operator asks for it (a line of JSON, then the store root). EOF: not needed.
        args = [line.rstrip("\n") for line in sys.stdin.readlines()[:2]]
        if not args or not args[0]:
            return 0
    try:
        # The incidents directory the app uses (a drill has its own), not the default.
        store = IncidentStore(Path(args[1])) if len(args) > 1 else IncidentStore()
        from runbook.collection.collect import plan_collection

        plan = plan_collection(store, request_from_json(args[0]))
        out.emit({"plan": {"incident": plan.incident.id, "hosts": [h.name for h in plan.hosts],
                           "collectors": [c.name for c in plan.collectors]}})
        collection = plan.collection(out)

        def cancel(*_: object) -> None:
            # The app stops a collection with SIGTERM: the commands still running
            # are stopped on their hosts, and the run ends with what it has.
            threading.Thread(target=collection.cancel, daemon=True).start()

        signal.signal(signal.SIGTERM, cancel)
        signal.signal(signal.SIGINT, cancel)
        report = collection.run()
    except RunbookError as exc:
        out.emit({"error": exc.message, "hint": exc.hint})
        return 2
    except Exception:  # noqa: BLE001 - our bug: logged, reported as a line
        bug = report_bug("collect worker", kept="what was collected is recorded")
        out.emit({"error": bug.message, "hint": bug.hint})
        return 70
    out.emit({"done": True, "all_answered": report.all_answered,
              "cancelled": collection.cancelled,
              "answered": sum(1 for h in report.hosts if h.answered),
              "hosts": len(report.hosts),
              "notable": sum(1 for h in report.hosts for f in h.findings
                             if str(f.level) != "info")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
