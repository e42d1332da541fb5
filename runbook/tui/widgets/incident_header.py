"""One line at the top: the incident, its severity, its commander, and the clock."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual.widgets import Static

from runbook.incident import IncidentState, format_duration
from runbook.sanitize import clean_line

SEVERITY_STYLE = {"SEV1": "bold white on red", "SEV2": "bold white on dark_orange",
                  "SEV3": "bold black on yellow", "SEV4": "bold black on cyan"}


class IncidentHeader(Static):
    """Title, severity, commander, and elapsed time since detection (ticks every second)."""

    DEFAULT_CSS = """
    IncidentHeader { height: 1; background: $panel; color: $text; }
    """

    def __init__(self) -> None:
        super().__init__("")
        self.state: IncidentState | None = None

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh_text)

    def show(self, state: IncidentState) -> None:
        self.state = state
        self.refresh_text()

    def refresh_text(self) -> None:
        state = self.state
        if state is None:
            return
        since = state.detected_at or state.opened_at
        end = state.resolved_at or datetime.now(UTC)
        clock = format_duration(end - since) if since else "-"
        text = Text()
        if state.drill:
            text.append(" DRILL ", style="bold white on magenta")
            text.append(" ")
        text.append(f" {state.severity} ", style=SEVERITY_STYLE.get(state.severity, "reverse"))
        text.append(f" {clean_line(state.title)} ", style="bold")
        text.append(f"IC {state.commander or '—'} ", style="dim")
        status = "" if str(state.status) == "open" else f"[{state.status}] "
        text.append(f"{status}⏱ {clock}", style="bold")
        self.update(text, layout=False)  # one line, always: no relayout every tick
