"""Every journal event, in order: UTC with the local time beside it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from textual.message import Message

from runbook.incident import IncidentState, summarize
from runbook.incident.journal import Event
from runbook.sanitize import clean_line, clean_text
from runbook.tui.widgets.row_table import Column, RowTable


class TimelinePanel(RowTable):
    """Appends the events it has not shown yet; the cursor follows the newest
    unless the operator has moved it up to read. Enter opens an event in full."""

    @dataclass
    class Open(Message):
        title: str
        text: str

    def __init__(self) -> None:
        super().__init__([Column("time (UTC · local)", 18), Column("who", 12), Column("what")],
                         id="timeline")
        self._events: list[Event] = []  # the ones shown, row for row

    def show(self, state: IncidentState) -> None:
        new = state.events[len(self._events):]
        if not new:
            return
        rows = []
        for event in new:
            local = event.ts.astimezone()
            rows.append(((f"{event.ts:%H:%M:%S} · {local:%H:%M}", "dim"),
                         (event.actor.split("@")[0], ""), (clean_line(summarize(event)), "")))
        self.append_rows(rows, follow=True)
        self._events.extend(new)

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        if 0 <= event.index < len(self._events):
            event.stop()
            shown = self._events[event.index]
            # Every field, as journalled; what a host or a paste put there is
            # stripped of terminal controls like everything else on screen.
            detail = json.dumps(shown.data, indent=2, ensure_ascii=False, default=str)
            self.post_message(self.Open(
                clean_line(f"{shown.ts:%Y-%m-%d %H:%M:%S}Z · {shown.actor} · {shown.type}"),
                clean_text(f"{summarize(shown)}\n\n{detail}")))
