"""The postmortem a team would publish, written from the incident's own journal:
worked end to end with the real CLI on localhost (a real collection of real
collectors), resolved with a summary, the lessons questions answered, closed."""

from __future__ import annotations

from pathlib import Path

from markdown_it import MarkdownIt

from runbook.report.labels import LABELS
from tests.conftest import run_cli

T = LABELS["en"]


def section(text: str, heading: str) -> str:
    """The Markdown under `heading` (## or ###), up to the next heading."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading
                 and line.startswith("#"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")),
               len(lines))
    return "\n".join(lines[start + 1:end]).strip()


def test_a_closed_incident_gets_a_complete_postmortem(tmp_path: Path) -> None:
    iid = run_cli("new", "-p", "generic-host", "-H", "localhost",
                  "-t", "disk full on the bastion").stdout.strip()
    run_cli("collect", "--incident", iid, "-c", "df", "-c", "uptime", "-c", "free",
            check=False)
    run_cli("answer", iid, "went-well", "the df alert fired 40 minutes before full")
    run_cli("answer", iid, "went-wrong", "journald had no cap: 94% -> 0% took <2 minutes "
            "& a reboot")
    run_cli("answer", iid, "lucky", "it happened during the day shift")
    run_cli("answer", iid, "action-items",
            "cap the journal | prevent | alice | 2026-12-20 | OPS-12")
    run_cli("resolve", iid, "--summary", "vacuumed the journal to 500 MB")
    run_cli("close", iid)
    out = tmp_path / "postmortem.md"
    run_cli("report", iid, "-o", str(out), env={"TZ": "UTC"})
    text = out.read_text()

    header = section(text, f"{T['title']}: disk full on the bastion")
    assert f"| {T['status']} | {T['statuses']['closed']} |" in header
    # Summary and resolution come from the journal: the resolve summary.
    assert "vacuumed the journal to 500 MB" in section(text, T["summary"])
    assert "vacuumed the journal to 500 MB" in section(text, T["resolution"])
    assert section(text, T["went_well"]) == "the df alert fired 40 minutes before full"
    assert section(text, T["went_wrong"]).startswith("journald had no cap: 94% -> 0%")
    assert section(text, T["lucky"]) == "it happened during the day shift"
    assert "| cap the journal |" in section(text, T["action_items"])
    lessons_and_summary = text.split(f"## {T['supporting']}")[0]
    assert "TODO: what happened" not in lessons_and_summary
    assert "TODO" not in section(text, T["went_well"]) + section(text, T["lucky"])

    # No HTML entities anywhere in the text; what a person typed reads as typed.
    for entity in ("&gt;", "&lt;", "&amp;"):
        assert entity not in text
    html = MarkdownIt("gfm-like").render(text)
    assert "took &lt;2 minutes &amp; a reboot" in html  # as GitHub would show it

    # The collection is one timeline row; its runs are in the supporting information.
    timeline = section(text, T["timeline"])
    rows = [line for line in timeline.split("\n") if line.startswith("| ")][1:]
    collected = [r for r in rows if "Collected" in r]
    assert len(collected) == 1 and "on 1 host(s)" in collected[0]
    assert "(#collection-1)" in collected[0]
    assert not any("Collected df on" in r for r in rows), "a row per run"
    runs = section(text, f"{T['collection']} 1")
    assert {c for c in ("df", "uptime", "free") if f"| {c} |" in runs} == {"df", "uptime",
                                                                          "free"}
    # Written in UTC: the local-time column would only repeat it.
    assert T["local_time"] not in timeline.split("\n")[2]


def test_a_command_is_one_row_per_run_with_every_host_but_two_runs_stay_two_rows() -> None:
    from runbook import paths, remediate
    from runbook.hosts import Host
    from runbook.incident.store import IncidentStore
    from runbook.playbook import find_playbook
    from runbook.report.postmortem import render

    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "twice.yaml").write_text(
        "name: twice\ntitle: Twice\nstages:\n  remediate:\n    - id: say\n"
        "      kind: remediate\n      title: Say it\n      command: echo same words\n"
        "      rollback: Nothing to undo.\n")
    hosts = [Host(name="localhost", address="localhost", local=True),
             Host(name="here", address="localhost", local=True)]
    incident = IncidentStore().create(playbook=find_playbook("twice"), hosts=hosts,
                                      title="twice", actor="tester@lab")
    for _ in range(2):
        proposal = remediate.propose(incident, "say", "tester@lab")
        remediate.execute(incident, proposal.command_id, "tester@lab", proposal.confirmation)
    text = render(incident.state(), incident_dir=incident.store.directory(incident.id))
    rows = [line for line in section(text, T["commands_executed"]).split("\n")
            if "`echo same words`" in line]
    assert len(rows) == 2, "two runs of the same command are two rows"
    for row in rows:
        cells = [c.strip() for c in row.split(" | ")]
        assert sorted(cells[1].split(", ")) == ["here", "localhost"]
        assert sorted(cells[3].split("<br>")) == ["here: 0 ok", "localhost: 0 ok"]
