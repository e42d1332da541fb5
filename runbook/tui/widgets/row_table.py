"""A table drawn line by line, each row rendered once and kept until it changes.

Textual's DataTable re-renders every visible cell whenever any cell changes (its
render caches are keyed on a table-wide update counter). Fed live progress from
20+ hosts, that made the hosts table the most expensive thing on screen: 25 ms a
redraw, up to 450 ms on a loaded machine, while keys waited. Here a row is a
tuple of (text, style) cells; its rendered line is cached under that tuple, so a
redraw costs one render per row that really changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = tuple[str, str]  # (text, rich style)
Row = tuple[Cell, ...]


@dataclass(frozen=True)
class Column:
    title: str
    cap: int | None = None  # widest it may grow; None: takes the width that is left


class RowTable(ScrollView, can_focus=True):
    """A header line that stays put, then one line per row; a cursor while focused."""

    COMPONENT_CLASSES = {"row-table--header", "row-table--even", "row-table--cursor"}
    DEFAULT_CSS = """
    RowTable { background: $surface; color: $foreground; height: 1fr; overflow-x: hidden; }
    RowTable > .row-table--header { text-style: bold; background: $panel; }
    RowTable > .row-table--even { background: $surface-lighten-1 50%; }
    RowTable:dark > .row-table--even { background: $surface-darken-1 40%; }
    RowTable > .row-table--cursor { background: $surface; }
    RowTable:focus > .row-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """
    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    cursor_row: reactive[int] = reactive(0, always_update=True)

    @dataclass
    class Selected(Message):
        table: RowTable
        index: int  # into every row set, whatever the filter shows

    @dataclass
    class Highlighted(Message):
        """The cursor is on another row (or the rows under it changed)."""

        table: RowTable
        index: int | None  # into every row, as for Selected; None: no rows shown

    def describe(self, index: int) -> str:
        """The row in full, for the line under the table: `column: text` pairs,
        where a cell in the table may have been cut to fit."""
        row = self._source[index]
        return "  ".join(f"{c.title}: {text}" for c, (text, _) in zip(self.columns, row,
                                                                         strict=False) if text)

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self._rows: list[Row] = []  # the rows shown: those the filter keeps
        self._source: list[Row] = []  # every row
        self._shown: list[int] = []  # for each row shown, its index in _source
        self.filter_text = ""
        self._widths: list[int] = []
        self._lines: LRUCache[tuple[object, ...], Strip] = LRUCache(512)

    # -- content ------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def plain_rows(self) -> list[list[str]]:
        """The cells' text, row by row: what the operator reads."""
        return [[text for text, _ in row] for row in self._rows]

    def _kept(self, row: Row) -> bool:
        needle = self.filter_text.casefold()
        return not needle or any(needle in text.casefold() for text, _ in row)

    def set_filter(self, text: str) -> None:
        """Show only the rows with `text` in a cell (any case); "" shows them all."""
        self.filter_text = text
        source, self._source = self._source, []
        self._rows = []
        self.set_rows(source)

    @property
    def unfiltered_count(self) -> int:
        return len(self._source)

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Replace the rows; only a change the operator could see costs a repaint."""
        self._source = list(rows)
        self._shown = [i for i, row in enumerate(self._source) if self._kept(row)]
        rows = [self._source[i] for i in self._shown]
        if rows == self._rows:
            return
        grew = len(rows) != len(self._rows)
        self._rows = rows
        self._widths = []
        if grew:
            self.virtual_size = Size(self.size.width, len(rows) + 1)
            self.cursor_row = min(self.cursor_row, max(0, len(rows) - 1))
        else:
            self.post_message(self.Highlighted(self, self.cursor_source_index))
        self.refresh()

    def append_rows(self, rows: Sequence[Row], follow: bool = False) -> None:
        """Add rows at the end. With `follow`, a cursor on the last row (where it
        starts) moves on to the new last row, as `tail -f` would."""
        if not rows:
            return
        at_end = self.cursor_row >= len(self._rows) - 1
        start = len(self._source)
        self._source.extend(rows)
        kept = [i for i in range(start, len(self._source)) if self._kept(self._source[i])]
        self._shown.extend(kept)
        self._rows.extend(self._source[i] for i in kept)
        self._widths = []
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        if follow and at_end:
            self.cursor_row = len(self._rows) - 1
            # The new virtual size bounds scrolling only once it is laid out.
            self.call_after_refresh(self._scroll_to_cursor)
        self.refresh()

    # -- drawing -------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()  # a theme change: every cached line has old colours

    def _column_widths(self, total: int) -> list[int]:
        if self._widths and sum(self._widths) == total:
            return self._widths
        widths: list[int] = []
        for index, column in enumerate(self.columns):
            if column.cap is None:
                widths.append(0)
                continue
            widest = max([cell_len(column.title)]
                         + [cell_len(row[index][0]) for row in self._rows if index < len(row)])
            widths.append(min(column.cap, widest) + 2)
        flexible = [i for i, c in enumerate(self.columns) if c.cap is None]
        spare = max(0, total - sum(widths))
        for i in flexible:
            widths[i] = spare // len(flexible)
        if flexible:
            widths[flexible[-1]] += spare - sum(widths[i] for i in flexible)
        self._widths = widths
        return widths

    def _line(self, cells: Row, row_style: Style, width: int) -> Strip:
        segments = []
        for (text, style), column_width in zip(cells, self._column_widths(width), strict=False):
            if column_width <= 0:
                continue
            if cell_len(text) > column_width - 2:
                text = set_cell_size(text, max(0, column_width - 3)) + "…"
            segments.append(Segment(set_cell_size(f" {text} ", column_width),
                                    row_style + Style.parse(style) if style else row_style))
        return Strip(segments).adjust_cell_length(width, row_style)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self.rich_style
        if y == 0:
            key: tuple[object, ...] = ("header", width)
            if key not in self._lines:
                style = base + self.get_component_rich_style("row-table--header")
                titles = tuple((column.title, "") for column in self.columns)
                self._lines[key] = self._line(titles, style, width)
            return self._lines[key]
        index = self.scroll_offset.y + y - 1
        if index >= len(self._rows):
            return Strip.blank(width, base)
        row = self._rows[index]
        cursor = index == self.cursor_row and self.has_focus
        key = (row, width, index % 2, cursor)
        line = self._lines.get(key)
        if line is None:
            style = base
            if index % 2:
                style += self.get_component_rich_style("row-table--even")
            if cursor:
                style += self.get_component_rich_style("row-table--cursor")
            line = self._line(row, style, width)
            self._lines[key] = line
        return line

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self._rows) + 1)
        self._widths = []
        self._scroll_to_cursor()  # moved while hidden (another tab): show it now

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- the cursor ------------------------------------------------------------------

    def watch_cursor_row(self, row: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, self.cursor_source_index))

    def _scroll_to_cursor(self) -> None:
        if self.size.height < 2:
            return  # not laid out (a hidden tab): done again on resize
        visible = self.size.height - 1  # less the header
        top, row = self.scroll_offset.y, self.cursor_row
        if row < top:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False, immediate=True)

    def action_cursor(self, step: int) -> None:
        if self._rows:
            self.cursor_row = max(0, min(len(self._rows) - 1, self.cursor_row + step))

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 2))

    def action_jump(self, row: int) -> None:
        if self._rows:
            self.cursor_row = row if row >= 0 else len(self._rows) - 1

    def on_click(self, event: events.Click) -> None:
        """A click moves the cursor to the row; a click on the cursor's row opens it."""
        row = self.scroll_offset.y + event.y - 1
        if event.y < 1 or not 0 <= row < len(self._rows):
            return
        if row == self.cursor_row:
            self.action_select()
        else:
            self.cursor_row = row

    def action_select(self) -> None:
        if 0 <= self.cursor_row < len(self._rows):
            self.post_message(self.Selected(self, self._shown[self.cursor_row]))

    @property
    def cursor_source_index(self) -> int | None:
        """The cursor's row as an index into every row (the filter aside)."""
        return self._shown[self.cursor_row] if 0 <= self.cursor_row < len(self._shown) \
            else None
