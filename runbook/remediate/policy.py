"""Remediation policy: a playbook's command proposed, reviewed and confirmed.

"Avoid the second incident": nothing runs from a single stray action.
- `propose` renders the command once per target host and journals the exact
  text; from then on that text is what is reviewed, previewed and run (it is
  never rendered again, so a later answer cannot change an approved command).
- `approve` records a named reviewer; a step with `review: true` needs one who
  is not the proposer.
- `expected_confirmation` is what the operator must type before it runs.
- `dry_run` shows what would run and journals nothing: it reads the proposal,
  which is already in the journal, and changes nothing.
Running it is `remediate.execution`.
"""


from __future__ import annotations

import getpass
import os
import re
import secrets
from dataclasses import dataclass

from runbook.engine.runner import sudo
from runbook.errors import HostSelectionError, RunbookError
from runbook.hosts import Host
from runbook.incident import CommandState, EventType, IncidentState, Status
from runbook.incident.events import CommandApproved, CommandProposed
from runbook.incident.journal import Event
from runbook.incident.store import Incident, same_person
from runbook.inventory import select_among
from runbook.playbook import RemediateStep
from runbook.templating import render_command

_NOT_A_NAME = frozenset({"me", "myself", "self", "i", "yes", "y", "ok", "okay", "approved",
                         "lgtm", "-", "n/a", "na", "none", "nobody", "someone", "anyone"})


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONFIRMATION = re.compile(r"run on \d+ hosts?")


@dataclass(frozen=True)
class Proposal:
    command_id: str
    step: str
    template: str
    commands: dict[str, str]  # host -> the exact command, values shell-quoted
    rollback: str
    review_required: bool
    needs_root: bool
    timeout: float
    confirmation: str  # what `execute` will want typed
    event: Event

    @property
    def hosts(self) -> list[str]:
        return list(self.commands)


def propose(incident: Incident, step_id: str, actor: str,
            hosts: list[str] | str | None = None) -> Proposal:
    """Render the step's command for each target host and journal the proposal.

    `hosts` narrows the step's own targets (it never widens them): a selector,
    or several, matched against the incident's hosts like the inventory does.
    """
    state = open_state(incident)
    step = _remediate_step(incident, state, step_id)
    targets = _targets(state, step, hosts)
    context = state.template_context()
    # Render every host before recording anything: one refused value, no proposal.
    commands: dict[str, str] = {}
    for host in targets:
        command = render_command(step.command, {**context, "host": host.name}).strip()
        if not command:
            raise RunbookError(f"step {step_id!r} renders an empty command for {host.name}",
                               "fix the playbook's command template")
        commands[host.name] = command
    distinct = set(commands.values())
    command_id = _new_command_id(state)
    data = CommandProposed(
        command_id=command_id, step=step.id, title=step.title, template=step.command,
        # One line for the timeline: the command itself when every host runs the same.
        command=next(iter(distinct)) if len(distinct) == 1 else step.command,
        commands=commands, hosts=list(commands),
        selector=",".join(hosts) if isinstance(hosts, list) else (hosts or step.hosts),
        rollback=step.rollback, review_required=step.review, needs_root=step.needs_root,
        timeout=step.timeout, survives_disconnect=step.survives_disconnect)
    event = incident.append(EventType.COMMAND_PROPOSED, data, actor)
    return Proposal(command_id=command_id, step=step.id, template=step.command,
                    commands=commands, rollback=step.rollback, review_required=step.review,
                    needs_root=step.needs_root, timeout=step.timeout,
                    confirmation=_confirmation_for(len(commands)), event=event)


def _remediate_step(incident: Incident, state: IncidentState, step_id: str) -> RemediateStep:
    step: RemediateStep = state.step_of_kind(step_id, "remediate", "a remediation")
    return step


def step_targets(incident: Incident, step_id: str) -> list[str]:
    """The incident's hosts the step's own selector picks: what a proposal runs on
    unless it is narrowed."""
    state = incident.state()
    step = _remediate_step(incident, state, step_id)
    return [h.name for h in _targets(state, step, None)]


def _targets(state: IncidentState, step: RemediateStep,
             narrow: list[str] | str | None) -> list[Host]:
    if not state.hosts:
        raise HostSelectionError(f"incident {state.id} has no hosts to run {step.id!r} on",
                                 "add hosts: `runbook collect --incident ID HOST`")
    chosen = select_among(state.hosts, [step.hosts])
    if narrow:
        wanted = select_among(state.hosts, [narrow] if isinstance(narrow, str) else narrow)
        outside = [h.name for h in wanted if h not in chosen]
        if outside:
            raise HostSelectionError(
                f"{', '.join(outside)} {'is' if len(outside) == 1 else 'are'} not a target of "
                f"step {step.id!r} (hosts: {step.hosts} -> "
                f"{', '.join(h.name for h in chosen)})",
                "--host can only narrow the step's own targets")
        chosen = wanted
    return chosen


def _new_command_id(state: IncidentState) -> str:
    while True:
        candidate = secrets.token_hex(3)
        if candidate not in state.commands:
            return candidate


# -- approve ------------------------------------------------------------------------


def approve(incident: Incident, command_id: str, reviewer: str, actor: str, *,
            runner: str | None = None) -> Event:
    """Record that `reviewer` read the exact commands and agrees they should run.
    `runner` is the person who will type the confirmation, when that is known
    (the app): they cannot be their own second pair of eyes."""
    state = open_state(incident)
    command = find_command(state, command_id)
    name = " ".join(reviewer.split())
    if not name or _CONTROL.search(reviewer) or name.lower() in _NOT_A_NAME:
        raise RunbookError(f"{reviewer!r} is not a reviewer's name",
                           "--reviewer NAME: the person who read the exact commands")
    if _CONFIRMATION.fullmatch(name.lower()):
        # The phrase typed into the wrong field: taken as a name, it would pass
        # the review that it was meant to follow.
        raise RunbookError(f"{name!r} is the confirmation phrase, not a reviewer's name",
                           "name the second person who read the command; the phrase is "
                           "typed after their review is recorded")
    if command.review_required and runner is not None and same_person(name, runner):
        raise RunbookError(
            f"{name} is running command {command.id} and cannot also be its reviewer",
            "a second person reads the exact command and gives their name here")
    if command.executed:
        raise RunbookError(f"command {command.id} has already run; approving it changes nothing",
                           f"propose it again: `runbook propose {incident.id} {command.step}`")
    if command.review_required and same_person(name, command.proposed_by):
        raise RunbookError(
            f"{name} proposed command {command.id} and cannot also be its reviewer",
            "this step needs a second person: ask another engineer to read it "
            f"(`runbook execute {incident.id} {command.id} --dry-run`) and approve it")
    if any(same_person(name, earlier) for earlier in command.approvals):
        raise RunbookError(f"{name} has already approved command {command.id}")
    return incident.append(EventType.COMMAND_APPROVED, CommandApproved(
        command_id=command.id, step=command.step, approver=name), actor)


def review_satisfied(command: CommandState) -> bool:
    if not command.review_required:
        return True
    return any(not same_person(a, command.proposed_by) for a in command.approvals)


# -- confirm and preview ----------------------------------------------------------------


def expected_confirmation(command: CommandState) -> str:
    """What the operator types to run it: `run on 3 hosts`.

    The host count is the thing that goes wrong (a selector picked more hosts
    than meant), so the operator has to read it and type it. The command id is
    already on the same command line, and an executed id never runs again.
    """
    return _confirmation_for(len(command.hosts))


def _confirmation_for(count: int) -> str:
    return f"run on {count} host{'' if count == 1 else 's'}"


def confirmation_matches(typed: str, command: CommandState) -> bool:
    """Exact words; case and extra spaces do not matter."""
    return " ".join(typed.split()).lower() == expected_confirmation(command)


def dry_run(incident: Incident, command_id: str) -> list[tuple[str, str]]:
    """(host, command) exactly as `execute` would run them, with `sudo -n` where
    root is needed and the login user is not root. Runs and records nothing."""
    state = incident.state()
    command = find_command(state, command_id)
    require_rendered(incident, command)
    plan: list[tuple[str, str]] = []
    for name in command.hosts:
        host = state.host(name)
        root = host is not None and _will_be_root(host)
        plan.append((name, final_command(command, command.commands[name], root)))
    return plan


def by_command(plan: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """A dry run as (command, the hosts that run it), each distinct command once, in
    the order of the first host that runs it: a long command is read once."""
    hosts: dict[str, list[str]] = {}
    for host, line in plan:
        hosts.setdefault(line, []).append(host)
    return list(hosts.items())


def _will_be_root(host: Host) -> bool:
    if host.local:
        return os.geteuid() == 0
    return (host.user or getpass.getuser()) == "root"


def final_command(command: CommandState, rendered: str, is_root: bool) -> str:
    return sudo(rendered) if command.needs_root and not is_root else rendered


def find_command(state: IncidentState, command_id: str) -> CommandState:
    """A proposal by id, or by a unique prefix of it."""
    if command_id in state.commands:
        return state.commands[command_id]
    matches = [c for i, c in state.commands.items() if i.startswith(command_id)] \
        if command_id else []
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{c.id} ({c.step})" for c in state.commands.values()) or "none yet"
    if matches:
        raise RunbookError(f"{command_id!r} matches {len(matches)} commands", f"known: {known}")
    raise RunbookError(f"incident {state.id} has no proposed command {command_id!r}",
                       f"proposed: {known}; propose one with `runbook propose {state.id} STEP`")


def require_rendered(incident: Incident, command: CommandState) -> None:
    missing = [h for h in command.hosts if h not in command.commands]
    if missing or not command.hosts:
        raise RunbookError(f"proposal {command.id} does not hold the exact command for "
                           f"{', '.join(missing) or 'any host'}",
                           f"propose it again: `runbook propose {incident.id} {command.step}`")


def open_state(incident: Incident) -> IncidentState:
    state = incident.state()
    if state.status != Status.OPEN:
        raise not_open_error(incident, state)
    return state


def not_open_error(incident: Incident, state: IncidentState) -> RunbookError:
    return RunbookError(f"incident {incident.id} is {state.status}: remediation is for open "
                        "incidents", f"reopen it first: `runbook reopen {incident.id} "
                        "--reason ...`")
