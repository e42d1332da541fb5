"""One captured output, full screen, with its findings to jump between."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen

from runbook.findings import Finding
from runbook.sanitize import clean_line
from runbook.tui.widgets.evidence_view import EvidenceView
from runbook.tui.widgets.key_bar import KeyBar


class EvidenceScreen(Screen[None]):
    """Shows `path` in an `EvidenceView`. `line` (1-based) is where the cursor
    starts; `findings` that carry a line can be visited with f / F."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("f", "next_finding", "Next finding"),
        Binding("F", "previous_finding", "Prev finding"),
    ]

    def __init__(self, path: Path | str, findings: Iterable[Finding] = (), *,
                 line: int | None = None, name: str | None = None) -> None:
        super().__init__(name=name)
        self.path = Path(path)
        self.findings = sorted((f for f in findings if f.line), key=lambda f: f.line or 0)
        self.start_line = line

    def compose(self) -> ComposeResult:
        yield EvidenceView(self.path, line=self.start_line, id="evidence")
        yield KeyBar()

    @property
    def view(self) -> EvidenceView:
        return self.query_one(EvidenceView)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_finding", "previous_finding"):
            return bool(self.findings)
        return True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_next_finding(self) -> None:
        current = self.view.current_line
        later = [f for f in self.findings if (f.line or 0) > current]
        self._visit(later[0] if later else self.findings[0], wrapped=not later)

    def action_previous_finding(self) -> None:
        current = self.view.current_line
        earlier = [f for f in self.findings if (f.line or 0) < current]
        self._visit(earlier[-1] if earlier else self.findings[-1], wrapped=not earlier)

    def _visit(self, finding: Finding, *, wrapped: bool) -> None:
        assert finding.line is not None
        self.view.goto_line(finding.line)
        number = self.findings.index(finding) + 1
        note = " (wrapped)" if wrapped else ""
        # Summaries are built from remote text: clean them like any output.
        self.notify(f"{finding.level}: {clean_line(finding.summary)}",
                    title=f"Finding {number}/{len(self.findings)}, line {finding.line}{note}",
                    markup=False)
