"""Shared fixtures: plans of the repository's stack files, and a scratch stacks directory."""

from __future__ import annotations

import inspect
import os
import re
import shutil
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

from config.loader import STACKS_DIR
from edumatrix_db.offline.engine import Planner, Recording
from tests import plan_cache

# Under `make mutation` (mutmut sets MUTANT_UNDER_TEST) property tests draw fewer examples, the same each run.
settings.register_profile("mutation", max_examples=10, derandomize=True, database=None, deadline=None)
if os.environ.get("MUTANT_UNDER_TEST"):
    settings.load_profile("mutation")


@pytest.fixture(scope="session")
def planner() -> Planner:
    """One planner for the session: each stack is planned once and cached (under `make mutation`, read from
    the plans `make mutation` stored beforehand: tests/plan_cache.py)."""
    return plan_cache.session_planner()


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


# What makes a test slow: running the Pulumi program under the SDK's mocks (seconds per stack) or another process.
_SLOW_CALLS: tuple[str, ...] = (
    "Planner(", "session_planner(", "planner.plan(", "run_program(", "subprocess", 'main(["plan"', 'main(["check"',
    "check_stacks(",  # the gate over whole stacks (sequential or forked workers)
    "import_check(",  # the runner package's import check starts a bare interpreter
    "rp.build(",  # the runner package build (its dependency cache, a zip of the whole runtime)
    "build_jar(")  # javac: the events plugin's jar
if plan_cache.serves_plans():  # under `make mutation` the session planner reads stored plans: not slow
    _SLOW_CALLS = tuple(c for c in _SLOW_CALLS if c not in ("session_planner(", "planner.plan("))


@cache
def _is_slow(function: Callable[..., object]) -> bool:
    """Whether `function`, or a helper of its own module that it calls, runs the program or a process."""
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if any(call in source for call in _SLOW_CALLS):
        return True
    module = getattr(function, "__module__", None)
    helpers = [f for name, f in getattr(function, "__globals__", {}).items()
               if inspect.isfunction(f) and f.__module__ == module and f"{name}(" in source]
    return any(_is_slow(helper) for helper in helpers if helper is not function)


_PROJECT_PACKAGES = ("config", "policy", "edumatrix_db")
_caches_by_modules: dict[int, list[Callable[[], None]]] = {}


def _project_caches() -> list[Callable[[], None]]:
    """The `cache_clear` of every cached function of the project's modules loaded so far. Found again only when
    a module was loaded since: the mutated copies hold tens of thousands of functions (every mutant is one), and
    looking through them before each test took most of a killed mutant's time."""
    if len(sys.modules) not in _caches_by_modules:
        _caches_by_modules.clear()
        _caches_by_modules[len(sys.modules)] = [
            value.cache_clear for name, module in list(sys.modules.items())
            if name.split(".")[0] in _PROJECT_PACKAGES for value in list(vars(module).values())
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == name]
    return _caches_by_modules[len(sys.modules)]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `make mutation`, find the caches once after collection: mutmut's fork server collects, then forks a
    process per mutant, which inherits what was found."""
    if plan_cache.IN_MUTANTS:
        _project_caches()


@pytest.fixture(autouse=plan_cache.IN_MUTANTS)
def _empty_caches() -> None:
    """Under `make mutation`, cached functions (`functools.cache`) start empty for every test: a mutant's
    process is forked after the tests were imported, when a cache may already hold what the unmutated code
    returned, and mutmut learns which tests reach a function by watching them call it, which a test served from
    a cache filled by an earlier test never does."""
    for cache_clear in _project_caches():
        cache_clear()


# A test id holding an object's address (`<object object at 0x7f...>`, a default repr in a parametrized id)
# differs from one process to the next: mutmut records the ids that reach each function in one process and runs
# them in another, where such an id names no test (tests/policy/fixtures.py MISSING was one).
_ADDRESS_IN_ID = re.compile(r" at 0x[0-9a-f]+")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `slow` every test that runs the program or a process, itself or through a fixture, and `postgres`
    every test using the `pg` server (tests/pg/test_extraction_declared.py's were not: they started PostgreSQL in
    the fast loop and for every mutant reaching them), so that `pytest -m "not postgres and not slow"` is the fast
    loop (and what `make mutation` runs per mutant).
    Refuse a test id that holds an object's address (it is not the same in another process)."""
    unstable = [item.nodeid for item in items if _ADDRESS_IN_ID.search(item.nodeid)]
    if unstable:
        raise pytest.UsageError(f"test ids holding an object's address (give the parameter a repr or ids=): "
                                f"{', '.join(unstable[:3])}")
    for item in items:
        if "pg" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("postgres"):
            item.add_marker(pytest.mark.postgres)  # the `pg` fixture starts a server, marked or not
        if not isinstance(item, pytest.Function) or item.get_closest_marker("postgres"):
            continue
        fixtures = [d.func for defs in item._fixtureinfo.name2fixturedefs.values() for d in defs]
        if any(_is_slow(f) for f in (item.function, *fixtures)):
            item.add_marker(pytest.mark.slow)
