"""A capture's line index and search, for viewers of any size (no screen here).

A capture can be 100 MB, may not be UTF-8, and comes from a host we do not
trust. Nothing holds its text: `EvidenceDocument.build` indexes the file into
an array of line-start offsets (4 or 8 bytes a line), a reader reads only the
lines it shows, and every line goes through `runbook.sanitize.clean_line`.
Files are read with plain `read()` calls, never `mmap`: pages of a mapping
count in the process's resident memory, so mapping a 100 MB capture would look
(and, under pressure, act) like holding it.

`SearchQuery` and `search_lines` find text as it is shown: candidates are
found in raw bytes, chunk by chunk, and kept only if the cleaned line holds the
query too. The app's `tui/widgets/evidence_view.py` draws what this reads.
"""

from __future__ import annotations

import codecs
import re
import threading
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice
from pathlib import Path
from typing import BinaryIO

from rich.cells import cell_len

from runbook.evidence import truncation_marker
from runbook.sanitize import clean_line

# Past this many bytes a line is cut for display (and for search verification):
# one minified JSON blob must not cost a screenful of work on every repaint.
MAX_LINE_BYTES = 32 * 1024
FIRST_CHUNK = 256 * 1024  # small, so the first screen shows at once
# Splitting a chunk holds the GIL throughout: 1 MiB keeps that under ~5 ms.
CHUNK = 1024 * 1024

_marker = re.escape(truncation_marker(111111, 222222))
TRUNCATION_MARKER = re.compile(
    _marker.replace(b"111111", rb"(\d+)").replace(b"222222", rb"(\d+)") + rb"\Z")
_MARKER_TAIL = len(truncation_marker(10**15, 10**15))


def _offset_typecode(size: int) -> str:
    # 'I' halves the index for captures under 4 GiB; the +1 is the end sentinel.
    return "I" if array("I").itemsize >= 4 and size + 1 < 2**32 else "Q"


@dataclass(frozen=True)
class DisplayLine:
    text: str  # cleaned, safe for the terminal
    width: int  # cells
    hidden: int  # bytes past MAX_LINE_BYTES that are not shown


class EvidenceDocument:
    """A capture on disk, indexed by line start offsets as a worker reads it.

    The index is a snapshot of the file's size when indexing starts. `build`
    runs in one thread; any thread may read. `line_count` counts only lines
    whose end has been seen, so it grows while indexing and never shrinks."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.size: int | None = None
        self.truncated = False
        self.kept: int | None = None  # bytes kept, and in all, of a cut capture
        self.total: int | None = None
        self.complete = False
        self.error: str | None = None
        self._starts = array("Q", [0])
        self._scanned = 0
        self._cond = threading.Condition()

    def open(self) -> BinaryIO:
        """A handle of one's own: each thread reads through its own."""
        return self.path.open("rb", buffering=0)

    # -- indexing (worker thread) ---------------------------------------------

    def build(self, cancelled: Callable[[], bool],
              progress: Callable[[], None] = lambda: None) -> bool:
        """Index the whole file. False if cancelled or the file cannot be read."""
        try:
            with self.open() as handle:
                size = handle.seek(0, 2)
                self._starts = array(_offset_typecode(size), [0])
                tail = min(size, _MARKER_TAIL)
                handle.seek(size - tail)
                marker = TRUNCATION_MARKER.search(handle.read(tail))
                self.truncated = marker is not None
                if marker is not None:
                    self.kept = int(marker.group(1))
                    self.total = self.kept + int(marker.group(2))
                handle.seek(0)
                self.size = size
                progress()
                base, want = 0, FIRST_CHUNK
                while base < size:
                    if cancelled():
                        return False
                    data = handle.read(min(want, size - base))
                    if not data:  # the file shrank under us
                        break
                    self._feed(data, base)
                    base += len(data)
                    want = CHUNK
                    progress()
        except OSError as error:
            self.error = f"{error.strerror or error}"
            with self._cond:
                self.complete = True
                self._cond.notify_all()
            progress()
            return False
        self._finish(base)
        progress()
        return True

    def _feed(self, data: bytes, base: int) -> None:
        parts = data.split(b"\n")
        # Each line start is 1 past the previous newline: running sums of
        # len(part) + 1, all in C (map/accumulate), no Python loop per line.
        ends = accumulate(map((1).__add__, map(len, islice(parts, len(parts) - 1))))
        local = array(self._starts.typecode, map(base.__add__, ends))
        with self._cond:
            self._starts.extend(local)
            self._scanned = base + len(data)
            self._cond.notify_all()

    def _finish(self, size: int) -> None:
        with self._cond:
            if self._starts[-1] < size:  # the last line has no newline
                self._starts.append(size + 1)
            self.size = size
            self._scanned = size
            self.complete = True
            self._cond.notify_all()

    # -- reading (any thread) ---------------------------------------------------

    @property
    def scanned(self) -> int:
        return self._scanned

    @property
    def line_count(self) -> int:
        return len(self._starts) - 1

    def span(self, line: int) -> tuple[int, int] | None:
        """Byte range of a 0-based line, newline excluded; None if not indexed yet."""
        with self._cond:
            if line < 0 or line + 1 >= len(self._starts):
                return None
            return self._starts[line], self._starts[line + 1] - 1

    def line_at(self, offset: int, cancelled: Callable[[], bool]) -> int | None:
        """The 0-based line holding a byte offset, waiting for the index to reach it."""
        with self._cond:
            while not self.complete and self._scanned <= offset:
                if cancelled():
                    return None
                self._cond.wait(0.05)
            return bisect_right(self._starts, offset) - 1

    def read_line(self, handle: BinaryIO, line: int) -> DisplayLine | None:
        span = self.span(line)
        if span is None:
            return None
        start, end = span
        length = end - start
        handle.seek(start)
        data = handle.read(min(length, MAX_LINE_BYTES))
        if len(data) < length:
            # A cut can fall inside a UTF-8 sequence: hold the partial one back.
            text = codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
        else:
            text = data.decode("utf-8", errors="replace")
        text = clean_line(text)
        return DisplayLine(text, cell_len(text), length - len(data))


class SearchQuery:
    """A plain substring with smart case: case-insensitive unless it has a capital.

    Candidates are found in raw bytes (fast, chunked); a line counts as a match
    only if its cleaned, displayed text contains the query too, so a match
    only inside a removed colour code is never reported."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.case_sensitive = any(ch.isupper() for ch in text)
        self.pattern = re.compile(re.escape(text), 0 if self.case_sensitive else re.IGNORECASE)
        self._fold = False
        self._regex: re.Pattern[bytes] | None = None
        if self.case_sensitive:
            self._needle = text.encode()
        elif text.isascii():
            self._needle, self._fold = text.lower().encode(), True
        else:
            # bytes.lower() folds ASCII only: spell each letter's cases out.
            self._needle = text.encode()
            self._regex = re.compile(b"".join(
                b"(?:" + b"|".join(sorted(re.escape(v.encode())
                                          for v in {ch, ch.lower(), ch.upper()})) + b")"
                for ch in text))
        self.max_bytes = sum(max(len(v.encode()) for v in (ch, ch.lower(), ch.upper()))
                             for ch in text)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in self.pattern.finditer(text)]

    def found_in(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def offsets(self, data: bytes, limit: int, reverse: bool) -> list[int]:
        """Starts of candidate matches in data that begin before `limit`."""
        if self._regex is not None:
            found = [m.start() for m in self._regex.finditer(data) if m.start() < limit]
            return found[::-1] if reverse else found
        hay = data.lower() if self._fold else data
        found = []
        if reverse:
            at = hay.rfind(self._needle, 0, limit + len(self._needle) - 1)
            while at >= 0:
                found.append(at)
                at = hay.rfind(self._needle, 0, at + len(self._needle) - 1)
        else:
            at = hay.find(self._needle)
            while 0 <= at < limit:
                found.append(at)
                at = hay.find(self._needle, at + 1)
        return found


@dataclass(frozen=True)
class SearchHit:
    line: int  # 0-based
    wrapped: bool


def _candidates(handle: BinaryIO, query: SearchQuery, lo: int, hi: int, forward: bool,
                cancelled: Callable[[], bool]) -> Iterator[int]:
    """Absolute offsets of raw matches in [lo, hi), in search order."""
    overlap = max(0, query.max_bytes - 1)
    if forward:
        pos = lo
        while pos < hi and not cancelled():
            handle.seek(pos)
            data = handle.read(min(CHUNK + overlap, hi - pos))
            for at in query.offsets(data, CHUNK, reverse=False):
                yield pos + at
            pos += CHUNK
    else:
        end = hi
        while end > lo and not cancelled():
            start = max(lo, end - CHUNK)
            handle.seek(start)
            data = handle.read(min(end + overlap, hi) - start)
            for at in query.offsets(data, end - start, reverse=True):
                yield start + at
            end = start


def search_lines(document: EvidenceDocument, query: SearchQuery, from_line: int, *,
                 forward: bool, inclusive: bool,
                 cancelled: Callable[[], bool] = lambda: False) -> SearchHit | None:
    """The next line (after, or from, `from_line`) whose displayed text holds the
    query, wrapping around the end of the file once."""
    span = document.span(from_line)
    size = document.size or 0
    if span is None or not query.text:
        return None
    start, end = span
    if forward:
        cut = start if inclusive else min(end + 1, size)
        ranges = [(cut, size, False), (0, cut, True)]
    else:
        cut = end + 1 if inclusive else start
        ranges = [(0, min(cut, size), False), (min(cut, size), size, True)]
    rejected = -1
    with document.open() as handle:
        for lo, hi, wrapped in ranges:
            for offset in _candidates(handle, query, lo, hi, forward, cancelled):
                line = document.line_at(offset, cancelled)
                if line is None:
                    return None
                if line == rejected:
                    continue
                shown = document.read_line(handle, line)
                if shown is not None and query.found_in(shown.text):
                    return SearchHit(line, wrapped)
                rejected = line
    return None
