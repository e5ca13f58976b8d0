"""Print the score of the last `mutmut run` per package, and every surviving mutant that is not listed as
equivalent in tests/mutation_equivalent.txt (with its diff, so a person can write the test that kills it).

Run by `make mutation` after `mutmut run`; reads mutants/*.meta (mutmut's own result files).
Exit 0 when config/ and policy/ reach the goal (90 % of their mutants killed), else 1.

`--lock` (`make mutation-lock`, after a run) writes tests/mutation_equivalent.lock: every mutant judged
equivalent (listed, or by rule) that this run confirmed by running every test reaching it, with the fingerprint of
the code it was confirmed on (its module's source and the mutant itself). scripts/mutmut_run.py does not run a
locked mutant again while that fingerprint holds (`make mutation RUN_EQUIVALENTS=1` does): an equivalent mutant
survives every test by definition, and each one costs a whole run of its function's tests (about a tenth of a
whole run's time). A change to its module, or a mutant renumbered by a change to its function, runs it again.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT = ROOT / "tests" / "mutation_equivalent.txt"
LOCK = ROOT / "tests" / "mutation_equivalent.lock"
GOAL = 0.90
GOAL_PACKAGES = ("config", "policy")
# mutmut's exit codes of a mutant's test run (mutmut/stats.py): 1 and 3 mean the tests failed, i.e. killed;
# 37 means mypy refused the mutant (`type_check_command`), which `make test` would too.
KILLED = {1, 3, 37}
TIMEOUT = {24, -24, 36, 152, 255}
NOT_RUN = {None, 33, 34, 5}  # not checked, no test reaches the mutated function, skipped
LOCKED = 34  # mutmut's "skipped", given by scripts/mutmut_run.py (SKIPPED) to a locked equivalent not run again
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


def _located(name: str) -> tuple[str, str]:
    """(module, function name in the mutated copy) of a mutant, e.g. ("config.catalog", "xǁCatalogǁorder__mutmut_8")."""
    module, _, function = name.rpartition(".")
    while module and not (MUTANTS / (module.replace(".", "/") + ".py")).is_file():
        module, _, rest = module.rpartition(".")  # a method: module.Class-mangled name
        function = f"{rest}.{function}"
    return module, function.split(".")[-1]


def diff(name: str) -> list[str]:
    """The lines a mutant changes, as `-old` / `+new`."""
    module, function = _located(name)
    functions = _functions(module) if module else {}
    mutant = functions.get(function, "")
    original = functions.get(function.rsplit("__mutmut_", 1)[0] + "__mutmut_orig", "")
    lines = difflib.unified_diff(original.splitlines()[1:], mutant.splitlines()[1:], lineterm="", n=0)
    return [line for line in lines if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def fingerprint(name: str) -> str | None:
    """The code a mutant's verdict depends on: its module's source (ROOT, unmutated) and the mutant function (the
    mutated copy). None when either is missing."""
    module, function = _located(name)
    if not module:
        return None
    source = ROOT / (module.replace(".", "/") + ".py")
    mutant = _functions(module).get(function)
    if mutant is None or not source.is_file():
        return None
    return hashlib.sha256(f"{source.read_text()}\0{mutant}".encode()).hexdigest()[:20]


def locked() -> dict[str, str]:
    """mutant name -> fingerprint, from tests/mutation_equivalent.lock (`name fingerprint` per line; # comments)."""
    out: dict[str, str] = {}
    if LOCK.is_file():
        for line in LOCK.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                name, fingerprint_ = line.split()
                out[name] = fingerprint_
    return out


def still_locked(lock: dict[str, str], name: str) -> bool:
    return name in lock and fingerprint(name) == lock[name]


def write_lock(found: dict[str, int | None]) -> tuple[int, int]:
    """Lock every equivalent mutant this run confirmed (survived all its tests), keep those still locked that it
    skipped or did not judge (a run of a few modules); returns (confirmed now, kept)."""
    known, lock = equivalent(), locked()
    entries: dict[str, str] = {}
    confirmed = kept = 0
    for name, code in sorted(found.items()):
        if code == 0 and (name in known or equivalent_by_rule(diff(name))):
            value = fingerprint(name)
            if value:
                entries[name] = value
                confirmed += 1
        elif code in (LOCKED, None) and still_locked(lock, name):  # skipped, or not judged in this copy
            entries[name] = lock[name]
            kept += 1
    header = ("# Equivalent mutants (tests/mutation_equivalent.txt, or by rule) confirmed by a `make mutation` run:\n"
              "# each survived every test reaching it, on the code with this fingerprint (scripts/mutation_report.py\n"
              "# fingerprint: its module's source and the mutant). scripts/mutmut_run.py does not run them again\n"
              "# while it holds. Written by `make mutation-lock`; do not edit by hand.\n")
    LOCK.write_text(header + "".join(f"{name} {value}\n" for name, value in entries.items()))
    return confirmed, kept


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


def main(argv: list[str]) -> int:
    if not MUTANTS.is_dir():
        print("no mutants/ directory: run `make mutation`", file=sys.stderr)
        return 2
    found = results()
    if "--lock" in argv:
        confirmed, kept = write_lock(found)
        print(f"{LOCK.relative_to(ROOT)}: {confirmed} equivalent mutants confirmed by this run, {kept} kept")
        return 0
    known = equivalent()
    lock = locked()
    not_rerun = 0
    by_package: dict[str, Counter[str]] = defaultdict(Counter)
    open_survivors: list[str] = []
    rules: Counter[str] = Counter()
    for name, code in sorted(found.items()):
        state = status(code)
        if code == LOCKED and still_locked(lock, name):
            state = "equivalent"
            not_rerun += 1
        elif state != "killed" and name in known:
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
    if not_rerun:
        print(f"{not_rerun} equivalent mutants not run again: confirmed by an earlier run on the same code "
              f"({LOCK.relative_to(ROOT)}; `make mutation RUN_EQUIVALENTS=1` runs them)")
    if stale:
        print(f"\nlisted as equivalent but no longer generated (remove from {EQUIVALENT.name}): {', '.join(stale)}")
    print(f"\n{len(open_survivors)} surviving mutants (not listed as equivalent):")
    for name in open_survivors:
        print(f"  {name} [{status(found[name])}]")
        for line in diff(name):
            print(f"      {line.strip()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
