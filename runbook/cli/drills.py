"""Drills (runbook/drill/)."""

from __future__ import annotations

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
from runbook.sanitize import clean_text


@cli.group()
def drill() -> None:
    """Training drills: a real fault on a loopback lab, worked and scored."""


@drill.command("list")
@click.option("--running", is_flag=True, help="Only the drills whose lab is up.")
@json_option
def drill_list(running: bool, as_json_output: bool) -> None:
    """The scenarios you can start (bundled and your team's), or the running drills."""
    from runbook.drill.scenario import load_catalog
    from runbook.drill.session import running_drills

    if running:
        labs = [{"id": s.drill_id, "scenario": s.data.get("scenario"),
                 "started": s.data.get("created_at"), "hosts": s.data.get("hosts")}
                for s in running_drills()]
        if as_json_output:
            _print_json(labs)
            return
        for lab in labs:
            echo(f"{lab['id']}  {lab['scenario']}  since {lab['started']}")
        if not labs:
            console.error_console().print("no drill is running")
        return
    catalog = load_catalog()
    _warn([str(e) for e in catalog.errors])
    rows = [{"name": n, "title": s.scenario.title, "fault": s.scenario.fault.kind,
             "playbook": s.scenario.playbook, "target_minutes": s.scenario.time_target_minutes,
             "source": "bundled" if s.bundled else str(s.path)}
            for n, s in sorted(catalog.scenarios.items())]
    if as_json_output:
        _print_json(rows)
        return
    for row in rows:
        echo(f"{row['name']:<18} {row['fault']:<17} {row['title']}")


@drill.command("start")
@click.argument("name")
@click.option("--seed", type=int, help="Replay a drill exactly (which host, names, addresses).")
@json_option
@pass_context
def drill_start(context: Context, name: str, seed: int | None, as_json_output: bool) -> None:
    """Start the lab, inject the fault, open the DRILL incident; print its id and briefing."""
    from runbook.drill.session import start_drill

    started = start_drill(name, context.actor, seed)
    scenario = started.scenario
    if as_json_output:
        _print_json({"id": started.id, "scenario": scenario.name, "seed": started.seed,
                     "briefing": scenario.briefing, "alert": scenario.alert.model_dump(),
                     "inventory": str(started.inventory),
                     "causes": [c.id for c in scenario.choices()]})
        return
    echo(started.id)
    echo(f"\nDRILL: {scenario.title} (seed {started.seed})\n\n{scenario.briefing.strip()}")
    labels = ", ".join(f"{k}={v}" for k, v in scenario.alert.labels.items())
    echo(f"\nAlert firing: {labels}")
    for key, value in scenario.alert.annotations.items():
        echo(f"  {key}: {value}")
    echo("\nPossible causes (or type your own): "
               + ", ".join(c.id for c in scenario.choices()))
    echo(f"\nWork it:   runbook drill open {started.id}\n"
               f"Diagnose:  runbook drill diagnose {started.id} CAUSE\n"
               f"Finish:    runbook drill stop {started.id} && "
               f"runbook drill report {started.id}")


def _drill_lab_files(drill_id: str) -> tuple[Path, Path]:
    from runbook.drill.lab import find_state

    data = find_state(drill_id).data
    return Path(data["inventory"]), Path(data["known_hosts"])


@drill.command("open")
@click.argument("drill_id")
@pass_context
def drill_open(context: Context, drill_id: str) -> None:
    """Work the drill in the app: only the lab's hosts and keys are reachable."""
    import os

    from runbook.drill.session import app_launch
    from runbook.tui.app import RunbookApp

    launch = app_launch(drill_id)
    os.environ["RUNBOOK_HOME"] = str(launch.home)  # the store above is already resolved
    RunbookApp(launch.store, launch.incident_id, context.actor, launch.connect).run()


@drill.command("collect")
@click.argument("drill_id")
@click.option("--step", help="The collect step to run (its bundle or collectors).")
@click.option("--bundle", "-b", help="A bundle of collectors instead.")
@click.option("--collector", "-c", "collectors", multiple=True, help="A collector. Repeatable.")
@pass_context
def drill_collect(context: Context, drill_id: str, step: str | None, bundle: str | None,
                  collectors: tuple[str, ...]) -> None:
    """Run collectors on the drill's lab hosts (refused for any host outside the lab)."""
    from runbook.collection.collect import CollectRequest, plan_collection
    from runbook.drill.lab import drill_store
    from runbook.drill.session import drill_incident, lab_connect

    incident = drill_incident(drill_id)
    inventory, known_hosts = _drill_lab_files(incident.id)
    wanted = list(collectors)
    if step:
        found = incident.state().steps.get(step)
        if found is None or found.step.kind != "collect":
            raise RunbookError(f"{step!r} is not a collect step of drill {incident.id}")
        bundle, wanted = found.step.bundle, list(found.step.collectors)
    request = CollectRequest(incident_id=incident.id, bundle=bundle, collectors=wanted,
                             actor=context.actor, step=step,
                             connect=lab_connect(inventory, known_hosts))
    # plan_collection refuses any target outside the lab (drill.guard).
    report = plan_collection(drill_store(), request).collection().run()
    out.print(console.collection_summary(incident.id, report))
    if step and report.all_answered:
        incident.complete_step(step, context.actor, "collected")


@drill.command("diagnose")
@click.argument("drill_id")
@click.argument("cause", nargs=-1, required=True)
@pass_context
def drill_diagnose(context: Context, drill_id: str, cause: tuple[str, ...]) -> None:
    """State the root cause: a cause id from `drill start`'s list, or your own words."""
    from runbook.drill.session import diagnose

    diagnose(drill_id, " ".join(cause), context.actor)
    # Whether it matched is in the report, not here: no guessing until it fits.
    console.error_console().print(f"recorded: {escape(' '.join(cause))}; the last one stated "
                                  "counts (see `runbook drill report`)")


@drill.command("stop")
@click.argument("drill_id", required=False)
@pass_context
def drill_stop(context: Context, drill_id: str | None) -> None:
    """Undo the fault and stop the lab (the only running drill when no ID is given)."""
    from runbook.drill.session import running_drills, stop_drill

    if drill_id is None:
        running = running_drills()
        if len(running) != 1:
            raise RunbookError(f"{len(running)} drills are running: name one",
                               "runbook drill list --running")
        drill_id = running[0].drill_id
    stopped = stop_drill(drill_id, context.actor)
    err = console.error_console()
    err.print(f"{stopped.id}: fault {'undone' if stopped.undone else 'NOT undone'}; "
              "lab stopped")
    for line in stopped.teardown_lines:
        err.print(f"  {escape(line)}")


@drill.command("cleanup")
def drill_cleanup() -> None:
    """Find and remove every drill leftover: processes, mounts, daemons, files."""
    from runbook.drill.session import cleanup

    results = cleanup()
    for drill_id, lines in results:
        echo(f"{drill_id}: " + ("nothing left" if not lines else ""))
        for line in lines:
            echo(f"  {line}")
    if not results:
        echo("no drill leftovers")


@drill.command("report")
@click.argument("drill_id")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write it to FILE.")
@json_option
def drill_report(drill_id: str, output: Path | None, as_json_output: bool) -> None:
    """The drill's scored report (Markdown, watermarked DRILL)."""
    from runbook.drill.report import drill_report as render
    from runbook.drill.scoring import score
    from runbook.drill.session import drill_incident

    state = drill_incident(drill_id).state()
    result = score(state)
    if as_json_output:
        _print_json(result.as_json())
        return
    text = clean_text(render(state, result))  # trainees' answers are in it
    if output:
        output.write_text(text, encoding="utf-8")
        console.error_console().print(f"wrote {output}")
    else:
        echo(text)


@drill.command("history")
@click.option("--trainee", help="Only this trainee's drills (default: everyone's).")
@json_option
def drill_history(trainee: str | None, as_json_output: bool) -> None:
    """Drills over time, with scores: progress per scenario."""
    from runbook.drill.history import history, progress

    entries = history(trainee)
    if as_json_output:
        _print_json([e.as_json() for e in entries])
        return
    for e in entries:
        took = f"{e.time_to_diagnosis:.0f}s" if e.time_to_diagnosis is not None else "-"
        echo(f"{e.started_at:%Y-%m-%d %H:%M}  {e.scenario:<18} {e.score:>3}/100  "
                   f"diagnosis {'right' if e.diagnosed else 'wrong'} ({took})  "
                   f"{e.trainee or '-'}  {e.drill_id}")
    for line in progress(entries):
        echo(line)
    if not entries:
        echo("no drills yet: runbook drill list")
