"""Collection: run diagnostic collectors and list them."""

from __future__ import annotations

import sys
import threading

import click

from runbook.cli import console
from runbook.cli.root import (
    Context,
    _print_json,
    cli,
    connect_options,
    json_option,
    out,
    parse_size,
    pass_context,
)
from runbook.connect_settings import ConnectSettings
from runbook.engine.catalog import BUNDLES, COLLECTORS
from runbook.errors import RunbookError


@cli.command()
@click.argument("hosts", nargs=-1, metavar="[HOST]...")
@click.option("--incident", "incident_id", help="Record into this incident (default: open a "
              "new one, so nothing is ever lost). Without HOSTs, its hosts are used.")
@click.option("--bundle", "-b", type=click.Choice(sorted(BUNDLES)),
              help="A named set of collectors (default: full).")
@click.option("--collector", "-c", "collector_names", multiple=True, metavar="NAME",
              help="One collector (repeatable). See `runbook collectors`.")
@connect_options(parallel=(64, 1024, "collected"))
@click.option("--per-host", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Commands at once on each host, samplers aside (they start together); "
                   "an inventory host's runbook_per_host wins.")
@click.option("--max-output", default="64M", show_default=True, metavar="SIZE",
              help="Keep at most this much of each output stream (K, M, G).")
@click.option("--app-log", "app_logs", multiple=True, metavar="PATH",
              help="An application log file for the app-logs collector (repeatable).")
@json_option
@pass_context
def collect(context: Context, hosts: tuple[str, ...], incident_id: str | None,
            bundle: str | None, collector_names: tuple[str, ...], connect: ConnectSettings,
            parallel: int, per_host: int, max_output: str, app_logs: tuple[str, ...],
            as_json_output: bool) -> None:
    """Run diagnostic collectors on hosts in parallel and keep every output as evidence.

    Exit status: 0 when every host answered, 1 when some did not or a run ended
    in an error (an internal error, a lost connection), 2 on bad input.
    """
    from rich.live import Live

    from runbook.cli.progress import LiveProgress
    from runbook.collection.collect import CollectOutcome, CollectRequest, plan_collection
    from runbook.engine.runner import CollectionReport

    request = CollectRequest(
        hosts=list(hosts), incident_id=incident_id, bundle=bundle,
        collectors=list(collector_names), connect=connect, parallel=parallel,
        per_host=per_host, max_output=parse_size(max_output), actor=context.actor,
        app_logs=list(app_logs))
    plan = plan_collection(context.store, request)
    if plan.opened:
        console.error_console().print(
            f"opened incident {plan.incident.id} for this collection (record more into it "
            f"with --incident {plan.incident.id})")
    console.error_console().print(
        f"incident {plan.incident.id}: {len(plan.collectors)} collector(s) on "
        f"{len(plan.hosts)} host(s)")
    progress = LiveProgress([h.name for h in plan.hosts], [c.name for c in plan.collectors])
    collection = plan.collection(progress)
    finished: list[CollectionReport] = []
    # The collection runs in a worker so Ctrl-C reaches us at once; cancelling
    # closes the connections, and what was already recorded stays recorded.
    worker = threading.Thread(target=lambda: finished.append(collection.run()), daemon=True)
    try:
        with Live(progress, console=console.error_console(), refresh_per_second=4,
                  transient=True, redirect_stdout=False):
            worker.start()
            while worker.is_alive():
                worker.join(0.2)
    except KeyboardInterrupt:
        collection.cancel()
        worker.join(30)
        console.error_console().print(
            f"interrupted: what was collected is in incident {plan.incident.id}")
        sys.exit(130)
    if not finished:
        raise RunbookError("the collection stopped without a report",
                           "see $RUNBOOK_HOME/logs/runbook.log")
    outcome = CollectOutcome(plan.incident.id, finished[0])
    from runbook.peers import peer_findings
    from runbook.use import use_summaries

    state, directory = plan.incident.state(), context.store.directory(plan.incident.id)
    peers = peer_findings(state, directory)
    summaries = use_summaries(state, directory, peers)
    if as_json_output:
        _print_json({**outcome.as_json(), "peers": [f.as_dict() for f in peers],
                     "use": [s.as_dict() for s in summaries]})
    else:
        out.print(console.collection_summary(outcome.incident_id, outcome.report, peers,
                                             summaries))
    sys.exit(0 if outcome.report.all_answered and not outcome.report.failed_runs else 1)


@cli.command()
@json_option
def collectors(as_json_output: bool) -> None:
    """List the collectors and bundles."""
    if as_json_output:
        _print_json({"collectors": [c.__dict__ for c in COLLECTORS],
                     "bundles": {k: list(v) for k, v in BUNDLES.items()}})
        return
    out.print(console.collector_table(COLLECTORS, BUNDLES))
