"""Compare a host with its peers: what an expert does by hand when they log in to
a healthy twin. Hosts that share a role (or, without a role, a tag) are compared
on each filesystem's use, from the latest `df` and `df-inodes` runs in the
journal. A host far from the others becomes a finding that names it and the
peers' range; with fewer than three hosts to compare, it says so instead of
guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from runbook.evidence import read_head
from runbook.findings import Finding, Level, Signal

# The collectors whose output is compared, and what their numbers are.
COMPARED = {"df": "disk", "df-inodes": "inodes"}


@dataclass(frozen=True)
class PeerRule:
    """How far from its peers a host must be to be named. Filesystems fill at
    different rates on twins, so small gaps are normal: the host must be at
    least `min_gap` points above the peers' median, and further above the
    highest peer than the peers are spread."""

    min_gap: float = 20.0
    min_hosts: int = 3  # the host and two peers: with one peer, which one is odd?


PEER_RULE = PeerRule()


@dataclass(frozen=True)
class Reading:
    host: str
    value: float
    evidence: str
    line: int


def peer_findings(state: Any, incident_dir: Path, rule: PeerRule = PEER_RULE) -> list[Finding]:
    """Findings for hosts whose filesystem use stands out from their peers'
    (`state` is an IncidentState); INFO findings where a group is too small."""
    from runbook.engine.parsers.df import usage

    latest = {key: run for key, run in state.latest_runs.items()
              if key[1] in COMPARED and run.get("status") == "ok"}
    readings: dict[tuple[str, str], list[Reading]] = {}  # (collector, mount) -> readings
    for (host, collector), run in latest.items():
        path = incident_dir / str(run.get("stdout"))
        if not path.is_file():
            continue
        for use in usage(read_head(path)):
            readings.setdefault((collector, use.mount), []).append(
                Reading(host, use.percent, use.line.text.strip(), use.line.number))
    found: list[Finding] = []
    for name, members in _groups(state).items():
        measured = sorted({r.host for rs in readings.values() for r in rs if r.host in members})
        if len(measured) < 2:
            continue
        if len(measured) < rule.min_hosts:
            # Said once for the group: with one peer, which of the two is odd?
            found.append(Finding(
                Level.INFO, Signal.INFO, "peers",
                f"only {len(measured)} hosts in {name} have df output ({', '.join(measured)}): "
                f"{rule.min_hosts} are needed to tell which one is odd, so they were not "
                "compared", host=measured[0], collector="peers", fact=f"peers:{name}"))
            continue
        for (collector, mount), all_readings in sorted(readings.items()):
            group = [r for r in all_readings if r.host in members]
            if len(group) >= rule.min_hosts:
                found += [f for r in group
                          if (f := _outlier(r, group, name, COMPARED[collector], mount, rule))]
    return found


def _outlier(reading: Reading, group: list[Reading], name: str, kind: str, mount: str,
             rule: PeerRule) -> Finding | None:
    peers = [r.value for r in group if r.host != reading.host]
    low, high, middle = min(peers), max(peers), median(peers)
    if reading.value - middle < rule.min_gap or reading.value - high <= high - low:
        return None
    what = "of its inodes" if kind == "inodes" else "used"
    return Finding(
        Level.WARNING, Signal.UTILIZATION, f"{kind}:{mount}",
        f"{reading.host}: {mount} {reading.value:g}% {what}; its {len(peers)} peers in "
        f"{name}: {low:g}–{high:g}%", line=reading.line, evidence=reading.evidence,
        host=reading.host, collector="peers", fact=f"peers:{kind}:{mount}",
        value=reading.value)


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
