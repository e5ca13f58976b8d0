"""The connection-layer and alarm policies on the prod plan: it passes them, and each AWS constraint or spec
rule they encode is reported when one resource breaks it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from edumatrix_db.offline.engine import RecordedResource, Recording
from policy import connections
from tests.policy.fixtures import run

Edit = Callable[[dict[str, Any]], None]


def violations_after(prod: Recording, type_token: str, edit: Edit, *, which: int = 0) -> dict[str, list[str]]:
    """Run the policies over prod's resources with one resource of `type_token` edited."""
    target = [r for r in prod.resources if r.type == type_token][which]
    resources: list[RecordedResource] = []
    for res in prod.resources:
        if res is target:
            props = json.loads(json.dumps(res.props))
            edit(props)
            res = dataclasses.replace(res, props=props, inputs=props)
        resources.append(res)
    out: dict[str, list[str]] = {}
    for v in run(resources, policies=connections.POLICIES):
        out.setdefault(v.policy, []).append(v.message)
    return out


def test_the_prod_plan_passes_every_connection_and_alarm_policy(prod: Recording) -> None:
    assert run(prod.resources, policies=connections.POLICIES) == []


# (type, edit of a compliant resource, the policy that must report it, a piece of its message)
BROKEN: list[tuple[str, Edit, str, str]] = [
    (connections.PROXY, lambda p: p["auths"][0].update(iamAuth="DISABLED"), "rds-proxy-authentication",
     "iamAuth must be REQUIRED"),
    (connections.PROXY, lambda p: p["auths"][0].update(clientPasswordAuthType="POSTGRES_MD5"),
     "rds-proxy-authentication", "never POSTGRES_MD5"),
    (connections.PROXY, lambda p: p.update(debugLogging=True), "rds-proxy-authentication", "debugLogging"),
    (connections.PROXY, lambda p: p.update(idleClientTimeout=600), "rds-proxy-idle-client-timeout",
     "must exceed the clients' 600 s"),
    (connections.PROXY, lambda p: p.update(idleClientTimeout=28_801), "rds-proxy-idle-client-timeout",
     "at most 28800"),
    (connections.PROXY_POOL, lambda p: p["connectionPoolConfig"].update(connectionBorrowTimeout=120),
     "rds-proxy-pool", "waits at most 30 s"),
    (connections.PROXY_POOL, lambda p: p["connectionPoolConfig"].update(connectionBorrowTimeout=0),
     "rds-proxy-pool", "0 = wait forever"),
    (connections.PROXY_POOL, lambda p: p["connectionPoolConfig"].update(maxIdleConnectionsPercent=99),
     "rds-proxy-pool", "exceeds maxConnectionsPercent"),
    (connections.PROXY_POOL, lambda p: p["connectionPoolConfig"].pop("maxConnectionsPercent"),
     "rds-proxy-pool", "set it from the catalog"),
    (connections.PROXY_ENDPOINT, lambda p: p.update(targetRole="READ_ONLY"), "rds-proxy-endpoint-read-write",
     "only for Aurora"),
    (connections.PROXY_TARGET, lambda p: p.update(dbInstanceIdentifier="edumatrix-prod-replica-1"),
     "rds-proxy-quotas-and-target", "is a read replica"),
    (connections.ALARM, lambda p: p.update(alarmActions=[]), "alarm-actions-encrypted-topic", "pages nobody"),
    (connections.TOPIC, lambda p: p.update(kmsMasterKeyId="alias/aws/sns"), "alarm-actions-encrypted-topic",
     "alias/aws/sns cannot admit CloudWatch"),
    (connections.EVENT_SUBSCRIPTION, lambda p: p.update(enabled=False), "rds-event-subscriptions", "RDS.2"),
]
# Stack policies whose example needs more than one edited resource have a test of their own below.
EXAMPLES_ELSEWHERE = {"rds-proxy-role-scoped"}


@pytest.mark.parametrize(("type_token", "edit", "policy", "message"), BROKEN)
def test_a_broken_resource_is_reported_by_its_policy(prod: Recording, type_token: str, edit: Edit, policy: str,
                                                     message: str) -> None:
    found = violations_after(prod, type_token, edit)
    assert policy in found, found
    assert any(message in m for m in found[policy]), found[policy]


def test_a_proxy_role_reading_other_secrets_is_reported(prod: Recording) -> None:
    def widen(props: dict[str, Any]) -> None:
        document = json.loads(props["policy"])
        document["Statement"][0]["Resource"].append("arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
        props["policy"] = json.dumps(document)

    index = next(i for i, r in enumerate(prod.of_type("aws:iam/rolePolicy:RolePolicy")) if "proxy" in r.name)
    found = violations_after(prod, "aws:iam/rolePolicy:RolePolicy", widen, which=index)
    assert any("which are not its auth secrets" in m for m in found["rds-proxy-role-scoped"])


def test_twenty_one_proxies_exceed_the_region_quota(prod: Recording) -> None:
    proxy = prod.one(connections.PROXY)
    extra = [dataclasses.replace(proxy, urn=f"{proxy.urn}-{i}", props={**proxy.props, "name": f"p{i}"})
             for i in range(20)]
    found = {v.policy: v.message for v in run([*prod.resources, *extra], policies=connections.POLICIES)}
    assert "AWS allows 20 per account and Region" in found["rds-proxy-quotas-and-target"]
