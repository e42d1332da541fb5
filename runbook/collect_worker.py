"""Run one collection in a child process and report progress as JSON lines.

The app starts collections this way so that the SSH work (hundreds of reader
threads, paramiko's crypto) never competes with the screen for the interpreter
lock. The journal is safe for several writers, so the child records into the
incident exactly as an in-process collection would.

    python -m runbook.collect_worker '{"incident_id": "...", "hosts": [...], ...}' [STORE_ROOT]

Lines on stdout: {"host": ..., "state": ...}, {"host": ..., "collector": ...,
"status": ...}, then {"done": true, ...} or {"error": ..., "hint": ...}.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import IO, Any

from runbook.bugs import log_exception
from runbook.collect import CollectRequest, plan_collection
from runbook.errors import RunbookError
from runbook.store import IncidentStore


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
    data = json.loads(text)
    for key in ("known_hosts", "inventories"):
        if key in data:
            data[key] = [Path(p) for p in data[key]]
    return CollectRequest(**data)


def request_to_json(request: CollectRequest) -> str:
    data = dict(request.__dict__)
    for key in ("known_hosts", "inventories"):
        data[key] = [str(p) for p in data[key]]
    return json.dumps(data)


# Background work: on a small bastion the operator's screen, not the collection,
# gets the CPU first. The remote commands are not affected.
WORKER_NICENESS = 5


def lowered_priority() -> list[str]:
    """The prefix that starts the worker niced, imports included (they are the
    heaviest part of its first second)."""
    nice = shutil.which("nice")
    return [nice, "-n", str(WORKER_NICENESS)] if nice else []


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = JsonLines(sys.stdout)
    if os.getpriority(os.PRIO_PROCESS, 0) < WORKER_NICENESS:  # started without `nice`
        with contextlib.suppress(OSError):
            os.nice(WORKER_NICENESS - os.getpriority(os.PRIO_PROCESS, 0))
    try:
        # The incidents directory the app uses (a drill has its own), not the default.
        store = IncidentStore(Path(args[1])) if len(args) > 1 else IncidentStore()
        plan = plan_collection(store, request_from_json(args[0]))
        report = plan.collection(out).run()
    except RunbookError as exc:
        out.emit({"error": exc.message, "hint": exc.hint})
        return 2
    except Exception:  # noqa: BLE001 - our bug: logged, reported as a line
        where = log_exception("collect worker")
        out.emit({"error": "internal error during collection; what was collected is recorded",
                  "hint": f"details in {where}"})
        return 70
    out.emit({"done": True, "all_answered": report.all_answered,
              "answered": sum(1 for h in report.hosts if h.answered),
              "hosts": len(report.hosts),
              "notable": sum(1 for h in report.hosts for f in h.findings
                             if str(f.level) != "info")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
