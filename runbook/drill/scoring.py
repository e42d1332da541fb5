"""Score a drill from its incident's journal, and nothing else.

The score (0-100) has four parts, each explained in words:
- diagnosis (40): the last root cause the trainee stated (`drill diagnose`, or
  the answer to the playbook's root-cause question) matches the expected one;
- evidence (20): the share of the scenario's revealing findings the trainee
  actually collected on the faulty host;
- steps (25): the share of the expected playbook steps done (skipped or
  untouched ones are listed with the reason given);
- time (15): full marks for a correct diagnosis within the time target, falling
  linearly to nothing at three times the target.

A scenario that declares its fix (`remediation:`) scores a fifth part, and the
weights make room for it (WEIGHTS_WITH_FIX): remediation (15) is the right
step, run cleanly on the faulty host, naming what it must, with a second
person's review; running it on healthy hosts as well, or without the review,
costs points, and the reason says which.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from runbook.clock import utc_iso
from runbook.drill.scenario import Scenario, diagnosis_matches
from runbook.drill.session import (
    drill_scenario,
    fault_host,
    started_event,
)
from runbook.incident import EventType, IncidentState, StepStatus, format_duration
from runbook.incident.journal import Event

WEIGHTS = {"diagnosis": 40, "evidence": 20, "steps": 25, "time": 15}
WEIGHTS_WITH_FIX = {"diagnosis": 35, "evidence": 15, "steps": 20, "remediation": 15,
                    "time": 15}
NOT_AN_ACTION = {EventType.OPENED, EventType.HOSTS_ADDED, EventType.DETECTED}


@dataclass
class Part:
    name: str
    points: float
    maximum: int
    explanation: str


@dataclass
class StepResult:
    id: str
    title: str
    status: str
    detail: str | None


@dataclass
class EvidenceResult:
    label: str
    found: bool
    where: str | None
    why: str


@dataclass
class Diagnosis:
    stated: str | None
    matched: bool
    why: str
    at: datetime | None
    by: str | None


@dataclass
class DrillScore:
    scenario: Scenario
    started_at: datetime
    timings: dict[str, timedelta | None]
    steps: list[StepResult]
    evidence: list[EvidenceResult]
    diagnosis: Diagnosis
    parts: list[Part] = field(default_factory=list)
    trainee: str | None = None
    seed: int | None = None
    remediation: FixResult | None = None

    @property
    def total(self) -> int:
        return round(sum(p.points for p in self.parts))

    @property
    def reasons(self) -> list[str]:
        """Why points were lost, one line each."""
        return [f"{p.name}: {p.explanation}" for p in self.parts if p.points < p.maximum]

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name, "score": self.total, "trainee": self.trainee,
            "seed": self.seed, "started_at": utc_iso(self.started_at, "microseconds"),
            "timings": {k: (v.total_seconds() if v is not None else None)
                        for k, v in self.timings.items()},
            "diagnosis": {"stated": self.diagnosis.stated, "matched": self.diagnosis.matched,
                          "why": self.diagnosis.why},
            "steps": [vars(s) for s in self.steps],
            "evidence": [vars(e) for e in self.evidence],
            "parts": [vars(p) for p in self.parts],
        }


def score(state: IncidentState) -> DrillScore:
    scenario = drill_scenario(state)
    started = _started_at(state)
    events = [e for e in state.events if e.ts >= started]
    host = fault_host(state)
    diagnosis = _diagnosis(scenario, events, host)
    timings = {
        "acknowledge": _first(events, started, lambda e: _is_action(e)),
        "announce": _first(events, started, lambda e: e.type == EventType.ANNOUNCEMENT_SENT
                           and bool(e.data.get("delivered", True))),
        "first evidence": _first(events, started, lambda e: e.type == EventType.COLLECTOR_RAN
                                 and e.data.get("status") == "ok"),
        "correct diagnosis": _correct_diagnosis_time(scenario, events, started, host),
        "remediation": _first(events, started, lambda e: e.type == EventType.COMMAND_EXECUTED
                              and e.data.get("status") == "ok"),
    }
    fix = _fix(state, scenario, host)
    if scenario.remediation is not None:
        timings["fixed"] = fix.at - started if fix.at else None
    steps = _steps(state, scenario)
    evidence = _evidence(state, scenario)
    result = DrillScore(scenario, started, timings, steps, evidence, diagnosis,
                        trainee=_trainee(events), seed=started_event(state).get("seed"))
    weights = WEIGHTS if scenario.remediation is None else WEIGHTS_WITH_FIX
    result.parts = [_diagnosis_part(scenario, diagnosis, weights),
                    _evidence_part(evidence, weights), _steps_part(steps, weights)]
    if scenario.remediation is not None:
        result.parts.append(Part("remediation", weights["remediation"] * fix.share,
                                 weights["remediation"], fix.why))
    result.parts.append(_time_part(scenario, timings["correct diagnosis"], weights))
    result.remediation = fix
    return result


@dataclass
class FixResult:
    share: float  # of the remediation part's points
    why: str
    at: datetime | None = None  # when the right fix finished on the faulty host


def _fix(state: IncidentState, scenario: Scenario, host: str | None) -> FixResult:
    """The best remediation the trainee ran, against the scenario's `remediation`."""
    wanted = scenario.remediation
    if wanted is None:
        return FixResult(1.0, "the scenario declares no fix; remediation is not scored")
    names = [_filled(p, scenario, host) for p in wanted.must_name]
    tried: list[FixResult] = []
    for command in state.commands.values():
        if command.step not in wanted.steps:
            continue
        on_fault = [r for r in command.results if r.get("host") == host]
        if not on_fault:
            candidate = FixResult(0.0, f"{command.step} ran on {', '.join(command.hosts)}, "
                                  f"not on {host} where the fault is")
        elif on_fault[-1].get("status") != "ok":
            candidate = FixResult(0.25, f"{command.step} on {host} did not succeed "
                                  f"({on_fault[-1].get('status')})")
        elif missing := [n for n in names if n.lower() not in
                         command.commands.get(host or "", command.command).lower()]:
            candidate = FixResult(0.25, f"{command.step} ran on {host} but did not name "
                                  f"{', '.join(missing)}")
        else:
            share, notes = 1.0, []
            reviewers = [a for a in command.approvals if a != command.proposed_by]
            if wanted.review and not reviewers:
                share -= 0.5
                notes.append("without a second person's review")
            healthy = [h for h in command.hosts if h != host]
            if healthy:
                share -= 0.25
                notes.append(f"also on the healthy {', '.join(healthy)}")
            at = on_fault[-1].get("ts")
            candidate = FixResult(share, f"{command.step} ran cleanly on {host}"
                                  + (f" after a review by {', '.join(reviewers)}"
                                     if reviewers else "")
                                  + (f", but {'; '.join(notes)}" if notes else ""),
                                  at if isinstance(at, datetime) else None)
        tried.append(candidate)
    if not tried:
        return FixResult(0.0, f"the fix ({' or '.join(wanted.steps)} on {host}) was never run")
    return max(tried, key=lambda fix: fix.share)  # the first of the best


def _filled(phrase: str, scenario: Scenario, host: str | None) -> str:
    values = {"host": host or "", **{k: str(v) for k, v in scenario.fault.params.items()}}
    for key, value in values.items():
        phrase = phrase.replace("{" + key + "}", value)
    return phrase


def _started_at(state: IncidentState) -> datetime:
    for event in state.events:
        if event.type == EventType.DRILL_STARTED:
            return event.ts
    raise AssertionError("started_event() already checked this")


def _is_action(event: Event) -> bool:
    return event.type not in NOT_AN_ACTION and not event.type.startswith("drill.")


def _first(events: list[Event], start: datetime, test: Any) -> timedelta | None:
    for event in events:
        if test(event):
            return event.ts - start
    return None


def _stated(scenario: Scenario, events: list[Event]) -> list[tuple[Event, str]]:
    """Every diagnosis the trainee stated, in order: `drill diagnose` or the answer
    to the diagnosis question."""
    stated = []
    for event in events:
        if event.type == EventType.DRILL_DIAGNOSED:
            stated.append((event, str(event.data.get("cause", ""))))
        elif event.type == EventType.ANSWER_RECORDED and \
                event.data.get("step") == scenario.diagnosis_step:
            stated.append((event, str(event.data.get("text", ""))))
    return stated


def _diagnosis(scenario: Scenario, events: list[Event], host: str | None) -> Diagnosis:
    stated = _stated(scenario, events)
    if not stated:
        return Diagnosis(None, False, "no root cause was stated", None, None)
    event, text = stated[-1]
    matched, why = diagnosis_matches(scenario, text, host)
    return Diagnosis(text, matched, why, event.ts, event.actor)


def _correct_diagnosis_time(scenario: Scenario, events: list[Event],
                            start: datetime, host: str | None) -> timedelta | None:
    stated = _stated(scenario, events)
    if not stated or not diagnosis_matches(scenario, stated[-1][1], host)[0]:
        return None  # the final word was wrong (or absent): no correct diagnosis
    for event, text in stated:
        if diagnosis_matches(scenario, text, host)[0]:
            return event.ts - start
    return None


def _steps(state: IncidentState, scenario: Scenario) -> list[StepResult]:
    results = []
    for step_id in scenario.expected_steps:
        step = state.steps.get(step_id)
        if step is None:
            results.append(StepResult(step_id, step_id, "missing", "not in this playbook"))
            continue
        detail = step.reason if step.status == StepStatus.SKIPPED else (
            step.answer or step.reason)
        results.append(StepResult(step_id, step.step.title, str(step.status), detail))
    return results


def _evidence(state: IncidentState, scenario: Scenario) -> list[EvidenceResult]:
    host = scenario.fault_host
    results = []
    for wanted in scenario.revealing:
        where = None
        for run in state.evidence:
            if run.get("host") == host and wanted.matches_run(run):
                where = f"{run.get('collector')} on {host}" + (
                    f" (step {run['step']})" if run.get("step") else "")
                break
        results.append(EvidenceResult(wanted.label(), where is not None, where, wanted.why))
    return results


def _trainee(events: list[Event]) -> str | None:
    actors: dict[str, int] = {}
    for event in events:
        if _is_action(event):
            actors[event.actor] = actors.get(event.actor, 0) + 1
    return max(actors, key=lambda a: actors[a]) if actors else None


# -- the parts ----------------------------------------------------------------------------


def _diagnosis_part(scenario: Scenario, diagnosis: Diagnosis,
                    weights: dict[str, int]) -> Part:
    maximum = weights["diagnosis"]
    if diagnosis.matched:
        return Part("diagnosis", maximum, maximum, f"correct: {diagnosis.why}")
    if diagnosis.stated is None:
        return Part("diagnosis", 0, maximum, "no root cause was stated "
                    f"(expected: {scenario.root_cause.text})")
    return Part("diagnosis", 0, maximum, f"wrong: {diagnosis.stated!r}; {diagnosis.why} "
                f"(expected: {scenario.root_cause.text})")


def _evidence_part(evidence: list[EvidenceResult], weights: dict[str, int]) -> Part:
    maximum = weights["evidence"]
    found = [e for e in evidence if e.found]
    points = maximum * len(found) / len(evidence) if evidence else maximum
    missing = [e.label for e in evidence if not e.found]
    text = f"collected {len(found)} of {len(evidence)} revealing finding(s)"
    if missing:
        text += "; never collected: " + ", ".join(missing)
    return Part("evidence", points, maximum, text)


def _steps_part(steps: list[StepResult], weights: dict[str, int]) -> Part:
    maximum = weights["steps"]
    done = [s for s in steps if s.status == StepStatus.DONE]
    points = maximum * len(done) / len(steps) if steps else maximum
    text = f"{len(done)} of {len(steps)} expected step(s) done"
    skipped = [f"{s.id} (skipped: {s.detail})" for s in steps if s.status == StepStatus.SKIPPED]
    untouched = [s.id for s in steps if s.status not in (StepStatus.DONE, StepStatus.SKIPPED)]
    if skipped:
        text += "; skipped " + ", ".join(skipped)
    if untouched:
        text += "; not done " + ", ".join(untouched)
    return Part("steps", points, maximum, text)


def _time_part(scenario: Scenario, took: timedelta | None, weights: dict[str, int]) -> Part:
    maximum = weights["time"]
    target = timedelta(minutes=scenario.time_target_minutes)
    if took is None:
        return Part("time", 0, maximum, "no correct diagnosis, so no time to score")
    if took <= target:
        return Part("time", maximum, maximum, f"correct diagnosis after {format_duration(took)}"
                    f", within the {format_duration(target)} target")
    late = (took - target) / (2 * target)
    points = max(0.0, maximum * (1 - late))
    return Part("time", points, maximum, f"correct diagnosis after {format_duration(took)}, "
                f"over the {format_duration(target)} target (nothing at 3x)")
