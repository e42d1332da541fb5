"""Our own bugs: one wording on every front end, the traceback in the log file."""

from __future__ import annotations

from pathlib import Path

from runbook.bugs import internal_error, report_bug


def test_a_bug_is_logged_with_its_traceback_and_named_in_one_wording(runbook_home: Path) -> None:
    try:
        {}["missing"]
    except KeyError:
        line = internal_error("announce via ops", kept="the draft is kept")
    log = runbook_home / "logs" / "runbook.log"
    assert line == f"internal error: a bug in runbook; the draft is kept (details in {log})"
    text = log.read_text()
    assert "announce via ops" in text and "KeyError: 'missing'" in text


def test_an_exception_handed_over_after_the_fact_is_logged_too(runbook_home: Path) -> None:
    # The app's crash handler receives the exception outside any `except` block.
    try:
        raise RuntimeError("screen bug")
    except RuntimeError as exc:
        caught = exc
    bug = report_bug("tui crash", error=caught)
    assert bug.message == "internal error: a bug in runbook; nothing recorded was lost"
    assert "RuntimeError: screen bug" in (runbook_home / "logs" / "runbook.log").read_text()


def test_an_unwritable_log_still_gives_the_wording_without_a_path(tmp_path: Path,
                                                                   monkeypatch) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("a file where the home directory should be")
    monkeypatch.setenv("RUNBOOK_HOME", str(blocker))
    try:
        raise ValueError("x")
    except ValueError:
        bug = report_bug("cli")
    assert bug.hint == "" and str(bug) == bug.message
