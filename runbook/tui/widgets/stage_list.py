"""The stages, detect → report, with each step's state."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from runbook.incident import IncidentState, StepState, StepStatus

MARKS = {StepStatus.PENDING: ("·", "dim"), StepStatus.STARTED: ("▶", "yellow"),
         StepStatus.DONE: ("✔", "green"), StepStatus.SKIPPED: ("↷", "magenta")}


class StageList(Tree[str]):
    """Stages as branches, steps as leaves; selecting a leaf shows that step."""

    DEFAULT_CSS = """
    StageList { width: 35%; max-width: 28; min-width: 16;
                border-right: solid $primary-background; padding: 0; overflow-x: hidden; }
    """
    BINDINGS = [Binding("j", "cursor_down", "Down", show=False),
                Binding("k", "cursor_up", "Up", show=False)]

    @dataclass
    class StepChosen(Message):
        step_id: str

    def __init__(self) -> None:
        super().__init__("stages", id="stages")
        self.show_root = False
        self.guide_depth = 2
        self._leaves: dict[str, TreeNode[str]] = {}
        self._stages: dict[str, TreeNode[str]] = {}
        self._state: IncidentState | None = None

    def on_resize(self) -> None:
        if self._state is not None:
            self.show(self._state)  # titles are cut to the new width

    def _room(self) -> int:
        # Less the border, the scrollbar (counted even while it is hidden, so a
        # title is cut the same whatever the terminal's height), the guide, and
        # the cell Tree keeps free after a label.
        return max(4, self.size.width - 1 - self.guide_depth)

    def show(self, state: IncidentState) -> None:
        self._state = state
        if not self._leaves:
            self._populate(state)
        for step_id, step in state.steps.items():
            node = self._leaves.get(step_id)
            if node is not None:
                node.set_label(self._label(step, step is state.current_step, self._room()))
        for stage, node in self._stages.items():
            steps = [s for s in state.steps.values() if s.stage == stage]
            done = sum(1 for s in steps if s.finished)
            style = "green" if done == len(steps) else ("bold" if done else "")
            node.set_label(Text(f"{stage} {done}/{len(steps)}", style=style))

    def _populate(self, state: IncidentState) -> None:
        self.clear()
        for step_id, step in state.steps.items():
            stage_node = self._stages.get(step.stage)
            if stage_node is None:
                stage_node = self.root.add(step.stage, data=f"stage:{step.stage}", expand=True)
                self._stages[step.stage] = stage_node
            self._leaves[step_id] = stage_node.add_leaf(
                self._label(step, False, self._room()), data=step_id)

    @staticmethod
    def _label(step: StepState, current: bool, room: int) -> Text:
        mark, style = MARKS[step.status]
        label = Text(f"{mark} ", style=style)
        label.append(step.step.title, style="bold" if current else "")
        label.truncate(room, overflow="ellipsis")
        return label

    def select_step(self, step_id: str) -> None:
        node = self._leaves.get(step_id)
        if node is None:
            return
        if node.line < 0:
            # Added in this same update, so not laid out yet (move_cursor would put
            # the cursor on line -1, then the first stage): place it once it is.
            self.call_after_refresh(lambda: self.move_cursor(node))
        else:
            self.move_cursor(node)

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        data = event.node.data
        if data and not data.startswith("stage:"):
            self.post_message(self.StepChosen(data))
