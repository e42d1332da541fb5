"""Our own bugs: written with their traceback to a log file, never to the screen."""

from __future__ import annotations

import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

from runbook import __version__, paths
from runbook.clock import utc_now_iso

_lock = threading.Lock()


NOTHING_LOST = "nothing recorded was lost"


@dataclass(frozen=True)
class InternalError:
    """What every front end says about one of our bugs: that it is ours, what is
    safe, and where the traceback went. `hint` is empty when the log could not
    be written."""

    message: str
    hint: str

    def __str__(self) -> str:
        return self.message + (f" ({self.hint})" if self.hint else "")


def report_bug(context: str, *, kept: str = NOTHING_LOST,
               error: BaseException | None = None) -> InternalError:
    """Log the exception (the one being handled unless `error` is given) and say
    so in one wording: `internal error: a bug in runbook; <kept>`."""
    where = log_exception(context, error)
    return InternalError(f"internal error: a bug in runbook; {kept}",
                         f"details in {where}" if where else "")


def internal_error(context: str, *, kept: str = NOTHING_LOST) -> str:
    """`report_bug` as one line, for a status or a notification."""
    return str(report_bug(context, kept=kept))


def log_exception(context: str, error: BaseException | None = None) -> Path | None:
    """Append the exception being handled (or `error`) to $RUNBOOK_HOME/logs/runbook.log."""
    trace = ("".join(traceback.format_exception(error)) if error is not None
             else traceback.format_exc())
    try:
        directory = paths.log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "runbook.log"
        with _lock, path.open("a", encoding="utf-8") as log:
            log.write(f"--- {utc_now_iso('microseconds')} runbook {__version__} "
                      f"{context} argv={sys.argv!r}\n{trace}\n")
        return path
    except OSError:
        return None
