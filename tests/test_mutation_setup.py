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



def test_the_type_check_filter_finds_each_mutant_function_with_its_decorators(tmp_path):
    """scripts/mutmut_run.py maps mypy's errors to mutant functions by their spans, as mutmut's own filter does."""
    import importlib.util
    from types import SimpleNamespace

    spec = importlib.util.spec_from_file_location("mutmut_run", ROOT / "scripts" / "mutmut_run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = tmp_path / "m.py"
    source.write_text("def x_f__mutmut_orig(a):\n    return a\n\n"
                      "@staticmethod\ndef x_f__mutmut_1(a):\n    def inner():\n        return None\n    return None\n\n"
                      "class C:\n    def xǁCǁg__mutmut_2(self):\n        return 1\n")
    found = module._mutated_functions(source, lambda name: "__mutmut_" in name, SimpleNamespace)
    assert [(f.function_name, f.line_number_start, f.line_number_end) for f in found] == [
        ("x_f__mutmut_orig", 1, 2), ("x_f__mutmut_1", 4, 8), ("xǁCǁg__mutmut_2", 11, 12)]
