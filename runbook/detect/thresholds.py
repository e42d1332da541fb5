"""Thresholds on named metrics, and the units metric values carry.

A threshold is `[NAME]OP VALUE[:LEVEL]`: `sidekiq.*.latency>1000`,
`db.pool.waiting>=5:warning`, `status!=ok`, or just `>0` (any metric). NAME is
a shell glob over metric names. Values may carry a unit (`40.9MB`, `12ms`,
`1.5s`); both sides are compared in a base unit (milliseconds for time, bytes
for sizes), so `latency>1s` catches `1500ms`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from runbook.errors import RunbookError
from runbook.findings import Finding, Level, Signal

# Sizes are binary, as Heroku's runtime metrics (`sample#memory_total=40.9MB`) mean them.
_TIME = {"us": 0.001, "µs": 0.001, "ms": 1.0, "s": 1000.0, "sec": 1000.0, "min": 60_000.0,
         "h": 3_600_000.0}
_SIZE = {"b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2, "gb": 1024**3,
         "gib": 1024**3, "tb": 1024**4, "tib": 1024**4}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-zµ]*|%)\s*$")
_SPEC = re.compile(r"^\s*(?P<name>[^<>=!\s]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[^\s:]+)"
                   r"\s*(?::\s*(?P<level>warning|critical))?\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")


@dataclass(frozen=True)
class Quantity:
    value: float  # as written
    unit: str  # as written ("" for none)

    @property
    def base(self) -> float:
        """In milliseconds for a time, bytes for a size, else the number itself."""
        unit = self.unit.lower() if self.unit != "µs" else self.unit
        return self.value * _TIME.get(unit, _SIZE.get(unit, 1))

    def __str__(self) -> str:
        return f"{self.value:g}{self.unit}"


def parse_quantity(text: str) -> Quantity | None:
    """`40.9MB` -> Quantity(40.9, "MB"); None when it is not a number."""
    match = _QUANTITY.match(text)
    if not match:
        return None
    value = float(match.group(1))
    return Quantity(value, match.group(2)) if math.isfinite(value) else None


def parse_duration(text: str) -> float:
    """`5m`, `90s`, `1h`, `300` (seconds) -> seconds."""
    match = _DURATION.match(text)
    if not match:
        raise RunbookError(f"{text!r} is not a duration", "like 90s, 5m or 1h")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2) or "s"]


@dataclass(frozen=True)
class Threshold:
    pattern: str  # glob over metric names; "" matches every metric
    op: str
    value: str
    level: Level = Level.CRITICAL
    text: str = ""

    def matches(self, name: str) -> bool:
        return not self.pattern or fnmatchcase(name, self.pattern)

    def crossed(self, value: float | str | bool | None) -> bool:
        """Whether `value` is past the threshold. Text compares only with == and !=."""
        if value is None:
            return False
        limit = parse_quantity(self.value)
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, str):
            number = parse_quantity(value)
            if number is None or limit is None:
                return self.op in ("==", "!=") and (value == self.value) == (self.op == "==")
            value = number.base
        if limit is None:
            return self.op == "!="  # a number never equals a word
        return _compare(float(value), self.op, limit.base)

    def finding(self, name: str, shown: str, resource: str, *, source: str = "",
                host: str = "", evidence: str | None = None) -> Finding:
        origin = f" from {source}" if source else ""
        return Finding(self.level, Signal.SATURATION if self.op in (">", ">=") else Signal.ERRORS,
                       resource, f"{name} = {shown}{origin} (threshold {self.text})",
                       evidence=evidence, host=host)


def _compare(value: float, op: str, limit: float) -> bool:
    return {">": value > limit, ">=": value >= limit, "<": value < limit,
            "<=": value <= limit, "==": value == limit, "!=": value != limit}[op]


def parse_threshold(text: str) -> Threshold:
    match = _SPEC.match(text)
    if not match:
        raise RunbookError(f"{text!r} is not a threshold",
                           "like 'sidekiq.*.latency>1000', 'db.pool.waiting>=5:warning' or '>0'")
    level = Level(match.group("level") or "critical")
    return Threshold(match.group("name"), match.group("op"), match.group("value"), level,
                     text.strip())


def parse_thresholds(texts: list[str] | tuple[str, ...]) -> list[Threshold]:
    return [parse_threshold(t) for t in texts]
