"""`make mutation` runs the tests inside a copy of the repository (mutmut's `mutants/`): the copy must hold
every file the tests read, or the run stops before the first mutant (it did, once `migrations/` existed)."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Tracked top-level entries the mutation copy does not need: repository plumbing and the project file mutmut
# itself reads from the repository root.
NOT_COPIED = {".gitignore", "pyproject.toml", "tests"}  # mutmut copies tests/ itself


def _mutmut_settings() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mutmut"]


def test_the_mutation_copy_holds_every_tracked_top_level_entry() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    top_level = {line.split("/", 1)[0] for line in tracked.splitlines() if line}
    settings = _mutmut_settings()
    copied = set(settings["source_paths"]) | set(settings["also_copy"])
    assert top_level - copied - NOT_COPIED == set()



def test_the_type_check_filter_finds_each_mutant_function_with_its_decorators(tmp_path: Path) -> None:
    """scripts/mutmut_run.py maps mypy's errors to mutant functions by their spans, as mutmut's own filter does."""
    from types import SimpleNamespace

    module = _mutmut_run()
    source = tmp_path / "m.py"
    source.write_text("def x_f__mutmut_orig(a):\n    return a\n\n"
                      "@staticmethod\ndef x_f__mutmut_1(a):\n    def inner():\n        return None\n    return None\n\n"
                      "class C:\n    def xǁCǁg__mutmut_2(self):\n        return 1\n")
    found = module._mutated_functions(source, lambda name: "__mutmut_" in name, SimpleNamespace)
    assert [(f.function_name, f.line_number_start, f.line_number_end) for f in found] == [
        ("x_f__mutmut_orig", 1, 2), ("x_f__mutmut_1", 4, 8), ("xǁCǁg__mutmut_2", 11, 12)]


def _mutmut_run() -> ModuleType:
    return _script("mutmut_run")


class _Session:
    """What scripts/mutmut_run.py's run_collected reads of a pytest session: the failure count and the stops
    pytest's own `-x` handling sets."""

    def __init__(self, failing: set[str]) -> None:
        from types import SimpleNamespace

        self.testsfailed, self.shouldstop = 0, False
        self.shouldfail: bool | str = False  # as pytest's Session: a reason to stop is a string
        self.ran: list[tuple[str, str | None]] = []
        self.failing = failing
        self.hook = SimpleNamespace(pytest_runtest_protocol=self.protocol)

    def protocol(self, item: SimpleNamespace, nextitem: SimpleNamespace | None) -> None:
        self.ran.append((item.nodeid, nextitem.nodeid if nextitem else None))
        if item.nodeid in self.failing:
            self.testsfailed += 1
            self.shouldfail = "stopping after 1 failures"

    def items(self, *ids: str) -> dict:
        from types import SimpleNamespace

        return {i: SimpleNamespace(nodeid=i, config=SimpleNamespace(hook=self.hook)) for i in ids}


DURATIONS = {"t::slow": 1.0, "t::fast": 0.1, "t::middle": 0.5}.__getitem__


def test_a_mutant_runs_its_collected_tests_fastest_first_and_stops_at_the_first_failure() -> None:
    session = _Session(failing={"t::middle"})
    result = _mutmut_run().run_collected(session, session.items("t::slow", "t::fast", "t::middle"),
                                         ["t::slow", "t::middle", "t::fast"], DURATIONS)
    assert (result, session.ran) == ((1, "t::middle"), [("t::fast", "t::middle"), ("t::middle", "t::slow")])


def test_a_mutant_whose_tests_all_pass_survives_and_its_last_test_tears_everything_down() -> None:
    session = _Session(failing=set())
    result = _mutmut_run().run_collected(session, session.items("t::slow", "t::fast"), ["t::slow", "t::fast"],
                                         DURATIONS)
    assert (result, session.ran) == ((0, None), [("t::fast", "t::slow"), ("t::slow", None)])


def test_a_test_the_session_did_not_collect_is_an_error_not_a_skip() -> None:
    import pytest

    session = _Session(failing=set())
    with pytest.raises(LookupError, match="t::gone"):
        _mutmut_run().run_collected(session, session.items("t::fast"), ["t::fast", "t::gone"], DURATIONS)
    assert session.ran == []


def test_an_earlier_killer_runs_first_and_a_killed_mutant_needs_no_other_test() -> None:
    session = _Session(failing={"t::slow"})
    result = _mutmut_run().run_collected(session, session.items("t::slow", "t::fast", "t::middle"),
                                         ["t::fast", "t::middle", "t::slow"], DURATIONS, first=["t::slow"])
    assert (result, session.ran) == ((1, "t::slow"), [("t::slow", "t::fast")])


def test_a_survivor_still_runs_every_one_of_its_tests_when_an_earlier_killer_passes() -> None:
    session = _Session(failing=set())
    result = _mutmut_run().run_collected(session, session.items("t::slow", "t::fast", "t::middle"),
                                         ["t::fast", "t::middle", "t::slow"], DURATIONS, first=["t::slow"])
    assert (result, [ran for ran, _ in session.ran]) == ((0, None), ["t::slow", "t::fast", "t::middle"])


def test_an_earlier_killer_that_does_not_reach_the_mutant_is_not_run() -> None:
    order = _mutmut_run().run_order(["t::fast", "t::slow"], DURATIONS, first=["t::other", "t::slow", "t::slow"])
    assert order == ["t::slow", "t::fast"]


def test_killers_are_recalled_for_the_same_function_before_the_same_module(tmp_path: Path) -> None:
    killers = _mutmut_run().Killers(tmp_path)
    killers.record("config.naming.x_other__mutmut_3", "t::module")
    killers.record("config.naming.x_f__mutmut_1", "t::function")
    killers.record("policy.access.x_f__mutmut_1", "t::elsewhere")
    assert killers.recall("config.naming.x_f__mutmut_2") == ["t::function", "t::module"]


def test_killers_keep_the_most_recent_few_of_a_function(tmp_path: Path) -> None:
    module = _mutmut_run()
    killers = module.Killers(tmp_path)
    for number in range(module.Killers.KEEP + 1):
        killers.record(f"config.naming.x_f__mutmut_{number}", f"t::{number}")
    killers.record("config.naming.x_f__mutmut_9", "t::1")
    recalled = killers.recall("config.naming.x_f__mutmut_10")
    assert recalled[:module.Killers.KEEP] == ["t::1", "t::3", "t::2"]


def test_mypys_verdicts_are_waited_for_only_when_first_read() -> None:
    finished: list[bool] = []

    def finish() -> dict[str, Any]:
        finished.append(True)
        return {"config.x_f__mutmut_1": "refused"}

    verdicts = _mutmut_run().AwaitedDict(finish)
    assert finished == []
    assert (verdicts.get("config.x_f__mutmut_1"), set(verdicts), bool(verdicts)) == ("refused",
                                                                                   {"config.x_f__mutmut_1"}, True)
    assert finished == [True]


def test_a_file_added_under_the_inputs_changes_their_fingerprint_and_a_cache_file_does_not(tmp_path: Path) -> None:
    fingerprint_of = _mutmut_run().fingerprint_of
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("def test_a(): pass\n")
    before = fingerprint_of([tmp_path / "tests"])
    (tmp_path / "tests" / "__pycache__").mkdir()
    (tmp_path / "tests" / "__pycache__" / "test_a.pyc").write_bytes(b"\0")
    assert fingerprint_of([tmp_path / "tests"]) == before
    (tmp_path / "tests" / "test_b.py").write_text("def test_b(): pass\n")
    assert fingerprint_of([tmp_path / "tests"]) != before


def test_a_run_records_as_passed_the_inputs_it_started_with_not_those_found_when_its_tests_passed(
        tmp_path: Path) -> None:
    passed_inputs = _mutmut_run().PassedInputs
    record = tmp_path / "all-tests-passed.fingerprint"
    passed_inputs("inputs at the start", record).record()  # a test was written while this run went on
    assert passed_inputs("inputs at the start", record).hold()
    assert not passed_inputs("inputs with the new test", record).hold()  # the next run lists its tests again


def test_no_record_means_the_tests_have_not_passed_on_any_inputs(tmp_path: Path) -> None:
    assert not _mutmut_run().PassedInputs("inputs", tmp_path / "missing").hold()


def _script(name: str) -> ModuleType:
    """A script of scripts/, loaded as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Data:
    """What scripts/mutmut_run.py's relabel_locked changes of mutmut's per-file data: its verdicts."""

    def __init__(self, **verdicts: int | None) -> None:
        self.exit_code_by_key = dict(verdicts)


HOLDS = {"m.x_f__mutmut_1", "m.x_f__mutmut_2", "m.x_f__mutmut_3"}


def _holds(name: str) -> bool:
    return name in HOLDS


def test_a_locked_equivalent_not_judged_yet_is_skipped_and_its_data_saved() -> None:
    data = _Data(**{"m.x_f__mutmut_1": None, "m.x_g__mutmut_1": None})
    mutants, changed = _mutmut_run().relabel_locked(
        [(data, "m.x_f__mutmut_1", None), (data, "m.x_g__mutmut_1", None)], _holds)
    assert ([result for _, _, result in mutants], data.exit_code_by_key, changed) == (
        [34, None], {"m.x_f__mutmut_1": 34, "m.x_g__mutmut_1": None}, [data])


def test_a_skipped_mutant_whose_lock_no_longer_holds_is_judged_again() -> None:
    data = _Data(**{"m.x_g__mutmut_1": 34})
    mutants, changed = _mutmut_run().relabel_locked([(data, "m.x_g__mutmut_1", 34)], _holds)
    assert ([result for _, _, result in mutants], data.exit_code_by_key, changed) == (
        [None], {"m.x_g__mutmut_1": None}, [data])


def test_a_judged_mutant_keeps_its_verdict_whatever_the_lock_says() -> None:
    data = _Data(**{"m.x_f__mutmut_1": 0, "m.x_f__mutmut_2": 1, "m.x_f__mutmut_3": 34})
    mutants, changed = _mutmut_run().relabel_locked(
        [(data, name, code) for name, code in data.exit_code_by_key.items()], _holds)
    assert ([result for _, _, result in mutants], changed) == ([0, 1, 34], [])


@pytest.fixture
def report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """scripts/mutation_report.py over a one-module project in tmp_path: m.py, its mutated copy and its listing."""
    module = _script("mutation_report")
    (tmp_path / "tests").mkdir()
    (tmp_path / "mutants").mkdir()
    (tmp_path / "m.py").write_text("def f(a):\n    return a > 1\n")
    (tmp_path / "mutants" / "m.py").write_text(
        "def x_f__mutmut_orig(a):\n    return a > 1\n\ndef x_f__mutmut_1(a):\n    return a >= 1\n\n"
        "def x_f__mutmut_2(a):\n    return a > 2\n")
    (tmp_path / "tests" / "mutation_equivalent.txt").write_text(
        "m.x_f__mutmut_1  listed\nm.x_f__mutmut_2  listed\n")
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "MUTANTS", tmp_path / "mutants")
    monkeypatch.setattr(module, "EQUIVALENT", tmp_path / "tests" / "mutation_equivalent.txt")
    monkeypatch.setattr(module, "LOCK", tmp_path / "tests" / "mutation_equivalent.lock")
    module._functions.cache_clear()
    return module


def test_the_lock_holds_only_listed_mutants_the_run_saw_survive(report: ModuleType) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0, "m.x_f__mutmut_2": 1})
    assert set(report.locked()) == {"m.x_f__mutmut_1"}


def test_a_locked_mutant_no_longer_holds_once_its_module_changes(report: ModuleType, tmp_path: Path) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0})
    held = report.still_locked(report.locked(), "m.x_f__mutmut_1")
    (tmp_path / "m.py").write_text("def f(a):\n    return a > 1  # changed\n")
    assert (held, report.still_locked(report.locked(), "m.x_f__mutmut_1")) == (True, False)


def test_a_locked_mutant_no_longer_holds_once_its_mutation_changes(report: ModuleType, tmp_path: Path) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0})
    mutated = tmp_path / "mutants" / "m.py"
    mutated.write_text(mutated.read_text().replace("a >= 1", "a < 1"))
    report._functions.cache_clear()
    assert not report.still_locked(report.locked(), "m.x_f__mutmut_1")


def test_relocking_keeps_a_skipped_mutant_that_still_holds_and_drops_one_that_does_not(report: ModuleType,
                                                                                       tmp_path: Path) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0, "m.x_f__mutmut_2": 0})
    lock = report.LOCK
    lock.write_text(lock.read_text().replace(report.locked()["m.x_f__mutmut_2"], "0" * 20))
    report.write_lock({"m.x_f__mutmut_1": 34, "m.x_f__mutmut_2": 34})
    assert set(report.locked()) == {"m.x_f__mutmut_1"}


def test_the_report_counts_a_skipped_mutant_that_still_holds_as_equivalent_and_one_that_does_not_as_not_run(
        report: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0, "m.x_f__mutmut_2": 0})
    report.EQUIVALENT.write_text("")  # a lock holds, a listing is not needed
    (tmp_path / "mutants" / "m.py").write_text((tmp_path / "mutants" / "m.py").read_text().replace("a > 2", "a < 2"))
    report._functions.cache_clear()
    monkeypatch.setattr(report, "results", lambda: {"m.x_f__mutmut_1": 34, "m.x_f__mutmut_2": 34})
    monkeypatch.setattr(report, "package_of", lambda name: "config")
    report.main([])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("config"))
    assert row.split()[1:8] == ["2", "0", "0", "1", "0", "0", "1"]


def test_relocking_after_a_run_of_other_modules_keeps_the_locks_it_did_not_judge(report: ModuleType) -> None:
    report.write_lock({"m.x_f__mutmut_1": 0})
    report.write_lock({"m.x_f__mutmut_1": None, "m.x_f__mutmut_2": 1})
    assert set(report.locked()) == {"m.x_f__mutmut_1"}


def test_the_runner_skips_with_the_verdict_the_report_reads_as_locked() -> None:
    assert _mutmut_run().SKIPPED == _script("mutation_report").LOCKED
