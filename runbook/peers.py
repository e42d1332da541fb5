"""Compare a host with its peers: what an expert does by hand when they log in to
a healthy twin. Hosts that share a role (or, without a role, a tag) are compared
on each filesystem's use (`df`, `df-inodes`), on memory in use (`free`) and on
the load per CPU (`uptime`), from the latest clean run of each on each host. A
host far from the others becomes a finding that names it and the peers' range;
with fewer than three hosts to compare, it says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from runbook.evidence import read_head
from runbook.findings import Finding, Level, Signal


@dataclass(frozen=True)
class PeerRule:
    """How far from its peers a host must be to be named. Twins differ a little
    (filesystems fill at different rates, load balancers are not exact), so
    small gaps are normal: the host must be at least `min_gap` above the peers'
    median, and further above the highest peer than the peers are spread."""

    min_gap: float = 20.0  # percentage points
    min_hosts: int = 3  # the host and two peers: with one peer, which one is odd?


PEER_RULE = PeerRule()
# A load of 1 per CPU more than its twins: one more task waiting per CPU.
LOAD_RULE = PeerRule(min_gap=1.0)


@dataclass(frozen=True)
class Reading:
    host: str
    value: float
    evidence: str
    line: int


@dataclass(frozen=True)
class Measure:
    """One thing hosts are compared on: the collector whose output holds it, how
    to read it (key -> value and line), and how to say it."""

    collector: str
    resource: str  # the finding's resource; "{key}" is replaced by the reading's key
    signal: Signal
    read: Callable[[str], list[tuple[str, float, Any]]]
    describe: Callable[[str, float], str]  # (key, value) -> "/var 97% used"
    unit: str  # after the peers' range: "%", " per CPU"
    rule: PeerRule = PEER_RULE


def _filesystems(text: str) -> list[tuple[str, float, Any]]:
    from runbook.engine.parsers.df import usage

    return [(use.mount, use.percent, use.line) for use in usage(text)]


def _memory(text: str) -> list[tuple[str, float, Any]]:
    from runbook.engine.parsers.free import memory_use

    use = memory_use(text)
    return [("memory", round(use.used_percent, 1), use.line)] if use else []


def _load(text: str) -> list[tuple[str, float, Any]]:
    from runbook.engine.parsers.uptime import load_per_cpu

    found = load_per_cpu(text)
    return [("load", round(found[0], 2), found[1])] if found else []


MEASURES = (
    Measure("df", "disk:{key}", Signal.UTILIZATION, _filesystems,
            lambda key, v: f"{key} {v:g}% used", "%"),
    Measure("df-inodes", "inodes:{key}", Signal.UTILIZATION, _filesystems,
            lambda key, v: f"{key} {v:g}% of its inodes", "%"),
    Measure("free", "memory", Signal.UTILIZATION, _memory,
            lambda key, v: f"memory {v:g}% used, not counting cache", "%"),
    Measure("uptime", "cpu", Signal.SATURATION, _load,
            lambda key, v: f"load {v:g} per CPU", " per CPU", LOAD_RULE),
)
BY_COLLECTOR = {m.collector: m for m in MEASURES}


def peer_findings(state: Any, incident_dir: Path) -> list[Finding]:
    """Findings for hosts that stand out from their peers (`state` is an
    IncidentState); INFO findings where a group is too small to tell."""
    readings: dict[tuple[str, str], list[Reading]] = {}  # (collector, key) -> readings
    for (host, collector), run in state.latest_runs.items():
        measure = BY_COLLECTOR.get(collector)
        path = incident_dir / str(run.get("stdout"))
        if measure is None or run.get("status") != "ok" or not path.is_file():
            continue
        for key, value, line in measure.read(read_head(path)):
            readings.setdefault((collector, key), []).append(
                Reading(host, value, line.text.strip(), line.number))
    found: list[Finding] = []
    for name, members in _groups(state).items():
        measured = sorted({r.host for rs in readings.values() for r in rs if r.host in members})
        if len(measured) < 2:
            continue
        if len(measured) < PEER_RULE.min_hosts:
            # Said once for the group: with one peer, which of the two is odd?
            outputs = sorted({c for (c, _), rs in readings.items()
                              if any(r.host in members for r in rs)})
            found.append(Finding(
                Level.INFO, Signal.INFO, "peers",
                f"only {len(measured)} hosts in {name} have {', '.join(outputs)} output "
                f"({', '.join(measured)}): {PEER_RULE.min_hosts} are needed to tell which "
                "one is odd, so they were not compared", host=measured[0], collector="peers",
                fact=f"peers:{name}"))
            continue
        for (collector, key), all_readings in sorted(readings.items()):
            group = [r for r in all_readings if r.host in members]
            measure = BY_COLLECTOR[collector]
            if len(group) >= measure.rule.min_hosts:
                found += [f for r in group if (f := _outlier(r, group, name, measure, key))]
    return found


def _outlier(reading: Reading, group: list[Reading], name: str, measure: Measure,
             key: str) -> Finding | None:
    peers = [r.value for r in group if r.host != reading.host]
    low, high, middle = min(peers), max(peers), median(peers)
    rule = measure.rule
    if reading.value - middle < rule.min_gap or reading.value - high <= high - low:
        return None
    resource = measure.resource.replace("{key}", key)
    return Finding(
        Level.WARNING, measure.signal, resource,
        f"{reading.host}: {measure.describe(key, reading.value)}; its {len(peers)} peers in "
        f"{name}: {low:g}–{high:g}{measure.unit}", line=reading.line,
        evidence=reading.evidence, host=reading.host, collector="peers",
        fact=f"peers:{measure.collector}:{key}", value=reading.value)


def _groups(state: Any) -> dict[str, set[str]]:
    """`role web` -> its hosts; hosts without a role are grouped by each tag."""
    groups: dict[str, set[str]] = {}
    for host in state.hosts:
        if host.role:
            groups.setdefault(f"role {host.role}", set()).add(host.name)
        else:
            for tag in host.tags:
                groups.setdefault(f"tag {tag}", set()).add(host.name)
    return {name: hosts for name, hosts in groups.items() if len(hosts) > 1}
