"""Fill in an announcement, edit it, then copy, save or send it; what went out
(or failed to) lands in the timeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static, TextArea

from runbook.bugs import internal_error
from runbook.errors import RunbookError
from runbook.incident.store import Incident
from runbook.sanitize import clean_text
from runbook.tui.screens.prompts import ChoicePrompt
from runbook.tui.widgets.key_bar import KeyBar


class AnnounceScreen(Screen[bool]):
    # Priority: the focused TextArea binds ctrl+w (delete word) and ctrl+y (redo)
    # itself, and would otherwise swallow both keys.
    BINDINGS = [
        Binding("ctrl+s", "send", "Send via channel", priority=True),
        Binding("ctrl+y", "copy", "Copy (OSC 52) & record", priority=True),
        Binding("ctrl+w", "save", "Save to file & record", priority=True),
        Binding("ctrl+r", "redraft", "Redraft", priority=True),
        Binding("escape", "close", "Back (nothing sent)"),
    ]

    def __init__(self, incident: Incident, step_id: str, actor: str) -> None:
        super().__init__()
        self.incident = incident
        self.step_id = step_id
        self.actor = actor

    def compose(self) -> ComposeResult:
        yield Static(f" Announcement · {self.step_id} — edit, then send, copy or save. "
                     "Each send is recorded with its text.", id="announce-title")
        yield TextArea("", id="message", soft_wrap=True)
        yield KeyBar()

    def on_mount(self) -> None:
        self.action_redraft()

    @work(thread=True, exclusive=True)
    def action_redraft(self) -> None:
        from runbook.announce.notices import draft

        try:
            # Answers and alert labels fill the template; the draft is shown (and so
            # sent) without the terminal control sequences they may carry.
            text = clean_text(draft(self.incident.state(), self.step_id))
        except RunbookError as exc:
            text = f"(could not fill the template: {exc.message})"
        self.app.call_from_thread(self._show, text)

    def _show(self, text: str) -> None:
        area = self.query_one(TextArea)
        area.text = text
        area.focus()

    def action_copy(self) -> None:
        text = self.query_one(TextArea).text
        # Textual writes OSC 52, which reaches the operator's clipboard over SSH and tmux.
        self.app.copy_to_clipboard(text)
        self._record(text, "clipboard", True, None)

    @work(thread=True, exclusive=True, group="channels")
    def action_send(self) -> None:
        """Pick a channel from channels.yaml (read here, off the screen's thread);
        the send itself runs in another worker."""
        from runbook.announce.channels import channels_path, describe, load_channels

        try:
            channels = load_channels()
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error", timeout=10)
            return
        options = []
        for name, config in channels.items():
            if config.kind == "stdout":
                continue  # the app owns the terminal: nothing printed would be seen
            missing = [v for v, present in describe(name, config)["variables"].items()
                       if not present]
            note = f"  (unset: {', '.join(missing)})" if missing else ""
            options.append((name, f"{name} · {config.kind}{note}"))
        if not options:
            self.app.call_from_thread(
                self.notify, f"No channels to send through. Add them to {channels_path()} "
                "(see docs/announce.md); ctrl+y copies, ctrl+w saves.",
                severity="warning", timeout=10)
            return
        self.app.call_from_thread(
            self.app.push_screen, ChoicePrompt("Send through which channel?", options),
            self._send_chosen)

    def _send_chosen(self, name: str | None) -> None:
        if not name:
            return

        def channel() -> Any:
            from runbook.announce.channels import configured_channel

            found = configured_channel(name)
            if found is None:
                raise RunbookError(f"no channel {name!r} in channels.yaml any more")
            return found

        self._deliver(self.query_one(TextArea).text, channel, f"sent via {name}")

    def action_save(self) -> None:
        from runbook.announce.channels import FileChannel

        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = (self.incident.store.directory(self.incident.id) / "announcements"
                / f"{stamp}-{self.step_id}.txt")
        self._deliver(self.query_one(TextArea).text, lambda: FileChannel(path),
                      f"saved to {path}")

    @work(thread=True, group="deliver")
    def _deliver(self, text: str, channel: Callable[[], Any], done: str) -> None:
        """Send, and journal the outcome either way. Sent: back to the incident.
        Not sent: recorded as unsent (`runbook resend` retries it), and the text
        stays here to copy, save or send elsewhere."""
        from runbook.announce.notices import send

        try:
            _, delivered, error = send(self.incident, self.step_id, text, channel(), self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        except Exception:  # noqa: BLE001
            self.app.call_from_thread(self.notify, internal_error("announce"), severity="error")
            return
        if delivered:
            self.app.call_from_thread(self.notify, f"{done} and recorded")
            self.app.call_from_thread(self.dismiss, True)
        else:
            self.app.call_from_thread(self.notify, f"NOT {done}: {error}", severity="error",
                                      timeout=10)

    @work(thread=True)
    def _record(self, text: str, channel: str, delivered: bool, error: str | None) -> None:
        from runbook.announce.notices import record

        try:
            record(self.incident, self.step_id, text, channel, delivered, error, self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        self.app.call_from_thread(self.notify, "copied to the clipboard and recorded")
        self.app.call_from_thread(self.dismiss, True)

    def action_close(self) -> None:
        self.dismiss(False)
