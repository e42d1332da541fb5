"""Detection and channels (runbook/detect/, runbook/announce/channels.py)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from runbook.cli import console
from runbook.cli.root import (
    Context,
    _print_json,
    _warn,
    cli,
    connect_options,
    json_option,
    out,
    parse_size,
    pass_context,
)
from runbook.connect_settings import ConnectSettings
from runbook.errors import RunbookError
from runbook.safe_output import echo

incident_record_option = click.option(
    "--incident", "incident_id", metavar="ID",
    help="Record the result into this incident as evidence (a collector.ran event); "
         "its first firing finding sets the detected-at time.")
threshold_option = click.option(
    "--threshold", "thresholds", multiple=True, metavar="[NAME]OP VALUE[:LEVEL]",
    help="e.g. 'sidekiq.*.latency>1000', 'db.pool.waiting>=5:warning'. NAME is a glob; "
         "values may have units (12ms, 1.5s, 40MB). Repeatable.")


@cli.command()
@click.option("--bind", default="127.0.0.1:9095", show_default=True, metavar="HOST:PORT",
              help="Where to listen (loopback unless --allow-remote).")
@click.option("--token", envvar="RUNBOOK_LISTEN_TOKEN", metavar="TOKEN",
              help="Require 'Authorization: Bearer TOKEN' (env RUNBOOK_LISTEN_TOKEN).")
@click.option("--max-body", default="1M", show_default=True, metavar="SIZE",
              help="Refuse bodies larger than this (413).")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback --bind.")
@click.option("--rules", "rules_file", type=click.Path(path_type=Path), metavar="FILE",
              help="Alert rules (default: the config dir's alerts.yaml, if any).")
@json_option
@pass_context
def listen(context: Context, bind: str, token: str | None, max_body: str, allow_remote: bool,
           rules_file: Path | None, as_json_output: bool) -> None:
    """Receive Alertmanager webhooks at POST /alerts and open or update incidents.

    Prints one line per alert (--json: one JSON object per line). Stop with Ctrl-C.
    """
    import signal

    from runbook.detect.alert_rules import load_rules
    from runbook.detect.alertmanager import AlertOutcome, AlertReceiver
    from runbook.detect.listener import AlertListener, is_loopback, parse_bind

    host, port = parse_bind(bind, allow_remote)
    rules = load_rules(rules_file)
    err = console.error_console()

    def show(outcome: AlertOutcome) -> None:
        echo(json.dumps(outcome.as_json()) if as_json_output else outcome.line())

    def refused(code: int, reason: str) -> None:
        err.print(f"refused ({code}): {reason}", markup=False, highlight=False)

    listener = AlertListener(AlertReceiver(context.store, rules, context.actor), host, port,
                             token=token, max_body=parse_size(max_body), on_outcome=show,
                             on_refusal=refused)
    if not is_loopback(host) and not token:
        _warn(["listening beyond loopback without --token: anyone who can reach it can "
               "open incidents"])
    err.print(f"listening on {listener.url} ({len(rules.rules)} rule(s)"
              f"{', token required' if token else ''})", markup=False, highlight=False)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        listener.serve_forever()
    finally:
        listener.server.server_close()


@cli.command()
@click.argument("url")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="Requests to make (each on a new connection).")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds per request.")
@click.option("--interval", default=0.0, type=float, help="Seconds between requests.")
@click.option("--expect-status", type=int, help="The status every answer must have "
              "(default: any below 400).")
@click.option("--expect-body", metavar="TEXT", help="Text every body must contain.")
@click.option("--max-total-ms", type=float, metavar="MS",
              help="Finding when total time's p95 (warning) or p50 (critical) is over MS.")
@click.option("--insecure", is_flag=True, help="Do not check the TLS certificate.")
@incident_record_option
@json_option
@pass_context
def probe(context: Context, url: str, count: int, timeout: float, interval: float,
          expect_status: int | None, expect_body: str | None, max_total_ms: float | None,
          insecure: bool, incident_id: str | None, as_json_output: bool) -> None:
    """Time N requests to URL: dns, connect, tls, first byte, total; p50/p95/max.

    Exit status 1 when there is a warning or critical finding.
    """
    from runbook.detect.http_probe import probe as run_probe

    report = run_probe(url, count=count, timeout=timeout, expect_status=expect_status,
                       expect_body=expect_body, max_total_ms=max_total_ms, interval=interval,
                       verify_tls=not insecure)
    _detected(context, "http-probe", report.url, f"GET {report.url} x{count}",
              report.findings, report.as_json(), incident_id, as_json_output)


@cli.command()
@click.argument("url", required=False)
@click.option("--host", "-H", "host_selector", metavar="HOST",
              help="Reach supervisord on this inventory host's 127.0.0.1:PORT through an "
                   "SSH tunnel (directly for localhost).")
@click.option("--port", default=9001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--user", "username", metavar="NAME", help="inet_http_server username.")
@click.option("--password", envvar="RUNBOOK_SUPERVISOR_PASSWORD", metavar="PASSWORD",
              help="inet_http_server password (env RUNBOOK_SUPERVISOR_PASSWORD).")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for supervisord to answer.")
@connect_options()
@incident_record_option
@json_option
@pass_context
def supervisor(context: Context, url: str | None, host_selector: str | None, port: int,
               username: str | None, password: str | None, timeout: float,
               connect: ConnectSettings, incident_id: str | None, as_json_output: bool) -> None:
    """supervisord's programs over XML-RPC; every program not RUNNING is a finding.

    Give the URL (http://127.0.0.1:9001/RPC2) or --host to tunnel over SSH.
    """
    from runbook.detect import supervisord

    if bool(url) == bool(host_selector):
        raise RunbookError("give either a URL or --host", "e.g. `runbook supervisor "
                           "http://127.0.0.1:9001/RPC2` or `runbook supervisor --host web1`")
    if url:
        report = supervisord.check(url, username=username, password=password, timeout=timeout)
        target = report.where
    else:
        hosts = connect.inventory().select([host_selector or ""])
        if len(hosts) != 1:
            raise RunbookError(f"--host {host_selector} names {len(hosts)} hosts", "name one host")
        host = hosts[0]
        report = supervisord.check_host(host, port=port, ssh=connect.ssh_options(),
                                        username=username,
                                        password=password, timeout=timeout)
        target = host.name
    _detected(context, "supervisord", target, f"supervisor.getAllProcessInfo at {report.where}",
              report.findings, report.as_json(), incident_id, as_json_output)


@cli.command()
@click.argument("source", required=False, default="-", metavar="[FILE|-]")
@click.option("--command", "command_line", metavar="CMD",
              help="Read the output of this local command (run without a shell) instead.")
@threshold_option
@click.option("--stale", metavar="DURATION",
              help="Finding for a metric with no data for this long (90s, 5m, 1h).")
@click.option("--now", "now_text", metavar="TIME",
              help="Judge staleness at this ISO time, or 'now' (default: the newest line's "
                   "timestamp, or the clock for lines without one).")
@incident_record_option
@json_option
@pass_context
def l2met(context: Context, source: str, command_line: str | None, thresholds: tuple[str, ...],
          stale: str | None, now_text: str | None, incident_id: str | None,
          as_json_output: bool) -> None:
    """Read l2met metrics (sample#, count#, measure#) from a file, stdin or a command."""
    from runbook.detect import l2met as reader
    from runbook.detect.thresholds import parse_duration, parse_thresholds

    limits = parse_thresholds(thresholds)
    stale_s = parse_duration(stale) if stale else None
    now = _parse_now(now_text)
    if command_line:
        text = _command_output(command_line)
        report = reader.read(text.splitlines(), limits, stale=stale_s, now=now)
        where, raw = f"command: {command_line}", text.encode()
    elif source == "-":
        captured: list[str] = []
        report = reader.read((captured.append(line) or line for line in sys.stdin), limits,
                             stale=stale_s, now=now)
        where, raw = "stdin", "".join(captured).encode()
    else:
        path = Path(source)
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                report = reader.read(handle, limits, stale=stale_s, now=now)
            raw = path.read_bytes()[:64 * 1024 * 1024]
        except OSError as exc:
            raise RunbookError(f"cannot read {source}: {exc.strerror or exc}") from None
        where = str(path.absolute())
    _detected(context, "l2met", "operator", f"l2met {where}", report.findings, report.as_json(),
              incident_id, as_json_output, raw=raw, fired_at=reader.first_crossing(report))


def _parse_now(text: str | None) -> datetime | None:
    if not text:
        return None
    if text == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RunbookError(f"{text!r} is not a time", "ISO 8601, e.g. 2024-05-01T10:00:00Z, "
                           "or 'now'") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _command_output(command_line: str, timeout: float = 60.0) -> str:
    import shlex
    import subprocess

    try:
        done = subprocess.run(shlex.split(command_line), capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise RunbookError(f"cannot run {command_line!r}: {exc}") from None
    return done.stdout.decode("utf-8", errors="replace")


@cli.command()
@click.argument("url", required=False)
@click.option("--heartbeat", metavar="URL", help="Up when it answers 2xx, else down.")
@threshold_option
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for supervisord to answer.")
@incident_record_option
@json_option
@pass_context
def stats(context: Context, url: str | None, heartbeat: str | None,
          thresholds: tuple[str, ...], timeout: float, incident_id: str | None,
          as_json_output: bool) -> None:
    """Read a JSON stats endpoint as dotted metrics (db.pool.waiting), with thresholds."""
    from runbook.detect import json_stats
    from runbook.detect.thresholds import parse_thresholds

    if not url and not heartbeat:
        raise RunbookError("give a stats URL, --heartbeat URL, or both")
    report = json_stats.check(url, heartbeat=heartbeat, thresholds=parse_thresholds(thresholds),
                              timeout=timeout)
    target = report.url or (report.heartbeat or {}).get("url", "operator")
    _detected(context, "json-stats", target, f"GET {target}", report.findings,
              report.as_json(), incident_id, as_json_output)


@cli.command("prom-query")
@click.argument("url")
@click.argument("query")
@click.option("--threshold", "threshold_text", metavar="OP VALUE",
              help="e.g. '>0': each series past it is a finding.")
@click.option("--time", "at", metavar="TIME", help="Evaluate at this time (RFC 3339 or unix).")
@click.option("--timeout", default=10.0, show_default=True, type=float,
              help="Seconds to wait for supervisord to answer.")
@incident_record_option
@json_option
@pass_context
def prom_query(context: Context, url: str, query: str, threshold_text: str | None,
               at: str | None, timeout: float, incident_id: str | None,
               as_json_output: bool) -> None:
    """Run an instant PromQL QUERY against Prometheus at URL (/api/v1/query)."""
    from runbook.detect import prometheus
    from runbook.detect.thresholds import parse_threshold

    threshold = parse_threshold(threshold_text) if threshold_text else None
    report = prometheus.query(url, query, threshold=threshold, timeout=timeout, at=at)
    _detected(context, "prometheus", report.url, f"query {query} at {report.url}",
              report.findings, report.as_json(), incident_id, as_json_output)


def _detected(context: Context, source: str, target: str, command: str, findings: list[Any],
              payload: dict[str, Any], incident_id: str | None, as_json_output: bool, *,
              raw: bytes | None = None, fired_at: datetime | None = None) -> None:
    """Print a source's findings, record them when asked; exit 1 when any fires."""
    from runbook.detect.record import firing, record_detection

    recorded = None
    if incident_id:
        incident = context.incident(incident_id)
        body = raw if raw is not None else json.dumps(payload, indent=2, default=str).encode()
        event = record_detection(incident, source=source, target=target, command=command,
                                 findings=findings, raw=body, actor=context.actor,
                                 fired_at=fired_at)
        recorded = {"incident": incident.id, "event_id": event.id}
    if as_json_output:
        _print_json({**payload, "recorded": recorded})
    else:
        styles = {"critical": "bold red", "warning": "yellow", "info": "dim"}
        for finding in findings:
            out.print(f"[{styles[str(finding.level)]}]{str(finding.level):<8}[/] "
                      f"{escape(finding.resource)}: {escape(finding.summary)}")
        if recorded:
            console.error_console().print(f"recorded in incident {recorded['incident']}",
                                          markup=False)
    if firing(findings):
        sys.exit(1)


@cli.command()
@json_option
def channels(as_json_output: bool) -> None:
    """List the announcement channels in channels.yaml (never their secrets)."""
    from runbook.announce.channels import channels_path, describe, load_channels

    described = [describe(name, config) for name, config in load_channels().items()]
    if as_json_output:
        _print_json({"file": str(channels_path()), "channels": described})
        return
    if not described:
        out.print(f"No channels configured in {escape(str(channels_path()))}; stdout and "
                  "file:PATH always work. See docs/announce.md.")
    for item in described:
        missing = [v for v, present in item["variables"].items() if not present]
        note = f" [yellow](unset: {', '.join(missing)})[/]" if missing else ""
        out.print(f"{escape(item['name'])}  [dim]{item['kind']}[/]{note}")
