"""The connection layer and alarms as AWS accepts them and the spec sizes them (RDS Proxy, proxy endpoints,
alarm actions, RDS event subscriptions). Each rule cites the AWS constraint it encodes; the thresholds are
the pack's own (see docs/policy-parity.md, "Why the pack writes its own thresholds").

AWS sources: RDS user guide "Quotas and limitations for RDS Proxy" (20 proxies per account and Region, 20
endpoints per proxy, 200 secrets per proxy, a proxy targets only the writer instance, not a read replica);
"Working with Amazon RDS Proxy endpoints" (READ_ONLY endpoints are for Aurora DB clusters); RDS API
`ConnectionPoolConfiguration` (ConnectionBorrowTimeout 0-3600 with 0 unlimited, MaxConnectionsPercent 1-100,
MaxIdleConnectionsPercent not above MaxConnectionsPercent); `CreateDBProxy` IdleClientTimeout (1-28,800 s);
CloudWatch alarm actions notify an SNS topic of the alarm's own Region; Security Hub RDS.20 / RDS.21 (event
subscriptions for critical instance and parameter-group events).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policy.base import (
    INSTANCE,
    PROXY,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    is_replica,
    of_type,
    setting,
)

PROXY_POOL = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
PROXY_ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"
PROXY_TARGET = "aws:rds/proxyTarget:ProxyTarget"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
EVENT_SUBSCRIPTION = "aws:rds/eventSubscription:EventSubscription"

SPEC_MAX_WAIT_SECONDS = 30  # spec 2.A pooling timeout "30 seconds max"
SPEC_CLIENT_IDLE_SECONDS = 600  # spec 2.A idleTimeout "10 minutes": the proxy must wait longer
AWS_MAX_IDLE_CLIENT_TIMEOUT = 28_800
MAX_PROXIES_PER_REGION = 20
MAX_ENDPOINTS_PER_PROXY = 20
MAX_SECRETS_PER_PROXY = 200
RDS20_CATEGORIES = ("maintenance", "configuration change", "failure")
RDS21_CATEGORIES = ("configuration change",)


# -- RDS Proxy -------------------------------------------------------------------------------------------------

def _proxy_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    auths = args.props.get("auths") or []
    if str(args.props.get("engineFamily")) != "POSTGRESQL":
        report(f"engineFamily is {args.props.get('engineFamily')!r}; the platform's proxies front PostgreSQL", None)
    if args.props.get("debugLogging") is True:
        report("debugLogging is on: the proxy would log the text of every statement", None)
    if not auths:
        report("no auth entries: the proxy has no login to the database", None)
    for auth in auths:
        if not isinstance(auth, Mapping):
            continue
        who = auth.get("description") or auth.get("secretArn")
        if auth.get("iamAuth") != "REQUIRED":
            report(f"auth {who}: iamAuth must be REQUIRED (clients authenticate with IAM tokens)", None)
        if auth.get("clientPasswordAuthType") != "POSTGRES_SCRAM_SHA_256":
            report(f"auth {who}: clientPasswordAuthType must be POSTGRES_SCRAM_SHA_256 (never POSTGRES_MD5)", None)
        if auth.get("authScheme", "SECRETS") != "SECRETS" or not auth.get("secretArn"):
            report(f"auth {who}: the proxy logs in with a Secrets Manager secret (authScheme SECRETS, secretArn)",
                   None)


proxy_authentication = TypedResourcePolicy(
    "rds-proxy-authentication",
    "RDS Proxy: PostgreSQL, IAM-authenticated clients, SCRAM-SHA-256 to the database through one secret per "
    "login, no statement logging.",
    types=[PROXY], validate=_proxy_auth, severity=Severity.HIGH, controls=["spec 4.A", "spec 5.B"],
    remediation="Declare the proxy through components/connection_layer.py (iam_auth REQUIRED, "
                "POSTGRES_SCRAM_SHA_256, auth_scheme SECRETS, debug_logging False).",
)


def _proxy_idle(args: ResourceValidationArgs, report: ReportViolation) -> None:
    idle = args.props.get("idleClientTimeout")
    floor = setting(args, "clientIdleSeconds", SPEC_CLIENT_IDLE_SECONDS)
    if not isinstance(idle, int | float) or not floor < idle <= AWS_MAX_IDLE_CLIENT_TIMEOUT:
        report(f"idleClientTimeout is {idle!r}; it must exceed the clients' {floor} s idle timeout (so clients "
               f"close idle connections first) and AWS allows at most {AWS_MAX_IDLE_CLIENT_TIMEOUT}", None)


proxy_idle_timeout = TypedResourcePolicy(
    "rds-proxy-idle-client-timeout",
    "RDS Proxy keeps idle clients longer than the services' 10-minute pool idle timeout (AWS: 1-28,800 s).",
    types=[PROXY], validate=_proxy_idle, severity=Severity.MEDIUM, controls=["spec 2.A"],
    config={"clientIdleSeconds": {"type": "integer", "default": SPEC_CLIENT_IDLE_SECONDS}},
    remediation="Set connections.proxyIdleClientTimeoutSeconds above connections.clientIdleTimeoutSeconds.",
)


def _proxy_pool(args: ResourceValidationArgs, report: ReportViolation) -> None:
    pool = args.props.get("connectionPoolConfig") or {}
    wait = pool.get("connectionBorrowTimeout")
    limit = setting(args, "maxWaitSeconds", SPEC_MAX_WAIT_SECONDS)
    if not isinstance(wait, int | float) or not 0 < wait <= limit:
        report(f"connectionBorrowTimeout is {wait!r} (AWS default 120, 0 = wait forever); the spec waits at most "
               f"{limit} s", None)
    most, idle = pool.get("maxConnectionsPercent"), pool.get("maxIdleConnectionsPercent")
    if not isinstance(most, int | float) or not 1 <= most <= 100:
        report(f"maxConnectionsPercent is {most!r}: set it from the catalog's pools (AWS: 1-100; default 100 "
               "would let the proxy take every connection)", None)
    elif isinstance(idle, int | float) and not 0 <= idle <= most:
        report(f"maxIdleConnectionsPercent {idle} exceeds maxConnectionsPercent {most} (AWS refuses it)", None)


proxy_pool = TypedResourcePolicy(
    "rds-proxy-pool",
    "RDS Proxy's pool: a client waits at most 30 s for a connection; the pool is sized (1-100 % of "
    "max_connections) and keeps no more idle connections than it may open.",
    types=[PROXY_POOL], validate=_proxy_pool, severity=Severity.HIGH, controls=["spec 2.A", "spec 8.B"],
    config={"maxWaitSeconds": {"type": "integer", "default": SPEC_MAX_WAIT_SECONDS}},
    remediation="Use config/connections.py proxy_pools (connections.borrowTimeoutSeconds at most 30).",
)


def _endpoint_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.props.get("targetRole", "READ_WRITE") != "READ_WRITE":
        report("targetRole READ_ONLY works only for Aurora DB clusters; an RDS instance's proxy endpoints are "
               "READ_WRITE (read-only clients use the replicas' reader name)", None)


proxy_endpoint_read_write = TypedResourcePolicy(
    "rds-proxy-endpoint-read-write",
    "RDS Proxy endpoints in front of an RDS instance are READ_WRITE (READ_ONLY endpoints are Aurora-only).",
    types=[PROXY_ENDPOINT], validate=_endpoint_role, severity=Severity.HIGH, controls=["spec 8.B"],
    remediation="Set target_role='READ_WRITE'; route read-only clients to reader.<zone>.",
)


def _proxy_quotas_and_target(args: StackValidationArgs, report: ReportViolation) -> None:
    proxies = of_type(args.resources, PROXY)
    if len(proxies) > MAX_PROXIES_PER_REGION:
        report(f"{len(proxies)} proxies: AWS allows {MAX_PROXIES_PER_REGION} per account and Region", None)
    names = {str(p.props.get("name")): p for p in proxies}
    endpoints = Counter(str(e.props.get("dbProxyName")) for e in of_type(args.resources, PROXY_ENDPOINT))
    for name, count in endpoints.items():
        if count > MAX_ENDPOINTS_PER_PROXY:
            report(f"proxy {name} has {count} endpoints; AWS allows {MAX_ENDPOINTS_PER_PROXY}",
                   names[name].urn if name in names else None)
    for proxy in proxies:
        if len(proxy.props.get("auths") or []) > MAX_SECRETS_PER_PROXY:
            report(f"more than {MAX_SECRETS_PER_PROXY} secrets on one proxy", proxy.urn)
    instances = {str(i.props.get("identifier")): i for i in of_type(args.resources, INSTANCE)}
    for target in of_type(args.resources, PROXY_TARGET):
        identifier = str(target.props.get("dbInstanceIdentifier") or "")
        instance = instances.get(identifier)
        if instance is None:
            report(f"proxy target {identifier!r} is not an instance of this stack", target.urn)
        elif is_replica(instance.props):
            report(f"proxy target {identifier} is a read replica; a proxy can only target the writer instance",
                   target.urn)


proxy_quotas_and_target = StackPolicy(
    "rds-proxy-quotas-and-target",
    "A stack stays within RDS Proxy's quotas (20 proxies per Region, 20 endpoints and 200 secrets per proxy) "
    "and points proxies only at a writer instance it declares.",
    types=[PROXY, PROXY_ENDPOINT, PROXY_TARGET, INSTANCE], validate=_proxy_quotas_and_target,
    severity=Severity.HIGH, controls=["spec 3.B"],
    remediation="Use connections.proxy: shared (one proxy); never target a replica.",
)


def _statements(policy: Any) -> list[Mapping[str, Any]]:
    try:
        document = json.loads(policy) if isinstance(policy, str) else policy
    except json.JSONDecodeError:
        return []
    statements = (document or {}).get("Statement") or []
    return [s for s in ([statements] if isinstance(statements, Mapping) else statements) if isinstance(s, Mapping)]


def _as_list(value: Any) -> list[str]:
    """A string or a list of them (the gate hands lists over wrapped, so anything iterable but a string)."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        return [str(value)]
    return [str(v) for v in value]


def _proxy_role_scoped(args: StackValidationArgs, report: ReportViolation) -> None:
    roles = {str(r.props.get("arn")): r for r in of_type(args.resources, ROLE)}
    policies: dict[str, list[Any]] = {}
    for policy in of_type(args.resources, ROLE_POLICY):
        role = next((r for r in roles.values() if r.props.get("id") == policy.props.get("role")
                     or r.props.get("name") == policy.props.get("role")), None)
        if role is not None:
            policies.setdefault(str(role.props.get("arn")), []).append(policy)
    for proxy in of_type(args.resources, PROXY):
        secrets = {str(a.get("secretArn")) for a in proxy.props.get("auths") or [] if isinstance(a, Mapping)}
        for policy in policies.get(str(proxy.props.get("roleArn")), []):
            for statement in _statements(policy.props.get("policy")):
                actions = _as_list(statement.get("Action"))
                resources = _as_list(statement.get("Resource"))
                if any(a in ("*", "secretsmanager:*") or a.startswith("secretsmanager:") for a in actions):
                    extra = sorted(set(resources) - secrets)
                    if extra:
                        report(f"the proxy's role may read {', '.join(extra)}, which are not its auth secrets",
                               policy.urn)
                if any(a.startswith("kms:") for a in actions) and ("*" in resources or not statement.get("Condition")):
                    report("the proxy's role may use KMS beyond its secrets' key through Secrets Manager "
                           "(name the key and condition on kms:ViaService)", policy.urn)


proxy_role_scoped = StackPolicy(
    "rds-proxy-role-scoped",
    "The role RDS Proxy assumes reads only the secrets of its auth entries and decrypts only with their key, "
    "through Secrets Manager.",
    types=[PROXY, ROLE, ROLE_POLICY], validate=_proxy_role_scoped, severity=Severity.HIGH,
    controls=["spec 4.A"],
    remediation="Let components/connection_layer.py write the role policy (proxy_role_policy).",
)


# -- alarms ------------------------------------------------------------------------------------------------------

def _alarm_actions(args: StackValidationArgs, report: ReportViolation) -> None:
    topics = {str(t.props.get("arn")): t for t in of_type(args.resources, TOPIC)}
    keys = {str(k.props.get("arn")): k for k in of_type(args.resources, KEY)}
    for alarm in of_type(args.resources, ALARM):
        actions = _as_list(alarm.props.get("alarmActions") or [])
        if not actions:
            report(f"alarm {alarm.props.get('name') or alarm.name} pages nobody (no alarmActions)", alarm.urn)
        # The topic's Region against the alarm's: aws-api-alarm-topic-region (policy/aws_api.py) checks it.
        for action in actions:
            topic = topics.get(action)
            if topic is None:
                continue  # an existing topic named in the stack file (alarmTopicArn): not ours to check
            key = keys.get(str(topic.props.get("kmsMasterKeyId")))
            if key is None:
                report(f"topic {action} is not encrypted with a key of this stack (alias/aws/sns cannot admit "
                       "CloudWatch)", topic.urn)
            elif "cloudwatch.amazonaws.com" not in str(key.props.get("policy")):
                report(f"the key of topic {action} does not let cloudwatch.amazonaws.com use it: alarms could not "
                       "publish", key.urn)


alarm_actions = StackPolicy(
    "alarm-actions-encrypted-topic",
    "Every alarm pages someone: an SNS topic encrypted with a CMK CloudWatch may use (its Region: "
    "aws-api-alarm-topic-region).",
    types=[ALARM, TOPIC, KEY], validate=_alarm_actions, severity=Severity.HIGH, controls=["spec 4.B"],
    remediation="Page the stack's AlarmTopic (components/alarm_topic.py).",
)


def _event_subscriptions(args: StackValidationArgs, report: ReportViolation) -> None:
    primaries = [i for i in of_type(args.resources, INSTANCE) if not is_replica(i.props)]
    if not primaries:
        return
    covered: dict[str, set[str]] = {}
    for subscription in of_type(args.resources, EVENT_SUBSCRIPTION):
        if subscription.props.get("enabled") is False:
            continue
        categories = set(_as_list(subscription.props.get("eventCategories") or [])) or {"*"}
        covered.setdefault(str(subscription.props.get("sourceType")), set()).update(categories)
    for source, wanted, control in (("db-instance", RDS20_CATEGORIES, "RDS.20"),
                                    ("db-parameter-group", RDS21_CATEGORIES, "RDS.21")):
        have = covered.get(source, set())
        missing = [c for c in wanted if c not in have and "*" not in have]
        if missing:
            report(f"no enabled {source} event subscription covers {', '.join(missing)} (Security Hub {control})",
                   None)


event_subscriptions = StackPolicy(
    "rds-event-subscriptions",
    "RDS event subscriptions cover critical instance events (maintenance, configuration change, failure) and "
    "parameter group configuration changes.",
    types=[INSTANCE, EVENT_SUBSCRIPTION], validate=_event_subscriptions, severity=Severity.MEDIUM,
    controls=["RDS.20", "RDS.21"],
    remediation="Keep alarms.eventSubscriptions true (components/database_alarms.py).",
)

POLICIES: list[PackPolicy] = [
    proxy_authentication, proxy_idle_timeout, proxy_pool, proxy_endpoint_read_write, proxy_quotas_and_target,
    proxy_role_scoped, alarm_actions, event_subscriptions,
]
