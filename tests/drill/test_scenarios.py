"""Each bundled scenario on a real lab: the fault is injected, the engine's
collectors find it, a careful trainee in the app scores high, a careless one
scores low with the reasons, and teardown leaves nothing behind."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from runbook.collection.collect import CollectRequest, plan_collection
from runbook.drill.lab import (
    drill_store,
    find_state,
    leftover_mounts,
    marked_processes,
)
from runbook.drill.scenario import BUNDLED_DIR, team_dir
from runbook.drill.scoring import score
from runbook.drill.session import StartedDrill, start_drill, stop_drill
from runbook.engine.catalog import expand
from tests.drill.conftest import require_drill_lab
from tests.drill.operator import (
    SIZE,
    answer,
    collect,
    journal,
    make_app,
    opened,
    skip,
    tick,
)

pytestmark = pytest.mark.timeout(240)


@dataclass
class Play:
    """How a trainee answers this scenario's questions."""

    right: str  # the diagnosis a careful trainee gives (a cause id or words)
    wrong: str
    answers: dict[str, str] = field(default_factory=dict)


PLAYS = {
    "disk-full": Play("disk-full", "the network to the storage is flaky",
                      {"what-fired": "ReportWriterErrors on files1, confirmed in its log"}),
    "memory-pressure": Play(
        "app1 ran out of memory; the OOM killer killed report-worker while cache-warmer "
        "held the memory", "someone restarted it during a deploy",
        {"what-fired": "WorkerDown for report-worker on app1"}),
    "cpu-saturation": Play(
        "CPU saturation on web1: runaway thumbnailer busy loops keep the run queue above "
        "the CPUs",
        "slow database queries", {"what-fired": "HighLatency on web1"}),
    "process-down": Play("process-stopped", "memory-exhausted",
                         {"what-fired": "ApiDown on api1", "program-name": "api"}),
    "port-closed": Play("the web service on web2 is not running: nothing listening on its "
                        "port",
                        "a bad deploy of the load balancer",
                        {"what-fired": "BackendDown for web2"}),
    "host-unreachable": Play("sshd on db2 is down: connection refused while ping answers",
                             "db2 has a full disk",
                             {"what-fired": "HostCheckinMissing for db2; ssh refused"}),
}
# Hogs in tests end by themselves within a minute, whatever happens to the test.
SHORT = {"cpu-saturation": ("seconds: 900", "seconds: 60"),
         "memory-pressure": ("hog_seconds: 900", "hog_seconds: 60")}


@pytest.fixture(scope="module", params=sorted(PLAYS))
def scenario_name(request: pytest.FixtureRequest, module_env: None) -> str:
    name = request.param
    if name in SHORT:
        # A team scenario of the same name wins: the bundled one, with short hogs.
        text = (BUNDLED_DIR / f"{name}.yaml").read_text()
        old, new = SHORT[name]
        team_dir().mkdir(parents=True, exist_ok=True)
        (team_dir() / f"{name}.yaml").write_text(text.replace(old, new))
    return name


@contextlib.contextmanager
def running(name: str, actor: str = "tester@lab") -> Iterator[StartedDrill]:
    require_drill_lab()
    started = start_drill(name, actor, seed=7)
    try:
        yield started
    finally:
        with contextlib.suppress(Exception):
            stop_drill(started.id, actor)


@pytest.fixture(scope="module")
def lab(scenario_name: str, module_env: None) -> Iterator[dict[str, Any]]:
    """One drill per scenario, shared by the module's engine and teardown checks."""
    with running(scenario_name) as started:
        state = find_state(started.id)
        yield {"drill": started, "state": dict(state.data)}


@pytest.mark.asyncio
async def test_careless_trainee_scores_low_with_reasons(lab: dict[str, Any],
                                                       scenario_name: str) -> None:
    """First on the shared lab, so nothing else has collected anything yet."""
    play = PLAYS[scenario_name]
    started: StartedDrill = lab["drill"]
    iid, scenario = started.id, started.scenario
    assert not journal(iid).evidence
    app = make_app(iid, actor="hasty@lab")
    async with app.run_test(size=SIZE) as pilot:
        await opened(pilot)
        for step_id in scenario.expected_steps:
            if step_id == scenario.diagnosis_step:
                await answer(pilot, iid, step_id, play.wrong)
            else:
                await skip(pilot, iid, step_id, "no time")
    result = score(journal(iid))
    assert not result.diagnosis.matched
    assert result.total <= 20
    reasons = "\n".join(result.reasons)
    assert "diagnosis: wrong" in reasons
    assert "skipped" in reasons and "no time" in reasons
    assert "never collected" in reasons
    assert "no correct diagnosis" in reasons


def test_collectors_find_the_fault(lab: dict[str, Any], scenario_name: str) -> None:
    started: StartedDrill = lab["drill"]
    scenario = started.scenario
    names = sorted({c for r in scenario.revealing for c in r.collectors})
    assert not expand(names).unknown
    request = CollectRequest(incident_id=started.id, collectors=names, actor="tester@lab",
                             connect=started.connect())
    report = plan_collection(drill_store(), request).collection().run()
    state = journal(started.id)
    runs = [e for e in state.evidence if e["host"] == scenario.fault_host
            and e.get("step") is None]
    for wanted in scenario.revealing:
        assert any(wanted.matches_run(run) for run in runs), (
            f"{scenario_name}: no {wanted.label()} in "
            f"{[(r['collector'], r['status'], r.get('findings')) for r in runs]}")
    assert {h.host.name for h in report.hosts} == {h.name for h in scenario.lab.host_specs()}


# Right after the engine check: the shared lab is gone before the app runs.
def test_teardown_leaves_nothing(lab: dict[str, Any]) -> None:
    started: StartedDrill = lab["drill"]
    recorded = lab["state"]
    live = find_state(started.id).data  # the fault may have added processes since
    pids = {p["pid"] for p in [*recorded["processes"], *live["processes"]]}
    pids |= set(live["fault"].get("hog_pids", []))
    directory = Path(live["directory"])
    stopped = stop_drill(started.id, "tester@lab")
    assert stopped.undone
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, f"pid {pid} alive"
    assert marked_processes(started.id) == []
    assert not directory.exists()
    assert leftover_mounts(directory) == []
    for host in live["hosts"]:
        with pytest.raises(OSError), socket.create_connection(
                (host["address"], host["port"]), timeout=1):
            pass
    events = [e.type for e in journal(started.id).events]
    assert events[-1] == "drill.stopped"


@pytest.mark.asyncio
async def test_careful_trainee_scores_high(scenario_name: str) -> None:
    play = PLAYS[scenario_name]
    with running(scenario_name, "trainee@lab") as started:
        iid, scenario = started.id, started.scenario
        app = make_app(iid)
        async with app.run_test(size=SIZE) as pilot:
            await opened(pilot)
            header = "\n".join(strip.text for strip in app.screen._compositor.render_strips()[:2])
            assert "DRILL" in header
            state = journal(iid)
            for step_id in scenario.expected_steps:
                kind = state.steps[step_id].step.kind
                if step_id == scenario.diagnosis_step:
                    await answer(pilot, iid, step_id, play.right)
                elif kind == "collect":
                    await collect(pilot, iid, step_id)
                elif kind == "question":
                    await answer(pilot, iid, step_id, play.answers.get(step_id, "checked"))
                else:
                    await tick(pilot, iid, step_id)
        if scenario.remediation is not None:
            fix_reviewed_and_run(started, scenario)
        result = score(journal(iid))
    assert result.diagnosis.matched, result.diagnosis.why
    assert all(e.found for e in result.evidence), [vars(e) for e in result.evidence]
    assert result.total >= 90, result.reasons
    if scenario.remediation is not None:
        fixed = next(p for p in result.parts if p.name == "remediation")
        assert fixed.points == fixed.maximum, fixed.explanation
        assert "after a review by reviewer@lab" in fixed.explanation
        assert result.timings["fixed"] is not None
    assert result.trainee == "trainee@lab"
    assert result.timings["first evidence"] is not None


def fix_reviewed_and_run(started: StartedDrill, scenario: Any) -> None:
    """The careful trainee proposes the playbook's fix on the faulty host only, a
    second person reviews it, and it runs over the lab's real SSH."""
    from runbook.incident.store import Incident
    from runbook.remediate import approve, execute, propose

    incident = Incident(drill_store(), started.id)
    proposal = propose(incident, scenario.remediation.steps[0], "trainee@lab",
                       hosts=[scenario.fault_host])
    approve(incident, proposal.command_id, "reviewer@lab", "reviewer@lab")
    [result] = execute(incident, proposal.command_id, "trainee@lab", proposal.confirmation,
                       started.connect().ssh_options())
    assert result.status == "ok", vars(result)
