"""Print the score of the last `mutmut run` per package, and every surviving mutant that is not listed as
equivalent in tests/mutation_equivalent.txt (with its diff, so a person can write the test that kills it).

Run by `make mutation` after `mutmut run`; reads mutants/*.meta (mutmut's own result files).
Exit 0 when config/ and policy/ reach the goal (90 % of their mutants killed), else 1.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
GOAL = 0.90
GOAL_PACKAGES = ("config", "policy")
# mutmut's exit codes of a mutant's test run (mutmut/stats.py): 1 and 3 mean the tests failed, i.e. killed;
# 37 means mypy refused the mutant (`type_check_command`), which `make test` would too.
KILLED = {1, 3, 37}
TIMEOUT = {24, -24, 36, 152, 255}
NOT_RUN = {None, 33, 34, 5}  # not checked, no test reaches the mutated function, skipped
# Mutants equivalent by construction, recognised by their diff (a removed line, the line that replaced it).
EQUIVALENT_RULES = [
    (re.compile(r"^\s*report\((.+), None\)$"), re.compile(r"^\s*report\((.+?),? ?\)$"),
     "a resource policy's report() takes the URN as an optional second argument whose default is None, and the "
     "gate (like the analyzer) reports a resource policy's violation on the resource itself"),
]


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


@cache
def _functions(module: str) -> dict[str, str]:
    """Function name -> source, from the mutated copy of `module` (mutmut keeps every mutant as a function)."""
    path = MUTANTS / (module.replace(".", "/") + ".py")
    source = path.read_text()
    lines = source.splitlines()
    return {node.name: "\n".join(lines[node.lineno - 1:node.end_lineno])
            for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def diff(name: str) -> list[str]:
    """The lines a mutant changes, as `-old` / `+new`."""
    module, _, function = name.rpartition(".")
    while module and not (MUTANTS / (module.replace(".", "/") + ".py")).is_file():
        module, _, rest = module.rpartition(".")  # a method: module.Class-mangled name
        function = f"{rest}.{function}"
    functions = _functions(module) if module else {}
    mutant = functions.get(function.split(".")[-1], "")
    original = functions.get(function.split(".")[-1].rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
    lines = difflib.unified_diff(original.splitlines()[1:], mutant.splitlines()[1:], lineterm="", n=0)
    return [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def equivalent_by_rule(changed: list[str]) -> str | None:
    removed = [line[1:] for line in changed if line.startswith("-")]
    added = [line[1:] for line in changed if line.startswith("+")]
    for old, new, reason in EQUIVALENT_RULES:
        if len(removed) == len(added) == 1:
            before, after = old.match(removed[0]), new.match(added[0])
            if before and after and before[1] == after[1]:
                return reason
    return None


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
    rules: Counter[str] = Counter()
    for name, code in sorted(found.items()):
        state = status(code)
        if state != "killed" and name in known:
            state = "equivalent"
        elif state in ("survived", "no test"):
            reason = equivalent_by_rule(diff(name))
            if reason:
                state = "equivalent"
                rules[reason] += 1
        by_package[package_of(name)][state] += 1
        if code in TIMEOUT:
            by_package[package_of(name)]["timeout"] += 1  # counted as killed, shown apart
        if state in ("survived", "no test") or state.startswith("suspicious"):
            open_survivors.append(name)
    stale = sorted(set(known) - set(found))
    print(f"{'package':34} {'mutants':>7} {'killed':>7} {'timeout':>7} {'equiv.':>7} {'survived':>8} {'no test':>7} "
          f"{'not run':>7} {'score':>7}")
    failed = False
    for package, counts in sorted(by_package.items()):
        total = sum(counts.values()) - counts["timeout"]
        considered = total - counts["equivalent"] - counts["not run"]
        score = counts["killed"] / considered if considered else 1.0
        goal = package in GOAL_PACKAGES
        failed |= goal and score < GOAL
        print(f"{package:34} {total:>7} {counts['killed']:>7} {counts['timeout']:>7} {counts['equivalent']:>7} "
              f"{counts['survived']:>8} "
              f"{counts['no test']:>7} {counts['not run']:>7} {score:>6.1%}{'  (goal 90 %)' if goal else ''}")
    print("\nscore = killed / (mutants - equivalent - not run); a mutant no fast test reaches counts as surviving")
    print("timeout: killed because its tests ran past mutmut's time limit (a mutant that makes them hang is caught);"
          " on a loaded machine a survivor can time out too: re-run those by name on an idle one")
    for reason, count in rules.items():
        print(f"equivalent by rule ({count}): {reason}")
    if stale:
        print(f"\nlisted as equivalent but no longer generated (remove from {EQUIVALENT.name}): {', '.join(stale)}")
    print(f"\n{len(open_survivors)} surviving mutants (not listed as equivalent):")
    for name in open_survivors:
        print(f"  {name} [{status(found[name])}]")
        for line in diff(name):
            print(f"      {line.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
