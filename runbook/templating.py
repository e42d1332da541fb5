"""Render playbook templates with incident data.

Two kinds of template, two environments:
- text (announcements, instructions): values go in as they are;
- commands (remediation): every substituted value is shell-quoted, because it
  may come from an alert label or an operator's answer. A value that cannot be
  quoted safely (a control character, a NUL) is refused, not cleaned.
Both are sandboxed, and an unknown field is an error, never an empty string.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from runbook.errors import TemplateError

# The fields a template may use. Playbook validation checks templates against
# this list, so a typo is caught when the playbook loads, not at 3 a.m.
INCIDENT_FIELDS: dict[str, str] = {
    "id": "incident id",
    "title": "incident title",
    "severity": "SEV1..SEV4",
    "status": "open, resolved or closed",
    "playbook": "playbook name",
    "hosts": "list of affected host names",
    "host": "the target host (remediation commands run once per host)",
    "started_at": "when the incident was opened (UTC, ISO 8601)",
    "detected_at": "when the problem was first detected (UTC)",
    "resolved_at": "when the incident was resolved (UTC)",
    "commander": "incident commander",
    "scribe": "scribe",
    "answers": "answers given so far, by step id (answers.impact ...)",
    "alert": "labels and annotations of the alert that fired",
    "elapsed": "time since detection, e.g. 1h05m",
    "now": "the current time (UTC)",
}

_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _shell_value(value: Any) -> str:
    if value is None:
        raise TemplateError(
            "a command template uses a field that has no value yet",
            "fill it in (answer the question, set the role) before running the command",
        )
    if isinstance(value, (list, tuple)):
        return " ".join(_shell_value(item) for item in value)
    text = str(value)
    if _UNSAFE.search(text):
        raise TemplateError(
            f"refused to put {text[:40]!r} into a shell command: it holds control characters",
            "values from alerts and answers may not carry newlines or control bytes",
        )
    return shlex.quote(text)


def _text_value(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return "" if value is None else value


_text_env = SandboxedEnvironment(undefined=StrictUndefined, finalize=_text_value,
                                 keep_trailing_newline=True, autoescape=False)
_command_env = SandboxedEnvironment(undefined=StrictUndefined, finalize=_shell_value,
                                    autoescape=False)


def undeclared_fields(source: str) -> set[str]:
    """Top-level names a template reads. Raises TemplateSyntaxError."""
    return meta.find_undeclared_variables(_text_env.parse(source))


def check_template(source: str, allowed: Iterable[str] = INCIDENT_FIELDS) -> str | None:
    """A message describing what is wrong with the template, or None."""
    try:
        names = undeclared_fields(source)
    except TemplateSyntaxError as exc:
        return f"template syntax error on its line {exc.lineno}: {exc.message}"
    allowed = list(allowed)
    unknown = sorted(names - set(allowed))
    if unknown:
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown template field(s): {', '.join(unknown)}{hint}"
    return None


def render_text(source: str, context: Mapping[str, Any]) -> str:
    return _render(_text_env, source, context)


def render_command(source: str, context: Mapping[str, Any]) -> str:
    """Render a command template; every substituted value is shell-quoted."""
    return _render(_command_env, source, context)


def _render(env: SandboxedEnvironment, source: str, context: Mapping[str, Any]) -> str:
    try:
        return env.from_string(source).render(**context)
    except UndefinedError as exc:
        raise TemplateError(f"template uses a field with no value: {exc.message}") from None
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None
    except SecurityError as exc:
        raise TemplateError(f"template refused by the sandbox: {exc}") from None
