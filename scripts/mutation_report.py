"""Print the score of the last `mutmut run` per package, and every surviving mutant that is not listed as
equivalent in tests/mutation_equivalent.txt (with its diff, so a person can write the test that kills it).

Run by `make mutation` after `mutmut run`; reads mutants/*.meta (mutmut's own result files).
Exit 0 when config/ and policy/ reach the goal (90 % of their mutants killed), else 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
GOAL = 0.90
GOAL_PACKAGES = ("config", "policy")
# mutmut's exit codes of a mutant's test run (mutmut/stats.py): 1 and 3 mean the tests failed, i.e. killed.
KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
NOT_RUN = {None, 33, 34, 5}  # not checked, no test reaches the mutated function, skipped


def package_of(mutant: str) -> str:
    parts = mutant.split(".")
    return parts[0] if parts[0] in GOAL_PACKAGES else ".".join(parts[:3])


def equivalent() -> dict[str, str]:
    """mutant name -> why it cannot be killed (one per line: `name  reason`; # comments)."""
    out: dict[str, str] = {}
    if EQUIVALENT.is_file():
        for line in EQUIVALENT.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                name, _, reason = line.strip().partition(" ")
                out[name] = reason.strip()
    return out


def results() -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for meta in sorted(MUTANTS.rglob("*.meta")):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    return out


def status(code: int | None) -> str:
    if code in KILLED or code in TIMEOUT:
        return "killed"  # a mutant that makes the tests hang is caught too
    if code in NOT_RUN:
        return "no test" if code in (33, 5) else "not run"
    return "survived" if code == 0 else f"suspicious ({code})"


def main() -> int:
    if not MUTANTS.is_dir():
        print("no mutants/ directory: run `make mutation`", file=sys.stderr)
        return 2
    found = results()
    known = equivalent()
    by_package: dict[str, Counter[str]] = defaultdict(Counter)
    open_survivors: list[str] = []
    for name, code in sorted(found.items()):
        state = status(code)
        if state != "killed" and name in known:
            state = "equivalent"
        by_package[package_of(name)][state] += 1
        if state in ("survived", "no test") or state.startswith("suspicious"):
            open_survivors.append(name)
    stale = sorted(set(known) - set(found))
    print(f"{'package':34} {'mutants':>7} {'killed':>7} {'equiv.':>7} {'survived':>8} {'no test':>7} {'score':>7}")
    failed = False
    for package, counts in sorted(by_package.items()):
        total = sum(counts.values())
        considered = total - counts["equivalent"] - counts["not run"]
        score = counts["killed"] / considered if considered else 1.0
        goal = package in GOAL_PACKAGES
        failed |= goal and score < GOAL
        print(f"{package:34} {total:>7} {counts['killed']:>7} {counts['equivalent']:>7} {counts['survived']:>8} "
              f"{counts['no test']:>7} {score:>6.1%}{'  (goal 90 %)' if goal else ''}")
    print("\nscore = killed / (mutants - equivalent); a mutant no fast test reaches counts as surviving")
    if stale:
        print(f"\nlisted as equivalent but no longer generated (remove from {EQUIVALENT.name}): {', '.join(stale)}")
    print(f"\n{len(open_survivors)} surviving mutants (not listed as equivalent):")
    for name in open_survivors:
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=ROOT, capture_output=True,
                              text=True, check=False).stdout
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        print(f"  {name} [{status(found[name])}]")
        for line in changed:
            print(f"      {line.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
