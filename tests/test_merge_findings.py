"""One finding per fact: what several collectors say about the same host and
resource is one finding listing every source, and where they disagree, it says
so with both numbers and their capture times. The outputs are the captures in
tests/data/outputs (uptime, top and ps taken together on a busy 2-CPU machine)."""

from __future__ import annotations

from pathlib import Path

from runbook.engine.parsers import parse
from runbook.findings import Level, ParseContext, Sourced, merge_findings

DATA = Path(__file__).parent / "data" / "outputs"


def sourced(collector: str, capture: str, at: str | None, host: str = "web1") -> list[Sourced]:
    text = (DATA / capture).read_text()
    return [Sourced(f.on(host, collector), at)
            for f in parse(collector, text, ParseContext(cpu_count=2))]


def test_the_load_and_the_zombies_seen_by_several_collectors_are_one_finding_each() -> None:
    found = (sourced("uptime", "uptime/uptime-nproc-busy.txt", "15:58:37Z")
             + sourced("top", "top/top-batch-busy.txt", "15:58:38Z")
             + sourced("ps", "ps/ps-auxwww-busy-zombies.txt", "15:58:38Z"))
    merged = [m for m in merge_findings(found) if m.finding.level != Level.INFO]
    by_fact = {m.finding.fact: m for m in merged}
    assert sorted(by_fact) == ["cpu_idle", "load", "zombies"], [m.summary for m in merged]
    load = by_fact["load"]
    assert load.collectors == ["uptime", "top"] and load.disagreement is None
    assert load.summary.startswith("load average 3.20 on 2 CPUs")
    assert load.summary.endswith("[also top]")
    assert [s.finding.evidence for s in load.sources] == [
        "15:58:37 up 27 min,  0 user,  load average: 3.20, 1.86, 1.00",
        "top - 15:58:38 up 27 min,  0 user,  load average: 3.20, 1.86, 1.00"]
    assert by_fact["zombies"].collectors == ["top", "ps"]


def test_sources_that_disagree_say_so_with_both_numbers_and_times() -> None:
    found = (sourced("ps", "ps/ps-auxwww-incident-constructed.txt", "10:02:11Z")
             + sourced("top", "top/top-batch-busy.txt", "10:02:13Z"))
    [zombies] = [m for m in merge_findings(found) if m.finding.fact == "zombies"]
    assert zombies.disagreement == "ps 1 (10:02:11Z), top 2 (10:02:13Z)"
    assert "[sources disagree: ps 1 (10:02:11Z), top 2 (10:02:13Z)]" in zombies.summary


def test_the_same_fact_on_two_hosts_stays_two_findings() -> None:
    found = (sourced("uptime", "uptime/uptime-nproc-busy.txt", None, host="web1")
             + sourced("uptime", "uptime/uptime-nproc-busy.txt", None, host="web2"))
    assert [m.finding.host for m in merge_findings(found)] == ["web1", "web2"]
