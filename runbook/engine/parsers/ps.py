"""`ps auxwww`: the heaviest processes, zombies and tasks stuck in D state.

ps's %CPU is CPU time divided by the process's lifetime, not a current rate:
a daemon that spun for an hour yesterday still shows high. The summaries say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, integer, number, numbered, plural

TOP = 3


@dataclass(frozen=True)
class Process:
    at: Line
    user: str
    pid: str
    cpu: float
    mem: float
    cpu_text: str  # as ps printed it
    mem_text: str
    stat: str
    command: str

    @property
    def name(self) -> str:
        head = self.command.split()[0] if self.command.split() else "?"
        return head if head.startswith("[") else head.rsplit("/", 1)[-1].rstrip(":")

    @property
    def label(self) -> str:
        return f"{self.pid} ({self.name})"


def _processes(text: str) -> list[Process]:
    found = []
    for line in numbered(text):
        parts = line.text.split(None, 10)  # COMMAND keeps its spaces
        if len(parts) < 11 or integer(parts[1]) is None:
            continue
        cpu, mem = number(parts[2]), number(parts[3])
        if cpu is None or mem is None:
            continue
        found.append(Process(line, parts[0], parts[1], cpu, mem, parts[2], parts[3], parts[7],
                             parts[10]))
    return found


def parse_ps(text: str, ctx: ParseContext) -> list[Finding]:
    processes = _processes(text)
    found: list[Finding] = []
    for rank, p in enumerate(sorted(processes, key=lambda p: -p.cpu)[:TOP], start=1):
        if p.cpu > 0:
            found.append(finding(Level.INFO, Signal.INFO, f"process:{p.pid}",
                                 f"top CPU #{rank}: {p.label} at {p.cpu_text}% CPU "
                                 f"(lifetime average), {p.mem_text}% MEM, user {p.user}",
                                 p.at))
    for rank, p in enumerate(sorted(processes, key=lambda p: -p.mem)[:TOP], start=1):
        if p.mem > 0:
            found.append(finding(Level.INFO, Signal.INFO, f"process:{p.pid}",
                                 f"top memory #{rank}: {p.label} at {p.mem_text}% MEM, "
                                 f"{p.cpu_text}% CPU, user {p.user}", p.at))
    zombies = [p for p in processes if p.stat.startswith("Z")]
    if zombies:
        found.append(finding(Level.WARNING, Signal.ERRORS, "processes",
                             f"{plural(len(zombies), 'zombie process', 'zombie processes')} "
                             f"(STAT Z: {_names(zombies)}): their parent is not reaping them",
                             zombies[0].at, fact="zombies", value=len(zombies)))
    stuck = [p for p in processes if p.stat.startswith("D")]
    if stuck:
        found.append(finding(Level.WARNING, Signal.SATURATION, "processes",
                             f"{plural(len(stuck), 'process', 'processes')} in uninterruptible "
                             f"sleep (STAT D: {_names(stuck)}): usually waiting on disk or NFS",
                             stuck[0].at))
    return found


def _names(processes: list[Process], shown: int = 5) -> str:
    labels = [p.label for p in processes[:shown]]
    more = len(processes) - shown
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")
