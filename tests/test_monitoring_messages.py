"""The exact words of the alarm checks that need the rest of the stack (config/monitoring.py): prod must name who is
paged, and the memory alarm needs the memory of the class the primary instance runs on (a region stack's replica has
no memory alarm, so its class is not asked about). One row per check: the edit that breaks a copy of the project's
stack files, the stack loaded, its one problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.loader import load_stack
from tests.region_support import copy_stacks, edit_stack, only_problem

EU = "prod-eu-west-1"
SUBSCRIBERS = "    subscriptions:\n      - {protocol: email, endpoint: dba-oncall@edumatrix.example}\n"
UNKNOWN_CLASS = "db.x2g.large"  # a class config/monitoring.py INSTANCE_MEMORY_GIB does not list


def memory_unknown(instance_class: str) -> tuple[str, str, str]:
    return ("edumatrix-db:alarms.instanceMemoryGb",
            f"the memory of {instance_class} is not in config/monitoring.py INSTANCE_MEMORY_GIB, so the 'memory > 80 % "
            "used' alarm has no total to compare FreeableMemory with",
            "set alarms.instanceMemoryGb to the class's memory (AWS 'Hardware specifications for DB instance "
            f"classes') or add {instance_class} to the table")


def edits(*changes: tuple[str, str, str]) -> Callable[[Path], None]:
    def apply(stacks: Path) -> None:
        for name, old, new in changes:
            edit_stack(stacks, name, old, new)
    return apply


@pytest.mark.parametrize(("change", "stack", "expected"), [
    pytest.param(edits(("prod", "  edumatrix-db:alarms:\n" + SUBSCRIBERS, "")), "prod",
                 ("edumatrix-db:alarms.subscriptions", "prod must name who is paged; the alarm topic has no subscriber",
                  "add e.g. `subscriptions: [{protocol: email, endpoint: dba-oncall@example.org}]`"),
                 id="prod-without-subscribers"),
    pytest.param(edits(("prod", "instanceClass: db.r6g.2xlarge", f"instanceClass: {UNKNOWN_CLASS}")), "prod",
                 memory_unknown(UNKNOWN_CLASS), id="instance-class-of-unknown-memory"),
])
def test_an_alarm_mistake_is_told_in_these_words(tmp_path: Path, change: Callable[[Path], None], stack: str,
                                                 expected: tuple[str, str, str]) -> None:
    stacks = copy_stacks(tmp_path)
    change(stacks)
    assert only_problem(stacks, stack) == expected


def test_a_region_replica_of_a_class_of_unknown_memory_is_not_asked_for_its_memory(tmp_path: Path) -> None:
    """A region stack declares lag alarms only: `alarms.instanceMemoryGb` would be read by nothing there."""
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, EU, "    promote: false\n", f"    promote: false\n    instanceClass: {UNKNOWN_CLASS}\n")
    region = load_stack(EU, stacks).region
    assert region is not None  # EU is a region stack
    assert region.instance_class == UNKNOWN_CLASS
