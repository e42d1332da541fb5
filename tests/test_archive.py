"""The archive of closed incidents: indexed when an incident closes, searched with
ranking and snippets, rebuilt from the journals, and never in the way of closing."""

from __future__ import annotations

import json
import sqlite3

import pytest

from runbook import paths
from runbook.drill.sshd_lab import SshdLab
from runbook.errors import IncidentNotFound, RunbookError
from runbook.hosts import Host
from runbook.incident.store import Incident, IncidentStore
from runbook.report import archive
from runbook.report.archive import MARK_END, MARK_START, fts_query
from tests.conftest import run_cli
from tests.fleet import lab_hosts
from tests.test_report import (  # noqa: F401 - `playbook` is an autouse fixture
    ACTOR,
    DMESG,
    collect,
    open_incident,
    playbook,
    printing,
    run_step,
)


def closed(incident: Incident) -> Incident:
    incident.resolve(ACTOR, "done")
    archive.close(incident, ACTOR)
    return incident


def oom_incident(lab: SshdLab, hosts: list[Host], title: str) -> Incident:
    """A real collection with an OOM finding, a fix that works and one that fails."""
    incident = open_incident(hosts, title=title)
    collect(incident, hosts, [printing("kernel", DMESG)], lab)
    run_step(incident, "restart", lab)
    run_step(incident, "fail-on-purpose", lab)
    incident.answer("root-cause", "the heap limit was halved by deploy 4711", ACTOR)
    return incident


def local_incident(title: str, **answers: str) -> Incident:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)],
                             title=title)
    for step, text in answers.items():
        incident.answer(step, text, ACTOR)
    return incident


def test_closing_indexes_and_search_finds_it_by_finding_and_command(
        sshd_fleet: SshdLab) -> None:
    hosts = lab_hosts(sshd_fleet, role="worker")[:2]
    oom = closed(oom_incident(sshd_fleet, hosts, "Workers slow after deploy"))
    other = closed(local_incident("Certificate expired on the proxy",
                                  **{"root-cause": "nobody renewed it"}))
    still_open = local_incident("memory pressure, still being worked")

    # found by a word of the finding ("the host ran out of memory ...")
    [hit] = archive.search("memory")
    assert hit.id == oom.id and hit.title == "Workers slow after deploy"
    assert f"{MARK_START}memory{MARK_END}" in hit.snippet
    # what worked: only the commands that exited 0, each with its host
    assert sorted(archive.what_worked(hit.remediation)) == [
        (f"echo restarted {h} | tr a-z A-Z; printf '%s\\n' '`tick`'", [h])
        for h in ("lab1", "lab2")]
    # found by a word of a command, and by an answer
    assert [h.id for h in archive.search("restarted")] == [oom.id]
    assert [h.id for h in archive.search("renewed")] == [other.id]
    assert {h.id for h in archive.search("nobody OR 4711")} == {oom.id, other.id}
    assert archive.search("memory pressure still") == []  # open incidents are not archived
    assert still_open.id not in {r["id"] for r in archive.Archive().rows()}
    # a title word outranks the same word deep in a postmortem
    assert archive.search("certificate")[0].id == other.id


def test_history_commands(sshd_fleet: SshdLab) -> None:
    oom = closed(oom_incident(sshd_fleet, lab_hosts(sshd_fleet)[:1], "Workers slow"))

    found = json.loads(run_cli("history", "search", "memory", "--json").stdout)
    assert [f["id"] for f in found] == [oom.id]
    assert "**memory**" in found[0]["snippet"]
    assert found[0]["remediation"][0]["host"] == "lab1"

    listed = run_cli("history", "search", "memory").stdout
    assert oom.id in listed and "worked:" in listed and "echo restarted lab1" in listed

    shown = run_cli("history", "show", oom.id[-4:]).stdout
    assert "Workers slow" in shown and "ran out of memory" in shown
    assert "echo restarted lab1" in shown
    record = json.loads(run_cli("history", "show", oom.id, "--json").stdout)
    assert record["answers"]["root-cause"] == "the heap limit was halved by deploy 4711"
    postmortem = run_cli("history", "show", oom.id, "--postmortem").stdout
    assert postmortem.startswith("# Postmortem: Workers slow\n")

    missing = run_cli("history", "show", "nope", check=False)
    assert missing.returncode == 2 and "no archived incident 'nope'" in missing.stderr
    nothing = run_cli("history", "search", "zebra")
    assert "No past incident matches, among 1 archived" in nothing.stdout


def test_reindex_rebuilds_the_same_index_from_the_journals(sshd_fleet: SshdLab) -> None:
    first = closed(oom_incident(sshd_fleet, lab_hosts(sshd_fleet)[:2], "Workers slow"))
    second = closed(local_incident("Disk full", impact="uploads failed"))
    still_open = local_incident("Still open")
    before = archive.Archive().rows()
    assert [r["id"] for r in before] == sorted([first.id, second.id])

    (paths.runbook_home() / "archive.sqlite").unlink()
    result = json.loads(run_cli("history", "reindex", "--json").stdout)

    assert sorted(result["indexed"]) == sorted([first.id, second.id])
    assert result["skipped_not_closed"] == [still_open.id] and result["failed"] == []
    assert archive.Archive().rows() == before
    assert [h.id for h in archive.search("uploads")] == [second.id]


def test_a_failing_index_never_blocks_closing() -> None:
    (paths.runbook_home() / "archive.sqlite").mkdir(parents=True)  # sqlite cannot open it
    incident = local_incident("Closing despite the archive")
    incident.resolve(ACTOR)

    archive.close(incident, ACTOR)

    assert str(IncidentStore().load(incident.id).status) == "closed"
    log = (paths.log_dir() / "runbook.log").read_text()
    assert f"archive index of incident {incident.id}" in log
    assert "sqlite3.OperationalError" in log


def test_similar_past_incidents_by_host_role_and_findings(sshd_fleet: SshdLab) -> None:
    workers = lab_hosts(sshd_fleet, role="worker")
    assert archive.similar(open_incident(workers[:1]).state()) == []  # no archive yet
    past = closed(oom_incident(sshd_fleet, workers[:2], "Workers slow last week"))
    closed(local_incident("Unrelated thing on localhost"))

    now = open_incident([workers[0]], title="Workers slow again")
    collect(now, [workers[0]], [printing("kernel", DMESG)], sshd_fleet)
    [match] = archive.similar(now.state())
    assert match["id"] == past.id
    assert match["shared"] == {"hosts": ["127.0.0.60", "lab1"], "roles": ["worker"],
                               "resources": ["memory"]}
    assert sorted(r["host"] for r in match["remediation"]) == ["lab1", "lab2"]

    same_role = open_incident([lab_hosts(sshd_fleet, role="worker")[3]], title="lab4")
    [by_role] = archive.similar(same_role.state())
    assert by_role["id"] == past.id and by_role["shared"]["hosts"] == []
    # an archived incident is never its own match
    again = closed(oom_incident(sshd_fleet, workers[:1], "Workers slow, archived"))
    assert {m["id"] for m in archive.similar(again.state())} == {past.id}
    stranger = open_incident([Host(name="db9", address="10.9.9.9", role="db")])
    assert archive.similar(stranger.state()) == []


def test_japanese_text_is_searchable() -> None:
    incident = closed(local_incident("アップロード障害",
                                     impact="ディスク障害でアップロードが失敗した"))

    hits = archive.search("障害")
    assert [h.id for h in hits] == [incident.id]
    assert f"{MARK_START}障害{MARK_END}" in hits[0].snippet
    assert [h.id for h in archive.search("アップロード")] == [incident.id]
    assert archive.search("障害が") == []  # a substring that is not there


@pytest.mark.parametrize("words", ["--force", "a.b", '"', "OR", "foo*", "NEAR(a b)", "x:y",
                                   "'; DROP TABLE incidents; --"])
def test_any_words_are_a_valid_query(words: str) -> None:
    closed(local_incident("some incident"))
    try:
        archive.search(words)
    except RunbookError as exc:
        assert "nothing to search for" in exc.message  # nothing searchable in it
    assert fts_query("disk full") == '"disk" AND "full"'
    assert fts_query("disk OR memory") == '"disk" OR "memory"'
    assert fts_query('"disk full" var*') == '"disk full" AND "var"*'


def test_a_damaged_archive_is_reported_plainly() -> None:
    path = paths.runbook_home() / "archive.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
                         "INSERT INTO meta VALUES ('schema', '0');")
    result = run_cli("history", "search", "disk", check=False)
    assert result.returncode == 2
    assert "another runbook version" in result.stderr and "reindex" in result.stderr
    run_cli("history", "reindex")
    with pytest.raises(IncidentNotFound):
        archive.Archive().get("nope")
