"""Benchmark: `runbook listen` under bulk webhooks, as Alertmanager sends them.

The real `runbook listen` runs as its own process on loopback, with a scratch
RUNBOOK_HOME that already holds --incidents other incidents (an archive of
past and open incidents, as a long-lived listener's home does). Each figure is
one POST of Alertmanager's v4 webhook, timed from the request to the reply
(the reply comes once every alert is in the journal, fsynced):

- alerts per second for webhooks of 1, 100 and 2,000 firing alerts of one new
  group (each alert its own fingerprint: the first opens the incident, the
  rest are recorded into it);
- the same 2,000 again (Alertmanager's repeat notification): nothing new to
  record, each alert is recognised as repeated;
- the first webhook after the listener starts, which reads every journal in
  the store once to learn which incident belongs to which alert group;
- the latency of a one-alert webhook for another group, POSTed while a
  2,000-alert webhook is being recorded, against the same one-alert webhook
  on an idle listener (the baseline, measured in the same run).

Targets (issue 11): 2,000 alerts recorded in under 2 s; a one-alert webhook
never waits for another group's bulk one.

Usage: python bench/listen_bench.py [--incidents 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def webhook(group: str, count: int, status: str = "firing") -> bytes:
    alerts = [{"status": status,
               "labels": {"alertname": "DiskFull", "instance": f"host{i % 50}",
                          "mountpoint": f"/data{i}", "group": group},
               "annotations": {"summary": f"/data{i} is 97% full"},
               "startsAt": "2026-12-02T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": "http://prometheus/graph", "fingerprint": f"{group}-{i:06d}"}
              for i in range(count)]
    return json.dumps({"version": "4", "groupKey": f'{{}}:{{group="{group}"}}',
                       "status": status, "receiver": "runbook", "groupLabels": {"group": group},
                       "commonLabels": {}, "commonAnnotations": {},
                       "externalURL": "http://alertmanager", "truncatedAlerts": 0,
                       "alerts": alerts}).encode()


def post(url: str, body: bytes, timeout: float = 300) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    return time.monotonic() - started, reply


def seed_incidents(count: int) -> None:
    """Other incidents in the store, closed and open, as a real home has."""
    from runbook.incident.store import IncidentStore
    from runbook.playbook import find_playbook

    store = IncidentStore()
    playbook = find_playbook("generic-host")
    for i in range(count):
        incident = store.create(playbook=playbook, hosts=[], title=f"old incident {i}",
                                actor="bench", alert={"group_key": f"old-{i}"})
        incident.note("an earlier note", "bench")
        if i % 4:
            incident.resolve("bench")
            incident.close("bench")


def start_listener(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-m", "runbook", "listen", "--bind",
                                f"127.0.0.1:{port}", "--max-body", "8M"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    why = process.stderr.read() if process.stderr else ""
    raise SystemExit(f"the listener did not start: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=200,
                        help="incidents already in the store (default 200)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="runbook-listen-bench-"))
    os.environ["RUNBOOK_HOME"] = str(scratch / "home")
    env = {**os.environ}
    seed_incidents(args.incidents)
    from runbook.drill.sshd_lab import free_port

    port = free_port()
    listener = start_listener(port, env)
    url = f"http://127.0.0.1:{port}/alerts"
    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "incidents_in_store": args.incidents, "webhooks": {},
    }
    try:
        cold, _ = post(url, webhook("first", 1))
        figures["first_webhook_s"] = round(cold, 3)
        print(f"first webhook (reads the store's {args.incidents} journals once): "
              f"{cold:7.3f} s", flush=True)
        idle, _ = post(url, webhook("idle-baseline", 1))
        figures["one_alert_idle_s"] = round(idle, 3)
        for count in (1, 100, 2000):
            seconds, reply = post(url, webhook(f"bulk-{count}", count))
            actions = {a["action"] for a in reply["alerts"]}
            figures["webhooks"][count] = {"seconds": round(seconds, 3),
                                          "alerts_per_s": round(count / seconds, 1),
                                          "actions": sorted(actions)}
            print(f"{count:>5} alerts: {seconds:7.3f} s  {count / seconds:9.1f} alerts/s  "
                  f"{sorted(actions)}", flush=True)
        seconds, reply = post(url, webhook("bulk-2000", 2000))
        figures["repeat_2000_s"] = round(seconds, 3)
        print(f"2,000 again (repeated): {seconds:7.3f} s", flush=True)

        # A one-alert webhook for another group while a fresh 2,000 is being recorded.
        bulk_result: list[float] = []
        bulk = threading.Thread(target=lambda: bulk_result.append(
            post(url, webhook("bulk-concurrent", 2000))[0]))
        bulk.start()
        time.sleep(0.2)
        during, reply = post(url, webhook("during-bulk", 1))
        bulk.join()
        figures["one_alert_during_bulk_s"] = round(during, 3)
        figures["bulk_alongside_s"] = round(bulk_result[0], 3)
        print(f"one alert, idle: {idle * 1000:7.1f} ms; while 2,000 are recorded: "
              f"{during * 1000:7.1f} ms (the 2,000 took {bulk_result[0]:.2f} s)", flush=True)
    finally:
        listener.terminate()
        listener.wait(10)
    figures["targets"] = {
        "2000_under_2s": figures["webhooks"][2000]["seconds"] < 2.0,
        "one_alert_not_blocked": figures["one_alert_during_bulk_s"] < 1.0,
    }
    print(json.dumps(figures["targets"]))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
