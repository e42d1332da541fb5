"""Rules that turn an Alertmanager alert into an incident: which playbook, which
hosts, what severity. Read from `config_dir()/alerts.yaml`:

    rules:
      - match: {alertname: NodeSupervisordDown}     # label equals value
        match_re: {instance: 'web-\\d+(:\\d+)?'}     # label matches regex (whole value)
        playbook: process-down
        hosts: ["{{ labels.node }}"]                # templates; default ["{{ host }}"]
        severity: SEV2
        title: "{{ labels.alertname }} on {{ host }}"   # optional

Each `hosts` template renders to exactly one host name: a value that is not a
whole host name (spaces, `;`, `$(...)`) is refused, never split or quoted. An
empty result (a label the alert lacks) is skipped.

The first rule whose every condition holds wins; no rule (or no file) means
the `generic-host` playbook and the host named by the alert's `instance`
(port stripped), `host` or `hostname` label. Errors name the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from runbook import paths
from runbook.errors import SourceError
from runbook.playbook import Severity
from runbook.templating import check_template
from runbook.yamlsource import FieldError, line_of, load_yaml, validate

DEFAULT_PLAYBOOK = "generic-host"
TEMPLATE_FIELDS = ("labels", "annotations", "host", "alertname", "status", "group_key")


class AlertRulesError(SourceError):
    """alerts.yaml does not validate."""


class AlertRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    playbook: str = DEFAULT_PLAYBOOK
    hosts: list[str] = Field(default_factory=lambda: ["{{ host }}"])
    severity: str | None = None
    title: str | None = None

    @field_validator("match_re")
    @classmethod
    def _regexes_compile(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise FieldError(f"not a regular expression: {exc}", (label,),
                                 "a Python regular expression") from None
        return value

    @field_validator("severity")
    @classmethod
    def _severity(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(Severity.parse(value))
        except ValueError:
            raise FieldError(f"{value!r} is not a severity", (), "SEV1..SEV4") from None

    @field_validator("hosts", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("hosts")
    @classmethod
    def _host_templates(cls, value: list[str]) -> list[str]:
        for index, template in enumerate(value):
            _check(template, (index,))
        return value

    @field_validator("title")
    @classmethod
    def _title_template(cls, value: str | None) -> str | None:
        if value:
            _check(value, ())
        return value

    def applies(self, labels: dict[str, str]) -> bool:
        return (all(labels.get(k) == v for k, v in self.match.items())
                and all(re.fullmatch(p, labels.get(k, "")) for k, p in self.match_re.items()))


def _check(template: str, at: tuple[int, ...]) -> None:
    problem = check_template(template, TEMPLATE_FIELDS)
    if problem:
        raise FieldError(problem, at, f"a template using {', '.join(TEMPLATE_FIELDS)}")


class AlertRulesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[AlertRule] = Field(default_factory=list)


@dataclass(frozen=True)
class AlertRules:
    rules: tuple[AlertRule, ...] = ()
    source: str | None = None

    def pick(self, labels: dict[str, str]) -> AlertRule:
        return next((r for r in self.rules if r.applies(labels)), AlertRule())


def rules_path() -> Path:
    return paths.config_dir() / "alerts.yaml"


def load_rules(path: Path | None = None) -> AlertRules:
    """The rules in `path` (default alerts.yaml in the config dir); none if it is absent.
    Each rule's playbook must exist: checked now, not when an alert arrives."""
    from runbook.playbook import find_playbook

    target = path or rules_path()
    if path is None and not target.exists():
        return AlertRules()
    document: Any = load_yaml(target, AlertRulesError) or {}
    loaded = validate(AlertRulesFile, document, target, AlertRulesError)
    for index, rule in enumerate(loaded.rules):
        try:
            find_playbook(rule.playbook)
        except SourceError as exc:
            raise AlertRulesError(target, line_of(document, ("rules", index, "playbook")),
                                  f"rules[{index}].playbook", exc.message,
                                  exc.hint.removeprefix("expected ") if exc.hint else None) \
                from None
    return AlertRules(tuple(loaded.rules), str(target))
