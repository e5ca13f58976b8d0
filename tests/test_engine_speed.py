"""The fast recording engine records exactly what the engine recorded before it, on every stack file.

The fast path skips SDK work an offline plan does not need (executor threads, stack traces, garbage
collection during the run); nothing it records may differ: resources with every field, outputs, warnings.
"""

import json

import pytest

from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner, Recording, serialize_state


def _by_urn(recording: Recording) -> dict[str, tuple]:
    """Every recorded field of every resource, keyed by URN (registration order varies
    from run to run in both engines: the SDK awaits sets of resources)."""
    return {r.urn: (r.type, r.name, r.parent, r.provider, r.custom, json.dumps(r.inputs, sort_keys=True),
                    json.dumps(r.props, sort_keys=True), r.id, tuple(sorted(r.dependencies)), r.protect)
            for r in recording.resources}


@pytest.fixture(scope="module")
def before() -> Planner:
    return Planner(fast=False)


@pytest.mark.parametrize("stack", available_stacks())
def test_fast_engine_records_what_the_old_engine_records(stack, planner, before):
    fast, old = planner.plan(stack), before.plan(stack)
    assert _by_urn(fast) == _by_urn(old)
    assert len(fast.resources) == len(old.resources)
    assert fast.outputs == old.outputs
    assert fast.warnings == old.warnings


def test_plain_state_is_serialized_as_the_sdk_serializes_it():
    from pulumi.runtime import rpc
    from pulumi.runtime.sync_await import _sync_await

    state = {"arn": "arn:aws:kms:eu-west-1:1:key/x", "port": 5432, "ratio": 0.5, "on": True, "gone": None,
             "tags": {"a": "b"}, "list": [1, "two", {"three": None}], "secret": rpc.wrap_rpc_secret("pw")}
    assert serialize_state(state) == _sync_await(rpc.serialize_properties(state, {}))


def test_a_program_error_still_surfaces_from_the_fast_engine(tmp_path):
    import pulumi

    from config.loader import load_stack
    from edumatrix_db.offline.engine import run_program

    def program() -> None:
        pulumi.export("boom", pulumi.Output.from_input(1).apply(lambda _: 1 / 0))

    with pytest.raises(ZeroDivisionError):
        run_program("dev", {}, settings=load_stack("dev"), program=program)
