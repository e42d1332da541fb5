"""Collecting on localhost: subprocess and psutil, no SSH."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import psutil

from runbook.collection.collect import JournalRecorder
from runbook.engine.catalog import Collector, expand
from runbook.engine.runner import Collection, RunStatus
from runbook.hosts import Host
from runbook.incident import EventType
from runbook.incident.store import IncidentStore
from runbook.playbook import find_playbook
from runbook.transport.base import HostState
from runbook.transport.local import LocalConnection

LOCAL = Host(name="localhost", address="localhost", local=True, source="local")


def collect(*collectors: Collector, hosts: list[Host] | None = None):
    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=hosts or [LOCAL],
                            title="local", actor="tester")
    report = Collection(JournalRecorder(incident), hosts or [LOCAL], list(collectors)).run()
    return store, incident, report


def test_local_run_streams_both_outputs_and_exit_code() -> None:
    out: list[bytes] = []
    err: list[bytes] = []
    outcome = LocalConnection().run("echo out; echo err >&2; exit 4", timeout=5,
                                    on_stdout=out.append, on_stderr=err.append)
    assert outcome.exit_code == 4
    assert b"".join(out) == b"out\n" and b"".join(err) == b"err\n"


def test_local_timeout_stops_the_whole_process_group() -> None:
    marker = f"{time.monotonic_ns() % 100000 + 700000}"
    started = time.monotonic()
    outcome = LocalConnection().run(f"sleep {marker} & sleep {marker}; echo never", timeout=1,
                                    on_stdout=lambda _: None, on_stderr=lambda _: None)
    assert outcome.timed_out and outcome.stopped_remotely
    assert time.monotonic() - started < 5
    left = [p for p in psutil.process_iter(["cmdline"])
            if p.info["cmdline"] == ["sleep", marker]]
    assert left == [], "the background child must be stopped too"


def test_full_bundle_on_localhost_records_evidence_and_journal(runbook_home: Path) -> None:
    store, incident, report = collect(*expand(bundle="load").collectors)
    [host] = report.hosts
    assert host.state == HostState.OK, [(r.collector, r.status, r.message) for r in host.runs]
    by_name = {r.collector: r for r in host.runs}
    # dstat is not installed here: the fallback answered, and the summary says so
    if by_name["dstat"].evidence and len(by_name["dstat"].evidence.attempts) > 1:
        assert "fallback" in (by_name["dstat"].message or "")
    system = by_name["system"]
    assert system.status == RunStatus.OK
    text = (store.directory(incident.id) / system.evidence.stdout).read_text()
    assert text.startswith("cpus: ") and "memory:" in text and "tcp_states:" in text
    state = store.load(incident.id)
    ran = [e for e in state.events if e.type == EventType.COLLECTOR_RAN]
    assert len(ran) == len([r for r in host.runs if r.evidence])
    for event in ran:
        meta = store.directory(incident.id) / event.data["meta"]
        assert meta.exists() and event.data["command"]
        assert event.data["started_at"] <= event.data["ended_at"]


def test_missing_tool_falls_back_and_only_missing_is_not_installed() -> None:
    fallback = Collector("probe", "definitely-not-a-tool --x", "test", "probe",
                         fallbacks=("echo fallback-ok",))
    missing = Collector("absent", "definitely-not-a-tool", "test", "absent",
                        fallbacks=("also-not-a-tool",))
    store, incident, report = collect(fallback, missing)
    runs = {r.collector: r for r in report.hosts[0].runs}
    assert runs["probe"].status == RunStatus.OK
    assert "echo fallback-ok" in runs["probe"].message
    out = store.directory(incident.id) / runs["probe"].evidence.stdout
    assert out.read_bytes() == b"fallback-ok\n"
    assert runs["absent"].status == RunStatus.NOT_INSTALLED
    assert "not installed" in runs["absent"].message
    assert report.hosts[0].state == HostState.FAILED


def test_output_past_the_cap_is_marked_and_counted() -> None:
    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=[LOCAL], title="cap",
                            actor="t")
    from runbook.engine.runner import CollectOptions

    big = Collector("big", "head -c 300000 /dev/zero", "test", "big")
    report = Collection(JournalRecorder(incident), [LOCAL], [big],
                        CollectOptions(max_output=100000)).run()
    run = report.hosts[0].runs[0]
    data = (store.directory(incident.id) / run.evidence.stdout).read_bytes()
    assert data.startswith(b"\0" * 100000)
    assert b"[runbook: output truncated after 100000 bytes; 200000 more bytes" in data
    assert run.evidence.stdout_bytes == 300000 and run.evidence.truncated


def test_a_parser_or_collector_bug_does_not_stop_other_collectors(monkeypatch) -> None:
    import runbook.engine.runner as runner

    def broken(*_args, **_kwargs):
        raise RuntimeError("bug in rendering")

    ok = Collector("fine", "echo fine", "test", "fine")
    bad = Collector("bad", "echo {address}", "test", "bad")
    monkeypatch.setattr(runner, "render_command",
                        lambda template, host: broken() if "{address}" in template else template)
    store, incident, report = collect(ok, bad)
    runs = {r.collector: r for r in report.hosts[0].runs}
    assert runs["fine"].status == RunStatus.OK
    assert runs["bad"].status == RunStatus.ERROR and "internal error" in runs["bad"].message
    log = Path(store.root).parent / "logs" / "runbook.log"
    assert "bug in rendering" in log.read_text()


def test_app_logs_named_for_a_collection_are_tailed_with_quoted_paths(tmp_path: Path) -> None:
    from runbook.collection.collect import CollectRequest, plan_collection

    odd = tmp_path / "app log; $(touch pwned).log"
    odd.write_text("line one\nERROR something broke\n")
    store = IncidentStore()
    plan = plan_collection(store, CollectRequest(hosts=["localhost"], collectors=["app-logs"],
                                                 app_logs=[str(odd)]))
    report = plan.collection().run()
    [run] = report.hosts[0].runs
    assert run.status == RunStatus.OK
    out = (store.directory(plan.incident.id) / run.evidence.stdout).read_text()
    assert "ERROR something broke" in out
    assert not (Path.cwd() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_a_spare_worker_runs_the_request_it_is_given_then_nothing_is_left(
        runbook_home: Path) -> None:
    """What the app does on `r`: a worker started ahead of time (imports done)
    takes the request on stdin, reports progress lines and records evidence."""
    import json

    from runbook.collection.collect import CollectRequest
    from runbook.collection.worker import SpareWorker

    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=[LOCAL],
                            title="spare", actor="tester")
    def ours() -> set[int]:  # other tests' daemons (the sshd fleet) are children too
        alive = set()
        for process in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.status() != psutil.STATUS_ZOMBIE:
                    alive.add(process.pid)
        return alive - others

    others = {p.pid for p in psutil.Process().children(recursive=True)}
    workers = SpareWorker()
    workers.prepare()
    before = ours()
    assert len(before) == 1, "a spare is waiting"
    [spare] = before
    deadline = time.monotonic() + 10  # `nice` lowers it, then becomes the worker
    while psutil.Process(spare).nice() != 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert psutil.Process(spare).nice() == 5, "below the app's priority"
    child = workers.start(CollectRequest(hosts=["localhost"], incident_id=incident.id,
                                         collectors=["uptime"], actor="tester"), store.root)
    assert child.pid in before, "the spare took the request"
    assert child.stdout is not None
    lines = [json.loads(line) for line in child.stdout]
    assert child.wait(timeout=60) == 0
    assert lines[-1]["done"] and lines[-1]["answered"] == 1
    assert any(line.get("collector") == "uptime" and line.get("status") == "ok"
               for line in lines)
    [ran] = [e for e in store.load(incident.id).events if e.type == EventType.COLLECTOR_RAN]
    assert ran.data["collector"] == "uptime" and ran.data["status"] == "ok"
    workers.prepare()  # the next one, as after every collection
    workers.close()
    workers.prepare()  # closed: starts nothing more
    time.sleep(0.2)
    assert ours() == set(), "no worker is left waiting"


def test_a_capture_cut_at_the_cap_says_truncated_everywhere_it_is_shown() -> None:
    """`collect`, `show`, `--json` and the postmortem all say how much was kept of
    how much, not a plain `ok`."""
    import json
    import re

    from tests.conftest import run_cli

    result = run_cli("collect", "localhost", "-c", "ps", "--max-output", "1K")
    flat = " ".join(result.stdout.replace("│", " ").split())
    assert re.search(r"ps: truncated: stdout kept 1\.0 KiB of [\d.]+ KiB", flat), result.stdout
    incident = re.search(r"runbook show (\S+)", result.stdout).group(1)  # type: ignore[union-attr]

    shown = " ".join(run_cli("show", incident).stdout.replace("│", " ").split())
    assert re.search(r"Collected ps on localhost: ok \(exit 0.*\); truncated: stdout kept "
                     r"1\.0 KiB of", shown), shown

    data = json.loads(run_cli("collect", "localhost", "-c", "ps", "--max-output", "1K",
                              "--json").stdout)
    [run] = data["hosts"][0]["runs"]
    assert run["truncated"] is True and run["evidence"]["stdout_kept"] == 1024
    assert run["evidence"]["stdout_bytes"] > 1024

    report = run_cli("report", incident).stdout
    assert "stdout (truncated)" in report, report
