"""Drill fixtures: real labs (sshd in mount namespaces, real faults), always
torn down in `finally`, and a check that nothing is left behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbook.drill.sshd_lab import find_sshd


def require_drill_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("drill labs need root (mount namespaces, tmpfs)")
    if find_sshd() is None or shutil.which("unshare") is None:
        pytest.skip("drill labs need OpenSSH sshd and util-linux unshare/nsenter")


@pytest.fixture(scope="module")
def drill_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RUNBOOK_HOME per test module: its drills' journals and labs."""
    return tmp_path_factory.mktemp("drill-home")


@pytest.fixture(autouse=True)
def _use_drill_home(drill_home: Path, runbook_home: Path,
                    monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RUNBOOK_HOME", str(drill_home))
    yield drill_home


@pytest.fixture(scope="module")
def module_env(drill_home: Path) -> Iterator[None]:
    """RUNBOOK_HOME for module-scoped fixtures (the autouse one is per test)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RUNBOOK_HOME", str(drill_home))
        patch.setenv("RUNBOOK_ACTOR", "tester@lab")
        yield
