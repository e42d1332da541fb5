"""The runbook app: resume the open incident, or pick or start one."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from runbook.bugs import log_exception, report_bug
from runbook.connect_settings import ConnectSettings
from runbook.errors import RunbookError
from runbook.incident.store import IncidentStore, default_actor
from runbook.tui.gc_pacing import GarbagePacer
from runbook.tui.screens.home import HomeScreen
from runbook.tui.screens.incident import IncidentScreen
from runbook.tui.screens.new_incident import NewIncidentRequest, NewIncidentScreen


class RunbookApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "runbook"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", show=False),
        Binding("q", "quit_asking", "Quit", show=False),
        Binding("ctrl+n", "new_incident", "New", show=False),
        Binding("ctrl+t", "toggle_theme", "Theme", show=False),
    ]

    def __init__(self, store: IncidentStore | None = None, incident_id: str | None = None,
                 actor: str | None = None, connect: ConnectSettings | None = None) -> None:
        super().__init__()
        self.store = store or IncidentStore()
        self.start_incident = incident_id
        self.actor = actor or default_actor()
        # How every collection and remediation started from the app reaches hosts.
        self.connect = connect or ConnectSettings()
        # Sliding tab underlines and the like cost frames and bytes over a slow SSH
        # link and tell the operator nothing; TEXTUAL_ANIMATIONS=full brings them back.
        if "TEXTUAL_ANIMATIONS" not in os.environ:
            self.animation_level = "none"
        self.garbage = GarbagePacer()

    def freeze_startup_objects(self) -> None:
        """The first incident is on screen: see runbook.tui.gc_pacing."""
        self.garbage.start()

    def on_mount(self) -> None:
        self.set_interval(3.0, self.garbage.tick)
        self.push_screen(HomeScreen(self.store))
        if self.start_incident:
            self.open_incident(self.start_incident)
        else:
            self.resume_last()

    @work(thread=True, exclusive=True, group="resume")
    def resume_last(self) -> None:
        """Pick up where the operator left off (IncidentStore.last_worked)."""
        try:
            latest = self.store.last_worked(self.actor)
        except Exception:  # noqa: BLE001 - the home screen still works
            log_exception("resume")
            return
        if latest is not None:
            self.call_from_thread(self.open_incident, latest.id)

    def open_incident(self, incident_id: str) -> None:
        try:
            resolved = self.store.resolve_id(incident_id)
        except RunbookError as exc:
            self.notify(exc.message, severity="error")
            return
        while isinstance(self.screen, IncidentScreen):
            self.pop_screen()
        self.push_screen(IncidentScreen(self.store, resolved))

    def on_unmount(self) -> None:
        self.garbage.stop()

    def action_home(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()
        if isinstance(self.screen, IncidentScreen):
            self.pop_screen()

    def action_new_incident(self) -> None:
        self.push_screen(NewIncidentScreen(self.connect), self._create_incident)

    def _create_incident(self, request: NewIncidentRequest | None) -> None:
        if request is not None:
            self.create_incident(request)

    @work(thread=True, group="create")
    def create_incident(self, request: NewIncidentRequest) -> None:
        from runbook.playbook import find_playbook

        try:
            playbook = find_playbook(request.playbook)
            hosts = self.connect.inventory().select(request.hosts)
            incident = self.store.create(playbook=playbook, hosts=hosts, title=request.title,
                                         severity=request.severity,
                                         commander=request.commander, actor=self.actor)
        except RunbookError as exc:
            self.call_from_thread(self.notify, exc.message + (f"\n{exc.hint}" if exc.hint
                                                              else ""), severity="error")
            return
        self.call_from_thread(self.open_incident, incident.id)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.garbage.key_pressed()
            event.sent_to = self.focused or self.screen  # type: ignore[attr-defined]
        await super().on_event(event)

    def on_key(self, event: events.Key) -> None:
        """Keys arriving in one burst (a paste, a laggy SSH link) are each sent to the
        widget focused when they arrive, before the first is handled. When a key of
        the burst moved focus (`n` to the note, `s` to a reason prompt), the rest of
        the burst comes back here unhandled from the old widget: send it on to the
        new one, Enter included, in order, so it lands where the operator typed it."""
        focused = self.focused
        sent_to = getattr(event, "sent_to", None)
        if focused is None or sent_to is None or sent_to is focused:
            return
        event.prevent_default()
        event.stop()
        again = events.Key(event.key, event.character)
        again.sent_to = focused  # type: ignore[attr-defined]
        focused._forward_event(again)  # as App.on_event delivers a key

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The command palette reaches every action of the screen in front that can
        be done now, with the key that does it, as well as Textual's own commands."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in [*screen.BINDINGS, *self.BINDINGS]:
            if not isinstance(binding, Binding) or binding.action in seen:
                continue
            seen.add(binding.action)
            target = screen if binding in screen.BINDINGS else self
            if target.check_action(binding.action.split("(")[0], ()) is False:
                continue  # not possible now (another step's action, a closed incident)
            key = binding.key.split(",")[0].replace("question_mark", "?")
            yield SystemCommand(f"{binding.description or binding.action} ({key})",
                                f"keyboard: {key}",
                                partial(target.run_action, binding.action))

    def action_quit_asking(self) -> None:
        """q quits at once, unless work is running on hosts: then it asks, and says
        what quitting does to that work."""
        from runbook.tui.screens.incident import IncidentScreen
        from runbook.tui.screens.prompts import ChoicePrompt
        from runbook.tui.screens.remediate import RemediateScreen

        running = [s for s in self.screen_stack
                   if (isinstance(s, IncidentScreen) and s.collecting)
                   or (isinstance(s, RemediateScreen) and s.running)]
        if not running:
            self.exit()
            return
        what = "a remediation" if isinstance(running[-1], RemediateScreen) else "a collection"

        def chosen(choice: str | None) -> None:
            if choice == "quit":
                self.exit()

        self.push_screen(ChoicePrompt(
            f"{what.capitalize()} is running. Quitting stops its commands on the hosts; "
            "what ran so far stays recorded.",
            [("stay", "Stay until it ends"), ("quit", "Quit anyway")]), chosen)

    def action_help(self) -> None:
        from runbook.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def _handle_exception(self, error: Exception) -> None:
        # Our bug, not the operator's: the traceback goes to the log file, the
        # journal is untouched (every event was fsync'd when it was written).
        bug = report_bug("tui crash", error=error, kept="the app closed; nothing recorded was lost")
        super()._handle_exception(error)
        self._exit_renderables.clear()
        self._exit_renderables.append(
            "\n".join(filter(None, (bug.message, bug.hint, "Run `runbook` again to resume."))))
