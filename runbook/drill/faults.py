"""Faults a drill injects into its lab, declared by kind.

Each kind has three parts: `prepare` (before the incident names the hosts: start
the services the fault will break, say which host variables the collectors
need), `inject` (break it for real) and `undo` (put it back). Everything a fault
starts or creates is recorded in the drill's state file first, so teardown and
`runbook drill cleanup` find it.

What is real and what is not, per kind (docs/drills.md says the same):
- disk_full: real. A tmpfs with size= is mounted inside the lab host's mount
  namespace and filled until writes fail with ENOSPC; the real error text is
  appended to the host's application log.
- memory_pressure: partly simulated. A real process is SIGKILLed and a real,
  bounded memory hog runs, but the kernel never ran out of memory: the OOM-killer
  lines are written by the drill into the lab host's own /var/log/kern.log.
- cpu_saturation: real. Busy-loop processes (bounded count and lifetime, nice 19
  so the machine stays usable) fill the run queue.
- process_down: real. A supervisord of the lab's own runs the program; the fault
  is `supervisorctl stop`.
- port_closed: real. A listener the lab started on its port is stopped.
- host_unreachable: real. The host's sshd is stopped. Loopback still answers
  ping: the address is the machine's own, so ping cannot go dark.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runbook.clock import utc_now_iso
from runbook.drill.lab import (
    DrillLab,
    DrillLabError,
    LabState,
    in_namespace,
    spawn,
    sshd_pid,
    stop_process,
)
from runbook.drill.sshd_lab import free_port, wait_for_port

HOG_LIMIT = 16
MEMORY_HOG_CEILING = 0.10  # of total RAM, whatever the scenario asks


@dataclass
class FaultContext:
    state: LabState
    host: str
    params: dict[str, Any]
    rng: random.Random
    lab: DrillLab | None = None  # only in the process that started the lab
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def host_entry(self) -> dict[str, Any]:
        return next(h for h in self.state.data["hosts"] if h["name"] == self.host)

    @property
    def root(self) -> Path:
        """The directory the lab host sees as / for /var/log, /srv, /etc/supervisor."""
        return Path(self.host_entry["root"])

    @property
    def address(self) -> str:
        return str(self.host_entry["address"])

    def log(self, relative: str, lines: list[str]) -> Path:
        path = self.root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(line + "\n" for line in lines))
        return path

    def save(self) -> None:
        fault = dict(self.state.data.get("fault") or {})
        fault.update(self.details)
        self.state.update(fault=fault)


def _syslog_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%b %e %H:%M:%S")


def _named(name: str, code: str) -> list[str]:
    """argv for a Python child that `ps` shows under a service's name."""
    return ["/bin/bash", "-c", f'exec -a {shlex.quote(name)} "$0" -c "$1"', sys.executable, code]


# -- disk_full ----------------------------------------------------------------------------


class DiskFull:
    """A small tmpfs (size=) inside the host's namespace, filled until ENOSPC."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        log = str(ctx.params.get("log", "/var/log/app/report-writer.log"))
        ctx.details.update(mount=str(ctx.params.get("mount", "/srv/data")), log=log)
        (ctx.root / "srv").mkdir(parents=True, exist_ok=True)
        ctx.log(log, [f"{utc_now_iso()} report-writer[{os.getpid()}]: INFO started, writing "
                      f"reports to {ctx.details['mount']}/reports"])
        return {"app_logs": log}

    def inject(self, ctx: FaultContext) -> None:
        mount = ctx.details["mount"]
        size_mb = max(1, min(int(ctx.params.get("size_mb", 8)), 64))
        pid = sshd_pid(ctx.state, ctx.host)
        if pid is None:
            raise DrillLabError(f"the sshd of {ctx.host} is not running")
        relative = mount.lstrip("/")
        if not relative.startswith("srv/"):
            raise DrillLabError(f"disk_full mount {mount} must be under /srv, the lab's own")
        (ctx.root / relative).mkdir(parents=True, exist_ok=True)
        ctx.state.add_mount(mount, pid, f"tmpfs size={size_mb}m on {ctx.host}")
        done = in_namespace(pid, ["mount", "-t", "tmpfs", "-o",
                                  f"size={size_mb}m,mode=0755", "drill-data", mount])
        if done.returncode != 0:
            raise DrillLabError(f"mounting the lab's {mount} failed: {done.stderr.strip()}")
        # The namespace's files, reached from here through the anchor's root.
        target = Path(f"/proc/{pid}/root") / relative / "reports"
        target.mkdir(parents=True, exist_ok=True)
        errors: list[str] = []
        index = 0
        chunk = b"x" * (256 * 1024)
        while len(errors) < 4 and index < 10_000:
            index += 1
            name = f"{mount}/reports/batch-{index:04d}.csv"
            try:
                with (target / f"batch-{index:04d}.csv").open("wb") as handle:
                    for _ in range(4):
                        handle.write(chunk)
                        handle.flush()
                        os.fsync(handle.fileno())
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                errors.append(f"{utc_now_iso()} report-writer[{os.getpid()}]: ERROR write {name}: "
                              f"[Errno {exc.errno}] {os.strerror(exc.errno)}; "
                              "report batch lost, retrying in 30s")
        if not errors:
            raise DrillLabError(f"{mount} never filled up")
        ctx.log(ctx.details["log"], errors)
        ctx.log("/var/log/syslog", [f"{_syslog_time()} {ctx.host} report-writer: {e}"
                                    for e in errors[:1]])
        ctx.details.update(size_mb=size_mb, files_written=index, write_errors=len(errors))

    def undo(self, ctx: FaultContext) -> None:
        pid = sshd_pid(ctx.state, ctx.host)
        mount = ctx.details.get("mount")
        if pid is None or not mount:
            return  # the namespace is gone, and its tmpfs with it
        shutil.rmtree(Path(f"/proc/{pid}/root") / mount.lstrip("/") / "reports",
                      ignore_errors=True)
        in_namespace(pid, ["umount", mount])


# -- memory_pressure --------------------------------------------------------------------


class MemoryPressure:
    """OOM-killer lines in the host's kern.log, a real kill, a bounded real hog."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        victim = str(ctx.params.get("victim", "report-worker"))
        ctx.details.update(victim=victim)
        code = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end:" \
               " time.sleep(1)"
        process = spawn(ctx.state, _named(victim, code), f"{victim} (the OOM victim)")
        ctx.details.update(victim_pid=process.pid)
        return {}

    def inject(self, ctx: FaultContext) -> None:
        import psutil

        total = psutil.virtual_memory().total
        wanted = int(ctx.params.get("hog_mb", 256)) * 1024 * 1024
        size = min(wanted, int(total * MEMORY_HOG_CEILING))
        seconds = min(float(ctx.params.get("hog_seconds", 900)), 3600)
        hog_name = str(ctx.params.get("hog", "cache-warmer"))
        code = (f"import time\nblock = bytearray({size})\n"
                f"for i in range(0, len(block), 4096): block[i] = 1\n"
                f"time.sleep({seconds})")
        hog = spawn(ctx.state, _named(hog_name, code), f"{hog_name} (memory hog, "
                    f"{size // 1048576} MiB for {seconds:g}s)")
        victim_pid = int(ctx.details["victim_pid"])
        os.kill(victim_pid, signal.SIGKILL)  # what the OOM killer does; really done here
        with contextlib.suppress(ChildProcessError):
            os.waitpid(victim_pid, 0)
        ctx.log("/var/log/kern.log", oom_lines(ctx.host, ctx.details["victim"], victim_pid,
                                               hog_name, hog.pid, total))
        ctx.log("/var/log/syslog", [f"{_syslog_time()} {ctx.host} supervisord: exited: "
                                    f"{ctx.details['victim']} (terminated by SIGKILL; "
                                    "not expected)"])
        ctx.details.update(hog_pid=hog.pid, hog_mb=size // 1048576,
                           simulated="the OOM-killer lines are written by the drill; the "
                                     "kill and the memory hog are real")

    def undo(self, ctx: FaultContext) -> None:
        _stop_recorded(ctx, ctx.details.get("hog_pid"))


def oom_lines(host: str, victim: str, victim_pid: int, hog: str, hog_pid: int,
              total: int) -> list[str]:
    """Kernel OOM-killer lines in the format kern.log shows (syslog prefix)."""
    now = datetime.now(UTC)
    stamp = _syslog_time(now)
    uptime = time.monotonic()
    prefix = f"{stamp} {host} kernel: [{uptime:12.6f}]"
    pages = total // 4096
    return [
        f"{prefix} {hog} invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|"
        "__GFP_COMP), order=0, oom_score_adj=0",
        f"{prefix} CPU: 1 PID: {hog_pid} Comm: {hog} Not tainted",
        f"{prefix} Mem-Info:",
        f"{prefix} active_anon:{pages * 9 // 10} inactive_anon:{pages // 40} "
        f"isolated_anon:0 free:{pages // 200} free_pcp:12",
        f"{prefix} oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,"
        f"mems_allowed=0,global_oom,task_memcg=/system.slice/{victim}.service,"
        f"task={victim},pid={victim_pid},uid=1000",
        f"{prefix} Out of memory: Killed process {victim_pid} ({victim}) "
        f"total-vm:{total // 1024 // 2}kB, anon-rss:{total // 1024 // 3}kB, file-rss:0kB, "
        "shmem-rss:0kB, UID:1000 pgtables:9876kB oom_score_adj:0",
        f"{prefix} oom_reaper: reaped process {victim_pid} ({victim}), now anon-rss:0kB, "
        "file-rss:0kB, shmem-rss:0kB",
    ]


# -- cpu_saturation -------------------------------------------------------------------------


class CpuSaturation:
    """Busy loops: more runnable tasks than CPUs, for a bounded time."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        return {}

    def inject(self, ctx: FaultContext) -> None:
        cpus = os.cpu_count() or 1
        factor = float(ctx.params.get("per_cpu", 2))
        count = max(1, min(int(cpus * factor) + 1, HOG_LIMIT))
        seconds = max(5.0, min(float(ctx.params.get("seconds", 900)), 3600))
        name = str(ctx.params.get("process", "thumbnailer"))
        code = (f"import time\nend = time.monotonic() + {seconds}\n"
                "while time.monotonic() < end:\n    pass\n")
        pids = []
        for index in range(count):
            argv = ["nice", "-n", "19", *_named(f"{name}-{index}", code)]
            pids.append(spawn(ctx.state, argv, f"{name}-{index} (busy loop, {seconds:g}s)").pid)
        ctx.details.update(hog_pids=pids, hogs=count, cpus=cpus, seconds=seconds)
        ctx.log("/var/log/syslog", [f"{_syslog_time()} {ctx.host} {name}: queue backlog "
                                    f"{count * 1200} jobs, starting {count} workers"])

    def undo(self, ctx: FaultContext) -> None:
        for pid in ctx.details.get("hog_pids", []):
            _stop_recorded(ctx, pid)


# -- process_down (supervisord) -----------------------------------------------------------


SUPERVISORD_CONF = """\
; written by runbook drill: this lab host's own supervisord
[unix_http_server]
file={socket}
chmod=0700

[supervisord]
nodaemon=true
logfile={logs}/supervisord.log
pidfile={run}/supervisord.pid
childlogdir={logs}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{socket}

[program:{program}]
command={python} -m http.server {port} --bind {address}
directory={run}
autostart=true
autorestart=true
startsecs=1
stopsignal=TERM
stdout_logfile={logs}/{program}.log
redirect_stderr=true
"""


class ProcessDown:
    """A program under the lab host's own supervisord, stopped with supervisorctl."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        supervisord = shutil.which("supervisord")
        if supervisord is None or shutil.which("supervisorctl") is None:
            raise DrillLabError("supervisord not found", "apt-get install supervisor")
        program = str(ctx.params.get("program", "api"))
        port = free_port(ctx.address)
        run = ctx.root / "srv" / "supervisor"
        run.mkdir(parents=True, exist_ok=True)
        logs = ctx.root / "var/log/supervisor"
        logs.mkdir(parents=True, exist_ok=True)
        # A unix socket path is at most 107 bytes, too short for a drill directory
        # deep in a home; /tmp is the same inside the lab host's namespace.
        socket = Path(tempfile.gettempdir()) / f"runbook-drill-{ctx.state.drill_id}-" \
            f"{ctx.host}.sock"
        ctx.state.add_file(socket)
        conf = ctx.root / "etc/supervisor/supervisord.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(SUPERVISORD_CONF.format(socket=socket, logs=logs, run=run,
                                                program=program, python=sys.executable,
                                                port=port, address=ctx.address))
        spawn(ctx.state, [supervisord, "-c", str(conf)], f"supervisord of {ctx.host}",
              kind="daemon", log=ctx.state.directory / f"{ctx.host}-supervisord.out")
        ctx.details.update(program=program, port=port, conf=str(conf), socket=str(socket))
        _wait(lambda: _ctl(ctx, "status", program).returncode == 0, 20,
              f"{program} under the lab's supervisord")
        wait_for_port(ctx.address, port)
        return {"expected_ports": str(port),
                "app_logs": f"/var/log/supervisor/supervisord.log\n/var/log/supervisor/"
                            f"{program}.log\n"}

    def inject(self, ctx: FaultContext) -> None:
        result = _ctl(ctx, "stop", ctx.details["program"])
        if result.returncode != 0:
            raise DrillLabError(f"supervisorctl stop failed: {result.stdout}{result.stderr}")

    def undo(self, ctx: FaultContext) -> None:
        if ctx.details.get("conf"):
            _ctl(ctx, "start", ctx.details["program"])


def _ctl(ctx: FaultContext, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["supervisorctl", "-c", ctx.details["conf"], *args],
                          capture_output=True, text=True, timeout=30, check=False)


# -- port_closed ------------------------------------------------------------------------------


class PortClosed:
    """A service the lab started on its port, then stopped: nothing listens."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        service = str(ctx.params.get("service", "web"))
        port = free_port(ctx.address)
        ctx.details.update(service=service, port=port)
        self._start(ctx)
        return {"expected_ports": str(port), "app_logs": f"/var/log/app/{service}.log"}

    def _start(self, ctx: FaultContext) -> None:
        service, port = ctx.details["service"], ctx.details["port"]
        log = ctx.root / f"var/log/app/{service}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        code = ("import http.server, sys\n"
                f"http.server.test(HandlerClass=http.server.SimpleHTTPRequestHandler, "
                f"port={port}, bind={ctx.address!r})\n")
        process = spawn(ctx.state, _named(service, code), f"{service} listening on "
                        f"{ctx.address}:{port}", log=log, cwd=ctx.root / "srv")
        ctx.details["pid"] = process.pid
        wait_for_port(ctx.address, port)

    def inject(self, ctx: FaultContext) -> None:
        _stop_recorded(ctx, ctx.details.get("pid"))
        ctx.log(f"/var/log/app/{ctx.details['service']}.log",
                [f"{utc_now_iso()} {ctx.details['service']}: received SIGTERM, shutting down; "
                 f"no longer listening on {ctx.address}:{ctx.details['port']}"])

    def undo(self, ctx: FaultContext) -> None:
        if ctx.details.get("port"):
            self._start(ctx)


# -- host_unreachable ---------------------------------------------------------------------------


class HostUnreachable:
    """The host's sshd is stopped: SSH is refused, loopback still answers ping."""

    def prepare(self, ctx: FaultContext) -> dict[str, str]:
        return {}

    def inject(self, ctx: FaultContext) -> None:
        if ctx.lab is not None:
            ctx.lab.stop_host(ctx.host)
        else:
            pid = sshd_pid(ctx.state, ctx.host)
            if pid:
                _stop_recorded(ctx, pid)
        ctx.details.update(ping="answers: the lab address is loopback, the machine's own")

    def undo(self, ctx: FaultContext) -> None:
        if ctx.lab is not None:
            ctx.lab.start_host(ctx.host)


def _stop_recorded(ctx: FaultContext, pid: int | None) -> None:
    if not pid:
        return
    for entry in ctx.state.data.get("processes", []):
        if entry["pid"] == pid:
            stop_process(entry)
            ctx.state.forget_process(pid)
            return


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise DrillLabError(f"{what} did not come up within {timeout:g}s")


FAULTS: dict[str, Any] = {
    "disk_full": DiskFull(),
    "memory_pressure": MemoryPressure(),
    "cpu_saturation": CpuSaturation(),
    "process_down": ProcessDown(),
    "port_closed": PortClosed(),
    "host_unreachable": HostUnreachable(),
}
