"""Our own bugs: written with their traceback to a log file, never to the screen."""

from __future__ import annotations

import sys
import threading
import traceback
from pathlib import Path

from runbook import __version__, paths
from runbook.clock import utc_now_iso

_lock = threading.Lock()


def internal_error(context: str) -> str:
    """Log the exception being handled, and say so in the words every front end
    uses: `internal error (details in …/runbook.log)`."""
    where = log_exception(context)
    return "internal error" + (f" (details in {where})" if where else "")


def log_exception(context: str) -> Path | None:
    """Append the exception being handled to $RUNBOOK_HOME/logs/runbook.log."""
    try:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "runbook.log"
        with _lock, path.open("a", encoding="utf-8") as log:
            log.write(f"--- {utc_now_iso('microseconds')} runbook {__version__} "
                      f"{context} argv={sys.argv!r}\n{traceback.format_exc()}\n")
        return path
    except OSError:
        return None
