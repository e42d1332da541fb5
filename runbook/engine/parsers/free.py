"""`free -m`: memory available and swap.

"available" (the kernel's MemAvailable) is what new work can get without
swapping; "free" alone is misleading because the page cache is reclaimable.
Thresholds: available below 10% warning, below 5% critical; swap more than
half used warning; swap in use while available is low means the host pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, fmt, numbered, size_mib

AVAILABLE_WARNING = 10.0
AVAILABLE_CRITICAL = 5.0
SWAP_WARNING = 50.0


def memory_findings(total: float, available: float, mem_at: Line,
                    swap_total: float = 0.0, swap_used: float = 0.0,
                    swap_at: Line | None = None) -> list[Finding]:
    """Judge memory from MiB figures; shared with top, which prints the same numbers."""
    found: list[Finding] = []
    share = 100.0 * available / total if total > 0 else 100.0
    low = share < AVAILABLE_WARNING
    if low:
        level = Level.CRITICAL if share < AVAILABLE_CRITICAL else Level.WARNING
        found.append(finding(level, Signal.UTILIZATION, "memory",
                             f"memory available {fmt(available, 0)} MiB of {fmt(total, 0)} MiB "
                             f"({fmt(share, 1)}%, warning below {fmt(AVAILABLE_WARNING)}%, "
                             f"critical below {fmt(AVAILABLE_CRITICAL)}%)", mem_at,
                             fact="memory_available", value=round(share, 1)))
    if swap_total > 0 and swap_at is not None:
        swap_share = 100.0 * swap_used / swap_total
        if swap_share > SWAP_WARNING:
            found.append(finding(Level.WARNING, Signal.UTILIZATION, "swap",
                                 f"swap {fmt(swap_share, 1)}% used ({fmt(swap_used, 0)} of "
                                 f"{fmt(swap_total, 0)} MiB, warning above "
                                 f"{fmt(SWAP_WARNING)}%)", swap_at,
                                 fact="swap_used", value=round(swap_share, 1)))
        if low and swap_used > 0:
            level = Level.CRITICAL if share < AVAILABLE_CRITICAL else Level.WARNING
            found.append(finding(level, Signal.SATURATION, "memory",
                                 f"memory pressure: only {fmt(share, 1)}% available while "
                                 f"{fmt(swap_used, 0)} MiB are swapped out (vmstat si/so "
                                 "shows whether it pages now)",
                                 swap_at, fact="memory_pressure", value=round(share, 1)))
    return found


@dataclass(frozen=True)
class MemoryUse:
    """What free printed: total and available MiB, the Mem line, and swap."""

    total: float
    available: float
    line: Line
    swap_total: float = 0.0
    swap_used: float = 0.0
    swap_line: Line | None = None

    @property
    def used_percent(self) -> float:
        """Used, not counting what the kernel can drop (cache): what runs short."""
        return 100.0 - 100.0 * self.available / self.total if self.total > 0 else 0.0


def memory_use(text: str) -> MemoryUse | None:
    """The memory figures of `free` output; None for a layout it cannot read."""
    lines = numbered(text)
    columns: list[str] = []
    rows: dict[str, tuple[Line, list[float]]] = {}
    for line in lines:
        fields = line.fields
        if fields and fields[0] == "total":
            columns = [f.lower() for f in fields]
        elif fields and fields[0].endswith(":"):
            values = [size_mib(f) for f in fields[1:]]
            # "-/+ buffers/cache:" is keyed as "-/+" (old procps)
            key = fields[0].split()[0].rstrip(":").lower()
            if values and all(v is not None for v in values):
                rows[key] = (line, [v for v in values if v is not None])
    if "mem" not in rows:
        return None
    mem_at, mem = rows["mem"]
    named = dict(zip(columns, mem, strict=False))
    total = named.get("total", mem[0])
    if "available" in named:
        available = named["available"]
    elif "-/+" in rows and len(rows["-/+"][1]) >= 2:
        available = rows["-/+"][1][1]  # old procps: free after buffers/cache
    elif {"free", "buffers", "cached"} <= named.keys():
        available = named["free"] + named["buffers"] + named["cached"]
    else:
        return None  # a truncated or unknown layout: better silent than a false alarm
    swap_at, swap = rows.get("swap", (None, [0.0, 0.0]))
    return MemoryUse(total, available, mem_at, swap[0], swap[1] if len(swap) > 1 else 0.0,
                     swap_at)


def parse_free(text: str, ctx: ParseContext) -> list[Finding]:
    use = memory_use(text)
    if use is None:
        return []
    return memory_findings(use.total, use.available, use.line, use.swap_total, use.swap_used,
                           use.swap_line)
