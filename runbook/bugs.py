"""Our own bugs: written with their traceback to a log file, never to the screen."""

from __future__ import annotations

import sys
import threading
import traceback
from datetime import UTC, datetime
from pathlib import Path

from runbook import __version__, paths

_lock = threading.Lock()


def log_exception(context: str) -> Path | None:
    """Append the exception being handled to $RUNBOOK_HOME/logs/runbook.log."""
    try:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "runbook.log"
        with _lock, path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} runbook {__version__} "
                      f"{context} argv={sys.argv!r}\n{traceback.format_exc()}\n")
        return path
    except OSError:
        return None
