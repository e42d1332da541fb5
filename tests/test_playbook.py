"""Playbooks: the bundled ones validate and read well; a broken one is refused
whole, with the file, the line and the field; command templates quote every value."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from jinja2 import Environment, nodes

from runbook import paths
from runbook.errors import PlaybookError, TemplateError
from runbook.playbook import STAGES, bundled_dir, find_playbook, load_all, load_playbook
from runbook.templating import INCIDENT_FIELDS, render_command, render_text
from tests.conftest import run_cli

REQUIRED = ("generic-host", "web-5xx", "process-down", "disk-full", "queue-latency")
BUNDLED = sorted(bundled_dir().glob("*.yaml"))
HOSTILE = "x; rm -rf / $(id) 'q'"


@pytest.fixture(autouse=True)
def runbook_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # load_all() reads the operator's playbook directory: point it at scratch space.
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path))
    return tmp_path


def incident(**overrides: object) -> dict[str, object]:
    """A context with every INCIDENT_FIELDS name, as the engine passes it."""
    context: dict[str, object] = {
        "id": "2024-05-01-web-a1b2",
        "title": "Checkout returns 502",
        "severity": "SEV2",
        "status": "open",
        "playbook": "web-5xx",
        "hosts": ["web1", "web2"],
        "host": "web1",
        "started_at": "2024-05-01T10:00:00Z",
        "detected_at": "2024-05-01T09:58:00Z",
        "resolved_at": None,
        "commander": "ana",
        "scribe": "bo",
        "answers": {},
        "alert": {"labels": {"alertname": "High5xx"}},
        "elapsed": "1h05m",
        "now": "2024-05-01T11:03:00Z",
    }
    assert set(context) == set(INCIDENT_FIELDS)
    context.update(overrides)
    return context


def answer_keys(source: str) -> set[str]:
    """The answers a template reads: answers['x'] and answers.x."""
    keys: set[str] = set()
    for node in Environment().parse(source).find_all((nodes.Getitem, nodes.Getattr)):
        if isinstance(node.node, nodes.Name) and node.node.name == "answers":
            if isinstance(node, nodes.Getattr):
                keys.add(node.attr)
            elif isinstance(node.arg, nodes.Const):
                keys.add(node.arg.value)
    return keys


# --- the bundled playbooks -------------------------------------------------------------


def test_required_playbooks_are_bundled() -> None:
    assert set(REQUIRED) <= {path.stem for path in BUNDLED}


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_playbook_validates(path: Path) -> None:
    loaded = load_playbook(path)
    playbook = loaded.playbook
    assert playbook.name == path.stem
    assert loaded.bundled
    stage_order = [STAGES.index(stage) for stage in playbook.stages]
    assert stage_order == sorted(stage_order)
    assert all(playbook.stages.values()), "every stage listed has steps"
    ids = [step.id for _, step in playbook.steps()]
    assert len(ids) == len(set(ids))


def test_load_all_finds_every_bundled_playbook() -> None:
    catalog = load_all()
    assert catalog.errors == []
    assert {path.stem for path in BUNDLED} <= set(catalog.playbooks)
    assert all(catalog.playbooks[name].bundled for name in REQUIRED)


def test_required_playbooks_share_step_ids() -> None:
    # the README and operators' scripts use these ids whatever the playbook
    shared = {"confirm-alert", "what-fired", "initial-notice", "what-changed", "impact",
              "ping-hosts", "collect-logs", "mitigation-result", "status-update",
              "root-cause", "trigger", "went-well", "went-wrong", "lucky", "action-items",
              "resolved-notice",
              "export-postmortem"}
    catalog = load_all()
    for name in REQUIRED:
        ids = {step.id for _, step in catalog.playbooks[name].playbook.steps()}
        assert shared <= ids, (name, shared - ids)


def test_generic_host_covers_the_whole_flow() -> None:
    playbook = load_all().playbooks["generic-host"].playbook
    assert tuple(playbook.stages) == STAGES
    kinds = {(stage, step.kind) for stage, step in playbook.steps()}
    assert ("load", "collect") in kinds
    assert any(step.kind == "collect" and step.bundle == "checklist60"
               for _, step in playbook.steps())
    records = {step.records for _, step in playbook.steps() if step.kind == "question"}
    assert {"detection", "changes", "impact", "root_cause", "trigger", "went_well",
            "went_wrong", "lucky", "action_items"} <= records
    assert playbook.step("export-postmortem").kind == "report"
    purposes = [step.purpose for _, step in playbook.steps() if step.kind == "announce"]
    assert purposes == ["initial", "update", "resolved"]
    assert playbook.step("service-name").kind == "question"


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_templates_read_only_answers_the_playbook_asks_for(path: Path) -> None:
    playbook = load_playbook(path).playbook
    asked: set[str] = set()
    for _, step in playbook.steps():
        if step.kind == "question":
            asked.add(step.id)
        # a command runs now, so its answers must come from earlier questions
        if step.kind == "remediate":
            assert answer_keys(step.command) <= asked, step.id
    questions = {step.id for _, step in playbook.steps() if step.kind == "question"}
    for _, step in playbook.steps():
        for source in (step.instructions, getattr(step, "template", "")):
            assert answer_keys(source) <= questions, step.id


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_announcements_render_before_and_after_answers(path: Path) -> None:
    playbook = load_playbook(path).playbook
    announcements = [step for _, step in playbook.steps() if step.kind == "announce"]
    assert {"initial", "resolved"} <= {step.purpose for step in announcements}
    questions = [step.id for _, step in playbook.steps() if step.kind == "question"]
    answered = incident(answers={key: f"answer to {key}" for key in questions})
    unanswered = incident(commander=None, scribe=None)
    for step in announcements:
        for context in (answered, unanswered):
            text = render_text(step.template, context)
            assert "Checkout returns 502" in text
            assert "None" not in text and "['" not in text, text
        if "hosts" in step.template:
            assert "web1, web2" in render_text(step.template, answered)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_remediation_is_reviewed_and_quotes_answers(path: Path) -> None:
    playbook = load_playbook(path).playbook
    remediations = [step for _, step in playbook.steps() if step.kind == "remediate"]
    assert remediations
    for step in remediations:
        assert step.review and step.rollback.strip()
        keys = answer_keys(step.command)
        command = render_command(step.command, incident(answers=dict.fromkeys(keys, HOSTILE)))
        words = shlex.split(command)
        if keys:
            assert any(HOSTILE in word for word in words), command
        assert "rm" not in words and "$(id)" not in words, command


# --- what a broken playbook says ---------------------------------------------------------

SAMPLE = """\
name: sample
title: Sample playbook
stages:
  detect:
    - id: unit-name
      kind: question
      title: Which unit?
      prompt: Which systemd unit is failing?
      records: detection
  logs:
    - id: read-logs
      kind: collect
      title: Read the logs
      collectors: [dmesg, syslog]
  remediate:
    - id: restart-unit
      kind: remediate
      title: Restart the unit
      command: systemctl restart -- {{ answers['unit-name'] }}
      rollback: A restart has nothing to undo.
      review: true
"""


def write(directory: Path, text: str | bytes, name: str = "sample.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_sample_is_valid(tmp_path: Path) -> None:
    assert load_playbook(write(tmp_path, SAMPLE)).playbook.name == "sample"


BROKEN = [
    # (case, the broken text, line, field, words in the problem)
    ("yaml-syntax", SAMPLE.replace("title: Sample playbook", "title: [Sample playbook"),
     3, None, "YAML syntax: expected ',' or ']'"),
    ("misspelt-key", SAMPLE.replace("records: detection", "recrods: detection"),
     9, "stages.detect[0].recrods", "unknown field 'recrods' (did you mean 'records'?)"),
    ("misspelt-top-key", SAMPLE.replace("title: Sample playbook", "titel: Sample playbook"),
     2, "titel", "unknown field 'titel' (did you mean 'title'?)"),
    ("missing-field", SAMPLE.replace("      prompt: Which systemd unit is failing?\n", ""),
     5, "stages.detect[0].prompt", "required field is missing"),
    ("unknown-kind", SAMPLE.replace("kind: collect", "kind: colect"),
     12, "stages.logs[0].kind", "'colect' is not a known kind (did you mean 'collect'?)"),
    ("missing-kind", SAMPLE.replace("      kind: collect\n", ""),
     11, "stages.logs[0].kind", "'kind' is missing"),
    ("unknown-stage", SAMPLE.replace("  logs:", "  log:"),
     10, "stages.log", "'log' is not allowed (did you mean 'logs'?)"),
    ("stages-out-of-order", SAMPLE.replace("  logs:", "  report:"),
     15, "stages.remediate", "stage 'remediate' comes after 'report'"),
    ("duplicate-step-id", SAMPLE.replace("id: read-logs", "id: unit-name"),
     11, "stages.logs[0].id", "step id 'unit-name' is already used in stage detect"),
    ("bad-step-id", SAMPLE.replace("id: read-logs", "id: Read_Logs"),
     11, "stages.logs[0].id", "'Read_Logs' is not in the expected form"),
    ("unknown-collector", SAMPLE.replace("[dmesg, syslog]", "[dmesg, iotop]"),
     14, "stages.logs[0].collectors", "unknown collector 'iotop'"),
    ("collect-nothing", SAMPLE.replace("      collectors: [dmesg, syslog]\n", ""),
     11, "stages.logs[0]", "a collect step needs 'collectors' or 'bundle'"),
    ("unknown-template-field", SAMPLE.replace("{{ answers['unit-name'] }}", "{{ hots }}"),
     19, "stages.remediate[0].command",
     "unknown template field(s): hots (did you mean 'hosts'?)"),
    ("template-syntax", SAMPLE.replace("{{ answers['unit-name'] }}", "{{ answers['unit-name'] "),
     19, "stages.remediate[0].command", "template syntax error"),
    ("unquoted-template", SAMPLE.replace(
        "systemctl restart -- {{ answers['unit-name'] }}", "{{ host }}"),
     19, "stages.remediate[0].command", "expected text but found a mapping"),
    ("not-a-mapping", "- name: sample\n- title: Sample\n", 1, None, "a playbook is a YAML mapping"),
    ("not-a-mapping-after-comments", "# a list, not a playbook\n\n- name: sample\n",
     3, None, "a playbook is a YAML mapping"),
    ("empty", "", 1, None, "the file is empty"),
    ("only-comments", "# nothing here yet\n", 1, None, "the file is empty"),
    ("not-utf8", SAMPLE.encode().replace(b"Sample playbook", b"Caf\xe9 playbook"),
     2, None, "not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "line", "field", "problem"),
                         [case[1:] for case in BROKEN], ids=[case[0] for case in BROKEN])
def test_broken_playbook_names_file_line_and_field(
        tmp_path: Path, text: str | bytes, line: int, field: str | None, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line, field)
    assert problem in error.problem
    where = f"{path}:{line}: {field}: " if field else f"{path}:{line}: "
    assert str(error).startswith(where)


def test_errors_say_what_was_expected(tmp_path: Path) -> None:
    def expected(text: str) -> str | None:
        with pytest.raises(PlaybookError) as caught:
            load_playbook(write(tmp_path, text))
        return caught.value.expected

    assert "records" in expected(SAMPLE.replace("records:", "recrods:"))
    assert "collect" in expected(SAMPLE.replace("kind: collect", "kind: colect"))
    assert "detect -> announce" in expected(SAMPLE.replace("  logs:", "  report:"))
    assert "kebab-case" in expected(SAMPLE.replace("id: read-logs", "id: Read_Logs"))


def test_syntax_error_points_back_at_the_unclosed_bracket(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE.replace("title: Sample playbook", "title: [Sample playbook"))
    with pytest.raises(PlaybookError, match="started on line 2"):
        load_playbook(path)


def test_a_broken_playbook_is_never_half_loaded() -> None:
    user_dir = paths.user_playbooks_dir()
    write(user_dir, SAMPLE.replace("name: sample", "name: good-one"), "good-one.yaml")
    broken = write(user_dir, SAMPLE.replace("name: sample", "name: broken-one")
                   .replace("id: read-logs", "id: unit-name"), "broken-one.yaml")

    catalog = load_all()

    assert "good-one" in catalog.playbooks
    assert not catalog.playbooks["good-one"].bundled
    assert "broken-one" not in catalog.playbooks
    assert [(e.file, e.line) for e in catalog.errors] == [(str(broken), 11)]
    assert set(REQUIRED) <= set(catalog.playbooks)
    with pytest.raises(PlaybookError) as caught:
        find_playbook("broken-one")
    assert caught.value.file == str(broken)


def test_user_playbook_overrides_bundled_by_name() -> None:
    write(paths.user_playbooks_dir(), SAMPLE.replace("name: sample", "name: disk-full"),
          "my-disk-full.yaml")
    loaded = load_all().playbooks["disk-full"]
    assert not loaded.bundled
    assert loaded.playbook.title == "Sample playbook"


def test_find_playbook_suggests_close_names() -> None:
    with pytest.raises(PlaybookError) as caught:
        find_playbook("disk-ful")
    assert caught.value.problem == "no such playbook"
    assert "disk-full" in caught.value.expected


# --- templates ------------------------------------------------------------------------


def test_command_value_with_metacharacters_stays_one_word() -> None:
    command = render_command("systemctl restart -- {{ answers['unit'] }}",
                             {"answers": {"unit": HOSTILE}})
    assert shlex.split(command) == ["systemctl", "restart", "--", HOSTILE]


def test_command_list_is_quoted_item_by_item() -> None:
    hosts = ["web 1", "db;2", "$(id)", "it's"]
    command = render_command("ping -c 1 {{ hosts }}", {"hosts": hosts})
    assert shlex.split(command) == ["ping", "-c", "1", *hosts]


@pytest.mark.parametrize("value", ["unit\nrm -rf /", "unit\x00", "unit\r", ["ok", "bad\nline"]],
                         ids=["newline", "nul", "carriage-return", "list-item"])
def test_command_refuses_control_characters(value: object) -> None:
    with pytest.raises(TemplateError, match="control characters"):
        render_command("systemctl restart -- {{ unit }}", {"unit": value})


def test_command_refuses_undefined_and_unset_fields() -> None:
    with pytest.raises(TemplateError, match="no value"):
        render_command("systemctl restart -- {{ host }}", {})
    with pytest.raises(TemplateError, match="no value"):
        render_command("systemctl restart -- {{ answers['unit'] }}", {"answers": {}})
    with pytest.raises(TemplateError, match="no value yet"):
        render_command("systemctl restart -- {{ commander }}", {"commander": None})


def test_text_joins_lists_and_keeps_values_as_they_are() -> None:
    text = render_text("Hosts: {{ hosts }}. {{ title }}",
                       {"hosts": ["web1", "web2"], "title": "it's $(down)"})
    assert text == "Hosts: web1, web2. it's $(down)"
    with pytest.raises(TemplateError):
        render_text("{{ commander }}", {})


def test_a_playbook_named_apart_from_its_file_that_fails_to_load_says_why() -> None:
    directory = paths.user_playbooks_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mine.yaml").write_text("name: other-name\ntitle: x\nstages: 5\n")
    result = run_cli("new", "-p", "other-name", "--title", "t", check=False)
    assert result.returncode == 2
    assert "mine.yaml:3" in result.stderr and "no such playbook" not in result.stderr
