"""The `runbook` group and what every command shares: the context, the
options used by many commands, the consoles, and turning failures into a
message and an exit status. The commands themselves live in the modules beside
this one and register on `cli` when `runbook.cli` imports them."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.text import Text

from runbook import __version__
from runbook.bugs import report_bug
from runbook.cli import console
from runbook.connect_settings import DEFAULT_CONNECT_TIMEOUT, ConnectSettings
from runbook.errors import RunbookError, SourceError
from runbook.incident.store import Incident, IncidentStore, default_actor
from runbook.safe_output import SafeConsole, echo, json_text

out = SafeConsole(highlight=False, soft_wrap=False)
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 70

inventory_option = click.option(
    "--inventory", "-i", "inventories", multiple=True, type=click.Path(path_type=Path),
    help="Inventory file: runbook YAML, Ansible INI/YAML. Repeatable. "
         "Default: the config dir's inventory.yaml, plus ~/.ssh/config aliases.")


def connect_options(parallel: tuple[int, int, str] | None = None):  # noqa: ANN201
    """--accept-new, --known-hosts, --connect-timeout and --inventory, the same
    wherever runbook connects to hosts, handed to the command as one
    `connect: ConnectSettings`. `parallel=(default, max, what)` adds --parallel."""

    def decorate(command):  # noqa: ANN001, ANN202
        @functools.wraps(command)
        def with_settings(*args: Any, **kwargs: Any) -> Any:
            kwargs["connect"] = ConnectSettings(
                inventories=kwargs.pop("inventories"), known_hosts=kwargs.pop("known_hosts"),
                accept_new=kwargs.pop("accept_new"),
                connect_timeout=kwargs.pop("connect_timeout"))
            return command(*args, **kwargs)

        options = [
            click.option("--accept-new", is_flag=True,
                         help="Record unknown host keys (OpenSSH accept-new). Changed keys "
                              "are always refused."),
            click.option("--known-hosts", "known_hosts", multiple=True,
                         type=click.Path(path_type=Path),
                         help="known_hosts file(s) to check keys against (default: "
                              "~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts); new keys are "
                              "written to the first."),
            click.option("--connect-timeout", default=DEFAULT_CONNECT_TIMEOUT,
                         show_default=True, type=float,
                         help="Seconds to connect and authenticate, per host."),
            inventory_option,
        ]
        if parallel is not None:
            default, most, what = parallel
            options.insert(2, click.option("--parallel", default=default, show_default=True,
                                           type=click.IntRange(1, most),
                                           help=f"Hosts {what} at once."))
        decorated = with_settings
        for option in reversed(options):
            decorated = option(decorated)
        return decorated

    return decorate


json_option = click.option("--json", "as_json_output", is_flag=True,
                           help="Print machine-readable JSON instead of tables.")


class Context:
    def __init__(self, actor: str | None) -> None:
        self.actor = actor or default_actor()
        self.store = IncidentStore()

    def incident(self, text: str) -> Incident:
        return Incident(self.store, self.store.resolve_id(text))


pass_context = click.make_pass_decorator(Context)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("--as", "actor", metavar="NAME", envvar="RUNBOOK_ACTOR",
              help="Who is acting, for the journal (default: user@host; env RUNBOOK_ACTOR).")
@click.pass_context
def cli(ctx: click.Context, actor: str | None) -> None:
    """Walk through an incident: detect, announce, scope, check, fix, report.

    Every action lands in the incident's journal with a UTC timestamp and who
    did it; `runbook show` replays it. Data lives in RUNBOOK_HOME (default: the
    platform data dir).
    """
    ctx.obj = Context(actor)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            _run_tui(ctx.obj, None, ConnectSettings())
        else:
            _overview(ctx.obj)


def _run_tui(context: Context, incident_id: str | None, connect: ConnectSettings) -> None:
    from runbook.tui.app import RunbookApp

    RunbookApp(context.store, incident_id, context.actor, connect).run()


def _overview(context: Context) -> None:
    open_ones = [s for s in context.store.all() if str(s.status) != "closed"]
    if open_ones:
        out.print(console.incident_list(open_ones))
        out.print("Resume one with [bold]runbook show ID[/], or start another with "
                  "[bold]runbook new[/].")
    else:
        out.print("No open incidents. Start one:\n"
                  "  runbook new --playbook generic-host --host localhost --title 'what is wrong'\n"
                  "See [bold]runbook --help[/] for every command.")


# -- plumbing -----------------------------------------------------------------


def parse_size(text: str) -> int:
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    number, unit = text[:-1], text[-1:].upper()
    if unit.isdigit():
        number, unit = text, ""
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise RunbookError(f"{text!r} is not a size", "like 500K, 64M or 1G")
    return int(float(number) * units[unit])


def _acknowledge(incident: Incident, moment: datetime, what: str) -> None:
    console.error_console().print(f"{incident.id}: {what} at {console.utc_and_local(moment)}")


def _warn(warnings: list[str]) -> None:
    err = console.error_console()
    for warning in warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}")


def _print_json(value: object) -> None:
    echo(json_text(value))


def _print_error(error: RunbookError) -> None:
    err = console.error_console()
    err.print(f"[bold red]error:[/] {escape(error.message)}", markup=True, highlight=False)
    if error.hint:
        err.print(f"  [dim]{escape(error.hint)}[/]")


def run(entry: Callable[..., Any], args: list[str] | None = None) -> int:
    """Run the CLI and turn every failure into a message and an exit status."""
    try:
        entry.main(args=args, prog_name="runbook", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        console.error_console().print("aborted")
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SourceError as exc:
        _print_error(exc)
        return EXIT_USER_ERROR
    except RunbookError as exc:
        _print_error(exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception:  # noqa: BLE001 - our bug: log it, never show a traceback
        bug = report_bug("cli")
        console.error_console().print(Text.assemble(
            (bug.message, "bold red"), (f" ({bug.hint})" if bug.hint else "", "dim")))
        return EXIT_INTERNAL
    return 0
