"""The `runbook` command. Each subcommand is a thin call into the core.

`root` holds the group and the shared plumbing; the modules below register
their commands on it when imported here, and import only `root` themselves.
"""

from __future__ import annotations

import sys

from runbook.cli import (  # noqa: F401 - imported for the commands they register
    collection,
    detection,
    drills,
    incidents,
    inventory,
    playbooks,
    remediation,
    reports,
)
from runbook.cli.root import EXIT_INTERNAL, EXIT_USER_ERROR, cli, run

__all__ = ["EXIT_INTERNAL", "EXIT_USER_ERROR", "cli", "main", "run"]


def main() -> None:
    sys.exit(run(cli))
