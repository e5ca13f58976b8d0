"""The recording engine: run the real `__main__.py` for a stack under the SDK's mocks and record every
resource it registers (type, name, parent, provider, inputs as the engine sees them) and its outputs.

One engine serves `edumatrix-db plan`, `edumatrix-db check` and the tests. Each run happens in a fresh
`contextvars` context, so runs do not leak Pulumi runtime state into each other.

Two ways to run, recording the same resources (tests/test_engine_speed.py compares them on every stack):
- fast (the default): what a registration costs the SDK and an offline plan does not need is skipped.
  The mocked monitor's RPCs run inline on the program's event loop instead of in executor threads (no thread
  hand-off per registration), the monitor hands the plain mocked state to protobuf directly, the cyclic
  garbage collector pauses during the run (the SDK allocates tens of thousands of short-lived futures and
  closures per plan), and `sdk_fastpath` replaces SDK bookkeeping for the run (no per-resource stack trace,
  one future per resource property instead of four and a task, plain leaves not run through the
  serializer's type checks, an iterative dependency cycle check, no debug log messages, a registration's
  response carrying the mocked outputs as plain values instead of a protobuf Struct); on a pulumi
  version it was not written for, `sdk_fastpath` stays out with a warning.
- `fast=False`: the engine as it was (one executor thread per RPC, SDK stack traces, a full collection
  after each run): the baseline `bench/gate_bench.py` measures against.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import logging
import runpy
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2, resource_pb2
from pulumi.runtime.resource import RegisterResponse
from pulumi.runtime.settings import get_root_resource
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from config.loader import PROJECT_ROOT, STACKS_DIR, load_stack, read_stack_config, use_stacks_dir
from config.settings import PROJECT, StackSettings
from edumatrix_db.offline import sdk_fastpath
from edumatrix_db.offline.mocks import PlatformMocks, unwrap_secrets

SECRET = "[secret]"
PROGRAM = PROJECT_ROOT / "__main__.py"
DEFAULT_REGION = "us-east-1"
# The organization a self-managed backend reports (stack references read `organization/<project>/<stack>`).
MOCK_ORGANIZATION = "organization"


@dataclass(frozen=True)
class RecordedResource:
    """One registered resource, as the engine (and a policy pack) would see it."""

    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    custom: bool
    inputs: dict[str, Any]  # camelCase keys; secrets replaced by "[secret]"
    props: dict[str, Any] = field(repr=False, default_factory=dict)  # inputs merged with mocked outputs
    id: str | None = None  # the (mocked) physical id
    dependencies: tuple[str, ...] = ()  # URNs this resource waits for (explicit and from inputs)
    protect: bool = False  # Pulumi's `protect` option: `pulumi destroy` refuses to delete it
    retain_on_delete: bool = False  # Pulumi's `retain_on_delete`: a delete only forgets it, AWS is not called
    ignore_changes: tuple[str, ...] = ()  # inputs whose later changes Pulumi ignores
    custom_timeouts: dict[str, str] = field(default_factory=dict)  # {"create": "4h", ...} as the program set them

    def to_json(self) -> dict[str, Any]:
        return {"urn": self.urn, "type": self.type, "name": self.name, "parent": self.parent,
                "provider": self.provider, "inputs": self.inputs, "protect": self.protect}


@dataclass(frozen=True)
class Recording:
    """One stack's plan. On the fast path `resources` are in the order the program created them (the same in
    every run); on the SDK's own path in registration order, which varies between runs."""

    project: str
    stack: str
    settings: StackSettings
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    warnings: tuple[str, ...] = ()  # what the program logged at warning level or above (pulumi.log.warn)

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> RecordedResource:
        found = self.of_type(type_token)
        if len(found) != 1:
            raise LookupError(f"expected one {type_token}, found {len(found)}")
        return found[0]

    def by_urn(self, urn: str) -> RecordedResource:
        return next(r for r in self.resources if r.urn == urn)

    def children_of(self, urn: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.parent == urn]

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack,
                "resources": [r.to_json() for r in self.resources], "outputs": self.outputs}


_LEAVES_BUT_FLOAT = frozenset({str, int, bool, type(None)})


def redact(value: Any) -> Any:
    """Replace secret-wrapped values by "[secret]" (recursively), keeping everything else."""
    if type(value) in _LEAVES_BUT_FLOAT:  # the checks below return these as they are
        return value
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {type(value).__name__: value.path}  # its path, not the object's repr (a memory address)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Structs carry every number as a float
    return value


def _ints(value: Any) -> Any:
    if type(value) in _LEAVES_BUT_FLOAT:
        return value
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's MockMonitor, also keeping what the engine would receive for each registration.

    Like the real engine (and unlike the SDK's mock), outputs named in `additionalSecretOutputs`, and
    outputs whose input was secret, come back as secrets.
    """

    def __init__(self, mocks: pulumi.runtime.Mocks, *, fast: bool = True) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        self.fast = fast

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        id_, state = self.mocks.new_resource(pulumi_mocks.MockResourceArgs(
            typ=request.type, name=request.name, inputs=inputs, provider=request.provider,
            resource_id=request.importId, custom=request.custom or False,
        ))
        secret = set(request.additionalSecretOutputs) | {k for k, v in inputs.items() if rpc.is_rpc_secret(v)}
        state = {k: rpc.wrap_rpc_secret(v) if k in secret else v for k, v in state.items()}
        plain = sdk_fastpath.deserialized_state(state) if self.fast and sdk_fastpath.answers_directly() else None
        obj_proto = None if plain is not None else (
            serialize_state(state) if self.fast else _sync_await(rpc.serialize_properties(state, {})))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
        self.recorded.append(RecordedResource(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            provider=request.provider or None,
            custom=bool(request.custom),
            inputs=redact(inputs),
            props=_ints({**unwrap_secrets(dict(state)), **unwrap_secrets(dict(inputs))}),
            id=id_ or None,
            dependencies=tuple(request.dependencies),
            protect=bool(request.protect),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=tuple(request.ignoreChanges),
            custom_timeouts={op: value for op in ("create", "update", "delete")
                             if (value := getattr(request.customTimeouts, op))},
        ))
        if plain is not None:  # the SDK's own response type, with the outputs as deserializing them would give
            return RegisterResponse(urn, id_ or "", plain, None, resource_pb2.Result.SUCCESS)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_ or "", object=obj_proto)

    def Invoke(self, request: Any) -> Any:
        """The SDK's MockMonitor.Invoke, handing the mocks' plain result to protobuf directly on the fast path.

        The SDK serializes it with `_sync_await`, which runs the event loop re-entrantly: inline on the
        program's loop (the fast path) every invoke then nests the other ready registrations, which may invoke
        in turn, and a program with many invokes (a primary with 20 replica regions) exceeds the recursion
        limit."""
        if not self.fast or request.tok == "pulumi:pulumi:getResource":
            return super().Invoke(request)
        _ensure_event_loop()
        args = rpc.deserialize_properties(request.args)
        result = self.mocks.call(pulumi_mocks.MockCallArgs(token=request.tok, args=args, provider=request.provider))
        ret, failures = (result, None) if isinstance(result, dict) else (
            result[0], [provider_pb2.CheckFailure(property=prop, reason=reason) for prop, reason in result[1] or ()])
        return resource_pb2.ResourceInvokeResponse(failures=failures, **{"return": serialize_state(ret)})

    def ReadResource(self, request: Any) -> Any:
        """Reads (a StackReference is one) are recorded too, with the properties the program passed."""
        response = super().ReadResource(request)
        inputs = {k: v for k, v in rpc.deserialize_properties(request.properties).items() if v is not None}
        state = self.resources[response.urn].state if response.urn in self.resources else {}
        self.recorded.append(RecordedResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            parent=request.parent or None,
            provider=request.provider or None,
            custom=True,
            inputs=redact(inputs),
            props=_ints({**unwrap_secrets(dict(state)), **unwrap_secrets(dict(inputs))}),
        ))
        return response


_PLAIN = (str, int, float, bool, type(None))


def _is_plain(value: Any) -> bool:
    """Only JSON-like data (what the mocks return): no outputs, resources, assets or unknowns."""
    if isinstance(value, _PLAIN):
        return True
    if type(value) is dict:
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_is_plain(v) for v in value)
    return False


def serialize_state(state: dict[str, Any]) -> struct_pb2.Struct:
    """What the SDK's serializer makes of the mocked state: for plain data (always, with PlatformMocks) that
    is the data itself without its top-level None values, which protobuf converts directly; anything else
    goes through the SDK's serializer as in its MockMonitor."""
    if _is_plain(state):
        struct = struct_pb2.Struct()
        struct.update({key: value for key, value in state.items() if value is not None})
        return struct
    return _sync_await(rpc.serialize_properties(state, {}))


def stack_config_as_engine_passes_it(config: Mapping[str, Any]) -> dict[str, str]:
    """The engine hands programs config as strings; structured values as JSON."""
    out: dict[str, str] = {}
    for key, value in config.items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = json.dumps(value)
    return out


def run_program(
    stack: str,
    config: Mapping[str, Any],
    *,
    settings: StackSettings,
    program: Callable[[], None] | None = None,
    stack_outputs: Callable[[str], Mapping[str, Any]] | None = None,
    stacks_dir: Path = STACKS_DIR,
    fast: bool = True,
) -> Recording:
    """Run `program` (default: the project's `__main__.py`) for `stack` under mocks and record it.

    `stacks_dir` is where the program's loader reads sibling stack files (a region stack's primary).
    `fast=False` runs the engine as it was before the fast path (the benchmark's baseline).
    """
    region = settings.aws_region or DEFAULT_REGION

    def body() -> Recording:
        # A private event loop per run, closed with its executor (threads and their loops) afterwards.
        loop = asyncio.new_event_loop()
        executor = _InlineExecutor() if fast else _LoopTrackingExecutor()
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        try:
            with _offline_sdk() if fast else contextlib.nullcontext() as run:
                return record(run)
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            if isinstance(executor, _LoopTrackingExecutor):
                executor.close_loops()
            loop.close()
            asyncio.set_event_loop(None)
            if not fast:
                gc.collect()

    def record(run: sdk_fastpath.OfflineRun | None) -> Recording:
        use_stacks_dir(stacks_dir)
        logger = logging.getLogger(f"edumatrix_db.offline.engine.{stack}")
        logger.propagate = False
        logger.handlers = [collected := _Collect()]
        mocks = PlatformMocks(region=region, stack_outputs=stack_outputs)
        monitor = RecordingMonitor(mocks, fast=fast)
        pulumi.runtime.set_all_config(stack_config_as_engine_passes_it(config))
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor,
                                 organization=MOCK_ORGANIZATION, logger=logger)
        root = get_root_resource()
        _sync_await(run_pulumi_func(program or _run_main_module))
        outputs = _sync_await(_resolve_outputs(getattr(root, "outputs", {}) or {}))
        resources = list(monitor.recorded)
        if run is not None:  # in the order the program created them (registration order varies between runs)
            order = run.creation_order()
            resources.sort(key=lambda resource: order.get(resource.urn, len(order)))
        return Recording(PROJECT, stack, settings, resources, outputs,
                         tuple(dict.fromkeys(collected.messages)))

    return contextvars.copy_context().run(body)


class _Collect(logging.Handler):
    """Keeps what the program logs through the mocked engine (pulumi.log.warn and above)."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class _InlineExecutor(ThreadPoolExecutor):
    """Runs what the SDK hands its executor (the mocked monitor's RPCs) at once, on the calling thread.

    The SDK's `run_in_executor` exists to keep a real gRPC call off the event loop; the mocked monitor
    answers from memory, so a thread hand-off per registration is pure cost."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:  # handed to the awaiting coroutine, as a thread's failure would be
            future.set_exception(error)
        return future


@contextlib.contextmanager
def _offline_sdk() -> Iterator[sdk_fastpath.OfflineRun | None]:
    """For one fast run: the SDK's per-registration bookkeeping an offline plan does not need is replaced
    (`sdk_fastpath`), and cyclic garbage collection pauses until the run ends.

    The collector pauses because the SDK's futures and closures make tens of thousands of short-lived cycles
    per plan, which would trigger a collection every few hundred allocations; they are collected normally
    after the run."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        sdk_fastpath.load_provider_services()
        with sdk_fastpath.installed() as run:
            yield run
    finally:
        if collecting:
            gc.enable()


class _LoopTrackingExecutor(ThreadPoolExecutor):
    """The SDK runs RPCs in executor threads, each of which gets its own event loop; this executor
    creates those loops itself so they can be closed cleanly when the run ends."""

    def __init__(self) -> None:
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()
        super().__init__(initializer=self._give_thread_a_loop)

    def _give_thread_a_loop(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        with self._lock:
            self._loops.append(loop)

    def close_loops(self) -> None:
        with self._lock:
            for loop in self._loops:
                loop.close()
            self._loops.clear()


def _run_main_module() -> None:
    runpy.run_path(str(PROGRAM), run_name="__main__")


async def _resolve_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for name, value in outputs.items():
        output = pulumi.Output.from_input(value)
        plain = await output.future()
        resolved[name] = SECRET if await output.is_secret() else _ints(plain)
    return resolved


class Planner:
    """Plans stacks from `stacks/`, resolving stack references by planning the referenced stack.

    `known_outputs` holds the outputs of stacks planned elsewhere (another worker process): a reference to
    one of them reads those outputs instead of planning that stack again."""

    def __init__(self, stacks_dir: Path = STACKS_DIR, *, fast: bool = True,
                 known_outputs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.stacks_dir = stacks_dir
        self.fast = fast
        self._cache: dict[str, Recording] = {}
        self._known_outputs = dict(known_outputs or {})
        self._in_progress: list[str] = []

    def plan(self, stack: str) -> Recording:
        if stack in self._cache:
            return self._cache[stack]
        if stack in self._in_progress:
            cycle = " -> ".join([*self._in_progress, stack])
            raise RuntimeError(f"stack references form a cycle: {cycle}")
        settings = load_stack(stack, self.stacks_dir)  # raises ConfigError before anything runs
        config, _ = read_stack_config(stack, self.stacks_dir)
        self._in_progress.append(stack)
        try:
            # Referenced stacks are planned first, outside this run: the StackReference mock then only reads
            # the cache instead of starting a nested program inside a resource registration.
            for referenced in settings.referenced_stacks():
                if referenced not in self._known_outputs:
                    self.plan(referenced)
            recording = run_program(stack, config, settings=settings, stack_outputs=self._outputs_of,
                                    stacks_dir=self.stacks_dir, fast=self.fast)
        finally:
            self._in_progress.pop()
        self._cache[stack] = recording
        return recording

    def planned(self, stack: str) -> Recording | None:
        """The recording of `stack` if this planner planned it."""
        return self._cache.get(stack)

    def warnings(self) -> dict[str, tuple[str, ...]]:
        """What each planned stack's program logged as a warning (shown by the CLI on stderr)."""
        return {stack: rec.warnings for stack, rec in self._cache.items() if rec.warnings}

    def _outputs_of(self, reference: str) -> Mapping[str, Any]:
        """`org/project/stack` (or just `stack`) -> that stack's planned outputs.

        Only from the cache: `plan` plans `settings.referenced_stacks()` first. Planning here, inside the
        StackReference's registration, would start a program within another program's run (it deadlocks).
        """
        stack = reference.split("/")[-1]
        if stack in self._known_outputs:
            return self._known_outputs[stack]
        if stack not in self._cache:
            raise RuntimeError(f"stack reference {reference!r} resolved before {stack!r} was planned: list it in "
                               "StackSettings.referenced_stacks()")
        return self._cache[stack].outputs
