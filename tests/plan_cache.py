"""Plans of the repository's stack files computed once, for `make mutation` only.

Under mutation testing (tests run inside mutmut's copy, `mutants/`), every mutant is tested in a fresh process;
re-running the Pulumi program there (seconds per stack) for each of thousands of mutants is out of any budget,
so the tests that read a plan through the session `planner`/`prod` fixtures were left out of the run and the
policy pack's mutants met no test. `make mutation` therefore plans every stack file once, in the repository
itself (`python -m tests.plan_cache`), and stores the recordings under `build/plan-cache/<key>/`; the key is
a hash of everything a plan depends on (components/, config/, edumatrix_db/, stacks/, the program, the installed
Pulumi packages). In `mutants/`, the fixtures serve those recordings when the key of the original tree matches:
the plans are the unmutated program's, which is what a policy mutant must be judged against (the plan does not
depend on policy/). A mutant of config/ or components/ is never judged by a cached plan: those tests then call
no mutated function, so mutmut does not associate them with it.

Outside `mutants/` (every `make test`), nothing here is used: plans are always computed.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import pickle
import sys
from pathlib import Path

from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner, Recording

HERE = Path(__file__).resolve().parent.parent
IN_MUTANTS = HERE.name == "mutants"
PROJECT = HERE.parent if IN_MUTANTS else HERE  # the original tree (mutmut's copy lives in <project>/mutants)
PLAN_INPUTS = ("components", "config", "edumatrix_db", "stacks", "__main__.py", "Pulumi.yaml")
PACKAGES = ("pulumi", "pulumi-aws", "pulumi-postgresql", "pulumi-random", "pydantic")


def inputs_key(root: Path = PROJECT) -> str:
    """A hash of every file a plan depends on, and of the Pulumi packages' versions."""
    digest = hashlib.sha256()
    for name in PLAN_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts) \
            if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")
    for package in PACKAGES:
        digest.update(f"{package}=={importlib.metadata.version(package)}".encode())
    return digest.hexdigest()[:16]


def cache_dir(root: Path = PROJECT) -> Path:
    return root / "build" / "plan-cache" / inputs_key(root)


class CachedPlanner(Planner):
    """A planner that reads the recordings `warm()` stored for the original tree, planning only what is not."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def plan(self, stack: str) -> Recording:
        stored = self.directory / f"{stack}.pickle"
        if stack not in self._cache and stored.is_file():
            self._cache[stack] = pickle.loads(stored.read_bytes())
        return super().plan(stack)


def serves_plans() -> bool:
    """Whether the session fixtures serve stored plans (and so cost no program run): in mutants/ only."""
    return IN_MUTANTS and cache_dir().is_dir()


def session_planner() -> Planner:
    return CachedPlanner(cache_dir()) if serves_plans() else Planner()


def warm(root: Path = PROJECT) -> Path:
    """Plan every stack file of `root` (its stacks/, which its key hashes) and store the recordings under its key.
    A plan already stored under the key is kept: the key hashes everything the plan depends on (every
    `make mutation` called this, planning every stack again for about 13 s). Each file is written whole and
    renamed into place, so a plan stored is a complete one."""
    target = cache_dir(root)
    target.mkdir(parents=True, exist_ok=True)
    planner = Planner(root / "stacks")
    for stack in available_stacks(root / "stacks"):
        stored = target / f"{stack}.pickle"
        if not stored.is_file():
            partial = target / f".{stack}.pickle.partial"
            partial.write_bytes(pickle.dumps(planner.plan(stack)))
            partial.replace(stored)
    return target


if __name__ == "__main__":
    print(f"plans of {', '.join(available_stacks())} stored in {warm().relative_to(PROJECT)}", file=sys.stderr)
