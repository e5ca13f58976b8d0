"""Every resource type a stack declares is named by at least one policy of the pack, so that a new AWS (or
PostgreSQL) resource cannot reach `pulumi up` with no rule having read its constraints (issue 10). The few
types no policy needs to read are listed below, each with the reason."""

from __future__ import annotations

import pytest

from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner
from policy.pack import POLICIES

# type -> why no policy reads it (add a type here only with a reason a reviewer accepts)
DELIBERATELY_UNRULED: dict[str, str] = {
    "random:index/randomId:RandomId": "computed locally by the random provider; no cloud API receives it",
    "random:index/randomPassword:RandomPassword": "computed locally; the password reaches AWS only through a "
                                                  "SecretVersion or the instance, which policies read",
    "pulumi:providers:postgresql": "a provider: its host, port and TLS settings are the instance's, which the "
                                   "rds-* and connection policies read (tests/test_providers.py pins the TLS mode)",
    "pulumi:pulumi:StackReference": "reads another stack's outputs; declares nothing",
}


def _named_types() -> set[str]:
    return set().union(*(p.resource_types for p in POLICIES))


@pytest.mark.parametrize("stack", available_stacks())
def test_every_resource_type_of_the_stack_is_named_by_a_policy(planner: Planner, stack: str) -> None:
    declared = {r.type for r in planner.plan(stack).resources if r.custom}
    unruled = sorted(declared - _named_types() - set(DELIBERATELY_UNRULED))
    assert unruled == [], (f"{stack} declares {', '.join(unruled)}, which no policy names: read the AWS API's "
                           "constraints of each and add a policy (policy/aws_api_services.py), or list it in "
                           "DELIBERATELY_UNRULED with the reason")


def test_no_deliberately_unruled_type_is_also_ruled() -> None:
    assert sorted(set(DELIBERATELY_UNRULED) & _named_types()) == []
