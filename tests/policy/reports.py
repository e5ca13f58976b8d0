"""What a user reads in CI for each violation: the policy, the resource it names and the whole message; and why
a policy checked nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import evaluate
from policy.base import PackPolicy
from policy.pack import load_policy_config
from tests.policy.fixtures import REGION, STACK_URN, run


def reports(resources: Iterable[RecordedResource], policies: Iterable[PackPolicy], *,
            config: Mapping[str, Any] | None = None) -> list[tuple[str, str, str]]:
    """(policy, name of the resource the violation names, message) of each violation of `policies` only; a stack
    policy's violation that names no resource names the stack (edumatrix-db-test)."""
    policies = list(policies)
    names = {p.name for p in policies}
    return [(v.policy, v.urn.rsplit("::", 1)[-1], v.message) for v in run(resources, policies=policies, config=config)
            if v.policy in names]


def not_applicable(resources: Iterable[RecordedResource], policies: Iterable[PackPolicy]) -> dict[str, str]:
    """policy -> the reason it gives for checking nothing in this stack (prod policy config)."""
    _, reasons = evaluate(list(resources), load_policy_config("prod"), region=REGION, stack_urn=STACK_URN,
                          policies=list(policies))
    return reasons
