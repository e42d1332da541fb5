"""Announcements: a playbook's message template, filled from the incident, sent
through a channel, and journalled whether or not it got through.

A channel is a small class with `name` and `send(text) -> (delivered, error)`.
`stdout` and `file:PATH` exist now; Slack, webhooks and SMTP are more of the
same. A send that fails is still journalled (delivered: false) with its text,
so an unsent notice is never lost and can be sent again by hand.
"""

from __future__ import annotations

import base64
import errno
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol, TextIO

from runbook.bugs import log_exception
from runbook.errors import RunbookError
from runbook.incident import EventType, IncidentState, Status
from runbook.journal import Event
from runbook.playbook import AnnounceStep
from runbook.sanitize import clean_text
from runbook.store import Incident
from runbook.templating import render_text

CHANNEL_FORMS = "stdout, file:PATH, or a channel named in channels.yaml"


class Channel(Protocol):
    name: str  # as journalled: "stdout", "file:/abs/path", later "slack:#ops" ...

    def send(self, text: str) -> tuple[bool, str | None]:
        """(delivered, error). Returns a failure as a value; raises only for our bugs."""
        ...


class StdoutChannel:
    """Printed for the operator to paste where it belongs."""

    name = "stdout"

    def __init__(self, write: Callable[[str], object] | None = None) -> None:
        self._write = write

    def send(self, text: str) -> tuple[bool, str | None]:
        text = clean_text(text)  # a terminal shows it: nothing from an alert may act on it
        try:
            if self._write is not None:
                self._write(text)
            else:
                stream: TextIO = sys.stdout
                stream.write(text if text.endswith("\n") else text + "\n")
                stream.flush()
        except OSError as exc:
            return False, f"cannot write to stdout: {exc.strerror or exc}"
        return True, None


class FileChannel:
    """Written to a file (replacing it), for another tool or a person to pick up."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self.name = f"file:{self.path}"

    def send(self, text: str) -> tuple[bool, str | None]:
        try:
            save_to_file(clean_text(text), self.path)
        except OSError as exc:
            return False, f"cannot write {self.path}: {exc.strerror or exc}"
        return True, None


def channel_from_spec(spec: str, *, write: Callable[[str], object] | None = None) -> Channel:
    """`stdout`, `file:PATH`, or a name from channels.yaml (announce_channels.py)."""
    text = spec.strip()
    if text == "stdout":
        return StdoutChannel(write)
    kind, colon, rest = text.partition(":")
    if colon and kind == "file" and rest.strip():
        return FileChannel(Path(rest.strip()))
    from runbook.announce_channels import configured_channel  # late: it imports this module

    named = configured_channel(text, write=write)
    if named is not None:
        return named
    raise RunbookError(f"no channel {spec!r}", f"a channel is {CHANNEL_FORMS}")


def is_channel_spec(spec: str | None) -> bool:
    if not spec:
        return False
    try:
        channel_from_spec(spec)
    except RunbookError:
        return False
    return True


# -- drafting and recording -----------------------------------------------------------


def announce_step(state: IncidentState, step_id: str) -> AnnounceStep:
    step: AnnounceStep = state.step_of_kind(step_id, "announce", "an announcement")
    return step


def draft(state: IncidentState, step_id: str, now: datetime | None = None) -> str:
    """The step's message, filled from the incident as it stands now."""
    step = announce_step(state, step_id)
    return render_text(step.template, state.template_context(now or datetime.now(UTC)))


def record(incident: Incident, step_id: str, text: str, channel: str, delivered: bool,
           error: str | None, actor: str) -> Event:
    """Journal an announcement with its exact text, sent or not."""
    if not text.strip():
        raise RunbookError("an announcement needs some text")
    if not channel.strip():
        raise RunbookError("name the channel the announcement went to (or failed to)")
    step = announce_step(_recordable(incident), step_id)
    return incident.append(EventType.ANNOUNCEMENT_SENT, {
        "step": step.id, "purpose": step.purpose, "channel": channel, "text": text,
        "delivered": bool(delivered), "error": None if delivered else (error or "not sent"),
    }, actor)


def send(incident: Incident, step_id: str, text: str, channel: Channel,
         actor: str) -> tuple[Event, bool, str | None]:
    """Send through `channel`, then journal the outcome. A failed send is a
    value (and a journal entry), not an exception."""
    announce_step(_recordable(incident), step_id)  # refuse before anything goes out
    try:
        delivered, error = channel.send(text)
    except Exception:  # noqa: BLE001 - our bug in a channel; the text is still journalled
        where = log_exception(f"announce via {channel.name}")
        delivered, error = False, "internal error" + (f" (details in {where})" if where else "")
    event = record(incident, step_id, text, channel.name, delivered, error, actor)
    return event, delivered, error


def _recordable(incident: Incident) -> IncidentState:
    """Open or resolved (the resolution notice comes after resolving); not closed."""
    state = incident.state()
    if state.status == Status.CLOSED:
        raise RunbookError(f"incident {incident.id} is closed",
                           f"reopen it to record more: `runbook reopen {incident.id} "
                           "--reason ...`")
    return state


# -- helpers for getting the text out -----------------------------------------------------


def save_to_file(text: str, path: Path) -> Path:
    """Write the text to `path` whole (a temporary file renamed over it), so a
    reader never sees half a message. Returns the absolute path."""
    target = Path(path).expanduser().absolute()
    blocking = next((p for p in (target.parent, *target.parent.parents)
                     if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"{blocking} is not a directory", str(blocking))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def osc52(text: str, *, tmux: bool | None = None) -> str:
    """The OSC 52 sequence that puts `text` on the clipboard of the terminal the
    operator sits at, even over SSH: ESC ] 52 ; c ; <base64 of UTF-8> BEL.

    Inside tmux (`tmux=None` looks at $TMUX) it is wrapped in tmux's DCS
    passthrough (ESC P tmux; ... ESC \\, each ESC inside doubled); tmux passes
    it on only with `set -g allow-passthrough on` (or use `set-clipboard on`
    and tmux=False). Many terminals cap the sequence near 100 KB.
    """
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    sequence = f"\x1b]52;c;{payload}\x07"
    if tmux is None:
        tmux = bool(os.environ.get("TMUX"))
    if tmux:
        sequence = "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence
