"""Per-host, per-collector status, live while collectors run, and the findings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from textual.message import Message

from runbook.engine.results import FINISHED, PROBLEMS
from runbook.findings import (
    Finding,
    MergedFinding,
    Sourced,
    clock,
    merge_findings,
    sourced_from_runs,
)
from runbook.incident import IncidentState
from runbook.sanitize import clean_line
from runbook.tui.widgets.row_table import Column, RowTable

STATE_STYLE = {"ok": "green", "failed": "yellow", "running": "cyan", "connecting": "yellow",
               "pending": "dim", "timeout": "bold red", "refused": "bold red",
               "unreachable": "bold red", "skipped": "dim", "error": "red",
               "not-installed": "magenta", "needs-root": "magenta", "not-run": "red"}
LEVEL_STYLE = {"critical": "bold red", "warning": "yellow"}


class HostsPanel(RowTable):
    """One row per host: its role, connection state, collectors done, problems.

    Progress arrives many times a second from 20+ hosts; rebuilding the table on
    each message made keypresses wait (p95 260 ms measured). Messages only mark
    the table stale; it is redrawn at most REDRAW_HZ times a second, only while
    it is on screen, and a redraw renders only the rows that changed.
    """

    REDRAW_HZ = 4

    def __init__(self) -> None:
        super().__init__([Column("host", 18), Column("project/role", 14), Column("state", 11),
                          Column("done", 5), Column("running / problems")], id="hosts")
        self.live: dict[str, dict[str, str]] = {}
        self.host_state: dict[str, str] = {}
        self.host_message: dict[str, str | None] = {}
        self._recorded: dict[str, dict[str, str]] = {}
        self._truncated: dict[str, set[str]] = {}
        self._why: dict[str, dict[str, str]] = {}  # host -> collector -> why it failed
        self._state: IncidentState | None = None
        self._stale = False

    def on_mount(self) -> None:
        self.set_interval(1 / self.REDRAW_HZ, self._redraw_if_stale)

    def show(self, state: IncidentState) -> None:
        """A fresh fold of the journal: what every collector last recorded."""
        recorded: dict[str, dict[str, str]] = {}
        truncated: dict[str, set[str]] = {}
        why: dict[str, dict[str, str]] = {}
        for run in state.evidence:
            host, collector = str(run.get("host")), str(run.get("collector"))
            status = str(run.get("status"))
            recorded.setdefault(host, {})[collector] = status
            if status in PROBLEMS:
                # The first line of what the runner said, else the status itself.
                said = str(run.get("message") or "").strip().splitlines()
                why.setdefault(host, {})[collector] = said[0] if said else status
            else:
                why.get(host, {}).pop(collector, None)
            if run.get("truncated"):
                truncated.setdefault(host, set()).add(collector)
            else:
                truncated.get(host, set()).discard(collector)
        self._truncated = truncated
        self._why = why
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
        rows = []
        for host in self._state.hosts:
            runs = {**self._recorded.get(host.name, {}), **self.live.get(host.name, {})}
            done = sum(1 for s in runs.values() if s in FINISHED)
            running = [c for c, s in runs.items() if s == "running"]
            bad = Counter(s for s in runs.values() if s in PROBLEMS)
            host_state = self.host_state.get(host.name) or ("ok" if runs and not bad else
                                                           "failed" if bad else "pending")
            cut = self._truncated.get(host.name, set())
            reasons = [f"{c}: {w}" for c, w in self._why.get(host.name, {}).items()
                       if runs.get(c) in PROBLEMS]
            detail = ", ".join(running[:3]) if running else (
                self.host_message.get(host.name) or "; ".join(
                    reasons[:2] + ([f"+{len(reasons) - 2} more"] if len(reasons) > 2 else [])
                    + ([f"{', '.join(sorted(cut))} truncated"] if cut else [])))
            rows.append(((host.name, ""), (f"{host.project or '-'}/{host.role or '-'}", ""),
                         (host_state, STATE_STYLE.get(host_state, "")),
                         (f"{done}/{len(runs)}" if runs else "-", ""),
                         (clean_line(detail or ""), "yellow" if bad else "")))
        self.set_rows(rows)

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


class FindingsPanel(RowTable):
    """Findings as they arrive, worst first; Enter opens the evidence at that line."""

    @dataclass
    class Open(Message):
        finding: Finding
        evidence_path: str

    def __init__(self) -> None:
        super().__init__([Column("level", 8), Column("host", 14), Column("resource", 14),
                          Column("finding")], id="findings")
        self.finding_rows: list[tuple[Finding, str]] = []
        self.merged: list[MergedFinding] = []
        self.peers: list[Finding] = []  # runbook.peers, computed in a worker
        self._state: IncidentState | None = None

    def show_peers(self, found: list[Finding]) -> None:
        self.peers = found
        if self._state is not None:
            self.show(self._state)

    def show(self, state: IncidentState) -> None:
        """The latest run of each collector on each host; one row per fact, however
        many collectors stated it (findings.merge_findings)."""
        self._state = state
        merged = merge_findings([Sourced(f) for f in self.peers]
                                + sourced_from_runs(state.latest_runs.values()))
        self.merged = merged
        # A comparison with peers has no capture of its own: no file to open.
        self.finding_rows = [(m.finding, m.sources[0].file or "") for m in merged]
        # The host and resource come from remote output too (a df mount point, say).
        self.set_rows([((str(m.finding.level), LEVEL_STYLE.get(str(m.finding.level), "dim")),
                        (clean_line(m.finding.host), ""), (clean_line(m.finding.resource), ""),
                        (clean_line(m.summary), "")) for m in merged])

    def describe(self, index: int) -> str:
        merged = self.merged[index]
        finding = merged.finding
        where = " · ".join(clean_line(p) for p in (str(finding.level), finding.host,
                                                   finding.resource) if p)
        lines = [f"{where}: {clean_line(merged.summary)}   (Enter: the evidence)"]
        for source in merged.sources:
            seen = source.finding.evidence or source.finding.summary
            lines.append(f"  {source.finding.collector}"
                         + (f" {clock(source.captured_at)}" if source.captured_at else "")
                         + f": {clean_line(seen)}")
        return "\n".join(lines)

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        if 0 <= event.index < len(self.finding_rows):
            event.stop()
            finding, path = self.finding_rows[event.index]
            if path:  # a comparison with peers has no single capture to open
                self.post_message(self.Open(finding, path))
