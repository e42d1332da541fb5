"""Announcements: a playbook's message template, filled from the incident, sent
through a channel, and journalled whether or not it got through.

The channels themselves (stdout, file:PATH, Slack, webhooks, SMTP) are in
`runbook.announce.channels` and know nothing of incidents; this module drafts
the text and journals each send. A send that fails is still journalled
(delivered: false) with its text, so an unsent notice is never lost and can be
sent again by hand.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime

from runbook.announce.channels import Channel
from runbook.bugs import internal_error
from runbook.errors import RunbookError
from runbook.incident import EventType, IncidentState, Status
from runbook.incident.events import AnnouncementSent
from runbook.incident.journal import Event
from runbook.incident.store import Incident
from runbook.playbook import AnnounceStep
from runbook.templating import render_text

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
    state = _recordable(incident)
    step = announce_step(state, step_id)
    _refuse_early_resolution(state, step)
    return incident.append(EventType.ANNOUNCEMENT_SENT, AnnouncementSent(
        step=step.id, purpose=step.purpose, channel=channel, text=text,
        delivered=bool(delivered), error=None if delivered else (error or "not sent")), actor)


def send(incident: Incident, step_id: str, text: str, channel: Channel,
         actor: str) -> tuple[Event, bool, str | None]:
    """Send through `channel`, then journal the outcome. A failed send is a
    value (and a journal entry), not an exception."""
    state = _recordable(incident)  # refuse before anything goes out
    _refuse_early_resolution(state, announce_step(state, step_id))
    try:
        delivered, error = channel.send(text)
    except Exception:  # noqa: BLE001 - our bug in a channel; the text is still journalled
        delivered, error = False, internal_error(f"announce via {channel.name}")
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


def _refuse_early_resolution(state: IncidentState, step: AnnounceStep) -> None:
    """A "resolved" notice while the incident is open tells people to stop
    watching something that is still broken. Drafting it is fine; sending is not."""
    if step.purpose == "resolved" and state.status == Status.OPEN:
        raise RunbookError(
            f"incident {state.id} is still open: the resolved notice ({step.id}) would "
            "say it is over",
            f"resolve it first (R in the app, or `runbook resolve {state.id} --summary "
            "...`), then send the notice")


# -- helpers for getting the text out -----------------------------------------------------


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
