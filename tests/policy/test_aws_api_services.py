"""policy/aws_api_services.py: the AWS preflight of the resources around the instance. Every AWS stack's plan
passes it; each mistake, one edit of the prod plan away, is reported by its policy with AWS's reason."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner, Recording
from policy import aws_api_services as svc
from tests.policy.fixtures import messages_after_edit, run

Edit = Callable[[dict[str, Any]], None]
AWS_STACKS = [s for s in available_stacks() if s != "local"]


def messages_after(prod: Recording, type_token: str, edit: Edit) -> dict[str, list[str]]:
    """The service preflight over prod's resources with the first resource of `type_token` edited."""
    return messages_after_edit(prod.resources, type_token, edit, svc.POLICIES)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_aws_stack_passes_the_service_preflight(planner: Planner, stack: str) -> None:
    recording = planner.plan(stack)
    assert [(v.policy, v.message) for v in run(recording.resources, policies=svc.POLICIES,
                                                region=recording.settings.aws_region)] == []


def _in_json(key: str, edit: Callable[[dict[str, Any]], None]) -> Edit:
    """An edit of the JSON document held as text in props[key] (a policy, a dashboard body, a secret value)."""
    def apply(props: dict[str, Any]) -> None:
        document = json.loads(props[key])
        edit(document)
        props[key] = json.dumps(document)
    return apply


def _parameter(name: str, value: str) -> Edit:
    """An edit of a parameter group: parameter `name` set to `value`."""
    def apply(props: dict[str, Any]) -> None:
        for parameter in props["parameters"]:
            if parameter["name"] == name:
                parameter["value"] = value
    return apply


# (type, edit of prod's compliant resource, the policy that must report it, a piece of its message)
BROKEN: list[tuple[str, Edit, str, str]] = [
    (svc.KMS_ALIAS, lambda p: p.update(name="edumatrix-prod-secrets"), "aws-api-kms-alias-name",
     "KMS takes \"alias/\""),
    (svc.KMS_ALIAS, lambda p: p.update(name="alias/aws/rds"), "aws-api-kms-alias-name", "reserved for AWS managed"),
    (svc.KMS_ALIAS, lambda p: p.update(targetKeyId="arn:aws:kms:ap-south-1:123456789012:key/k"),
     "aws-api-kms-alias-name", "must be in the same Region"),
    (svc.KMS_ALIAS, lambda p: p.update(name="alias/edumatrix-prod-data", region="us-east-1"),
     "aws-api-kms-alias-unique", "alias/edumatrix-prod-data is declared twice in us-east-1"),
    (svc.EVENT_TARGET, lambda p: p.update(input='{"job": "ping"}'), "aws-api-event-target-input",
     "input and inputTransformer are mutually exclusive"),
    (svc.EVENT_TARGET, lambda p: p["inputTransformer"].update(inputTemplate='{"id": <eventId>}'),
     "aws-api-event-target-input", "uses eventId, defined neither in inputPaths"),
    (svc.EVENT_TARGET, lambda p: p.update(arn="arn:aws:lambda:us-east-1:123456789012:function:other"),
     "aws-api-event-target-lambda-permission", "invokes Lambda function other, but no lambda Permission"),
    (svc.LAMBDA_PERMISSION, lambda p: p.update(sourceArn="arn:aws:cloudwatch:us-east-1:123456789012:rule-x"),
     "aws-api-lambda-permission-source", "is not an EventBridge rule ARN"),
    (svc.LAMBDA_PERMISSION, lambda p: p.update(sourceArn="arn:aws:cloudwatch:us-east-1:123456789012:rule-x"),
     "aws-api-event-target-lambda-permission", "from rule arn:aws:events:us-east-1:123456789012:rule/"),
    (svc.LAMBDA_PERMISSION, lambda p: p.pop("sourceArn"), "aws-api-lambda-permission-source", "confused deputy"),
    (svc.LAMBDA_PERMISSION, lambda p: p.update(action="InvokeFunction"), "aws-api-lambda-permission-source",
     "takes lambda:<Action>"),
    (svc.ZONE, lambda p: p.pop("vpcs"), "aws-api-route53-zone", "a top-level domain nobody delegates"),
    (svc.ZONE, lambda p: p.update(delegationSetId="N1"), "aws-api-route53-zone", "only be used for public zones"),
    (svc.RECORD, lambda p: p.pop("ttl"), "aws-api-route53-record", "needs ttl and records"),
    (svc.RECORD, lambda p: p.update(aliases=[{"name": "x", "zoneId": "Z", "evaluateTargetHealth": False}]),
     "aws-api-route53-record", "Conflicts with ttl & records"),
    (svc.RECORD, lambda p: p.update(records=["a.example.com", "b.example.com"]), "aws-api-route53-record",
     "a CNAME has exactly one value, not 2"),
    (svc.RECORD, lambda p: p.update(weightedRoutingPolicies=[{"weight": 1}]), "aws-api-route53-record",
     "needs setIdentifier"),
    (svc.RECORD, lambda p: p.update(name="primary.db.other.internal"), "aws-api-route53-record-zone",
     "is not permitted in zone prod.db.edumatrix.internal"),
    (svc.RECORD, lambda p: p.update(name="prod.db.edumatrix.internal"), "aws-api-route53-record-zone",
     "is not permitted at apex"),
    (svc.RECORD, lambda p: p.update(name="feedback.prod.db.edumatrix.internal"), "aws-api-route53-record-zone",
     "CNAME feedback.prod.db.edumatrix.internal is declared twice"),
    (svc.DASHBOARD, lambda p: p.update(dashboardName="edumatrix/prod"), "aws-api-dashboard", "valid characters"),
    (svc.DASHBOARD, _in_json("dashboardBody", lambda b: b["widgets"][0].update(width=25)), "aws-api-dashboard",
     "widget 0: width 25 is outside 1-24"),
    (svc.DASHBOARD, _in_json("dashboardBody", lambda b: b["widgets"][0]["properties"].pop("region")),
     "aws-api-dashboard", "a metric widget needs properties.region"),
    (svc.DASHBOARD, lambda p: p.update(dashboardBody="widgets: []"), "aws-api-dashboard", "not a JSON object"),
    (svc.METRIC_FILTER, lambda p: p["metricTransformation"].update(dimensions={"User": "$user"}, defaultValue="0"),
     "aws-api-metric-filter", "dimensions and defaultValue"),
    (svc.METRIC_FILTER, lambda p: p["metricTransformation"].update(unit="Logins"), "aws-api-metric-filter",
     "not a CloudWatch StandardUnit"),
    (svc.METRIC_FILTER, lambda p: p.update(name="failed:logins"), "aws-api-metric-filter", "without ':' or '*'"),
    (svc.METRIC_FILTER, lambda p: p.update(logGroupName="/aws/rds/instance/edumatrix-prod/audit"),
     "aws-api-metric-filter-log-group", "is not declared in this stack"),
    (svc.SECRET_VERSION, lambda p: p.update(secretBinary="eA=="), "aws-api-secret-version", "exactly one of"),
    (svc.SECRET_VERSION, lambda p: p.update(secretString="x" * 65537), "aws-api-secret-version",
     "at most 65536"),
    (svc.SECRET_VERSION, lambda p: p.update(secretId="arn:aws:secretsmanager:us-east-1:123456789012:secret:other"),
     "aws-api-rotated-secret-value", "is rotated but has no value in this stack"),
    (svc.SECRET_VERSION, _in_json("secretString", lambda v: v.pop("host")), "aws-api-rotated-secret-value",
     "lacks host"),
    (svc.SAR_STACK, lambda p: p.update(capabilities=["CAPABILITY_IAM"]), "aws-api-rotation-application",
     "lack CAPABILITY_RESOURCE_POLICY"),
    (svc.SAR_STACK, lambda p: p["parameters"].pop("vpcSecurityGroupIds"), "aws-api-rotation-application",
     "vpcSubnetIds and vpcSecurityGroupIds go together"),
    (svc.SAR_STACK, lambda p: p.pop("semanticVersion"), "aws-api-rotation-application", "not pinned"),
    (svc.TOPIC_POLICY, _in_json("policy", lambda d: d["Statement"][0].update(Action="sqs:SendMessage")),
     "aws-api-sns-topic-policy", "out of service scope"),
    (svc.TOPIC_POLICY, _in_json("policy", lambda d: d["Statement"][1].update(
        Resource="arn:aws:sns:us-east-1:123456789012:other")), "aws-api-sns-topic-policy",
     "statement 1 names arn:aws:sns:us-east-1:123456789012:other, not this topic"),
    (svc.TOPIC_POLICY, lambda p: p.update(region="eu-west-1"), "aws-api-sns-topic-policy", "Topic does not exist"),
    (svc.SUBSCRIPTION, lambda p: p.update(protocol="slack"), "aws-api-sns-subscription", "SNS Subscribe takes"),
    (svc.SUBSCRIPTION, lambda p: p.update(endpoint="https://hooks.example.com/x"), "aws-api-sns-subscription",
     "is not a email endpoint"),
    (svc.SUBSCRIPTION, lambda p: p.update(region="eu-west-1"), "aws-api-sns-subscription",
     "Subscribe is called in the topic's Region"),
    (svc.PG_EXTENSION, lambda p: p.update(name="timescaledb"), "aws-api-pg-extension-supported",
     "timescaledb is not an extension RDS for PostgreSQL 15 offers"),
    (svc.PARAMETER_GROUP, _parameter("shared_preload_libraries", "pg_stat_statements,pgaudit"),
     "aws-api-pg-extension-preload", "pg_cron is not in shared_preload_libraries"),
    (svc.PARAMETER_GROUP, _parameter("cron.database_name", "postgres"),
     "aws-api-pg-extension-preload", "can only create extension in database postgres"),
]


@pytest.mark.parametrize(("type_token", "edit", "policy", "message"), BROKEN,
                         ids=[f"{b[2]}-{i}" for i, b in enumerate(BROKEN)])
def test_a_broken_resource_of_the_prod_plan_is_reported_by_its_policy(prod: Recording, type_token: str, edit: Edit,
                                                                      policy: str, message: str) -> None:
    found = messages_after(prod, type_token, edit)
    assert policy in found, found
    assert any(message in m for m in found[policy]), found[policy]


def test_every_service_preflight_policy_is_broken_at_least_once_on_the_prod_plan() -> None:
    assert {policy for _, _, policy, _ in BROKEN} == {p.name for p in svc.POLICIES}


def test_a_rotation_that_does_not_wait_for_its_secret_value_is_reported(prod: Recording) -> None:
    first = next(r for r in prod.resources if r.type == svc.SECRET_ROTATION)
    resources = [dataclasses.replace(r, dependencies=()) if r is first else r for r in prod.resources]
    found = [v.message for v in run(resources, policies=svc.POLICIES) if v.policy == "aws-api-rotated-secret-value"]
    assert len(found) == 1, found
    assert "does not wait for its value" in found[0]


def test_a_topic_policy_statement_on_a_wildcard_that_covers_the_topic_is_accepted(prod: Recording) -> None:
    found = messages_after(prod, svc.TOPIC_POLICY, _in_json("policy", lambda d: d["Statement"][0].update(
        Resource="arn:aws:sns:us-east-1:123456789012:edumatrix-prod-*")))
    assert "aws-api-sns-topic-policy" not in found


def test_the_extension_list_refuses_what_rds_15_dropped_and_keeps_what_the_platform_uses() -> None:
    from config.rds_extensions import supported_extensions

    offered = supported_extensions("15")
    assert offered is not None
    assert {"pgcrypto", "pgaudit", "pg_cron", "pg_stat_statements", "pgstattuple"} <= offered
    assert "plcoffee" not in offered


def test_an_engine_without_a_checked_in_extension_list_is_reported_not_passed(prod: Recording) -> None:
    def postgres17(props: dict[str, Any]) -> None:
        props["engineVersion"] = "17.2"

    found = messages_after(prod, svc.INSTANCE, postgres17)
    assert any("no list of RDS for PostgreSQL 17 extensions" in m for m in found["aws-api-pg-extension-supported"])
