"""How a configuration error reads: one line per problem under a head that counts them, each naming the file, the
key and the fix (config/errors.py)."""

from __future__ import annotations

import pytest

from config.errors import ConfigError, Problem, SettingError

ONE = Problem("stacks/Pulumi.dev.yaml", "edumatrix-db:owner", "expected text (got 5)", "write text")
TWO = Problem("stacks/Pulumi.dev.yaml", "", "cannot be read: no such file", "")


def test_one_problem_reads_as_a_counted_head_and_an_indented_line_with_its_fix() -> None:
    assert str(ConfigError([ONE])) == (
        "configuration error (1 problem):\n"
        "  stacks/Pulumi.dev.yaml: edumatrix-db:owner: expected text (got 5)\n"
        "    fix: write text")


def test_two_problems_are_counted_in_the_plural_and_a_problem_without_key_or_fix_is_one_line() -> None:
    assert str(ConfigError([ONE, TWO])) == (
        "configuration error (2 problems):\n"
        "  stacks/Pulumi.dev.yaml: edumatrix-db:owner: expected text (got 5)\n"
        "    fix: write text\n"
        "  stacks/Pulumi.dev.yaml: cannot be read: no such file")


def test_the_exception_carries_its_rendering_as_its_argument() -> None:
    """What a traceback or a logging handler shows (they read `args`, not `__str__`)."""
    error = ConfigError([ONE])
    assert error.args == (error.render(),)


def test_a_setting_error_reads_as_its_message() -> None:
    """pydantic shows a validator's ValueError by its text."""
    error = SettingError("'x' is not a subnet id", "write subnet-...", key="subnetIds")
    assert (str(error), error.message, error.fix, error.key) == (
        "'x' is not a subnet id", "'x' is not a subnet id", "write subnet-...", "subnetIds")


@pytest.mark.parametrize("count", [0, 3])
def test_any_count_but_one_is_plural(count: int) -> None:
    assert ConfigError([ONE] * count).render().splitlines()[0] == f"configuration error ({count} problems):"
