"""`make mutation` plans every stack file once (tests/plan_cache.py `warm`) and serves the recordings in mutmut's
copy under a hash of the tree: the plans stored must be those of the tree that was hashed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import plan_cache


def _copy_of_the_project(root: Path, stacks: list[str]) -> Path:
    """The plan's inputs copied under `root`, with only the named stack files."""
    for name in plan_cache.PLAN_INPUTS:
        source = plan_cache.PROJECT / name
        if name == "stacks":
            (root / name).mkdir()
            for stack in stacks:
                shutil.copy2(source / f"Pulumi.{stack}.yaml", root / name)
        elif source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, root / name)
    return root


@pytest.mark.slow  # plans a stack (tests/conftest.py finds no Planner( call in this module to mark it)
def test_warm_stores_the_plans_of_the_stack_files_of_the_tree_it_hashes_not_of_the_current_directory(
        tmp_path: Path) -> None:
    root = _copy_of_the_project(tmp_path, ["dev"])

    stored = plan_cache.warm(root)

    assert stored == plan_cache.cache_dir(root)
    assert sorted(p.name for p in stored.iterdir()) == ["dev.pickle"]


@pytest.mark.slow  # plans a stack
def test_warm_keeps_a_plan_already_stored_under_the_same_key(tmp_path: Path) -> None:
    root = _copy_of_the_project(tmp_path, ["dev"])
    stored = plan_cache.warm(root) / "dev.pickle"
    stored.write_bytes(b"kept")

    plan_cache.warm(root)

    assert stored.read_bytes() == b"kept"
