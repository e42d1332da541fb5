"""The postmortem: written from a real incident (collection and remediation over
the sshd fleet), parsed back with a real Markdown parser (markdown-it-py, with
GFM tables) and checked for its structure, in English and in Japanese."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from markdown_it import MarkdownIt

from runbook import paths, remediate
from runbook.collection.collect import JournalRecorder
from runbook.drill.sshd_lab import SshdLab
from runbook.engine.catalog import Collector
from runbook.engine.runner import Collection, CollectOptions
from runbook.hosts import Host
from runbook.incident.store import Incident, IncidentStore
from runbook.playbook import find_playbook
from runbook.report import markdown
from runbook.report.labels import LABELS
from runbook.report.postmortem import render
from runbook.sanitize import clean_line
from tests.conftest import run_cli
from tests.fleet import lab_hosts, lab_options

ACTOR = "tester@lab"  # RUNBOOK_ACTOR in tests/conftest.py

PLAYBOOK = """\
name: report-lab
title: Report test playbook
stages:
  detect:
    - id: what-fired
      kind: question
      title: What fired
      prompt: What fired, and when?
      records: detection
  scope:
    - id: impact
      kind: question
      title: Impact
      prompt: Who and what is affected?
      records: impact
    - id: what-changed
      kind: question
      title: What changed
      prompt: What changed just before?
      records: changes
  logs:
    - id: read-logs
      kind: checklist
      title: Read the logs
  remediate:
    - id: restart
      kind: remediate
      title: Restart the worker
      command: 'echo restarted {{ host }} | tr a-z A-Z; printf ''%s\\n'' ''`tick`'''
      rollback: Nothing to undo.
    - id: fail-on-purpose
      kind: remediate
      title: A command that fails
      command: echo trying on {{ host }}; exit 3
      rollback: Nothing to undo.
    - id: leak
      kind: remediate
      title: Print the database settings
      command: echo PGPASSWORD=hunter2 https://admin:s3cret@db.example.com/app {{ host }}
      rollback: Nothing to undo.
    - id: fix-result
      kind: question
      title: What was done
      prompt: What did you change?
      records: resolution
  report:
    - id: summary
      kind: question
      title: Summary
      prompt: What happened?
      records: summary
    - id: root-cause
      kind: question
      title: Root cause
      prompt: Why?
      records: root_cause
    - id: trigger
      kind: question
      title: Trigger
      prompt: What set it off?
      records: trigger
    - id: lessons
      kind: question
      title: Lessons
      prompt: Went well, went wrong, lucky?
      records: lessons
    - id: action-items
      kind: question
      title: Action items
      prompt: One a line.
      records: action_items
"""

OOM_LINE = "[Sat Nov 29 09:40:00 2026] Out of memory: Killed process 4242 (java) total-vm:1kB"
# What a dmesg-like collector prints on each host: ten lines, the OOM kill on line 6.
DMESG = [f"[Sat Nov 29 09:3{i}:00 2026] eth0: link up seq {i}" for i in range(5)] + [OOM_LINE] + [
    f"[Sat Nov 29 09:5{i}:00 2026] eth0: link up seq {i}" for i in range(4)]


@pytest.fixture(autouse=True)
def playbook() -> Path:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report-lab.yaml"
    path.write_text(PLAYBOOK)
    return path


# -- building incidents with real parts ---------------------------------------------------


def open_incident(hosts: list[Host], title: str = "Workers slow on the lab hosts",
                  detected_ago: timedelta | None = None) -> Incident:
    detected = datetime.now(UTC) - detected_ago if detected_ago else None
    return IncidentStore().create(playbook=find_playbook("report-lab"), hosts=hosts,
                                  title=title, actor=ACTOR, detected_at=detected)


def printing(name: str, lines: list[str], parser: str | None = "dmesg") -> Collector:
    """A collector that prints these lines on the host (so they are real captured output)."""
    quoted = " ".join("'" + line.replace("'", "'\"'\"'") + "'" for line in lines)
    return Collector(name, f"printf '%s\\n' {quoted}", "test", f"prints {name}", timeout=20,
                     parser=parser)


def collect(incident: Incident, hosts: list[Host], collectors: list[Collector],
            lab: SshdLab) -> None:
    Collection(JournalRecorder(incident, actor=ACTOR), hosts, collectors,
               CollectOptions(ssh=lab_options(lab, connect_timeout=5))).run()


def run_step(incident: Incident, step: str, lab: SshdLab) -> list[remediate.ExecutionResult]:
    proposal = remediate.propose(incident, step, ACTOR)
    return remediate.execute(incident, proposal.command_id, ACTOR, proposal.confirmation,
                             lab_options(lab, connect_timeout=5))


def worked_incident(lab: SshdLab) -> Incident:
    """Two lab hosts: answers (some hostile to Markdown), a collection with an OOM
    finding on each, a remediation that works and one that fails, a note."""
    hosts = lab_hosts(lab)[:2]
    incident = open_incident(hosts, title="Workers | slow on `lab` hosts",
                             detected_ago=timedelta(minutes=10))
    incident.assign_role("commander", "alice", ACTOR)
    incident.answer("what-fired", "worker latency alert at 09:30Z, confirmed on the graph",
                    ACTOR)
    incident.answer("impact", "checkout was slow for EU users\n# not a heading\n"
                    "</details> | not | a | table |\n```\nstill text", ACTOR)
    incident.answer("what-changed", "deploy 4711 at 09:25Z", ACTOR)
    collect(incident, hosts, [printing("kernel", DMESG)], lab)
    run_step(incident, "restart", lab)
    run_step(incident, "fail-on-purpose", lab)
    incident.note("restart looks good", ACTOR)
    incident.answer("fix-result", "restarted the workers on both hosts", ACTOR)
    incident.answer("summary", "The workers ran out of memory after a deploy.", ACTOR)
    incident.answer("root-cause", "a heap setting was halved by deploy 4711", ACTOR)
    incident.answer("trigger", "the morning traffic peak", ACTOR)
    incident.answer("lessons", "went well: the alert fired early\nwent wrong: no canary\n"
                    "lucky: it was a quiet day", ACTOR)
    incident.answer("action-items",
                    "- add a canary stage | prevent | alice | 2026-12-01 | "
                    "https://tracker.example/OPS-1\n- alert on heap usage | detect | bob\n"
                    "- review the deploy checklist", ACTOR)
    incident.resolve(ACTOR, "workers restarted")
    return incident


# -- reading the Markdown back -----------------------------------------------------------


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]  # each cell's text as a reader sees it
    cells: list[list[list[Any]]]  # each cell's inline tokens
    lines: tuple[int, int]  # source line range


@dataclass
class Document:
    source: str
    headings: list[tuple[int, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    html_blocks: list[str] = field(default_factory=list)
    fences: list[str] = field(default_factory=list)

    def table_after(self, heading: str) -> Table:
        """The first table below the heading with this text."""
        start = next(line for line, (_, text) in zip(self.heading_lines, self.headings,
                                                     strict=True) if text == heading)
        return next(t for t in self.tables if t.lines[0] > start)

    def section(self, heading: str) -> str:
        """The source text from the heading to the next heading of the same level or higher."""
        index = next(i for i, (_, text) in enumerate(self.headings) if text == heading)
        level, start = self.headings[index][0], self.heading_lines[index]
        end = next((line for (lvl, _), line in zip(self.headings[index + 1:],
                                                    self.heading_lines[index + 1:], strict=True)
                    if lvl <= level), None)
        return "\n".join(self.source.split("\n")[start + 1:end])

    heading_lines: list[int] = field(default_factory=list)


PARSER = MarkdownIt("commonmark").enable("table")


def plain(children: list[Any]) -> str:
    """Inline tokens as the text a reader sees (a <br> is a line break)."""
    text = ""
    for child in children:
        if child.type in ("text", "code_inline", "text_special"):
            text += child.content
        elif child.type in ("softbreak", "hardbreak") or (
                child.type == "html_inline" and child.content == "<br>"):
            text += "\n"
    return text


def hrefs(children: list[Any]) -> list[str]:
    return [str(c.attrs["href"]) for c in children if c.type == "link_open"]


def parse(text: str) -> Document:
    tokens = PARSER.parse(text)
    doc = Document(text)
    table: Table | None = None
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            assert token.map is not None
            doc.headings.append((int(token.tag[1]), plain(tokens[index + 1].children or [])))
            doc.heading_lines.append(token.map[0])
        elif token.type == "table_open":
            assert token.map is not None
            table = Table([], [], [], (token.map[0], token.map[1]))
            doc.tables.append(table)
        elif token.type == "tr_open" and table is not None:
            table.rows.append([])
            table.cells.append([])
        elif token.type in ("th_open", "td_open") and table is not None:
            children = tokens[index + 1].children or []
            table.rows[-1].append(plain(children))
            table.cells[-1].append(children)
        elif token.type == "table_close" and table is not None:
            table.header = table.rows.pop(0)
            table.cells.pop(0)
            table = None
        elif token.type == "html_block":
            doc.html_blocks.append(token.content)
        elif token.type == "fence":
            doc.fences.append(token.content)
    return doc


def source_cells(line: str) -> int:
    """Cells in a GFM table row as the spec splits it: on pipes not escaped."""
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return len(re.split(r"(?<!\\)\|", inner))


def assert_tables_well_formed(doc: Document) -> None:
    lines = doc.source.split("\n")
    assert doc.tables, "the report has tables"
    for table in doc.tables:
        width = len(table.header)
        assert width >= 2
        for row in table.rows:
            assert len(row) == width, (table.header, row)
        # markdown-it pads short rows: count the source's cells too.
        for number in range(table.lines[0], table.lines[1]):
            assert source_cells(lines[number]) == width, lines[number]
        assert table.lines[1] - table.lines[0] == len(table.rows) + 2  # header + delimiter


def expected_h2(lang: str) -> list[str]:
    t = LABELS[lang]
    return [t[k] for k in ("summary", "impact", "detection", "root_cause_and_trigger",
                           "resolution", "timeline", "action_items", "lessons", "supporting")]


def code_spans(cells: list[Any]) -> list[str]:
    return [c.content for c in cells if c.type == "code_inline"]


# -- the postmortem of a worked incident ----------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_the_postmortem_of_a_worked_incident_is_valid_gfm(sshd_fleet: SshdLab, tmp_path: Path,
                                                           lang: str) -> None:
    incident = worked_incident(sshd_fleet)
    state = incident.state()
    out = tmp_path / "reports" / "postmortem.md"
    out.parent.mkdir()

    # A Japanese team reads local time in JST, beside UTC.
    run_cli("report", incident.id, "-o", str(out), "--lang", lang,
            env={"TZ": "Asia/Tokyo" if lang == "ja" else "UTC"})

    t = LABELS[lang]
    doc = parse(out.read_text())
    assert_tables_well_formed(doc)
    assert doc.headings[0] == (1, f"{t['title']}: Workers | slow on `lab` hosts")
    assert [h for level, h in doc.headings if level == 2] == expected_h2(lang)
    assert [h for level, h in doc.headings if level == 3] == [
        t["root_cause"], t["trigger"], t["changes"], t["commands_executed"], t["went_well"],
        t["went_wrong"], t["lucky"], t["findings_by_host"], t["collector_runs"],
        t["excerpts"]]
    assert [h for level, h in doc.headings if level == 4][:2] == ["lab1", "lab2"]

    # header: status, severity, duration, authors
    header = {row[0]: row[1] for row in doc.tables[0].rows}
    assert header[t["status"]] == t["statuses"]["resolved"]
    assert header[t["severity"]] == "SEV3"
    assert header[t["commander"]] == "alice"
    assert header[t["authors"]] == ACTOR
    assert re.fullmatch(r"\d+m\d\ds", header[t["duration"]])  # resolved: no "ongoing"

    # answers fill their sections, as written; a '#' line stays text
    assert "checkout was slow for EU users" in doc.section(t["impact"])
    assert "not a heading" not in [h for _, h in doc.headings]
    assert "deploy 4711 at 09:25Z" in doc.section(t["changes"])
    assert "TODO" not in doc.source.split(f"## {t['action_items']}")[0]

    # detection: detected 10 minutes before the incident was opened
    detection = doc.table_after(t["detection"])
    timings = {row[0]: row[1] for row in detection.rows}
    assert re.fullmatch(r"(9m5\d|10m0\d)s", timings[t["time_to_detect"]])
    assert re.fullmatch(r"\dm\d\ds", timings[t["time_to_acknowledge"]])

    # resolution: every command executed, with host, exit code, approver, evidence
    resolution = doc.table_after(t["commands_executed"])
    assert len(resolution.rows) == 4  # two steps on two hosts
    # (each host's command differs here, so each is its own row; the exit column
    # gives each host's outcome)
    commands = {(row[1], code_spans(cells[2])[0], row[3].split()[1])
                for row, cells in zip(resolution.rows, resolution.cells, strict=True)}
    assert commands == {
        (h, f"echo restarted {h} | tr a-z A-Z; printf '%s\\n' '`tick`'", "0")
        for h in ("lab1", "lab2")} | {(h, f"echo trying on {h}; exit 3", "3")
                                      for h in ("lab1", "lab2")}
    for cells in resolution.cells:
        assert hrefs(cells[6]) and all((out.parent / h).is_file() for h in hrefs(cells[6]))

    # timeline: every event in order, UTC and local time, links that resolve
    # Every event a person made is a row; each collection is one row whose link
    # goes to its runs under the supporting information.
    timeline = doc.table_after(t["timeline"])
    runs = [n for n, e in enumerate(state.events, 1)
            if e.type in ("collector.ran", "host.failed")]
    shown = [(n, e) for n, e in enumerate(state.events, 1) if n not in runs[1:] or
             state.events[n - 2].type not in ("collector.ran", "host.failed")]
    assert [int(r[0]) for r in timeline.rows] == [n for n, _ in shown]
    assert [r[1] for r in timeline.rows] == [f"{e.ts:%Y-%m-%d %H:%M:%S}Z" for _, e in shown]
    collections = [r for r in timeline.rows if "Collected" in r[-2]]
    [collection] = collections  # kernel on lab1 and lab2: one collection, one row
    assert "Collected 2 run(s) on 2 host(s) (kernel)" in collection[-2]
    # The local time is beside UTC only where it differs (Tokyo here, not UTC).
    assert (t["local_time"] in timeline.header) == (lang == "ja")
    if lang == "ja":
        for row, (_, event) in zip(timeline.rows, shown, strict=True):
            assert row[2] == f"{event.ts + timedelta(hours=9):%Y-%m-%d %H:%M:%S} JST"
    linked = [h for cells in timeline.cells for h in hrefs(cells[-1])]
    files = [h for h in linked if not h.startswith("#")]
    assert len(files) == 4  # the 4 remediation runs (no stderr)
    assert all((out.parent / target).is_file() for target in files)
    anchors = [h for h in linked if h.startswith("#")]
    assert [unquote(a) for a in anchors] == [markdown.anchor(f"{t['collection']} 1")]
    assert [h for level, h in doc.headings if level == 4][-1] == f"{t['collection']} 1"

    # action items, parsed from the answer; missing fields say TODO
    items = doc.table_after(t["action_items"])
    assert items.rows[0][:4] == ["add a canary stage", t["types"]["prevent"], "alice",
                                 "2026-12-01"]
    assert hrefs(items.cells[0][4]) == ["https://tracker.example/OPS-1"]
    assert items.rows[1][:4] == ["alert on heap usage", t["types"]["detect"], "bob", "TODO"]
    assert items.rows[2] == ["review the deploy checklist", "TODO", "TODO", "TODO", "TODO"]

    # lessons sorted into their parts
    assert doc.section(t["went_well"]).strip() == "the alert fired early"
    assert doc.section(t["lucky"]).strip() == "it was a quiet day"

    # supporting information: per host findings, and an excerpt per finding
    assert "ran out of memory" in doc.table_after("lab1").rows[0][2]
    details = [b for b in doc.html_blocks if b.startswith("<details>")]
    assert [b.split("<summary>")[1].split(" ")[0] for b in details] == ["lab1", "lab2"]
    assert sum(1 for b in doc.html_blocks if b.strip() == "</details>") == 2
    excerpts = [f for f in doc.fences if OOM_LINE in f]
    assert len(excerpts) == 2
    for fence in excerpts:
        # ±3 lines around line 6, the finding's own line marked
        assert [line.split()[:2] for line in fence.splitlines()][3] == [">", "6"]
        assert len(fence.splitlines()) == 7


def test_empty_sections_say_todo_and_nothing_is_invented() -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)],
                             title="nothing known yet")
    for lang in ("en", "ja"):
        t = LABELS[lang]
        text = render(incident.state(), lang=lang)
        doc = parse(text)
        assert_tables_well_formed(doc)
        assert [h for level, h in doc.headings if level == 2] == expected_h2(lang)
        for section in ("summary", "impact", "root_cause", "trigger", "changes"):
            assert doc.section(t[section]).strip().startswith(t["todo"][section]), section
        assert t["todo"]["detection"] in doc.section(t["detection"])
        assert t["todo"]["resolution"] in doc.section(t["resolution"])
        assert doc.table_after(t["action_items"]).rows == [["TODO"] * 5]
        for part in ("went_well", "went_wrong", "lucky"):
            assert doc.section(t[part]).strip() == "TODO"
        assert t["no_commands"] in text
        assert t["no_findings"] in text
        assert "None" not in text and "{{" not in text


def test_the_tui_report_screen_call_still_works() -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)],
                             title="lab hosts slow")
    incident.note("handing over", ACTOR)
    text = render(incident.state())
    assert text.startswith("# Postmortem: lab hosts slow\n")
    assert "## Timeline" in text and "Note: handing over" in text


# -- custom templates ------------------------------------------------------------------------


def test_a_custom_template_replaces_the_built_in_one(tmp_path: Path) -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)],
                             title="disk | full")
    incident.answer("impact", "uploads failed with password=hunter2", ACTOR)
    template = tmp_path / "ours.md.j2"
    template.write_text(
        "# {{ incident.title | cell }} ({{ t.severity }} {{ incident.severity }})\n\n"
        "{{ records.impact | prose }}\n\n"
        "| when | what |\n|---|---|\n"
        "{% for row in timeline %}| {{ row.utc }} | {{ row.text | cell }} |\n{% endfor %}"
        "\n\n{{ 'PGPASS' ~ 'WORD=hunter3' }}\n")

    result = run_cli("report", incident.id, "--template", str(template), "--lang", "ja")

    doc = parse(result.stdout)
    assert doc.headings == [(1, "disk | full (重要度 SEV3)")]
    assert_tables_well_formed(doc)
    assert len(doc.tables[0].rows) == len(incident.state().events)
    assert "password=[REDACTED]" in result.stdout
    assert "hunter" not in result.stdout  # even text the template assembles is redacted


@pytest.mark.parametrize(("body", "message"), [
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("line one\n{{ state.events }}", "ours.md.j2:2"),
    ("{% for x in timeline %}", "ours.md.j2:1: template syntax"),
])
def test_a_custom_template_is_sandboxed_and_its_errors_name_the_line(
        tmp_path: Path, body: str, message: str) -> None:
    incident = open_incident([Host(name="localhost", address="localhost", local=True)])
    template = tmp_path / "ours.md.j2"
    template.write_text(body)

    result = run_cli("report", incident.id, "--template", str(template), check=False)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# -- JSON export -------------------------------------------------------------------------------


def test_the_json_export_holds_state_timeline_findings_and_evidence(
        sshd_fleet: SshdLab) -> None:
    incident = worked_incident(sshd_fleet)
    state = incident.state()
    directory = IncidentStore().directory(incident.id)

    exported = json.loads(run_cli("report", incident.id, "--json").stdout)

    assert exported["format"] == "runbook.incident-export/1"
    assert exported["redaction"] == {"secrets": True, "hosts": False, "extra_patterns": 0}
    assert exported["incident"]["id"] == incident.id
    assert exported["incident"]["status"] == "resolved"
    assert [e["id"] for e in exported["incident"]["timeline"]] == [e.id for e in state.events]
    assert {(f["host"], f["resource"], f["line"]) for f in exported["findings"]} == {
        ("lab1", "memory", 6), ("lab2", "memory", 6)}
    assert len(exported["excerpts"]) == 2
    index = exported["evidence_index"]
    assert len([e for e in index if e["kind"] == "collector"]) == 2
    assert len([e for e in index if e["kind"] == "command"]) == 4
    assert all(e["present"] and (directory / e["stdout"]).is_file() for e in index)
    assert exported["postmortem"]["action_items"][0]["type"] == "prevent"
    assert exported["postmortem"]["durations"]["detect"]


# -- the Markdown filters ------------------------------------------------------------------------


HOSTILE = ["a | b", "back`tick", "``double``", "`", "ends with \\", "new\nline", "<b>html</b>",
           "a \\| b", "| leading", "tab\tbed", "\x1b[31mred\x1b[0m", "*not* _emphasis_ [x](y)",
           "&amp; ~~x~~", ""]


def test_cells_and_code_spans_keep_any_text_in_one_cell() -> None:
    rows = "".join(f"| {markdown.cell(text)} | {markdown.code(text)} |\n" for text in HOSTILE)
    doc = parse("| text | code |\n|---|---|\n" + rows)

    assert_tables_well_formed(doc)
    [table] = doc.tables
    for text, row, cells in zip(HOSTILE, table.rows, table.cells, strict=True):
        lines = [clean_line(line) for line in text.split("\n")]
        assert row[0] == ("\n".join(line.strip() for line in lines) or " ").strip(), text
        expected_code = " ⏎ ".join(lines)
        assert code_spans(cells[1]) == ([expected_code] if expected_code.strip() else [])


def test_prose_cannot_open_headings_fences_or_html() -> None:
    text = "# title\n---\n```\n</details>\n<script>x</script>\n- a list item stays"
    doc = parse("## Section\n\n" + markdown.prose(text) + "\n\n## Next\n")

    assert doc.headings == [(2, "Section"), (2, "Next")]
    assert doc.fences == [] and doc.html_blocks == []
    assert "<li>a list item stays</li>" in PARSER.render(markdown.prose(text))
