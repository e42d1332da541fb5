"""`vmstat 1 5`: run queue, swapping, blocked tasks and CPU shares per second.

The first data row is an average since boot and says nothing about now, so it
is skipped. Judged over the remaining samples:
- r above the CPU count in most samples: CPU saturation (critical above 2x);
- si/so above 0: the host is swapping (critical when it swaps in every sample);
- b above 0 in every sample: tasks stuck in uninterruptible (mostly disk) sleep;
- average wa, st, id against the shared CPU thresholds.
"""

from __future__ import annotations

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, cpu_findings, finding, fmt, number, numbered, plural

SHARES = {"wa": "iowait", "st": "steal", "id": "idle"}


def parse_vmstat(text: str, ctx: ParseContext) -> list[Finding]:
    columns: list[str] = []
    rows: list[tuple[Line, dict[str, float]]] = []
    for line in numbered(text):
        fields = line.fields
        if fields[:2] == ["r", "b"]:
            columns = fields
            continue
        values = [number(f) for f in fields]
        if columns and fields and len(fields) >= len(columns) and values[0] is not None:
            rows.append((line, {c: v for c, v in zip(columns, values, strict=False)
                                if v is not None}))
    samples = rows[1:]  # rows[0] is since boot
    if not samples:
        return []
    found = _run_queue(samples, ctx.cpu_count)
    found += _swapping(samples) + _blocked(samples)
    where = f" on average over {plural(len(samples), 'sample')}"
    for col, name in SHARES.items():
        if all(col in r for _, r in samples):
            average = sum(r[col] for _, r in samples) / len(samples)
            # the evidence is the sample that shows it most
            pick = min if name == "idle" else max
            at = pick(samples, key=lambda s, col=col: s[1][col])[0]
            found += cpu_findings({name: average}, at, where)
    return found


def _worst(samples: list[tuple[Line, dict[str, float]]], column: str) -> Line:
    return max(samples, key=lambda s: s[1].get(column, 0.0))[0]


def _run_queue(samples: list[tuple[Line, dict[str, float]]], cpus: int | None) -> list[Finding]:
    queue = [r.get("r", 0.0) for _, r in samples]
    over = sum(1 for r in queue if cpus and r > cpus)
    if not cpus or over * 2 < len(samples):
        return []
    average = sum(queue) / len(queue)
    level = Level.CRITICAL if average > 2 * cpus else Level.WARNING
    return [finding(level, Signal.SATURATION, "cpu",
                    f"run queue r averages {fmt(average, 1)} on {cpus} CPUs, above the CPU "
                    f"count in {over} of {len(samples)} samples: tasks wait for a CPU",
                    _worst(samples, "r"), fact="run_queue", value=round(average, 1))]


def _swapping(samples: list[tuple[Line, dict[str, float]]]) -> list[Finding]:
    swapping = [r for _, r in samples if r.get("si", 0.0) > 0 or r.get("so", 0.0) > 0]
    if not swapping:
        return []
    level = Level.CRITICAL if len(swapping) == len(samples) else Level.WARNING
    peak_in = max(r.get("si", 0.0) for r in swapping)
    peak_out = max(r.get("so", 0.0) for r in swapping)
    return [finding(level, Signal.SATURATION, "memory",
                    f"swapping in {len(swapping)} of {len(samples)} samples (si up to "
                    f"{fmt(peak_in)}, so up to {fmt(peak_out)} KiB/s): memory is short",
                    max(samples, key=lambda s: s[1].get("si", 0.0) + s[1].get("so", 0.0))[0])]


def _blocked(samples: list[tuple[Line, dict[str, float]]]) -> list[Finding]:
    blocked = [r.get("b", 0.0) for _, r in samples]
    if len(samples) < 2 or min(blocked) <= 0:
        return []
    return [finding(Level.WARNING, Signal.SATURATION, "disk",
                    f"{fmt(min(blocked))} to {fmt(max(blocked))} tasks blocked (b) in every "
                    f"sample: uninterruptible sleep, usually waiting on disk or NFS",
                    _worst(samples, "b"), fact="blocked_tasks",
                    value=round(sum(blocked) / len(blocked), 1))]
