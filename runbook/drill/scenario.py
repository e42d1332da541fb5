"""Drill scenarios: YAML files that say what fires, what is broken on the lab,
what the right diagnosis is and which evidence proves it.

Bundled scenarios live in runbook/drill/scenarios/; a team adds its own in
`config_dir()/drills/`. A scenario that does not validate is never half-loaded:
the error names the file, the line and the field, like a playbook's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbook import paths
from runbook.errors import SourceError
from runbook.yamlsource import FieldError, load_yaml, named_or_path, pick_by_name, validate

BUNDLED_DIR = Path(__file__).with_name("scenarios")
LEVELS = ("info", "warning", "critical")
FAULT_KINDS = ("disk_full", "memory_pressure", "cpu_saturation", "process_down",
               "port_closed", "host_unreachable")
Slug = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
HostName = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")


class ScenarioError(SourceError):
    """A scenario file that does not validate (file, line, field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alert(_Strict):
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LabHostSpec(_Strict):
    name: str = HostName
    role: str | None = None
    tags: list[str] = Field(default_factory=list)


class LabSpec(_Strict):
    count: int = Field(default=1, ge=1, le=4)
    hosts: list[LabHostSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names(self) -> LabSpec:
        if len(self.hosts) > self.count:
            raise FieldError(f"{len(self.hosts)} hosts named but count is {self.count}",
                             ("count",))
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise FieldError("host names must be unique", ("hosts",))
        return self

    def host_specs(self) -> list[LabHostSpec]:
        named = list(self.hosts)
        taken = {h.name for h in named}
        index = 1
        while len(named) < self.count:
            candidate = f"lab{index}"
            index += 1
            if candidate not in taken:
                named.append(LabHostSpec(name=candidate))
        return named


class Fault(_Strict):
    kind: Literal["disk_full", "memory_pressure", "cpu_saturation", "process_down",
                  "port_closed", "host_unreachable"]
    host: str | None = Field(default=None, description="lab host; default: the first")
    params: dict[str, Any] = Field(default_factory=dict)
    undo: str = Field(min_length=1, description="what `drill stop` puts back, in words")
    # Where a fault cannot be fully real here, the scenario says what it does instead.
    simulated: str | None = None


class Cause(_Strict):
    id: str = Slug
    text: str = Field(min_length=1)
    accept: list[str] = Field(default_factory=list)
    # What else a typed diagnosis must name besides the cause, group by group
    # (`host: ["{host}"]`, `resource: [/srv/data, srv data]`): one phrase of each.
    # `{host}` is the lab host the fault is on. A keyword alone is not a diagnosis.
    must_name: dict[str, list[str]] = Field(default_factory=dict)


class Revealing(_Strict):
    """Evidence that proves the cause: a finding (collector + resource + level),
    or a collector's status (an unreachable handshake)."""

    collector: str | list[str]
    resource: str | None = None  # an fnmatch pattern: disk:/srv/*, port:*, memory
    level: Literal["info", "warning", "critical"] = "warning"
    status: str | None = None
    why: str = ""

    @model_validator(mode="after")
    def _something(self) -> Revealing:
        if self.resource is None and self.status is None:
            raise FieldError("a revealing finding needs a resource or a status", ("resource",))
        return self

    @property
    def collectors(self) -> list[str]:
        return [self.collector] if isinstance(self.collector, str) else list(self.collector)

    def label(self) -> str:
        what = self.resource or f"status {self.status}"
        return f"{what} from {'/'.join(self.collectors)}"

    def matches_run(self, run: dict[str, Any]) -> bool:
        """Does one `collector.ran` event's data show this evidence?"""
        if run.get("collector") not in self.collectors:
            return False
        if self.status is not None and self.resource is None:
            return str(run.get("status")) == self.status
        floor = LEVELS.index(self.level)
        for found in run.get("findings") or []:
            level = str(found.get("level"))
            if level in LEVELS and LEVELS.index(level) >= floor and fnmatchcase(
                    str(found.get("resource", "")), self.resource or ""):
                return True
        return False


class Fix(_Strict):
    """What a correct remediation is: one of the playbook's remediate steps, run
    cleanly on the faulty host, its command naming what must be named (`{host}`
    and the fault's params, such as `{program}`, are filled in), and reviewed by
    a second person when `review` says so."""

    steps: list[str] = Field(min_length=1)
    must_name: list[str] = Field(default_factory=list)
    review: bool = True


class Scenario(_Strict):
    name: str = Slug
    title: str = Field(min_length=1)
    briefing: str = Field(min_length=1)
    alert: Alert
    playbook: str = Field(min_length=1)
    severity: str = "SEV3"
    lab: LabSpec = Field(default_factory=LabSpec)
    fault: Fault
    root_cause: Cause
    # Other causes offered when the trainee picks from a list.
    distractors: list[Cause] = Field(default_factory=list)
    revealing: list[Revealing] = Field(min_length=1)
    expected_steps: list[str] = Field(min_length=1)
    # The question step whose answer is read as the diagnosis (the report stage's).
    diagnosis_step: str = "root-cause"
    time_target_minutes: float = Field(gt=0, le=240)
    # The fix, when the playbook has a step that makes it; without one the
    # remediation is not scored (and the score says so).
    remediation: Fix | None = None

    @field_validator("expected_steps")
    @classmethod
    def _unique(cls, steps: list[str]) -> list[str]:
        if len(set(steps)) != len(steps):
            raise ValueError("expected_steps names a step twice")
        return steps

    @model_validator(mode="after")
    def _fault_host(self) -> Scenario:
        names = [h.name for h in self.lab.host_specs()]
        if self.fault.host is not None and self.fault.host not in names:
            raise FieldError(f"fault host {self.fault.host!r} is not a lab host "
                             f"({', '.join(names)})", ("fault", "host"))
        ids = [self.root_cause.id, *(d.id for d in self.distractors)]
        if len(set(ids)) != len(ids):
            raise FieldError("cause ids must be unique", ("distractors",))
        return self

    @property
    def fault_host(self) -> str:
        return self.fault.host or self.lab.host_specs()[0].name

    def choices(self) -> list[Cause]:
        """Every cause offered, in a stable order (sorted by id)."""
        return sorted([self.root_cause, *self.distractors], key=lambda c: c.id)


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: Path
    bundled: bool


@dataclass
class ScenarioCatalog:
    scenarios: dict[str, LoadedScenario] = field(default_factory=dict)
    errors: list[ScenarioError] = field(default_factory=list)


def team_dir() -> Path:
    return paths.config_dir() / "drills"


def load_scenario(path: Path, bundled: bool = False) -> LoadedScenario:
    document = load_yaml(path, ScenarioError)
    if isinstance(document, dict) and "name" not in document:
        document["name"] = path.stem
    scenario = validate(Scenario, document, path, ScenarioError)
    _check_playbook(scenario, path, document)
    return LoadedScenario(scenario, path, bundled)


def _check_playbook(scenario: Scenario, path: Path, document: Any) -> None:
    """The playbook must exist and hold the steps the scenario expects."""
    from runbook.errors import PlaybookError
    from runbook.playbook import find_playbook
    from runbook.yamlsource import line_of

    try:
        book = find_playbook(scenario.playbook).playbook
    except PlaybookError:
        raise ScenarioError(path, line_of(document, ("playbook",)), "playbook",
                            f"no playbook {scenario.playbook!r}",
                            "a bundled playbook name or a team playbook") from None
    steps = {step.id: step for _, step in book.steps()}
    for index, step_id in enumerate(scenario.expected_steps):
        if step_id not in steps:
            raise ScenarioError(path, line_of(document, ("expected_steps", index)),
                                f"expected_steps[{index}]",
                                f"playbook {book.name} has no step {step_id!r}",
                                ", ".join(steps))
    for index, step_id in enumerate(scenario.remediation.steps if scenario.remediation else []):
        if getattr(steps.get(step_id), "kind", None) != "remediate":
            raise ScenarioError(path, line_of(document, ("remediation", "steps", index)),
                                f"remediation.steps[{index}]",
                                f"{step_id!r} is not a remediate step of {book.name}",
                                ", ".join(i for i, s in steps.items() if s.kind == "remediate")
                                or "the playbook has none")
    diagnosis = steps.get(scenario.diagnosis_step)
    if diagnosis is None or diagnosis.kind != "question":
        raise ScenarioError(path, line_of(document, ("diagnosis_step",)), "diagnosis_step",
                            f"{scenario.diagnosis_step!r} is not a question step of "
                            f"{book.name}")


def load_catalog() -> ScenarioCatalog:
    """Bundled scenarios, then the team's: a team file of the same name wins."""
    catalog = ScenarioCatalog()
    for directory, bundled in ((BUNDLED_DIR, True), (team_dir(), False)):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.y*ml")):
            try:
                loaded = load_scenario(path, bundled)
            except ScenarioError as exc:
                catalog.errors.append(exc)
                continue
            catalog.scenarios[loaded.scenario.name] = loaded
    return catalog


def find_scenario(name: str) -> LoadedScenario:
    path = named_or_path(name)
    if path is not None:
        return load_scenario(path)
    catalog = load_catalog()
    found = pick_by_name(name, catalog.scenarios, catalog.errors)
    if found is not None:
        return found
    known = ", ".join(sorted(catalog.scenarios)) or "none"
    raise ScenarioError(name, None, None, "no such drill scenario", f"one of: {known}")


WORD = re.compile(r"[a-z0-9]+")


def normalise(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def diagnosis_matches(scenario: Scenario, text: str,
                      fault_host: str | None = None) -> tuple[bool, str]:
    """Is a stated cause the expected one? A cause id from the list, or typed
    text that names the cause (an accepted phrase) and everything the scenario
    says it must also name (`must_name`: the host, the resource). Returns
    (matched, why)."""
    typed = text.strip()
    if not typed:
        return False, "no diagnosis given"
    ids = {c.id: c for c in scenario.choices()}
    if typed in ids:
        if typed == scenario.root_cause.id:
            return True, f"chose {typed!r}, the expected cause"
        return False, f"chose {typed!r} ({ids[typed].text}); expected {scenario.root_cause.id!r}"
    said = f" {normalise(typed)} "

    def names(phrase: str) -> bool:
        wanted = normalise(phrase.replace("{host}", fault_host or "{host}"))
        return bool(wanted) and f" {wanted} " in said

    cause = next((p for p in scenario.root_cause.accept if names(p)), None)
    if cause is not None:
        missing = [group for group, phrases in scenario.root_cause.must_name.items()
                   if not any(names(p) for p in phrases)]
        if not missing:
            return True, f"typed text names the cause ({cause!r}) and " + (
                ", ".join(scenario.root_cause.must_name) or "nothing more was needed")
        shown = "; ".join(f"{g}: one of " + ", ".join(
            repr(p.replace("{host}", fault_host or "the faulty host"))
            for p in scenario.root_cause.must_name[g]) for g in missing)
        return False, (f"typed text names the cause ({cause!r}) but not the "
                       f"{' or the '.join(missing)} ({shown})")
    for other in scenario.distractors:
        for phrase in other.accept:
            if normalise(phrase) and f" {normalise(phrase)} " in said:
                return False, (f"typed text names another cause ({other.id}: "
                               f"{phrase!r}); expected {scenario.root_cause.id!r}")
    return False, (f"typed text contains none of the accepted phrases for "
                   f"{scenario.root_cause.id!r}")
