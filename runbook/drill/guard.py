"""A drill incident never reaches outside its lab.

Every target of a collection or a remediation on a drill incident must be one
of the lab's own endpoints (address and port, as journalled in `drill.started`),
on loopback, not local, and without a jump host. Anything else is refused
before a connection is opened and before anything is journalled.

This module is the policy only (an incident's state and hosts in, a refusal
out); the use cases call it, whichever front end asks:
- `collect.plan_collection`, once the hosts are resolved and before any is
  journalled;
- `remediate.Execution.check`, before a command starts.
Besides, the app opened with `runbook drill open` is given only the lab's
inventory and the lab's known_hosts with new keys refused, so a host outside
the lab fails the host-key check even if it were added to the incident.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from runbook.errors import RunbookError
from runbook.hosts import Host
from runbook.incident import EventType, IncidentState

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


class OutsideLab(RunbookError):
    """A drill incident asked to touch a host that is not one of its lab's."""


def lab_endpoints(state: IncidentState) -> dict[str, tuple[str, int]]:
    """name -> (address, port) of the drill's lab, from the journal."""

    for event in state.events:
        if event.type == EventType.DRILL_STARTED:
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
