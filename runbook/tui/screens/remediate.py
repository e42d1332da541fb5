"""Review and run a remediation: the exact command on the exact hosts, a second
reviewer when the playbook asks, and a typed confirmation before anything runs.

Every field is labelled and stays on screen at 60×20: the plan scrolls, the
review and the confirmation do not. The reviewer field refuses the operator's
own name and the confirmation phrase (remediate.approve), so typing into the
wrong box cannot pass the review.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Label, Log, SelectionList, Static
from textual.widgets.selection_list import Selection

from runbook.bugs import internal_error
from runbook.errors import RunbookError
from runbook.incident import CommandState
from runbook.incident.store import Incident
from runbook.sanitize import clean_bytes, clean_line
from runbook.tui.widgets.key_bar import KeyBar


class RemediateScreen(Screen[bool]):
    """Dismissed with True when the step's command ran and the step is done."""

    DEFAULT_CSS = """
    RemediateScreen #title { height: 1; padding: 0 1; background: $boost; text-style: bold; }
    RemediateScreen #hosts-label, RemediateScreen .field-label { height: auto; padding: 0 1; }
    RemediateScreen #hosts { height: auto; max-height: 5; border: none; padding: 0 1; }
    RemediateScreen #plan { height: 1fr; min-height: 3; padding: 0 1; }
    RemediateScreen #form { height: auto; border-top: solid $primary-background; }
    RemediateScreen #form Input { height: 1; border: none; padding: 0 1; margin: 0 1;
                                  background: $boost; }
    RemediateScreen #form Input:focus { background: $accent 30%; }
    RemediateScreen #form Input:disabled { background: $panel; }
    RemediateScreen Log { height: 2fr; border-top: solid $primary-background; }
    """
    BINDINGS = [
        Binding("escape", "close", "Back (nothing runs)"),
        Binding("p", "plan", "Plan for ticked hosts"),
    ]

    def __init__(self, incident: Incident, step_id: str, actor: str) -> None:
        super().__init__()
        self.incident = incident
        self.step_id = step_id
        self.actor = actor
        self.command: CommandState | None = None
        self.expected = ""
        self.running = False
        self.step_done = False
        self.execution: Any = None  # remediate.Execution, while one runs

    def compose(self) -> ComposeResult:
        yield Static(f"Remediate: {self.step_id}", id="title", markup=False)
        yield Label("Hosts", id="hosts-label")
        yield SelectionList[str](id="hosts")
        with VerticalScroll(id="plan"):
            yield Static("Preparing the command…", id="summary")
        with Vertical(id="form"):
            yield Label("", id="reviewer-label", classes="field-label", markup=False)
            yield Input(placeholder="the reviewer's name, then Enter", id="reviewer")
            yield Label("", id="confirm-label", classes="field-label", markup=False)
            yield Input(placeholder="the phrase above, then Enter", id="confirm")
        yield Log(id="output", highlight=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#output", Log).display = False
        for widget in ("#form", "#hosts", "#hosts-label"):
            self.query_one(widget).display = False
        self.prepare()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "plan":
            # Inputs take the letter p as text.
            return not self.running and not isinstance(self.focused, Input)
        return True

    # -- the proposal -----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="prepare")
    def prepare(self, hosts: list[str] | None = None) -> None:
        """The step's open proposal, or a new one (rendered and journalled): for
        `hosts` when the operator narrowed them, else for the step's own targets."""
        from runbook.remediate import propose, step_targets

        try:
            state = self.incident.state()
            pending = [c for c in state.commands.values()
                       if c.step == self.step_id and not c.executed]
            if hosts is not None or not pending:
                propose(self.incident, self.step_id, self.actor, hosts)
                state = self.incident.state()
                pending = [c for c in state.commands.values()
                           if c.step == self.step_id and not c.executed]
            command = pending[-1]
            targets = step_targets(self.incident, self.step_id)
            everyone = [h.name for h in state.hosts]
            title = state.steps[self.step_id].step.title
        except RunbookError as exc:
            self.app.call_from_thread(self._refused, exc.message, exc.hint)
            return
        except Exception:  # noqa: BLE001
            self.app.call_from_thread(self._refused, internal_error("remediate prepare"), None)
            return
        self.app.call_from_thread(self._show_plan, command, targets, everyone, title)

    def _refused(self, message: str, hint: str | None) -> None:
        self.query_one("#summary", Static).update(
            Text(f"{message}\n{hint or ''}", style="bold red"))

    def _show_plan(self, command: CommandState, targets: list[str], everyone: list[str],
                   title: str) -> None:
        from runbook.remediate import (
            by_command,
            dry_run,
            expected_confirmation,
            review_satisfied,
        )

        self.command = command
        self.query_one("#title", Static).update(f"Remediate: {clean_line(title)}")
        self._show_hosts(command, targets, everyone)
        text = Text()
        text.append(f"Command {command.id}", style="bold")
        text.append(f", proposed by {command.proposed_by}. ")
        text.append(f"Runs on {len(command.hosts)} of {len(everyone)} hosts, exactly:\n",
                    style="bold")
        try:
            plan = dry_run(self.incident, command.id)
        except RunbookError as exc:
            plan = []
            text.append(f"  {exc.message}\n", style="red")
        for line, hosts in by_command(plan):
            text.append(f" on {', '.join(hosts)}:\n", style="cyan")
            text.append(f"   {clean_line(line)}\n")
        text.append("Rollback: ", style="bold")
        text.append(f"{clean_line(command.rollback or '') or '—'}")
        self.query_one("#summary", Static).update(text)
        self.expected = expected_confirmation(command)
        self._show_form(command, review_satisfied(command))

    def _show_hosts(self, command: CommandState, targets: list[str],
                    everyone: list[str]) -> None:
        """The incident's hosts, the planned ones ticked; hosts outside the step's
        own selector are listed, and cannot be ticked (a plan only narrows)."""
        listing = self.query_one("#hosts", SelectionList)
        listing.clear_options()
        listing.add_options([
            Selection(name if name in targets else f"{name} (not a target of this step)",
                      name, name in command.hosts, disabled=name not in targets)
            for name in everyone])
        shown = len(everyone) > 1
        listing.display = self.query_one("#hosts-label").display = shown
        self._count_ticked()

    @on(SelectionList.SelectedChanged, "#hosts")
    def _count_ticked(self) -> None:
        # Said in words too: a tick's colour may not survive the terminal.
        listing = self.query_one("#hosts", SelectionList)
        self.query_one("#hosts-label", Label).update(
            f"Hosts: {len(listing.selected)} of {listing.option_count} ticked "
            "(space ticks, p plans for them)")

    def _show_form(self, command: CommandState, reviewed: bool) -> None:
        self.query_one("#form").display = True
        reviewer = self.query_one("#reviewer", Input)
        confirm = self.query_one("#confirm", Input)
        label = self.query_one("#reviewer-label", Label)
        needs_review = command.review_required and not reviewed
        if not command.review_required:
            label.update("Review: not required by this step")
        elif reviewed:
            label.update(f"Reviewed by: {', '.join(command.approvals)}")
        else:
            label.update(f"Reviewer (a second person, not {self.actor}):")
        reviewer.display = needs_review
        self.query_one("#confirm-label", Label).update(Text.assemble(
            "To run it, type: ", (self.expected, "bold reverse"),
            " (after the review)" if needs_review else ""))
        confirm.disabled = needs_review or self.running
        if needs_review:
            reviewer.focus()
        elif not self.running:
            confirm.focus()

    def action_plan(self) -> None:
        if self.command is None or self.running:
            return
        ticked = list(self.query_one("#hosts", SelectionList).selected)
        if not ticked:
            self.notify("Tick at least one host (space).", severity="warning")
            return
        if set(ticked) == set(self.command.hosts):
            self.notify(f"Already planned for {', '.join(ticked)}.")
            return
        note = "; the review starts again" if self.command.review_required else ""
        self.notify(f"Planning for {len(ticked)} host(s){note}.", timeout=4)
        self.prepare(ticked)

    # -- review -----------------------------------------------------------------------

    @on(Input.Submitted, "#reviewer")
    def reviewed(self, event: Input.Submitted) -> None:
        name = event.value.strip()
        if not name or self.command is None:
            return
        self._approve(self.command.id, name)

    @work(thread=True, group="approve")
    def _approve(self, command_id: str, reviewer: str) -> None:
        from runbook.remediate import approve

        try:
            approve(self.incident, command_id, reviewer, self.actor, runner=self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self._review_refused, exc.message, exc.hint)
            return
        self.app.call_from_thread(self.notify, f"approved by {reviewer}")
        self.prepare()

    def _review_refused(self, message: str, hint: str | None) -> None:
        self.query_one("#reviewer", Input).value = ""
        self.notify(f"{message}\n{hint or ''}", severity="error", timeout=8)

    # -- confirmation and the run -------------------------------------------------------

    @on(Input.Submitted, "#confirm")
    def confirmed(self, event: Input.Submitted) -> None:
        from runbook.remediate import confirmation_matches

        if self.command is None or self.running:
            return
        if not confirmation_matches(event.value, self.command):
            self.notify(f"Not confirmed. Type exactly: {self.expected}", severity="warning")
            return
        event.input.disabled = True
        self.running = True
        self.refresh_bindings()
        self.query_one("#output", Log).display = True
        self._execute(self.command.id, event.value)

    @work(thread=True, exclusive=True, group="execute")
    def _execute(self, command_id: str, typed: str) -> None:
        from runbook.remediate import Execution

        log = self.query_one("#output", Log)

        def show(host: str, stream: str, data: bytes) -> None:
            marker = "|" if stream == "stdout" else "!"
            lines = [f"{host} {marker} {line}" for line in clean_bytes(data).splitlines()]
            self.app.call_from_thread(log.write_lines, lines)

        connect = self.app.connect  # type: ignore[attr-defined]
        try:
            self.execution = Execution(self.incident, command_id, self.actor, typed,
                                       connect.ssh_options(), show,
                                       resolve_jump=connect.jump_resolver())
            results = self.execution.run()
        except RunbookError as exc:
            self.app.call_from_thread(self._ended, f"{exc.message}\n{exc.hint or ''}", False)
            return
        except Exception:  # noqa: BLE001
            self.app.call_from_thread(self._ended, internal_error("remediate execute"), False)
            return
        summary = [f"{r.host}: {r.status} (exit {r.exit_code})" for r in results]
        self.app.call_from_thread(log.write_lines, ["— done —", *summary])
        failed = [r for r in results if not r.ok]
        if failed:
            self.app.call_from_thread(self._ended, f"{len(failed)} host(s) failed", False)
            return
        # Ran cleanly everywhere it was planned: that is what the step asked for.
        try:
            self.incident.complete_step(self.step_id, self.actor,
                                        f"ran ok on {len(results)} host(s)")
            self.step_done = True
        except RunbookError as exc:
            self.app.call_from_thread(self._ended, f"all hosts exited 0; {exc.message}", True)
            return
        self.app.call_from_thread(self._ended, "all hosts exited 0; the step is done", True)

    def _ended(self, message: str, ok: bool) -> None:
        self.running = False
        self.refresh_bindings()
        self.notify(message, severity="information" if ok else "error",
                    timeout=8)

    def on_unmount(self) -> None:
        # The app is quitting mid-run (q, then "Quit anyway"): stop the commands on
        # the hosts, as a cancelled collection does; what ran is recorded.
        if self.running and self.execution is not None:
            self.execution.cancel()

    def action_close(self) -> None:
        if self.running:
            self.notify("The command is running; wait for it to finish.", severity="warning")
            return
        self.dismiss(self.step_done)
