"""This machine's vital signs through psutil, as text the `system` parser reads.

Used for local hosts instead of a command: no fork per metric, and it works
where procps is missing (a slim container, a bastion).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter

import psutil


def snapshot(sample_seconds: float = 1.0, top: int = 5) -> str:
    lines: list[str] = []
    cpus = psutil.cpu_count() or 1
    load = os.getloadavg()
    lines.append(f"cpus: {cpus}")
    lines.append(f"load average: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    processes = list(psutil.process_iter(["pid", "name", "username", "memory_percent"]))
    for process in processes:  # prime per-process CPU counters for the sample
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    times = psutil.cpu_times_percent(interval=sample_seconds)
    lines.append(f"cpu_percent: user={times.user:.1f} system={times.system:.1f} "
                 f"idle={times.idle:.1f} iowait={getattr(times, 'iowait', 0.0):.1f} "
                 f"steal={getattr(times, 'steal', 0.0):.1f}")
    memory = psutil.virtual_memory()
    lines.append(f"memory: total_mb={memory.total // 2**20} available_mb="
                 f"{memory.available // 2**20} used_percent={memory.percent:.1f}")
    swap = psutil.swap_memory()
    lines.append(f"swap: total_mb={swap.total // 2**20} used_mb={swap.used // 2**20} "
                 f"used_percent={swap.percent:.1f}")
    usage = []
    for process in processes:
        try:
            usage.append((process.cpu_percent(None), process.info["memory_percent"] or 0.0,
                          process.info["pid"], process.info["name"] or "?",
                          process.info["username"] or "?"))
        except psutil.Error:
            continue
    for label, index in (("top_cpu", 0), ("top_mem", 1)):
        for row in sorted(usage, key=lambda r: r[index], reverse=True)[:top]:
            lines.append(f"{label}: pid={row[2]} cpu={row[0]:.1f} mem={row[1]:.1f} "
                         f"user={row[4]} name={row[3]}")
    lines.append("tcp_states: " + " ".join(
        f"{state}={count}" for state, count in sorted(tcp_states().items())))
    return "\n".join(lines) + "\n"


def tcp_states() -> Counter[str]:
    try:
        return Counter(c.status for c in psutil.net_connections(kind="tcp"))
    except (psutil.AccessDenied, PermissionError):
        return Counter()
