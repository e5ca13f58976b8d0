"""The offline commands as processes (issue 16): what they load and how they end. Each test runs a fresh
interpreter, since both are about process-wide state (imported modules, the garbage collector)."""

import subprocess
import sys

from config.loader import PROJECT_ROOT


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip().splitlines()[-1]


def test_a_plan_shown_as_a_tree_loads_neither_the_policy_pack_nor_pulumi_policy() -> None:
    code = ("import sys; from edumatrix_db.cli import main; main(['plan', 'local', '--format', 'tree']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi_policy', 'policy') "
            "or m == 'edumatrix_db.offline.gate'))")
    assert _run(code) == "[]"


def test_a_plan_as_json_still_evaluates_the_policy_pack() -> None:
    code = ("import sys; from edumatrix_db.cli import main; main(['plan', 'local', '--format', 'json']); "
            "print('policy.pack' in sys.modules)")
    assert _run(code) == "True"


def test_the_process_command_freezes_what_it_allocated_instead_of_collecting_it() -> None:
    code = ("import gc, sys; from edumatrix_db.cli import main; "
            "sys.argv = ['edumatrix-db', 'plan', 'local', '--format', 'tree']; main(); "
            "print(gc.get_freeze_count() > 100_000, gc.isenabled())")
    assert _run(code) == "True True"


def test_a_caller_passing_arguments_gets_the_collector_back_with_nothing_frozen() -> None:
    code = ("import gc; from edumatrix_db.cli import main; main(['plan', 'local', '--format', 'tree']); "
            "print(gc.get_freeze_count(), gc.isenabled())")
    assert _run(code) == "0 True"
