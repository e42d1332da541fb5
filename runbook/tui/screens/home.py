"""Open incidents to resume, recent closed ones, and a way to start a new one."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from runbook.bugs import log_exception
from runbook.incident import IncidentState
from runbook.incident.store import IncidentStore
from runbook.sanitize import clean_line
from runbook.tui.widgets.incident_header import SEVERITY_STYLE
from runbook.tui.widgets.key_bar import KeyBar


class HomeScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "open", "Open", show=True),
        Binding("n", "new", "New incident"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self, store: IncidentStore) -> None:
        super().__init__()
        self.store = store
        self.ids: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(" runbook — incidents", style="bold"), id="home-title")
        yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
        yield Static("", id="home-hint")
        yield KeyBar()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("status", "sev", "title", "playbook", "hosts", "opened", "done")
        self.action_refresh()
        # Incidents opened elsewhere (an alert through `runbook listen`, a colleague's
        # CLI) appear without a keypress.
        self.set_interval(5.0, self.action_refresh)

    def on_screen_resume(self) -> None:
        self.action_refresh()

    @work(thread=True, exclusive=True, group="home")
    def action_refresh(self) -> None:
        try:
            states = self.store.all()
        except Exception:  # noqa: BLE001
            log_exception("home refresh")
            states = []
        self.app.call_from_thread(self.show, states)

    def show(self, states: list[IncidentState]) -> None:
        never = datetime.min.replace(tzinfo=UTC)
        open_first = sorted(states, key=lambda s: (str(s.status) == "closed",
                                                   -(s.last_activity or never).timestamp()))
        table = self.query_one(DataTable)
        keep = self.ids[table.cursor_row] if 0 <= table.cursor_row < len(self.ids) else None
        table.clear()
        self.ids = []
        for state in open_first[:200]:
            done, total = state.progress
            status_style = {"open": "bold red", "resolved": "green"}.get(str(state.status), "dim")
            hosts = ", ".join(h.name for h in state.hosts[:2]) + (
                f" +{len(state.hosts) - 2}" if len(state.hosts) > 2 else "")
            opened = state.opened_at.astimezone().strftime("%m-%d %H:%M") if state.opened_at \
                else "-"
            table.add_row(Text(str(state.status), style=status_style),
                          Text(state.severity, style=SEVERITY_STYLE.get(state.severity, "")),
                          Text(("DRILL " if state.drill else "") + clean_line(state.title)),
                          state.playbook_name, hosts, opened, f"{done}/{total}",
                          key=state.id)
            self.ids.append(state.id)
        if keep in self.ids:
            table.move_cursor(row=self.ids.index(keep))
        hint = self.query_one("#home-hint", Static)
        hint.update("No incidents yet. Press n to open one." if not states else
                    "Enter opens the highlighted incident; n starts a new one.")
        if self.focused is None:
            table.focus()

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if self.ids and 0 <= table.cursor_row < len(self.ids):
            self.app.open_incident(self.ids[table.cursor_row])  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.app.open_incident(str(event.row_key.value))  # type: ignore[attr-defined]

    def action_new(self) -> None:
        self.app.action_new_incident()  # type: ignore[attr-defined]
