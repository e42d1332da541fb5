"""The incident: stages on the left, the selected step, hosts, findings and
timeline on the right, a note line at the bottom. Every action is an intent
run in a worker; the screen re-renders from the journal's fold."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Static, TabbedContent, TabPane, Tabs

from runbook.bugs import log_exception, report_bug
from runbook.collection.worker import SpareWorker
from runbook.errors import RunbookError
from runbook.incident import IncidentState, Status
from runbook.incident.store import Incident, IncidentStore
from runbook.tui.messages import (
    ActionFailed,
    CollectionDone,
    CollectorProgress,
    HostProgress,
    JournalRead,
)
from runbook.tui.screens.prompts import ChoicePrompt, TextPrompt, TextViewer
from runbook.tui.widgets.hosts_panel import FindingsPanel, HostsPanel
from runbook.tui.widgets.incident_header import IncidentHeader
from runbook.tui.widgets.key_bar import KeyBar
from runbook.tui.widgets.row_table import RowTable
from runbook.tui.widgets.stage_list import StageList
from runbook.tui.widgets.step_view import StepView
from runbook.tui.widgets.timeline import TimelinePanel
from runbook.tui.widgets.use_panel import UsePanel

POLL_SECONDS = 2.0


class IncidentScreen(Screen[None]):
    BINDINGS = [
        Binding("d", "done", "Done", tooltip="mark the step done"),
        Binding("s", "skip", "Skip", tooltip="skip the step (asks why)"),
        # The step's own action: only the one that fits the selected step shows.
        Binding("a", "answer", "Answer", tooltip="answer a question step"),
        Binding("r", "collect", "Run", tooltip="run a collect step's collectors on its hosts"),
        Binding("e", "announce", "Announce", tooltip="edit and send an announcement"),
        Binding("x", "remediate", "Fix",
                tooltip="review and run a remediation (reviewer, typed phrase)"),
        Binding("c", "cancel_collection", "Cancel run",
                tooltip="stop the collection; its commands stop on the hosts"),
        Binding("n", "note", "Note", tooltip="write a note into the timeline"),
        # The incident's lifecycle, as `runbook resolve/reopen/close/severity/role`.
        Binding("R", "resolve", "Resolve", tooltip="the impact is over (asks for a summary)"),
        Binding("O", "reopen", "Reopen", tooltip="it is back (asks why)"),
        Binding("C", "close_incident", "Close", tooltip="close and file in the history"),
        Binding("S", "severity", "Sev", tooltip="change the severity"),
        Binding("o", "role", "Roles", tooltip="assign the commander, scribe, ..."),
        Binding("exclamation_mark", "shell", "Shell on host", show=False,
                tooltip="ssh to the host as runbook does; exit to come back"),
        Binding("1", "tab('step')", "Step", show=False),
        Binding("2", "tab('hosts')", "Hosts", show=False),
        Binding("3", "tab('findings')", "Findings", show=False),
        Binding("4", "tab('timeline')", "Timeline", show=False),
        Binding("5", "tab('use')", "USE", show=False),
        Binding("p", "report", "Postmortem", show=False,
                tooltip="preview, then w writes postmortem.md"),
        Binding("slash", "filter", "Filter", show=False,
                tooltip="narrow the table shown; Esc clears"),
        # Whatever has focus (a hidden tab's table, nothing after a run), j and k
        # move something: the focused list, else the steps.
        Binding("j,down", "move(1)", "Down", show=False),
        Binding("k,up", "move(-1)", "Up", show=False),
        Binding("escape", "home", "Back"),
    ]
    # The action each kind of step offers (others are hidden while it is selected).
    STEP_ACTIONS = {"answer": "question", "collect": "collect", "announce": "announce",
                    "remediate": "remediate"}

    def __init__(self, store: IncidentStore, incident_id: str) -> None:
        super().__init__()
        self.store = store
        self.incident = Incident(store, incident_id)
        self.follower = store.follow(incident_id)
        self.state: IncidentState | None = None
        self.selected: str | None = None
        self.collecting = False
        self._similar: list[dict[str, Any]] | None = None
        self._step_view_stale = False
        self._peers_seen = -1
        self.workers_ready = SpareWorker()

    def compose(self) -> ComposeResult:
        yield IncidentHeader()
        with Horizontal(id="incident-body"):
            yield StageList()
            with TabbedContent(id="tabs", initial="step"):
                with TabPane("Step", id="step"):
                    yield StepView()
                # Under each table, its selected row in full: at 80 columns a
                # finding's text or a host's reason gets a few cells in the table.
                with TabPane("Hosts", id="hosts-tab"):
                    yield HostsPanel()
                    yield Static("", id="hosts-detail", classes="row-detail", markup=False)
                with TabPane("Findings", id="findings-tab"):
                    yield FindingsPanel()
                    yield Static("", id="findings-detail", classes="row-detail",
                                 markup=False)
                with TabPane("Timeline", id="timeline-tab"):
                    yield TimelinePanel()
                    yield Static("", id="timeline-detail", classes="row-detail",
                                 markup=False)
                with TabPane("USE", id="use-tab"):
                    yield UsePanel()
                    yield Static("", id="use-detail", classes="row-detail", markup=False)
        yield Input(placeholder="n: note for the timeline, Enter to record, Esc to leave",
                    id="note")
        yield Input(placeholder="filter the table: type to narrow, Enter keeps, Esc clears",
                    id="filter")
        yield KeyBar()

    def on_mount(self) -> None:
        # 1-5 switch tabs; Tab goes from the stage list straight into the table shown.
        self.query_one(Tabs).can_focus = False
        self.query_one("#filter", Input).display = False
        self.reload()
        self.prepare_worker()
        self.set_interval(POLL_SECONDS, self.poll_journal)

    # -- loading ----------------------------------------------------------------

    @work(thread=True, group="load")
    def reload(self) -> None:
        """Read what was appended to the journal since the last read (the whole of
        it the first time); the fold happens on the screen's thread, which owns
        the state. A read that another overtook is dropped there."""
        try:
            replay = self.follower.fetch()
        except Exception:  # noqa: BLE001 - keep the screen alive; the journal is intact
            log_exception("reload")
            return
        self.post_message(JournalRead(replay))

    @work(thread=True, exclusive=True, group="poll")
    def poll_journal(self) -> None:
        """Pick up events other processes appended: the CLI, a listener, and our own
        collection's child, whose findings show as each collector finishes. Each
        poll reads only what is new."""
        try:
            size = self.incident.journal.path.stat().st_size
        except OSError:
            return
        if size != self.follower.end:
            self.reload()

    def on_journal_read(self, message: JournalRead) -> None:
        first = self.state is None
        if not self.follower.apply(message.replay):
            if message.replay.end > self.follower.end:
                self.reload()  # overtaken by a read that ended earlier: read the rest
            if not first:
                return
        self._show_state(self.follower.state, first)

    def _show_state(self, state: IncidentState, first: bool) -> None:
        self.state = state
        if first or self.selected not in state.steps:
            current = state.current_step
            self.selected = current.step.id if current else next(iter(state.steps), None)
        self.query_one(IncidentHeader).show(state)
        self.refresh_bindings()  # the status or the step may have changed what is possible
        stages = self.query_one(StageList)
        stages.show(state)
        if first and self.selected:
            stages.select_step(self.selected)
            stages.focus()
        if first:
            self.call_after_refresh(self.app.freeze_startup_objects)  # type: ignore[attr-defined]
        self._show_step()
        self.query_one(HostsPanel).show(state)
        self.query_one(FindingsPanel).show(state)
        self.query_one(TimelinePanel).show(state)
        if len(state.evidence) != self._peers_seen:
            self._peers_seen = len(state.evidence)
            self.compare_peers(state)

    @work(thread=True, exclusive=True, group="peers")
    def compare_peers(self, state: IncidentState) -> None:
        """Hosts against their peers (runbook.peers) and each host's USE summary
        (runbook.use): they read the df captures, so off the screen's thread, and
        again only when new evidence came in."""
        from runbook.peers import peer_findings
        from runbook.use import use_summaries

        directory = self.store.directory(self.incident.id)
        try:
            found = peer_findings(state, directory)
            summaries = use_summaries(state, directory, found)
        except Exception:  # noqa: BLE001 - the findings and USE tabs work without them
            log_exception("peer comparison and USE summary")
            return
        self.app.call_from_thread(self.query_one(FindingsPanel).show_peers, found)
        self.app.call_from_thread(self.query_one(UsePanel).show, summaries)

    # -- intents ------------------------------------------------------------------

    def _intent(self, work_fn: Callable[[], Any], done: str | None = None) -> None:
        """Run one core operation in a thread; refusals are shown, bugs logged."""

        def run() -> None:
            try:
                work_fn()
            except RunbookError as exc:
                self.post_message(ActionFailed(exc.message, exc.hint))
                return
            except Exception:  # noqa: BLE001
                bug = report_bug("tui intent")
                self.post_message(ActionFailed(bug.message, bug.hint))
                return
            if done:
                self.app.call_from_thread(self.notify, done, timeout=2)
            self.app.call_from_thread(self.reload)

        self.run_worker(run, thread=True, group="intent")

    def on_action_failed(self, message: ActionFailed) -> None:
        text = message.message + (f"\n{message.hint}" if message.hint else "")
        self.notify(text, severity="error", timeout=8)
        self.refresh_bindings()  # a failed collection: no run to cancel any more

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer shows what can be done now: the selected step's own action,
        "Cancel run" while a run is on, and the lifecycle moves the status allows."""
        if action == "cancel_collection":
            return self.collecting
        if action in self.STEP_ACTIONS:
            step = self._selected_step()
            return step is not None and step.step.kind == self.STEP_ACTIONS[action] \
                and not (action == "collect" and self.collecting)
        status = self.state.status if self.state is not None else None
        if action == "resolve":
            return status == Status.OPEN
        if action == "reopen":
            return status in (Status.RESOLVED, Status.CLOSED)
        if action == "close_incident":
            return status == Status.RESOLVED
        if action in ("severity", "role"):
            return status in (Status.OPEN, Status.RESOLVED)
        return True

    @property
    def actor(self) -> str:
        return getattr(self.app, "actor", "operator")

    def _selected_step(self) -> Any | None:
        if self.state is None or self.selected is None:
            return None
        return self.state.steps.get(self.selected)

    @on(StageList.StepChosen)
    def step_chosen(self, message: StageList.StepChosen) -> None:
        self.selected = message.step_id
        self._show_step()
        self.refresh_bindings()

    # -- the incident's lifecycle ------------------------------------------------------

    def action_resolve(self) -> None:
        def resolve(summary: str | None) -> None:
            if summary:
                self._intent(lambda: self.incident.resolve(self.actor, summary),
                             "resolved: the resolved notice can go out now")

        self.app.push_screen(TextPrompt(
            "Resolve the incident: what fixed it, in a line?",
            "the summary goes into the timeline and the postmortem"), resolve)

    def action_reopen(self) -> None:
        def reopen(reason: str | None) -> None:
            if reason:
                self._intent(lambda: self.incident.reopen(self.actor, reason), "reopened")

        self.app.push_screen(TextPrompt("Reopen the incident: why?",
                                        "the reason goes into the timeline"), reopen)

    def action_close_incident(self) -> None:
        from runbook.report.archive import close

        def confirm(choice: str | None) -> None:
            if choice == "close":
                self._intent(lambda: close(self.incident, self.actor),
                             "closed, and filed in the history")

        self.app.push_screen(ChoicePrompt(
            "Close the incident? Nothing more can be recorded until it is reopened.",
            [("close", "Close it"), ("keep", "Keep it resolved")]), confirm)

    def action_severity(self) -> None:
        from runbook.playbook import Severity

        current = self.state.severity if self.state is not None else ""

        def chosen(level: str | None) -> None:
            if not level or level == current:
                return

            def why(reason: str | None) -> None:
                self._intent(lambda: self.incident.set_severity(level, self.actor,
                                                                reason or None),
                             f"severity {level}")

            self.app.push_screen(TextPrompt(f"Why {level}? (optional)", required=False), why)

        self.app.push_screen(ChoicePrompt(
            f"Severity (now {current}):",
            [(str(s), str(s) + (" (now)" if s == current else "")) for s in Severity]),
            chosen)

    def action_role(self) -> None:
        from runbook.incident.store import ROLES

        roles = self.state.roles if self.state is not None else {}

        def chosen(role: str | None) -> None:
            if not role:
                return

            def named(name: str | None) -> None:
                if name:
                    self._intent(lambda: self.incident.assign_role(role, name, self.actor),
                                 f"{role}: {name}")

            self.app.push_screen(TextPrompt(f"Who is the {role}?", roles.get(role, "")),
                                 named)

        self.app.push_screen(ChoicePrompt(
            "Assign a role:",
            [(r, f"{r}: {roles[r]}" if r in roles else f"{r}: nobody") for r in ROLES]),
            chosen)

    def _show_step(self) -> None:
        """The step view follows the selection while its tab is shown. Behind another
        tab it is brought up to date when its tab comes back: updating it hidden
        still cost a relayout of the visible tab on every j/k."""
        if self.state is None:
            return
        if self.query_one(TabbedContent).active != "step":
            self._step_view_stale = True
            return
        self._step_view_stale = False
        self.query_one(StepView).show(self.state, self.selected)
        self._show_similar()

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if self._step_view_stale and event.pane.id == "step":
            self._show_step()

    def _show_similar(self) -> None:
        step = self._selected_step()
        stage = step.stage if step is not None else None
        if stage == "scope" and self._similar is None:
            self.find_similar()
        self.query_one(StepView).show_similar(stage, self._similar or [])

    @work(thread=True, exclusive=True, group="similar")
    def find_similar(self) -> None:
        """Ask the archive once per screen; the scope stage shows the answer."""
        from runbook.report.archive import similar

        try:
            assert self.state is not None
            self._similar = similar(self.state)
        except Exception:  # noqa: BLE001 - a broken archive must not break the incident
            log_exception("similar incidents")
            self._similar = []
        self.app.call_from_thread(self._show_similar)

    def action_done(self) -> None:
        step = self._selected_step()
        if step is None:
            return
        if step.step.kind == "question" and not step.answer:
            self.notify("Answer it (a) or skip it (s).", severity="warning")
            return
        if step.step.kind == "remediate" and not self._executed(step.step.id):
            self.notify("Review and run it (x), or skip it with a reason (s).",
                        severity="warning")
            return
        step_id = step.step.id
        self._intent(lambda: self.incident.complete_step(step_id, self.actor),
                     f"{step_id}: done")
        self._advance_after(step_id)

    def _executed(self, step_id: str) -> bool:
        assert self.state is not None
        return any(c.step == step_id and c.results for c in self.state.commands.values())

    def _advance_after(self, step_id: str) -> None:
        """Move the selection to the next unfinished step, as the operator would."""
        if self.state is None:
            return
        ids = list(self.state.steps)
        later = ids[ids.index(step_id) + 1:] if step_id in ids else []
        upcoming = next((i for i in later if not self.state.steps[i].finished), None)
        if upcoming:
            self.selected = upcoming
            self.query_one(StageList).select_step(upcoming)

    def action_skip(self) -> None:
        step = self._selected_step()
        if step is None:
            return
        step_id = step.step.id

        def skip(reason: str | None) -> None:
            if reason:
                self._intent(lambda: self.incident.skip_step(step_id, reason, self.actor),
                             f"{step_id}: skipped")
                self._advance_after(step_id)

        self.app.push_screen(TextPrompt(f"Why skip “{step.step.title}”?",
                                        "the reason goes into the timeline and the report"),
                             skip)

    def action_answer(self) -> None:
        step = self._selected_step()
        if step is not None and step.step.kind == "question":
            self.query_one(TabbedContent).active = "step"
            self._show_step()
            self.query_one(StepView).focus_answer()
        else:
            self.notify("This step is not a question.", severity="warning")

    @on(StepView.Answered)
    def answered(self, message: StepView.Answered) -> None:
        step_id, text = message.step_id, message.text
        self._intent(lambda: self.incident.answer(step_id, text, self.actor),
                     f"{step_id}: answer recorded")
        self._advance_after(step_id)
        self.query_one(StageList).focus()

    def action_note(self) -> None:
        # Focus now, not on the next refresh (what .focus() does): keys typed right
        # after `n` (a paste, a laggy SSH session) must land in the note, not be
        # taken as commands.
        self.set_focus(self.query_one("#note", Input))

    @on(Input.Submitted, "#note")
    def note_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        if text:
            self._intent(lambda: self.incident.note(text, self.actor), "note recorded")
        self.query_one(StageList).focus()

    def action_tab(self, tab: str) -> None:
        pane = {"hosts": "hosts-tab", "findings": "findings-tab",
                "timeline": "timeline-tab", "use": "use-tab"}.get(tab, tab)
        self.query_one(TabbedContent).active = pane
        if self._step_view_stale and tab == "step":
            self._show_step()  # in this frame, not after the TabActivated round trip
        table = self._table_in_front()
        if isinstance(self.focused, RowTable) and self.focused is not table:
            # The table that had focus is hidden now: the keys go where the eyes are.
            (table or self.query_one(StageList)).focus()

    def _table_in_front(self) -> RowTable | None:
        pane = self.query_one(TabbedContent).active
        return {"hosts-tab": self.query_one(HostsPanel),
                "findings-tab": self.query_one(FindingsPanel),
                "timeline-tab": self.query_one(TimelinePanel),
                "use-tab": self.query_one(UsePanel)}.get(pane)

    @on(RowTable.Highlighted)
    def row_highlighted(self, message: RowTable.Highlighted) -> None:
        detail = self.query_one(f"#{message.table.id}-detail", Static)
        detail.update(message.table.describe(message.index)
                      if message.index is not None else "")

    # -- a shell on a host ------------------------------------------------------------

    def action_shell(self) -> None:
        """! : ssh to the host under the Hosts tab's cursor (or the only host, or
        one picked), in this terminal; the app comes back where it was."""
        if self.state is None or not self.state.hosts:
            self.notify("This incident has no hosts yet.", severity="warning")
            return
        names = [h.name for h in self.state.hosts]
        hosts = self.query_one(HostsPanel)
        if self.query_one(TabbedContent).active == "hosts-tab" and \
                hosts.cursor_source_index is not None:
            self._shell_mode(names[hosts.cursor_source_index])
        elif len(names) == 1:
            self._shell_mode(names[0])
        else:
            self.app.push_screen(ChoicePrompt("A shell on which host?",
                                              [(n, n) for n in names]),
                                 lambda name: self._shell_mode(name) if name else None)

    def _shell_mode(self, host: str) -> None:
        self.app.push_screen(ChoicePrompt(
            f"ssh to {host}, as runbook connects to it. Exit the shell to come back.",
            [("plain", "Open the shell (its start and end go in the timeline)"),
             ("capture", "Open it and record everything shown (script(1), kept as "
                         "evidence)")]),
            lambda mode: self._open_shell(host, mode == "capture") if mode else None)

    def _open_shell(self, host: str, capture: bool) -> None:
        from runbook.host_shell import open_shell

        try:
            with self.app.suspend():
                session = open_shell(self.incident, host, self.actor, self.app.connect,
                                     capture=capture)
        except RunbookError as exc:
            self.notify(exc.message + (f"\n{exc.hint}" if exc.hint else ""),
                        severity="error", timeout=8)
            self.reload()
            return
        except Exception:  # noqa: BLE001
            bug = report_bug("shell on host")
            self.notify(f"{bug.message}\n{bug.hint}", severity="error", timeout=8)
            self.reload()
            return
        self.notify(f"Back from {host}: exit {session.exit_status}"
                    + (f"; recorded to {session.capture}" if session.capture else ""),
                    timeout=6)
        self.reload()

    def action_move(self, step: int) -> None:
        """j/k when the focused widget does not take them itself."""
        stages = self.query_one(StageList)
        if not stages.has_focus:
            stages.focus()
        (stages.action_cursor_down if step > 0 else stages.action_cursor_up)()

    def action_filter(self) -> None:
        table = self._table_in_front()
        if table is None:
            self.notify("/ filters the tables: 2 hosts, 3 findings, 4 timeline, 5 USE.", timeout=4)
            return
        line = self.query_one("#filter", Input)
        line.display = True
        line.value = table.filter_text
        self.set_focus(line)

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        table = self._table_in_front()
        if table is not None:
            table.set_filter(event.value.strip())

    @on(Input.Submitted, "#filter")
    def filter_kept(self, event: Input.Submitted) -> None:
        table = self._table_in_front()
        event.input.display = bool(event.value.strip())
        (table or self.query_one(StageList)).focus()

    def _clear_filter(self) -> None:
        line = self.query_one("#filter", Input)
        line.value = ""
        line.display = False
        for table in self.query(RowTable):
            table.set_filter("")

    def action_home(self) -> None:
        if self.focused is not None and self.focused.id == "filter":
            self._clear_filter()
            (self._table_in_front() or self.query_one(StageList)).focus()
            return
        if self.focused is not None and self.focused.id in ("note", "answer"):
            self.query_one(StageList).focus()
            return
        self.app.action_home()  # type: ignore[attr-defined]

    # -- collection ----------------------------------------------------------------

    def action_collect(self) -> None:
        step = self._selected_step()
        if step is None or step.step.kind != "collect":
            self.notify("Select a collect step to run its collectors.", severity="warning")
            return
        if self.collecting:
            self.notify("A collection is already running.", severity="warning")
            return
        self.collecting = True
        self.refresh_bindings()
        self.query_one(TabbedContent).active = "hosts-tab"
        self.run_collection(step.step)

    def action_cancel_collection(self) -> None:
        """Stop the run: the worker stops the commands still running on the hosts
        (as a timeout would) and ends with what was collected, all of it recorded."""
        child = getattr(self, "_child", None)
        if not self.collecting or child is None or child.poll() is not None:
            return
        child.terminate()
        self.notify("Stopping the collection; what was collected is kept.", timeout=4)

    @work(thread=True, exclusive=True, group="collect")
    def run_collection(self, step: Any) -> None:
        """Collect in a child process (runbook.collection.worker): the SSH work never
        competes with the screen for the interpreter lock. Progress arrives as
        JSON lines; the evidence goes into the journal as usual."""
        from runbook.collection.collect import CollectRequest

        # The step's selector goes to the worker as it is: it picks among the
        # incident's journalled hosts there (port, user and jump as recorded), and
        # one that picks none is an error, never every host.
        request = CollectRequest(
            hosts=[step.hosts or "all"], add_hosts=False, incident_id=self.incident.id,
            bundle=step.bundle, collectors=list(step.collectors), actor=self.actor,
            step=step.id, app_logs=list(getattr(step, "app_logs", [])),
            connect=self.app.connect)
        try:
            child = self.workers_ready.start(request, self.store.root)
        except OSError as exc:
            self._collection_failed(f"cannot start the collection: {exc.strerror}", None)
            return
        self._child = child
        summary: dict[str, Any] | None = None
        assert child.stdout is not None
        for line in child.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "plan" in record:
                self.app.call_from_thread(self.query_one(HostsPanel).start_run,
                                          record["plan"]["hosts"])
            elif "collector" in record:
                self.post_message(CollectorProgress(
                    record["host"], record["collector"], record["status"], record.get("detail")))
            elif "state" in record:
                self.post_message(HostProgress(
                    record["host"], record["state"], record.get("message")))
            elif "error" in record:
                self._collection_failed(record["error"], record.get("hint"))
            elif record.get("done"):
                summary = record
        child.wait()
        self._child = None
        with contextlib.suppress(OSError):
            self.workers_ready.prepare()  # the next collection starts warm too
        if summary is None:
            if child.returncode == 0 or child.returncode < 0:
                self._collection_failed("the collection stopped early; what it collected is "
                                        "recorded", None)
            self.collecting = False
            return
        self.post_message(CollectionDone(step.id, summary))

    def _collection_failed(self, message: str, hint: str | None) -> None:
        self.post_message(ActionFailed(message, hint))
        self.collecting = False

    @work(thread=True, exclusive=True, group="spare")
    def prepare_worker(self) -> None:
        with contextlib.suppress(OSError):  # then it starts when needed, and says why
            self.workers_ready.prepare()

    def on_unmount(self) -> None:
        self.workers_ready.close()
        child = getattr(self, "_child", None)
        if child is not None and child.poll() is None:
            child.terminate()

    def on_host_progress(self, message: HostProgress) -> None:
        self.query_one(HostsPanel).host_changed(message.host, message.state, message.message)

    def on_collector_progress(self, message: CollectorProgress) -> None:
        self.query_one(HostsPanel).collector_changed(message.host, message.collector,
                                                     message.status)


    def on_collection_done(self, message: CollectionDone) -> None:
        self.collecting = False
        self.refresh_bindings()
        summary = message.summary
        answered, total, notable = summary["answered"], summary["hosts"], summary["notable"]
        ended = "cancelled" if summary.get("cancelled") else "finished"
        self.notify(f"Collection {ended}: {answered}/{total} hosts answered, "
                    f"{notable} finding(s).", timeout=6,
                    severity="information" if summary["all_answered"] else "warning")
        if notable:
            self.query_one(TabbedContent).active = "findings-tab"
        if summary["all_answered"] and message.step and not summary.get("cancelled"):
            # The evidence is in; the step is done. Re-running it stays possible.
            step_id = message.step
            comment = f"collected on {answered} host(s): {notable} finding(s)"
            self._intent(lambda: self._complete_if_open(step_id, comment))
            if self.selected == step_id:
                self._advance_after(step_id)
        else:
            self.reload()

    # -- evidence ------------------------------------------------------------------

    @on(FindingsPanel.Open)
    def open_finding(self, message: FindingsPanel.Open) -> None:
        from runbook.tui.screens.evidence import EvidenceScreen

        path = self.store.directory(self.incident.id) / message.evidence_path
        same_file = [f for f, p in self.query_one(FindingsPanel).finding_rows
                     if p == message.evidence_path]
        self.app.push_screen(EvidenceScreen(path, same_file, line=message.finding.line))

    @on(TimelinePanel.Open)
    def open_event(self, message: TimelinePanel.Open) -> None:
        self.app.push_screen(TextViewer(message.title, message.text))

    # -- later stages (announce, remediate, report) are their own screens --------

    def action_announce(self) -> None:
        step = self._selected_step()
        if step is None or step.step.kind != "announce":
            self.notify("Select an announce step.", severity="warning")
            return
        from runbook.tui.screens.announce import AnnounceScreen

        step_id = step.step.id

        def announced(sent: bool | None) -> None:
            if not sent:
                self.reload()
                return
            # Sent (or copied and recorded): what the step asked for is done.
            self._intent(lambda: self._complete_if_open(step_id, "announcement recorded"))
            self._advance_after(step_id)

        self.app.push_screen(AnnounceScreen(self.incident, step_id, self.actor), announced)

    def _complete_if_open(self, step_id: str, comment: str) -> None:
        """Done, unless the operator already ticked or skipped it."""
        step = self.incident.state().steps.get(step_id)
        if step is not None and not step.finished:
            self.incident.complete_step(step_id, self.actor, comment)

    def action_remediate(self) -> None:
        step = self._selected_step()
        if step is None or step.step.kind != "remediate":
            self.notify("Select a remediate step.", severity="warning")
            return
        from runbook.tui.screens.remediate import RemediateScreen

        step_id = step.step.id
        self.app.push_screen(RemediateScreen(self.incident, step_id, self.actor),
                             lambda done: self._came_back(step_id, bool(done)))

    def _came_back(self, step_id: str, step_done: bool) -> None:
        """From a screen whose action may have finished the step (a remediation that
        ran cleanly, a sent announcement): the cursor goes on to the next step."""
        if step_done:
            self._advance_after(step_id)
        self.reload()

    def action_report(self) -> None:
        from runbook.tui.screens.report import ReportScreen

        def written(done: bool | None) -> None:
            # Written: the step that asks for the postmortem is done.
            pending = [s.step.id for s in (self.state.steps.values() if self.state else [])
                       if s.step.kind == "report" and not s.finished]
            if not done or not pending:
                return
            step_id = pending[0]
            self._intent(lambda: self._complete_if_open(step_id, "postmortem written"))
            if self.selected == step_id:
                self._advance_after(step_id)

        self.app.push_screen(ReportScreen(self.incident), written)
