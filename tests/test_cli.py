"""The `runbook` command as an operator uses it: real subprocesses, real files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from runbook import cli
from tests.conftest import run_cli


def new_incident(*extra: str) -> str:
    result = run_cli("new", "--playbook", "generic-host", "--host", "localhost",
                     "--title", "Load high on localhost", *extra)
    incident_id = result.stdout.strip()
    assert incident_id and "\n" not in incident_id, "stdout is just the id, for scripts"
    assert "opened" in result.stderr
    return incident_id


def test_fresh_machine_flow_with_no_inventory(runbook_home: Path) -> None:
    incident_id = new_incident("--severity", "2", "--commander", "alice")
    assert (runbook_home / "incidents" / incident_id / "events.jsonl").exists()

    run_cli("answer", incident_id, "what-changed", "deploy", "at", "14:02")
    run_cli("done", incident_id, "confirm-alert", "--comment", "graph agrees")
    run_cli("skip", incident_id, "ping-hosts", "local host, nothing to ping")
    run_cli("note", incident_id, "load is 40 on 2 CPUs")
    run_cli("role", incident_id, "scribe", "carol")

    state = json.loads(run_cli("show", incident_id, "--json").stdout)
    assert state["title"] == "Load high on localhost"
    assert state["severity"] == "SEV2"
    assert state["roles"] == {"commander": "alice", "scribe": "carol"}
    assert [h["name"] for h in state["hosts"]] == ["localhost"]
    assert state["hosts"][0]["local"] is True
    steps = {s["id"]: s for s in state["steps"]}
    assert steps["what-changed"]["answer"] == "deploy at 14:02"
    assert steps["confirm-alert"]["status"] == "done"
    assert steps["ping-hosts"]["status"] == "skipped"
    assert state["records"]["changes"] == "deploy at 14:02"
    summaries = [e["summary"] for e in state["timeline"]]
    assert "Note: load is 40 on 2 CPUs" in summaries
    assert all(e["actor"] == "tester@lab" for e in state["timeline"])
    assert all(e["ts"].endswith("Z") for e in state["timeline"])

    text = run_cli("show", incident_id[-4:]).stdout
    assert "Load high on localhost" in text
    assert "load is 40 on 2 CPUs" in text
    assert "Next:" in text  # the current step and how to record it

    run_cli("resolve", incident_id, "--summary", "killed the runaway job")
    run_cli("close", incident_id)
    listed = json.loads(run_cli("list", "--json").stdout)
    assert [(i["id"], i["status"]) for i in listed] == [(incident_id, "closed")]
    assert json.loads(run_cli("list", "--status", "open", "--json").stdout) == []


def test_actor_comes_from_the_as_option() -> None:
    incident_id = new_incident()
    run_cli("--as", "bob@bastion", "note", incident_id, "hello")
    state = json.loads(run_cli("show", incident_id, "--json").stdout)
    assert state["timeline"][-1]["actor"] == "bob@bastion"


def test_hosts_from_an_inventory_with_project_and_role(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text(
        "hosts:\n"
        "  web1: {address: 10.1.0.1, project: shop, role: web, tags: [eu]}\n"
        "  web2: {address: 10.1.0.2, project: shop, role: web}\n"
        "  db1: {address: 10.1.0.9, project: shop, role: db}\n")
    result = run_cli("new", "-p", "web-5xx", "-i", str(inventory), "-H", "role:web",
                     "-t", "5xx on checkout")
    state = json.loads(run_cli("show", result.stdout.strip(), "--json").stdout)
    assert [(h["name"], h["project"], h["role"]) for h in state["hosts"]] == [
        ("web1", "shop", "web"), ("web2", "shop", "web")]
    shown = run_cli("show", result.stdout.strip()).stdout
    assert "shop" in shown and "web" in shown
    picked = json.loads(run_cli("inventory", "list", "-i", str(inventory), "tag:eu",
                                "--json").stdout)
    assert [h["name"] for h in picked] == ["web1"]


def test_malformed_inventory_is_a_located_error_without_traceback(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n  web1:\n    adress: 10.0.0.1\n")
    result = run_cli("new", "-p", "generic-host", "-i", str(inventory), "-H", "web1",
                     "-t", "x", check=False)
    assert result.returncode == 2
    assert f"{inventory}:3" in result.stderr
    assert "adress" in result.stderr and "address" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (Path(_home()) / "incidents").exists() or not any(
        (Path(_home()) / "incidents").iterdir()), "nothing half-created"


def test_host_selector_with_shell_metacharacters_is_refused() -> None:
    result = run_cli("new", "-p", "generic-host", "-H", "web1;rm -rf /", "-t", "x",
                     check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "web1;rm -rf /" in result.stderr


def test_playbook_validate_reports_file_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "name: broken\n"
        "title: Broken\n"
        "stages:\n"
        "  detect:\n"
        "    - id: look\n"
        "      kind: checklist\n"
        "      titel: Look\n")
    result = run_cli("playbook", "validate", str(broken), check=False)
    assert result.returncode == 1
    assert f"{broken}:7" in result.stderr
    assert "stages.detect[0].titel" in result.stderr
    assert "did you mean 'title'" in result.stderr
    assert "Traceback" not in result.stderr

    as_json = json.loads(run_cli("playbook", "validate", str(broken), "--json",
                                 check=False).stdout)
    assert as_json[0]["ok"] is False
    assert as_json[0]["error"]["line"] == 7
    assert as_json[0]["error"]["field"] == "stages.detect[0].titel"


def test_playbook_list_shows_bundled_and_reports_broken_user_playbooks(
        runbook_home: Path) -> None:
    user_dir = runbook_home / "config" / "playbooks"
    user_dir.mkdir(parents=True)
    (user_dir / "mine.yaml").write_text("name: mine\ntitle: a: b\n")
    result = run_cli("playbook", "list", "--json")
    listing = json.loads(result.stdout)
    names = {p["name"] for p in listing["playbooks"]}
    assert {"generic-host", "web-5xx", "process-down", "disk-full", "queue-latency"} <= names
    assert listing["errors"][0]["file"].endswith("mine.yaml")
    assert listing["errors"][0]["line"] == 2
    table = run_cli("playbook", "list")
    assert "generic-host" in table.stdout and "mine.yaml:2" in table.stderr


def test_unknown_incident_and_bad_severity_are_plain_errors() -> None:
    result = run_cli("show", "nope", check=False)
    assert result.returncode == 2
    assert "no incident 'nope'" in result.stderr
    assert "Traceback" not in result.stderr
    incident_id = new_incident()
    result = run_cli("severity", incident_id, "SEV7", check=False)
    assert result.returncode == 2 and "not a severity" in result.stderr


def test_every_command_has_help() -> None:
    commands = [[]] + [[name] for name in cli.cli.commands]
    for group in ("playbook", "inventory"):
        commands += [[group, sub] for sub in cli.cli.commands[group].commands]  # type: ignore[attr-defined]
    for words in commands:
        result = run_cli(*words, "--help")
        assert "Usage: runbook" in result.stdout, words


def test_internal_error_goes_to_the_log_not_the_screen(runbook_home: Path, capsys) -> None:
    @click.command()
    def broken() -> None:
        raise ZeroDivisionError("our bug")

    assert cli.run(broken, []) == cli.EXIT_INTERNAL
    shown = capsys.readouterr()
    assert "Traceback" not in shown.err + shown.out
    assert "internal error" in shown.err
    log = (runbook_home / "logs" / "runbook.log").read_text()
    assert "ZeroDivisionError: our bug" in log


def _home() -> str:
    import os

    return os.environ["RUNBOOK_HOME"]
