"""The evidence viewer: huge files open at once, search, go-to, and no escape
sequence from a remote host ever reaches the terminal."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import psutil
import pytest
from textual.app import App
from textual.pilot import Pilot

from runbook import evidence_index
from runbook.evidence import truncation_marker
from runbook.findings import Finding, Level, Signal
from runbook.tui.screens.evidence import EvidenceScreen
from runbook.tui.widgets.evidence_view import EvidenceLines, EvidenceView

pytestmark = pytest.mark.asyncio

SIZE = (100, 30)
FILLER = b"filler: the quick brown fox jumps over the lazy dog 0123456789\n"  # 64 bytes
BLOCK = FILLER * (1024 * 1024 // len(FILLER))  # 1 MiB


class EvidenceApp(App[None]):
    """Pushes nothing by itself: tests push the screen, to time it."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[object] = []


def screen_text(app: App[object]) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def wait_until(pilot: Pilot[object], condition: Callable[[], bool],
                     timeout: float = 20.0, what: str = "condition") -> float:
    """Poll the app until `condition()` holds; returns the seconds it took."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.005)
    return time.monotonic() - started


def viewer(app: App[object]) -> EvidenceView:
    return app.screen.query_one(EvidenceView)


def run(app: EvidenceApp) -> AbstractAsyncContextManager[Pilot[None]]:
    return app.run_test(size=SIZE, message_hook=app.messages.append, notifications=True)


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """~100 MB: a first line, 100 MiB of filler, a last line and the runbook
    truncation marker. Returns the path and its line count."""
    path = tmp_path_factory.mktemp("big") / "big.stdout"
    with path.open("wb") as handle:
        handle.write(b"FIRST LINE of the capture\n")
        for _ in range(100):
            handle.write(BLOCK)
        handle.write(b"LAST LINE of the capture\n")
        handle.write(truncation_marker(100 * len(BLOCK), 12345))
    lines = 1 + 100 * BLOCK.count(b"\n") + 1 + 2  # the marker is "\n[...]\n"
    return path, lines


# -- a huge file --------------------------------------------------------------------


async def test_huge_file_shows_first_lines_at_once_and_reaches_the_end(
        big_capture: tuple[Path, int]) -> None:
    path, total = big_capture
    process = psutil.Process()
    app = EvidenceApp()
    async with run(app) as pilot:
        await pilot.pause()
        rss_before = process.memory_info().rss
        started = time.monotonic()
        await app.push_screen(EvidenceScreen(path))
        await wait_until(pilot, lambda: "FIRST LINE of the capture" in screen_text(app),
                         what="line 1 on screen")
        first_render = time.monotonic() - started
        assert first_render < 1.0, f"first screen took {first_render:.3f}s"

        await pilot.press("G")
        view = viewer(app)
        await wait_until(pilot, lambda: not view.indexing and view.current_line == total,
                         what="the last line")
        await pilot.pause()
        text = screen_text(app)
        assert "LAST LINE of the capture" in text
        assert "output truncated after" in text
        # the status badge, with what was kept of all the host printed
        assert "TRUNCATED: kept 100.0 MiB of 100.0 MiB" in text
        assert f"line {total:,}/{total:,}" in text

        growth = process.memory_info().rss - rss_before
        print(f"first screen after {first_render * 1000:.0f} ms, "
              f"RSS grew {growth / 2**20:.1f} MiB for {path.stat().st_size / 2**20:.0f} MiB")
        assert growth < 50 * 1024 * 1024, f"RSS grew by {growth / 2**20:.1f} MiB"

        indexed = [m for m in app.messages if isinstance(m, EvidenceView.Indexed)]
        assert [(m.line_count, m.truncated, m.error) for m in indexed] == [(total, True, None)]

        await pilot.press("g")
        await pilot.pause()
        assert view.current_line == 1
        assert "FIRST LINE of the capture" in screen_text(app)


async def test_first_screen_and_scrollbar_grow_while_indexing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow the indexer down: the first lines must show, and the line count (the
    scrollbar's range) grow, long before the index is complete."""
    path = tmp_path / "slow.stdout"
    path.write_bytes(b"first slow line\n" + BLOCK * 8)
    monkeypatch.setattr(evidence_index, "CHUNK", 256 * 1024)
    feed = evidence_index.EvidenceDocument._feed

    def slow_feed(self: evidence_index.EvidenceDocument, data: bytes, base: int) -> None:
        feed(self, data, base)
        time.sleep(0.05)

    monkeypatch.setattr(evidence_index.EvidenceDocument, "_feed", slow_feed)
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(path))
        await wait_until(pilot, lambda: "first slow line" in screen_text(app), what="line 1")
        view = viewer(app)
        assert view.indexing
        assert "indexing…" in screen_text(app)
        seen = {view.lines.virtual_size.height}
        await wait_until(pilot, lambda: seen.add(view.lines.virtual_size.height) or
                         not view.indexing, what="indexing")
        assert len(seen) > 3, seen
        await pilot.pause(0.2)
        assert view.lines.virtual_size.height == 1 + 8 * BLOCK.count(b"\n")


async def test_goto_line_before_the_index_reaches_it(big_capture: tuple[Path, int]) -> None:
    path, total = big_capture
    target = total - 10
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(path, line=target))
        await wait_until(pilot, lambda: viewer(app).current_line == target, what="the line")
        await pilot.pause()
        assert f"{target:,}/" in screen_text(app)
        assert f"{target} filler" in screen_text(app)  # its gutter number, on screen


# -- search -----------------------------------------------------------------------


@pytest.fixture
def searchable(tmp_path: Path) -> Path:
    lines = [f"line {n} nothing to see" for n in range(1, 2001)]
    lines[99] = "line 100 ERROR disk full on /var"
    lines[1199] = "line 1200 error: disk full again"
    # A colour code, removed from what is shown: its "31m" is no match.
    lines[1499] = "line 1500 \x1b[31mred\x1b[0m only"
    path = tmp_path / "search.stdout"
    path.write_text("\n".join(lines) + "\n")
    return path


def last_search(app: EvidenceApp) -> EvidenceView.SearchFinished:
    found = [m for m in app.messages if isinstance(m, EvidenceView.SearchFinished)]
    return found[-1]


def searches(app: EvidenceApp) -> int:
    return sum(isinstance(m, EvidenceView.SearchFinished) for m in app.messages)


async def search_with(pilot: Pilot[object], app: EvidenceApp,
                      *keys: str) -> EvidenceView.SearchFinished:
    """Press keys that start a search; wait for its result."""
    before = searches(app)
    await pilot.press(*keys)
    await wait_until(pilot, lambda: searches(app) > before, what="search")
    await pilot.pause()
    return last_search(app)


def highlighted(lines: EvidenceLines, line: int) -> list[str]:
    """Texts drawn in the match style on a (1-based) line, if it is on screen."""
    y = line - 1 - lines.scroll_offset.y
    assert 0 <= y < lines.size.height, "line is not on screen"
    match = lines.get_component_rich_style("evidence-lines--match", partial=True)
    return [seg.text for seg in lines.render_line(y) if seg.style and
            seg.style.bgcolor == match.bgcolor]


async def test_search_finds_highlights_and_moves_with_n(searchable: Path) -> None:
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(searchable))
        await wait_until(pilot, lambda: not viewer(app).indexing, what="index")
        view = viewer(app)

        result = await search_with(pilot, app, "slash", *"error", "enter")
        assert (result.query, result.line, result.wrapped) == ("error", 100, False)
        assert view.current_line == 100
        assert "line 100 ERROR disk full on /var" in screen_text(app)
        assert highlighted(view.lines, 100) == ["ERROR"]  # smart case: lower matches upper

        result = await search_with(pilot, app, "n")
        assert result.line == 1200 and view.current_line == 1200
        assert highlighted(view.lines, 1200) == ["error"]

        result = await search_with(pilot, app, "n")
        assert (result.line, result.wrapped) == (100, True)
        assert "wrapped" in screen_text(app)

        result = await search_with(pilot, app, "N")
        assert (result.line, result.wrapped) == (1200, True)


async def test_search_with_capitals_is_case_sensitive(searchable: Path) -> None:
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(searchable, line=500))
        await wait_until(pilot, lambda: viewer(app).current_line == 500, what="line 500")
        before = searches(app)
        viewer(app).search("ERROR")
        await wait_until(pilot, lambda: searches(app) > before, what="search")
        result = last_search(app)
        assert (result.line, result.wrapped) == (100, True)


async def test_search_without_match_says_so(searchable: Path) -> None:
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(searchable))
        await wait_until(pilot, lambda: not viewer(app).indexing, what="index")
        result = await search_with(pilot, app, "slash", *"kernel panic", "enter")
        assert result.line is None
        assert viewer(app).current_line == 1
        assert "No match for 'kernel panic'" in screen_text(app)
        # Only in the bytes of a colour code, which is not shown: no match either.
        result = await search_with(pilot, app, "slash", *"31m", "enter")
        assert result.line is None and "No match for '31m'" in screen_text(app)


# -- go to line, findings, closing ------------------------------------------------


async def test_goto_line_prompt(searchable: Path) -> None:
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(searchable))
        await wait_until(pilot, lambda: not viewer(app).indexing, what="index")
        await pilot.press("colon", *"1234", "enter")
        await pilot.pause()
        assert viewer(app).current_line == 1234
        assert "line 1234 nothing to see" in screen_text(app)
        assert "line 1,234/2,000" in screen_text(app)
        await pilot.press("colon", *"99999", "enter")  # past the end: the last line
        await pilot.pause()
        assert viewer(app).current_line == 2000
        await pilot.press("k", "k", "up")
        assert viewer(app).current_line == 1997
        await pilot.press("j")
        assert viewer(app).current_line == 1998
        await pilot.press("pageup")
        assert viewer(app).current_line < 1998 - 20
        assert f"line {viewer(app).current_line} nothing" in screen_text(app)
        await pilot.press("pagedown")
        assert viewer(app).current_line == 1998
        await pilot.press("g")
        assert viewer(app).current_line == 1


async def test_findings_are_visited_with_f_and_escape_closes(searchable: Path) -> None:
    findings = [
        Finding(Level.CRITICAL, Signal.ERRORS, "disk:/var", "disk full", line=1200),
        Finding(Level.WARNING, Signal.ERRORS, "disk:/var", "disk \x1b]0;x\x07almost", line=100),
        Finding(Level.INFO, Signal.INFO, "cpu", "no line"),
    ]
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(searchable, findings))
        await wait_until(pilot, lambda: not viewer(app).indexing, what="index")
        visited = []
        for key in "fffF":
            await pilot.press(key)
            await pilot.pause()
            visited.append(viewer(app).current_line)
        assert visited == [100, 1200, 100, 1200]
        assert "\x1b" not in screen_text(app)

        await pilot.press("slash")  # escape first closes the prompt ...
        await pilot.press("escape")
        assert isinstance(app.screen, EvidenceScreen)
        await pilot.press("escape")  # ... then the screen
        await pilot.pause()
        assert not isinstance(app.screen, EvidenceScreen)


# -- hostile output ---------------------------------------------------------------


async def test_escape_sequences_and_invalid_utf8_never_reach_the_screen(
        tmp_path: Path) -> None:
    path = tmp_path / "hostile.stdout"
    path.write_bytes(
        b"title \x1b]0;pwned\x07 ok\n"
        b"clip \x1b]52;c;cm0gLXJmIH4=\x07 done\n"
        b"\x1b[2J\x1b[Hcleared \x1b[31mred\x1b[0m\n"
        b"8bit \xc2\x9b2J csi \xc2\x9d0;t\xc2\x9c end\n"
        b"dcs \x1bP1$r0m\x1b\\ end\n"
        b"bad \xff\xfe bytes\n"
        b"raw c1 \x9b2J\n"
        b"cr overwrite\rhidden?\n"
        b"tab\there\n"
        b"ends with esc \x1b")
    app = EvidenceApp()
    async with run(app) as pilot:
        await app.push_screen(EvidenceScreen(path))
        await wait_until(pilot, lambda: not viewer(app).indexing, what="index")
        await pilot.pause()
        text = screen_text(app)
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), repr(text)
        # Every control is shown as its escape; colour codes alone are removed.
        for shown in (r"title \x1b]0;pwned\x07 ok", r"clip \x1b]52;c;cm0gLXJmIH4=\x07 done",
                      r"\x1b[2J\x1b[Hcleared red", r"8bit \x9b2J csi \x9d0;t\x9c end",
                      r"dcs \x1bP1$r0m\x1b\ end", "bad \ufffd\ufffd bytes", "raw c1 \ufffd2J",
                      r"cr overwrite\x0dhidden?", "tab     here", r"ends with esc \x1b"):
            assert shown in text
        assert "\x1b" not in app.export_screenshot()
