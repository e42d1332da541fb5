"""Benchmark: postmortem export of a big incident, and search in a big archive.

1. Export: an incident with N events (default 5,000) and M evidence files
   (default 500, each with findings that the report excerpts). Measures the
   Markdown postmortem (en) and the JSON export, each end to end from the
   journal on disk. Baseline, in the same process: replaying and folding the
   same journal (what every front end pays to show the incident at all).
   Target: export < 1 s.
2. Search: an archive of K incidents (default 10,000), built with
   `Archive.add` from generated documents of realistic size (title, hosts,
   findings, answers, notes, commands, a ~4 KB postmortem). Measures many
   queries (single words common and rare, two words, hosts, commands):
   p50/p95 of `Archive.search` (ranked, with snippets). Baseline, in the same
   process: the same queries as `LIKE '%word%'` scans over the same texts.
   Target: p95 < 50 ms.

Usage: python bench/report_bench.py [--events 5000] [--evidence 500]
                                    [--incidents 10000] [--queries 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORDS = (
    "disk", "full", "memory", "oom", "killer", "nginx", "postgres", "replication", "lag",
    "latency", "timeout", "queue", "backlog", "kafka", "consumer", "cpu", "steal", "swap",
    "inode", "logrotate", "deploy", "rollback", "certificate", "expired", "dns", "resolver",
    "packet", "loss", "retransmit", "load", "balancer", "healthcheck", "redis", "eviction",
    "cron", "job", "runaway", "process", "zombie", "filesystem", "readonly", "ntp", "drift",
    "kernel", "panic", "segfault", "java", "heap", "gc", "pause", "thread", "pool",
    "exhaustion", "connection", "refused", "tls", "handshake", "ssh", "bastion", "firewall",
    "rule", "iptables", "conntrack", "table", "full",
)
COMMANDS = ("systemctl restart nginx", "systemctl restart postgresql", "logrotate -f "
            "/etc/logrotate.conf", "kill -9 {pid}", "sysctl -w net.netfilter.nf_conntrack_max="
            "262144", "rm -f /var/log/app/*.gz", "systemctl reload haproxy",
            "redis-cli config set maxmemory 4gb", "apt-get install --only-upgrade openssl")


def build_incident(store_root: Path, events: int, evidence: int) -> str:
    """A journal written directly (no fsync per event: this is test data)."""
    from runbook.incident.journal import Event, new_event_id
    from runbook.playbook import find_playbook

    rng = random.Random(5)
    incident_id = "20261129-0000-beef"
    directory = store_root / incident_id
    (directory / "evidence").mkdir(parents=True)
    book = find_playbook("generic-host")
    hosts = [{"name": f"web{i:02d}", "address": f"10.1.0.{i}", "port": 22, "role": "web"}
             for i in range(1, 21)]
    start = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
    clock = iter(start + timedelta(seconds=i) for i in range(10 * events))
    lines: list[str] = []

    def emit(kind: str, data: dict) -> None:
        lines.append(Event(kind, next(clock), "alice@ops", data, new_event_id()).to_json())

    emit("incident.opened", {
        "title": "Load high on the web tier", "severity": "SEV2", "hosts": hosts,
        "playbook": {"name": "generic-host", "definition":
                     book.playbook.model_dump(mode="json")}})
    for number in range(evidence):
        host = hosts[number % len(hosts)]["name"]
        folder = directory / "evidence" / host
        folder.mkdir(exist_ok=True)
        stem = f"2026112909{number:04d}-dmesg"
        body = [f"[Sat Nov 29 09:{i % 60:02d}:00 2026] eth0: link ok seq {i}" for i in range(200)]
        body[120] = ("[Sat Nov 29 09:40:00 2026] Out of memory: Killed process "
                     f"{1000 + number} (java) total-vm:100kB password=hunter{number}")
        (folder / f"{stem}.stdout").write_text("\n".join(body) + "\n")
        (folder / f"{stem}.stderr").write_text("")
        (folder / f"{stem}.json").write_text("{}")
        emit("collector.ran", {
            "host": host, "collector": "dmesg", "command": "dmesg -T", "exit_code": 0,
            "status": "ok", "stdout": f"evidence/{host}/{stem}.stdout",
            "stderr": f"evidence/{host}/{stem}.stderr", "meta": f"evidence/{host}/{stem}.json",
            "stdout_bytes": 9000, "stderr_bytes": 0, "truncated": False, "sha256": "ab" * 32,
            "findings": [{"level": "critical", "signal": "errors", "resource": "memory",
                          "summary": "the host ran out of memory: the OOM killer killed 1 "
                                     "process: java", "line": 121, "evidence": body[120],
                          "host": host, "collector": "dmesg"}]})
    command_number = 0
    while len(lines) < events:
        roll = rng.random()
        if roll < 0.5:
            emit("note.added", {"text": " ".join(rng.choices(WORDS, k=12))})
        elif roll < 0.8:
            command_id = f"c{command_number:04d}"
            command_number += 1
            command = rng.choice(COMMANDS)
            host = rng.choice(hosts)["name"]
            emit("command.proposed", {"command_id": command_id, "command": command,
                                      "hosts": [host], "commands": {host: command}})
            emit("command.approved", {"command_id": command_id, "approver": "bob"})
            emit("command.executed", {"command_id": command_id, "host": host,
                                      "command": command, "exit_code": rng.choice((0, 0, 1)),
                                      "status": "ok", "approvers": ["bob"]})
        else:
            emit("answer.recorded", {"step": "impact", "records": "impact",
                                     "text": " ".join(rng.choices(WORDS, k=30))})
    (directory / "events.jsonl").write_text("\n".join(lines[:events]) + "\n")
    return incident_id


def timed(function, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def bench_export(events: int, evidence: int) -> dict:
    from runbook.incident.store import IncidentStore
    from runbook.report.export import incident_export
    from runbook.report.postmortem import render

    store = IncidentStore()
    incident_id = build_incident(store.root, events, evidence)
    directory = store.directory(incident_id)
    state = store.load(incident_id)
    assert len(state.events) == events, len(state.events)
    fold = timed(lambda: store.load(incident_id))
    markdown = timed(lambda: render(store.load(incident_id), incident_dir=directory))
    as_json = timed(lambda: json.dumps(incident_export(store.load(incident_id),
                                                       incident_dir=directory), default=str))
    text = render(state, incident_dir=directory)
    assert "hunter1" not in text and "[REDACTED]" in text
    return {"events": events, "evidence_files": evidence, "replay_fold_s": fold,
            "markdown_s": markdown, "json_s": as_json, "markdown_bytes": len(text),
            "markdown_over_fold": markdown / fold, "json_over_fold": as_json / fold}


def document(number: int, rng: random.Random):
    from runbook.report.archive import Document

    hosts = [f"{rng.choice(('web', 'db', 'queue', 'cache'))}{rng.randint(1, 400):03d}"
             for _ in range(rng.randint(1, 4))]
    roles = sorted({h.rstrip("0123456789") for h in hosts})
    words = lambda k: " ".join(rng.choices(WORDS, k=k))  # noqa: E731
    findings = [f"critical {h} dmesg {rng.choice(('memory', 'disk', 'cpu'))}: {words(10)}"
                for h in hosts]
    commands = rng.sample(COMMANDS, 2)
    title = f"{words(3)} on {hosts[0]}"
    return Document(
        id=f"2026{number:08d}-{number % 65536:04x}", title=title, severity="SEV3",
        status="closed", drill=False, playbook="generic-host",
        opened_at="2026-11-29T09:00:00Z", resolved_at="2026-11-29T10:00:00Z",
        closed_at="2026-11-29T11:00:00Z", hosts=hosts, roles=roles, resources=["memory"],
        remediation=[{"command": commands[0], "host": hosts[0], "step": "fix", "at": None}],
        findings=findings, answers={"impact": words(25), "root-cause": words(25)},
        texts={"title": title, "hosts": " ".join(hosts), "roles": " ".join(roles),
               "findings": "\n".join(findings), "answers": words(60), "notes": words(80),
               "commands": "\n".join(commands), "postmortem": words(600)})


def bench_search(incidents: int, queries: int, directory: Path) -> dict:
    from runbook.report.archive import Archive

    rng = random.Random(7)
    path = directory / "archive.sqlite"
    archive = Archive(path)
    archive.db.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    docs = [document(i, rng) for i in range(incidents)]
    for doc in docs:
        archive.add(doc)
    build = time.perf_counter() - started
    # The baseline table: the same texts, scanned with LIKE.
    archive.db.execute("CREATE TABLE plain (id TEXT, body TEXT)")
    archive.db.executemany("INSERT INTO plain VALUES (?, ?)",
                           [(d.id, "\n".join(d.texts.values())) for d in docs])
    archive.db.commit()
    asked = []
    for number in range(queries):
        kind = number % 4
        if kind == 0:
            asked.append(rng.choice(WORDS))
        elif kind == 1:
            asked.append(" ".join(rng.sample(WORDS, 2)))
        elif kind == 2:
            asked.append(rng.choice(docs).hosts[0])
        else:
            asked.append(rng.choice(COMMANDS).split()[-1])
    fts, like, found = [], [], 0
    for query in asked:
        began = time.perf_counter()
        hits = archive.search(query, 10)
        fts.append(time.perf_counter() - began)
        found += bool(hits)
        first = query.split()[0]
        began = time.perf_counter()
        # Every matching row must be seen before any ranking: a full scan.
        archive.db.execute("SELECT count(*) FROM plain WHERE body LIKE ?",
                           (f"%{first}%",)).fetchall()
        like.append(time.perf_counter() - began)
    archive.close()

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[int(q) - 1]

    return {"incidents": incidents, "queries": queries, "queries_with_hits": found,
            "build_s": build, "archive_mb": path.stat().st_size / 1e6,
            "fts_p50_ms": pct(fts, 50) * 1000, "fts_p95_ms": pct(fts, 95) * 1000,
            "fts_max_ms": max(fts) * 1000,
            "like_p50_ms": pct(like, 50) * 1000, "like_p95_ms": pct(like, 95) * 1000,
            "like_over_fts_p50": pct(like, 50) / pct(fts, 50)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--evidence", type=int, default=500)
    parser.add_argument("--incidents", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="report-bench-") as scratch:
        os.environ["RUNBOOK_HOME"] = str(Path(scratch) / "home")
        export = bench_export(args.events, args.evidence)
        print(f"export: {args.events} events, {args.evidence} evidence files "
              f"({export['markdown_bytes'] / 1e6:.1f} MB of Markdown)")
        print(f"  replay + fold (baseline) {export['replay_fold_s'] * 1000:8.1f} ms")
        print(f"  Markdown postmortem      {export['markdown_s'] * 1000:8.1f} ms  "
              f"({export['markdown_over_fold']:.1f}x baseline)  target < 1000 ms")
        print(f"  JSON export              {export['json_s'] * 1000:8.1f} ms  "
              f"({export['json_over_fold']:.1f}x baseline)  target < 1000 ms")
        search = bench_search(args.incidents, args.queries, Path(scratch))
        print(f"search: {args.incidents} archived incidents ({search['archive_mb']:.0f} MB, "
              f"built in {search['build_s']:.1f} s), {args.queries} queries, "
              f"{search['queries_with_hits']} with hits")
        print(f"  FTS5 ranked + snippets   p50 {search['fts_p50_ms']:6.2f} ms  "
              f"p95 {search['fts_p95_ms']:6.2f} ms  max {search['fts_max_ms']:6.2f} ms  "
              "target p95 < 50 ms")
        print(f"  LIKE scan (baseline)     p50 {search['like_p50_ms']:6.2f} ms  "
              f"p95 {search['like_p95_ms']:6.2f} ms  ({search['like_over_fts_p50']:.1f}x "
              "FTS5 at p50)")
    figures = {"date": datetime.now(UTC).isoformat(timespec="minutes"),
               "python": platform.python_version(), "argv": sys.argv[1:],
               "export": export, "search": search}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
