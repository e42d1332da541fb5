"""Playbooks: ordered stages of declared steps, loaded from YAML and validated
whole. A playbook that does not validate is never half-loaded: the error names
the file, the line and the field."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbook import paths
from runbook.engine.catalog import BUNDLES, BY_NAME
from runbook.errors import PlaybookError
from runbook.templating import check_template
from runbook.yamlsource import (
    FieldError,
    line_of,
    load_yaml,
    named_or_path,
    pick_by_name,
    validate,
)

STAGES: tuple[str, ...] = (
    "detect", "announce", "scope", "connectivity", "logs", "load", "remediate", "report",
)
Stage = Literal["detect", "announce", "scope", "connectivity", "logs", "load", "remediate",
                "report"]

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
_SLUG_FORM = "kebab-case: lower-case letters, digits and '-', at most 63, e.g. check-disk"

# Report sections a question's answer can fill (see the postmortem template).
REPORT_FIELDS = ("summary", "impact", "detection", "changes", "root_cause", "trigger",
                 "resolution", "lessons", "action_items")


class Severity(StrEnum):
    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"

    @classmethod
    def parse(cls, text: str) -> Severity:
        normal = text.strip().upper()
        if normal.isdigit():
            normal = f"SEV{normal}"
        return cls(normal)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _StepBase(_Strict):
    id: Slug
    title: str = Field(min_length=1)
    instructions: str = ""

    @field_validator("instructions")
    @classmethod
    def _template_ok(cls, value: str) -> str:
        _raise_on_template(value)
        return value


class ChecklistStep(_StepBase):
    """Something to do and tick off, or skip with a reason."""

    kind: Literal["checklist"]


class QuestionStep(_StepBase):
    """A question whose free-text answer is recorded (and may fill a report section)."""

    kind: Literal["question"]
    prompt: str = Field(min_length=1)
    records: Literal["summary", "impact", "detection", "changes", "root_cause", "trigger",
                     "resolution", "lessons", "went_well", "went_wrong", "lucky",
                     "action_items"] | None = None


class CollectStep(_StepBase):
    """Run collectors (by name or bundle) on the selected incident hosts."""

    kind: Literal["collect"]
    collectors: list[str] = []
    bundle: str | None = None
    hosts: str = "all"
    # Application log files for the app-logs collector, besides the inventory's.
    app_logs: list[Annotated[str, Field(pattern=r"^/[^\x00-\x1f]*$")]] = []

    @field_validator("collectors")
    @classmethod
    def _known_collectors(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in BY_NAME and n not in BUNDLES]
        if unknown:
            raise ValueError(
                f"unknown collector {unknown[0]!r}; known: {', '.join(sorted(BY_NAME))}")
        return names

    @field_validator("bundle")
    @classmethod
    def _known_bundle(cls, name: str | None) -> str | None:
        if name is not None and name not in BUNDLES:
            raise ValueError(f"unknown bundle {name!r}; known: {', '.join(sorted(BUNDLES))}")
        return name

    @model_validator(mode="after")
    def _something_to_run(self) -> CollectStep:
        if not self.collectors and not self.bundle:
            raise ValueError("a collect step needs 'collectors' or 'bundle'")
        return self


class AnnounceStep(_StepBase):
    """Tell people: a message template filled from the incident."""

    kind: Literal["announce"]
    purpose: Literal["initial", "update", "resolved"] = "update"
    template: str = Field(min_length=1)
    channel: str | None = None

    @field_validator("template")
    @classmethod
    def _template_ok(cls, value: str) -> str:  # type: ignore[override]
        _raise_on_template(value)
        return value


class RemediateStep(_StepBase):
    """A command template, reviewed and confirmed before it runs on each target."""

    kind: Literal["remediate"]
    command: str = Field(min_length=1)
    rollback: str = Field(min_length=1)
    review: bool = False
    hosts: str = "all"
    needs_root: bool = False
    timeout: float = Field(default=300, gt=0, le=86400)
    # If runbook's connection to a host drops while the command runs (the
    # operator's process killed, the bastion rebooted), the host's runner stops
    # it, as it stops collectors: a half-run remediation is a second incident.
    # A command that must finish whatever happens to the operator (a long
    # migration under nohup's care) says so here; the journal then records that
    # it may still be running.
    survives_disconnect: bool = False

    @field_validator("command")
    @classmethod
    def _command_ok(cls, value: str) -> str:
        _raise_on_template(value)
        return value


class ReportStep(_StepBase):
    """Write the postmortem: done when it is written from the app (p, then w)."""

    kind: Literal["report"]


class NoteStep(_StepBase):
    """Guidance to read; nothing to record but that it was read."""

    kind: Literal["note"]


Step = Annotated[
    ChecklistStep | QuestionStep | CollectStep | AnnounceStep | RemediateStep | ReportStep
    | NoteStep,
    Field(discriminator="kind"),
]


STEP_KINDS = ("checklist", "question", "collect", "announce", "remediate", "report", "note")


class Playbook(_Strict):
    name: Slug
    title: str = Field(min_length=1)
    description: str = ""
    severity: Severity = Severity.SEV3
    tags: list[str] = []
    stages: dict[Stage, list[Step]]

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if isinstance(value, (str, int)):
            try:
                return Severity.parse(str(value))
            except ValueError:
                raise ValueError(f"{value!r} is not a severity; expected SEV1..SEV4") from None
        return value

    @field_validator("stages")
    @classmethod
    def _stage_rules(cls, stages: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not stages:
            raise ValueError("a playbook needs at least one stage")
        for before, after in pairwise(stages):
            if STAGES.index(after) < STAGES.index(before):
                raise FieldError(f"stage '{after}' comes after '{before}'", at=(after,),
                                 expected=f"the stage order {' -> '.join(STAGES)}")
        seen: dict[str, str] = {}
        for stage, steps in stages.items():
            for index, step in enumerate(steps):
                if step.id in seen:
                    raise FieldError(f"step id '{step.id}' is already used in {seen[step.id]}",
                                     at=(stage, index, "id"),
                                     expected="a step id unique in the playbook")
                seen[step.id] = f"stage {stage}"
        return stages

    def steps(self) -> Iterator[tuple[str, Any]]:
        for stage, steps in self.stages.items():
            for step in steps:
                yield stage, step

    def step(self, step_id: str) -> Any | None:
        return next((s for _, s in self.steps() if s.id == step_id), None)


def _raise_on_template(source: str) -> None:
    problem = check_template(source)
    if problem:
        raise ValueError(problem)


@dataclass(frozen=True)
class LoadedPlaybook:
    playbook: Playbook
    path: Path
    sha256: str
    bundled: bool


def load_playbook(path: Path) -> LoadedPlaybook:
    """Load and validate one playbook file; raises PlaybookError."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PlaybookError(path, None, None, "file not found") from None
    except OSError as exc:
        raise PlaybookError(path, None, None, f"cannot read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise PlaybookError(path, line, None, f"not UTF-8 text ({exc.reason})",
                            "a UTF-8 text file") from None
    document = load_yaml(path, PlaybookError, text=text)
    if document is None:
        raise PlaybookError(path, 1, None, "the file is empty (or holds only comments)",
                            "a YAML mapping with keys name, title, stages")
    if not isinstance(document, dict):
        raise PlaybookError(path, line_of(document, ()) or 1, None,
                            "a playbook is a YAML mapping", "keys name, title, stages")
    playbook = validate(Playbook, document, path, PlaybookError,
                        expected={"kind": f"one of {', '.join(STEP_KINDS)}",
                                  "id": _SLUG_FORM, "name": _SLUG_FORM})
    return LoadedPlaybook(playbook, path, hashlib.sha256(raw).hexdigest(),
                          bundled=_is_bundled(path))


def bundled_dir() -> Path:
    """The playbooks shipped with the package (the repo's playbooks/ in a checkout)."""
    import runbook

    installed = Path(runbook.__file__).parent / "playbooks"
    if installed.is_dir():
        return installed
    return Path(runbook.__file__).parent.parent / "playbooks"


def _is_bundled(path: Path) -> bool:
    try:
        return path.resolve().parent == bundled_dir().resolve()
    except OSError:
        return False


def playbook_files() -> list[Path]:
    """Bundled playbooks first, then the operator's own (which may override by name)."""
    files = sorted(bundled_dir().glob("*.yaml"))
    user = paths.user_playbooks_dir()
    if user.is_dir():
        files += sorted(user.glob("*.yaml")) + sorted(user.glob("*.yml"))
    return files


@dataclass(frozen=True)
class Catalog:
    playbooks: dict[str, LoadedPlaybook]
    errors: list[PlaybookError]


def load_all() -> Catalog:
    """Every playbook that validates, by name, and the errors of those that do not."""
    found: dict[str, LoadedPlaybook] = {}
    errors: list[PlaybookError] = []
    for path in playbook_files():
        try:
            loaded = load_playbook(path)
        except PlaybookError as exc:
            errors.append(exc)
            continue
        found[loaded.playbook.name] = loaded
    return Catalog(found, errors)


def find_playbook(name_or_path: str) -> LoadedPlaybook:
    """A playbook by name, or by path when given one."""
    path = named_or_path(name_or_path)
    if path is not None:
        return load_playbook(path)
    catalog = load_all()
    found = pick_by_name(name_or_path, catalog.playbooks, catalog.errors)
    if found is not None:
        return found
    import difflib

    close = difflib.get_close_matches(name_or_path, list(catalog.playbooks), n=3)
    known = ", ".join(sorted(catalog.playbooks)) or "none"
    raise PlaybookError(name_or_path, None, None, "no such playbook",
                        f"one of: {', '.join(close) if close else known}")
