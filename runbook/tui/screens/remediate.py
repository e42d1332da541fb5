"""Review and run a remediation: the exact command on the exact hosts, a second
reviewer when the playbook asks, and a typed confirmation before anything runs."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static

from runbook.bugs import internal_error
from runbook.errors import RunbookError
from runbook.incident import CommandState
from runbook.incident.store import Incident
from runbook.sanitize import clean_bytes


class RemediateScreen(Screen[bool]):
    DEFAULT_CSS = """
    RemediateScreen #plan { height: auto; max-height: 60%; padding: 0 1; }
    RemediateScreen Input { height: 1; border: none; padding: 0 1; background: $boost;
                            margin: 0 0 1 0; }
    RemediateScreen Log { height: 1fr; border-top: solid $primary-background; }
    """
    BINDINGS = [Binding("escape", "close", "Back (nothing runs)")]

    def __init__(self, incident: Incident, step_id: str, actor: str) -> None:
        super().__init__()
        self.incident = incident
        self.step_id = step_id
        self.actor = actor
        self.command: CommandState | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="plan"):
            yield Static("Preparing the command…", id="summary")
        yield Input(placeholder="reviewer's name (a second person)", id="reviewer")
        yield Input(placeholder="type the confirmation shown above, then Enter", id="confirm")
        yield Log(id="output", highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#reviewer", Input).display = False
        self.query_one("#confirm", Input).display = False
        self.prepare()

    @work(thread=True, exclusive=True, group="prepare")
    def prepare(self) -> None:
        """Use the step's open proposal, or propose it now (rendered and journalled)."""
        from runbook.remediate import propose

        try:
            state = self.incident.state()
            pending = [c for c in state.commands.values()
                       if c.step == self.step_id and not c.executed]
            if not pending:
                propose(self.incident, self.step_id, self.actor)
                state = self.incident.state()
                pending = [c for c in state.commands.values()
                           if c.step == self.step_id and not c.executed]
            command = pending[-1]
        except RunbookError as exc:
            self.app.call_from_thread(self._refused, exc.message, exc.hint)
            return
        except Exception:  # noqa: BLE001
            self.app.call_from_thread(self._refused, internal_error("remediate prepare"), None)
            return
        self.app.call_from_thread(self._show_plan, command)

    def _refused(self, message: str, hint: str | None) -> None:
        self.query_one("#summary", Static).update(
            Text(f"{message}\n{hint or ''}", style="bold red"))

    def _show_plan(self, command: CommandState) -> None:
        from runbook.remediate import dry_run, expected_confirmation, review_satisfied

        self.command = command
        text = Text()
        text.append(f"Command {command.id}", style="bold")
        text.append(f"  proposed by {command.proposed_by}\n")
        text.append("Exactly this will run (dry run):\n", style="bold")
        try:
            plan = dry_run(self.incident, command.id)
        except RunbookError as exc:
            plan = []
            text.append(f"  {exc.message}\n", style="red")
        for host, line in plan:
            text.append(f"  {host}: ", style="cyan")
            text.append(f"{line}\n")
        text.append("Rollback: ", style="bold")
        text.append(f"{command.rollback or '—'}\n")
        reviewed = review_satisfied(command)
        if command.review_required:
            who = ", ".join(command.approvals) or "nobody yet"
            text.append(f"Second review: {who}\n",
                        style="green" if reviewed else "bold yellow")
        self.expected = expected_confirmation(command)
        text.append("To run, type: ", style="bold")
        text.append(self.expected, style="bold reverse")
        self.query_one("#summary", Static).update(text)
        reviewer = self.query_one("#reviewer", Input)
        confirm = self.query_one("#confirm", Input)
        reviewer.display = command.review_required and not reviewed
        confirm.display = not reviewer.display
        (reviewer if reviewer.display else confirm).focus()

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
            approve(self.incident, command_id, reviewer, self.actor)
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, f"{exc.message}\n{exc.hint or ''}",
                                      severity="error")
            return
        self.app.call_from_thread(self.notify, f"approved by {reviewer}")
        self.prepare()

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
        self._execute(self.command.id, event.value)

    @work(thread=True, exclusive=True, group="execute")
    def _execute(self, command_id: str, typed: str) -> None:
        from runbook.remediate import execute

        log = self.query_one("#output", Log)

        def show(host: str, stream: str, data: bytes) -> None:
            marker = "|" if stream == "stdout" else "!"
            lines = [f"{host} {marker} {line}" for line in clean_bytes(data).splitlines()]
            self.app.call_from_thread(log.write_lines, lines)

        connect = self.app.connect
        try:
            results = execute(self.incident, command_id, self.actor, typed,
                              connect.ssh_options(), show, resolve_jump=connect.jump_resolver())
        except RunbookError as exc:
            self.app.call_from_thread(self.notify, f"{exc.message}\n{exc.hint or ''}",
                                      severity="error")
            self.running = False
            return
        except Exception:  # noqa: BLE001
            self.app.call_from_thread(self.notify, internal_error("remediate execute"),
                                      severity="error")
            self.running = False
            return
        summary = [f"{r.host}: {r.status} (exit {r.exit_code})" for r in results]
        self.app.call_from_thread(log.write_lines, ["— done —", *summary])
        failed = [r for r in results if not r.ok]
        self.app.call_from_thread(
            self.notify, "all hosts exited 0" if not failed else f"{len(failed)} host(s) failed",
            severity="information" if not failed else "error")
        self.running = False

    def action_close(self) -> None:
        if self.running:
            self.notify("The command is running; wait for it to finish.", severity="warning")
            return
        self.dismiss(True)
