"""A drill incident never reaches outside its lab.

Every target of a collection or a remediation on a drill incident must be one
of the lab's own endpoints (address and port, as journalled in `drill.started`),
on loopback, not local, and without a jump host. Anything else is refused
before a connection is opened and before anything is journalled.

Where it is enforced:
- `collect` and `execute` below: the drill's own entry points (`runbook drill
  collect`, the tests) go through them.
- The app, opened with `runbook drill open`, is given only the lab's inventory
  and the lab's known_hosts with new keys refused, so a host outside the lab
  fails the host-key check even if it were added to the incident.
- The engine itself has no hook yet. The minimal one: in
  `collect.plan_collection` after the hosts are resolved, and in
  `remediate.Execution.check`, call `refuse_outside_lab(state, hosts)` when
  `state.drill` (see docs/drills.md, "The guard").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from runbook.errors import RunbookError
from runbook.hosts import Host
from runbook.incident import IncidentState
from runbook.store import Incident, IncidentStore

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class OutsideLab(RunbookError):
    """A drill incident asked to touch a host that is not one of its lab's."""


def lab_endpoints(state: IncidentState) -> dict[str, tuple[str, int]]:
    """name -> (address, port) of the drill's lab, from the journal."""
    from runbook.drill.session import DRILL_STARTED

    for event in state.events:
        if event.type == DRILL_STARTED:
            return {str(h["name"]): (str(h["address"]), int(h["port"]))
                    for h in event.data.get("lab", [])}
    return {}


def refuse_outside_lab(state: IncidentState, hosts: Iterable[Host]) -> None:
    """Raise OutsideLab unless every host is one of this drill's lab endpoints.
    Not a drill: nothing to check."""
    if not state.drill:
        return
    lab = lab_endpoints(state)
    if not lab:
        raise OutsideLab(f"drill {state.id} has no running lab: nothing may be run for it",
                         "start a drill with `runbook drill start NAME`")
    allowed = set(lab.values())
    for host in hosts:
        problem = _problem(host, allowed)
        if problem:
            raise OutsideLab(
                f"refused: {host.name} ({host.address}:{host.port}) {problem}; drill "
                f"{state.id} may only reach its lab "
                f"({', '.join(f'{n} {a}:{p}' for n, (a, p) in lab.items())})",
                "a drill never touches real hosts")


def _problem(host: Host, allowed: set[tuple[str, int]]) -> str | None:
    if host.local:
        return "is this machine, run locally, not a lab host"
    if host.jump:
        return f"goes through the jump host {host.jump}"
    try:
        address = ipaddress.ip_address(host.address)
    except ValueError:
        return "is not a lab address"
    if address not in LOOPBACK:
        return "is not on loopback"
    if (host.address, host.port) not in allowed:
        return "is not one of the lab's endpoints"
    return None


def collect(store: IncidentStore, request: Any, observer: Any = None) -> Any:
    """`plan_collection` and run it, refusing any target outside the lab. The
    hosts are checked before the plan (which may journal added hosts) and again
    on the plan itself."""
    from runbook.collect import plan_collection
    from runbook.inventory import load_inventory

    incident = Incident(store, store.resolve_id(request.incident_id))
    state = incident.state()
    if request.hosts:
        refuse_outside_lab(state, load_inventory(request.inventories).select(request.hosts))
    else:
        refuse_outside_lab(state, state.hosts)
    plan = plan_collection(store, request)
    refuse_outside_lab(state, plan.hosts)
    return plan.collection(observer).run()


def execute(incident: Incident, command_id: str, actor: str, confirmation: str,
            **options: Any) -> Any:
    """`remediate.execute`, refusing a command whose hosts are not all lab hosts."""
    from runbook.remediate import execute as run_command
    from runbook.remediate import find_command

    state = incident.state()
    command = find_command(state, command_id)
    targets = [state.host(name) for name in command.hosts]
    missing = [n for n, h in zip(command.hosts, targets, strict=True) if h is None]
    if missing and state.drill:
        raise OutsideLab(f"refused: {', '.join(missing)} not among drill {state.id}'s hosts")
    refuse_outside_lab(state, [h for h in targets if h is not None])
    return run_command(incident, command_id, actor, confirmation, **options)
