"""Benchmark: the "full" bundle on N loopback sshd hosts, against OpenSSH.

For each fleet size it measures, in the same run and on the same daemons:
- runbook: one paramiko connection per host, its collectors as concurrent channels;
- parallel OpenSSH: one `ssh host 'cmd1; cmd2; …' &` per host, all hosts at once
  (the usual shell-loop approach: a host's commands run one after another);
- a sequential ssh loop: `for cmd in …; do ssh host cmd; done` (one host only:
  it grows linearly, and 20 hosts would take a quarter of an hour).

It prints wall times and the two ratios the targets are written in:
  scaling = runbook(20 hosts) / runbook(1 host)            target <= 1.5
  speedup = parallel OpenSSH(20 hosts) / runbook(20 hosts)  target >= 4

Usage: python bench/collect_bench.py [--hosts 1,10,20,50] [--baseline-hosts 1,10,20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def runbook_run(hosts, lab, collectors) -> tuple[float, dict[str, int]]:
    from runbook.engine.runner import Collection, CollectOptions
    from runbook.playbook import find_playbook
    from runbook.store import IncidentStore
    from runbook.transport.ssh import SshOptions

    store = IncidentStore()
    incident = store.create(playbook=find_playbook("generic-host"), hosts=hosts,
                            title="bench", actor="bench")
    options = CollectOptions(ssh=SshOptions(known_hosts_files=[lab.known_hosts],
                                            use_agent=False, default_identities=False))
    started = time.monotonic()
    report = Collection(incident, hosts, collectors, options).run()
    elapsed = time.monotonic() - started
    states: dict[str, int] = {}
    for result in report.hosts:
        states[str(result.state)] = states.get(str(result.state), 0) + 1
        for run in result.runs:
            states[f"run:{run.status}"] = states.get(f"run:{run.status}", 0) + 1
    return elapsed, states


def chain(collector) -> str:
    commands = [collector.command, *collector.fallbacks]
    return "{ " + " || ".join(f"( {c} )" for c in commands) + "; }"


def ssh_args(lab, host) -> list[str]:
    return ["ssh", "-q", "-i", str(lab.client_key), "-o", f"UserKnownHostsFile={lab.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(host.port),
            f"root@{host.address}"]


def openssh_parallel(lab_hosts, lab, collectors, out_dir: Path) -> float:
    remote = [c for c in collectors if c.runs_on == "target" and "{" not in c.command]
    script = "; ".join(chain(c) for c in remote)
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


def openssh_sequential(host, lab, collectors, out_dir: Path) -> float:
    remote = [c for c in collectors if c.runs_on == "target" and "{" not in c.command]
    started = time.monotonic()
    with open(out_dir / "sequential.out", "wb") as sink:
        for collector in remote:
            subprocess.run([*ssh_args(lab, host), chain(collector)], stdout=sink,
                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,10,20,50")
    parser.add_argument("--baseline-hosts", default="1,10,20")
    parser.add_argument("--bundle", default="full")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    sizes = [int(n) for n in args.hosts.split(",")]
    baseline_sizes = [int(n) for n in args.baseline_hosts.split(",")]

    scratch = Path(tempfile.mkdtemp(prefix="runbook-bench-"))
    os.environ["RUNBOOK_HOME"] = str(scratch / "home")
    from runbook.engine.catalog import expand
    from runbook.hosts import Host
    from runbook.lab import SshdLab

    collectors = list(expand(bundle=args.bundle).collectors)
    figures: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "bundle": args.bundle, "collectors": len(collectors), "runbook": {}, "openssh_parallel": {},
    }
    with SshdLab(scratch / "lab", count=max(sizes + baseline_sizes)) as lab:
        hosts = [Host(name=h.name, address=h.address, port=h.port, user="root",
                      identity_file=str(lab.client_key), source="bench") for h in lab.hosts]
        # warm-up: page cache, sshd first fork, key loading
        runbook_run(hosts[:1], lab, collectors)
        for n in sizes:
            elapsed, states = runbook_run(hosts[:n], lab, collectors)
            figures["runbook"][n] = {"seconds": round(elapsed, 2), "states": states}
            print(f"runbook           {n:>3} hosts: {elapsed:6.2f} s   {states}", flush=True)
        for n in baseline_sizes:
            out = scratch / f"openssh-{n}"
            out.mkdir()
            elapsed = openssh_parallel(lab.hosts[:n], lab, collectors, out)
            figures["openssh_parallel"][n] = {"seconds": round(elapsed, 2)}
            print(f"parallel OpenSSH  {n:>3} hosts: {elapsed:6.2f} s", flush=True)
        out = scratch / "sequential"
        out.mkdir()
        elapsed = openssh_sequential(lab.hosts[0], lab, collectors, out)
        figures["openssh_sequential_1_host"] = {"seconds": round(elapsed, 2)}
        print(f"sequential ssh      1 host : {elapsed:6.2f} s", flush=True)

    rb = figures["runbook"]
    ob = figures["openssh_parallel"]
    if 1 in rb and 20 in rb:
        scaling = rb[20]["seconds"] / rb[1]["seconds"]
        figures["scaling_20_vs_1"] = round(scaling, 2)
        print(f"scaling: runbook 20 hosts / 1 host = {scaling:.2f}  (target <= 1.5)")
    if 20 in rb and 20 in ob:
        speedup = ob[20]["seconds"] / rb[20]["seconds"]
        figures["speedup_vs_parallel_openssh_20"] = round(speedup, 2)
        print(f"speedup: parallel OpenSSH / runbook at 20 hosts = {speedup:.2f}  (target >= 4)")
    if 1 in rb:
        seq = figures["openssh_sequential_1_host"]["seconds"]
        print(f"speedup: sequential ssh loop / runbook at 1 host = {seq / rb[1]['seconds']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
