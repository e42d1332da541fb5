"""Open an incident: title, playbook, hosts from the inventory (with search),
severity and the incident commander."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, SelectionList

from runbook.bugs import log_exception
from runbook.connect_settings import ConnectSettings
from runbook.errors import RunbookError


@dataclass
class NewIncidentRequest:
    title: str
    playbook: str
    hosts: list[str]
    severity: str | None
    commander: str | None


class NewIncidentScreen(ModalScreen[NewIncidentRequest | None]):
    DEFAULT_CSS = """
    NewIncidentScreen { align: center middle; }
    NewIncidentScreen > VerticalScroll { width: 76; max-width: 100%; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1; }
    NewIncidentScreen Label { margin-top: 1; text-style: bold; }
    NewIncidentScreen SelectionList { height: 8; }
    NewIncidentScreen #buttons { height: 3; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "create", "Open")]

    def __init__(self, connect: ConnectSettings | None = None) -> None:
        super().__init__()
        self.connect = connect or ConnectSettings()
        self.host_names: list[str] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Label("Title: what is wrong, in a line")
            yield Input(placeholder="checkout returns 502 for some users", id="title")
            yield Label("Playbook")
            yield Select([], id="playbook", prompt="loading playbooks…")
            yield Label("Hosts (space toggles; type to filter; other hosts below)")
            yield Input(placeholder="filter: name, role:web, tag:eu …", id="host-filter")
            yield SelectionList[str](id="hosts")
            yield Input(placeholder="other hosts, space separated: db7 user@10.0.0.5:2222",
                        id="other-hosts")
            yield Label("Severity")
            yield Select([(f"SEV{n}", f"SEV{n}") for n in range(1, 5)], id="severity",
                         prompt="the playbook's default")
            yield Label("Incident commander")
            yield Input(placeholder="your name", id="commander")
            with Horizontal(id="buttons"):
                yield Button("Open incident (ctrl+s)", variant="primary", id="create")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.load_choices()
        self.query_one("#title", Input).focus()

    @work(thread=True)
    def load_choices(self) -> None:
        from runbook.playbook import load_all

        try:
            books = sorted(load_all().playbooks.values(), key=lambda b: b.playbook.name)
            inventory = self.connect.inventory()
            hosts = list(inventory.hosts.values())
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, exc.message, severity="error")
            books, hosts = [], []
        except Exception:  # noqa: BLE001
            log_exception("new incident choices")
            books, hosts = [], []
        self.app.call_from_thread(self._show_choices, books, hosts)

    def _show_choices(self, books: list, hosts: list) -> None:
        select = self.query_one("#playbook", Select)
        select.set_options([(f"{b.playbook.name} — {b.playbook.title}", b.playbook.name)
                            for b in books])
        if any(b.playbook.name == "generic-host" for b in books):
            select.value = "generic-host"
        self._hosts = hosts
        self._show_hosts("")

    def _show_hosts(self, query: str) -> None:
        hosts_list = self.query_one("#hosts", SelectionList)
        chosen = set(hosts_list.selected)
        hosts_list.clear_options()
        query = query.strip().lower()
        for host in getattr(self, "_hosts", []):
            label = f"{host.name}  {host.project or '-'}/{host.role or '-'} {' '.join(host.tags)}"
            if query and query not in label.lower() and not _selector_match(host, query):
                continue
            hosts_list.add_option((label, host.name, host.name in chosen))

    @on(Input.Changed, "#host-filter")
    def filter_hosts(self, event: Input.Changed) -> None:
        self._show_hosts(event.value)

    @on(Button.Pressed, "#create")
    def action_create(self) -> None:
        title = self.query_one("#title", Input).value.strip()
        playbook = self.query_one("#playbook", Select).value
        if not title:
            self.notify("A title is needed.", severity="warning")
            self.query_one("#title", Input).focus()
            return
        if playbook is Select.BLANK:
            self.notify("Pick a playbook.", severity="warning")
            return
        hosts = list(self.query_one("#hosts", SelectionList).selected)
        hosts += self.query_one("#other-hosts", Input).value.split()
        severity = self.query_one("#severity", Select).value
        commander = self.query_one("#commander", Input).value.strip() or None
        self.dismiss(NewIncidentRequest(
            title=title, playbook=str(playbook), hosts=hosts or ["localhost"],
            severity=None if severity is Select.BLANK else str(severity), commander=commander))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _selector_match(host, query: str) -> bool:  # noqa: ANN001
    kind, _, value = query.partition(":")
    return (kind == "role" and (host.role or "").lower() == value) or (
        kind == "tag" and value in [t.lower() for t in host.tags]) or (
        kind == "project" and (host.project or "").lower() == value)
