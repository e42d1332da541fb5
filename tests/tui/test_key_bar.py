"""The key bar at the bottom of every screen: what fits, and what always stays."""

from __future__ import annotations

from runbook.tui.widgets.key_bar import fit


def test_the_key_bar_gives_way_with_an_ellipsis_and_keeps_help() -> None:
    pairs = [("d", "Done"), ("s", "Skip"), ("a", "Answer"), ("n", "Note"),
             ("R", "Resolve"), ("esc", "Back"), ("?", "Help")]
    wide = fit(pairs, 80, {"esc", "?"}).plain
    assert "…" not in wide and wide.strip().endswith("? Help")
    narrow = fit(pairs, 40, {"esc", "?"}).plain
    assert len(narrow) <= 40 and "… esc Back" in narrow and narrow.rstrip().endswith("? Help")
    assert "R Resolve" not in narrow
