"""Inventory: the hosts runbook knows."""

from __future__ import annotations

from pathlib import Path

import click

from runbook.cli import console
from runbook.cli.root import (
    _print_json,
    _warn,
    cli,
    inventory_option,
    json_option,
    out,
)


@cli.group()
def inventory() -> None:
    """Show the hosts runbook knows and what a selector picks."""


@inventory.command("list")
@click.argument("selectors", nargs=-1)
@inventory_option
@json_option
def inventory_list(selectors: tuple[str, ...], inventories: tuple[Path, ...],
                   as_json_output: bool) -> None:
    """List hosts, or the hosts SELECTORS pick (name, group, role:, tag:, project:, glob)."""
    from runbook.inventory import load_inventory

    loaded = load_inventory(list(inventories))
    hosts = loaded.select(list(selectors)) if selectors else list(loaded.hosts.values())
    if as_json_output:
        _print_json([h.as_record() for h in hosts])
        return
    _warn(loaded.warnings)
    if not hosts:
        out.print("No hosts in the inventory. `localhost` always works; see docs/inventory.md.")
        return
    out.print(console.host_table(hosts))
