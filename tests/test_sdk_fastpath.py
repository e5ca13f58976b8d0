"""Each replacement of `sdk_fastpath` computes what the pulumi SDK function it replaces computes, on the cases
that function distinguishes; on another pulumi version none is installed and the plan is still the same.

(That the whole fast engine records what the SDK's own path records, on every stack file, is
tests/test_engine_speed.py.)"""

import asyncio
import enum
import random
from typing import Any, cast

import pytest
from pulumi import Resource
from pulumi import _types as pulumi_types
from pulumi.output import Unknown
from pulumi.runtime import resource_cycle_breaker, rpc

from edumatrix_db.offline import sdk_fastpath
from edumatrix_db.offline.engine import Planner
from tests.test_engine_speed import _by_urn

SDK_TRANSFER = rpc.transfer_properties
SDK_SERIALIZE = rpc.serialize_property
SDK_DESERIALIZE = rpc.deserialize_properties
SDK_ADD_DEPENDENCY = rpc._add_dependency
SDK_RESOURCE_TYPES = pulumi_types.resource_types


class _Res:
    """Stands in for a Resource: both versions only use its identity and its __dict__."""


def _stand_in() -> Resource:
    """A _Res where the functions compared take a Resource (they only use its identity and its __dict__)."""
    return cast(Resource, _Res())


async def _resolved(transfer: Any, resolution: tuple) -> tuple:
    res, dep = _Res(), _Res()
    resolvers = transfer(res, {"size": None, "urn": None, "id": None}, True)
    value, known, secret, with_deps = resolution
    resolvers["size"](value, known, secret, {dep} if with_deps else None, None)
    data = await res.__dict__["size"]._data
    return sorted(resolvers), data.value, data.is_known, data.is_secret, res in data.resources, dep in data.resources


@pytest.mark.parametrize("resolution", [
    (5, True, False, False), ("pw", True, True, True), (None, False, False, True), ([Unknown()], True, False, False),
], ids=["known", "secret-with-dependency", "unknown", "containing-an-unknown"])
def test_a_transferred_property_resolves_as_the_sdk_resolves_it(resolution: tuple[Any, bool, bool, bool]) -> None:
    ours = asyncio.run(_resolved(sdk_fastpath.OfflineRun().transfer_properties, resolution))
    sdk = asyncio.run(_resolved(SDK_TRANSFER, resolution))
    assert ours == sdk
    assert ours[0] == ["size"]  # `urn` and `id` are the resource's own outputs


def test_a_transferred_property_fails_as_the_sdks_fails() -> None:
    async def failure(transfer: Any) -> BaseException:
        res = _Res()
        transfer(res, {"size": None}, False)["size"](None, False, False, None, ValueError("engine said no"))
        with pytest.raises(ValueError, match="engine said no") as raised:
            await res.__dict__["size"]._data
        res.__dict__["size"]._untrack()  # a failed output stays tracked for the end of a program otherwise
        return raised.value

    ours = asyncio.run(failure(sdk_fastpath.OfflineRun().transfer_properties))
    assert str(ours) == str(asyncio.run(failure(SDK_TRANSFER)))


class _Engine(enum.StrEnum):  # pulumi-aws enums are str enums
    POSTGRES = "postgres"


@pytest.mark.parametrize("value", ["text", "", 0, 5432, 0.5, True, False, None, _Engine.POSTGRES, ["a", 1],
                                   {"key": "value"}])
@pytest.mark.parametrize("typ", [None, str, list[str], dict[str, str]])
def test_a_property_serializes_as_the_sdk_serializes_it(value: object, typ: object) -> None:
    async def serialized(serialize: Any) -> tuple:
        try:
            result = await serialize(value, [], "prop", None, None, typ)
        except AssertionError as error:  # a list where the type says str: the SDK refuses it
            return "refused", str(error)
        return result, type(result)

    assert asyncio.run(serialized(sdk_fastpath.serialize_property)) == asyncio.run(serialized(SDK_SERIALIZE))


@pytest.mark.parametrize("numbered", ["all", "some"])
def test_the_dependency_cycle_check_answers_as_the_sdks_on_random_graphs(numbered: str) -> None:
    """Resources numbered in creation order (all, or only some as if others were made elsewhere); edges first
    only to earlier resources (what programs declare), then any, self-edges and cycles included."""
    rng = random.Random(16)
    for _ in range(60):
        run = sdk_fastpath.OfflineRun()
        ours, sdk = [_stand_in() for _ in range(12)], [_stand_in() for _ in range(12)]
        for node in ours:
            if numbered == "all" or rng.random() < 0.7:
                run.transfer_properties(node, {}, False)
        edges = [tuple(sorted(rng.sample(range(12), 2), reverse=True)) for _ in range(25)]
        edges += [(rng.randrange(12), rng.randrange(12)) for _ in range(25)]
        for a, b in edges:
            assert run.declare_dependency(ours[a], ours[b]) == resource_cycle_breaker.declare_dependency(sdk[a], sdk[b])
        for mine, theirs in zip(ours, sdk, strict=True):
            assert {ours.index(d) for d in resource_cycle_breaker._deps(mine)} == \
                {sdk.index(d) for d in resource_cycle_breaker._deps(theirs)}


def test_the_replacements_are_removed_after_a_fast_run(planner: Planner) -> None:
    planner.plan("dev")
    assert rpc.transfer_properties is SDK_TRANSFER
    assert rpc.serialize_property is SDK_SERIALIZE
    assert rpc.deserialize_properties is SDK_DESERIALIZE
    assert rpc._add_dependency is SDK_ADD_DEPENDENCY
    assert pulumi_types.resource_types is SDK_RESOURCE_TYPES


def test_another_pulumi_version_plans_on_the_sdks_path_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                                       planner: Planner) -> None:
    monkeypatch.setattr(sdk_fastpath, "installed_pulumi", lambda: "3.999.0")
    with pytest.warns(RuntimeWarning, match="pulumi 3.999.0 is installed"):
        replaced = sdk_fastpath.installed().__enter__()
    assert not replaced
    assert rpc.transfer_properties is SDK_TRANSFER
    with pytest.warns(RuntimeWarning, match="SDK's own"):
        fallback = Planner().plan("dev")
    assert _by_urn(fallback) == _by_urn(planner.plan("dev"))


_SAME_NAMES_AS_THE_WHOLE_PACKAGE = """
import sys, types
import pulumi_aws
from edumatrix_db.offline import sdk_fastpath
from edumatrix_db.offline.parallel import provider_modules_used

assert sdk_fastpath.load_services_by_name(pulumi_aws) > 100
services = sorted({module for package, module, _ in provider_modules_used()  # text like `aws.events.x` in a
                   if package == "pulumi_aws" and module in vars(pulumi_aws)})  # string is no service
by_name = {}
for service in services:
    package = getattr(pulumi_aws, service)
    exports, _ = sdk_fastpath._package_of(package)
    by_name[service] = {name: getattr(package, name) for name in exports}
for service in services:
    package = getattr(pulumi_aws, service)
    sdk_fastpath._load_whole(package)  # the package's own __init__.py, over the modules already imported
    whole = {k: v for k, v in vars(package).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)}
    assert whole.keys() == by_name[service].keys(), (service, whole.keys() ^ by_name[service].keys())
    assert all(whole[k] is v for k, v in by_name[service].items()), service
print(len(services))
"""


def _python(code: str) -> str:
    import subprocess
    import sys

    from config.loader import PROJECT_ROOT

    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_service_loaded_by_name_binds_every_name_as_its_whole_package_binds_it() -> None:
    assert int(_python(_SAME_NAMES_AS_THE_WHOLE_PACKAGE)) >= 15  # every pulumi-aws service the components use


def test_a_plan_loads_only_the_service_modules_the_program_uses() -> None:
    loaded = _python("""
import sys
from edumatrix_db.offline.engine import Planner
Planner().plan("dev")
print(" ".join(sorted(m for m in sys.modules if m.startswith("pulumi_aws.ec2."))))
""").split()
    assert "pulumi_aws.ec2.security_group" in loaded
    assert "pulumi_aws.ec2.vpn_gateway" not in loaded  # one of the ~180 modules of aws.ec2 it does not use


@pytest.mark.parametrize("parent", ["", "urn:pulumi:dev::edumatrix-db::pulumi:pulumi:Stack::edumatrix-db-dev",
                                    "urn:pulumi:dev::edumatrix-db::edumatrix:db:Shared$aws:rds/instance:Instance::db"])
def test_a_urn_is_created_as_the_sdk_creates_it(parent: str) -> None:
    from pulumi.runtime import resource

    async def created(create: Any) -> tuple:
        data = await create("primary", "aws:kms/key:Key", parent)._data
        return data.value, data.is_known, data.is_secret, data.resources

    assert asyncio.run(created(sdk_fastpath.create_urn)) == asyncio.run(created(resource.create_urn))


@pytest.mark.parametrize("value", ["text", 0, 1.5, True, None, [1], {"a": [Unknown()]}, [Unknown()]])
@pytest.mark.parametrize("known", [True, False])
def test_output_data_is_made_as_the_sdk_makes_it(value: object, known: bool) -> None:
    from pulumi.output import _OutputData

    res = _stand_in()
    ours = sdk_fastpath.output_data({res}, value, known, True)
    sdk = _OutputData(resources={res}, value=value, is_known=known, is_secret=True)
    assert (ours.resources, ours.value, ours.is_known, ours.is_secret) == \
        (sdk.resources, sdk.value, sdk.is_known, sdk.is_secret)


_SECRET = rpc.wrap_rpc_secret


@pytest.mark.parametrize("state", [
    {"port": 5432, "ratio": 0.5, "name": "db", "multiAz": True, "skipped": None},
    {"tags": {"team": "data", "gone": None}, "ports": [5432, None, "x"], "empty": {}, "none": []},
    {"password": _SECRET("pw"), "nested": {"inner": _SECRET({"a": 1})}, "listed": [1, _SECRET("s")]},
    {"deep": {"deeper": {"secret": _SECRET([1, 2])}}, "big": 2 ** 60, "negative": -3},
], ids=["leaves", "containers", "secrets", "deep-secret-and-large-int"])
def test_a_mocked_state_deserializes_as_the_sdk_deserializes_its_struct(state: dict[str, Any]) -> None:
    from edumatrix_db.offline.engine import serialize_state

    ours = sdk_fastpath.deserialized_state(state)
    sdk = rpc.deserialize_properties(serialize_state(state), True)
    assert ours == sdk
    assert _types_of(ours) == _types_of(sdk)  # 5432 comes back as 5432.0 from protobuf, and so from ours


def _types_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types_of(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types_of(v) for v in value]
    return type(value).__name__


@pytest.mark.parametrize("state", [
    {"value": rpc.UNKNOWN}, {"nested": [rpc.UNKNOWN]}, {"asset": {rpc._special_sig_key: rpc._special_asset_sig,
                                                               "path": "x"}},
    {rpc._special_sig_key: rpc._special_secret_sig, "value": 1}, {"odd": (1, 2)}, {"key": {1: "not a str key"}},
], ids=["unknown", "nested-unknown", "asset", "top-level-signature", "tuple", "int-key"])
def test_a_state_that_is_not_plain_data_is_left_to_the_sdk(state: dict[str, Any]) -> None:
    assert sdk_fastpath.deserialized_state(state) is None


def test_plain_properties_pass_the_replaced_deserializer_as_they_are_and_a_struct_goes_to_the_sdk() -> None:
    from edumatrix_db.offline.engine import serialize_state

    plain = sdk_fastpath.deserialized_state({"a": 1, "__internal": "x"})
    assert sdk_fastpath.deserialize_properties(plain) is plain
    assert sdk_fastpath.deserialize_properties(plain, None, False) == {"a": 1.0}
    struct = serialize_state({"a": 1, "__internal": "x"})
    assert sdk_fastpath.deserialize_properties(struct) == rpc.deserialize_properties(struct)


def _tree(rng: random.Random) -> tuple[list[Any], Any]:
    """A random resource tree (local and remote components, custom resources with children, a URN that is not
    known yet), made without the SDK's constructors: the walk only reads these attributes."""
    import pulumi

    def make(kind: type, name: str, remote: bool = False, urn: Any = None) -> Any:
        res: Any = object.__new__(kind)  # its attributes are set here, as no constructor ran
        res._type, res._name, res._remote, res._childResources = "test:index:Thing", name, remote, set()
        data: asyncio.Future = asyncio.get_running_loop().create_future()
        data.set_result(pulumi.output._OutputData({res}, f"urn:{name}" if urn is None else urn, True, False))
        res.__dict__["urn"] = pulumi.Output._from_data(data)
        return res

    kinds = [pulumi.ComponentResource, pulumi.CustomResource]
    nodes = [make(pulumi.ComponentResource, "root")]
    for number in range(40):
        parent = rng.choice(nodes)
        kind = rng.choice(kinds)
        node = make(kind, f"n{number}", remote=rng.random() < 0.2, urn="" if rng.random() < 0.05 else None)
        parent._childResources.add(node)
        nodes.append(node)
    return nodes, make(pulumi.CustomResource, "dependent")


@pytest.mark.parametrize("seed", range(8))
def test_a_dependency_on_a_component_expands_as_the_sdk_expands_it(seed: int) -> None:
    async def both() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        nodes, dependent = _tree(random.Random(seed))
        picked = random.Random(seed).sample(nodes, 3)
        results = []
        for add in (sdk_fastpath.add_dependency, SDK_ADD_DEPENDENCY):  # the same tree: sets iterate alike
            deps: dict[str, Any] = {}
            for node in picked:
                await add(deps, node, dependent)
            results.append([(urn, res._name) for urn, res in deps.items()])  # in the order they were added
        return results[0], results[1]

    ours, sdk = asyncio.run(both())
    assert ours == sdk
    assert ours  # the tree has custom resources under its components


def test_a_dependency_on_something_else_than_a_resource_is_refused_as_by_the_sdk() -> None:
    async def refused(add: Any) -> str:
        with pytest.raises(TypeError) as raised:
            await add({}, "not a resource", None)
        return str(raised.value)

    assert asyncio.run(refused(sdk_fastpath.add_dependency)) == asyncio.run(refused(SDK_ADD_DEPENDENCY))


@pytest.mark.parametrize("cls", ["pulumi_aws.rds.Instance", "pulumi_postgresql.Grant",
                                 "components.secrets.CredentialSecret"])
def test_a_resource_class_translates_its_outputs_as_the_sdk_translates_them(cls: str) -> None:
    import importlib

    module, name = cls.rsplit(".", 1)
    resource_cls = getattr(importlib.import_module(module), name)
    run = sdk_fastpath.OfflineRun()
    for _ in range(2):  # the second answer comes from the run's cache
        assert run.resource_types(resource_cls) == pulumi_types.resource_types(resource_cls)
        assert run.resource_pulumi_to_py_names(resource_cls) == pulumi_types.resource_pulumi_to_py_names(resource_cls)
    assert run.resource_types(resource_cls) is run.resource_types(resource_cls)
