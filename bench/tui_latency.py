"""Benchmark: keypress-to-screen latency in the incident screen, idle and while a
collection streams from N loopback sshd hosts (default 20).

The app runs headless under Pilot at 80x24, on an incident whose hosts are an
`SshdLab`. The operator's keys move in the stage list (j/k) and switch tabs
(1-4). Each press is timed from the key event entering the app to the first
frame the screen composes in which the change is visible (the cursor on the
expected line and the step view showing that step, or the expected tab
shown). The same presses are timed three times in one process and one app:

  idle       no collection running (the baseline);
  streaming  the checklist60 bundle (vmstat/mpstat/pidstat/iostat/sar 1 5, top,
             ...) running on every host, restarted whenever it finishes, so
             paramiko threads, evidence writes, progress messages and the
             hosts table's refreshes all compete with the keys;
  idle-after the baseline again, to show the machine did not drift.

Keys go in the way Pilot.press sends them (a Key event through the driver),
but the bench does not await Pilot.press itself: it waits until the process
is idle by comparing CPU time with wall time, which never happens while the
collection's threads work, so it adds up to two seconds per key that no
operator would see (the bench prints a few Pilot.press return times to show
it). A frame is one call of App._display, which the headless driver does not
write anywhere but which comes after the compositor has rendered the update.

Target: p95 under 50 ms while streaming. Prints p50/p95/max per phase and the
streaming/idle ratio.

Usage: python bench/tui_latency.py [--hosts 20] [--presses 120] [--gap-ms 60]
                                   [--json figures.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

SIZE = (80, 24)
KEYS = ["j", "k", "2", "j", "3", "k", "4", "1"]  # half the moves on the Step tab; net zero
TABS = {"1": "step", "2": "hosts-tab", "3": "findings-tab", "4": "timeline-tab"}
STEP = "checklist-60s"  # generic-host's collect step with the checklist60 bundle
PRESS_TIMEOUT = 3.0


class FrameProbe:
    """Wraps App._display: the first composed frame in which `condition()` holds."""

    def __init__(self, app: Any) -> None:
        self._original = app._display
        app._display = self._display
        self.frames = 0
        self._condition: Callable[[], bool] | None = None
        self._seen = asyncio.Event()
        self.hit_at = 0.0

    def _display(self, screen: Any, renderable: Any) -> None:
        self._original(screen, renderable)
        if renderable is None:
            return
        self.frames += 1
        if self._condition is not None and self._condition():
            self.hit_at = time.perf_counter()
            self._condition = None
            self._seen.set()

    def arm(self, condition: Callable[[], bool]) -> None:
        self._seen.clear()
        self._condition = condition

    async def wait(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._seen.wait(), timeout)
        except TimeoutError:
            self._condition = None
            return False
        return True


class LoopLag:
    """How late a 5 ms sleep wakes up on the app's event loop: when this is high,
    the UI thread is starved (CPU, GIL), whatever the widgets do."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.samples.append((time.perf_counter() - before - 0.005) * 1000)

    def stop(self) -> dict[str, Any]:
        assert self._task is not None
        self._task.cancel()
        return summary(self.samples)


def send_key(app: Any, key: str) -> None:
    """What Pilot.press (and a real terminal's driver) does with one key."""
    from textual import events

    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    app._driver.send_message(event)


def expectation(screen: Any, key: str) -> Callable[[], bool]:
    """What the screen must show once `key` has been handled: the tab, and the
    selected step in the step view whenever the Step tab is the one shown."""
    from textual.widgets import ContentSwitcher, TabbedContent

    from runbook.tui.widgets.stage_list import StageList
    from runbook.tui.widgets.step_view import StepView

    tabs = screen.query_one(TabbedContent)
    view = screen.query_one(StepView)

    def step_shown(step: str | None) -> bool:
        return step is None or tabs.active != "step" or view.step_id == step

    if key in TABS:
        switcher = tabs.query_one(ContentSwitcher)
        target = TABS[key]
        return lambda: (tabs.active == target and switcher.current == target
                        and step_shown(screen.selected))
    stages = screen.query_one(StageList)
    line = max(0, min(stages.last_line, stages.cursor_line + (1 if key == "j" else -1)))
    node = stages.get_node_at_line(line)
    step = node.data if node is not None and not str(node.data).startswith("stage:") else None
    return lambda: stages.cursor_line == line and step_shown(step)


def start_collection(screen: Any) -> None:
    """Press r on the checklist60 step (the selection is moved there first)."""
    screen.selected = STEP
    screen.action_collect()


async def press_series(app: Any, probe: FrameProbe, count: int, gap: float,
                       streaming: bool) -> dict[str, Any]:
    screen = app.screen
    latencies: list[tuple[str, float]] = []
    discarded = timeouts = collections = 0
    index = 0
    lag = LoopLag()
    lag.start()
    psutil.cpu_percent()
    process = psutil.Process()
    cpu_before = process.cpu_times()
    started = time.monotonic()
    while len(latencies) < count:
        if streaming and not screen.collecting:
            start_collection(screen)
            collections += 1
            await asyncio.sleep(0.5)  # let the hosts connect and the commands start
            continue
        key = KEYS[index % len(KEYS)]
        index += 1
        probe.arm(expectation(screen, key))
        t0 = time.perf_counter()
        send_key(app, key)
        seen = await probe.wait(PRESS_TIMEOUT)
        if not seen:
            timeouts += 1
        elif streaming and not screen.collecting:
            discarded += 1  # the collection ended during this press: not under load
        else:
            latencies.append((key, (probe.hit_at - t0) * 1000))
        await asyncio.sleep(gap)
    elapsed = time.monotonic() - started
    cpu_after = process.cpu_times()
    machine_cpu = psutil.cpu_percent()
    loop_lag = lag.stop()
    if streaming:
        while screen.collecting:  # leave no collection running into the next phase
            await asyncio.sleep(0.1)
    return {
        **summary([ms for _, ms in latencies]),
        "move_jk": summary([ms for key, ms in latencies if key in "jk"]),
        "tab_1234": summary([ms for key, ms in latencies if key in TABS]),
        "timeouts": timeouts, "discarded": discarded, "collections": collections,
        "seconds": round(elapsed, 1),
        "loop_lag": {k: loop_lag[k] for k in ("p50_ms", "p95_ms", "max_ms")},
        # this process (UI thread + paramiko threads) and the whole machine, in % of one CPU
        "process_cpu_pct": round(100 * (cpu_after.user + cpu_after.system - cpu_before.user
                                        - cpu_before.system) / elapsed),
        "machine_cpu_pct": round(machine_cpu * (os.cpu_count() or 1)),
    }


def summary(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "presses": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
    }


async def pilot_press_sample(pilot: Any, screen: Any, count: int) -> list[float]:
    """How long `await pilot.press(key)` takes to return during a collection."""
    if not screen.collecting:
        start_collection(screen)
        await asyncio.sleep(0.5)
    times = []
    for index in range(count):
        started = time.perf_counter()
        await pilot.press(KEYS[index % len(KEYS)])
        times.append(round((time.perf_counter() - started) * 1000, 1))
    while screen.collecting:
        await asyncio.sleep(0.1)
    return times


async def measure(store: Any, incident_id: str, inventory: Path, known_hosts: Path,
                  presses: int, gap: float) -> dict[str, Any]:
    from runbook.connect_settings import ConnectSettings
    from runbook.tui.app import RunbookApp
    from runbook.tui.screens.incident import IncidentScreen

    app = RunbookApp(store, incident_id, actor="bench",
                     connect=ConnectSettings(inventories=(inventory,),
                                             known_hosts=(known_hosts,)))
    figures: dict[str, Any] = {}
    async with app.run_test(size=SIZE) as pilot:
        probe = FrameProbe(app)
        deadline = time.monotonic() + 30
        while not (isinstance(app.screen, IncidentScreen) and app.screen.state is not None):
            if time.monotonic() > deadline:
                raise SystemExit("the incident screen did not load in 30 s")
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        screen = app.screen
        # warm-up: first renders of every tab, the first collection's imports
        await press_series(app, probe, len(KEYS), gap, streaming=False)
        for phase, streaming in (("idle", False), ("streaming", True), ("idle-after", False)):
            figures[phase] = await press_series(app, probe, presses, gap, streaming)
            print(f"{phase:<11} {json.dumps(figures[phase])}", flush=True)
        figures["pilot_press_return_ms_streaming"] = await pilot_press_sample(pilot, screen, 6)
        figures["frames"] = probe.frames
        state = screen.state
        figures["evidence_records"] = len(state.evidence) if state is not None else None
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--presses", type=int, default=120, help="timed presses per phase")
    parser.add_argument("--gap-ms", type=float, default=60,
                        help="pause between presses (a fast typist: 60-120 ms)")
    parser.add_argument("--login-cost", type=float, default=0.2,
                        help="seconds of CPU each lab login shell burns (rc files)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="runbook-tui-bench-"))
    os.environ["RUNBOOK_HOME"] = str(scratch / "home")
    empty_ssh_config = scratch / "ssh_config"
    empty_ssh_config.write_text("")
    os.environ["RUNBOOK_SSH_CONFIG"] = str(empty_ssh_config)

    from runbook.drill.sshd_lab import SshdLab
    from runbook.incident.store import IncidentStore
    from runbook.inventory import load_inventory
    from runbook.playbook import find_playbook

    figures: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, "
                   f"Python {platform.python_version()}",
        "hosts": args.hosts, "bundle": "checklist60", "keys": "".join(KEYS),
        "gap_ms": args.gap_ms, "terminal": f"{SIZE[0]}x{SIZE[1]}",
        "login_cost_s": args.login_cost,
    }
    try:
        # 127.0.0.110+: clear of the test fleets (60-63, 90) and collect_bench (10+).
        with SshdLab(scratch / "lab", count=args.hosts, first_octet=110,
                     login_cost=args.login_cost) as lab:
            inventory = scratch / "inventory.yaml"
            inventory.write_text(lab.inventory_yaml())
            hosts = load_inventory([inventory]).select([h.name for h in lab.hosts])
            store = IncidentStore()
            incident = store.create(playbook=find_playbook("generic-host"), hosts=hosts,
                                    title="tui latency bench", actor="bench")
            figures.update(asyncio.run(measure(store, incident.id, inventory,
                                               lab.known_hosts, args.presses,
                                               args.gap_ms / 1000)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    idle, streaming = figures["idle"], figures["streaming"]
    ratio = streaming["p95_ms"] / idle["p95_ms"]
    figures["p95_ratio_streaming_vs_idle"] = round(ratio, 2)
    cpus = 100 * (os.cpu_count() or 1)
    print(f"\n{'phase':<11} {'p50':>7} {'p95':>7} {'max':>7}  presses  loop-lag p95  "
          f"machine CPU (of {cpus}%)")
    for phase in ("idle", "streaming", "idle-after"):
        f = figures[phase]
        print(f"{phase:<11} {f['p50_ms']:7.1f} {f['p95_ms']:7.1f} {f['max_ms']:7.1f}  "
              f"{f['presses']:>7}  {f['loop_lag']['p95_ms']:9.1f} ms  {f['machine_cpu_pct']:>6}%")
    print(f"(ms; streaming: {args.hosts} hosts, {streaming['collections']} checklist60 "
          f"run(s); other load on the machine makes every figure noisier)")
    print(f"p95 streaming / idle = {ratio:.2f}; target p95 < 50 ms while streaming: "
          f"{'met' if streaming['p95_ms'] < 50 else 'NOT met'}")
    print(f"Pilot.press return times while streaming (ms): "
          f"{figures['pilot_press_return_ms_streaming']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
