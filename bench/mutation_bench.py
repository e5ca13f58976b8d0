"""Benchmark: what one mutant costs under `make mutation` with the killing test first (scripts/mutmut_run.py,
`Killers`) against the same collected session in mutmut's order (fastest test first), on the same mutants in the
same run, alternating; and the proof that both orders give every mutant the same verdict (not a test: it takes
minutes).

    python bench/mutation_bench.py [--per-package 30]     # whole functions of config, policy, render, sql
    python bench/mutation_bench.py 'config.naming.*' ...    # or these mutants (mutmut's names or globs)

Needs `mutants/` and its test statistics from one `make mutation` (any MUTANTS glob will do; without them it
makes them first, about 12 minutes). Like mutmut's fork server under scripts/mutmut_run.py, this process collects
the fast tests once inside `mutants/`; then for each mutant it forks twice, in alternating order: one process runs
the mutant's tests in mutmut's order (`run_collected` without earlier killers, what `make mutation` did before),
the other with the killing tests of this run's earlier mutants first (what it does now; only this way records
killers, as `make mutation` would). Each is timed from fork to exit and its exit code compared. Killers pay off
across the mutants of one function, so the sample is whole functions (at most 10 mutants each, every n-th function
of each package), in mutmut's order (estimated time, then name), leaving out the mutants mypy refused in the last
run (no test runs for them either way) and those no fast test reaches. A mutant whose tests exceed `--limit`
seconds (default 60) is stopped and counted as a timeout in that way.

Exit 1 when a mutant's verdict differs between the two ways (a timeout in one only is reported, not counted).
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import mutation_report  # noqa: E402  (scripts/: the last run's results)
import mutmut_run  # noqa: E402  (scripts/: run_collected, what `make mutation` runs per mutant)

MUTANTS = ROOT / "mutants"
PACKAGES = {"config": "config.", "policy": "policy.", "render": "edumatrix_db.offline.render.",
            "sql": "edumatrix_db.database.sql."}
WAYS = ("mutmut order", "killer first")
PER_FUNCTION = 10


def choose(patterns: list[str], per_package: int, tests_of: Callable[[str], list[str]],
           estimate: Callable[[str], float]) -> list[str]:
    """The sample in mutmut's order: whole functions (module docstring), or the mutants `patterns` name."""
    candidates = [name for name, code in mutation_report.results().items() if code != 37 and tests_of(name)]
    if patterns:
        chosen = [n for n in candidates if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    else:
        chosen = []
        for prefix in PACKAGES.values():
            by_function: dict[str, list[str]] = {}
            for name in sorted(candidates, key=mutant_order):
                if name.startswith(prefix):
                    by_function.setdefault(name.partition("__mutmut_")[0], []).append(name)
            functions = list(by_function.values())
            step = max(1, len(functions) // max(1, per_package // 5))  # about 5 mutants a function
            of_package: list[str] = []
            for mutants in functions[::step]:
                of_package += mutants[:PER_FUNCTION]
                if len(of_package) >= per_package:
                    break
            chosen += of_package
    return sorted(chosen, key=lambda name: (estimate(name), mutant_order(name)))


def mutant_order(name: str) -> tuple[str, int]:
    function, _, number = name.partition("__mutmut_")
    return function, int(number) if number.isdigit() else 0


def timed_fork(run: Callable[[], int], limit: int) -> tuple[int, float]:
    """Run `run` in a forked process (output discarded, stopped after `limit` s); its exit code and seconds."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        signal.alarm(limit)
        devnull = open(os.devnull, "w")  # noqa: SIM115 (the process ends with os._exit)
        sys.stdout = sys.stderr = devnull
        try:
            code = run()
        except BaseException:
            code = -1
        os._exit(code & 0xFF)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), time.monotonic() - started


def status(code: int) -> str:
    from mutmut.stats import status_by_exit_code

    return "timeout" if code == -signal.SIGALRM else status_by_exit_code[code]


def summary(seconds: list[float]) -> str:
    if not seconds:
        return "-"
    ordered = sorted(seconds)
    return (f"{statistics.median(ordered):.2f} / {statistics.fmean(ordered):.2f} / "
            f"{ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mutants", nargs="*", help="mutant names or globs (default: an even sample)")
    parser.add_argument("--per-package", type=int, default=30)
    parser.add_argument("--limit", type=int, default=60, help="seconds before a mutant's tests are stopped")
    args = parser.parse_args()
    console = Console(file=sys.__stderr__)  # the session's own output goes to /dev/null
    stats_file = MUTANTS / "mutmut-stats.json"
    if not stats_file.is_file():  # first use: what one `make mutation` leaves (about 12 minutes from scratch)
        console.print("no mutants/ yet: generating them and their test statistics (mutmut over one function)")
        for command in (["-m", "tests.plan_cache"],
                        ["scripts/mutmut_run.py", "--max-children", "2", "edumatrix_db.offline.render.x__short*"]):
            subprocess.run(["nice", "-n", "15", sys.executable, *command], cwd=ROOT, check=True,
                           stdout=subprocess.DEVNULL)

    import pytest
    from mutmut.configuration import config
    from mutmut.mutation import trampoline
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.utils.file_utils import change_cwd, setup_source_paths
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    stats = json.loads(stats_file.read_text())
    durations: dict[str, float] = stats["duration_by_test"]
    os.chdir(ROOT)
    setup_source_paths()  # mutmut's: the mutated copy is what the tests import, the original cannot be
    measured: dict[str, dict[str, tuple[int, float]]] = {}
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    killers = mutmut_run.Killers(Path(tempfile.mkdtemp(prefix="mutation-bench-killers-")))

    class AlternateWays:
        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self, session: pytest.Session) -> bool:
            items = {item.nodeid: item for item in session.items}

            def tests_of(name: str) -> list[str]:
                reached = stats["tests_by_mangled_function_name"].get(mangled_name_from_mutant_name(name), [])
                return [t for t in reached if t in items]

            def estimate(name: str) -> float:  # mutmut's order: the estimated time of a surviving mutant
                return sum(durations.get(t, 0.0) for t in tests_of(name))

            chosen = choose(args.mutants, args.per_package, tests_of, estimate)
            with Progress(console=console) as progress:
                task = progress.add_task(f"{len(chosen)} mutants, both ways", total=len(chosen))
                for index, name in enumerate(chosen):
                    tests = tests_of(name)

                    def run(name: str = name, tests: list[str] = tests, *, killer_first: bool) -> int:
                        set_mutant_under_test(name)
                        trampoline.get_mutant_under_test = lambda: name
                        code, killer = mutmut_run.run_collected(session, items, tests, lambda t: durations.get(t, 0.0),
                                                                first=killers.recall(name) if killer_first else ())
                        if killer_first and killer is not None:
                            killers.record(name, killer)
                        return code

                    ways = {"mutmut order": lambda run=run: run(killer_first=False),
                            "killer first": lambda run=run: run(killer_first=True)}
                    order = WAYS if index % 2 == 0 else WAYS[::-1]
                    measured[name] = {way: timed_fork(ways[way], args.limit) for way in order}
                    progress.advance(task)
            return True

    set_mutant_under_test("collect")  # no mutant while collecting (tests/conftest.py reads it at import)
    started = time.monotonic()
    with open(os.devnull, "w") as devnull, redirect_stdout(devnull), change_cwd(MUTANTS):
        code = pytest.main(["--rootdir=.", "--tb=native", "-q", "--capture=sys", "-p", "no:randomly",
                            *config().pytest_add_cli_args_test_selection, *config().pytest_add_cli_args],
                           plugins=[AlternateWays()])
    if not measured:
        sys.exit(f"nothing measured (pytest exit code {code})")

    table = Table(title=f"seconds per mutant, fork to exit: median / mean / p90 (load {load_before} -> "
                        f"{Path('/proc/loadavg').read_text().split()[:3]})")
    for column in ("package", "mutants", *WAYS, "ratio of sums", "ratio per mutant: median / p10 / p90"):
        table.add_column(column)
    for package, prefix in [*PACKAGES.items(), ("all", "")]:
        names = [n for n in measured if n.startswith(prefix)]
        times = {way: [measured[n][way][1] for n in names] for way in WAYS}
        old, new = (sum(times[way]) for way in WAYS)
        ratios = sorted(measured[n][WAYS[0]][1] / measured[n][WAYS[1]][1] for n in names)
        spread = (f"{statistics.median(ratios):.2f} / {ratios[int(0.1 * len(ratios))]:.2f} / "
                  f"{ratios[min(len(ratios) - 1, int(0.9 * len(ratios)))]:.2f}") if ratios else "-"
        table.add_row(package, str(len(names)), *(summary(times[way]) for way in WAYS),
                      f"{old / new:.2f}x" if new else "-", spread)
    console.print(table)
    shutil.rmtree(killers.directory, ignore_errors=True)
    killed = [n for n in measured if status(measured[n]["killer first"][0]) == "killed"]
    for label, names in (("killed", killed), ("not killed", [n for n in measured if n not in killed])):
        times = {way: [measured[n][way][1] for n in names] for way in WAYS}
        console.print(f"{label} ({len(names)}): " + ", ".join(f"{way} {summary(times[way])}" for way in WAYS))
    console.print(f"the whole run took {time.monotonic() - started:.0f} s (one collection, then both ways)")
    different = [n for n in measured if len({status(measured[n][way][0]) for way in WAYS}) > 1]
    timeouts = [n for n in different if "timeout" in {status(measured[n][way][0]) for way in WAYS}]
    for name in different:
        console.print(f"{'timeout in one way only' if name in timeouts else '[red]verdict differs[/red]'}: {name}: "
                      + " -> ".join(status(measured[name][way][0]) for way in WAYS))
    console.print(f"verdicts: {len(measured) - len(different)} the same, {len(different) - len(timeouts)} "
                  f"different, {len(timeouts)} timed out in one way only")
    return 1 if len(different) > len(timeouts) else 0


if __name__ == "__main__":
    sys.exit(main())
