"""The offline commands as processes (issue 16): what they load and how they end. Each test runs a fresh
interpreter, since both are about process-wide state (imported modules, the garbage collector)."""

import subprocess
import sys

from config.loader import PROJECT_ROOT


def _after(run: str, probe: str) -> str:
    """What `probe` prints in a fresh interpreter after `run` (a call of the CLI's `main`)."""
    code = f"import gc, sys; from edumatrix_db.cli import main; {run}; print({probe})"
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip().splitlines()[-1]


POLICY_MODULES = ("sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi_policy', 'policy') "
                  "or m == 'edumatrix_db.offline.gate')")


def test_a_plan_shown_as_a_tree_loads_neither_the_policy_pack_nor_pulumi_policy() -> None:
    assert _after("main(['plan', 'local', '--format', 'tree'])", POLICY_MODULES) == "[]"


def test_a_plan_as_json_still_evaluates_the_policy_pack() -> None:
    assert _after("main(['plan', 'local', '--format', 'json'])", "'policy.pack' in sys.modules") == "True"


def test_the_process_command_freezes_what_it_allocated_instead_of_collecting_it() -> None:
    run = "sys.argv = ['edumatrix-db', 'plan', 'local', '--format', 'tree']; main()"
    assert _after(run, "gc.get_freeze_count() > 100_000, gc.isenabled()") == "True True"


def test_a_caller_passing_arguments_gets_the_collector_back_with_nothing_frozen() -> None:
    assert _after("main(['plan', 'local', '--format', 'tree'])", "gc.get_freeze_count(), gc.isenabled()") == "0 True"
