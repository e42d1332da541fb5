"""Benchmark: the "full" bundle on N loopback sshd hosts, against OpenSSH.

Run twice in one go, on two labs that differ only in what a login shell costs:
- "free":   an empty ~/.bashrc;
- "costly": a ~/.bashrc that burns --login-cost seconds of CPU (0.2 by default),
            what pyenv, conda or nvm init costs on many real hosts.

For each lab and fleet size it measures, in the same run and on the same daemons:
- runbook: one connection and one session per host, every command through the
  host runner (samplers together, the others 2 at a time);
- parallel OpenSSH: one `ssh host 'cmd1; cmd2; …' &` per host, all hosts at once
  (the usual shell loop: a host's commands run one after another);
- the floor: one OpenSSH session per sampler, all at once on one host: one
  handshake, one login shell and the slowest sampler, with nothing else to do.

It also counts what the hosts saw: sshd sessions per host (from sshd's own
VERBOSE log) and commands reported as timed out or not run (none of the bundle's
commands hangs here, so every one of them would be false).

Targets (each lab): runbook(20) / runbook(1) <= 1.3; runbook(20) / floor <= 1.3;
runbook <= parallel OpenSSH at every size; 0 false timeouts; <= 2 sessions a host.

Usage: python bench/collect_bench.py [--hosts 1,10,20,50] [--baseline-hosts 1,10,20,50]
       [--login-cost 0.2] [--labs free,costly] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def sessions_started(lab) -> dict[str, int]:  # noqa: ANN001
    return {h.name: len(re.findall(r"Starting session: ", (h.directory / "sshd.log").read_text()))
            for h in lab.hosts}


def runbook_run(hosts, lab, collectors) -> dict[str, Any]:  # noqa: ANN001
    from runbook.collection.collect import JournalRecorder
    from runbook.engine.runner import Collection, CollectOptions, RunStatus
    from runbook.incident.store import IncidentStore
    from runbook.playbook import find_playbook
    from runbook.transport.ssh import SshOptions

    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=hosts,
                            title="bench", actor="bench")
    options = CollectOptions(ssh=SshOptions(known_hosts_files=[lab.known_hosts],
                                            use_agent=False, default_identities=False))
    before = sessions_started(lab)
    started = time.monotonic()
    report = Collection(JournalRecorder(incident), hosts, collectors, options).run()
    elapsed = time.monotonic() - started
    after = sessions_started(lab)
    statuses: dict[str, int] = {}
    for result in report.hosts:
        for run in result.runs:
            statuses[str(run.status)] = statuses.get(str(run.status), 0) + 1
    names = {h.name for h in hosts}
    return {
        "seconds": round(elapsed, 2),
        "hosts_answered": sum(1 for h in report.hosts if h.answered),
        "statuses": statuses,
        "false_timeouts": statuses.get(str(RunStatus.TIMEOUT), 0),
        "not_run": statuses.get(str(RunStatus.NOT_RUN), 0),
        "max_sessions_per_host": max(after[n] - before[n] for n in names),
    }


def chain(collector) -> str:  # noqa: ANN001
    commands = [collector.command, *collector.fallbacks]
    return "{ " + " || ".join(f"( {c} )" for c in commands) + "; }"


def ssh_args(lab, host) -> list[str]:  # noqa: ANN001
    return ["ssh", "-q", "-i", str(lab.client_key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host.port),
            f"{lab.user}@{host.address}"]


def remote_commands(collectors) -> list:  # noqa: ANN001
    return [c for c in collectors if c.runs_on == "target" and "{" not in c.command]


def openssh_parallel(lab_hosts, lab, collectors, out_dir: Path) -> float:  # noqa: ANN001
    script = "; ".join(chain(c) for c in remote_commands(collectors))
    ping = [c for c in collectors if c.name == "ping"]
    started = time.monotonic()
    processes = []
    for host in lab_hosts:
        sink = open(out_dir / f"{host.name}.out", "wb")  # noqa: SIM115
        processes.append(subprocess.Popen([*ssh_args(lab, host), script], stdout=sink,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        if ping:
            command = ping[0].command.replace("{address}", shlex.quote(host.address))
            processes.append(subprocess.Popen(command, shell=True, stdout=sink,
                                              stderr=subprocess.STDOUT))
    for process in processes:
        process.wait()
    return time.monotonic() - started


def floor(host, lab, collectors, out_dir: Path) -> float:  # noqa: ANN001
    """Every sampler in its own OpenSSH session at once: the wall time is one
    handshake, one login shell and the slowest sampler."""
    samplers = [c for c in remote_commands(collectors) if c.samples_for > 0]
    started = time.monotonic()
    with open(out_dir / "floor.out", "wb") as sink:
        processes = [subprocess.Popen([*ssh_args(lab, host), chain(c)], stdout=sink,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                     for c in samplers]
        for process in processes:
            process.wait()
    return time.monotonic() - started


def measure_lab(kind: str, login_cost: float, sizes: list[int], baseline_sizes: list[int],
                collectors, scratch: Path) -> dict[str, Any]:  # noqa: ANN001
    from runbook.drill.sshd_lab import SshdLab
    from runbook.hosts import Host

    figures: dict[str, Any] = {"login_cost_s": login_cost, "runbook": {},
                               "openssh_parallel": {}}
    count = max(sizes + baseline_sizes)
    first_octet = 10 if kind == "free" else 70
    with SshdLab(scratch / f"lab-{kind}", count=count, first_octet=first_octet,
                 login_cost=login_cost) as lab:
        hosts = [Host(name=h.name, address=h.address, port=h.port, user=lab.user,
                      identity_file=str(lab.client_key), source="bench") for h in lab.hosts]
        runbook_run(hosts[:1], lab, collectors)  # warm-up: page cache, sshd's first fork
        out = scratch / f"out-{kind}"
        out.mkdir()
        figures["floor_s"] = round(floor(lab.hosts[0], lab, collectors, out), 2)
        print(f"[{kind}] floor (one session per sampler, one host): "
              f"{figures['floor_s']:6.2f} s", flush=True)
        for n in sizes:
            result = runbook_run(hosts[:n], lab, collectors)
            figures["runbook"][n] = result
            print(f"[{kind}] runbook          {n:>3} hosts: {result['seconds']:6.2f} s  "
                  f"sessions/host {result['max_sessions_per_host']}  "
                  f"timeouts {result['false_timeouts']}  not-run {result['not_run']}  "
                  f"{result['statuses']}", flush=True)
        for n in baseline_sizes:
            target = out / f"openssh-{n}"
            target.mkdir()
            elapsed = openssh_parallel(lab.hosts[:n], lab, collectors, target)
            figures["openssh_parallel"][n] = {"seconds": round(elapsed, 2)}
            print(f"[{kind}] parallel OpenSSH {n:>3} hosts: {elapsed:6.2f} s", flush=True)
    rb, ob = figures["runbook"], figures["openssh_parallel"]
    ratios: dict[str, Any] = {}
    if 1 in rb and 20 in rb:
        ratios["runbook_20_vs_1"] = round(rb[20]["seconds"] / rb[1]["seconds"], 2)
    if 20 in rb:
        ratios["runbook_20_vs_floor"] = round(rb[20]["seconds"] / figures["floor_s"], 2)
    ratios["openssh_vs_runbook"] = {n: round(ob[n]["seconds"] / rb[n]["seconds"], 2)
                                    for n in ob if n in rb}
    ratios["false_timeouts"] = sum(r["false_timeouts"] for r in rb.values())
    ratios["max_sessions_per_host"] = max(r["max_sessions_per_host"] for r in rb.values())
    figures["ratios"] = ratios
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,10,20,50")
    parser.add_argument("--baseline-hosts", default="1,10,20,50")
    parser.add_argument("--bundle", default="full")
    parser.add_argument("--login-cost", type=float, default=0.2,
                        help="seconds of CPU the costly lab's login shell burns")
    parser.add_argument("--labs", default="free,costly")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.hosts.split(",")]
    baseline_sizes = [int(n) for n in args.baseline_hosts.split(",") if n]

    scratch = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    os.environ["RUNBOOK_HOME"] = str(scratch / "home")
    from runbook.engine.catalog import expand

    collectors = list(expand(bundle=args.bundle).collectors)
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "bundle": args.bundle, "collectors": len(collectors), "labs": {},
    }
    for kind in args.labs.split(","):
        cost = 0.0 if kind == "free" else args.login_cost
        figures["labs"][kind] = measure_lab(kind, cost, sizes, baseline_sizes, collectors,
                                            scratch)

    print("\ntargets: 20/1 <= 1.3, 20/floor <= 1.3, OpenSSH/runbook >= 1, "
          "0 false timeouts, <= 2 sessions a host")
    for kind, lab in figures["labs"].items():
        print(f"[{kind}] {json.dumps(lab['ratios'])}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
