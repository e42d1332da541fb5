"""`iostat -xz 1 5`: utilisation, queue and latency per disk.

The first report is the average since boot and says nothing about now, so it
is left out when later reports follow. Each device is judged on the mean of the
remaining reports; the evidence is the report line where it was busiest.
Thresholds (DISK): %util above 60 is where Brendan Gregg's USE method says
queueing starts to hurt a single spindle, above 90 the device is busy nearly all
the time (a caveat: SSDs and RAID serve requests in parallel, so 100% there
is not yet a limit). An average queue (aqu-sz, avgqu-sz before sysstat 12)
above 1 is saturation: requests wait for the device.
"""

from __future__ import annotations

from dataclasses import dataclass

from runbook.findings import Finding, ParseContext, Signal

from ._common import Line, finding, fmt, graded, number, numbered

QUEUE_COLUMNS = ("aqu-sz", "avgqu-sz")
WAIT_COLUMNS = ("r_await", "w_await", "await")


@dataclass(frozen=True)
class DiskThresholds:
    util_warning: float = 60.0
    util_critical: float = 90.0
    queue_warning: float = 1.0
    queue_critical: float = 8.0


DISK = DiskThresholds()


@dataclass
class Device:
    name: str
    samples: list[tuple[Line, dict[str, float]]]

    def mean(self, column: str) -> float | None:
        values = [row[column] for _, row in self.samples if column in row]
        return sum(values) / len(values) if values else None

    def busiest(self, column: str) -> Line:
        return max(self.samples, key=lambda s: s[1].get(column, 0.0))[0]


def _reports(text: str) -> list[dict[str, tuple[Line, dict[str, float]]]]:
    reports: list[dict[str, tuple[Line, dict[str, float]]]] = []
    columns: list[str] = []
    for line in numbered(text):
        fields = line.fields
        if fields[:1] in (["Device"], ["Device:"]):
            columns = [f.rstrip(":") for f in fields]
            reports.append({})
            continue
        if not columns or len(fields) != len(columns) or not reports:
            continue
        values = {c: v for c, token in zip(columns[1:], fields[1:], strict=True)
                  if (v := number(token)) is not None}
        if values:
            reports[-1][fields[0]] = (line, values)
    return reports


def parse_iostat(text: str, ctx: ParseContext) -> list[Finding]:
    reports = _reports(text)
    since_boot = len(reports) == 1
    recent = reports if since_boot else reports[1:]
    devices: dict[str, Device] = {}
    for report in recent:
        for name, sample in report.items():
            devices.setdefault(name, Device(name, [])).samples.append(sample)
    where = " since boot" if since_boot else f" over {len(recent)} one-second reports"
    found: list[Finding] = []
    for device in devices.values():
        found += _utilisation(device, where) + _queue(device, where)
    return found


def _utilisation(device: Device, where: str) -> list[Finding]:
    util = device.mean("%util")
    level = graded(util, DISK.util_warning, DISK.util_critical)
    if util is None or level is None:
        return []
    return [finding(level, Signal.UTILIZATION, "disk",
                    f"{device.name} busy {fmt(util, 1)}% of the time{where} (warning at "
                    f"{fmt(DISK.util_warning)}%, critical at {fmt(DISK.util_critical)}%)",
                    device.busiest("%util"), fact=f"disk_util:{device.name}", value=round(util, 1))]


def _queue(device: Device, where: str) -> list[Finding]:
    column = next((c for c in QUEUE_COLUMNS if device.mean(c) is not None), None)
    queue = device.mean(column) if column else None
    level = graded(queue, DISK.queue_warning, DISK.queue_critical)
    if column is None or queue is None or level is None:
        return []
    waits = [f"{c} {fmt(v, 1)} ms" for c in WAIT_COLUMNS if (v := device.mean(c)) is not None]
    latency = f"; {', '.join(waits)}" if waits else ""
    return [finding(level, Signal.SATURATION, "disk",
                    f"{device.name} has {fmt(queue, 1)} requests queued on average{where} "
                    f"(warning at {fmt(DISK.queue_warning)}, critical at "
                    f"{fmt(DISK.queue_critical)}){latency}: requests wait for the disk",
                    device.busiest(column), fact=f"disk_queue:{device.name}",
                    value=round(queue, 2))]
