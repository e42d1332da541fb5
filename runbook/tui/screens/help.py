"""? lists the keys of the screen it was opened on, read from that screen's real
bindings (and its widgets' and the app's), so it cannot drift from what the
keys do. A few words per screen say what they act on."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown, Static

INTRO = {
    "IncidentScreen": "The stage list is on the left; the right side shows the selected "
                      "step (1), hosts (2), findings (3) and the timeline (4). Only the "
                      "selected step's own action is live (a question's Answer, a collect "
                      "step's Run, ...).",
    "RemediateScreen": "Nothing runs until a reviewer (when the step asks for one) is "
                       "recorded and the phrase is typed exactly.",
    "HomeScreen": "Open incidents first, then the rest, newest activity first.",
}
MORE = """
**Everywhere**: `ctrl+p` command palette (every action above, by name) · `ctrl+q` quit
at once · `q` quit (asks first while a collection or remediation runs). Quitting loses
nothing: every action is already in the journal, and `runbook` resumes where you were.
"""


def key_rows(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(keys, what they do) for the screen, its focused widget's chain, and the
    app, in that order; one row per action."""
    app = screen.app
    chain = list(screen.focused.ancestors_with_self) if screen.focused else []
    widgets = [node for node in chain if node is not screen and node is not app]
    rows: dict[str, tuple[list[str], str]] = {}
    for node in [screen, *widgets, app]:
        for binding in getattr(node, "BINDINGS", []):
            if not isinstance(binding, Binding):
                continue
            label = binding.description or binding.action
            if binding.tooltip:
                label = f"{label}: {binding.tooltip}"
            keys = [app.get_key_display(Binding(k.strip(), ""))
                    for k in binding.key.split(",")]
            if binding.action in rows:
                rows[binding.action][0].extend(k for k in keys
                                               if k not in rows[binding.action][0])
            else:
                rows[binding.action] = (keys, label)
    return [(" ".join(keys), label) for keys, label in rows.values()]


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen .help-intro { margin-bottom: 1; color: $text-muted; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, below: Screen[Any]) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        name = type(self.below).__name__
        table = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(ratio=1)
        for keys, label in key_rows(self.below):
            table.add_row(keys, label)
        with VerticalScroll():
            yield Static(Text(f"Keys: {name.removesuffix('Screen').lower()} screen",
                              style="bold"))
            yield Static(INTRO.get(name, ""), classes="help-intro")
            yield Static(table)
            yield Markdown(MORE)

    def action_close(self) -> None:
        self.dismiss(None)
