"""Playbooks: list, show and validate."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from runbook.cli import console
from runbook.cli.root import (
    _print_error,
    _print_json,
    cli,
    json_option,
    out,
)
from runbook.errors import PlaybookError
from runbook.playbook import find_playbook, load_all, load_playbook


@cli.group()
def playbook() -> None:
    """List, show and validate playbooks."""


@playbook.command("list")
@json_option
def playbook_list(as_json_output: bool) -> None:
    """List bundled and user playbooks (and any that fail to load)."""
    catalog = load_all()
    books = sorted(catalog.playbooks.values(), key=lambda b: b.playbook.name)
    if as_json_output:
        _print_json({
            "playbooks": [{"name": b.playbook.name, "title": b.playbook.title,
                           "severity": str(b.playbook.severity),
                           "stages": list(b.playbook.stages), "path": str(b.path),
                           "bundled": b.bundled} for b in books],
            "errors": [e.as_dict() for e in catalog.errors],
        })
        return
    out.print(console.playbook_list(books))
    for error in catalog.errors:
        _print_error(error)


@playbook.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@json_option
def playbook_validate(files: tuple[Path, ...], as_json_output: bool) -> None:
    """Validate playbook files; exit 1 if any is invalid."""
    results: list[dict[str, Any]] = []
    for path in files:
        try:
            loaded = load_playbook(path)
        except PlaybookError as exc:
            results.append({"file": str(path), "ok": False, "error": exc.as_dict(),
                            "message": str(exc)})
            if not as_json_output:
                _print_error(exc)
            continue
        results.append({"file": str(path), "ok": True, "name": loaded.playbook.name})
        if not as_json_output:
            out.print(f"[green]OK[/] {loaded.playbook.name} ({path})")
    if as_json_output:
        _print_json(results)
    if not all(r["ok"] for r in results):
        sys.exit(1)


@playbook.command("show")
@click.argument("name")
@json_option
def playbook_show(name: str, as_json_output: bool) -> None:
    """Show a playbook's stages and steps."""
    loaded = find_playbook(name)
    if as_json_output:
        _print_json(loaded.playbook.model_dump(mode="json"))
        return
    book = loaded.playbook
    out.print(f"[bold]{book.name}[/]: {book.title} ({book.severity})\n{book.description}")
    for stage, steps in book.stages.items():
        out.print(f"\n[bold underline]{stage}[/]")
        for step in steps:
            out.print(f"  {step.id:<28} [dim]{step.kind:<10}[/] {step.title}")
