"""Scenario files: the bundled six validate, a team's own are found, and a bad
file is reported with its line and field, never half-loaded."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from runbook.drill.scenario import (
    BUNDLED_DIR,
    ScenarioError,
    diagnosis_matches,
    find_scenario,
    load_catalog,
    team_dir,
)


@pytest.fixture(autouse=True)
def _own_home(_use_drill_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Team scenario files stay within the test that writes them."""
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))


SIX = {"disk-full", "memory-pressure", "cpu-saturation", "process-down", "port-closed",
       "host-unreachable"}


def test_the_bundled_six_validate() -> None:
    catalog = load_catalog()
    assert not catalog.errors
    assert set(catalog.scenarios) >= SIX
    kinds = {catalog.scenarios[n].scenario.fault.kind for n in SIX}
    assert kinds == {"disk_full", "memory_pressure", "cpu_saturation", "process_down",
                     "port_closed", "host_unreachable"}
    for name in SIX:
        scenario = catalog.scenarios[name].scenario
        assert scenario.fault.simulated, f"{name} must say what is real and what is not"


def test_a_team_scenario_is_found_and_wins_over_a_bundled_one() -> None:
    team_dir().mkdir(parents=True)
    text = (BUNDLED_DIR / "disk-full.yaml").read_text()
    (team_dir() / "disk-full.yaml").write_text(text.replace("time_target_minutes: 15",
                                                            "time_target_minutes: 5"))
    (team_dir() / "our-disk.yaml").write_text(text)
    loaded = find_scenario("disk-full")
    assert not loaded.bundled and loaded.scenario.time_target_minutes == 5
    assert find_scenario("our-disk").scenario.name == "our-disk"


def test_a_bad_field_names_its_file_and_line() -> None:
    team_dir().mkdir(parents=True)
    text = (BUNDLED_DIR / "port-closed.yaml").read_text()
    bad = team_dir() / "bad.yaml"
    bad.write_text(text.replace("time_target_minutes: 10", "time_targt_minutes: 10"))
    with pytest.raises(ScenarioError) as caught:
        find_scenario("bad")
    line = text.splitlines().index("time_target_minutes: 10") + 1
    assert caught.value.line == line
    assert "did you mean 'time_target_minutes'" in caught.value.message
    assert any(e.file == str(bad) for e in load_catalog().errors)


def test_an_expected_step_the_playbook_lacks_is_refused() -> None:
    team_dir().mkdir(parents=True)
    text = (BUNDLED_DIR / "port-closed.yaml").read_text()
    (team_dir() / "typo.yaml").write_text(text.replace("ping-hosts, collect-load",
                                                       "ping-hosts, collect-lod"))
    with pytest.raises(ScenarioError, match="no step 'collect-lod'") as caught:
        find_scenario("typo")
    assert caught.value.field == "expected_steps[2]"


def test_a_fix_that_is_not_a_remediate_step_is_refused_with_the_ones_that_are() -> None:
    team_dir().mkdir(parents=True)
    text = (BUNDLED_DIR / "process-down.yaml").read_text()
    (team_dir() / "nofix.yaml").write_text(text.replace("steps: [start-program]",
                                                        "steps: [program-name]"))
    with pytest.raises(ScenarioError, match="'program-name' is not a remediate step") as caught:
        find_scenario("nofix")
    assert caught.value.field == "remediation.steps[0]"
    assert caught.value.line == text.splitlines().index("  steps: [start-program]") + 1
    assert "start-program" in (caught.value.hint or "")


def test_diagnosis_by_id_or_by_accepted_phrase() -> None:
    scenario = find_scenario("disk-full").scenario
    assert diagnosis_matches(scenario, "disk-full")[0]
    assert diagnosis_matches(scenario, "/srv/data on files1 filled up: No space left on device",
                             "files1")[0]
    assert not diagnosis_matches(scenario, "memory-exhausted")[0]
    wrong, why = diagnosis_matches(scenario, "the box ran out of memory")
    assert not wrong and "memory-exhausted" in why
    assert not diagnosis_matches(scenario, "")[0]


def test_one_keyword_is_not_a_diagnosis() -> None:
    """The case seen: "stopped" scored 100/100. The cause, what stopped and where."""
    scenario = find_scenario("process-down").scenario
    alone, why = diagnosis_matches(scenario, "stopped", "api1")
    assert not alone
    assert why == ("typed text names the cause ('stopped') but not the host or the what "
                   "(host: one of 'api1'; what: one of 'api')")
    assert not diagnosis_matches(scenario, "the api was stopped", "api1")[0]
    assert not diagnosis_matches(scenario, "the api on api2 was stopped", "api1")[0]
    assert diagnosis_matches(scenario, "supervisorctl stop api on api1", "api1")[0]
    disk = find_scenario("disk-full").scenario
    assert not diagnosis_matches(disk, "disk full on files1", "files1")[0]  # which disk?


def test_the_drill_core_imports_no_textual() -> None:
    modules = ["runbook.drill.scenario", "runbook.drill.lab", "runbook.drill.faults",
               "runbook.drill.session", "runbook.drill.scoring", "runbook.drill.history",
               "runbook.drill.report", "runbook.drill.guard"]
    code = f"import sys; import {', '.join(modules)}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_remediation_credit_says_what_was_missing() -> None:
    """The rule on the journal's folded commands (no lab needed): the right step
    on the faulty host, reviewed; then each thing that costs points."""
    from datetime import UTC, datetime

    from runbook.drill.scoring import _fix
    from runbook.incident.state import CommandState, IncidentState

    scenario = find_scenario("process-down").scenario
    host = scenario.fault_host

    def ran(hosts: list[str], approvals: list[str], status: str = "ok",
            program: str = "api") -> IncidentState:
        command = CommandState(
            id="c1", step="start-program", command=f"supervisorctl start {program}",
            hosts=hosts, rollback=None, review_required=True, proposed_by="trainee",
            approvals=approvals, commands={h: f"supervisorctl start {program}" for h in hosts},
            results=[{"host": h, "status": status, "ts": datetime.now(UTC)} for h in hosts])
        return IncidentState(id="x", commands={"c1": command})

    full = _fix(ran([host], ["reviewer"]), scenario, host)
    assert full.share == 1.0 and "after a review by reviewer" in full.why
    alone = _fix(ran([host], ["trainee"]), scenario, host)
    assert alone.share == 0.5 and "without a second person's review" in alone.why
    wide = _fix(ran([host, "web9"], ["reviewer"]), scenario, host)
    assert wide.share == 0.75 and "also on the healthy web9" in wide.why
    elsewhere = _fix(ran(["web9"], ["reviewer"]), scenario, host)
    assert elsewhere.share == 0 and f"not on {host} where the fault is" in elsewhere.why
    failed = _fix(ran([host], ["reviewer"], status="failed"), scenario, host)
    assert failed.share == 0.25 and "did not succeed (failed)" in failed.why
    wrong = _fix(ran([host], ["reviewer"], program="worker"), scenario, host)
    assert wrong.share == 0.25 and "did not name api" in wrong.why
    assert "was never run" in _fix(IncidentState(id="x"), scenario, host).why
