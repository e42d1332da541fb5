"""A drill's lab: real sshd daemons on 127.0.0.x, each in a mount namespace of
its own, and a state file naming everything the drill created.

Each lab host sees its own /var/log, /srv and /etc/supervisor (bind mounts of
directories under the drill's directory, made inside the host's namespace
only), so collectors that read /var/log/kern.log or run `df` on a lab host read
the lab's files and mounts, never the machine's. Processes and the network are
shared with the machine: `ps`, `uptime` and `netstat` on a lab host show the
whole machine, as they would on a container host.

The state file is written before each thing is created (pid, mount, file), and
every process the drill starts carries RUNBOOK_DRILL=<id> in its environment,
so `cleanup` finds leftovers after a crash or a `kill -9` of the app.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from runbook import paths
from runbook.drill.sshd_lab import LabHost, SshdLab, find_sshd, free_port, wait_for_port
from runbook.errors import RunbookError
from runbook.hosts import Host
from runbook.incident.store import IncidentStore

STATE_NAME = "state.json"
MARKER = "RUNBOOK_DRILL"
# Paths a lab host sees as its own: bound over the machine's inside its namespace.
HOST_ROOTS = ("var/log", "srv", "etc/supervisor")
FIRST_OCTETS = range(150, 240)


class DrillLabError(RunbookError):
    pass


def drills_root() -> Path:
    return paths.runbook_home() / "drills"


def drill_store() -> IncidentStore:
    """Drill incidents have a journal store of their own, apart from real ones:
    `runbook list`, `runbook collect --incident` and the archive never see them."""
    return IncidentStore(drills_root() / "incidents")


def require_root() -> None:
    if os.geteuid() != 0:
        raise DrillLabError(
            "drill labs need root: each lab host gets its own mount namespace, and "
            "faults mount size-limited filesystems",
            "run drills as root on a scratch VM or CI runner, never on a production host")
    if find_sshd() is None:
        raise DrillLabError("sshd not found", "apt-get install openssh-server")
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            raise DrillLabError(f"{tool} not found", "apt-get install util-linux")


# -- the state file ---------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def process_started(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class LabState:
    """`drills/<id>/state.json`: what this drill created, rewritten atomically."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, directory: Path, **fields: Any) -> LabState:
        directory.mkdir(parents=True, exist_ok=True)
        state = cls(directory / STATE_NAME, {
            "drill_id": directory.name, "created_at": _now(), "owner_pid": os.getpid(),
            "status": "starting", "directory": str(directory), "processes": [],
            "mounts": [], "files": [], "hosts": [], "fault": {}, **fields})
        state.save()
        return state

    @classmethod
    def load(cls, path: Path) -> LabState:
        try:
            return cls(path, json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise DrillLabError(f"cannot read drill state {path}: {exc}") from None

    @property
    def drill_id(self) -> str:
        return str(self.data["drill_id"])

    @property
    def directory(self) -> Path:
        return self.path.parent

    def save(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(self.data, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(self.path)

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.save()

    def add_process(self, pid: int, what: str, kind: str = "process",
                    group: bool = True) -> None:
        self.data["processes"].append({"pid": pid, "started": process_started(pid),
                                       "what": what, "kind": kind, "group": group})
        self.save()

    def forget_process(self, pid: int) -> None:
        self.data["processes"] = [p for p in self.data["processes"] if p["pid"] != pid]
        self.save()

    def add_mount(self, target: str, ns_pid: int | None, what: str) -> None:
        self.data["mounts"].append({"target": target, "ns_pid": ns_pid, "what": what,
                                    "ns_started": process_started(ns_pid) if ns_pid else None})
        self.save()

    def add_file(self, path: Path | str) -> None:
        if str(path) not in self.data["files"]:
            self.data["files"].append(str(path))
            self.save()


def drill_states() -> list[LabState]:
    root = drills_root()
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.glob(f"*/{STATE_NAME}")):
        with contextlib.suppress(DrillLabError):
            found.append(LabState.load(path))
    return found


def find_state(drill_id: str) -> LabState:
    path = drills_root() / drill_id / STATE_NAME
    if not path.exists():
        raise DrillLabError(f"no running drill lab {drill_id!r}",
                            "see `runbook drill list --running`")
    return LabState.load(path)


# -- processes --------------------------------------------------------------------------


def drill_env(drill_id: str) -> dict[str, str]:
    return {**os.environ, MARKER: drill_id}


def spawn(state: LabState, argv: list[str], what: str, *, kind: str = "process",
          log: Path | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start a process for the drill in a session of its own, marked and recorded."""
    output = log.open("ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    try:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=output, start_new_session=True,
                                   env=drill_env(state.drill_id), cwd=cwd)
    finally:
        if log:
            output.close()  # type: ignore[union-attr]
    state.add_process(process.pid, what, kind)
    return process


def _same_process(entry: dict[str, Any]) -> bool:
    started = process_started(int(entry["pid"]))
    if started is None:
        return False
    recorded = entry.get("started")
    # A pid the kernel gave to another process since is not ours to kill.
    return recorded is None or abs(started - float(recorded)) < 1.0


def stop_process(entry: dict[str, Any], grace: float = 3.0) -> bool:
    """Stop a recorded process (and its session) if it is still the one we started."""
    pid = int(entry["pid"])
    if not _same_process(entry):
        return False
    try:
        if entry.get("group", True) and os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGTERM)
        else:
            os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            if entry.get("group", True):
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def marked_processes(drill_id: str | None = None) -> list[psutil.Process]:
    """Processes of a drill (or of any): RUNBOOK_DRILL in their environment, or a
    command line naming the drill's directory (sshd overwrites its environment
    with its process title, which still names its config file there)."""
    root = drills_root()
    directory = f"{root / drill_id}/" if drill_id else f"{root}/"
    found = []
    for process in psutil.process_iter(["pid"]):
        if process.pid == os.getpid():
            continue
        try:
            value = process.environ().get(MARKER)
            title = " ".join(process.cmdline())
        except (psutil.Error, OSError):
            continue
        if (value and (drill_id is None or value == drill_id)) or directory in title:
            found.append(process)
    return found


# -- the lab ----------------------------------------------------------------------------


class NamespacedSshdLab(SshdLab):
    """SshdLab whose daemons each start in a private mount namespace, with the
    host's own directories bound over /var/log, /srv and /etc/supervisor."""

    def __init__(self, directory: Path, names: list[str], state: LabState,
                 first_octet: int) -> None:
        super().__init__(directory, count=len(names), first_octet=first_octet)
        self.names = names
        self.state = state

    def _prepare(self, name: str, address: str, port: int) -> LabHost:
        index = int(name.removeprefix("lab")) - 1
        host = super()._prepare(self.names[index], address, port)
        for relative in HOST_ROOTS:
            (host_root(host) / relative).mkdir(parents=True, exist_ok=True)
        return host

    def start_host(self, host: LabHost, sshd: str | None = None) -> None:
        binary = sshd or find_sshd()
        assert binary is not None
        root = host_root(host)
        binds = [f"mount --bind {shlex.quote(str(root / rel))} /{rel}" for rel in HOST_ROOTS
                 if Path("/", rel).is_dir()]
        script = " && ".join([*binds, f"exec {shlex.quote(binary)} -D -e -f "
                              + shlex.quote(str(host.directory / "sshd_config"))])
        argv = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script]
        host.process = spawn(self.state, argv, f"sshd {host.name} {host.address}:{host.port}",
                             kind="daemon", log=host.directory / "sshd.log")

    def stop_host(self, host: LabHost) -> None:
        pid = host.process.pid if host.process else None
        super().stop_host(host)
        if pid:
            self.state.forget_process(pid)


def host_root(host: LabHost) -> Path:
    return host.directory / "root"


@dataclass
class DrillLab:
    """The running lab of one drill (in the process that started it)."""

    directory: Path
    state: LabState
    specs: list[Any]  # scenario.LabHostSpec
    sshd: NamespacedSshdLab | None = None

    def start(self, rng: random.Random) -> None:
        require_root()
        octets = list(FIRST_OCTETS)
        rng.shuffle(octets)
        for octet in octets[:20]:
            if octet + len(self.specs) > 254 or _octet_busy(octet, len(self.specs)):
                continue
            self.sshd = NamespacedSshdLab(self.directory / "lab", [s.name for s in self.specs],
                                          self.state, octet)
            try:
                self.sshd.start()
            except BaseException:
                self.sshd.stop()
                raise
            break
        else:
            raise DrillLabError("no free 127.0.0.x block for the lab")
        self.state.update(hosts=[{"name": h.name, "address": h.address, "port": h.port,
                                  "root": str(host_root(h))} for h in self.sshd.hosts],
                          known_hosts=str(self.sshd.known_hosts),
                          client_key=str(self.sshd.client_key))

    def host(self, name: str) -> LabHost:
        assert self.sshd is not None
        return next(h for h in self.sshd.hosts if h.name == name)

    def hosts(self, host_vars: dict[str, dict[str, str]] | None = None) -> list[Host]:
        assert self.sshd is not None
        specs = {s.name: s for s in self.specs}
        return [Host(name=h.name, address=h.address, port=h.port, user=self.sshd.user,
                     identity_file=str(self.sshd.client_key), role=specs[h.name].role,
                     tags=tuple(specs[h.name].tags), source="drill-lab",
                     vars=dict((host_vars or {}).get(h.name, {})))
                for h in self.sshd.hosts]

    def write_inventory(self, hosts: list[Host]) -> Path:
        """The lab's inventory: the only one the drill's app is given."""
        lines = ["# written by runbook drill: this lab's hosts only", "hosts:"]
        for host in hosts:
            lines += [f"  {host.name}:", f"    address: {host.address}",
                      f"    port: {host.port}", f"    user: {host.user}",
                      f"    identity_file: {json.dumps(host.identity_file)}"]
            if host.role:
                lines.append(f"    role: {host.role}")
            if host.tags:
                lines.append(f"    tags: {json.dumps(list(host.tags))}")
            if host.vars:
                lines.append("    vars:")
                lines += [f"      {k}: {json.dumps(v)}" for k, v in host.vars.items()]
        path = self.directory / "inventory.yaml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.state.update(inventory=str(path))
        return path

    def stop_host(self, name: str) -> None:
        assert self.sshd is not None
        self.sshd.stop_host(self.host(name))

    def start_host(self, name: str) -> None:
        assert self.sshd is not None
        host = self.host(name)
        self.sshd.start_host(host)
        wait_for_port(host.address, host.port)


def _octet_busy(first: int, count: int) -> bool:
    """A block is taken when another drill's state names one of its addresses."""
    wanted = {f"127.0.0.{first + i}" for i in range(count)}
    for state in drill_states():
        if state.data.get("status") in ("stopped", "cleaned"):
            continue
        if wanted & {h.get("address") for h in state.data.get("hosts", [])}:
            return True
    with contextlib.suppress(OSError):
        free_port(f"127.0.0.{first}")
        return False
    return True


def sshd_pid(state: LabState, host: str) -> int | None:
    """The pid of a lab host's sshd: its mount namespace's anchor."""
    prefix = f"sshd {host} "
    for entry in state.data.get("processes", []):
        if entry.get("kind") == "daemon" and str(entry.get("what", "")).startswith(prefix) \
                and _same_process(entry):
            return int(entry["pid"])
    return None


def in_namespace(pid: int, argv: list[str],
                 timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command inside a lab host's mount namespace."""
    return subprocess.run(["nsenter", "-t", str(pid), "-m", "--", *argv], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


# -- teardown ---------------------------------------------------------------------------


@dataclass
class Teardown:
    processes: list[str]
    mounts: list[str]
    files: list[str]
    directory_removed: bool

    def lines(self) -> list[str]:
        return ([f"stopped {p}" for p in self.processes] + [f"unmounted {m}" for m in self.mounts]
                + [f"removed {f}" for f in self.files]
                + (["removed the lab directory"] if self.directory_removed else []))


def teardown(state: LabState, remove_directory: bool = True) -> Teardown:
    """Stop every recorded process and marked straggler, undo mounts the machine
    still has, delete recorded files and the lab directory. Safe to repeat."""
    stopped: list[str] = []
    unmounted: list[str] = []
    removed: list[str] = []
    # Helper processes first, then daemons, the sshds (namespace anchors) last.
    entries = sorted(state.data.get("processes", []),
                     key=lambda e: (e.get("kind") == "daemon",
                                    str(e.get("what", "")).startswith("sshd ")))
    for entry in entries:
        if stop_process(entry):
            stopped.append(f"{entry.get('what')} (pid {entry['pid']})")
    for process in marked_processes(state.drill_id):
        with contextlib.suppress(psutil.Error):
            what = " ".join(process.cmdline()[:3])
            process.kill()
            process.wait(3)
            stopped.append(f"unrecorded {what} (pid {process.pid})")
    for mount in state.data.get("mounts", []):
        unmounted += _unmount_leftover(mount, state.directory)
    for name in state.data.get("files", []):
        path = Path(name)
        if path.is_file() or path.is_symlink():
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(name)
    removed_dir = False
    if remove_directory and state.directory.is_dir():
        shutil.rmtree(state.directory, ignore_errors=True)
        removed_dir = not state.directory.exists()
    else:
        state.update(status="stopped", processes=[], mounts=[])
    return Teardown(stopped, unmounted, removed, removed_dir)


def _unmount_leftover(mount: dict[str, Any], directory: Path) -> list[str]:
    """Mounts made inside a host's namespace vanish with its sshd. One made in
    this namespace (a path under the drill directory) is unmounted here."""
    done = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target == mount["target"] or target.startswith(str(directory) + "/"):
            result = subprocess.run(["umount", "-l", target], capture_output=True, check=False)
            if result.returncode == 0:
                done.append(target)
    return done


def leftover_mounts(directory: Path) -> list[str]:
    """Mounts of this namespace under a drill directory (there should be none)."""
    prefix = str(directory)
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)]
