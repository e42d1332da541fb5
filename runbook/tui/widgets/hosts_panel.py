"""Per-host, per-collector status, live while collectors run, and the findings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from runbook.engine.findings import Finding
from runbook.incident import IncidentState
from runbook.sanitize import clean_line

STATE_STYLE = {"ok": "green", "failed": "yellow", "running": "cyan", "connecting": "yellow",
               "pending": "dim", "timeout": "bold red", "refused": "bold red",
               "unreachable": "bold red", "skipped": "dim", "error": "red",
               "not-installed": "magenta", "needs-root": "magenta"}
FINISHED = {"ok", "failed", "timeout", "not-installed", "needs-root", "error", "skipped",
            "unreachable"}


class HostsPanel(DataTable[Text]):
    """One row per host: its role, connection state, collectors done, problems.

    Progress arrives many times a second from 20+ hosts; rebuilding the table on
    each message made keypresses wait (p95 260 ms measured). Messages only mark
    the table stale, and it is redrawn at most REDRAW_HZ times a second, and
    only while it is on screen.
    """

    REDRAW_HZ = 4

    def __init__(self) -> None:
        super().__init__(id="hosts", cursor_type="row", zebra_stripes=True)
        self.live: dict[str, dict[str, str]] = {}
        self.host_state: dict[str, str] = {}
        self.host_message: dict[str, str | None] = {}
        self._recorded: dict[str, dict[str, str]] = {}
        self._state: IncidentState | None = None
        self._stale = False

    def on_mount(self) -> None:
        self.add_columns("host", "project/role", "state", "done", "running / problems")
        self.set_interval(1 / self.REDRAW_HZ, self._redraw_if_stale)

    def show(self, state: IncidentState) -> None:
        """A fresh fold of the journal: what every collector last recorded."""
        recorded: dict[str, dict[str, str]] = {}
        for run in state.evidence:
            recorded.setdefault(str(run.get("host")), {})[str(run.get("collector"))] = str(
                run.get("status"))
        for host, problem in state.host_problems.items():
            self.host_state.setdefault(host, str(problem.get("state")))
            self.host_message.setdefault(host, str(problem.get("reason")))
        self._recorded, self._state = recorded, state
        self._redraw()

    def _redraw_if_stale(self) -> None:
        if self._stale and self.is_on_screen:
            self._redraw()

    def _redraw(self) -> None:
        self._stale = False
        if self._state is None:
            return
        self.clear()
        for host in self._state.hosts:
            runs = {**self._recorded.get(host.name, {}), **self.live.get(host.name, {})}
            done = sum(1 for s in runs.values() if s in FINISHED)
            running = [c for c, s in runs.items() if s == "running"]
            bad = Counter(s for s in runs.values() if s in FINISHED and s not in ("ok", "skipped"))
            host_state = self.host_state.get(host.name) or ("ok" if runs and not bad else
                                                           "failed" if bad else "pending")
            detail = ", ".join(running[:3]) if running else (
                self.host_message.get(host.name) or ", ".join(f"{n} {s}" for s, n in bad.items()))
            self.add_row(Text(host.name), Text(f"{host.project or '-'}/{host.role or '-'}"),
                         Text(host_state, style=STATE_STYLE.get(host_state, "")),
                         Text(f"{done}/{len(runs)}" if runs else "-"),
                         Text(clean_line(detail or ""), style="yellow" if bad else ""),
                         key=host.name)

    @property
    def is_on_screen(self) -> bool:
        return self.display and self.region.area > 0

    def host_changed(self, host: str, state: str, message: str | None) -> None:
        self.host_state[host] = state
        self.host_message[host] = message
        self._stale = True

    def collector_changed(self, host: str, collector: str, status: str) -> None:
        self.live.setdefault(host, {})[collector] = status
        self._stale = True

    def start_run(self, hosts: list[str]) -> None:
        for host in hosts:
            self.host_state.pop(host, None)
            self.host_message.pop(host, None)
            self.live[host] = {}
        self._stale = True


class FindingsPanel(DataTable[Text]):
    """Findings as they arrive, worst first; Enter opens the evidence at that line."""

    @dataclass
    class Open(Message):
        finding: Finding
        evidence_path: str

    def __init__(self) -> None:
        super().__init__(id="findings", cursor_type="row", zebra_stripes=True)
        self.finding_rows: list[tuple[Finding, str]] = []

    def on_mount(self) -> None:
        self.add_columns("level", "host", "resource", "finding")

    def show(self, state: IncidentState) -> None:
        latest: dict[tuple[str, str], dict] = {}
        for run in state.evidence:
            latest[(str(run.get("host")), str(run.get("collector")))] = run
        rows: list[tuple[Finding, str]] = []
        for run in latest.values():
            for raw in run.get("findings") or []:
                rows.append((Finding.from_dict(raw), str(run.get("stdout"))))
        order = {"critical": 0, "warning": 1, "info": 2}
        rows.sort(key=lambda r: (order.get(str(r[0].level), 3), r[0].host))
        self.finding_rows = rows
        self.clear()
        for index, (finding, _) in enumerate(rows):
            style = {"critical": "bold red", "warning": "yellow"}.get(str(finding.level), "dim")
            # The resource comes from remote output too (a df mount point, say).
            self.add_row(Text(str(finding.level), style=style), Text(clean_line(finding.host)),
                         Text(clean_line(finding.resource)), Text(clean_line(finding.summary)),
                         key=str(index))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        index = int(str(event.row_key.value))
        if 0 <= index < len(self.finding_rows):
            event.stop()
            finding, path = self.finding_rows[index]
            self.post_message(self.Open(finding, path))
