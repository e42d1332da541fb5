"""Open incidents to resume, recent closed ones, and a way to start a new one."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

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
        Binding("slash", "filter", "Filter"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, store: IncidentStore) -> None:
        super().__init__()
        self.store = store
        self.ids: list[str] = []
        self.states: list[IncidentState] = []

    def compose(self) -> ComposeResult:
        yield Static(Text(" runbook — incidents", style="bold"), id="home-title")
        yield DataTable(id="incidents", cursor_type="row", zebra_stripes=True)
        yield Input(placeholder="filter: title, id, playbook or host; Esc clears",
                    id="home-filter")
        yield Static("", id="home-hint")
        yield KeyBar()

    def action_move(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.focus()
        (table.action_cursor_down if step > 0 else table.action_cursor_up)()

    def action_filter(self) -> None:
        line = self.query_one("#home-filter", Input)
        line.display = True
        self.set_focus(line)

    def action_clear_filter(self) -> None:
        line = self.query_one("#home-filter", Input)
        line.value = ""
        line.display = False
        self.query_one(DataTable).focus()

    @on(Input.Changed, "#home-filter")
    def _filter_changed(self) -> None:
        self.show(self.states)

    @on(Input.Submitted, "#home-filter")
    def _filter_kept(self) -> None:
        self.query_one(DataTable).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return self.query_one("#home-filter", Input).display
        return True

    def on_mount(self) -> None:
        self.query_one("#home-filter", Input).display = False
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
        self.states = states
        needle = self.query_one("#home-filter", Input).value.strip().casefold()
        if needle:
            states = [s for s in states if needle in " ".join(
                [s.id, s.title, s.playbook_name, *(h.name for h in s.hosts)]).casefold()]
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
        hint.update("No incident matches the filter (Esc clears it)." if needle and not states
                    else "No incidents yet. Press n to open one." if not states else
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
