"""`df -hP` and `df -iP`: space and inodes per mounted filesystem.

A filesystem at ctx.disk_warning (90%) is a warning and at ctx.disk_critical
(95%) critical. Memory-backed filesystems (tmpfs, devtmpfs) and read-only
images (squashfs snaps, CD-ROMs), which are full by design, are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbook.findings import Finding, Level, ParseContext, Signal

from ._common import Line, finding, fmt, number, numbered

# -P keeps one filesystem per line; the mount point may hold spaces, so it is the rest.
ROW = re.compile(r"^(?P<fs>\S+)(?:\s+(?P<type>[a-z][\w.]*))?\s+(?P<size>\S+)\s+(?P<used>\S+)"
                 r"\s+(?P<avail>\S+)\s+(?P<pct>\d+%|-)\s+(?P<mount>/.*)$")
PSEUDO_FS = {"tmpfs", "devtmpfs", "udev", "none", "shm", "proc", "sysfs", "cgroup", "cgroup2",
             "efivarfs", "squashfs", "iso9660", "udf", "ramfs"}


def _is_image(fs: str, fstype: str | None, mount: str) -> bool:
    if (fstype or fs) in PSEUDO_FS:
        return True
    # Snap packages are squashfs loop mounts under /snap, always 100% full; CD-ROMs
    # likewise. Another loop device is a real filesystem (a disk image mounted
    # for data) and is judged like any other.
    return fs.startswith("/dev/sr") or mount.startswith("/snap/")


@dataclass(frozen=True)
class Usage:
    """One real filesystem's use, as df printed it."""

    mount: str
    percent: float
    inodes: bool  # df -i: the share of inodes, not of blocks
    line: Line
    match: re.Match[str]


def usage(text: str) -> list[Usage]:
    """Every real filesystem in df output (pseudo and image filesystems left out):
    what parse_df judges, and what hosts are compared on (runbook.peers)."""
    lines = numbered(text)
    inodes = any(("IUse%" in line.text or "Inodes" in line.text) for line in lines[:3])
    has_type = any(line.fields[1:2] == ["Type"] for line in lines[:3])
    found = []
    for line in lines:
        match = ROW.match(line.text.strip())
        if not match or (match["type"] is not None) != has_type:
            continue
        pct = number(match["pct"])
        if pct is None or _is_image(match["fs"], match["type"], match["mount"]):
            continue
        found.append(Usage(match["mount"], pct, inodes, line, match))
    return found


def parse_df(text: str, ctx: ParseContext) -> list[Finding]:
    found: list[Finding] = []
    for use in usage(text):
        level = (Level.CRITICAL if use.percent >= ctx.disk_critical
                 else Level.WARNING if use.percent >= ctx.disk_warning else None)
        if level is not None:
            found.append(_full(use.line, use.match, use.percent, level, use.inodes, ctx))
    return found


def _full(line: Line, match: re.Match[str], pct: float, level: Level, inodes: bool,
          ctx: ParseContext) -> Finding:
    mount = match["mount"]
    bounds = f"warning at {fmt(ctx.disk_warning)}%, critical at {fmt(ctx.disk_critical)}%"
    if inodes:
        summary = (f"{mount} has used {fmt(pct)}% of its inodes ({match['used']} of "
                   f"{match['size']}, {match['avail']} free; {bounds}): "
                   "many small files, new files cannot be created when it reaches 100%")
        return finding(level, Signal.UTILIZATION, f"inodes:{mount}", summary, line,
                       fact="inodes_used", value=pct)
    summary = (f"{mount} is {fmt(pct)}% full ({match['used']} of {match['size']} used, "
               f"{match['avail']} free, on {match['fs']}; {bounds})")
    return finding(level, Signal.UTILIZATION, f"disk:{mount}", summary, line,
                   fact="space_used", value=pct)
