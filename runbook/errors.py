"""Errors a user can cause. Each carries a plain message and a hint; the CLI and
TUI show them as they are, and never as a traceback."""

from __future__ import annotations

from pathlib import Path


class RunbookError(Exception):
    """Something the operator can fix: bad input, a missing incident, a refused host."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class SourceError(RunbookError):
    """A problem at a place in a file the operator wrote: file, line and field."""

    def __init__(
        self,
        file: Path | str,
        line: int | None,
        field: str | None,
        problem: str,
        expected: str | None = None,
    ) -> None:
        self.file = str(file)
        self.line = line
        self.field = field
        self.problem = problem
        self.expected = expected
        where = self.file if line is None else f"{self.file}:{line}"
        text = f"{where}: {field}: {problem}" if field else f"{where}: {problem}"
        super().__init__(text, f"expected {expected}" if expected else None)

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "problem": self.problem,
            "expected": self.expected,
        }


class PlaybookError(SourceError):
    """A playbook that does not validate. The playbook is never half-loaded."""


class InventoryError(SourceError):
    """An inventory file (runbook YAML, Ansible INI/YAML, ssh_config) that cannot be read."""


class HostSelectionError(RunbookError):
    """A host selector that matches nothing, or names a host that cannot be a target."""


class TemplateError(RunbookError):
    """A template that cannot be rendered, or a value refused for a shell command."""


class IncidentNotFound(RunbookError):
    """No incident matches the id (or the id prefix is ambiguous)."""


class JournalError(RunbookError):
    """The journal cannot be written: the incident is locked, closed, or the disk refused."""
