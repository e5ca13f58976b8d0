"""What one policy reports over a handful of resources, as a user reads it in CI: the resource each violation
names (the stack's name for a stack-wide one) and the whole message. The message tables of tests/policy pin
every message in full with these helpers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import evaluate
from policy.base import PackPolicy
from policy.pack import load_policy_config
from tests.policy.fixtures import MISSING, REGION, STACK_URN, resource, run

STACK = STACK_URN.rsplit("::", 1)[-1]  # the name a violation without a resource is attributed to


def reports(policy: PackPolicy, resources: Iterable[RecordedResource], *, region: str | None = REGION,
            default_region: str | None = None, config: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    """(name of the resource reported, message) of each violation of `policy` alone, in report order.
    `region` is the default provider's; `default_region` the policy's defaultRegion config, when given; `config`
    the policy's other settings."""
    settings = {**(config or {}), **({"defaultRegion": default_region} if default_region else {})}
    return [(name, message) for _, name, message in violations_of(
        resources, [policy], region=region, config={policy.name: settings} if settings else None)]


def not_applicable(policy: PackPolicy, resources: Iterable[RecordedResource]) -> str | None:
    """The reason `policy` gives for checking nothing over `resources`, None when it checked them."""
    return reasons_not_applicable(resources, [policy]).get(policy.name)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` applied one level deep into dict values (MISSING removes a key)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            value = merged(out[key], value)
        out[key] = value
    return {k: v for k, v in out.items() if v is not MISSING}


def builder(type_: str, base: Mapping[str, Any]) -> Any:
    """A function (name, **overrides) -> a `type_` resource of props `base` with the overrides merged in."""
    def build(resource_name: str, /, *, depends_on: Iterable[RecordedResource] = (),
              **overrides: Any) -> RecordedResource:
        res = resource(type_, resource_name, merged(base, overrides))
        return dataclasses.replace(res, dependencies=tuple(d.urn for d in depends_on))
    return build


def rows(*items: Any) -> list[Any]:
    """pytest params from table rows (id, value, ...): each row's first item names its case."""
    return [pytest.param(*item[1:], id=item[0]) for item in items]


def violations_of(resources: Iterable[RecordedResource], policies: Iterable[PackPolicy], *,
                  region: str | None = REGION, config: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(policy, name of the resource the violation names, message) of each violation of `policies` only, in report
    order; a stack policy's violation that names no resource names the stack (`STACK`)."""
    policies = list(policies)
    names = {p.name for p in policies}
    return [(v.policy, v.urn.rsplit("::", 1)[-1], v.message)
            for v in run(resources, policies=policies, region=region, config=config) if v.policy in names]


def reasons_not_applicable(resources: Iterable[RecordedResource], policies: Iterable[PackPolicy]) -> dict[str, str]:
    """policy -> the reason it gives for checking nothing in this stack (prod policy config)."""
    _, reasons = evaluate(list(resources), load_policy_config("prod"), region=REGION, stack_urn=STACK_URN,
                          policies=list(policies))
    return reasons
