"""The line-by-line table behind the hosts, findings and timeline tabs, as an
operator sees it: header on top, rows cut to fit, a cursor that stays in view."""

from __future__ import annotations

from typing import Any

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult

from runbook.tui.widgets.row_table import Column, Row, RowTable

pytestmark = pytest.mark.asyncio


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.selected: list[int] = []

    def compose(self) -> ComposeResult:
        yield RowTable([Column("host", 10), Column("state", 8), Column("detail")], id="t")

    def on_row_table_selected(self, event: RowTable.Selected) -> None:
        self.selected.append(event.index)


def rows(count: int, start: int = 0) -> list[Row]:
    return [((f"web{i}", ""), ("ok" if i % 2 else "failed", "green"),
             (f"detail {i} " + "x" * 60, "")) for i in range(start, start + count)]


def screen_lines(app: App[Any]) -> list[str]:
    return [strip.text for strip in app.screen._compositor.render_strips()]


async def test_header_rows_and_cut_cells_fit_the_width() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 6)) as pilot:
        table = app.query_one(RowTable)
        table.set_rows([(("web-東京-1", ""), ("ok", "green"), ("all fine", "")),
                        (("a-very-long-hostname", ""), ("timeout", "red"), ("x" * 80, ""))])
        await pilot.pause()
        lines = screen_lines(app)
        assert lines[0].split() == ["host", "state", "detail"]
        assert lines[1].split() == ["web-東京-1", "ok", "all", "fine"]
        assert " a-very-lo…  timeout " in lines[2] and lines[2].rstrip().endswith("…")
        assert all(cell_len(line) == 40 for line in lines[:3])
        assert table.plain_rows()[1][0] == "a-very-long-hostname", "the text itself is whole"


async def test_the_cursor_stays_in_view_under_a_fixed_header() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(RowTable)
        table.set_rows(rows(30))
        table.focus()
        await pilot.press(*["j"] * 12)
        assert table.cursor_row == 12
        lines = screen_lines(app)
        assert lines[0].split()[:2] == ["host", "state"], "the header stays on top"
        assert any(line.startswith(" web12 ") for line in lines[1:])
        await pilot.press("end")
        assert table.cursor_row == 29 and screen_lines(app)[7].startswith(" web29 ")
        await pilot.press("home", "down", "enter")
        assert app.selected == [1]


async def test_appended_rows_are_followed_unless_the_reader_moved_up() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(RowTable)
        table.append_rows(rows(10), follow=True)
        await pilot.pause()
        assert table.cursor_row == 9 and screen_lines(app)[7].startswith(" web9 ")
        table.append_rows(rows(5, start=10), follow=True)
        await pilot.pause()
        assert table.cursor_row == 14 and screen_lines(app)[7].startswith(" web14 ")
        table.focus()
        await pilot.press("up", "up")
        table.append_rows(rows(5, start=15), follow=True)
        await pilot.pause()
        assert table.cursor_row == 12, "reading an older row: the cursor stays there"
        assert table.row_count == 20


async def test_a_click_moves_the_cursor_and_a_second_click_opens_the_row() -> None:
    app = TableApp()
    async with app.run_test(size=(60, 8)) as pilot:
        table = app.query_one(RowTable)
        table.set_rows(rows(5))
        await pilot.pause()
        await pilot.click(RowTable, offset=(2, 3))  # the header is line 0: row 2
        assert table.cursor_row == 2 and app.selected == []
        await pilot.click(RowTable, offset=(2, 3))
        assert app.selected == [2]
        await pilot.click(RowTable, offset=(2, 0))  # the header opens nothing
        assert app.selected == [2] and table.cursor_row == 2
