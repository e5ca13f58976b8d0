"""policy/lambdas.py, message by message: each row is one change of the ops runner as tests/policy/test_lambdas.py
declares it (or a compliant variant at a boundary) and everything the policy then reports, each message written out
in full as the user reads it in CI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.ops_runner import assume_role_policy
from policy import lambdas
from tests.policy.fixtures import ACCOUNT, MISSING, resource
from tests.policy.reports import reports, rows
from tests.policy.test_lambdas import (
    ATTACHMENT,
    FUNCTION_ARN,
    NAME,
    compliant,
    policy_document,
    replaced,
    role,
)

FUNCTION, LOGS, ROLE = f"{NAME}-function", f"{NAME}-logs", f"{NAME}-role"
POLICY, SCHEDULER_ROLE, SCHEDULER_POLICY = f"{NAME}-policy", f"{NAME}-scheduler-role", f"{NAME}-scheduler-policy"
SCHEDULE = f"{NAME}-audit-schedule"
STATE_MACHINE_ARN = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:edumatrix-test-restore"
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
NOT_IN_VPC = ("the function is not attached to a VPC (vpcConfig needs subnetIds and securityGroupIds): it cannot reach "
              "the private database, and it would reach the internet directly")
TIMEOUT = "timeout {!r}: Lambda runs an invocation 1 to 900 s (default 3 s: set it)"
MEMORY = "memorySize {!r}: Lambda allows 128 to 10240 MB"
RESERVED = ("reservedConcurrentExecutions {!r}: reserve at least 1 (0 stops the function, unset lets it take the "
            "account's whole concurrency)")
NO_DLQ = "no deadLetterConfig: failed asynchronous invocations (schedules, events) would be dropped"
ENV_NOT_CMK = "environment variables are not encrypted with the platform's CMK (kmsKeyArn)"
LOGS_NOT_CMK = f"the function's log group /aws/lambda/{NAME} is not encrypted with the platform's CMK"
EXCEPTIONS = ("(\"*\" is allowed only for the ENI actions of a VPC function and for actions conditioned on their "
              "narrowing key: backup:PutRestoreValidationResult on aws:RequestedRegion, cloudwatch:PutMetricData on "
              "cloudwatch:namespace, ecs:ListTasks on ecs:cluster)")
FUNCTION_POLICY = f"the inline policy of function role {ROLE}: {{}}"
NOT_LISTED = "NotAction/NotResource allows everything not listed"
SCHEDULER_TRUST = (f"role {SCHEDULER_ROLE} must trust only scheduler.amazonaws.com, conditioned on aws:SourceAccount "
                   "(confused-deputy protection)")
ONLY_INVOKE = f"schedule role {SCHEDULER_ROLE} may {{}} on {{}}: only lambda:InvokeFunction on the target function"


def with_function(**props: Any) -> list[Any]:
    return replaced(FUNCTION, **props)


def allow(action: Any, resource_: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource_, **extra}


def function_policy(*statements: Any) -> list[Any]:
    return replaced(POLICY, policy=policy_document(*statements))


def scheduler_policy(*statements: Any) -> list[Any]:
    return replaced(SCHEDULER_POLICY, policy=policy_document(*statements))


def attached(role_ref: str, *resources: Any) -> list[Any]:
    return [*(resources or compliant()), resource(ATTACHMENT, "admin", {"role": role_ref, "policyArn": ADMIN})]


def trusted_by(statement: dict[str, Any]) -> list[Any]:
    return replaced(SCHEDULER_ROLE, assumeRolePolicy=json.dumps({"Statement": [statement]}))


def scheduler_trust(**principal: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}


CASES = rows(
    ("outside-a-vpc", lambdas.lambda_in_vpc, with_function(vpcConfig=MISSING), [(FUNCTION, NOT_IN_VPC)]),
    ("subnets-without-security-group", lambdas.lambda_in_vpc,
     with_function(vpcConfig={"subnetIds": ["subnet-1", "subnet-2"]}), [(FUNCTION, NOT_IN_VPC)]),
    ("security-group-without-subnets", lambdas.lambda_in_vpc,
     with_function(vpcConfig={"securityGroupIds": "sg-1"}), [(FUNCTION, NOT_IN_VPC)]),
    ("one-subnet", lambdas.lambda_in_vpc,
     with_function(vpcConfig={"subnetIds": "subnet-1", "securityGroupIds": "sg-1"}),
     [(FUNCTION, "the function runs in one subnet (subnet-1): name subnets of at least two availability zones")]),
    ("deprecated-runtime", lambdas.lambda_supported_runtime, with_function(runtime="python3.11"),
     [(FUNCTION, "runtime 'python3.11' is not a supported Lambda runtime here (allowed: python3.12, python3.13, "
                 "python3.14): deprecated runtimes get no security patches and then block function updates")]),
    ("timeout-and-memory-past-the-limits", lambdas.lambda_within_limits, with_function(timeout=901, memorySize=10_241),
     [(FUNCTION, TIMEOUT.format(901)), (FUNCTION, MEMORY.format(10_241))]),
    ("timeout-and-memory-below-the-limits", lambdas.lambda_within_limits, with_function(timeout=0, memorySize=127),
     [(FUNCTION, TIMEOUT.format(0)), (FUNCTION, MEMORY.format(127))]),
    ("timeout-and-memory-unset", lambdas.lambda_within_limits, with_function(timeout=MISSING, memorySize=MISSING),
     [(FUNCTION, TIMEOUT.format(None)), (FUNCTION, MEMORY.format(None))]),
    ("timeout-and-memory-as-text", lambdas.lambda_within_limits, with_function(timeout="60", memorySize="256"),
     [(FUNCTION, TIMEOUT.format("60")), (FUNCTION, MEMORY.format("256"))]),
    ("timeout-and-memory-at-the-lower-limits", lambdas.lambda_within_limits, with_function(timeout=1, memorySize=128),
     []),
    ("timeout-and-memory-at-the-upper-limits", lambdas.lambda_within_limits,
     with_function(timeout=900, memorySize=10_240), []),
    ("concurrency-unset", lambdas.lambda_concurrency_dlq_cmk, with_function(reservedConcurrentExecutions=MISSING),
     [(FUNCTION, RESERVED.format(None))]),
    ("concurrency-zero", lambdas.lambda_concurrency_dlq_cmk, with_function(reservedConcurrentExecutions=0),
     [(FUNCTION, RESERVED.format(0))]),
    ("concurrency-one", lambdas.lambda_concurrency_dlq_cmk, with_function(reservedConcurrentExecutions=1), []),
    ("concurrency-as-text", lambdas.lambda_concurrency_dlq_cmk, with_function(reservedConcurrentExecutions="2"),
     [(FUNCTION, RESERVED.format("2"))]),
    ("dead-letter-queue-unset", lambdas.lambda_concurrency_dlq_cmk, with_function(deadLetterConfig=MISSING),
     [(FUNCTION, NO_DLQ)]),
    ("dead-letter-queue-without-target", lambdas.lambda_concurrency_dlq_cmk, with_function(deadLetterConfig={}),
     [(FUNCTION, NO_DLQ)]),
    ("environment-without-key", lambdas.lambda_concurrency_dlq_cmk, with_function(kmsKeyArn=MISSING),
     [(FUNCTION, ENV_NOT_CMK)]),
    ("environment-with-aws-managed-key", lambdas.lambda_concurrency_dlq_cmk,
     with_function(kmsKeyArn="alias/aws/lambda"),
     [(FUNCTION, ENV_NOT_CMK)]),
    ("no-environment-no-key", lambdas.lambda_concurrency_dlq_cmk,
     with_function(kmsKeyArn=MISSING, environment=MISSING), []),
    ("log-group-not-declared", lambdas.lambda_log_group_cmk,
     with_function(loggingConfig={"logFormat": "JSON", "logGroup": "/elsewhere"}),
     [(FUNCTION, "the function logs to /elsewhere, which the stack does not declare: Lambda would create it itself, "
                 "unencrypted and kept forever")]),
    ("log-group-by-default-name", lambdas.lambda_log_group_cmk, with_function(loggingConfig=MISSING), []),
    ("log-group-by-default-name-not-declared", lambdas.lambda_log_group_cmk,
     [r for r in with_function(loggingConfig={"logFormat": "JSON"}) if r.name != LOGS],
     [(FUNCTION, f"the function logs to /aws/lambda/{NAME}, which the stack does not declare: Lambda would create it "
                 "itself, unencrypted and kept forever")]),
    ("log-group-without-key", lambdas.lambda_log_group_cmk, replaced(LOGS, kmsKeyId=MISSING), [(LOGS, LOGS_NOT_CMK)]),
    ("log-group-with-aws-managed-key", lambdas.lambda_log_group_cmk, replaced(LOGS, kmsKeyId="alias/aws/logs"),
     [(LOGS, LOGS_NOT_CMK)]),
    ("managed-policy-on-the-function-role", lambdas.lambda_role_least_privilege, attached(ROLE),
     [("admin", f"managed policy {ADMIN} is attached to a function's role: grant what the function needs in its "
                "inline policy instead")]),
    ("managed-policy-on-the-function-role-by-id", lambdas.lambda_role_least_privilege,
     attached("AROA1", *replaced(ROLE, id="AROA1")),
     [("admin", f"managed policy {ADMIN} is attached to a function's role: grant what the function needs in its "
                "inline policy instead")]),
    ("function-policy-wildcards", lambdas.lambda_role_least_privilege,
     function_policy({"Effect": "Deny", "Action": "*", "Resource": "*"},
                     allow(["s3:*", "secretsmanager:GetSecretValue", "ec2:CreateNetworkInterface"]),
                     allow("cloudwatch:PutMetricData", Condition={"StringEquals": {"aws:RequestedRegion": "x"}})),
     [(POLICY, FUNCTION_POLICY.format(f"action 's3:*' is a wildcard; s3:*, secretsmanager:GetSecretValue on every "
                                      f"resource {EXCEPTIONS}; cloudwatch:PutMetricData on every resource "
                                      f"{EXCEPTIONS}"))]),
    ("function-policy-not-action", lambdas.lambda_role_least_privilege,
     function_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
     [(POLICY, FUNCTION_POLICY.format(NOT_LISTED))]),
    ("function-policy-not-resource", lambdas.lambda_role_least_privilege,
     function_policy({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x/*"}),
     [(POLICY, FUNCTION_POLICY.format(NOT_LISTED))]),
    ("function-policy-one-statement-object", lambdas.lambda_role_least_privilege,
     replaced(POLICY, policy=json.dumps({"Statement": allow("kms:Decrypt")})),
     [(POLICY, FUNCTION_POLICY.format(f"kms:Decrypt on every resource {EXCEPTIONS}"))]),
    ("function-policy-of-a-role-known-by-id", lambdas.lambda_role_least_privilege,
     [*replaced(ROLE, id="AROA1"), resource(lambdas.ROLE_POLICY, "by-id", {
         "role": "AROA1", "policy": policy_document(allow("kms:Decrypt"))})],
     [("by-id", FUNCTION_POLICY.format(f"kms:Decrypt on every resource {EXCEPTIONS}"))]),
    ("function-policy-not-json", lambdas.lambda_role_least_privilege, replaced(POLICY, policy="{Statement"), []),
    ("function-policy-json-list", lambdas.lambda_role_least_privilege, replaced(POLICY, policy="[]"), []),
    ("function-role-trusted-by-a-service-list", lambdas.lambda_role_least_privilege,
     [*replaced(ROLE, assumeRolePolicy=json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"Service": [
         "edgelambda.amazonaws.com", "lambda.amazonaws.com"]}}]})), resource(ATTACHMENT, "admin", {
             "role": ROLE, "policyArn": ADMIN})],
     [("admin", f"managed policy {ADMIN} is attached to a function's role: grant what the function needs in its "
                "inline policy instead")]),
    ("schedule-role-not-declared", lambdas.scheduler_role_least_privilege,
     [*replaced(SCHEDULE, target={"arn": FUNCTION_ARN, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/nope"}),
      resource(lambdas.SCHEDULE, "second-schedule", {"target": {"arn": FUNCTION_ARN, "roleArn": "x"}})],
     [(SCHEDULE, f"the schedule's target role arn:aws:iam::{ACCOUNT}:role/nope is not declared by the stack"),
      ("second-schedule", "the schedule's target role x is not declared by the stack")]),
    ("schedule-role-trust-without-source-account", lambdas.scheduler_role_least_privilege,
     replaced(SCHEDULER_ROLE, assumeRolePolicy=assume_role_policy("scheduler.amazonaws.com")),
     [(SCHEDULER_ROLE, SCHEDULER_TRUST)]),
    ("schedule-role-trusting-another-principal", lambdas.scheduler_role_least_privilege,
     trusted_by(scheduler_trust(Service="scheduler.amazonaws.com", AWS=f"arn:aws:iam::{ACCOUNT}:root")),
     [(SCHEDULER_ROLE, SCHEDULER_TRUST)]),
    ("schedule-role-trusting-another-service", lambdas.scheduler_role_least_privilege,
     trusted_by(scheduler_trust(Service=["scheduler.amazonaws.com", "events.amazonaws.com"])),
     [(SCHEDULER_ROLE, SCHEDULER_TRUST)]),
    ("schedule-role-trust-as-one-object", lambdas.scheduler_role_least_privilege,
     replaced(SCHEDULER_ROLE, assumeRolePolicy=json.dumps({"Statement": scheduler_trust(
         Service="scheduler.amazonaws.com")})), []),
    ("managed-policy-on-the-schedule-role", lambdas.scheduler_role_least_privilege, attached(SCHEDULER_ROLE),
     [("admin", f"managed policy {ADMIN} is attached to schedule role {SCHEDULER_ROLE}")]),
    ("managed-policy-on-the-schedule-role-by-id", lambdas.scheduler_role_least_privilege,
     attached("AROA2", *replaced(SCHEDULER_ROLE, id="AROA2")),
     [("admin", f"managed policy {ADMIN} is attached to schedule role {SCHEDULER_ROLE}")]),
    ("schedule-policy-after-a-deny", lambdas.scheduler_role_least_privilege,
     scheduler_policy({"Effect": "Deny", "Action": "lambda:*", "Resource": "*"},
                      allow(["lambda:InvokeFunction", "lambda:UpdateFunctionCode"], [FUNCTION_ARN, "*"])),
     [(SCHEDULER_POLICY, ONLY_INVOKE.format("lambda:InvokeFunction, lambda:UpdateFunctionCode",
                                            f"*, {FUNCTION_ARN}"))]),
    ("schedule-policy-on-a-qualified-function", lambdas.scheduler_role_least_privilege,
     scheduler_policy(allow("lambda:InvokeFunction", f"{FUNCTION_ARN}:*")), []),
    ("schedule-policy-of-a-state-machine-target", lambdas.scheduler_role_least_privilege,
     [*scheduler_policy(allow("lambda:InvokeFunction", STATE_MACHINE_ARN)), resource(
         lambdas.STATE_MACHINE, "restore", {"arn": STATE_MACHINE_ARN}), resource(lambdas.SCHEDULE, "restore-schedule", {
             "target": {"arn": STATE_MACHINE_ARN, "roleArn": f"arn:aws:iam::{ACCOUNT}:role/{SCHEDULER_ROLE}"}})],
     [(SCHEDULER_POLICY, ONLY_INVOKE.format("lambda:InvokeFunction", STATE_MACHINE_ARN)),
      (SCHEDULER_POLICY, f"schedule role {SCHEDULER_ROLE} may lambda:InvokeFunction on {STATE_MACHINE_ARN}: only "
                         f"states:StartExecution on the target state machine")]),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), CASES)
def test_the_lambda_policies_report_exactly(policy: Any, resources: list[Any], expected: list[tuple[str, str]]) -> None:
    assert reports(policy, resources) == expected


def test_the_allowed_runtimes_of_the_policy_config_are_named() -> None:
    assert reports(lambdas.lambda_supported_runtime, with_function(runtime="python3.13"),
                   config={"allowedRuntimes": ["python3.11", "python3.12"]}) == [
        (FUNCTION, "runtime 'python3.13' is not a supported Lambda runtime here (allowed: python3.11, python3.12): "
                   "deprecated runtimes get no security patches and then block function updates")]


def test_a_role_no_function_assumes_is_not_a_function_role() -> None:
    assert reports(lambdas.lambda_role_least_privilege, [role("other", assume_role_policy("ecs-tasks.amazonaws.com")),
                                                         resource(ATTACHMENT, "admin", {"role": "other",
                                                                                        "policyArn": ADMIN})]) == []
