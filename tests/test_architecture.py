"""Guards on how the project is put together."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def all_modules() -> list[str]:
    """Every module of the package, found by walking it (no hand-kept list)."""
    import pkgutil

    import runbook

    return sorted(["runbook", *(m.name for m in pkgutil.walk_packages(runbook.__path__,
                                                                       "runbook."))])


def loaded_by_each(modules: list[str], watched: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module, which of `watched` importing it alone loads, each in a
    fresh interpreter (forked from one that has imported nothing of ours)."""
    script = """
import json, os, sys
watched, result = json.loads(sys.argv[1]), {}
for module in json.loads(sys.argv[2]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            __import__(module)
            found = [w for w in watched if w in sys.modules]
        except Exception as exc:  # a module that cannot be imported alone is a finding too
            found = [f"import failed: {exc!r}"]
        os.write(write, json.dumps(found).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 65536):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    result[module] = json.loads(data or b"[]")
print(json.dumps(result))
"""
    import json

    done = subprocess.run([sys.executable, "-c", script, json.dumps(watched),
                           json.dumps(modules)], capture_output=True, text=True, check=True,
                          cwd=ROOT)
    return json.loads(done.stdout)


def test_no_module_outside_the_app_loads_textual() -> None:
    """GUIDE: the domain core imports no textual; only `runbook.tui` draws."""
    headless = [m for m in all_modules() if not m.startswith("runbook.tui")]
    assert len(headless) > 60
    loaded = loaded_by_each(headless, ("textual",))
    assert {m: found for m, found in loaded.items() if found} == {}


# Only these talk SSH (or read OpenSSH's config) and may import paramiko themselves.
SSH_MODULES = {"runbook.transport.ssh", "runbook.transport.known_hosts",
               "runbook.inventory.ssh_config", "runbook.inventory.ssh_lookup"}


def test_only_the_ssh_modules_import_paramiko_and_a_note_never_loads_it() -> None:
    import ast

    direct = set()
    for module in all_modules():
        path = ROOT / (module.replace(".", "/") + ".py")
        if not path.exists():
            path = ROOT / module.replace(".", "/") / "__init__.py"
        tree = ast.parse(path.read_text())
        # `if TYPE_CHECKING:` imports are for type checkers only: nothing runs them.
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", None) == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "paramiko" or n.startswith("paramiko.") for n in names):
                direct.add(module)
    assert direct == SSH_MODULES
    # The command line as a whole, and the commands that only write the journal.
    loaded = loaded_by_each(["runbook.cli", "runbook.incident.store", "runbook.incident",
                             "runbook.cli.console"], ("paramiko",))
    assert {m: found for m, found in loaded.items() if found} == {}


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports, at the top or inside a
    function alike (a late import is still a dependency)."""
    import ast

    modules = set(all_modules())
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module in modules:
        path = ROOT / (module.replace(".", "/") + ".py")
        package = not path.exists()
        if package:
            path = ROOT / module.replace(".", "/") / "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:  # relative: from the module's package
                    parts = module.split(".")[: len(module.split(".")) - node.level
                                               + (1 if package else 0)]
                    base = ".".join([*parts, node.module])
                # `from package import submodule` depends on the submodule only.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            else:
                continue
            graph[module] |= {t for t in targets if t in modules and t != module}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: strongly connected groups of more than one module."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for after in sorted(graph[node]):
            if after not in order:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], order[after])
        if low[node] == order[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_no_import_circles_among_the_package_modules() -> None:
    graph = import_graph()
    assert "runbook.incident.store" in graph["runbook.cli.incidents"]  # the walk sees imports
    assert circles(graph) == []


def test_a_circle_would_be_found() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


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
