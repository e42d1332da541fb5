"""Guards on how the project is put together."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The domain core: these must work without a screen (GUIDE: core imports no textual).
HEADLESS = [
    "runbook.journal", "runbook.incident", "runbook.store", "runbook.playbook",
    "runbook.inventory", "runbook.templating", "runbook.engine.catalog", "runbook.cli",
    "runbook.engine.runner", "runbook.engine.parsers", "runbook.transport.ssh", "runbook.collect",
    "runbook.remediate", "runbook.announce", "runbook.report.postmortem", "runbook.sanitize",
    "runbook.evidence", "runbook.lab",
]


@pytest.mark.parametrize("module", HEADLESS)
def test_core_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; print('textual' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False", f"{module} pulls in textual"


def test_every_package_is_listed_for_installation() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "runbook").rglob("__init__.py")}
    assert found - listed == set(), "add these packages to pyproject.toml"
    assert "runbook.playbooks" in listed  # the bundled YAML ships with the package


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", readme, re.S)
    assert len(blocks) >= 2, "README leads with two command blocks"
    test_command = blocks[1].strip()
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert ci_lines[-1] == test_command


def test_wheel_ships_the_bundled_playbooks(tmp_path: Path) -> None:
    """`pip install .` on a fresh machine must give `runbook playbook list` its playbooks."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    [wheel] = tmp_path.glob("runbook-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("runbook/playbooks/")}
    expected = {p.name for p in (ROOT / "playbooks").glob("*.yaml")}
    assert expected and expected <= shipped
    assert "runbook/cli/__init__.py" in names
