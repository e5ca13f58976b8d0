"""policy/events.py, every violation of the stack-wide event policies (connector roles, the connectors' AWS API
routes, the plugin bucket, the alarms) as a user reads it in CI: one row per way to break the prod plan, with the
resource each violation names and its whole message (tests/policy/test_events_messages.py does the same for the
per-resource policies)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from edumatrix_db.offline.engine import RecordedResource, Recording
from policy import events
from policy.base import INSTANCE, PackPolicy
from tests.policy.reports import reports, rows

E = events
Change = Callable[[list[RecordedResource]], list[RecordedResource]]
Props = dict[str, Any]

CONNECTOR = "edumatrix-prod-events-students-platform"  # the first connector of the prod plan
NEXT_CONNECTOR = "edumatrix-prod-events-edu-matrix-hub"
ROLE_POLICY = "edumatrix-prod-events-students-platform-policy"
ENDPOINT_RULE = "edumatrix-prod-events-endpoints-from-connectors"  # HTTPS into both connector endpoints
BUCKET = "edumatrix-prod-events-plugins"
VERSIONING = "edumatrix-prod-events-plugins-versioning"
BUCKET_NAME = "edumatrix-prod-events-plugins-19ecfdf5"  # what its companions name it by
FOREIGN_TOPIC = "arn:aws:msk:us-east-1:123456789012:edumatrix-prod-events-cluster:topic//edumatrix.feedback.feedback"
SSE = "edumatrix-prod-events-plugins-sse"
TLS_ONLY = "edumatrix-prod-events-plugins-tls-only"
LAG_ALARM = "edumatrix-prod-events-consumer-lag"
SLOT_LAG_ALARM = "edumatrix-prod-alarms-db-replication-slot-lag"
NO_LAG_ALARM = "no consumer-lag alarm (EstimatedMaxTimeLag / SumOffsetLag / MaxOffsetLag) pages anyone"
COMPANIONS = (E.BUCKET_SSE, E.BUCKET_VERSIONING, E.BUCKET_PAB, E.BUCKET_POLICY)


def _edit(name: str, edit: Callable[[Props], Any], type_token: str | None = None) -> Change:
    """The resource called `name` (of `type_token`, when names collide) with its props changed by `edit`."""
    def change(resources: list[RecordedResource]) -> list[RecordedResource]:
        out = []
        for res in resources:
            if res.name == name and type_token in (None, res.type):
                props = json.loads(json.dumps(res.props))
                edit(props)
                res = dataclasses.replace(res, props=props, inputs=props)
            out.append(res)
        return out
    return change


def _connector(name: str, edit: Callable[[Props], Any]) -> Change:
    """The connector called `name` changed by `edit` (each service's events component has the same name)."""
    return _edit(name, edit, E.CONNECTOR)


def _edit_each(type_token: str, which: Callable[[Props], bool], edit: Callable[[Props], Any]) -> Change:
    def change(resources: list[RecordedResource]) -> list[RecordedResource]:
        names = [r.name for r in resources if r.type == type_token and which(r.props)]
        for name in names:
            resources = _edit(name, edit, type_token)(resources)
        return resources
    return change


def _copied(name: str, new_name: str, edit: Callable[[Props], Any], *, first: bool = False) -> Change:
    """The stack with a copy of resource `name` called `new_name` (its props changed by `edit`) added, last of all
    or first of its type."""
    def change(resources: list[RecordedResource]) -> list[RecordedResource]:
        original = next(r for r in resources if r.name == name)
        props = json.loads(json.dumps(original.props))
        edit(props)
        copy = dataclasses.replace(original, name=new_name, urn=original.urn.rsplit("::", 1)[0] + "::" + new_name,
                                   props=props, inputs=props)
        if not first:
            return [*resources, copy]
        at = next(i for i, r in enumerate(resources) if r.type == original.type)
        return [*resources[:at], copy, *resources[at:]]
    return change


def _dropped(*type_tokens: str) -> Change:
    return lambda resources: [r for r in resources if r.type not in type_tokens]


def _without(name: str) -> Change:
    return lambda resources: [r for r in resources if r.name != name]


def _config(**changes: Any) -> Callable[[Props], Any]:
    return lambda p: p["connectorConfiguration"].update(changes)


def _statement(**statement: Any) -> Callable[[Props], Any]:
    """The role policy with one more statement."""
    def edit(props: Props) -> None:
        document = json.loads(props["policy"])
        document["Statement"].append({"Effect": "Allow", **statement})
        props["policy"] = json.dumps(document)
    return edit


WIDENED = _statement(Action=["kafka-cluster:WriteData"], Resource=[FOREIGN_TOPIC])


def _versioning(status: str) -> Callable[[Props], Any]:
    return lambda p: p["versioningConfiguration"].update(status=status)


def _named(bucket: str) -> Callable[[Props], Any]:
    return lambda p: p.update(bucket=bucket)


def _sse_default(**changes: Any) -> Callable[[Props], Any]:
    return lambda p: p["rules"][0]["applyServerSideEncryptionByDefault"].update(changes)


def _lag_metric(metric: str) -> Callable[[Props], Any]:
    """The consumer-lag alarm on one metric instead of its metric-insights query."""
    def edit(props: Props) -> None:
        props.pop("metricQueries")
        props["metricName"] = metric
    return edit


def _lag_query(metric: str) -> Callable[[Props], Any]:
    """The consumer-lag alarm's query on another MSK lag metric."""
    return lambda p: p["metricQueries"][0].update(
        expression=p["metricQueries"][0]["expression"].replace("EstimatedMaxTimeLag", metric))


def _failed_tasks_alarm(props: Props) -> bool:
    return bool(props.get("metricName") == "ErroredTaskCount"
                and props["dimensions"]["ConnectorName"] == "edumatrix-prod-students-platform-outbox")


def _may_write(what: str, service: str = "students_platform") -> str:
    return (f"{service}'s connector role may write {what}: only its own topics (edumatrix.{service}.*), its heartbeats "
            "and MSK Connect's internal ones")


def _not_cmk(bucket: str) -> str:
    return f"bucket {bucket}: not encrypted with the platform CMK (SSE-KMS)"


def _no_tls_policy(bucket: str) -> str:
    return f"bucket {bucket}: no policy denies requests without TLS (Security Hub S3.5)"


def _versioning_off(bucket: str) -> str:
    return f"bucket {bucket}: versioning is not enabled (a replaced plugin zip must stay recoverable)"


# (id, policy, the changes to the prod plan, (resource named, message) of each violation of the policy)
CASES = rows(
    # events-connector-role-scoped
    ("role-not-declared", E.connector_role_scoped,
     [_connector(CONNECTOR, lambda p: p.update(serviceExecutionRoleArn="arn:aws:iam::123456789012:role/elsewhere"))],
     [(CONNECTOR, "students_platform's connector runs with a role this stack does not declare")]),
    ("a-later-connector-is-checked-after-an-undeclared-role", E.connector_role_scoped,
     [_connector(CONNECTOR, lambda p: p.update(serviceExecutionRoleArn="arn:aws:iam::123456789012:role/elsewhere")),
      _edit("edumatrix-prod-events-edu-matrix-hub-policy", WIDENED)],
     [(CONNECTOR, "students_platform's connector runs with a role this stack does not declare"),
      ("edumatrix-prod-events-edu-matrix-hub-policy", _may_write(FOREIGN_TOPIC, "edu_matrix_hub"))]),
    ("a-later-connector-is-checked-after-a-connector-of-no-service", E.connector_role_scoped,
     [_connector(CONNECTOR, _config(**{"publication.name": "dbz_publication"})),
      _edit("edumatrix-prod-events-edu-matrix-hub-policy", WIDENED)],
     [("edumatrix-prod-events-edu-matrix-hub-policy", _may_write(FOREIGN_TOPIC, "edu_matrix_hub"))]),
    ("role-arn-unknown-in-a-preview-matches-the-role-of-unknown-arn", E.connector_role_scoped,
     [_connector(CONNECTOR, lambda p: p.pop("serviceExecutionRoleArn")),
      _edit("edumatrix-prod-events-students-platform-role", lambda p: p.pop("arn"))], []),
    ("role-without-policy", E.connector_role_scoped, [_edit(ROLE_POLICY, lambda p: p.update(role="someone-else"))],
     [(CONNECTOR, "students_platform's connector role has no policy: it cannot reach its topics")]),
    ("policy-naming-its-role-by-arn", E.connector_role_scoped,
     [_edit(ROLE_POLICY, lambda p: p.update(
         role="arn:aws:iam::123456789012:role/edumatrix-prod-events-students-platform-role-f7cc818")),
      _edit(ROLE_POLICY, WIDENED)],
     [(ROLE_POLICY, _may_write(FOREIGN_TOPIC))]),
    ("another-service-topic", E.connector_role_scoped, [_edit(ROLE_POLICY, WIDENED)],
     [(ROLE_POLICY, _may_write(FOREIGN_TOPIC))]),
    ("one-action-written-as-a-string", E.connector_role_scoped,
     [_edit(ROLE_POLICY, _statement(Action="kafka-cluster:WriteData", Resource=FOREIGN_TOPIC))],
     [(ROLE_POLICY, _may_write(FOREIGN_TOPIC))]),
    ("every-kafka-action", E.connector_role_scoped,
     [_edit(ROLE_POLICY, _statement(Action=["kafka-cluster:*"], Resource=[FOREIGN_TOPIC]))],
     [(ROLE_POLICY, _may_write(FOREIGN_TOPIC))]),
    ("every-action", E.connector_role_scoped,
     [_edit(ROLE_POLICY, _statement(Action=["*"], Resource=[FOREIGN_TOPIC]))],
     [(ROLE_POLICY, _may_write(FOREIGN_TOPIC))]),
    ("every-resource", E.connector_role_scoped,
     [_edit(ROLE_POLICY, _statement(Action=["kafka-cluster:WriteData"], Resource="*"))],
     [(ROLE_POLICY, _may_write("*"))]),
    ("policy-without-statements-grants-nothing", E.connector_role_scoped,
     [_edit(ROLE_POLICY, lambda p: p.update(policy=json.dumps({"Version": "2012-10-17"})))], []),
    ("policy-document-unknown-in-a-preview", E.connector_role_scoped,
     [_edit(ROLE_POLICY, lambda p: p.update(policy=""))], []),
    # events-connector-aws-apis
    ("no-glue-endpoint", E.connector_aws_apis,
     [_edit("edumatrix-prod-events-glue-endpoint", lambda p: p.update(serviceName="com.amazonaws.us-east-1.sts"))],
     [(CONNECTOR, "the CDC connectors call glue from their subnets (the converter looks up each value's schema "
                  "version) and the stack declares no interface endpoint for it: without a NAT route the task fails")]),
    ("endpoint-with-private-dns", E.connector_aws_apis,
     [_edit("edumatrix-prod-events-glue-endpoint", lambda p: p.update(privateDnsEnabled=True))],
     [("edumatrix-prod-events-glue-endpoint",
       "the glue endpoint has private DNS on: every workload of the VPC would resolve glue to it, and AWS allows "
       "one such endpoint per service and VPC")]),
    ("endpoint-without-policy", E.connector_aws_apis,
     [_edit("edumatrix-prod-events-glue-endpoint", lambda p: p.pop("policy"))],
     [("edumatrix-prod-events-glue-endpoint",
       "the glue endpoint has no policy naming the connectors' roles: any principal in the VPC could use it")]),
    ("endpoint-policy-without-statements-admits-no-one", E.connector_aws_apis,
     [_edit("edumatrix-prod-events-glue-endpoint", lambda p: p.update(policy="{}"))], []),
    ("endpoint-group-open-on-another-port", E.connector_aws_apis,
     [_edit(ENDPOINT_RULE, lambda p: p.update(fromPort=80, toPort=80))],
     [(ENDPOINT_RULE, f"the {s} endpoint's security group admits port 80: only HTTPS from the connectors' group")
      for s in ("secretsmanager", "glue")]),
    ("endpoint-group-open-to-an-ipv6-range", E.connector_aws_apis,
     [_edit(ENDPOINT_RULE, lambda p: p.update(cidrIpv6="::/0"))],
     [(ENDPOINT_RULE, f"the {s} endpoint's security group admits ::/0: only HTTPS from the connectors' group")
      for s in ("secretsmanager", "glue")]),
    ("worker-without-the-secrets-manager-endpoint", E.connector_aws_apis,
     [_edit("edumatrix-prod-events-worker", lambda p: p.update(propertiesFileContent="\n".join(
         line for line in p["propertiesFileContent"].splitlines() if ".param.endpoint=" not in line)))],
     [(CONNECTOR, "the worker configuration's config provider does not name the Secrets Manager endpoint "
                  "(config.providers.secretsmanager.param.endpoint): with private DNS off it would call the public "
                  "name")]),
    ("converter-without-the-glue-endpoint", E.connector_aws_apis,
     [_connector(NEXT_CONNECTOR, lambda p: p["connectorConfiguration"].pop("value.converter.endpoint"))],
     [(NEXT_CONNECTOR, "connector edumatrix-prod-edu-matrix-hub-outbox: the Glue converter does not name the Glue "
                       "endpoint (value.converter.endpoint)")]),
    # events-plugin-bucket
    ("bucket-name-unknown-in-a-preview", E.plugin_bucket,
     [_edit(VERSIONING, _versioning("Suspended"))], [(BUCKET, _versioning_off(BUCKET))]),
    ("bucket-named-by-its-bucket", E.plugin_bucket,
     [_edit(BUCKET, _named(BUCKET_NAME)), _edit(VERSIONING, _versioning("Suspended"))],
     [(BUCKET, _versioning_off(BUCKET_NAME))]),
    ("bucket-named-by-its-id", E.plugin_bucket,
     [_edit(BUCKET, lambda p: p.update(id=BUCKET_NAME)),
      _edit(VERSIONING, _versioning("Suspended"))],
     [(BUCKET, _versioning_off(BUCKET_NAME))]),
    ("two-buckets-each-with-its-companions", E.plugin_bucket,
     [_edit(BUCKET, _named(BUCKET_NAME)), _copied(BUCKET, "other", _named("other-bucket")),
      *[_copied(name, f"other-{name}", _named("other-bucket")) for name in (
          "edumatrix-prod-events-plugins-sse", "edumatrix-prod-events-plugins-private",
          "edumatrix-prod-events-plugins-tls-only")],
      _copied(VERSIONING, "other-versioning",
              lambda p: p.update(bucket="other-bucket", versioningConfiguration={"status": "Suspended"}))],
     [("other", _versioning_off("other-bucket"))]),
    ("a-companion-of-another-bucket-does-not-count", E.plugin_bucket,
     [_edit(BUCKET, _named(BUCKET_NAME)),
      _copied(VERSIONING, "stray-versioning",
              lambda p: p.update(bucket="someone-elses-bucket", versioningConfiguration={"status": "Suspended"}),
              first=True)], []),
    ("bucket-without-companions", E.plugin_bucket, [_dropped(*COMPANIONS)],
     [(BUCKET, _not_cmk(BUCKET)), (BUCKET, _versioning_off(BUCKET)),
      (BUCKET, f"bucket {BUCKET}: public access is not blocked on all four settings (Security Hub S3.8)"),
      (BUCKET, _no_tls_policy(BUCKET))]),
    ("sse-under-the-aws-managed-key", E.plugin_bucket, [_edit(SSE, _sse_default(kmsMasterKeyId="alias/aws/s3"))],
     [(BUCKET, _not_cmk(BUCKET))]),
    ("sse-kms-naming-no-key", E.plugin_bucket, [_edit(SSE, lambda p: p["rules"][0][
        "applyServerSideEncryptionByDefault"].pop("kmsMasterKeyId"))], [(BUCKET, _not_cmk(BUCKET))]),
    ("sse-s3-instead-of-kms", E.plugin_bucket, [_edit(SSE, _sse_default(sseAlgorithm="AES256"))],
     [(BUCKET, _not_cmk(BUCKET))]),
    ("sse-without-rules", E.plugin_bucket, [_edit(SSE, lambda p: p.update(rules=[]))], [(BUCKET, _not_cmk(BUCKET))]),
    ("sse-rule-without-a-default", E.plugin_bucket,
     [_edit(SSE, lambda p: p.update(rules=[{"bucketKeyEnabled": True}]))], [(BUCKET, _not_cmk(BUCKET))]),
    ("tls-statement-allowing-instead-of-denying", E.plugin_bucket,
     [_edit(TLS_ONLY, lambda p: p.update(policy=p["policy"].replace('"Deny"', '"Allow"')))],
     [(BUCKET, _no_tls_policy(BUCKET))]),
    ("tls-statement-denying-something-else", E.plugin_bucket,
     [_edit(TLS_ONLY, lambda p: p.update(policy=p["policy"].replace('"aws:SecureTransport"', '"aws:ViaAWSService"')))],
     [(BUCKET, _no_tls_policy(BUCKET))]),
    # events-alarms
    ("failed-tasks-alarm-with-actions-disabled", E.events_alarms,
     [_edit_each(E.ALARM, _failed_tasks_alarm, lambda p: p.update(actionsEnabled=False))],
     [(CONNECTOR, "connector edumatrix-prod-students-platform-outbox: no ErroredTaskCount alarm pages anyone (a "
                  "failed task stops its service's events and its slot holds WAL)")]),
    ("alarms-with-actions-enabled-explicitly", E.events_alarms,
     [_edit_each(E.ALARM, lambda p: True, lambda p: p.update(actionsEnabled=True))], []),
    ("no-consumer-lag-alarm", E.events_alarms, [_without(LAG_ALARM)], [(CONNECTOR, NO_LAG_ALARM)]),
    ("consumer-lag-alarm-paging-no-one", E.events_alarms, [_edit(LAG_ALARM, lambda p: p.update(alarmActions=[]))],
     [(CONNECTOR, NO_LAG_ALARM)]),
    ("consumer-lag-query-on-the-summed-offset-lag", E.events_alarms, [_edit(LAG_ALARM, _lag_query("SumOffsetLag"))],
     []),
    ("consumer-lag-query-on-another-metric", E.events_alarms, [_edit(LAG_ALARM, _lag_query("BytesInPerSec"))],
     [(CONNECTOR, NO_LAG_ALARM)]),
    ("consumer-lag-alarm-on-the-max-offset-lag-metric", E.events_alarms,
     [_edit(LAG_ALARM, _lag_metric("MaxOffsetLag"))], []),
    ("consumer-lag-alarm-on-the-estimated-time-lag-metric", E.events_alarms,
     [_edit(LAG_ALARM, _lag_metric("EstimatedMaxTimeLag"))], []),
    ("consumer-lag-alarm-on-another-metric", E.events_alarms, [_edit(LAG_ALARM, _lag_metric("BytesInPerSec"))],
     [(CONNECTOR, NO_LAG_ALARM)]),
    ("no-slot-lag-alarm", E.events_alarms, [_without(SLOT_LAG_ALARM)],
     [(CONNECTOR, "the instance has outbox slots but no OldestReplicationSlotLag alarm pages anyone (a stuck slot "
                  "holds WAL until the disk is full)")]),
    ("no-slot-lag-alarm-where-no-instance-is-declared", E.events_alarms,
     [_without(SLOT_LAG_ALARM), _dropped(INSTANCE)], []),
)


@pytest.mark.parametrize(("policy", "changes", "expected"), CASES)
def test_the_stack_wide_event_policy_names_the_resource_and_says_why_in_full(
        prod: Recording, policy: PackPolicy, changes: list[Change], expected: list[tuple[str, str]]) -> None:
    resources = list(prod.resources)
    for change in changes:
        resources = change(resources)
    assert reports(policy, resources) == expected
