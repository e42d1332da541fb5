"""Small pieces every parser needs: numbered lines, numbers, and building findings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from runbook.findings import Finding, Level, Signal

TIME = re.compile(r"^\d{1,2}:\d{2}:\d{2}$")
MERIDIEM = {"AM", "PM"}
_SIZE = re.compile(r"^(\d+(?:[.,]\d+)?)([KMGTPE]?)(?:iB|i|B)?$", re.I)
_UNITS = "KMGTPE"


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, as the operator counts lines of the output
    text: str

    @property
    def fields(self) -> list[str]:
        return self.text.split()


def numbered(text: str) -> list[Line]:
    # Split on "\n" only, as the evidence viewer counts lines: str.splitlines()
    # also splits on \r, \f, \x1c-\x1e and U+2028, and the numbers would drift.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [Line(n, raw.removesuffix("\r")) for n, raw in enumerate(lines, start=1)]


def finding(level: Level, signal: Signal, resource: str, summary: str,
            at: Line | None = None, *, fact: str | None = None,
            value: float | None = None) -> Finding:
    return Finding(level=level, signal=signal, resource=resource, summary=summary,
                   line=at.number if at else None,
                   evidence=at.text.strip() if at else None, fact=fact, value=value)


def number(token: str) -> float | None:
    """`12.5`, `12,5` (a comma-decimal locale), `96%` → float; anything else → None."""
    token = token.strip().rstrip("%")
    if token.count(",") == 1 and "." not in token:
        token = token.replace(",", ".")
    try:
        value = float(token)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None  # no NaN/inf


def integer(token: str) -> int | None:
    """A plain count (`5`, `0443`); None for anything else, including absurdly long digit runs."""
    token = token.strip()
    return int(token) if token.isascii() and token.isdigit() and len(token) <= 18 else None


def size_mib(token: str, unit_mib: float = 1.0) -> float | None:
    """`512`, `4.0K`, `23Gi`, `1.5T` → MiB. A bare number is in units of `unit_mib` MiB."""
    match = _SIZE.match(token.strip())
    if not match:
        return None
    value = number(match.group(1))
    if value is None:
        return None
    suffix = match.group(2).upper()
    return value * 1024.0 ** (_UNITS.index(suffix) - 1) if suffix else value * unit_mib


def fmt(value: float, digits: int = 2) -> str:
    """12.31 → "12.31", 3.0 → "3", 0.3333 → "0.33": numbers as an operator writes them."""
    return f"{round(value, digits):g}" if abs(value) < 1e15 else f"{value:.0f}"


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else (words or word + 's')}"


def graded(value: float | None, warning: float, critical: float) -> Level | None:
    """The level of a value against its thresholds (at or above each); None below both."""
    if value is None or value < warning:
        return None
    return Level.CRITICAL if value >= critical else Level.WARNING


def worst(levels: list[Level]) -> Level:
    order = [Level.INFO, Level.WARNING, Level.CRITICAL]
    return max(levels, key=order.index, default=Level.INFO)


def strip_time(fields: list[str]) -> tuple[str | None, list[str]]:
    """Split a sar-style row into its time (`15:53:11`, `03:53:11 PM`) and the rest."""
    if not fields or not TIME.match(fields[0]):
        return None, fields
    if len(fields) > 1 and fields[1].upper() in MERIDIEM:
        return f"{fields[0]} {fields[1]}", fields[2:]
    return fields[0], fields[1:]


@dataclass(frozen=True)
class CpuRule:
    """One threshold on a CPU time share, shared by top, vmstat and sar -u."""

    metric: str  # iowait, steal, idle
    threshold: float
    below: bool  # fires when the value is below the threshold (idle), else at/above
    signal: Signal
    resource: str
    explain: str

    def fires(self, value: float) -> bool:
        return value < self.threshold if self.below else value >= self.threshold

    def summary(self, value: float, where: str) -> str:
        bound = f"{'below' if self.below else 'at or above'} {fmt(self.threshold)}%"
        return f"CPU {self.metric} {value:.1f}%{where} ({bound}): {self.explain}"


CPU_RULES = (
    CpuRule("iowait", 20.0, False, Signal.SATURATION, "disk",
            "CPUs sit idle waiting on disk or network I/O"),
    CpuRule("steal", 10.0, False, Signal.SATURATION, "cpu",
            "the hypervisor is giving this VM's CPU time to other guests"),
    CpuRule("idle", 10.0, True, Signal.UTILIZATION, "cpu", "the CPUs are nearly fully busy"),
)


def cpu_findings(shares: dict[str, float], at: Line, where: str = "") -> list[Finding]:
    """Warnings for the CPU time shares (`iowait`, `steal`, `idle`, in percent) given."""
    return [finding(Level.WARNING, rule.signal, rule.resource,
                    rule.summary(shares[rule.metric], where), at,
                    fact=f"cpu_{rule.metric}", value=shares[rule.metric])
            for rule in CPU_RULES
            if rule.metric in shares and rule.fires(shares[rule.metric])]


def first(lines: list[Line], test: Callable[[Line], bool]) -> Line | None:
    return next((line for line in lines if test(line)), None)
