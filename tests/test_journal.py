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
from pathlib import Path

from runbook.journal import Event, Journal

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from runbook.journal import Journal
    journal = Journal(Path(sys.argv[1]))
    tag = sys.argv[2]
    size = int(sys.argv[3])
    n = 0
    while True:
        n += 1
        event = journal.append("note.added", {"text": "x" * (n * 997 % size), "tag": tag,
                                              "n": n}, "writer-" + tag)
        # Only now is the event acknowledged: tell the parent.
        sys.stdout.write(event.id + "\\n")
        sys.stdout.flush()
""")


def start_writer(directory: Path, tag: str, size: int = 4096) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(directory), tag, str(size)],
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


def test_sigkill_of_writer_in_a_loop_loses_no_acknowledged_event(tmp_path: Path) -> None:
    directory = tmp_path / "inc"
    journal = Journal(directory)
    acknowledged: list[str] = []
    rng = random.Random(1234)
    for round_number in range(15):
        # Large, varied events make a kill in the middle of a write likely.
        writer = start_writer(directory, f"r{round_number}", size=rng.choice([512, 65536, 400000]))
        assert writer.stdout is not None
        deadline = time.monotonic() + rng.uniform(0.05, 0.4)
        got = 0
        while time.monotonic() < deadline or got == 0:
            line = writer.stdout.readline()
            if not line:
                break
            acknowledged.append(line.strip())
            got += 1
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        # Whatever it printed before dying was acknowledged too.
        acknowledged += [line.strip() for line in writer.stdout.read().splitlines() if line]

        replay = journal.replay()
        present = {e.id for e in replay.events}
        missing = [a for a in acknowledged if a not in present]
        assert missing == [], f"round {round_number}: lost {len(missing)} acknowledged events"
        # Only a torn tail may ever be damaged, and only one per kill at most.
        assert len(replay.damaged) <= round_number + 1
    assert len(acknowledged) > 15


def test_two_writers_at_once_never_interleave(tmp_path: Path) -> None:
    directory = tmp_path / "inc"
    writers = [start_writer(directory, tag, size=200000) for tag in ("a", "b")]
    time.sleep(1.5)
    for writer in writers:
        writer.send_signal(signal.SIGTERM)
        writer.wait()
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
