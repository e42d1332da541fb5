"""Captured output, streamed to disk as it arrives.

Each collector run gets three files under the incident's evidence/ folder:
`<stem>.stdout`, `<stem>.stderr` (raw bytes, exactly as received) and
`<stem>.json` (host, command, times, exit code, sizes). Nothing is held whole
in memory; past the cap a stream stops being written and gets a visible marker.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from runbook.clock import utc_iso

DEFAULT_CAP = 64 * 1024 * 1024


def truncation_marker(kept: int, dropped: int) -> bytes:
    return (f"\n[runbook: output truncated after {kept} bytes; {dropped} more bytes were "
            f"not kept (cap set by --max-output)]\n").encode()


class CappedStream:
    """Writes bytes to a file up to a cap, counting what it drops."""

    def __init__(self, path: Path, cap: int) -> None:
        self.path = path
        self.cap = cap
        self.written = 0
        self.dropped = 0
        self.digest = hashlib.sha256()
        self._handle: BinaryIO = path.open("wb")
        self._lock = threading.Lock()

    def __call__(self, data: bytes) -> None:
        with self._lock:
            room = self.cap - self.written
            if room > 0:
                kept = data[:room]
                self._handle.write(kept)
                self.digest.update(kept)
                self.written += len(kept)
                data = data[room:]
            self.dropped += len(data)

    def account(self, total: int | None) -> None:
        """The stream had `total` bytes, some never sent to us (the host runner
        sends no more than the cap): count the unsent ones as dropped."""
        with self._lock:
            if total is not None and total > self.written + self.dropped:
                self.dropped = total - self.written

    def close(self) -> None:
        with self._lock:
            if self.dropped:
                self._handle.write(truncation_marker(self.written, self.dropped))
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    @property
    def truncated(self) -> bool:
        return self.dropped > 0


@dataclass
class EvidenceRecord:
    """What the journal's `collector.ran` event points at."""

    host: str
    collector: str
    command: str
    started_at: datetime
    ended_at: datetime
    exit_code: int | None
    status: str
    stdout: str  # path relative to the incident directory
    stderr: str
    meta: str
    stdout_bytes: int
    stderr_bytes: int
    truncated: bool
    sha256: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    message: str | None = None
    # What the files hold when the stream was cut at the cap (`*_bytes` is all
    # the command printed).
    stdout_kept: int = 0
    stderr_kept: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["started_at"] = utc_iso(self.started_at, "microseconds")
        data["ended_at"] = utc_iso(self.ended_at, "microseconds")
        data["duration_s"] = round((self.ended_at - self.started_at).total_seconds(), 3)
        return data


class EvidenceWriter:
    """One collector run on one host."""

    def __init__(self, incident_dir: Path, host: str, collector: str,
                 cap: int = DEFAULT_CAP) -> None:
        self.incident_dir = incident_dir
        self.started_at = datetime.now(UTC)
        directory = incident_dir / "evidence" / host
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"{self.started_at:%Y%m%dT%H%M%S_%f}Z-{collector}"
        self.paths = {kind: directory / f"{stem}.{kind}" for kind in ("stdout", "stderr", "json")}
        self.host = host
        self.collector = collector
        self.stdout = CappedStream(self.paths["stdout"], cap)
        self.stderr = CappedStream(self.paths["stderr"], cap)

    def finish(self, *, command: str, exit_code: int | None, status: str,
               attempts: list[dict[str, Any]], message: str | None) -> EvidenceRecord:
        self.stdout.close()
        self.stderr.close()
        record = EvidenceRecord(
            host=self.host, collector=self.collector, command=command,
            started_at=self.started_at, ended_at=datetime.now(UTC), exit_code=exit_code,
            status=status,
            stdout=self._relative(self.stdout.path), stderr=self._relative(self.stderr.path),
            meta=self._relative(self.paths["json"]),
            stdout_bytes=self.stdout.written + self.stdout.dropped,
            stderr_bytes=self.stderr.written + self.stderr.dropped,
            truncated=self.stdout.truncated or self.stderr.truncated,
            sha256=self.stdout.digest.hexdigest(), attempts=attempts, message=message,
            stdout_kept=self.stdout.written, stderr_kept=self.stderr.written)
        self.paths["json"].write_text(json.dumps(record.as_dict(), indent=2, ensure_ascii=False))
        return record

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.incident_dir))


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def truncation_note(record: Mapping[str, Any]) -> str | None:
    """`truncated: stdout kept 64.0 MiB of 100.0 MiB` for an evidence record (as
    the journal holds it) whose output was cut at the cap; None when it was not."""
    if not record.get("truncated"):
        return None
    parts = []
    for stream in ("stdout", "stderr"):
        total, kept = record.get(f"{stream}_bytes"), record.get(f"{stream}_kept")
        if isinstance(total, int) and isinstance(kept, int) and total > kept:
            parts.append(f"{stream} kept {human_bytes(kept)} of {human_bytes(total)}")
    return "truncated: " + ("; ".join(parts) if parts else "past the output cap")


def read_head(path: Path, limit: int = 8 * 1024 * 1024) -> str:
    """The first `limit` bytes of a capture, decoded for parsers and screens."""
    with path.open("rb") as handle:
        return handle.read(limit).decode("utf-8", errors="replace")
