"""The selected step: what to do, its state, and the keys that act on it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from rich.markdown import Markdown
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

from runbook.incident import IncidentState, StepState, StepStatus
from runbook.sanitize import clean_line, clean_text
from runbook.templating import render_text

KEYS = {
    "checklist": "d done · s skip · ! shell on a host",
    "question": "a answer · s skip",
    "collect": "r run collectors · d done · s skip",
    "announce": "e edit & send · s skip",
    "remediate": "x review & run · s skip",
    "report": "p preview & write · s skip",
    "note": "d read",
}


class StepView(VerticalScroll):
    """Instructions rendered from Markdown, plus what the step kind needs."""

    DEFAULT_CSS = """
    StepView { padding: 0 1; }
    StepView #step-title { text-style: bold; }
    StepView #step-state { color: $text-muted; }
    StepView #answer { border: none; height: 1; padding: 0 1; background: $boost; }
    StepView #step-extra { color: $text; margin-top: 1; }
    """

    @dataclass
    class Answered(Message):
        step_id: str
        text: str

    def __init__(self) -> None:
        super().__init__(id="step-view")
        self.step_id: str | None = None
        self._shown_instructions: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="step-title")
        yield Static(id="step-state")
        yield Static(id="step-instructions")
        yield Static(id="step-extra")
        yield Static(id="step-similar")
        yield Input(placeholder="type the answer, Enter to record", id="answer")

    def show(self, state: IncidentState, step_id: str | None) -> None:
        step = state.steps.get(step_id or "") or state.current_step
        if step is None:
            self.query_one("#step-title", Static).update("All steps finished.")
            return
        changed = step.step.id != self.step_id
        self.step_id = step.step.id
        self.query_one("#step-title", Static).update(
            Text(f"{step.stage} › {step.step.title}"))
        self.query_one("#step-state", Static).update(self._state_line(step))
        # Re-rendered when the step changes, and when the journal changes what the
        # template fills in (the step is often shown before the answer it uses lands).
        instructions = self._instructions(step, state)
        if changed or instructions != self._shown_instructions:
            self._shown_instructions = instructions
            # Rich's Markdown in one Static, not Textual's Markdown widget: that one
            # mounts a widget per block on every update, which made each j/k in the
            # stage list cost a remount and a deep relayout.
            self.query_one("#step-instructions", Static).update(
                Markdown(instructions, hyperlinks=False))
        if changed:
            answer = self.query_one("#answer", Input)
            answer.display = step.step.kind == "question"
            answer.value = ""
            self.scroll_home(animate=False)
        self.query_one("#step-extra", Static).update(self._extra(step, state))

    @staticmethod
    def _state_line(step: StepState) -> Text:
        text = Text(f"{step.step.kind} · {step.status}", style="italic")
        if step.status == StepStatus.SKIPPED and step.reason:
            text.append(f": {clean_line(step.reason)}")
        if step.actor and step.updated_at:
            text.append(f" · {step.actor} {step.updated_at:%H:%M:%S}Z")
        text.append(f"   [{KEYS.get(step.step.kind, '')}]", style="bold cyan")
        return text

    @staticmethod
    def _instructions(step: StepState, state: IncidentState) -> str:
        body = step.step.instructions or ""
        # A template that cannot render yet shows as written rather than not at all.
        with contextlib.suppress(Exception):
            body = render_text(body, state.template_context())
        if step.step.kind == "question":
            body = f"**{step.step.prompt}**\n\n{body}"
        # Answers and alert labels are filled in: strip what a terminal would obey.
        return clean_text(body or step.step.title)

    @staticmethod
    def _extra(step: StepState, state: IncidentState) -> Text:
        kind = step.step.kind
        text = Text()
        if kind == "question" and step.answer:
            text.append("Answer: ", style="bold")
            text.append(clean_text(step.answer))
        elif kind == "collect":
            names = ", ".join(step.step.collectors) or ""
            bundle = f"bundle {step.step.bundle}" if step.step.bundle else ""
            text.append(f"Collects {' + '.join(x for x in (bundle, names) if x)} "
                        f"on {step.step.hosts} hosts.", style="dim")
            runs = [e for e in state.evidence if e.get("step") == step.step.id]
            if runs:
                ok = sum(1 for e in runs if e.get("status") == "ok")
                text.append(f"\nLast run: {ok}/{len(runs)} ok. See the Hosts and Findings tabs.")
        elif kind == "remediate":
            text.append("Command: ", style="bold")
            text.append(step.step.command)
            text.append("\nRollback: ", style="bold")
            text.append(step.step.rollback)
            if step.step.review:
                text.append("\nA second person must review it.", style="yellow")
        elif kind == "announce":
            sent = [a for a in state.announcements if a.get("step") == step.step.id]
            if sent:
                last = sent[-1]
                result = "sent" if last.get("delivered") else "NOT sent"
                text.append(f"Last: {result} via {last.get('channel')}")
        return text

    def show_similar(self, stage: str | None, similar: list[dict]) -> None:
        """In the scope stage: past incidents that shared hosts, roles or findings,
        and what fixed them (from the archive of closed incidents)."""
        widget = self.query_one("#step-similar", Static)
        if stage != "scope" or not similar:
            widget.update("")
            return
        text = Text("\nSimilar past incidents:\n", style="bold")
        for entry in similar[:3]:
            shared = ", ".join(v for values in entry.get("shared", {}).values() for v in values)
            text.append(f"  {entry['id']}  {clean_line(str(entry.get('title', '')))}")
            text.append(f"  (shared: {clean_line(shared)})\n" if shared else "\n", style="dim")
            for command in (entry.get("remediation") or [])[:1]:
                if isinstance(command, dict) and command.get("command"):
                    text.append(f"    worked: {clean_line(str(command['command']))}\n",
                                style="green")
        widget.update(text)

    def focus_answer(self) -> None:
        self.screen.set_focus(self.query_one("#answer", Input))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "answer" and self.step_id and event.value.strip():
            event.stop()
            self.post_message(self.Answered(self.step_id, event.value.strip()))
            event.input.value = ""
