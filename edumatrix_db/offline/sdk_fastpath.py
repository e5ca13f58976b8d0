"""Leaner versions of parts of the pulumi SDK's per-registration machinery, for the recording engine's fast
runs only (`Planner()`, not `Planner(fast=False)`), and only on the SDK version they were written against.

Each replacement computes what the SDK function it replaces computes, for every input, with less work;
what it leaves out is only bookkeeping an offline plan has no use for. They are installed for the length of
one fast run (`installed()`) and removed afterwards. On another pulumi version none is installed: the run
takes the SDK's own path, with a warning, because these functions are private and may change.

What is replaced (pulumi SDK, pulumi/runtime/):
- `resource._get_stack_trace`: the per-registration Python stack trace (source positions for the Pulumi
  service's UI) is not captured; an offline plan never shows it.
- `rpc.transfer_properties`: every property of a new resource (a pulumi-aws resource has every output
  property too, tens per resource, most of them unset) gets an Output resolved through ONE future holding
  its `_OutputData`, instead of four futures (value, known, secret, dependencies) and a task that awaits
  them to build the same `_OutputData` (the SDK already builds `urn` and `id` this way: `resource_output`).
- `rpc.serialize_property`: a plain leaf (exactly str, int, float, bool or None) is returned as it is, which
  is what the SDK's chain of type checks ends with for such a value.
- `rpc.declare_dependency` (the dependency cycle check): the same reachability question (does the
  dependency already reach the dependent resource?) answered by an iterative walk over the same recorded
  edges, instead of a recursive generator chain, which costs time in proportion to its depth per resource it
  yields; the edge is added to the resource's set in place instead of copying the set.
- `rpc._add_dependency` (a `depends_on` on a component expands to all its descendants): the same breadth-first
  walk in the same order, with a deque instead of `list.pop(0)` (quadratic in the descendants), the
  component class imported once instead of per resource visited, and a resolved URN read from its future
  instead of through a coroutine per resource.
- `resource.create_urn` for plain strings: the URN as a resolved Output instead of a chain of three
  (each registration computes one it uses only when there is no monitor at all).
- `_OutputData` of a plain leaf is made without its `__post_init__`, which walks the value for unknowns.
- `rpc.deserialize_properties` of a registration's response: the mocked monitor answers with the SDK's own
  `RegisterResponse` holding `PlainProperties`, the mocked state already in the form deserializing its
  protobuf Struct would give (`deserialized_state`), instead of a protobuf response whose Struct the monitor
  builds from that state and the SDK takes apart again. Any other argument is deserialized by the SDK.
- `_types.resource_types` and `_types.resource_pulumi_to_py_names` (what `rpc.resolve_outputs` reads to
  translate a resource's outputs) are computed once per resource class and run instead of once per
  registration: they depend only on the class (its annotations and properties), and `resolve_outputs`, their
  only caller, only reads them; for a component with annotations each call resolved its type hints anew.
- `log.debug`: the SDK's debug messages (three per registration, each a protobuf message to the mocked
  engine) are dropped; the engine's log collector only keeps warnings and errors.

`tests/test_engine_speed.py` proves the recordings equal to the SDK's own path on every stack file, and tests
each replacement against the SDK function on the cases it distinguishes.
"""

from __future__ import annotations

import ast
import asyncio
import collections
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pulumi import _types as pulumi_types
from pulumi import _utils as pulumi_utils
from pulumi import log as pulumi_log
from pulumi.output import Output, _OutputData
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import resource_cycle_breaker, rpc
from pulumi.runtime.proto import source_pb2

from config.loader import PROVIDER_PACKAGES

if TYPE_CHECKING:
    from pulumi import Resource

SUPPORTED_PULUMI = "3.272.0"
_DEPENDENCIES = resource_cycle_breaker._DEPENDENCIES_PROPERTY
_LEAVES = (str, int, float, bool, type(None))
_NO_STACK_TRACE = source_pb2.StackTrace()


@functools.cache
def installed_pulumi() -> str:
    return importlib.metadata.version("pulumi")


def supported() -> bool:
    return installed_pulumi() == SUPPORTED_PULUMI


# -- the replacements ------------------------------------------------------------------------------------

def _resolve(res: Resource, data: asyncio.Future[_OutputData[Any]], value: Any, is_known: bool, is_secret: bool,
             deps: set[Resource] | None, failed: Exception | None) -> None:
    """The SDK's resolver (`do_resolve`): the resource joins the value's dependencies; a failure fails the output."""
    if failed is not None:
        data.set_exception(failed)
        return
    resources = set(deps) if deps else set()
    resources.add(res)
    data.set_result(output_data(resources, value, is_known, is_secret))


def output_data(resources: set[Resource], value: Any, is_known: bool, is_secret: bool) -> _OutputData[Any]:
    """`_OutputData(...)`; for a plain leaf without its `__post_init__`, which only marks a value containing an
    unknown as not known (a leaf never contains one) after walking it."""
    if type(value) not in _LEAVES:
        return _OutputData(resources=resources, value=value, is_known=is_known, is_secret=is_secret)
    data: _OutputData[Any] = object.__new__(_OutputData)
    data.resources, data.value, data.is_known, data.is_secret = resources, value, is_known, is_secret
    return data


_sdk_create_urn = pulumi_resource.create_urn


def create_urn(name: Any, type_: Any, parent: Any = None, project: Any = None, stack: Any = None) -> Output[str]:
    """`create_urn`; for plain strings (what registrations pass, for a URN they use only without a monitor) the
    same URN as a resolved Output, without the SDK's chain of outputs (a prefix apply, an `all` and a join)."""
    if type(name) is str and type(type_) is str and type(parent) is str:
        return Output.from_input(parent[0:parent.rfind("::")] + "$" + type_ + "::" + name)
    return _sdk_create_urn(name, type_, parent, project, stack)


_sdk_serialize_property = rpc.serialize_property


async def serialize_property(value: Any, deps: Any, property_key: Any, resource_obj: Any = None,
                             input_transformer: Any = None, typ: Any = None, keep_output_values: bool = False,
                             exclude_resource_refs_from_deps: bool = False,
                             return_protobuf_value: bool = False) -> Any:
    """`rpc.serialize_property`, returning a plain leaf at once (see the module docstring)."""
    if type(value) in _LEAVES and not return_protobuf_value:
        return value
    return await _sdk_serialize_property(value, deps, property_key, resource_obj, input_transformer, typ,
                                         keep_output_values, exclude_resource_refs_from_deps, return_protobuf_value)


class OfflineRun:
    """The replacements that keep state for one run: the order resources were created in."""

    def __init__(self) -> None:
        self.created: dict[Resource, int] = {}  # resource -> its place in creation order
        self.ordered = True  # every recorded dependency edge leads to an earlier created resource
        self.resource_types = _per_class(pulumi_types.resource_types)
        self.resource_pulumi_to_py_names = _per_class(pulumi_types.resource_pulumi_to_py_names)

    def transfer_properties(self, res: Resource, props: Any, custom: bool) -> dict[str, Any]:
        """`rpc.transfer_properties` with one future per property (see the module docstring). Every resource
        passes here once, from its constructor (register, read or get), so it also numbers them."""
        self.created.setdefault(res, len(self.created))
        resolvers: dict[str, Any] = {}
        for name in props:
            if name == "urn" or (name == "id" and custom):
                continue  # handled by register_resource (resource_output)
            data: asyncio.Future[_OutputData[Any]] = asyncio.Future()
            resolvers[name] = functools.partial(_resolve, res, data)
            res.__dict__[name] = Output._from_data(data)
        return resolvers

    def creation_order(self) -> dict[str, int]:
        """URN -> place in creation order (the order the program constructed them in) of every resource whose
        URN has resolved: after a run, all of them. Registration order varies between runs (the SDK awaits
        sets of resources before registering one); this order is the program's own."""
        order: dict[str, int] = {}
        for res, place in self.created.items():
            data = res.__dict__["urn"]._data
            if data.done() and not data.cancelled() and data.exception() is None and type(data.result().value) is str:
                order[data.result().value] = place
        return order

    def declare_dependency(self, from_resource: Resource, to_resource: Resource) -> bool:
        """`resource_cycle_breaker.declare_dependency`: record that `from_resource` depends on `to_resource` unless
        `to_resource` already reaches `from_resource` (then the edge would close a cycle: False).

        While every recorded edge leads from a resource to an earlier created one (`ordered`), a path leads only
        to earlier created resources, so an edge to an earlier created resource cannot close a cycle: no walk
        is needed. Any other edge is checked by walking the graph, and once one is recorded every later edge is
        too."""
        dependent, dependency = self.created.get(from_resource), self.created.get(to_resource)
        forward = dependent is not None and dependency is not None and dependent > dependency
        if not (self.ordered and forward) and reaches(to_resource, from_resource):
            return False
        self.ordered = self.ordered and forward
        edges = getattr(from_resource, _DEPENDENCIES, None)
        if edges is None:
            setattr(from_resource, _DEPENDENCIES, {to_resource})
        else:
            edges.add(to_resource)
        return True


def _per_class(compute: Any) -> Any:
    """`compute(cls)` computed once per class (for one run: a class is not changed during it)."""
    return functools.wraps(compute)(functools.cache(compute))


def reaches(start: Resource, target: Resource) -> bool:
    """Whether `target` is `start` or one of its recorded dependencies, transitively."""
    if start is target:
        return True
    seen = {start}
    todo = [start]
    while todo:
        for dep in getattr(todo.pop(), _DEPENDENCIES, ()):
            if dep is target:
                return True
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return False


class PlainProperties(dict[str, Any]):
    """A registration's outputs as `rpc.deserialize_properties` returns them, in place of the protobuf Struct."""


class _NotPlain(Exception):
    """A value the protobuf round trip would turn into something else than data (an unknown, an asset...)."""


def deserialized_state(state: dict[str, Any]) -> PlainProperties | None:
    """What `rpc.deserialize_properties(struct)` returns for the Struct made of `state` (protobuf's `Struct.update`
    of its values that are not None, as the mocked monitor makes it), computed directly: numbers become floats,
    None is dropped from objects (kept in lists), a secret (`rpc.wrap_rpc_secret`) stays one and a nested
    object or list containing one becomes one. None for a state the SDK must take apart itself: anything
    but JSON-like data, an unknown, or a special object other than a secret (an asset, a resource)."""
    if type(state) is not dict or rpc._special_sig_key in state:
        return None
    try:
        plain = PlainProperties()
        for key, value in state.items():
            if type(key) is not str:
                return None
            if value is not None and (value := _deserialized(value)) is not None:
                plain[key] = value
        return plain
    except _NotPlain:
        return None


def _deserialized(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if value == rpc.UNKNOWN:
            raise _NotPlain
        return value
    if kind is bool or value is None:
        return value
    if kind is int or kind is float:
        return float(value)
    if kind is list:
        items = [_deserialized(item) for item in value]
        if any(rpc.is_rpc_secret(item) for item in items):
            return rpc.wrap_rpc_secret([rpc.unwrap_rpc_secret(item) for item in items])
        return items
    if kind is dict:
        if rpc._special_sig_key in value:
            if value[rpc._special_sig_key] != rpc._special_secret_sig or set(value) != {rpc._special_sig_key, "value"}:
                raise _NotPlain
            return rpc.wrap_rpc_secret(_deserialized(value["value"]))
        props = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            if item is not None and (item := _deserialized(item)) is not None:
                props[key] = item
        if any(rpc.is_rpc_secret(item) for item in props.values()):
            return rpc.wrap_rpc_secret({key: rpc.unwrap_rpc_secret(item) for key, item in props.items()})
        return props
    raise _NotPlain


_sdk_deserialize_properties = rpc.deserialize_properties


def deserialize_properties(props_struct: Any, keep_unknowns: Any = None, keep_internal: Any = True) -> Any:
    """`rpc.deserialize_properties`, returning `PlainProperties` (already deserialized) as they are."""
    if type(props_struct) is PlainProperties:
        if keep_internal is False:
            return {k: v for k, v in props_struct.items() if not k.startswith("__") or k == "__provider"}
        return props_struct
    return _sdk_deserialize_properties(props_struct, keep_unknowns, keep_internal)


def answers_directly() -> bool:
    """Whether the mocked monitor may answer registrations with `PlainProperties` (the replacements are in)."""
    return rpc.deserialize_properties is deserialize_properties


async def add_dependency(deps: dict[str, Resource], res: Resource, from_resource: Resource | None) -> None:
    """`rpc._add_dependency`: add `res` to `deps` (URN -> resource), a local component as its descendants
    instead (not those of a custom resource or a remote component); every edge passes the cycle check first.
    Same walk, same order, same errors (see the module docstring for what is cheaper)."""
    from pulumi.resource import ComponentResource
    from pulumi.resource import Resource as ResourceClass

    todo: collections.deque[tuple[Any, Any]] = collections.deque([(res, from_resource)])
    awaitable: list[Resource] = []
    while todo:
        res, from_resource = todo.popleft()
        if not isinstance(res, ResourceClass):
            raise TypeError(f"'depends_on' was passed a value {res} that was not a Resource.")
        if from_resource and not rpc.declare_dependency(from_resource, res):
            if os.getenv(rpc.ERROR_ON_DEPENDENCY_CYCLES_VAR, "true").lower() != "true":
                continue
            raise RuntimeError(
                "We have detected a circular dependency involving a resource of type"
                + f" {res._type} named {res._name}.\n"
                + "Please review any `depends_on`, `parent` or other dependency relationships between your resources "
                + "to ensure no cycles have been introduced in your program.")
        if isinstance(res, ComponentResource) and not res._remote:
            todo.extend((child, from_resource) for child in res._childResources.copy())
        else:
            awaitable.append(res)
    for res in awaitable:
        output = res.urn
        data_future = output._data
        urn: str | None
        if data_future.done() and type(data_future.result().value) is str:  # a URN: no unknowns to look for
            urn = data_future.result().value
        else:
            urn = await output.future()
        if urn:
            deps[urn] = res


def _no_debug(*_args: Any, **_kwargs: Any) -> None:
    """`log.debug` for a run whose log collector keeps warnings and errors only."""


# -- installing them for one run -------------------------------------------------------------------------

def _replacements(run: OfflineRun) -> tuple[tuple[Any, str, Any], ...]:
    return (
        (pulumi_resource, "_get_stack_trace", lambda: _NO_STACK_TRACE),
        (pulumi_resource, "create_urn", create_urn),
        (rpc, "transfer_properties", run.transfer_properties),
        (rpc, "serialize_property", serialize_property),
        (rpc, "declare_dependency", run.declare_dependency),
        (rpc, "deserialize_properties", deserialize_properties),
        (rpc, "_add_dependency", add_dependency),
        (pulumi_types, "resource_types", run.resource_types),
        (pulumi_types, "resource_pulumi_to_py_names", run.resource_pulumi_to_py_names),
        (pulumi_log, "debug", _no_debug),
    )


@contextlib.contextmanager
def installed() -> Iterator[OfflineRun | None]:
    """Install the replacements for one run (yields its `OfflineRun`), or on an unsupported pulumi warn and yield
    None."""
    if not supported():
        warnings.warn(f"pulumi {installed_pulumi()} is installed, the offline engine's fast path was "
                      f"written for {SUPPORTED_PULUMI}: planning on the SDK's own (slower) path",
                      RuntimeWarning, stacklevel=3)
        yield None
        return
    run = OfflineRun()
    replacements = _replacements(run)
    originals = [(module, name, getattr(module, name)) for module, name, _ in replacements]
    for module, name, replacement in replacements:
        setattr(module, name, replacement)
    try:
        yield run
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


# -- provider service packages: load the modules a program uses, not every module of the service ---------------

# pulumi's copy of the standard library's lazy module (pulumi._utils.lazy_import), and the original
_LAZY_MODULES = tuple(kind for kind in (getattr(pulumi_utils, "_LazyModule", None),
                                        getattr(importlib.util, "_LazyModule", None)) if isinstance(kind, type))
_SERVICE_INIT_LINE = re.compile(r"from \.(?P<star>\w+) import \*|from \. import (?P<sub>\w+)"
                                r"|import builtins as _builtins|from \.\. import _utilities|import typing|#.*|\s*")
_ALL = re.compile(r"^__all__ = (\[.*?\])", re.MULTILINE | re.DOTALL)


def load_services_by_name(package: ModuleType) -> int:
    """Make each service package of `package` (pulumi-aws: `aws.ec2`, `aws.rds`, ...) that is not loaded yet
    load, on first use of a name, only the module that defines it; returns how many were changed.

    A service package's `__init__.py` is a list of `from .module import *` (about 180 modules in `aws.ec2`,
    1.3 MB each for its `_inputs` and `outputs`), and pulumi-aws loads all of it on the first attribute access
    (its services are lazy modules: `pulumi._utils.lazy_import`). Here a name resolves to the module the `__init__`
    would have taken it from (the last one whose `__all__` lists it), which is imported and its names bound
    as the star import would bind them. A name no module lists (or an `__init__` of another shape) loads the
    whole package as before. The module object stays the same one, so references to it stay valid."""
    changed = 0
    for value in list(vars(package).values()):
        if type(value) in _LAZY_MODULES:  # not isinstance: that may load it
            value.__class__ = ModuleType  # no longer loads on attribute access (setting it reads nothing)
            value.__dict__["__getattr__"] = functools.partial(_service_attribute, value)
            changed += 1
    return changed


def _service_attribute(service: ModuleType, name: str) -> Any:
    """PEP 562 `__getattr__` of a service package loaded by name (see `load_services_by_name`)."""
    package = _package_of(service)
    if package is None or name.startswith("__"):
        _load_whole(service)
        return getattr(service, name)
    exports, submodules = package
    owner = exports.get(name)
    if owner is not None:
        module = importlib.import_module(f"{service.__name__}.{owner}")
        for exported in module.__all__:  # bound as `from .owner import *` binds them
            if exports.get(exported) == owner:
                setattr(service, exported, getattr(module, exported))
        return getattr(service, name)
    if name in submodules:  # `from . import outputs` in the service's own modules asks for one
        return importlib.import_module(f"{service.__name__}.{name}")
    _load_whole(service)
    return getattr(service, name)


@functools.cache
def _package_at(directory: str) -> tuple[dict[str, str], frozenset[str]] | None:
    """(name -> the module whose star import in the package's `__init__.py` binds it last, the package's
    submodules); None if that `__init__.py` is anything but star imports (then the package is loaded whole)."""
    root = Path(directory)
    owners: dict[str, str] = {}
    for line in (root / "__init__.py").read_text(encoding="utf-8").splitlines():
        match = _SERVICE_INIT_LINE.fullmatch(line)
        if match is None:
            return None
        if match["star"]:
            names = _all_of(root / f"{match['star']}.py")
            if names is None:
                return None
            owners.update(dict.fromkeys(names, match["star"]))
        elif match["sub"]:
            owners[match["sub"]] = ""  # `from . import outputs` binds the submodule itself
    submodules = frozenset(path.stem for path in root.glob("*.py")) - {"__init__"}
    return {name: owner for name, owner in owners.items() if owner}, submodules


def _all_of(path: Path) -> list[str] | None:
    """A generated module's `__all__`, read from the top of its file (it comes before any definition)."""
    with path.open(encoding="utf-8") as source:
        head = ""
        while chunk := source.read(1 << 16):
            head += chunk
            found = _ALL.search(head)
            if found is not None:
                return list(ast.literal_eval(found[1]))
    return None


def _package_of(service: ModuleType) -> tuple[dict[str, str], frozenset[str]] | None:
    path = service.__dict__.get("__path__")
    return _package_at(path[0]) if path else None


def exports(service: Any, name: str) -> bool:
    """Whether `service` (a package loaded by name) binds `name` by its star imports or as a submodule; True for
    anything else (a package of another shape, a module), whose attributes are not read ahead."""
    package = _package_of(service) if isinstance(service, ModuleType) and "__getattr__" in vars(service) else None
    return package is None or name in package[0] or name in package[1]


def _load_whole(service: ModuleType) -> None:
    service.__dict__.pop("__getattr__", None)
    service.__spec__.loader.exec_module(service)  # type: ignore[union-attr]


def load_provider_services(packages: Iterable[str] = PROVIDER_PACKAGES.values()) -> None:
    """`load_services_by_name` for the program's provider SDKs (on the supported pulumi only, like the rest)."""
    if supported():
        for package in packages:
            load_services_by_name(importlib.import_module(package))
