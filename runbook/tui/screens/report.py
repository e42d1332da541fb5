"""The postmortem draft, previewed, and exported to a Markdown file."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown, Static

from runbook.bugs import internal_error
from runbook.incident.store import Incident
from runbook.tui.widgets.key_bar import KeyBar


class ReportScreen(Screen[bool]):
    """Dismissed with True once postmortem.md was written."""

    BINDINGS = [Binding("w", "export", "Write postmortem.md"),
                Binding("escape,q", "close", "Back")]

    def __init__(self, incident: Incident) -> None:
        super().__init__()
        self.incident = incident
        self.text = ""
        self.written = False

    def compose(self) -> ComposeResult:
        yield Static(" Postmortem draft — generated from the journal", id="report-title")
        with VerticalScroll():
            yield Markdown("Rendering…", id="report")
        yield KeyBar()

    def on_mount(self) -> None:
        self.render_report()

    @work(thread=True, exclusive=True)
    def render_report(self) -> None:
        from runbook.report.postmortem import render

        try:
            self.text = render(self.incident.state())
        except Exception:  # noqa: BLE001
            self.text = internal_error(
                "report preview", kept="the report could not be rendered; the journal is intact")
        self.app.call_from_thread(self.query_one("#report", Markdown).update, self.text)

    @work(thread=True)
    def action_export(self) -> None:
        path = self.incident.store.directory(self.incident.id) / "postmortem.md"
        try:
            path.write_text(self.text, encoding="utf-8")
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"cannot write {path}: {exc.strerror}",
                                      severity="error")
            return
        self.written = True
        self.app.call_from_thread(self.notify, f"written: {path}", timeout=8)

    def action_close(self) -> None:
        self.dismiss(self.written)
