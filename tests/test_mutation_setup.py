"""`make mutation` runs the tests inside a copy of the repository (mutmut's `mutants/`): the copy must hold
every file the tests read, or the run stops before the first mutant (it did, once `migrations/` existed)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Tracked top-level entries the mutation copy does not need: repository plumbing and the project file mutmut
# itself reads from the repository root.
NOT_COPIED = {".gitignore", "pyproject.toml", "tests"}  # mutmut copies tests/ itself


def _mutmut_settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]


def test_the_mutation_copy_holds_every_tracked_top_level_entry():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top_level = {line.split("/", 1)[0] for line in tracked.splitlines() if line}
    settings = _mutmut_settings()
    copied = set(settings["source_paths"]) | set(settings["also_copy"])
    assert top_level - copied - NOT_COPIED == set()

