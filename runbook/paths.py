"""Where runbook keeps its data and configuration.

Everything goes through `runbook_home()` / `config_dir()`, so tests and drills
point RUNBOOK_HOME at a scratch directory and never touch the operator's files.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "runbook"


def runbook_home() -> Path:
    """The data directory: incidents, evidence, logs and the archive index."""
    override = os.environ.get("RUNBOOK_HOME")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME))


def config_dir() -> Path:
    """Configuration: the default inventory and the operator's own playbooks.

    With RUNBOOK_HOME set, configuration lives inside it too, so a drill or a
    test is fully isolated.
    """
    override = os.environ.get("RUNBOOK_HOME")
    if override:
        return Path(override).expanduser() / "config"
    return Path(platformdirs.user_config_dir(APP_NAME))


def incidents_dir() -> Path:
    return runbook_home() / "incidents"


def log_dir() -> Path:
    return runbook_home() / "logs"


def default_inventory() -> Path:
    return config_dir() / "inventory.yaml"


def user_playbooks_dir() -> Path:
    return config_dir() / "playbooks"


def ssh_config_path() -> Path:
    override = os.environ.get("RUNBOOK_SSH_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path("~/.ssh/config").expanduser()
