"""Shared fixtures: plans of the repository's stack files, and a scratch stacks directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from config.loader import STACKS_DIR
from edumatrix_db.offline.engine import Planner, Recording


@pytest.fixture(scope="session")
def planner() -> Planner:
    """One planner for the session: each stack is planned once and cached."""
    return Planner()


@pytest.fixture(scope="session")
def prod(planner: Planner) -> Recording:
    return planner.plan("prod")


@pytest.fixture
def stacks_dir(tmp_path: Path) -> Path:
    """A copy of stacks/ that a test may change without touching the repository."""
    target = tmp_path / "stacks"
    shutil.copytree(STACKS_DIR, target)
    return target


@pytest.fixture
def write_stack(stacks_dir: Path) -> Callable[[str, dict], Path]:
    """Write `stacks/Pulumi.<name>.yaml` in the scratch directory from a `config:` mapping."""

    def write(name: str, config: dict) -> Path:
        path = stacks_dir / f"Pulumi.{name}.yaml"
        path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return path

    return write
