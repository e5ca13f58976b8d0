"""policy/connections.py, every violation as a user reads it in CI: one row per way to break the prod plan's
proxy, pool, endpoints, alarms and event subscriptions, with the resource the violation names (a stack policy's
violation naming no resource names the stack, edumatrix-db-test) and its whole message."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from edumatrix_db.offline.engine import Recording
from policy import connections
from policy.base import PackPolicy
from tests.policy.fixtures import edited, instance, resource
from tests.policy.reports import violations_of as reports

Edit = Callable[[dict[str, Any]], None]
Build = Callable[[Recording], list]
C = connections
PROXY = "edumatrix-prod-shared"


def _edit(type_token: str, edit: Edit, *extra: Any, which: int = 0) -> Build:
    return lambda prod: [*edited(prod.resources, type_token, edit, which=which), *extra]


def _auth(**changes: Any) -> Edit:
    """Change the proxy's first auth entry (students_platform's app login); a None value removes the key."""
    def apply(p: dict[str, Any]) -> None:
        p["auths"][0].update(changes)
        p["auths"][0] = {k: v for k, v in p["auths"][0].items() if v is not None}
    return apply


def _pool(**changes: Any) -> Edit:
    return lambda p: p["connectionPoolConfig"].update(changes)


def _endpoints(count: int, proxy: str = PROXY) -> Build:
    """The prod plan with `count` endpoints of `proxy` (its own nine replaced, or beside them for another proxy)."""
    def build(prod: Recording) -> list:
        first = prod.of_type(C.PROXY_ENDPOINT)[0]
        kept = [r for r in prod.resources if r.type != C.PROXY_ENDPOINT or proxy != PROXY]
        return [*kept, *(dataclasses.replace(first, urn=f"{first.urn}-{n}", name=f"endpoint-{n}",
                                             props={**first.props, "dbProxyName": proxy}) for n in range(count))]
    return build


def _auths(count: int) -> Edit:
    return lambda p: p.update(auths=[{**p["auths"][0], "description": f"login {n}"} for n in range(count)])


def _proxies(count: int) -> Build:
    """The prod plan with `count` proxies (its own and copies)."""
    def build(prod: Recording) -> list:
        proxy = prod.one(C.PROXY)
        return [*prod.resources, *(dataclasses.replace(proxy, urn=f"{proxy.urn}-{n}", name=f"proxy-{n}",
                                                       props={**proxy.props, "name": f"p{n}"})
                                   for n in range(count - 1))]
    return build


def _proxy_policy(*statements: dict[str, Any], as_text: bool = True, by_id: bool = False) -> Build:
    """The proxy role's policy replaced by `statements` (one statement alone is given as an object); `by_id`: the
    policy names its role by the role's id rather than its name."""
    def edit(p: dict[str, Any]) -> None:
        document = {"Version": "2012-10-17", "Statement": statements[0] if len(statements) == 1 else list(statements)}
        p["policy"] = json.dumps(document) if as_text else document
        if by_id:
            p["role"] = "AROAPROXYROLE"

    def build(prod: Recording) -> list:
        which = next(i for i, r in enumerate(prod.of_type(C.ROLE_POLICY)) if r.name.endswith("-proxy-secrets"))
        resources = edited(prod.resources, C.ROLE_POLICY, edit, which=which)
        if by_id:
            role = next(i for i, r in enumerate(prod.of_type(C.ROLE)) if r.name.endswith("-proxy-role"))
            resources = edited(resources, C.ROLE, lambda p: p.update(id="AROAPROXYROLE"), which=role)
        return resources
    return build


OTHER_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:other"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/e6766703-97da-5b21-9a5b-ef0cd900cc76"
EXTERNAL_TOPIC = "arn:aws:sns:us-east-1:123456789012:existing"


def _alarming(*, alarm: Edit | None = None, topic: Edit | None = None, key: Edit | None = None) -> Build:
    """The prod plan's alarm topic, its key and one alarm paging it, each changed by its edit."""
    def build(prod: Recording) -> list:
        chosen = [prod.of_type(C.ALARM)[0], prod.one(C.TOPIC),
                  next(k for k in prod.of_type(C.KEY) if k.name == "edumatrix-prod-alarms-key")]
        for type_token, edit in ((C.ALARM, alarm), (C.TOPIC, topic), (C.KEY, key)):
            chosen = edited(chosen, type_token, edit) if edit else chosen
        return chosen
    return build


def _subscriptions(edit: Edit, *, which: int = 0, first: Any = None) -> Build:
    def build(prod: Recording) -> list:
        resources = edited(prod.resources, C.EVENT_SUBSCRIPTION, edit, which=which)
        return [first, *resources] if first is not None else resources
    return build


CASES: list[Any] = [
    # rds-proxy-authentication: names the proxy
    pytest.param(C.proxy_authentication, _edit(C.PROXY, lambda p: p.update(engineFamily="MYSQL")),
                 [("edumatrix-prod-connections-shared",
                   "engineFamily is 'MYSQL'; the platform's proxies front PostgreSQL")],
                 id="proxy-mysql"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, lambda p: p.update(debugLogging=True)),
                 [("edumatrix-prod-connections-shared",
                   "debugLogging is on: the proxy would log the text of every statement")],
                 id="proxy-debug-logging"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, lambda p: p.update(auths=[])),
                 [("edumatrix-prod-connections-shared", "no auth entries: the proxy has no login to the database")],
                 id="proxy-without-auths"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, _auth(iamAuth="DISABLED")),
                 [("edumatrix-prod-connections-shared",
                   "auth students_platform_app (students_platform): iamAuth must be REQUIRED (clients authenticate "
                   "with IAM tokens)")],
                 id="proxy-auth-without-iam-named-by-description"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, _auth(iamAuth="DISABLED", description=None)),
                 [("edumatrix-prod-connections-shared",
                   "auth arn:aws:secretsmanager:us-east-1:123456789012:secret:edumatrix-prod/db/students_platform/"
                   "app-bae50c: "
                   "iamAuth must be REQUIRED (clients authenticate with IAM tokens)")],
                 id="proxy-auth-without-iam-named-by-secret"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, lambda p: p["auths"].insert(0, "not an entry")), [],
                 id="proxy-auth-entry-not-a-mapping-is-skipped"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, lambda p: p.update(auths=[
        "not an entry", {**p["auths"][0], "clientPasswordAuthType": "POSTGRES_MD5"}])),
                 [("edumatrix-prod-connections-shared",
                   "auth students_platform_app (students_platform): clientPasswordAuthType must be "
                   "POSTGRES_SCRAM_SHA_256 (never POSTGRES_MD5)")],
                 id="proxy-auth-md5-after-an-entry-not-a-mapping"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, _auth(secretArn=None)),
                 [("edumatrix-prod-connections-shared",
                   "auth students_platform_app (students_platform): the proxy logs in with a Secrets Manager "
                   "secret (authScheme SECRETS, secretArn)")], id="proxy-auth-without-secret"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, _auth(authScheme="IAM")),
                 [("edumatrix-prod-connections-shared",
                   "auth students_platform_app (students_platform): the proxy logs in with a Secrets Manager "
                   "secret (authScheme SECRETS, secretArn)")], id="proxy-auth-scheme-not-secrets"),
    pytest.param(C.proxy_authentication, _edit(C.PROXY, _auth(authScheme=None)), [],
                 id="proxy-auth-scheme-defaults-to-secrets"),
    # rds-proxy-idle-client-timeout
    pytest.param(C.proxy_idle_timeout, _edit(C.PROXY, lambda p: p.update(idleClientTimeout=600)),
                 [("edumatrix-prod-connections-shared",
                   "idleClientTimeout is 600; it must exceed the clients' 600 s idle timeout (so clients close "
                   "idle connections first) and AWS allows at most 28800")],
                 id="idle-timeout-not-above-the-clients"),
    pytest.param(C.proxy_idle_timeout, _edit(C.PROXY, lambda p: p.update(idleClientTimeout=28_800)), [],
                 id="idle-timeout-at-the-aws-maximum-is-fine"),
    # rds-proxy-pool
    pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(connectionBorrowTimeout=0)),
                 [("edumatrix-prod-connections-shared-pool",
                   "connectionBorrowTimeout is 0 (AWS default 120, 0 = wait forever); the spec waits at most 30 s")],
                 id="pool-wait-forever"),
    pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(connectionBorrowTimeout=1)), [], id="pool-wait-one-second"),
    pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(maxConnectionsPercent=101)),
                 [("edumatrix-prod-connections-shared-pool",
                   "maxConnectionsPercent is 101: set it from the catalog's pools (AWS: 1-100; default 100 would "
                   "let the proxy take every connection)")], id="pool-above-100-percent"),
    *[pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(maxConnectionsPercent=most, maxIdleConnectionsPercent=idle)),
                   [], id=f"pool-{most}-percent-idle-{idle}-is-fine") for most, idle in ((1, 1), (100, 100), (23, 0))],
    pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(maxIdleConnectionsPercent=24)),
                 [("edumatrix-prod-connections-shared-pool",
                   "maxIdleConnectionsPercent 24 exceeds maxConnectionsPercent 23 (AWS refuses it)")],
                 id="pool-idle-above-most"),
    # rds-proxy-endpoint-read-write
    pytest.param(C.proxy_endpoint_read_write, _edit(C.PROXY_ENDPOINT, lambda p: p.pop("targetRole", None)), [],
                 id="endpoint-role-defaults-to-read-write"),
    pytest.param(C.proxy_endpoint_read_write, _edit(C.PROXY_ENDPOINT, lambda p: p.update(targetRole="READ_ONLY")),
                 [("edumatrix-prod-connections-students-platform",
                   "targetRole READ_ONLY works only for Aurora DB clusters; an RDS instance's proxy endpoints are "
                   "READ_WRITE (read-only clients use the replicas' reader name)")],
                 id="endpoint-read-only"),
    # rds-proxy-quotas-and-target: names the proxy, the target, or the stack
    pytest.param(C.proxy_quotas_and_target, _proxies(21),
                 [("edumatrix-db-test", "21 proxies: AWS allows 20 per account and Region")], id="quotas-21-proxies"),
    pytest.param(C.proxy_quotas_and_target, _proxies(20), [], id="quotas-20-proxies-are-fine"),
    pytest.param(C.proxy_quotas_and_target, _endpoints(21),
                 [("edumatrix-prod-connections-shared", "proxy edumatrix-prod-shared has 21 endpoints; AWS allows 20")],
                 id="quotas-21-endpoints"),
    pytest.param(C.proxy_quotas_and_target, _endpoints(20), [], id="quotas-20-endpoints-are-fine"),
    pytest.param(C.proxy_quotas_and_target, _endpoints(21, "undeclared"),
                 [("edumatrix-db-test", "proxy undeclared has 21 endpoints; AWS allows 20")],
                 id="quotas-21-endpoints-of-another-proxy"),
    pytest.param(C.proxy_quotas_and_target, _edit(C.PROXY, _auths(201)),
                 [("edumatrix-prod-connections-shared", "more than 200 secrets on one proxy")],
                 id="quotas-201-secrets"),
    pytest.param(C.proxy_quotas_and_target, _edit(C.PROXY, _auths(200)), [], id="quotas-200-secrets-are-fine"),
    pytest.param(C.proxy_quotas_and_target, _edit(C.PROXY_TARGET, lambda p: p.update(dbInstanceIdentifier="gone")),
                 [("edumatrix-prod-connections-shared-target", "proxy target 'gone' is not an instance of this stack")],
                 id="target-not-in-the-stack"),
    pytest.param(C.proxy_quotas_and_target, _edit(C.PROXY_TARGET, lambda p: p.update(
        dbInstanceIdentifier="edumatrix-prod-replica-1")),
                 [("edumatrix-prod-connections-shared-target",
                   "proxy target edumatrix-prod-replica-1 is a read replica; a proxy can only target the writer "
                   "instance")], id="target-a-replica"),
    pytest.param(C.proxy_quotas_and_target, _edit(C.PROXY_TARGET, lambda p: p.pop("dbInstanceIdentifier")),
                 [("edumatrix-prod-connections-shared-target", "proxy target '' is not an instance of this stack")],
                 id="target-naming-no-instance"),
    # rds-proxy-role-scoped: names the role policy
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                     "Resource": OTHER_SECRET}),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may read arn:aws:secretsmanager:us-east-1:123456789012:secret:other, which "
                   "are not its auth secrets")],
                 id="role-reads-another-secret-in-a-single-statement"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                     "Resource": OTHER_SECRET}, as_text=False),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may read arn:aws:secretsmanager:us-east-1:123456789012:secret:other, which "
                   "are not its auth secrets")],
                 id="role-policy-given-as-an-object"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "kms:Decrypt",
                                                     "Resource": KMS_KEY}),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may use KMS beyond its secrets' key through Secrets Manager (name the key and "
                   "condition on kms:ViaService)")], id="role-decrypts-without-condition"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
                                                     "Condition": {"StringEquals": {"kms:ViaService": "x"}}}),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may use KMS beyond its secrets' key through Secrets Manager (name the key and "
                   "condition on kms:ViaService)")],
                 id="role-decrypts-any-key-under-a-condition"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "*", "Resource": OTHER_SECRET}),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may read arn:aws:secretsmanager:us-east-1:123456789012:secret:other, which "
                   "are not its auth secrets")],
                 id="role-may-do-anything-to-another-secret"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                     "Resource": [OTHER_SECRET, OTHER_SECRET + "-2"]}),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may read arn:aws:secretsmanager:us-east-1:123456789012:secret:other, "
                   "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-2, which are not its auth secrets")],
                 id="role-reads-two-other-secrets"),
    pytest.param(C.proxy_role_scoped, _proxy_policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                                     "Resource": OTHER_SECRET}, by_id=True),
                 [("edumatrix-prod-connections-proxy-secrets",
                   "the proxy's role may read arn:aws:secretsmanager:us-east-1:123456789012:secret:other, which "
                   "are not its auth secrets")],
                 id="role-policy-naming-its-role-by-id"),
    pytest.param(C.proxy_role_scoped, lambda prod: [*prod.resources, resource(C.ROLE_POLICY, "orphan", {
        "role": "undeclared", "policy": "{}"})], [], id="role-policy-of-an-undeclared-role-is-not-the-proxys"),
    # alarm-actions-encrypted-topic: names the alarm, the topic or its key
    pytest.param(C.alarm_actions, _alarming(alarm=lambda p: p.update(name="lag", alarmActions=[])),
                 [("edumatrix-prod-replicas-lag-1", "alarm lag pages nobody (no alarmActions)")],
                 id="alarm-without-actions"),
    pytest.param(C.alarm_actions, _alarming(alarm=lambda p: p.update(alarmActions=[])),
                 [("edumatrix-prod-replicas-lag-1",
                   "alarm edumatrix-prod-replicas-lag-1 pages nobody (no alarmActions)")],
                 id="alarm-without-a-name-is-named-by-its-resource"),
    pytest.param(C.alarm_actions, _alarming(
        topic=lambda p: p.update(kmsMasterKeyId="alias/aws/sns"),
        alarm=lambda p: p.update(alarmActions=[EXTERNAL_TOPIC, *p["alarmActions"]])),
                 [("edumatrix-prod-alarms-topic",
                   "topic arn:aws:sns:us-east-1:123456789012:edumatrix-prod-alarms is not encrypted with a key of "
                   "this stack (alias/aws/sns cannot admit CloudWatch)")],
                 id="alarm-topic-unencrypted-after-an-external-topic"),
    pytest.param(C.alarm_actions, _alarming(key=lambda p: p.update(policy="{}")),
                 [("edumatrix-prod-alarms-key",
                   "the key of topic arn:aws:sns:us-east-1:123456789012:edumatrix-prod-alarms does not let "
                   "cloudwatch.amazonaws.com use it: alarms could not publish")],
                 id="alarm-topic-key-closed-to-cloudwatch"),
    # rds-event-subscriptions: names the stack
    pytest.param(C.event_subscriptions, _subscriptions(lambda p: p.update(eventCategories=["failure"])),
                 [("edumatrix-db-test",
                   "no enabled db-instance event subscription covers maintenance, configuration change (Security "
                   "Hub RDS.20)")],
                 id="subscriptions-instance-failures-only"),
    pytest.param(C.event_subscriptions, _subscriptions(lambda p: None, first=resource(
        C.EVENT_SUBSCRIPTION, "disabled", {"sourceType": "db-instance", "enabled": False})), [],
                 id="subscriptions-a-disabled-one-is-skipped"),
    pytest.param(C.event_subscriptions, _subscriptions(lambda p: p.pop("eventCategories")), [],
                 id="subscriptions-without-categories-cover-every-event"),
    pytest.param(C.event_subscriptions, lambda prod: [instance()],
                 [("edumatrix-db-test",
                   "no enabled db-instance event subscription covers maintenance, configuration change, failure "
                   "(Security Hub RDS.20)"),
                  ("edumatrix-db-test",
                   "no enabled db-parameter-group event subscription covers configuration change (Security Hub "
                   "RDS.21)")], id="subscriptions-none-for-a-primary"),
]


@pytest.mark.parametrize(("policy", "build", "expected"), CASES)
def test_the_connection_policy_names_the_resource_and_says_why(prod: Recording, policy: PackPolicy, build: Build,
                                                               expected: list[tuple[str, str]]) -> None:
    assert [(name, message) for _, name, message in reports(build(prod), [policy])] == expected


@pytest.mark.parametrize(("policy", "edit", "config", "expected"), [
    pytest.param(C.proxy_idle_timeout, _edit(C.PROXY, lambda p: p.update(idleClientTimeout=900)),
                 {"clientIdleSeconds": 900},
                 [("edumatrix-prod-connections-shared",
                   "idleClientTimeout is 900; it must exceed the clients' 900 s idle timeout (so clients close idle "
                   "connections first) and AWS allows at most 28800")], id="idle-timeout-against-the-clients-900-s"),
    pytest.param(C.proxy_pool, _edit(C.PROXY_POOL, _pool(connectionBorrowTimeout=30)), {"maxWaitSeconds": 10},
                 [("edumatrix-prod-connections-shared-pool",
                   "connectionBorrowTimeout is 30 (AWS default 120, 0 = wait forever); the spec waits at most 10 s")],
                 id="pool-wait-against-10-s"),
])
def test_the_proxy_policies_hold_the_configured_limits(prod: Recording, policy: PackPolicy, edit: Build,
                                                       config: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    found = reports(edit(prod), [policy], config={policy.name: config})
    assert [(name, message) for _, name, message in found] == expected
