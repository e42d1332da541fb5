"""The psutil snapshot of a local host, parsed with the command parsers' thresholds."""

from __future__ import annotations

from runbook.engine.parsers import parse
from runbook.findings import Level, ParseContext
from runbook.transport.local_metrics import snapshot


def test_real_snapshot_of_this_machine_parses_with_top_processes() -> None:
    findings = parse("system", snapshot(0.2), ParseContext())
    tops = [f for f in findings if f.resource == "process"]
    assert len(tops) == 2 and tops[0].summary.startswith("top by CPU")
    assert all(f.line and f.evidence for f in findings)


def test_pressure_in_a_snapshot_becomes_findings_with_their_lines() -> None:
    # Constructed: this machine has 24 GiB free and no swap, so pressure is written out.
    text = ("cpus: 2\n"
            "load average: 9.00, 5.00, 1.00\n"
            "cpu_percent: user=5.0 system=2.0 idle=3.0 iowait=45.0 steal=0.0\n"
            "memory: total_mb=1000 available_mb=30 used_percent=97.0\n"
            "swap: total_mb=100 used_mb=90 used_percent=90.0\n"
            "tcp_states: LISTEN=3 TIME_WAIT=6000\n")
    found = {(f.resource, f.level, f.line) for f in parse("system", text, ParseContext())}
    assert ("cpu", Level.CRITICAL, 2) in found  # load 9 on 2 CPUs
    assert ("disk", Level.WARNING, 3) in found  # iowait 45%
    assert ("memory", Level.CRITICAL, 4) in found
    assert ("swap", Level.WARNING, 5) in found
    assert ("tcp", Level.WARNING, 6) in found
