"""The diagnostic collectors an expert runs, declared as data.

A collector says what to run, what to try when the tool is missing, whether it
needs root, how long it may take and which parser reads its output. The engine
runs any of them the same way; adding a diagnostic is adding an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Collector:
    name: str
    command: str
    group: str
    description: str
    fallbacks: tuple[str, ...] = ()
    needs_root: bool = False
    timeout: float = 30.0
    parser: str | None = None
    # Where it runs:
    #   target    - the command runs on the host (over SSH, or locally for localhost)
    #   operator  - on the operator's machine, about the host (ping)
    #   handshake - the SSH connection itself, timed (no command)
    #   psutil    - this machine's metrics through psutil; local hosts only
    runs_on: str = "target"
    # Seconds the command samples for; the longest start first, so a host's
    # sampling commands overlap instead of queueing behind quick ones.
    samples_for: float = 0.0
    # The USE cells its parser judges, as "resource.signal" (runbook.use): when
    # it ran and found nothing there, the cell reads "checked, ok".
    checks: tuple[str, ...] = ()


# What the kernel log tells: OOM kills (memory), I/O and filesystem errors (disk),
# link and conntrack errors (network), hung tasks and crashes (processes).
KERNEL_LOG = ("kernel.errors", "memory.errors", "disk.errors", "network.errors",
              "processes.saturation", "processes.errors", "cpu.saturation")


def _c(name: str, command: str, group: str, description: str, **kw: object) -> Collector:
    return Collector(name, command, group, description, **kw)  # type: ignore[arg-type]


COLLECTORS: tuple[Collector, ...] = (
    # connectivity: measured from the operator's side
    _c("ping", "ping -n -c 5 -i 0.2 -W 2 -- {address}", "connectivity",
       "ICMP reachability, loss and round-trip time", runs_on="operator", parser="ping",
       timeout=15, checks=("network.errors",)),
    _c("ssh-handshake", "", "connectivity",
       "TCP connect, SSH key exchange and authentication, timed", runs_on="handshake",
       timeout=15),
    # logs
    _c("dmesg", "dmesg -T --level=emerg,alert,crit,err,warn", "logs",
       "Kernel ring buffer: OOM killer, segfaults, I/O and filesystem errors",
       fallbacks=("journalctl -k -n 500 --no-pager", "dmesg | tail -n 500"), parser="dmesg",
       needs_root=True, checks=KERNEL_LOG),
    _c("syslog", "tail -n 500 /var/log/syslog", "logs", "Tail of syslog",
       fallbacks=("tail -n 500 /var/log/messages", "journalctl -n 500 --no-pager"),
       needs_root=True),
    _c("kern-log", "tail -n 500 /var/log/kern.log", "logs", "Tail of kern.log",
       fallbacks=("journalctl -k -n 500 --no-pager",), parser="dmesg", needs_root=True,
       checks=KERNEL_LOG),
    _c("app-logs", "for f in {app_logs}; do echo \"==> $f <==\"; tail -n 300 -- \"$f\"; done",
       "logs", "Tails of the application log files named in the inventory (app_logs)"),
    # load: the classic first look
    _c("uptime", "uptime; getconf _NPROCESSORS_ONLN", "load", "Load averages and CPU count",
       parser="uptime", checks=("cpu.saturation",)),
    _c("system", "", "load", "Load, CPU, memory, swap, top processes and TCP states (psutil)",
       runs_on="psutil", parser="system", samples_for=1,
       checks=("cpu.utilization", "cpu.saturation", "memory.utilization", "memory.saturation",
               "swap.utilization", "disk.saturation", "tcp.saturation", "tcp.errors")),
    _c("w", "w", "load", "Who is logged in and what they run"),
    _c("ps", "ps auxwww", "load", "Every process with its full command line", parser="ps",
       checks=("processes.errors",)),
    _c("top", "top -b -n 2 -d 1 -c -w 512", "load",
       "Two batch frames of top a second apart (the second has the CPU shares)", parser="top",
       samples_for=1,
       checks=("cpu.utilization", "cpu.saturation", "memory.utilization", "memory.saturation",
               "swap.utilization", "disk.saturation", "processes.errors")),
    _c("netstat-listen", "netstat -tlnp", "load", "Listening TCP sockets and their programs",
       fallbacks=("ss -tlnp",), parser="netstat_listen",
       checks=("tcp.saturation", "tcp.errors")),
    _c("netstat-all", "netstat -taopen", "load", "All TCP sockets with states and timers",
       fallbacks=("ss -taopen",), parser="netstat_states",
       checks=("tcp.saturation", "tcp.errors")),
    _c("dstat", "dstat -tcmdngy 1 5", "load", "CPU, memory, disk and network, five seconds",
       fallbacks=("vmstat 1 5",), timeout=20, samples_for=5),
    _c("sar-cpu", "sar -u", "load", "CPU utilisation history for today",
       fallbacks=("sar -u 1 3",), parser="sar", samples_for=3,
       checks=("cpu.utilization", "disk.saturation")),
    _c("sar-mem", "sar -r", "load", "Memory history for today",
       fallbacks=("sar -r 1 3",), parser="sar", samples_for=3,
       checks=("memory.utilization",)),
    _c("sar-queue", "sar -q", "load", "Run queue and load history for today",
       fallbacks=("sar -q 1 3",), parser="sar", samples_for=3,
       checks=("cpu.saturation", "disk.saturation")),
    _c("free", "free -m", "load", "Memory and swap in MiB", parser="free",
       checks=("memory.utilization", "memory.saturation", "swap.utilization")),
    _c("df", "df -hP", "load", "Filesystem space", parser="df",
       checks=("filesystem.utilization",)),
    _c("df-inodes", "df -iP", "load", "Filesystem inodes", parser="df",
       checks=("inodes.utilization",)),
    # the 60-second performance checklist (Netflix's first minute on a host)
    _c("vmstat", "vmstat 1 5", "checklist60", "Run queue, memory, swap, I/O and CPU per second",
       parser="vmstat", timeout=20, samples_for=5,
       checks=("cpu.utilization", "cpu.saturation", "memory.saturation", "disk.saturation")),
    _c("mpstat", "mpstat -P ALL 1 5", "checklist60", "Per-CPU balance: one hot CPU?",
       timeout=20, samples_for=5),
    _c("pidstat", "pidstat 1 5", "checklist60", "Per-process CPU over time",
       timeout=20, samples_for=5),
    _c("iostat", "iostat -xz 1 5", "checklist60", "Disk utilisation, queue and latency",
       timeout=20, samples_for=5, parser="iostat",
       checks=("disk.utilization", "disk.saturation")),
    _c("sar-net", "sar -n DEV,EDEV 1 5", "checklist60",
       "Network interface throughput, errors and drops", timeout=20, samples_for=5,
       parser="sar", checks=("network.utilization", "network.saturation", "network.errors")),
    _c("sar-tcp", "sar -n TCP,ETCP 1 5", "checklist60",
       "TCP connection rates and retransmits", timeout=20, samples_for=5,
       parser="sar", checks=("tcp.errors",)),
    # what changed
    _c("last", "last -n 30 -F", "changes", "Recent logins", fallbacks=("last -n 30",)),
    _c("packages", "tail -n 200 /var/log/dpkg.log", "changes", "Recent package changes",
       fallbacks=("tail -n 200 /var/log/yum.log", "rpm -qa --last")),
    _c("recent-config", "find /etc -xdev -type f -mmin -1440 -printf '%TY-%Tm-%Td %TH:%TM %p\\n'",
       "changes", "Configuration files modified in the last 24 hours", needs_root=True),
)

BY_NAME: dict[str, Collector] = {c.name: c for c in COLLECTORS}


def _group(*groups: str) -> tuple[str, ...]:
    return tuple(c.name for c in COLLECTORS if c.group in groups)


BUNDLES: dict[str, tuple[str, ...]] = {
    "connectivity": _group("connectivity"),
    "logs": _group("logs"),
    "load": _group("load"),
    "checklist60": ("uptime", "dmesg", *_group("checklist60"), "free", "top"),
    "changes": _group("changes"),
    "full": _group("connectivity", "logs", "load", "checklist60", "changes"),
}


@dataclass(frozen=True)
class CatalogLookup:
    collectors: tuple[Collector, ...]
    unknown: tuple[str, ...] = field(default=())


def expand(names: list[str] | tuple[str, ...] = (), bundle: str | None = None) -> CatalogLookup:
    """Resolve collector and bundle names, keeping order and dropping repeats."""
    wanted: list[str] = list(BUNDLES.get(bundle, ())) if bundle else []
    wanted += list(names)
    seen: dict[str, Collector] = {}
    unknown: list[str] = []
    if bundle and bundle not in BUNDLES:
        unknown.append(f"bundle {bundle}")
    for name in wanted:
        if name in BUNDLES:
            for member in BUNDLES[name]:
                seen.setdefault(member, BY_NAME[member])
        elif name in BY_NAME:
            seen.setdefault(name, BY_NAME[name])
        else:
            unknown.append(name)
    return CatalogLookup(tuple(seen.values()), tuple(unknown))
