"""The fast recording engine records exactly what the engine recorded before it, on every stack file.

The fast path skips SDK work an offline plan does not need (executor threads, stack traces, garbage
collection during the run, and the SDK bookkeeping `sdk_fastpath` replaces); nothing it records may differ:
resources with every field, outputs, warnings; nor may what the program saw: every output property of every
resource resolves to the same value, known-ness, secrecy and dependencies.
"""

import contextlib
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pulumi import Output
from pulumi.runtime import rpc

from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording, redact, serialize_state


def _comparable(name: str, value: object) -> object:
    if name == "dependencies":
        # RecordedResource.dependencies is tuple[str, ...]; the order they resolve in varies in both engines
        return tuple(sorted(cast(tuple[str, ...], value)))
    return json.dumps(redact(value), sort_keys=True)


def _by_urn(recording: Recording) -> dict[str, tuple]:
    """Every field of every recorded resource, keyed by URN (registration order varies
    from run to run in both engines: the SDK awaits sets of resources)."""
    return {r.urn: tuple(_comparable(f.name, getattr(r, f.name)) for f in dataclasses.fields(RecordedResource))
            for r in recording.resources}


@contextlib.contextmanager
def _resources_resolved() -> Iterator[list[Any]]:
    """The resource objects of the program, as the SDK resolves their outputs (registered, read or got)."""
    resources: list[Any] = []
    sdk = rpc.resolve_outputs

    def spy(res: Any, *args: Any, **kwargs: Any) -> None:
        resources.append(res)
        sdk(res, *args, **kwargs)

    rpc.resolve_outputs = spy
    try:
        yield resources
    finally:
        rpc.resolve_outputs = sdk


def _urn(resource: Any) -> str:
    return resource.urn._data.result().value


def _as_the_program_saw_them(resources: list[Any]) -> dict[tuple[str, str], tuple]:
    """(URN, property) -> (value, known, secret, URNs it depends on) of every output property of every resource
    (after a run every output is resolved)."""
    seen = {}
    for res in resources:
        for name, output in vars(res).items():
            if isinstance(output, Output):
                data = output._data.result()
                seen[(_urn(res), name)] = (redact(data.value), data.is_known, data.is_secret,  # assets by path
                                           sorted(_urn(r) for r in data.resources))
    return seen


@pytest.fixture(scope="module")
def engines() -> dict[bool, Planner]:
    return {True: Planner(), False: Planner(fast=False)}


def _planned(planner: Planner, stack: str) -> tuple[Recording, dict[tuple[str, str], tuple]]:
    with _resources_resolved() as resources:
        recording = planner.plan(stack)
    return recording, _as_the_program_saw_them(resources)


@pytest.mark.parametrize("stack", available_stacks())
def test_fast_engine_records_what_the_old_engine_records(stack: str, engines: dict[bool, Planner]) -> None:
    (fast, fast_seen), (old, old_seen) = _planned(engines[True], stack), _planned(engines[False], stack)
    assert _by_urn(fast) == _by_urn(old)
    assert len(fast.resources) == len(old.resources)
    assert fast.outputs == old.outputs
    assert fast.warnings == old.warnings
    assert fast_seen == old_seen
    assert len(fast_seen) > 10 * len(fast.resources)  # tens of output properties per resource


def test_plain_state_is_serialized_as_the_sdk_serializes_it() -> None:
    from pulumi.runtime import rpc
    from pulumi.runtime.sync_await import _sync_await

    state = {"arn": "arn:aws:kms:eu-west-1:1:key/x", "port": 5432, "ratio": 0.5, "on": True, "gone": None,
             "tags": {"a": "b"}, "list": [1, "two", {"three": None}], "secret": rpc.wrap_rpc_secret("pw")}
    assert serialize_state(state) == _sync_await(rpc.serialize_properties(state, {}))


def test_a_program_error_still_surfaces_from_the_fast_engine(tmp_path: Path) -> None:
    import pulumi

    from config.loader import load_stack
    from edumatrix_db.offline.engine import run_program

    def program() -> None:
        pulumi.export("boom", pulumi.Output.from_input(1).apply(lambda _: 1 / 0))

    with pytest.raises(ZeroDivisionError):
        run_program("dev", {}, settings=load_stack("dev"), program=program)


def test_a_program_with_many_invokes_plans_on_the_fast_engine() -> None:
    """The mocked invokes answer without running the event loop re-entrantly (the SDK's mock does, which
    nested every other ready registration inside each invoke until the recursion limit: a primary with 20
    replica regions hit it)."""
    import pulumi
    import pulumi_aws as aws

    from config.loader import load_stack
    from edumatrix_db.offline.engine import run_program

    def program() -> None:
        regions = [aws.get_region_output() for _ in range(1500)]
        pulumi.export("regions", pulumi.Output.all(*regions).apply(len))

    assert run_program("dev", {}, settings=load_stack("dev"), program=program).outputs == {"regions": 1500}
