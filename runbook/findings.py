"""What a parser concludes from a command's output.

Findings follow the USE method (Brendan Gregg): for each resource, its
utilization, its saturation and its errors. Each finding keeps the evidence
line it came from, so the operator (and the postmortem) can check it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum


class Level(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Signal(StrEnum):
    UTILIZATION = "utilization"
    SATURATION = "saturation"
    ERRORS = "errors"
    INFO = "info"  # context worth showing that is not a USE signal (top processes …)


@dataclass(frozen=True)
class Finding:
    level: Level
    signal: Signal
    resource: str  # cpu, memory, swap, disk:/var, inodes:/var, network, kernel, tcp, port:443 …
    summary: str  # one line in the operator's words: "load 12.3 on 4 CPUs"
    line: int | None = None  # 1-based line in the collector's stdout
    evidence: str | None = None  # that line's text
    host: str = ""
    collector: str = ""

    def on(self, host: str, collector: str) -> Finding:
        return replace(self, host=host, collector=collector)

    def as_dict(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, StrEnum) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Finding:
        return cls(level=Level(str(data["level"])), signal=Signal(str(data["signal"])),
                   resource=str(data["resource"]), summary=str(data["summary"]),
                   line=data.get("line"), evidence=data.get("evidence"),  # type: ignore[arg-type]
                   host=str(data.get("host", "")), collector=str(data.get("collector", "")))


@dataclass(frozen=True)
class ParseContext:
    """What a parser may know about the host beyond the text itself."""

    cpu_count: int | None = None
    expected_ports: tuple[int, ...] = ()
    # thresholds, as percentages unless named otherwise
    disk_warning: float = 90.0
    disk_critical: float = 95.0
    extra: dict[str, object] = field(default_factory=dict)


# A parser is a pure function from decoded stdout to findings.
Parser = Callable[[str, ParseContext], list[Finding]]
