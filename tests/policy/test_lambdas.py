"""policy/lambdas.py: the ops runner's function, its roles and its schedule, as the component declares them,
pass; each broken variant is reported by the policy that owns the rule, on the resource at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.ops_runner import assume_role_policy, execution_policy, invoke_policy
from policy import lambdas
from tests.policy.fixtures import ACCOUNT, MISSING, REGION, TAGS, by_policy, key_arn, resource, run

FUNCTION, ROLE, ROLE_POLICY = lambdas.FUNCTION, lambdas.ROLE, lambdas.ROLE_POLICY
ATTACHMENT, SCHEDULE = lambdas.ROLE_POLICY_ATTACHMENT, lambdas.SCHEDULE
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
NAME = "edumatrix-test-ops-runner"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAME}"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:edumatrix-test/db/platform/ops-AbCdEf"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{NAME}-dlq"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{NAME}"


def function_props(**overrides: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "name": NAME, "runtime": "python3.13", "handler": "edumatrix_db.ops.runner.handler", "timeout": 120,
        "memorySize": 256, "reservedConcurrentExecutions": 2, "kmsKeyArn": key_arn(),
        "role": f"arn:aws:iam::{ACCOUNT}:role/{NAME}-role",
        "vpcConfig": {"subnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                      "securityGroupIds": ["sg-0a1b2c3d4e5f60901"]},
        "deadLetterConfig": {"targetArn": QUEUE_ARN},
        "environment": {"variables": {"EDUMATRIX_DB_SECRET_ARN": SECRET_ARN}},
        "loggingConfig": {"logFormat": "JSON", "logGroup": f"/aws/lambda/{NAME}"},
        "tags": dict(TAGS), "arn": FUNCTION_ARN,
    }
    props.update(overrides)
    return props


def role(name: str, trust: str, **overrides: Any) -> Any:
    return resource(ROLE, name, {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
                                 "assumeRolePolicy": trust, "tags": dict(TAGS), **overrides})


def compliant() -> list[Any]:
    """The ops runner as components/ops_runner.py declares it (policies from its own builders)."""
    return [
        resource(FUNCTION, f"{NAME}-function", function_props()),
        resource(LOG_GROUP, f"{NAME}-logs", {"name": f"/aws/lambda/{NAME}", "kmsKeyId": key_arn(),
                                             "retentionInDays": 365, "arn": LOG_GROUP_ARN}),
        role(f"{NAME}-role", assume_role_policy("lambda.amazonaws.com")),
        resource(ROLE_POLICY, f"{NAME}-policy", {"role": f"{NAME}-role", "policy": execution_policy(
            log_group_arn=LOG_GROUP_ARN, secret_arn=SECRET_ARN, key_arn=key_arn(), queue_arn=QUEUE_ARN,
            region=REGION)}),
        role(f"{NAME}-scheduler-role", assume_role_policy("scheduler.amazonaws.com", ACCOUNT)),
        resource(ROLE_POLICY, f"{NAME}-scheduler-policy", {"role": f"{NAME}-scheduler-role",
                                                          "policy": invoke_policy(FUNCTION_ARN)}),
        resource(SCHEDULE, f"{NAME}-audit-schedule", {
            "name": f"{NAME}-audit", "scheduleExpression": "rate(60 minutes)",
            "target": {"arn": FUNCTION_ARN, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{NAME}-scheduler-role",
                       "input": json.dumps({"job": "audit"})}}),
    ]


def replaced(name: str, **overrides: Any) -> list[Any]:
    out = []
    for res in compliant():
        if res.name == name:
            props = {k: v for k, v in {**res.props, **overrides}.items() if v is not MISSING}
            res = resource(res.type, res.name, props)
        out.append(res)
    return out


def urn_of(resources: list[Any], name: str) -> str:
    return next(r.urn for r in resources if r.name == name)


def test_the_runner_as_declared_passes_every_lambda_policy() -> None:
    assert run(compliant(), policies=lambdas.POLICIES) == []


def policy_document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


VIOLATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("lambda-in-vpc", f"{NAME}-function", {"vpcConfig": MISSING}),
    ("lambda-in-vpc", f"{NAME}-function", {"vpcConfig": {"subnetIds": ["subnet-0a1b2c3d4e5f60001"],
                                                         "securityGroupIds": ["sg-0a1b2c3d4e5f60901"]}}),
    ("lambda-supported-runtime", f"{NAME}-function", {"runtime": "python3.11"}),
    ("lambda-within-limits", f"{NAME}-function", {"timeout": 901}),
    ("lambda-within-limits", f"{NAME}-function", {"timeout": MISSING}),
    ("lambda-within-limits", f"{NAME}-function", {"memorySize": 10_241}),
    ("lambda-within-limits", f"{NAME}-function", {"memorySize": 64}),
    ("lambda-concurrency-dlq-cmk", f"{NAME}-function", {"reservedConcurrentExecutions": MISSING}),
    ("lambda-concurrency-dlq-cmk", f"{NAME}-function", {"reservedConcurrentExecutions": 0}),
    ("lambda-concurrency-dlq-cmk", f"{NAME}-function", {"deadLetterConfig": MISSING}),
    ("lambda-concurrency-dlq-cmk", f"{NAME}-function", {"kmsKeyArn": MISSING}),
    ("lambda-log-group-cmk", f"{NAME}-logs", {"kmsKeyId": MISSING}),
    ("lambda-log-group-cmk", f"{NAME}-function", {"loggingConfig": {"logFormat": "JSON", "logGroup": "/elsewhere"}}),
    ("lambda-role-least-privilege", f"{NAME}-policy", {"policy": policy_document(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})}),
    ("lambda-role-least-privilege", f"{NAME}-policy", {"policy": policy_document(
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::bucket/*"})}),
    ("lambda-role-least-privilege", f"{NAME}-policy", {"policy": policy_document(
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"})}),  # no namespace condition
    ("lambda-role-least-privilege", f"{NAME}-policy", {"policy": policy_document(
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})}),
    ("scheduler-role-least-privilege", f"{NAME}-scheduler-policy", {"policy": policy_document(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})}),
    ("scheduler-role-least-privilege", f"{NAME}-scheduler-policy", {"policy": policy_document(
        {"Effect": "Allow", "Action": ["lambda:InvokeFunction", "lambda:UpdateFunctionCode"],
         "Resource": FUNCTION_ARN})}),
    ("scheduler-role-least-privilege", f"{NAME}-scheduler-role", {
        "assumeRolePolicy": assume_role_policy("scheduler.amazonaws.com")}),  # no aws:SourceAccount
    ("scheduler-role-least-privilege", f"{NAME}-scheduler-role", {
        "assumeRolePolicy": assume_role_policy("events.amazonaws.com", ACCOUNT)}),
]


@pytest.mark.parametrize(("policy", "name", "overrides"), VIOLATIONS,
                         ids=[f"{p}:{n.removeprefix(NAME)}:{','.join(o)}" for p, n, o in VIOLATIONS])
def test_violation_is_reported_by_that_policy_on_that_resource(policy: str, name: str,
                                                               overrides: dict[str, Any]) -> None:
    resources = replaced(name, **overrides)
    assert by_policy(run(resources, policies=lambdas.POLICIES)) == {policy: [urn_of(resources, name)]}


def test_a_function_whose_log_group_is_not_declared_is_reported_on_the_function() -> None:
    resources = [r for r in compliant() if r.type != LOG_GROUP]
    assert by_policy(run(resources, policies=lambdas.POLICIES)) == {
        "lambda-log-group-cmk": [urn_of(resources, f"{NAME}-function")]}


def test_a_managed_policy_attached_to_the_function_role_is_reported() -> None:
    attachment = resource(ATTACHMENT, f"{NAME}-admin", {
        "role": f"{NAME}-role", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})
    assert by_policy(run([*compliant(), attachment], policies=lambdas.POLICIES)) == {
        "lambda-role-least-privilege": [attachment.urn]}


def test_a_schedule_whose_role_the_stack_does_not_declare_is_reported() -> None:
    resources = [r for r in compliant() if r.name != f"{NAME}-scheduler-role"]
    assert by_policy(run(resources, policies=lambdas.POLICIES)) == {
        "scheduler-role-least-privilege": [urn_of(resources, f"{NAME}-audit-schedule")]}


def test_the_allowed_runtimes_follow_policy_config() -> None:
    resources = replaced(f"{NAME}-function", runtime="python3.11")
    config = {"lambda-supported-runtime": {"allowedRuntimes": ["python3.11"]}}
    assert run(resources, config=config, policies=lambdas.POLICIES) == []


@pytest.mark.parametrize("statement", [
    {"Effect": "Allow", "Action": sorted(lambdas.ENI_ACTIONS), "Resource": "*"},
    {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
     "Condition": {"StringEquals": {"cloudwatch:namespace": "EduMatrix/Database"}}},
    {"Effect": "Deny", "Action": "*", "Resource": "*"},
])
def test_the_documented_exceptions_and_denies_are_not_findings(statement: dict[str, Any]) -> None:
    assert lambdas.statement_problems(statement) == []


def test_restore_test_results_may_name_every_resource_only_in_the_stacks_region() -> None:
    """backup:PutRestoreValidationResult has no resource-level permission: "*" is accepted with a region
    condition, and refused without one."""
    from policy.lambdas import statement_problems

    statement = {"Effect": "Allow", "Action": "backup:PutRestoreValidationResult", "Resource": "*"}
    assert statement_problems({**statement, "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}}) == []
    [problem] = statement_problems(statement)
    assert problem.startswith('backup:PutRestoreValidationResult on every resource ("*" is allowed only for the ENI '
                              "actions of a VPC function and for actions conditioned on their narrowing key: ")


def test_listing_ecs_tasks_may_name_every_resource_only_when_narrowed_to_a_cluster() -> None:
    """ecs:ListTasks names only container instances, which Fargate tasks lack: "*" is accepted with an
    ecs:cluster condition (the pooler's cluster, components/service_pooler.py runner_policy), refused without."""
    statement = {"Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*"}
    cluster = {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/edumatrix-prod-pooler-x"}}
    assert lambdas.statement_problems({**statement, "Condition": cluster}) == []
    assert [p.split(" on every resource")[0] for p in lambdas.statement_problems(statement)] == ["ecs:ListTasks"]
