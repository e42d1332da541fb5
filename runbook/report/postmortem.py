"""The postmortem, written from the journal alone.

The built-in layout is a Jinja2 template in the package (templates/
postmortem.md.j2); an operator's own template may replace it. Both run in a
sandbox and see only plain, already-redacted data (runbook/report/facts.py):
a template cannot reach the journal, the evidence files or unredacted text.
Empty sections say TODO instead of inventing text.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2 import (
    TemplateError as JinjaError,
)
from jinja2.sandbox import SandboxedEnvironment

from runbook import paths
from runbook.errors import RunbookError, TemplateError
from runbook.incident import IncidentState
from runbook.report import facts
from runbook.report.labels import LABELS
from runbook.report.markdown import FILTERS, anchor
from runbook.report.redact import Redactor, redact_secrets, redactor

TEMPLATE = "postmortem.md.j2"


def known_hosts(state: IncidentState) -> list[str]:
    """Every name and address the incident uses for a host, in the order the
    placeholders are numbered (the incident's own hosts first)."""
    names: list[str] = []
    for host in state.hosts:
        names += [host.name, host.address, host.jump or ""]
    for command in state.commands.values():
        names += command.hosts
    names += [str(run.get("host") or "") for run in state.evidence]
    return [n for n in dict.fromkeys(names) if n]


def default_redactor(state: IncidentState, *, secrets: bool = True,
                     hosts: bool = False) -> Redactor:
    return redactor(secrets=secrets, hosts=hosts, known_hosts=known_hosts(state))


def incident_directory(state: IncidentState) -> Path:
    return paths.incidents_dir() / state.id


def render(state: IncidentState, template: Path | None = None, *, lang: str = "en",
           redaction: Redactor | None = None, incident_dir: Path | None = None,
           link_base: Path | None = None, now: datetime | None = None,
           tz: tzinfo | None = None) -> str:
    """The postmortem as GitHub-flavoured Markdown, redacted (secrets by default).

    `link_base` is the directory the report will be written to, so its evidence
    links resolve from there; without it they are relative to the incident
    directory (where the TUI writes postmortem.md).
    """
    if lang not in LABELS:
        raise RunbookError(f"no postmortem language {lang!r}", f"one of {', '.join(LABELS)}")
    redaction = redaction or default_redactor(state)
    model = facts.build(state, incident_dir=incident_dir or incident_directory(state),
                        redactor=redaction, link_base=link_base, now=now, tz=tz)
    text = render_model(model, lang, template)
    if template is not None and redaction.secrets:
        # Belt and braces: a custom template may assemble a secret from pieces.
        text = redact_secrets(text, redaction.extra)
    return text


def render_model(model: dict[str, Any], lang: str, template: Path | None = None) -> str:
    env = _environment(template)
    name = template.name if template is not None else TEMPLATE
    try:
        compiled = env.get_template(name)
        return compiled.render(**model, t=LABELS[lang], lang=lang)
    except TemplateNotFound as exc:
        raise TemplateError(f"template not found: {exc.name}",
                            "give a readable file to --template") from None
    except TemplateSyntaxError as exc:
        where = f"{exc.filename or name}:{exc.lineno}"
        raise TemplateError(f"{where}: template syntax: {exc.message}") from None
    except JinjaError as exc:
        where = f"{name}:{_template_line(exc.__traceback__) or '?'}"
        raise TemplateError(f"{where}: {exc}", "templates see the fields listed in "
                            "docs/report.md, and nothing else (sandboxed)") from None


def _environment(template: Path | None) -> SandboxedEnvironment:
    if template is None:
        return _builtin_environment()
    return _make_environment(template)


@functools.cache
def _builtin_environment() -> SandboxedEnvironment:
    """Kept for the process: compiling the built-in template costs ~80 ms."""
    return _make_environment(None)


def _make_environment(template: Path | None) -> SandboxedEnvironment:
    loaders: list[Any] = [PackageLoader("runbook.report", "templates")]
    if template is not None:
        if not template.is_file():
            raise TemplateError(f"template not found: {template}",
                                "give a readable file to --template")
        loaders.insert(0, FileSystemLoader(str(template.resolve().parent)))
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                               keep_trailing_newline=True, trim_blocks=True,
                               lstrip_blocks=True, autoescape=False)
    env.filters.update(FILTERS)
    env.globals.update(utc=_utc, local=_local, when=_when, anchor=anchor)
    return env


def _utc(moment: dict[str, str] | None) -> str:
    return moment["utc"] if moment else "—"


def _local(moment: dict[str, str] | None) -> str:
    return moment["local"] if moment else "—"


def _when(moment: dict[str, str] | None) -> str:
    if not moment:
        return "—"
    # The local time only where it is another time: in UTC it would repeat it.
    same = moment["local"].startswith(moment["utc"].removesuffix("Z") + " ")
    return moment["utc"] if same else f"{moment['utc']} ({moment['local']})"


def _template_line(trace: TracebackType | None) -> int | None:
    """The template line a render error happened on (Jinja rewrites its frames)."""
    line = None
    while trace is not None:
        filename = trace.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def languages() -> Iterable[str]:
    return LABELS.keys()
