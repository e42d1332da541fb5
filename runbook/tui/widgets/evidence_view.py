"""A viewer for captured outputs of any size.

A capture can be 100 MB, may not be UTF-8, and comes from a host we do not
trust. The viewer therefore never holds the text: a worker thread indexes the
file into an array of line-start offsets (4 or 8 bytes a line), the screen
reads only the lines it shows (with a small cache), and every line goes through
`runbook.sanitize.clean_line` on its way to a `Strip`.

Files are read with plain `read()` calls, never `mmap`: pages of a mapping
count in the process's resident memory, so mapping a 100 MB capture would look
(and, under pressure, act) like holding it.

The index and the search are `runbook.evidence_index`, which knows nothing of
Textual; here `EvidenceLines` is the Line-API renderer and `EvidenceView` the
widget screens use (lines, a prompt for search and go-to, a status line).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from runbook.evidence import human_bytes
from runbook.evidence_index import (
    DisplayLine,
    EvidenceDocument,
    SearchHit,
    SearchQuery,
    search_lines,
)
from runbook.sanitize import clean_line

# What the renderer keeps of lines already read, and how often indexing reports.
CACHE_LINES = 2048
CACHE_CHARS = 4 * 1024 * 1024
PROGRESS_EVERY_S = 0.1
FIRST_PAINT_WAIT_S = 0.5


class EvidenceLines(ScrollView, can_focus=True):
    """Renders an `EvidenceDocument` line by line with a cursor and search highlights."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "evidence-lines--gutter",
        "evidence-lines--cursor",
        "evidence-lines--match",
        "evidence-lines--hidden",
    }

    DEFAULT_CSS = """
    EvidenceLines {
        height: 1fr;
        background: $surface;
        color: $foreground;
    }
    EvidenceLines > .evidence-lines--gutter {
        color: $text-muted;
    }
    EvidenceLines > .evidence-lines--cursor {
        background: $primary 30%;
    }
    EvidenceLines > .evidence-lines--match {
        background: $warning;
        color: $text;
        text-style: bold;
    }
    EvidenceLines > .evidence-lines--hidden {
        color: $text-muted;
        text-style: italic;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown,space", "page_down", "Page down", show=False),
        Binding("g", "top", "Top"),
        Binding("G", "bottom", "Bottom"),
        Binding("home", "top", "Top", show=False),
        Binding("end", "bottom", "Bottom", show=False),
    ]

    class CursorMoved(Message):
        """The cursor moved; `line` is 1-based."""

        def __init__(self, lines: EvidenceLines, line: int) -> None:
            super().__init__()
            self.lines = lines
            self.line = line

        @property
        def control(self) -> EvidenceLines:
            return self.lines

    def __init__(self, document: EvidenceDocument, *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.document = document
        self.cursor = 0  # 0-based
        self.highlight: SearchQuery | None = None
        self._line_count = 0
        self._max_width = 0
        self._handle: BinaryIO | None = None
        self._cache: OrderedDict[int, DisplayLine] = OrderedDict()
        self._cache_chars = 0
        self._follow_end = False
        self._pending_line: int | None = None
        self._resize_scheduled = False

    # -- public -------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return self._line_count

    def sync(self) -> None:
        """Catch up with the document's index: called as indexing progresses."""
        count = self.document.line_count
        if count != self._line_count:
            self._line_count = count
            self._update_virtual_size()
            self.refresh()
        if self._follow_end and count:
            self._set_cursor(count - 1, center=False, keep_follow=True)
        if self._pending_line is not None:
            if self._pending_line < count:
                self._set_cursor(self._pending_line, center=True)
            elif self.document.complete and count:
                self._set_cursor(count - 1, center=True)
        if self.document.complete:
            self._follow_end = False

    def goto(self, line: int, *, center: bool = True) -> bool:
        """Put the cursor on a 0-based line. If the index has not reached it yet,
        the move happens when it does (clamped to the last line); False then."""
        self.sync()
        line = max(0, line)
        if line < self._line_count:
            self._set_cursor(line, center=center)
            return True
        if self.document.complete:
            if self._line_count:
                self._set_cursor(self._line_count - 1, center=center)
            return False
        self._follow_end = False
        self._pending_line = line
        return False

    def end(self) -> None:
        """To the last line, following the index until it is complete."""
        self.sync()
        self._pending_line = None
        self._follow_end = not self.document.complete
        if self._line_count:
            self._set_cursor(self._line_count - 1, center=False, keep_follow=True)

    def set_highlight(self, query: SearchQuery | None) -> None:
        self.highlight = query
        self.refresh()

    # -- actions -----------------------------------------------------------------

    def action_cursor_up(self) -> None:
        self._set_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self._set_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        page = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=max(0, self.scroll_offset.y - page), animate=False, force=True)
        self._set_cursor(self.cursor - page)

    def action_page_down(self) -> None:
        page = max(1, self.scrollable_content_region.height - 1)
        self.scroll_to(y=self.scroll_offset.y + page, animate=False, force=True)
        self._set_cursor(self.cursor + page)

    def action_top(self) -> None:
        self._set_cursor(0)

    def action_bottom(self) -> None:
        self.end()

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            self._set_cursor(self.scroll_offset.y + offset.y)

    def on_unmount(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    # -- cursor ------------------------------------------------------------------

    def _set_cursor(self, line: int, *, center: bool = False, keep_follow: bool = False) -> None:
        if not keep_follow:
            self._follow_end = False
        self._pending_line = None
        if self._line_count == 0:
            return
        line = max(0, min(line, self._line_count - 1))
        old, self.cursor = self.cursor, line
        self._scroll_to_cursor(center)
        self.refresh_line(old)
        self.refresh_line(line)
        if old != line or center:
            self.post_message(self.CursorMoved(self, line + 1))

    def _scroll_to_cursor(self, center: bool) -> None:
        height = max(1, self.scrollable_content_region.height)
        top = self.scroll_offset.y
        if center and not top <= self.cursor < top + height:
            target = self.cursor - height // 3
        elif self.cursor < top:
            target = self.cursor
        elif self.cursor >= top + height:
            target = self.cursor - height + 1
        else:
            return
        self.scroll_to(y=max(0, target), animate=False, force=True)

    # -- rendering ---------------------------------------------------------------

    @property
    def _gutter_width(self) -> int:
        return max(4, len(str(self._line_count))) + 1

    def _update_virtual_size(self) -> None:
        self._resize_scheduled = False
        self.virtual_size = Size(self._gutter_width + self._max_width + 1, self._line_count)

    def watch_show_horizontal_scrollbar(self, shown: bool) -> None:
        # The scrollbar appears once a wide line has been read, and takes the
        # bottom row: if the cursor was on that row, keep it in view.
        if shown and self.cursor == self.scroll_offset.y + self.scrollable_content_region.height:
            self._scroll_to_cursor(center=False)

    def _line(self, line: int) -> DisplayLine | None:
        cached = self._cache.get(line)
        if cached is not None:
            self._cache.move_to_end(line)
            return cached
        try:
            if self._handle is None:
                self._handle = self.document.open()
            shown = self.document.read_line(self._handle, line)
        except OSError:
            return None
        if shown is None:
            return None
        self._cache[line] = shown
        self._cache_chars += len(shown.text)
        while len(self._cache) > CACHE_LINES or self._cache_chars > CACHE_CHARS:
            _, dropped = self._cache.popitem(last=False)
            self._cache_chars -= len(dropped.text)
        width = shown.width + (len(self._hidden_note(shown.hidden)) if shown.hidden else 0)
        if width > self._max_width:
            self._max_width = width
            if not self._resize_scheduled:  # never resize in the middle of a render
                self._resize_scheduled = True
                self.call_later(self._update_virtual_size)
        return shown

    @staticmethod
    def _hidden_note(hidden: int) -> str:
        return f" … [{hidden:,} more bytes on this line not shown]"

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        number = scroll_y + y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if number >= self._line_count:
            return Strip.blank(width, base)
        shown = self._line(number)
        if shown is None:
            return Strip.blank(width, base)
        style = base + self.get_component_rich_style("evidence-lines--cursor") \
            if number == self.cursor else base
        segments = self._segments(shown, style)
        gutter_width = self._gutter_width
        body = Strip(segments).crop_extend(scroll_x, scroll_x + max(0, width - gutter_width),
                                           style)
        gutter_style = style + self.get_component_rich_style("evidence-lines--gutter",
                                                              partial=True)
        gutter = Strip([Segment(f"{number + 1:>{gutter_width - 1}} ", gutter_style)],
                       gutter_width)
        return Strip.join([gutter, body]).crop(0, width)

    def _segments(self, shown: DisplayLine, style: Style) -> list[Segment]:
        text = shown.text
        segments: list[Segment] = []
        spans = self.highlight.spans(text) if self.highlight and self.highlight.text else []
        if spans:
            match = style + self.get_component_rich_style("evidence-lines--match", partial=True)
            at = 0
            for start, end in spans:
                if start > at:
                    segments.append(Segment(text[at:start], style))
                segments.append(Segment(text[start:end], match))
                at = end
            if at < len(text):
                segments.append(Segment(text[at:], style))
        elif text:
            segments.append(Segment(text, style))
        if shown.hidden:
            hidden = style + self.get_component_rich_style("evidence-lines--hidden",
                                                           partial=True)
            segments.append(Segment(self._hidden_note(shown.hidden), hidden))
        return segments


class EvidenceView(Vertical):
    """A captured output: its lines, a search / go-to prompt and a status line.

    `EvidenceView(path)` opens the file; indexing starts on mount and runs in a
    worker, and the first screen shows before it ends. Lines are 1-based in the
    public API, as in `Finding.line`."""

    DEFAULT_CSS = """
    EvidenceView {
        height: 1fr;
    }
    EvidenceView > #evidence-prompt {
        display: none;
        dock: bottom;
        height: 3;
    }
    EvidenceView.-prompting > #evidence-prompt {
        display: block;
    }
    EvidenceView > #evidence-status {
        dock: bottom;
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "prompt_search", "Search"),
        Binding("n", "search_next", "Next match"),
        Binding("N", "search_previous", "Prev match"),
        Binding("colon", "prompt_goto", "Go to line"),
        Binding("escape", "close_prompt", "Cancel", show=False),
    ]

    class Indexed(Message):
        """Indexing finished: `line_count` lines, `truncated` if the capture was cut."""

        def __init__(self, view: EvidenceView, line_count: int, truncated: bool,
                     error: str | None) -> None:
            super().__init__()
            self.view = view
            self.line_count = line_count
            self.truncated = truncated
            self.error = error

        @property
        def control(self) -> EvidenceView:
            return self.view

    class SearchFinished(Message):
        """A search ended: `line` (1-based) is the match, or None for no match."""

        def __init__(self, view: EvidenceView, query: str, line: int | None,
                     wrapped: bool) -> None:
            super().__init__()
            self.view = view
            self.query = query
            self.line = line
            self.wrapped = wrapped

        @property
        def control(self) -> EvidenceView:
            return self.view

    class _Progress(Message):
        pass

    class _SearchDone(Message):
        def __init__(self, generation: int, query: SearchQuery, hit: SearchHit | None) -> None:
            super().__init__()
            self.generation = generation
            self.query = query
            self.hit = hit

    def __init__(self, path: Path | str, *, line: int | None = None, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.path = Path(path)
        self.document = EvidenceDocument(self.path)
        self.search_query: SearchQuery | None = None
        self.searching = False
        self._initial_line = line
        self._prompt_mode: str | None = None
        self._generation = 0
        self._last_progress = 0.0
        self._reported_count = 0
        self._first_paint = threading.Event()
        self._indexed_posted = False

    def compose(self) -> ComposeResult:
        yield Static(id="evidence-status")
        yield Input(id="evidence-prompt")
        yield EvidenceLines(self.document, id="evidence-lines")

    @property
    def lines(self) -> EvidenceLines:
        return self.query_one(EvidenceLines)

    def on_mount(self) -> None:
        self._update_status()
        self.lines.focus()
        if self._initial_line is not None:
            self.goto_line(self._initial_line)
        self._build_index()

    def on_unmount(self) -> None:
        self._first_paint.set()  # never leave the indexer waiting for a paint

    # -- public API --------------------------------------------------------------

    @property
    def current_line(self) -> int:
        """1-based line under the cursor (0 for an empty file)."""
        return self.lines.cursor + 1 if self.lines.line_count else 0

    @property
    def line_count(self) -> int:
        """Lines indexed so far (all of them once `indexing` is False)."""
        return self.document.line_count

    @property
    def indexing(self) -> bool:
        return not self.document.complete

    def goto_line(self, line: int) -> None:
        """Move the cursor to a 1-based line, e.g. `Finding.line`; if the index
        has not reached it yet, the move happens as soon as it does."""
        self.lines.goto(line - 1)
        self._update_status()

    def search(self, text: str, *, forward: bool = True, inclusive: bool = True) -> None:
        """Search from the cursor line; the result arrives as `SearchFinished`."""
        if not text:
            return
        self.search_query = SearchQuery(text)
        self.lines.set_highlight(self.search_query)
        self._start_search(forward, inclusive)

    # -- indexing ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="evidence-index")
    def _build_index(self) -> None:
        worker = get_current_worker()
        self.document.build(lambda: worker.is_cancelled, self._report_progress)

    def _report_progress(self) -> None:  # worker thread
        now, count = time.monotonic(), self.document.line_count
        first_lines = count > 0 and self._reported_count == 0  # the first screen, at once
        if first_lines or self.document.complete or \
                now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress, self._reported_count = now, count
            self.post_message(self._Progress())
            if first_lines:
                # Let the first screen paint before indexing competes for the GIL.
                self._first_paint.wait(FIRST_PAINT_WAIT_S)
        else:
            time.sleep(0)  # hand the GIL to the UI thread between chunks

    @on(_Progress)
    def _on_progress(self, event: _Progress) -> None:
        event.stop()
        self.lines.sync()
        self._update_status()
        if self.document.line_count and not self._first_paint.is_set():
            self.call_after_refresh(self._first_paint.set)
        document = self.document
        if document.complete and not self._indexed_posted:
            self._indexed_posted = True
            if document.error:
                self.notify(f"Cannot read {self.path.name}: {document.error}",
                            severity="error", markup=False)
            self.post_message(self.Indexed(self, document.line_count, document.truncated,
                                           document.error))

    # -- search ------------------------------------------------------------------

    def _start_search(self, forward: bool, inclusive: bool) -> None:
        if self.search_query is None:
            return
        if not self.lines.line_count:
            if self.document.complete:
                self.notify(f"No match for {self.search_query.text!r}", severity="warning",
                            markup=False)
            else:
                self.notify("Still opening the file: search again in a moment", markup=False)
            return
        self._generation += 1
        self.searching = True
        self._update_status()
        self._search_worker(self._generation, self.search_query, self.lines.cursor, forward,
                            inclusive)

    @work(thread=True, exclusive=True, group="evidence-search")
    def _search_worker(self, generation: int, query: SearchQuery, from_line: int,
                       forward: bool, inclusive: bool) -> None:
        worker = get_current_worker()
        try:
            hit = search_lines(self.document, query, from_line, forward=forward,
                               inclusive=inclusive, cancelled=lambda: worker.is_cancelled)
        except OSError:
            hit = None
        if not worker.is_cancelled:
            self.post_message(self._SearchDone(generation, query, hit))

    @on(_SearchDone)
    def _on_search_done(self, event: _SearchDone) -> None:
        event.stop()
        if event.generation != self._generation:
            return  # a newer search replaced this one
        self.searching = False
        hit = event.hit
        if hit is None:
            self.notify(f"No match for {event.query.text!r}", severity="warning",
                        markup=False)
        else:
            if hit.wrapped:
                self.notify("Search wrapped around the end of the file", markup=False)
            self.lines.goto(hit.line)
        self._update_status()
        self.post_message(self.SearchFinished(self, event.query.text,
                                              None if hit is None else hit.line + 1,
                                              hit.wrapped if hit else False))

    def action_search_next(self) -> None:
        if self.search_query is None:
            self.notify("No search yet: press / to search", markup=False)
            return
        self._start_search(forward=True, inclusive=False)

    def action_search_previous(self) -> None:
        if self.search_query is None:
            self.notify("No search yet: press / to search", markup=False)
            return
        self._start_search(forward=False, inclusive=False)

    # -- prompt ------------------------------------------------------------------

    def action_prompt_search(self) -> None:
        self._open_prompt("search", "Search (smart case): Enter to find, Esc to cancel", None)

    def action_prompt_goto(self) -> None:
        self._open_prompt("goto", "Go to line: Enter to jump, Esc to cancel", r"[0-9]*")

    def _open_prompt(self, mode: str, placeholder: str, restrict: str | None) -> None:
        prompt = self.query_one("#evidence-prompt", Input)
        self._prompt_mode = mode
        prompt.restrict = restrict
        prompt.value = ""
        prompt.placeholder = placeholder
        self.add_class("-prompting")
        prompt.focus()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_prompt":
            return self._prompt_mode is not None
        return True

    def action_close_prompt(self) -> None:
        self._prompt_mode = None
        self.remove_class("-prompting")
        self.lines.focus()
        self.refresh_bindings()

    @on(Input.Submitted, "#evidence-prompt")
    def _on_prompt_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        mode, value = self._prompt_mode, event.value.strip()
        self.action_close_prompt()
        if not value:
            return
        if mode == "search":
            self.search(value)
        elif mode == "goto":
            self.goto_line(int(value))

    # -- status ------------------------------------------------------------------

    @on(EvidenceLines.CursorMoved)
    def _on_cursor_moved(self) -> None:
        self._update_status()

    def _update_status(self) -> None:
        if not self.is_mounted:
            return
        document = self.document
        status = Text(no_wrap=True, overflow="ellipsis")
        if document.truncated:
            # First, so a narrow terminal cuts the file name rather than this.
            cut = (f" TRUNCATED: kept {human_bytes(document.kept)} of "
                   f"{human_bytes(document.total)} " if document.kept is not None
                   and document.total is not None else " TRUNCATED ")
            status.append(cut, style="reverse bold")
            status.append("  ")
        status.append(clean_line(self.path.name), style="bold")
        status.append("  ")
        if document.error:
            status.append(f"cannot read: {clean_line(document.error)}", style="red")
        else:
            count = document.line_count
            if count or document.complete:
                status.append(f"line {self.current_line:,}/{count:,}")
            if not document.complete:
                done = document.scanned * 100 // document.size if document.size else 0
                status.append(f"  indexing… {done}%", style="italic")
            if document.size is not None:
                status.append(f"  {human_bytes(document.size)}")
            if self.searching and self.search_query is not None:
                status.append("  searching…", style="italic")
        self.query_one("#evidence-status", Static).update(status)
