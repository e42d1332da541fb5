"""Every journal event, in order: UTC with the local time beside it."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from runbook.incident import IncidentState, summarize
from runbook.sanitize import clean_line


class TimelinePanel(DataTable[Text]):
    def __init__(self) -> None:
        super().__init__(id="timeline", cursor_type="row", zebra_stripes=True)
        self._shown = 0

    def on_mount(self) -> None:
        self.add_columns("time (UTC · local)", "who", "what")

    def show(self, state: IncidentState) -> None:
        if len(state.events) < self._shown:
            self.clear()
            self._shown = 0
        for event in state.events[self._shown:]:
            local = event.ts.astimezone()
            self.add_row(Text(f"{event.ts:%H:%M:%S} · {local:%H:%M}", style="dim"),
                         Text(event.actor.split("@")[0]), Text(clean_line(summarize(event))))
        if len(state.events) > self._shown:
            self.move_cursor(row=len(state.events) - 1)
        self._shown = len(state.events)
