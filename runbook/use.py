"""A USE summary per host: for each resource, its utilisation, saturation and
errors (Brendan Gregg's USE method), each with its worst finding, or "checked,
ok" naming the collectors that looked, or "not checked" with the reason.

It is built from the journal's latest run of each collector on each host, so
`runbook collect`, `runbook show`, the app and the postmortem say the same.
Which collector checks which cell is declared in the catalog (`checks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from runbook.engine.catalog import BY_NAME, COLLECTORS
from runbook.findings import (
    Finding,
    Level,
    MergedFinding,
    Signal,
    Sourced,
    clock,
    merge_findings,
    sourced_from_runs,
)

USE_SIGNALS = (Signal.UTILIZATION, Signal.SATURATION, Signal.ERRORS)


@dataclass(frozen=True)
class Resource:
    key: str  # the prefix of its cells in the catalog's `checks`: "cpu", "filesystem"
    label: str
    signals: tuple[Signal, ...]  # the cells that mean something for it
    resources: tuple[str, ...] = ()  # finding resources that belong to it ("port:" a prefix)


RESOURCES = (
    Resource("cpu", "CPU", (Signal.UTILIZATION, Signal.SATURATION), ("cpu",)),
    Resource("memory", "memory", USE_SIGNALS, ("memory",)),
    Resource("swap", "swap", (Signal.UTILIZATION,), ("swap",)),
    Resource("filesystem", "space", (Signal.UTILIZATION,), ("disk:",)),
    Resource("inodes", "inodes", (Signal.UTILIZATION,), ("inodes:",)),
    Resource("disk", "disk I/O", USE_SIGNALS, ("disk",)),
    Resource("network", "network", USE_SIGNALS, ("network",)),
    Resource("tcp", "TCP", (Signal.SATURATION, Signal.ERRORS), ("tcp", "port:")),
    Resource("processes", "processes", (Signal.SATURATION, Signal.ERRORS), ("processes",)),
    # Every kernel-log finding, whatever resource it is about, and the rest
    # (machine checks, ECC) that belong to no row above.
    Resource("kernel", "kernel log", (Signal.ERRORS,), ("hardware",)),
)
PER_FILESYSTEM = {"filesystem": "df", "inodes": "df-inodes"}
KERNEL_COLLECTORS = {c.name for c in COLLECTORS if c.parser == "dmesg"}


class CellState(StrEnum):
    FINDING = "finding"
    OK = "ok"
    NOT_CHECKED = "not checked"


@dataclass(frozen=True)
class UseCell:
    state: CellState
    found: tuple[MergedFinding, ...] = ()  # its warning and critical findings, worst first
    checked_by: tuple[str, ...] = ()
    reason: str = ""  # why it was not checked
    cleared: str | None = None  # a later run that no longer states the worst finding

    @property
    def worst(self) -> MergedFinding | None:
        return self.found[0] if self.found else None

    @property
    def others(self) -> int:
        return max(len(self.found) - 1, 0)

    @property
    def text(self) -> str:
        if self.worst is not None:
            more = f" (+{self.others} more)" if self.others else ""
            gone = f"; {self.cleared}" if self.cleared else ""
            return f"{self.worst.finding.level}: {self.worst.summary}{more}{gone}"
        if self.state is CellState.OK:
            return f"checked, ok ({', '.join(self.checked_by)})"
        return f"not checked: {self.reason}"

    @property
    def where(self) -> str:
        """`uptime:1`: the collector and output line of the worst finding."""
        if self.worst is None:
            return ""
        f = self.worst.finding
        return f"{f.collector}:{f.line}" if f.line else f.collector

    @property
    def evidence(self) -> str | None:
        """`uptime:1 load average: 3.1, …`: where the worst finding was read, and the line."""
        if self.worst is None:
            return None
        f = self.worst.finding
        return f"{self.where} {f.evidence}" if f.evidence else self.where

    @property
    def in_full(self) -> str:
        """The text with the worst finding's evidence line, for a reader with room."""
        return self.text + (f" [{self.evidence}]" if self.evidence else "")

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"state": str(self.state), "text": self.text}
        if self.worst is not None:
            data.update(level=str(self.worst.finding.level), finding=self.worst.summary,
                        evidence=self.evidence, others=self.others,
                        sources=self.worst.collectors)
        if self.checked_by:
            data["checked_by"] = list(self.checked_by)
        if self.reason:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class UseRow:
    resource: str  # "cpu", "filesystem:/var"
    label: str  # "CPU", "space /var"
    cells: dict[Signal, UseCell]  # only the signals that mean something for the resource

    def as_dict(self) -> dict[str, Any]:
        return {"resource": self.resource, "label": self.label,
                **{str(signal): cell.as_dict() for signal, cell in self.cells.items()}}


@dataclass(frozen=True)
class HostUse:
    host: str
    rows: tuple[UseRow, ...]

    @property
    def problems(self) -> list[tuple[UseRow, Signal, UseCell]]:
        return [(row, signal, cell) for row in self.rows for signal, cell in row.cells.items()
                if cell.worst is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "rows": [row.as_dict() for row in self.rows]}


@dataclass
class _HostRuns:
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # collector -> latest run
    ok: set[str] = field(default_factory=set)  # collectors with a clean run
    found: list[Sourced] = field(default_factory=list)


def use_summaries(state: Any, incident_dir: Path | None = None,
                  extra: list[Finding] | None = None, *, every_run: bool = False
                  ) -> list[HostUse]:
    """A USE summary for every host with a run in the journal (`state` is an
    IncidentState), from the latest run of each collector; with `every_run`,
    from all of them, so a cell shows the worst the incident saw and, where a
    later run differs, both numbers with their times (the postmortem's view).
    `incident_dir` lets each filesystem have its own rows (from the df output);
    `extra` adds findings made from several hosts (runbook.peers)."""
    hosts: dict[str, _HostRuns] = {}
    for run in state.evidence if every_run else state.latest_runs.values():
        entry = hosts.setdefault(str(run.get("host")), _HostRuns())
        entry.runs[str(run.get("collector"))] = run
        if run.get("status") == "ok":
            entry.ok.add(str(run.get("collector")))
        entry.found += sourced_from_runs([run])
    for finding in extra or []:
        if finding.host in hosts:
            hosts[finding.host].found.append(Sourced(finding))
    order = [h.name for h in state.hosts] + sorted(hosts)
    return [_host_use(name, hosts[name], incident_dir)
            for name in dict.fromkeys(order) if name in hosts]


def _host_use(host: str, entry: _HostRuns, incident_dir: Path | None) -> HostUse:
    merged = [m for m in merge_findings(entry.found)
              if m.finding.level is not Level.INFO and m.finding.signal in USE_SIGNALS]
    rows: list[UseRow] = []
    for resource in RESOURCES:
        for key, label in _instances(resource, entry.runs, incident_dir, merged):
            cells = {signal: _cell(resource, key, signal, merged, entry)
                     for signal in resource.signals}
            rows.append(UseRow(key, label, cells))
    return HostUse(host, tuple(rows))


def _instances(resource: Resource, runs: dict[str, dict[str, Any]],
               incident_dir: Path | None, merged: list[MergedFinding]) -> list[tuple[str, str]]:
    """(row key, label): one row per filesystem for space and inodes when the
    df output can be read (and for each filesystem an earlier run found full),
    else one row for them all."""
    collector = PER_FILESYSTEM.get(resource.key)
    run = runs.get(collector or "")
    if collector is None or run is None or run.get("status") != "ok" or incident_dir is None:
        return [(resource.key, f"{resource.label} (filesystems)" if collector else
                 resource.label)]
    from runbook.engine.parsers.df import usage
    from runbook.evidence import read_head

    path = incident_dir / str(run.get("stdout"))
    mounts = [use.mount for use in usage(read_head(path))] if path.is_file() else []
    prefix = resource.resources[0]  # "disk:", "inodes:"
    mounts += [m.finding.resource.removeprefix(prefix) for m in merged
               if m.finding.resource.startswith(prefix)]
    mounts = list(dict.fromkeys(mounts))
    if not mounts:
        return [(resource.key, f"{resource.label} (filesystems)")]
    return [(f"{resource.key}:{mount}", f"{resource.label} {mount}") for mount in mounts]


def _belongs(finding: Finding, resource: Resource, key: str, kernel: bool) -> bool:
    if resource.key == "kernel":
        return kernel or finding.resource in resource.resources
    mount = key.partition(":")[2]
    for name in resource.resources:
        if name.endswith(":"):
            if finding.resource.startswith(name) and (
                    not mount or finding.resource == name + mount):
                return True
        elif finding.resource == name:
            return True
    return False


def _cell(resource: Resource, key: str, signal: Signal, merged: list[MergedFinding],
          entry: _HostRuns) -> UseCell:
    check = f"{resource.key}.{signal}"
    here = [m for m in merged
            if (m.finding.signal is signal or resource.key == "kernel")
            and _belongs(m.finding, resource, key,
                         kernel=bool(set(m.collectors) & KERNEL_COLLECTORS))]
    runs = entry.runs
    checkers = [name for name in runs if check in getattr(BY_NAME.get(name), "checks", ())]
    checked = tuple(name for name in checkers if name in entry.ok)
    if here:
        return UseCell(CellState.FINDING, tuple(here), checked,
                       cleared=cleared_by_later_run(here[0], runs))
    if checked:
        return UseCell(CellState.OK, checked_by=checked)
    if checkers:
        return UseCell(CellState.NOT_CHECKED, reason="; ".join(
            f"{name} {runs[name].get('status')}"
            + (f" ({runs[name]['message']})" if runs[name].get("message") else "")
            for name in checkers))
    would = [c.name for c in COLLECTORS if check in c.checks and c.runs_on != "psutil"]
    return UseCell(CellState.NOT_CHECKED,
                   reason=f"run {' or '.join(would)}" if would else "no collector reads it")


def cleared_by_later_run(merged: MergedFinding, runs: dict[str, dict[str, Any]]) -> str | None:
    """`gone in the df run at 10:31:02Z` when every collector that stated the
    finding ran again later, cleanly, without stating it (`runs` is each
    collector's latest run on the host): the fix, as the evidence shows it."""
    f = merged.finding
    later = []
    for source in merged.sources:
        run = runs.get(source.finding.collector)
        if run is None or run.get("status") != "ok" or not source.captured_at \
                or str(run.get("started_at") or "") <= source.captured_at:
            return None
        if any(raw.get("resource") == f.resource and raw.get("level") != "info"
               and (raw.get("fact") or raw.get("summary")) == (f.fact or f.summary)
               for raw in run.get("findings") or []):
            return None
        later.append(run)
    last = max(later, key=lambda run: str(run.get("started_at")))
    return f"gone in the later {last.get('collector')} run at {clock(str(last['started_at']))}"
