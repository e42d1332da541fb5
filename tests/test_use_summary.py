"""Each host's USE summary, from real outputs captured under real, injected load
(tests/data/outputs/load/README.md says how each was made), journalled as a
collection records them. The summary is what `runbook collect`, `runbook show`,
the app and the postmortem show."""

from __future__ import annotations

import json
from pathlib import Path

from runbook.findings import Signal
from runbook.hosts import Host
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.use import CellState, HostUse, use_summaries
from tests.conftest import record_collector_run, run_cli

LOAD = Path(__file__).parent / "data" / "outputs" / "load"
# collector -> the capture file of its command
CAPTURES = {"uptime": "uptime.txt", "top": "top.txt", "free": "free.txt",
            "system": "system.txt", "vmstat": "vmstat.txt", "iostat": "iostat.txt",
            "sar-cpu": "sar-u.txt", "sar-queue": "sar-q.txt", "sar-mem": "sar-r.txt",
            "sar-net": "sar-net.txt", "sar-tcp": "sar-tcp.txt",
            "netstat-all": "netstat-all.txt", "df": "df.txt"}
U, S, E = Signal.UTILIZATION, Signal.SATURATION, Signal.ERRORS


def journalled(scenario: str, host: str = "h1") -> Incident:
    incident = IncidentStore().create(playbook=find_playbook("generic-host"), title=scenario,
                                      hosts=[Host(host, "10.0.0.1", role="app")],
                                      actor="tester@lab")
    for collector, capture in CAPTURES.items():
        record_collector_run(incident, host, collector, (LOAD / scenario / capture).read_bytes(),
                             cpu_count=2)
    return incident


def summary(incident: Incident) -> HostUse:
    [host_use] = use_summaries(incident.state(), incident.store.directory(incident.id))
    return host_use


def cell(host_use: HostUse, resource: str, signal: Signal):  # noqa: ANN201 - a UseCell
    [row] = [r for r in host_use.rows if r.resource == resource]
    return row.cells[signal]


def test_cpu_hogs_fill_the_cpu_row_with_one_finding_per_fact() -> None:
    use = summary(journalled("cpu"))
    busy = cell(use, "cpu", U)
    assert busy.state is CellState.FINDING and busy.worst is not None
    # top, the psutil snapshot, vmstat and sar -u all saw the idle CPUs: one finding.
    assert busy.worst.finding.fact == "cpu_idle"
    assert set(busy.worst.collectors) == {"top", "system", "vmstat", "sar-cpu"}
    queue = cell(use, "cpu", S)
    assert str(queue.worst.finding.level) == "critical"
    assert "run queue" in queue.worst.summary and queue.others >= 1  # and the load
    # Nothing else was short, and the summary says what was looked at.
    assert cell(use, "memory", U).state is CellState.OK
    assert "free" in cell(use, "memory", U).checked_by
    assert cell(use, "tcp", E).text.startswith("checked, ok (")
    assert cell(use, "disk", U).checked_by == ("iostat",)


def test_memory_held_resident_is_memory_utilisation_and_nothing_else() -> None:
    use = summary(journalled("memory"))
    memory = cell(use, "memory", U)
    assert memory.worst.finding.fact == "memory_available"
    assert memory.worst.summary.startswith("memory available 1995 MiB of 24105 MiB (8.3%")
    assert set(memory.worst.collectors) == {"free", "top", "system"}
    assert memory.evidence.startswith("top:4 MiB Mem :  24105.1 total") or \
        memory.evidence.startswith("free:2 Mem:")
    assert [(row.resource, signal) for row, signal, _ in use.problems] == [("memory", U)]


def test_disk_writers_show_as_disk_utilisation_and_a_queue() -> None:
    use = summary(journalled("disk"))
    util, queue = cell(use, "disk", U), cell(use, "disk", S)
    assert util.worst.summary.startswith("vda busy 70.6% of the time over 4 one-second reports")
    assert util.where.startswith("iostat:")
    assert str(queue.worst.finding.level) == "critical"
    assert queue.worst.summary.startswith("vda has 11.1 requests queued on average")
    assert "r_await 36 ms" in queue.worst.summary


def test_sockets_left_in_close_wait_are_a_tcp_error_from_two_sources() -> None:
    use = summary(journalled("close-wait"))
    tcp = cell(use, "tcp", E)
    assert tcp.worst.summary.startswith("150 TCP sockets in CLOSE_WAIT")
    assert set(tcp.worst.collectors) == {"system", "netstat-all"}
    assert tcp.others == 0
    assert cell(use, "memory", U).state is CellState.OK


def test_cells_say_why_they_were_not_checked() -> None:
    incident = journalled("cpu")
    record_collector_run(incident, "h1", "df-inodes", b"", status="not-installed",
                         message="df: command not found")
    use = summary(incident)
    assert cell(use, "kernel", E).text == "not checked: run dmesg or kern-log"
    inodes = cell(use, "inodes", U)
    assert inodes.text == "not checked: df-inodes not-installed (df: command not found)"
    # A signal that means nothing for the resource has no cell at all.
    [swap] = [r for r in use.rows if r.resource == "swap"]
    assert list(swap.cells) == [U]


def test_each_filesystem_has_its_own_rows_from_the_df_output() -> None:
    use = summary(journalled("cpu"))
    space = [r for r in use.rows if r.resource.startswith("filesystem:")]
    assert [r.label for r in space] == ["space /"]
    assert space[0].cells[U].checked_by == ("df",)


def test_a_full_filesystem_is_the_cell_of_that_filesystem_only() -> None:
    incident = journalled("cpu")
    record_collector_run(incident, "h1", "df",
                         (LOAD.parent / "df" / "peers" / "df-hP-var-97.txt").read_bytes())
    use = summary(incident)
    full = cell(use, "filesystem:/mnt/peer-var", U)
    assert full.worst.summary.startswith("/mnt/peer-var is 97% full")
    assert cell(use, "filesystem:/", U).state is CellState.OK


def test_constructed_network_errors_and_retransmits_reach_their_cells() -> None:
    incident = journalled("close-wait")
    record_collector_run(incident, "h1", "sar-net",
                         (LOAD / "sar-net-errors-constructed.txt").read_bytes())
    record_collector_run(incident, "h1", "sar-tcp",
                         (LOAD / "sar-tcp-retransmits-constructed.txt").read_bytes())
    use = summary(incident)
    assert cell(use, "network", U).worst.summary.startswith(
        "interface use 95% of its link speed on eth0")
    assert "rxerr 2/s" in cell(use, "network", E).worst.summary
    assert cell(use, "network", S).worst.summary.startswith("25 packets dropped per second")
    tcp = cell(use, "tcp", E)
    assert {m.finding.fact for m in tcp.found} == {"tcp_close_wait", "tcp_retransmits"}
    assert "(+1 more)" in tcp.text


def test_show_and_its_json_carry_the_summary() -> None:
    incident = journalled("memory")
    shown = run_cli("show", incident.id)
    assert "USE: h1" in shown.stdout and "memory available 1995 MiB" in shown.stdout
    data = json.loads(run_cli("show", incident.id, "--json").stdout)
    [host] = data["use"]
    [memory] = [r for r in host["rows"] if r["resource"] == "memory"]
    assert memory["utilization"]["level"] == "warning"
    assert set(memory["utilization"]["sources"]) == {"free", "top", "system"}
    assert memory["saturation"]["state"] == "ok"
    assert memory["errors"] == {"state": "not checked", "text":
                                "not checked: run dmesg or kern-log",
                                "reason": "run dmesg or kern-log"}


def test_the_postmortem_tells_the_fix_in_the_use_table_and_one_finding_row() -> None:
    """A full filesystem, then the same one after the fix: one finding row that
    says a later run no longer shows it, and a USE row that says so too."""
    from runbook.report.postmortem import render

    incident = journalled("cpu")
    peers = LOAD.parent / "df" / "peers"
    record_collector_run(incident, "h1", "df", (peers / "df-hP-var-97.txt").read_bytes())
    record_collector_run(incident, "h1", "df", (peers / "df-hP-var-43.txt").read_bytes())
    text = render(incident.state(), incident_dir=incident.store.directory(incident.id))
    supporting = text[text.index("## Supporting information"):]
    rows = [line for line in supporting.split("\n") if "/mnt/peer-var" in line]
    finding_rows = [r for r in rows if r.startswith("| critical | disk:/mnt/peer-var")]
    assert len(finding_rows) == 1, rows
    # df at 43% states no finding: the row says the later run no longer shows it.
    assert "; gone in the later df run at " in finding_rows[0]
    [use_row] = [r for r in rows if r.startswith("| space /mnt/peer-var |")]
    assert "critical: /mnt/peer-var is 97% full" in use_row and "[df:" in use_row
    assert "gone in the later df run at" in use_row
    assert "| —" in use_row  # saturation means nothing for a filesystem's space
    assert "USE summary over the incident" in supporting
