"""? shows every key, grouped by where it works."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# runbook keys

**Incident screen** — the stage list is on the left; the right side shows the
selected step (1), hosts (2), findings (3) and the timeline (4).

| key | does |
|---|---|
| ↑ ↓ / j k | move between steps |
| d | mark the step done |
| s | skip the step (asks why) |
| a | answer a question step |
| r | run a collect step's collectors on its hosts |
| c | cancel the run (stops its commands on the hosts) |
| e | edit and send an announcement |
| x | review and run a remediation (typed confirmation) |
| n | write a note into the timeline |
| p | preview and export the postmortem |
| 1 2 3 4 | step, hosts, findings, timeline |
| Tab | into the table shown; j k move in it |
| Enter (on a finding) | open its evidence at the line |
| Enter (on an event) | read the timeline event in full |
| Esc | back to the incident list |

**Everywhere**: `ctrl+p` command palette · `ctrl+n` new incident · `ctrl+t` light/dark ·
`?` this help · `ctrl+q` quit. Quitting loses nothing: every action is already in
the journal, and `runbook` resumes where you were.

**Evidence viewer**: `/` search · `n`/`N` next/previous · `:` go to line ·
`g`/`G` top/bottom · `f`/`F` next/previous finding · `q` close.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 80; max-width: 100%; height: 90%;
        border: thick $primary; background: $surface; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Markdown(HELP)

    def action_close(self) -> None:
        self.dismiss(None)
