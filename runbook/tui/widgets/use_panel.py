"""Each host's USE summary (runbook.use): a row per resource, a cell per signal."""

from __future__ import annotations

from runbook.sanitize import clean_line
from runbook.tui.widgets.row_table import Column, RowTable
from runbook.use import USE_SIGNALS, HostUse, UseCell

SHORT = {"critical": ("CRIT", "bold red"), "warning": ("warn", "yellow"),
         "ok": ("ok", "green"), "not checked": ("unchk", "dim")}


def _short(cell: UseCell | None) -> tuple[str, str]:
    if cell is None:
        return "—", "dim"
    key = str(cell.worst.finding.level) if cell.worst is not None else str(cell.state)
    return SHORT.get(key, (key, ""))


class UsePanel(RowTable):
    """A word per cell at 80 columns; the line under the table gives the
    selected row's cells in full, with the evidence of each finding."""

    def __init__(self) -> None:
        # Resource takes what is left: at 60 columns the three cells still show.
        super().__init__([Column("host", 12), Column("resource"), Column("util", 5),
                          Column("sat", 5), Column("err", 5)], id="use")
        self.rows: list[tuple[str, str, dict[str, str]]] = []

    def show(self, summaries: list[HostUse]) -> None:
        self.rows = []
        table = []
        for host_use in summaries:
            for row in host_use.rows:
                cells = [row.cells.get(signal) for signal in USE_SIGNALS]
                full = {str(signal): cell.in_full
                        for signal, cell in zip(USE_SIGNALS, cells, strict=True) if cell}
                self.rows.append((host_use.host, row.label, full))
                table.append(((clean_line(host_use.host), ""), (clean_line(row.label), ""),
                              *(_short(cell) for cell in cells)))
        self.set_rows(table)

    def describe(self, index: int) -> str:
        host, label, full = self.rows[index]
        lines = [f"{clean_line(host)} · {clean_line(label)}"]
        lines += [f"  {signal}: {clean_line(text)}" for signal, text in full.items()]
        return "\n".join(lines)
