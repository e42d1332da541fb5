"""The journal keeps every acknowledged event, whatever happens to the writer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from runbook.incident.journal import Event, Journal

WRITER = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path
    from runbook.incident.journal import Journal
    journal = Journal(Path(sys.argv[1]))
    tag = sys.argv[2]
    size = int(sys.argv[3])
    stop_at = time.monotonic() + float(sys.argv[4]) if float(sys.argv[4]) else None
    n = 0
    while stop_at is None or time.monotonic() < stop_at:
        n += 1
        event = journal.append("note.added", {"text": "x" * (n * 997 % size), "tag": tag,
                                              "n": n}, "writer-" + tag)
        # Only now is the event acknowledged: tell the parent.
        sys.stdout.write(event.id + "\\n")
        sys.stdout.flush()
""")


def start_writer(directory: Path, tag: str, size: int = 4096,
                 seconds: float = 0) -> subprocess.Popen[str]:
    """A process appending events until killed (or for `seconds`)."""
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(directory), tag, str(size), str(seconds)],
        stdout=subprocess.PIPE, text=True)


def test_append_and_replay_in_order(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "inc")
    written = [journal.append("note.added", {"text": f"note {i}"}, "ops") for i in range(50)]
    replay = journal.replay()
    assert [e.id for e in replay.events] == [e.id for e in written]
    assert replay.events[7].data == {"text": "note 7"}
    assert replay.events[0].ts.tzinfo is not None  # UTC inside
    assert replay.damaged == []


def test_event_survives_round_trip_with_unicode_and_newlines(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "inc")
    text = "日本語のメモ\nsecond line\t\x1b[31mred\x1b[0m"
    journal.append("note.added", {"text": text}, "山田")
    [event] = journal.replay().events
    assert event.data["text"] == text
    assert event.actor == "山田"
    assert journal.path.read_text().count("\n") == 1  # one event, one line


def test_torn_last_line_is_reported_and_skipped_and_next_append_is_intact(
        tmp_path: Path) -> None:
    journal = Journal(tmp_path / "inc")
    first = journal.append("note.added", {"text": "kept"}, "ops")
    with open(journal.path, "ab") as handle:
        handle.write(b'{"v":1,"id":"deadbeef","ts":"2026-01-01T00:00:00Z","type":"note.ad')
    replay = journal.replay()
    assert [e.id for e in replay.events] == [first.id]
    assert len(replay.damaged) == 1
    assert replay.damaged[0].line == 2
    assert "torn" in replay.damaged[0].reason

    after = journal.append("note.added", {"text": "after the crash"}, "ops")
    replay = journal.replay()
    assert [e.id for e in replay.events] == [first.id, after.id]
    assert [d.line for d in replay.damaged] == [2]


def test_garbage_in_the_middle_is_skipped_not_fatal(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "inc")
    journal.append("note.added", {"text": "one"}, "ops")
    with open(journal.path, "ab") as handle:
        handle.write(b"\xff\xfe not json\n[1,2,3]\n")
    journal.append("note.added", {"text": "two"}, "ops")
    replay = journal.replay()
    assert [e.data["text"] for e in replay.events] == ["one", "two"]
    assert [d.line for d in replay.damaged] == [2, 3]


def test_following_from_the_last_end_reads_each_event_once(tmp_path: Path) -> None:
    """A reader that resumes from each Replay's end (the app does, every poll) sees
    the same events and damage as one full read, even when it reads while a line
    is half written and across a torn line."""
    journal = Journal(tmp_path / "inc")
    journal.append("note.added", {"text": "one"}, "ops")
    seen = journal.replay()
    events, damaged = list(seen.events), list(seen.damaged)

    def follow() -> None:
        nonlocal seen
        seen = journal.replay(seen.end, seen.lines)
        events.extend(seen.events)
        damaged.extend(seen.damaged)

    half = Event(type="note.added", ts=Event.from_json(journal.path.read_text()).ts,
                 actor="ops", data={"text": "two"}, id="0123456789abcdef").to_json()
    with open(journal.path, "ab") as handle:
        handle.write(half[:20].encode())  # a writer, mid-line
        handle.flush()
        follow()
        assert [e.data["text"] for e in events] == ["one"] and damaged == []
        handle.write(half[20:].encode())  # whole, but not yet terminated: not acknowledged
        handle.flush()
        follow()
        assert [e.data["text"] for e in events] == ["one"]
        handle.write(b"\n")
    follow()
    assert [e.data["text"] for e in events] == ["one", "two"]
    with open(journal.path, "ab") as handle:
        handle.write(b'{"torn":')  # a writer killed mid-line
    follow()
    journal.append("note.added", {"text": "three"}, "ops")  # terminates the torn line first
    follow()
    follow()  # nothing new: nothing read twice
    full = journal.replay()
    assert [e.id for e in events] == [e.id for e in full.events]
    assert [e.data["text"] for e in events] == ["one", "two", "three"]
    assert [d.line for d in damaged] == [d.line for d in full.damaged] == [3]
    assert seen.end == journal.path.stat().st_size


def test_sigkill_of_writers_in_a_loop_loses_no_acknowledged_event(tmp_path: Path) -> None:
    directory = tmp_path / "inc"
    journal = Journal(directory)
    acknowledged: list[str] = []
    rng = random.Random(1234)
    damaged_seen = 0
    for round_number in range(15):
        # Two writers with large, varied events make a kill in mid-write likely
        # (a torn line was seen in about one round in three on this machine).
        writers = [start_writer(directory, f"r{round_number}{tag}",
                                size=rng.choice([512, 65536, 400000])) for tag in "ab"]
        readers = [ThreadPoolExecutor(1).submit(_read_acks, w) for w in writers]
        time.sleep(rng.uniform(0.1, 0.5))
        for writer in writers:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
        for reader in readers:
            acknowledged += reader.result(timeout=30)

        replay = journal.replay()
        present = {e.id for e in replay.events}
        missing = [a for a in acknowledged if a not in present]
        assert missing == [], f"round {round_number}: lost {len(missing)} acknowledged events"
        # Only lines torn by a kill may be damaged: at most one per killed writer.
        assert len(replay.damaged) <= 2 * (round_number + 1)
        damaged_seen = len(replay.damaged)
    assert len(acknowledged) > 30
    # whatever was torn, every later event is whole and in the replay
    assert len(journal.replay().events) >= len(acknowledged)
    print(f"{len(acknowledged)} acknowledged, {damaged_seen} torn lines recovered")


def _read_acks(writer: subprocess.Popen[str]) -> list[str]:
    assert writer.stdout is not None
    return [line.strip() for line in writer.stdout if line.endswith("\n")]


def test_two_writers_at_once_never_interleave(tmp_path: Path) -> None:
    directory = tmp_path / "inc"
    # They stop by themselves: a signal could tear a line, which is not this test's point.
    writers = [start_writer(directory, tag, size=200000, seconds=1.5) for tag in ("a", "b")]
    for writer in writers:
        writer.communicate(timeout=60)
        assert writer.returncode == 0
    replay = Journal(directory).replay()
    assert replay.damaged == []
    for tag in ("a", "b"):
        numbers = [e.data["n"] for e in replay.events if e.data["tag"] == tag]
        assert numbers, f"writer {tag} wrote nothing"
        assert numbers == list(range(1, len(numbers) + 1)), "events lost or reordered"
    # every line is one complete JSON object
    for line in directory.joinpath("events.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line), dict)


def test_event_from_json_rejects_non_events() -> None:
    for bad in ("[]", '{"no": "type"}', '"text"'):
        try:
            Event.from_json(bad)
        except (ValueError, KeyError):
            continue
        raise AssertionError(f"{bad} was accepted as an event")
