"""Remediation: a playbook's command proposed, reviewed, confirmed, then run.

- `policy`: propose, approve, the review rule, the typed confirmation, the dry
  run: what may run, decided from the journal alone;
- `execution`: running a confirmed command on its hosts, once, with every
  result journalled.
"""

from runbook.remediate.execution import (
    DEFAULT_PARALLEL,
    ExecStatus,
    Execution,
    ExecutionResult,
    OutputSink,
    execute,
)
from runbook.remediate.policy import (
    Proposal,
    approve,
    by_command,
    confirmation_matches,
    dry_run,
    expected_confirmation,
    find_command,
    propose,
    review_satisfied,
    same_person,
    step_targets,
)

__all__ = [
    "DEFAULT_PARALLEL", "ExecStatus", "Execution", "ExecutionResult", "OutputSink",
    "Proposal", "approve", "by_command", "confirmation_matches", "dry_run", "execute",
    "expected_confirmation", "find_command", "propose", "review_satisfied", "same_person",
    "step_targets",
]
