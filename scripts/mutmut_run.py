"""`mutmut run`, with two documented extensions of mutmut 3.8 (`make mutation` calls this instead of `mutmut run`).

1. The type-check filter maps mypy's errors to mutants through Python's own parser. mutmut maps every error of
   `type_check_command` to the mutant function holding it by parsing each mutated file with libcst and position
   metadata: on this project's mutated copy (43 files, the largest tens of thousands of lines) that took about
   ten minutes of the 30-minute budget, longer than mypy itself. `ast` gives the same function spans in seconds.
   And mypy (one process, 3-4 minutes on a fresh copy) runs beside mutmut's statistics run (another process,
   2-3 minutes) instead of before it: the statistics do not depend on mypy's verdicts, which are waited for the
   first time a mutant's verdict is looked up (`AwaitedDict`).

2. Each mutant runs its tests from one collection instead of a fresh `pytest.main`. mutmut forks a process per
   mutant that calls `pytest.main(<the mutant's tests>)`, which parses the options, loads the plugins and
   conftest, and collects every test file named (0.4 to 1.7 s here) before the first test runs, while a killed
   mutant's first failing test takes about 0.1 s. Here mutmut's own fork server (`process_isolation =
   "forkserver"`: the parent stays free of pytest, a server forks one process per mutant, with mutmut's CPU and
   wall-clock limits) is itself one pytest session: it collects the fast tests once, and each forked mutant
   process runs only its own tests' collected items through pytest's `pytest_runtest_protocol`, in the order and
   with the options (`-x`, markers) `pytest.main` would have used, then exits with pytest's exit code. No test has
   run in the server, so session fixtures, caches and test state start fresh in each mutant's process, as they
   did with `pytest.main`. Stats, the clean run and the forced-fail check stay mutmut's own `pytest.main` runs.

3. The killing test first (what PIT does). Most mutants of a function die by the same test, but mutmut runs each
   mutant's tests fastest first, so a killed mutant often runs several passing tests before its killer. Here each
   mutant process, when a test fails, writes that test's id to a small file per function and per module in a
   directory of this run (`Killers`; the processes are forked, so they share nothing else); the next mutant of
   the function runs the tests named there first (the function's, then its module's; only those among its own
   tests), then the rest fastest first. The set of tests and `-x` are unchanged: a survivor still runs every test
   reaching its function, and a killed mutant is killed by a real failing test. bench/mutation_bench.py
   compares both orders on the same mutants.

4. The clean run and the test listing are skipped when nothing they depend on changed. On a later run (mutants/
   kept), mutmut lists every test (a pytest collection) to find new ones, then runs every test on the unmutated
   code (the clean run): minutes, repeated on every `make mutation MUTANTS=...`. Once every fast test has passed
   on the unmutated code (a complete statistics run or a complete clean run), the fingerprint of its inputs
   (`inputs_fingerprint`: the files mutmut copies, tests/, pyproject.toml, the installed distributions), taken
   before mutmut copies them, is kept in mutants/; while it is the same, no test can have appeared or started
   failing, so both are skipped. (Taken after the copy, a test written during a run was never collected but
   counted as listed, and the next run did not list it: its mutants stayed "no test".)

5. Equivalent mutants confirmed by an earlier run are not run again while their code is the same. An equivalent
   mutant survives every test reaching its function by definition, so each one costs a whole run of those tests
   (8-16 s for the loader's); about a tenth of a whole run went to the ~240 listed ones. `make mutation-lock`
   (scripts/mutation_report.py --lock) writes tests/mutation_equivalent.lock after a run: the equivalent mutants
   that survived it, each with the fingerprint of its module's source and of the mutant. This run gives a
   locked mutant whose fingerprint still holds mutmut's "skipped" verdict (34, which mutmut never sets itself)
   instead of running it, and runs again one it skipped earlier whose fingerprint no longer holds. Mutants named
   on the command line always run; `--run-equivalents` (`make mutation RUN_EQUIVALENTS=1`) runs them all.

A mutmut whose internals differ runs unpatched, with a warning.
"""

from __future__ import annotations

import ast
import bisect
import gc
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mutmut.workers.isolation import MutantRunner

RUN_EQUIVALENTS_FLAG = "--run-equivalents"
# `--pytest-main` (first argument): mutmut's own per-mutant `pytest.main`, for comparing verdicts and times
# (bench/mutation_bench.py).
PYTEST_MAIN_FLAG = "--pytest-main"


def _mutated_functions(path: Path, is_mutated: Any, location: Any) -> list[Any]:
    """The mutant functions of a mutated file with their line spans (decorators included), by start line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and is_mutated(node.name):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            found.append(location(file=path, function_name=node.name, line_number_start=start,
                                  line_number_end=node.end_lineno or node.lineno))
    return sorted(found, key=lambda m: m.line_number_start)


class AwaitedDict(dict[str, Any]):
    """A dict filled by `finish()` the first time it is read (mypy's verdicts: module docstring, 1)."""

    def __init__(self, finish: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._finish: Callable[[], dict[str, Any]] | None = finish

    def _wait(self) -> None:
        if self._finish is not None:
            finish, self._finish = self._finish, None
            super().update(finish())

    def get(self, key: str, default: Any = None) -> Any:
        self._wait()
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._wait()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._wait()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._wait()
        return super().__iter__()

    def __len__(self) -> int:
        self._wait()
        return super().__len__()

    def keys(self) -> Any:
        self._wait()
        return super().keys()

    def values(self) -> Any:
        self._wait()
        return super().values()

    def items(self) -> Any:
        self._wait()
        return super().items()


def patch() -> bool:
    try:
        import mutmut.__main__ as cli
        from mutmut.mutation import file_mutation as fm
        from mutmut.type_checking import parse_mypy_report
        needed = (fm.run_type_checker, fm.group_by_path, fm.is_mutated_method_name, fm.MutatedMethodLocation,
                  fm.FailedTypeCheckMutant, fm.get_mutant_name, fm.change_cwd, fm.config,
                  cli.filter_mutants_with_type_checker)
    except (ImportError, AttributeError) as exc:
        print(f"scripts/mutmut_run.py: mutmut's internals changed ({exc}); running it unpatched", file=sys.stderr)
        return False
    del needed

    def caught_by(errors: list[Any]) -> dict[str, Any]:
        """The mutants holding mypy's errors (run inside mutants/: the paths are relative to it)."""
        caught: dict[str, Any] = {}
        for path, errors_of_file in fm.group_by_path(errors).items():
            functions = _mutated_functions(path, fm.is_mutated_method_name, fm.MutatedMethodLocation)
            if not functions:
                continue
            starts = [f.line_number_start for f in functions]
            for error in errors_of_file:
                index = bisect.bisect_right(starts, error.line_number) - 1
                mutant = functions[index] if index >= 0 else None
                if mutant is None or error.line_number > mutant.line_number_end:
                    raise RuntimeError(f"no mutant holds the type error {path}:{error.line_number} "
                                       f"({error.error_description}): mypy must pass on the unmutated code")
                name = fm.get_mutant_name(path.relative_to(Path(".").absolute()), mutant.function_name)
                caught[name] = fm.FailedTypeCheckMutant(method_location=mutant, name=name, error=error)
        return caught

    def filter_mutants_with_type_checker() -> dict[str, Any]:
        command = fm.config().type_check_command
        if "mypy" not in command:
            with fm.change_cwd(Path("mutants")):
                return caught_by(fm.run_type_checker(command))
        # mypy runs beside the statistics run (module docstring, 1); its JSON goes to a file, not a pipe nobody
        # reads until the end (a full pipe would stop mypy).
        report = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 (closed when read)
        started = time.monotonic()
        process = subprocess.Popen(command, cwd="mutants", stdout=report, stderr=subprocess.PIPE, encoding="utf-8")

        def finish() -> dict[str, Any]:
            _, stderr = process.communicate()
            report.seek(0)
            output = report.read()
            report.close()
            try:
                diagnostics = [json.loads(line) for line in output.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                raise RuntimeError(f"mypy did not return JSON: {output[:500]} (stderr: {stderr[:500]})") from exc
            with fm.change_cwd(Path("mutants")):
                caught = caught_by(parse_mypy_report(diagnostics))
            print(f"    mypy refused {len(caught)} mutants (mypy started {time.monotonic() - started:.0f} s ago)")
            return caught

        return AwaitedDict(finish)

    cli.filter_mutants_with_type_checker = filter_mutants_with_type_checker
    return True


class Killers:
    """The tests that killed earlier mutants of this run, per function and per module (module docstring, 3): one
    file per key in `directory`, most recent first, written whole and renamed into place (the mutant processes
    run side by side and only ever see a complete file)."""

    KEEP = 3  # per key: the few tests that kill most of a function's mutants

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def keys(mutant_name: str) -> tuple[str, str]:
        """The mutant's function (mutmut's mangled name) and module."""
        function = mutant_name.partition("__mutmut_")[0]
        return function, function.rpartition(".")[0]

    def _path(self, key: str) -> Path:
        return self.directory / key.replace("/", "_")

    def recall(self, mutant_name: str) -> list[str]:
        """Earlier killers for this mutant: its function's, then its module's, most recent first, no repeats."""
        found: list[str] = []
        for key in self.keys(mutant_name):
            path = self._path(key)
            if path.is_file():
                found += [test for test in path.read_text().splitlines() if test not in found]
        return found

    def record(self, mutant_name: str, test: str) -> None:
        for key in self.keys(mutant_name):
            path = self._path(key)
            earlier = path.read_text().splitlines() if path.is_file() else []
            kept = [test, *(t for t in earlier if t != test)][: self.KEEP]
            partial = path.with_name(f".{path.name}.{os.getpid()}")
            partial.write_text("\n".join(kept) + "\n")
            os.replace(partial, path)


def run_order(tests: Iterable[str], duration: Callable[[str], float], first: Iterable[str] = ()) -> list[str]:
    """The order a mutant's tests run in: `first` (earlier killers) among `tests`, then the others fastest first
    (mutmut's order). Always exactly `tests`, once each."""
    tests = set(tests)
    leading = [test for test in dict.fromkeys(first) if test in tests]
    return leading + sorted(tests - set(leading), key=lambda test: (duration(test), test))


def run_collected(session: Any, items_by_id: dict[str, Any], tests: Iterable[str],
                  duration: Callable[[str], float], first: Iterable[str] = ()) -> tuple[int, str | None]:
    """Run the collected items of `tests` (node ids) as `pytest.main([*tests, "-x"])` would, in `run_order`
    (`first`, then fastest first as mutmut orders them), and return pytest's exit code (0 passed, 1 a test failed,
    2 interrupted, 3 internal error) and the id of the test that failed, if one did. A node id the session did not
    collect is an error (`pytest.main` stops on it too)."""
    tests = run_order(tests, duration, first)
    missing = [test for test in tests if test not in items_by_id]
    if missing:
        raise LookupError(f"tests not collected in mutants/: {', '.join(missing[:5])}")
    items = [items_by_id[test] for test in tests]
    killer = None
    try:
        for index, item in enumerate(items):
            nextitem = items[index + 1] if index + 1 < len(items) else None
            failed_before = session.testsfailed
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if killer is None and session.testsfailed > failed_before:
                killer = item.nodeid
            if session.shouldfail:
                break
            if session.shouldstop:
                return 2, killer
    except KeyboardInterrupt:
        return 2, killer
    except Exception:  # pytest.main reports an error outside a test as an internal error, which mutmut counts as killed
        return 3, killer
    return (1, killer) if session.testsfailed else (0, None)


PASSED_FINGERPRINT = Path("mutants") / "all-tests-passed.fingerprint"


def fingerprint_of(roots: Iterable[Path]) -> str:
    """A hash of every file under `roots` (caches excepted) and of the installed distributions."""
    digest = hashlib.sha256()
    for root in sorted(set(roots)):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root] if root.is_file() else []
        for file in files:
            if not {"__pycache__", ".hypothesis", ".mypy_cache"} & set(file.parts):
                digest.update(str(file).encode() + b"\0" + file.read_bytes() + b"\0")
    for distribution in sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()):
        digest.update(distribution.encode() + b"\0")
    return digest.hexdigest()


def inputs_fingerprint() -> str:
    """The fingerprint of everything the fast tests' outcome on the unmutated code depends on: the files mutmut
    copies into mutants/ (its source paths, `also_copy`, tests/), pyproject.toml, and the installed distributions."""
    from mutmut.configuration import config

    return fingerprint_of({Path(p) for p in (*config().source_paths, *config().also_copy)}
                          | {Path("tests"), Path("pyproject.toml")})


class PassedInputs:
    """Whether every fast test passed on the unmutated code with the inputs of this run (module docstring, 4).

    `at_start` is the fingerprint taken before mutmut copies the files into mutants/: a test written while the run
    goes on is not in this run's copy, so it was neither collected nor passed, and the next run must list it."""

    def __init__(self, at_start: str, path: Path = PASSED_FINGERPRINT) -> None:
        self.at_start = at_start
        self.path = path

    def record(self) -> None:
        self.path.write_text(self.at_start)

    def hold(self) -> bool:
        return self.path.is_file() and self.path.read_text() == self.at_start


def collected_session_runner(passed: PassedInputs, max_workers: int = 1) -> MutantRunner:
    """mutmut's fork server, made one pytest session that collects the fast tests once (module docstring, 2)."""
    import pytest
    from mutmut.configuration import config
    from mutmut.mutation import trampoline
    from mutmut.mutation.trampoline import set_mutant_under_test
    from mutmut.runners.harness import ListAllTestsResult, PytestRunner
    from mutmut.state import state
    from mutmut.utils.file_utils import change_cwd
    from mutmut.workers.isolation import ForkServerRunner, MutantResult

    collected: dict[str, Any] = {}  # in the server: the session and its items by node id
    # This run's killing tests (module docstring, 3), in a directory made when the mutants start (the fork server
    # and its mutant processes inherit its name) and removed when they end.
    killers = Killers(Path())

    class CollectedTestsRunner(PytestRunner):
        def warm_up(self) -> None:
            """Nothing to do: the server's own session has collected the tests."""

        def run_tests(self, *, mutant_name: str | None, tests: Iterable[str]) -> int:
            if mutant_name is None or "session" not in collected:  # the clean run, outside the server
                return super().run_tests(mutant_name=mutant_name, tests=tests)
            # Every call of a mutated function asks which mutant is active, by reading (and decoding)
            # MUTANT_UNDER_TEST from os.environ, a tenth of a config mutant's time; in this process it is fixed
            # (no test sets the variable), so it is answered from memory.
            trampoline.get_mutant_under_test = lambda: mutant_name
            code, killer = run_collected(collected["session"], collected["items"], tests,
                                         lambda test: state().duration_by_test.get(test, 0.0),
                                         first=killers.recall(mutant_name))
            if killer is not None:
                killers.record(mutant_name, killer)
            return code

    class Serve:
        """The plugin whose test loop is mutmut's fork-server loop, once the session has collected."""

        def __init__(self, serve: Callable[[], None]) -> None:
            self.serve = serve
            self.served = False

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self, session: Any) -> bool:
            if session.testsfailed:
                raise RuntimeError(f"{session.testsfailed} errors collecting the tests in mutants/")
            collected.update(session=session, items={item.nodeid: item for item in session.items})
            gc.collect()
            gc.freeze()  # the mutant processes share the collected session's memory instead of copying it
            self.serve()
            self.served = True
            return True

    class CollectedSessionRunner(ForkServerRunner):
        def __init__(self) -> None:
            super().__init__(max_workers=max_workers, test_runner_class=CollectedTestsRunner, test_runner_args={},
                             debug=config().debug, max_restarts=config().max_forkserver_restarts)
            self.submitted: dict[str, float] = {}
            self.all_tests_passed = False

        def collect_stats(self, tests: Iterable[str] | None) -> int:
            code = super().collect_stats(tests)
            # mutmut's statistics run is every selected test on the unmutated code, stopping at a failure; a
            # complete one that passed is the clean run mutmut makes next (a full run of the tests once more).
            self.all_tests_passed = code == 0 and not list(tests or [])
            if self.all_tests_passed:
                passed.record()
            return code

        def run_clean_tests(self, tests: Iterable[str]) -> int:
            # A later run on the same inputs (module docstring, 4) need not run the tests again either.
            if self.all_tests_passed or passed.hold():
                return 0
            tests = list(tests)
            code = super().run_clean_tests(tests)
            if code == 0 and not tests:  # every test, as in the statistics run
                passed.record()
            return code

        def list_all_tests(self) -> ListAllTestsResult:
            # Nothing the collection depends on changed since every known test passed: the same tests.
            if passed.hold() and state().duration_by_test:
                return ListAllTestsResult(ids=set(state().duration_by_test))
            return super().list_all_tests()

        def _forkserver_main(self, work_fd: int, result_fd: int) -> None:
            plugin = Serve(lambda: ForkServerRunner._forkserver_main(self, work_fd, result_fd))
            # tests/conftest.py reads MUTANT_UNDER_TEST at import (the mutation profile of the property tests);
            # no mutant is active while collecting.
            set_mutant_under_test("collect")
            # --capture=sys: the mutant processes run side by side, and pytest's default fd capture would have
            # them share (and truncate) one temporary file inherited from the server.
            with open(os.devnull, "w") as devnull, redirect_stdout(devnull), redirect_stderr(devnull), \
                    change_cwd("mutants"):
                code = CollectedTestsRunner().execute_pytest(
                    ["-q", "--capture=sys", "-p", "no:randomly", "-p", "no:random-order",
                     *config().pytest_add_cli_args_test_selection], plugins=[plugin])
            if not plugin.served:
                raise RuntimeError(f"the fork server's pytest session ended before serving (exit code {code})")

        def startup(self) -> None:
            killers.directory = Path(tempfile.mkdtemp(prefix="mutmut-killers-"))
            super().startup()

        def shutdown(self) -> None:
            try:
                super().shutdown()
            finally:
                if killers.directory != Path():
                    shutil.rmtree(killers.directory, ignore_errors=True)

        def submit(self, mutant_name: str, tests: list[str], cpu_time_limit: int, estimated_time: float) -> None:
            self.submitted[mutant_name] = time.monotonic()
            super().submit(mutant_name, tests, cpu_time_limit, estimated_time)

        def wait_for_result(self, timeout: float | None = None) -> MutantResult:
            result = super().wait_for_result(timeout)
            started = self.submitted.pop(result.mutant_name, None)
            if started is not None:  # mutmut's fork server reports no duration; the report's timings need one
                result.duration = time.monotonic() - started
            return result

    return CollectedSessionRunner()


def skip_locked_equivalents(holds: Callable[[str], bool]) -> bool:
    """Give the locked equivalent mutants whose fingerprint holds the verdict "skipped" (module docstring, 5)."""
    try:
        import mutmut.__main__ as cli
        collect = cli.collect_source_file_mutation_data
    except (ImportError, AttributeError) as exc:
        print(f"scripts/mutmut_run.py: mutmut's internals changed ({exc}); locked equivalents run too",
              file=sys.stderr)
        return False

    def collect_skipping(*, mutant_names: Any) -> Any:
        mutants, by_path = collect(mutant_names=mutant_names)
        if mutant_names:  # named on the command line: run as asked
            return mutants, by_path
        mutants, changed = relabel_locked(mutants, holds)
        for data in changed:
            data.save()
        skipped = sum(1 for _, _, result in mutants if result == SKIPPED)
        print(f"    {skipped} equivalent mutants confirmed on this code by an earlier run are not run again "
              f"(tests/mutation_equivalent.lock)")
        return mutants, by_path

    cli.collect_source_file_mutation_data = collect_skipping
    return True


SKIPPED = 34  # mutmut's "skipped" status, which mutmut itself never gives (mutation_report.LOCKED reads it back)


def relabel_locked(mutants: list[tuple[Any, str, int | None]],
                   holds: Callable[[str], bool]) -> tuple[list[tuple[Any, str, int | None]], list[Any]]:
    """mutmut's (data, name, verdict) list with the locked equivalents that still hold "skipped" (when not judged
    yet) and the skipped ones that no longer hold not judged; and the data whose verdicts changed."""
    out: list[tuple[Any, str, int | None]] = []
    changed: dict[int, Any] = {}
    for data, name, result in mutants:
        if result is None and holds(name):
            result = SKIPPED
        elif result == SKIPPED and not holds(name):
            result = None
        else:
            out.append((data, name, result))
            continue
        data.exit_code_by_key[name] = result
        changed[id(data)] = data
        out.append((data, name, result))
    return out, list(changed.values())


def use_collected_session() -> bool:
    try:
        import mutmut.__main__ as cli
        from mutmut.mutation import trampoline
        from mutmut.workers.isolation import ForkServerRunner
        needed = (cli.get_mutant_runner, ForkServerRunner._forkserver_main, trampoline.get_mutant_under_test)
    except (ImportError, AttributeError) as exc:
        print(f"scripts/mutmut_run.py: mutmut's internals changed ({exc}); a pytest.main per mutant",
              file=sys.stderr)
        return False
    del needed
    # The inputs as they are now, before mutmut copies them (PassedInputs).
    passed = PassedInputs(inputs_fingerprint())
    cli.get_mutant_runner = lambda max_workers=1: collected_session_runner(passed, max_workers)
    return True


if __name__ == "__main__":
    patch()
    arguments = sys.argv[1:]
    if RUN_EQUIVALENTS_FLAG in arguments:
        arguments.remove(RUN_EQUIVALENTS_FLAG)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import mutation_report

        lock = mutation_report.locked()
        skip_locked_equivalents(lambda name: mutation_report.still_locked(lock, name))
    if arguments[:1] == [PYTEST_MAIN_FLAG]:
        arguments = arguments[1:]
    else:
        use_collected_session()
    from mutmut.__main__ import cli as mutmut_cli

    sys.argv = ["mutmut", "run", *arguments]
    mutmut_cli()
