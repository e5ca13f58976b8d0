"""The package layout is what the README's architecture section says it is."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import edumatrix_db

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ARCHITECTURE = README[README.index("## Architecture"):README.index("\n## ", README.index("## Architecture") + 1)]
SUBPACKAGES = ("offline", "database", "ops", "cli")


def paths_in_the_architecture_tree() -> set[str]:
    """`folder/`, `folder/sub/` and `folder/module.py` paths from the layout tree (a `folder/` line opens a
    folder, the lines indented below it are in it)."""
    found: set[str] = set()
    folders: list[tuple[int, str]] = []
    tree = next(block for block in ARCHITECTURE.split("```")[1::2] if re.search(r"^edumatrix_db/\s", block, re.M))
    for line in tree.splitlines():
        match = re.match(r"^(?P<indent> *)(?P<name>[\w.]+/?)\s", line + " ")
        if not match:
            continue
        depth = len(match["indent"])
        folders = [(d, f) for d, f in folders if d < depth]
        path = "".join(f for _, f in folders) + match["name"]
        if match["name"].endswith("/"):
            folders.append((depth, match["name"]))
        found.add(path)
    return found


def test_the_package_has_exactly_the_subpackages_the_readme_names() -> None:
    packages = {m.name for m in pkgutil.iter_modules(edumatrix_db.__path__) if m.ispkg}
    modules = {m.name for m in pkgutil.iter_modules(edumatrix_db.__path__) if not m.ispkg}
    assert packages == set(SUBPACKAGES)
    assert modules == set()  # everything lives in a subpackage
    assert {f"edumatrix_db/{name}/" for name in SUBPACKAGES} <= paths_in_the_architecture_tree()


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_subpackage_and_its_modules_import(name: str) -> None:
    package = importlib.import_module(f"edumatrix_db.{name}")
    assert package.__doc__
    for module in pkgutil.iter_modules(package.__path__):
        if module.name == "__main__":
            continue  # runs the command
        importlib.import_module(f"edumatrix_db.{name}.{module.name}")


def test_every_module_in_the_architecture_tree_exists_and_every_module_is_in_it() -> None:
    named = {p for p in paths_in_the_architecture_tree() if p.endswith(".py")}
    assert len(named) > 20
    assert sorted(p for p in named if not (ROOT / p).is_file()) == []
    actual = {str(p.relative_to(ROOT)) for folder in ("components", "edumatrix_db", "config")
              for p in (ROOT / folder).rglob("*.py") if p.name != "__init__.py"}
    assert sorted(actual - named) == []


def test_the_console_script_and_python_dash_m_reach_the_same_command() -> None:
    from edumatrix_db.cli import main

    assert callable(main)
    assert 'edumatrix-db = "edumatrix_db.cli:main"' in (ROOT / "pyproject.toml").read_text()
    result = subprocess.run([sys.executable, "-m", "edumatrix_db.cli", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    listed = re.search(r"\{([a-z,-]+)\}", result.stdout)
    assert listed is not None
    stable = {"plan", "check", "policy-config", "local", "tenancy", "migrate", "audit", "guard", "diff", "metrics"}
    assert stable <= set(listed[1].split(","))


def test_the_pulumi_program_needs_none_of_the_tooling() -> None:
    """`pulumi up` runs `__main__.py`: it declares resources from config/ and components/ only."""
    code = ("import sys, components.platform; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'edumatrix_db'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
