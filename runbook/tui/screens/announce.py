"""Fill in an announcement, edit it, then copy, save or send it; what went out
(or failed to) lands in the timeline."""

from __future__ import annotations

from datetime import UTC, datetime

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static, TextArea

from runbook.bugs import log_exception
from runbook.errors import RunbookError
from runbook.sanitize import clean_text
from runbook.store import Incident


class AnnounceScreen(Screen[bool]):
    # Priority: the focused TextArea binds ctrl+w (delete word) and ctrl+y (redo)
    # itself, and would otherwise swallow both keys.
    BINDINGS = [
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
        yield Static(f" Announcement · {self.step_id} — edit, then copy or save. "
                     "Each send is recorded with its text.", id="announce-title")
        yield TextArea("", id="message", soft_wrap=True)
        yield Footer()

    def on_mount(self) -> None:
        self.action_redraft()

    @work(thread=True, exclusive=True)
    def action_redraft(self) -> None:
        from runbook.announce import draft

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

    def action_save(self) -> None:
        text = self.query_one(TextArea).text
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = (self.incident.store.directory(self.incident.id) / "announcements"
                / f"{stamp}-{self.step_id}.txt")
        self._save(text, path)

    @work(thread=True)
    def _save(self, text: str, path) -> None:  # noqa: ANN001
        from runbook.announce import FileChannel, send

        try:
            _, delivered, error = send(self.incident, self.step_id, text, FileChannel(path),
                                       self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        except Exception:  # noqa: BLE001
            where = log_exception("announce save")
            self.app.call_from_thread(self.notify, f"internal error; details in {where}",
                                      severity="error")
            return
        message = f"saved to {path} and recorded" if delivered else f"NOT saved: {error}"
        self.app.call_from_thread(self.notify, message,
                                  severity="information" if delivered else "error")
        if delivered:
            self.app.call_from_thread(self.dismiss, True)

    @work(thread=True)
    def _record(self, text: str, channel: str, delivered: bool, error: str | None) -> None:
        from runbook.announce import record

        try:
            record(self.incident, self.step_id, text, channel, delivered, error, self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            return
        self.app.call_from_thread(self.notify, "copied to the clipboard and recorded")
        self.app.call_from_thread(self.dismiss, True)

    def action_close(self) -> None:
        self.dismiss(False)
