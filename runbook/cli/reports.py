"""Postmortem and archive (runbook/report/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from runbook.cli import console
from runbook.cli.root import (
    Context,
    _print_json,
    _warn,
    cli,
    json_option,
    out,
    pass_context,
)
from runbook.errors import RunbookError
from runbook.safe_output import echo


@cli.command()
@click.argument("incident_id")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to FILE (evidence links then resolve from FILE's folder). "
                   "Default: standard output.")
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True,
              help="Headings and labels: English, or Japanese (障害報告書).")
@click.option("--template", type=click.Path(path_type=Path, dir_okay=False),
              help="Your own Jinja2 template instead of the built-in one (sandboxed; the "
                   "fields are in docs/report.md).")
@click.option("--redact-hosts", is_flag=True,
              help="Also replace host names, IPs and MACs with placeholders (host-1, "
                   "10.0.0.x-1, mac-1), consistently, for sharing outside the company.")
@click.option("--no-redact", is_flag=True,
              help="Do not mask passwords, tokens and keys (prints a warning).")
@json_option
@pass_context
def report(context: Context, incident_id: str, output: Path | None, lang: str,
           template: Path | None, redact_hosts: bool, no_redact: bool,
           as_json_output: bool) -> None:
    """Write the postmortem as Markdown, or export the whole incident with --json.

    Both are written from the journal and redacted by default (secrets always,
    hosts with --redact-hosts); the evidence on disk is never changed.
    """
    from runbook.report.export import incident_export
    from runbook.report.postmortem import default_redactor, render

    if as_json_output and template is not None:
        raise RunbookError("--template shapes the Markdown postmortem, not the JSON export",
                           "drop --json or --template")
    incident = context.incident(incident_id)
    state = incident.state()
    if no_redact:
        _warn(["--no-redact: passwords, tokens and keys in commands, answers and output "
               "are NOT masked in this export; do not share it"])
    redaction = default_redactor(state, secrets=not no_redact, hosts=redact_hosts)
    directory = context.store.directory(incident.id)
    if as_json_output:
        text = json.dumps(incident_export(state, redaction=redaction, incident_dir=directory),
                          indent=2, ensure_ascii=False, default=str) + "\n"
    else:
        text = render(state, template, lang=lang, redaction=redaction, incident_dir=directory,
                      link_base=output.resolve().parent if output else None)
    if output is None:
        echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RunbookError(f"cannot write {output}: {exc.strerror}") from None
    console.error_console().print(f"written: {output}", markup=False, highlight=False)


@cli.group()
def history() -> None:
    """Search past incidents (the archive of closed ones, rebuilt from the journals)."""


@history.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 500),
              help="Show at most this many incidents.")
@json_option
def history_search(words: tuple[str, ...], limit: int, as_json_output: bool) -> None:
    """Find closed incidents by words in their title, hosts, findings, answers, notes,
    commands or postmortem, best match first, with what fixed them.

    Every word must match; `a OR b` matches either, `"two words"` a phrase, `word*`
    a prefix.
    """
    from runbook.report import archive

    with archive.opened() as index:
        hits = index.search(" ".join(words), limit)
        total = index.count()
    if as_json_output:
        _print_json([h.as_dict() for h in hits])
        return
    if not hits:
        hint = " (the archive is empty: runbook history reindex)" if total == 0 else ""
        out.print(f"No past incident matches, among {total} archived{hint}.")
        return
    for hit in hits:
        out.print(f"[bold]{escape(hit.id)}[/]  {escape(hit.severity)}  closed "
                  f"{escape(hit.closed_at or '-')}  {escape(hit.title)}")
        snippet = escape(" ".join(hit.snippet.split()))
        out.print("  " + snippet.replace(archive.MARK_START, "[bold yellow]").replace(
            archive.MARK_END, "[/]"))
        for command, hosts in archive.what_worked(hit.remediation):
            out.print(f"  [green]worked:[/] {escape(command)}  [dim](exit 0 on "
                      f"{escape(', '.join(hosts))})[/]")


@history.command("show")
@click.argument("incident_id")
@click.option("--postmortem", is_flag=True, help="Print the archived postmortem (Markdown).")
@json_option
def history_show(incident_id: str, postmortem: bool, as_json_output: bool) -> None:
    """Show one archived incident: hosts, findings, answers and what worked."""
    from runbook.report import archive

    with archive.opened() as index:
        record = index.get(incident_id)
    if as_json_output:
        _print_json(record)
        return
    if postmortem:
        echo(record["postmortem"], nl=not record["postmortem"].endswith("\n"))
        return
    out.print(f"[bold]{escape(record['id'])}[/]: {escape(record['title'])} "
              f"({escape(record['severity'])}, playbook {escape(record['playbook'])})")
    out.print(f"opened {escape(record['opened_at'] or '-')}, resolved "
              f"{escape(record['resolved_at'] or '-')}, "
              f"closed {escape(record['closed_at'] or '-')}")
    out.print(f"hosts: {escape(', '.join(record['hosts']) or '-')}; roles: "
              f"{escape(', '.join(record['roles']) or '-')}")
    sections = [("findings", record["findings"]),
                ("answers", [f"{k}: {v}" for k, v in record["answers"].items()]),
                ("worked", [f"{c}  (exit 0 on {', '.join(h)})"
                            for c, h in archive.what_worked(record["remediation"])])]
    for title, lines in sections:
        if lines:
            out.print(f"\n[bold underline]{title}[/]")
            for line in lines:
                out.print("  " + escape(" ".join(str(line).split())))
    out.print(f"\n[dim]the postmortem: runbook history show {escape(record['id'])} "
              "--postmortem[/]")


@history.command("reindex")
@json_option
@pass_context
def history_reindex(context: Context, as_json_output: bool) -> None:
    """Rebuild the archive from the journals of every closed incident."""
    from runbook.report import archive

    result = archive.reindex(context.store)
    if as_json_output:
        _print_json({"indexed": result.indexed, "skipped_not_closed": result.skipped,
                     "failed": result.failed, "archive": str(archive.archive_path())})
    else:
        out.print(f"indexed {len(result.indexed)} closed incident(s); "
                  f"{len(result.skipped)} not closed; {len(result.failed)} failed"
                  + (" (details in the log: $RUNBOOK_HOME/logs/runbook.log)"
                     if result.failed else ""))
    if result.failed:
        sys.exit(1)
