"""Lambda functions (the platform's ops runner, components/ops_runner.py) and what invokes them: inside the VPC,
on a supported runtime, within Lambda's limits, logging to a CMK-encrypted group, with least-privilege roles.

The thresholds are the pack's own (docs/policy-parity.md, "Why the pack writes its own thresholds"); each cites
the AWS constraint it encodes, because the offline plan's mocks accept any value AWS would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policy.base import LOG_GROUP, PackPolicy, StackPolicy, TypedResourcePolicy, is_aws_managed_key, of_type, setting

FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
SCHEDULE = "aws:scheduler/schedule:Schedule"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"

# Lambda runtimes with standard support (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html):
# python3.11 and python3.10 were deprecated on 2026-06-30; python3.12 runs to 2028-10-31, 3.13 and 3.14 to 2029.
SUPPORTED_RUNTIMES = ("python3.12", "python3.13", "python3.14")
# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): "Code can run for up
# to 15 minutes in a single invocation and a single function can use up to 10,240 MB of memory"; the smallest
# memory setting is 128 MB, the shortest timeout 1 s.
MAX_TIMEOUT_SECONDS = 900
MEMORY_MB = (128, 10_240)
# What a VPC-attached function needs on "*" (the AWS-managed AWSLambdaVPCAccessExecutionRole: EC2 authorizes
# DescribeNetworkInterfaces only on "*"). No other action may name every resource...
ENI_ACTIONS = frozenset({
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
})
# ...except PutMetricData, which has no resource-level permission, when conditioned on its namespace
# (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html).
# ...and PutRestoreValidationResult (the restore-test validation reports its result), which takes a restore job
# id and has no resource-level permission, when conditioned on the region (aws:RequestedRegion).
NAMESPACE_CONDITIONED = {"cloudwatch:PutMetricData": "cloudwatch:namespace",
                         "backup:PutRestoreValidationResult": "aws:RequestedRegion",
                         # no resource Fargate tasks have (container-instance); narrowed to one cluster
                         "ecs:ListTasks": "ecs:cluster"}


def _listed(value: Any) -> list[str]:
    """One string or a list of them (as the engine's proxies present lists) as a list of strings."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable) or isinstance(value, Mapping):
        return [str(value)]
    return [str(v) for v in value]


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(str(value or "{}"))
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _statements(document: Any) -> list[Mapping[str, Any]]:
    statements = _document(document).get("Statement") or []
    return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, Mapping)]


# -- resource policies ---------------------------------------------------------------------------------------

def _in_vpc(args: ResourceValidationArgs, report: ReportViolation) -> None:
    vpc = args.props.get("vpcConfig") or {}
    subnets, groups = _listed(vpc.get("subnetIds")), _listed(vpc.get("securityGroupIds"))
    if not subnets or not groups:
        report("the function is not attached to a VPC (vpcConfig needs subnetIds and securityGroupIds): it "
               "cannot reach the private database, and it would reach the internet directly", None)
    elif len(subnets) < 2:
        report(f"the function runs in one subnet ({subnets[0]}): name subnets of at least two availability "
               "zones", None)


lambda_in_vpc = TypedResourcePolicy(
    "lambda-in-vpc",
    "Functions run inside the VPC, in subnets of at least two availability zones, behind a security group.",
    types=[FUNCTION], validate=_in_vpc, severity=Severity.HIGH,
    controls=["Lambda.3", "Lambda.5", "CKV_AWS_117"],
    remediation="Pass vpc_config={'subnet_ids': <the database's private subnets>, "
                "'security_group_ids': [<its own group>]}.",
)


def _runtime(args: ResourceValidationArgs, report: ReportViolation) -> None:
    allowed = setting(args, "allowedRuntimes", list(SUPPORTED_RUNTIMES))
    runtime = args.props.get("runtime")
    if runtime not in allowed:
        report(f"runtime {runtime!r} is not a supported Lambda runtime here (allowed: {', '.join(allowed)}): "
               "deprecated runtimes get no security patches and then block function updates", None)


lambda_supported_runtime = TypedResourcePolicy(
    "lambda-supported-runtime",
    "Functions use a Lambda runtime that is in standard support.",
    types=[FUNCTION], validate=_runtime, severity=Severity.MEDIUM, controls=["Lambda.2"],
    config={"allowedRuntimes": {"type": "array", "items": {"type": "string"}, "default": list(SUPPORTED_RUNTIMES)}},
    remediation="Build the package for a supported runtime (config/settings.py OPS_RUNNER_RUNTIME) and set it.",
)


def _limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    timeout, memory = props.get("timeout"), props.get("memorySize")
    if not isinstance(timeout, int | float) or not 1 <= timeout <= MAX_TIMEOUT_SECONDS:
        report(f"timeout {timeout!r}: Lambda runs an invocation 1 to {MAX_TIMEOUT_SECONDS} s (default 3 s: set it)",
               None)
    if not isinstance(memory, int | float) or not MEMORY_MB[0] <= memory <= MEMORY_MB[1]:
        report(f"memorySize {memory!r}: Lambda allows {MEMORY_MB[0]} to {MEMORY_MB[1]} MB", None)


lambda_within_limits = TypedResourcePolicy(
    "lambda-within-limits",
    "Function timeout (1-900 s) and memory (128-10,240 MB) are set, within Lambda's limits.",
    types=[FUNCTION], validate=_limits, severity=Severity.MEDIUM, controls=["AWS Lambda quotas"],
    remediation="Set opsRunner.timeoutSeconds / memoryMb within the limits (config/settings.py validates them).",
)


def _resilience(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    reserved = props.get("reservedConcurrentExecutions")
    if not isinstance(reserved, int | float) or reserved < 1:
        report(f"reservedConcurrentExecutions {reserved!r}: reserve at least 1 (0 stops the function, unset lets it "
               "take the account's whole concurrency)", None)
    if not (props.get("deadLetterConfig") or {}).get("targetArn"):
        report("no deadLetterConfig: failed asynchronous invocations (schedules, events) would be dropped", None)
    if props.get("environment") and (not props.get("kmsKeyArn") or is_aws_managed_key(props.get("kmsKeyArn"))):
        report("environment variables are not encrypted with the platform's CMK (kmsKeyArn)", None)


lambda_concurrency_dlq_cmk = TypedResourcePolicy(
    "lambda-concurrency-dlq-cmk",
    "Functions reserve concurrency, keep failed asynchronous invocations in a dead-letter queue, and encrypt "
    "their environment with a customer-managed key.",
    types=[FUNCTION], validate=_resilience, severity=Severity.MEDIUM,
    controls=["CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_173"],
    remediation="Pass reserved_concurrent_executions, dead_letter_config={'target_arn': <queue>}, kms_key_arn.",
)


# -- stack policies ------------------------------------------------------------------------------------------

def _log_group_name(function: PolicyResource) -> str:
    configured = (function.props.get("loggingConfig") or {}).get("logGroup")
    return str(configured or f"/aws/lambda/{function.props.get('name')}")


def _log_groups_cmk(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = {str(g.props.get("name")): g for g in of_type(args.resources, LOG_GROUP)}
    for function in of_type(args.resources, FUNCTION):
        name = _log_group_name(function)
        group = groups.get(name)
        if group is None:
            report(f"the function logs to {name}, which the stack does not declare: Lambda would create it "
                   "itself, unencrypted and kept forever", function.urn)
        elif not group.props.get("kmsKeyId") or is_aws_managed_key(group.props.get("kmsKeyId")):
            report(f"the function's log group {name} is not encrypted with the platform's CMK", group.urn)


lambda_log_group_cmk = StackPolicy(
    "lambda-log-group-cmk",
    "Every function logs to a log group the stack declares, encrypted with a customer-managed key.",
    types=[FUNCTION, LOG_GROUP], validate=_log_groups_cmk, severity=Severity.MEDIUM,
    controls=["CKV_AWS_158", "spec 4.A atRest"],
    remediation="Declare aws.cloudwatch.LogGroup(name='/aws/lambda/<function>', kms_key_id=<CMK>) and pass it as "
                "logging_config.log_group (the function depends on it).",
)


def _roles_of(resources: Iterable[PolicyResource], principal: str) -> list[PolicyResource]:
    """Roles whose trust policy lets `principal` (a service) assume them."""
    found = []
    for role in of_type(resources, ROLE):
        for statement in _statements(role.props.get("assumeRolePolicy")):
            services = _listed((statement.get("Principal") or {}).get("Service"))
            if principal in services:
                found.append(role)
                break
    return found


def _inline_policies(resources: Iterable[PolicyResource], role: PolicyResource) -> list[PolicyResource]:
    names = {str(v) for v in (role.props.get("name"), role.props.get("id")) if v}
    return [p for p in of_type(resources, ROLE_POLICY) if str(p.props.get("role")) in names]


def _attachments(resources: Iterable[PolicyResource], role: PolicyResource) -> list[PolicyResource]:
    names = {str(v) for v in (role.props.get("name"), role.props.get("id")) if v}
    return [a for a in of_type(resources, ROLE_POLICY_ATTACHMENT) if str(a.props.get("role")) in names]


def statement_problems(statement: Mapping[str, Any]) -> list[str]:
    """Why an Allow statement of a function's role is broader than the runner needs (empty: fine)."""
    if statement.get("Effect") != "Allow":
        return []
    if "NotAction" in statement or "NotResource" in statement:
        return ["NotAction/NotResource allows everything not listed"]
    actions, resources = _listed(statement.get("Action")), _listed(statement.get("Resource"))
    problems = [f"action {a!r} is a wildcard" for a in actions if "*" in a]
    if "*" in resources:
        condition = statement.get("Condition") or {}
        keys = {key for block in condition.values() if isinstance(block, Mapping) for key in block}
        broad = [a for a in actions if a not in ENI_ACTIONS
                 and not (a in NAMESPACE_CONDITIONED and NAMESPACE_CONDITIONED[a] in keys)]
        if broad:
            problems.append(f"{', '.join(broad)} on every resource (\"*\" is allowed only for the ENI actions of a "
                            "VPC function and for actions conditioned on their narrowing key: "
                            f"{', '.join(f'{a} on {k}' for a, k in sorted(NAMESPACE_CONDITIONED.items()))})")
    return problems


def _function_roles(args: StackValidationArgs, report: ReportViolation) -> None:
    for role in _roles_of(args.resources, "lambda.amazonaws.com"):
        for attachment in _attachments(args.resources, role):
            report(f"managed policy {attachment.props.get('policyArn')} is attached to a function's role: grant "
                   "what the function needs in its inline policy instead", attachment.urn)
        for policy in _inline_policies(args.resources, role):
            problems = [p for s in _statements(policy.props.get("policy")) for p in statement_problems(s)]
            if problems:
                report(f"the inline policy of function role {role.props.get('name')}: {'; '.join(problems)}",
                       policy.urn)


lambda_role_least_privilege = StackPolicy(
    "lambda-role-least-privilege",
    "A function's role has only inline policies, with no wildcard actions and \"*\" resources only for the ENI "
    "actions of a VPC function and namespace-conditioned PutMetricData.",
    types=[ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT], validate=_function_roles, severity=Severity.HIGH,
    controls=["IAM least privilege"],
    remediation="Name each secret, key, queue and log group by ARN (components/ops_runner.py execution_policy).",
)


def _scheduler_roles(args: StackValidationArgs, report: ReportViolation) -> None:
    roles = {str(r.props.get("arn")): r for r in of_type(args.resources, ROLE)}
    machines = {str(m.props.get("arn")) for m in of_type(args.resources, STATE_MACHINE)}
    for schedule in of_type(args.resources, SCHEDULE):
        target = schedule.props.get("target") or {}
        role = roles.get(str(target.get("roleArn")))
        if role is None:
            report(f"the schedule's target role {target.get('roleArn')} is not declared by the stack", schedule.urn)
            continue
        for statement in _statements(role.props.get("assumeRolePolicy")):
            services = _listed((statement.get("Principal") or {}).get("Service"))
            others = (statement.get("Principal") or {}).keys() - {"Service"}
            account = ((statement.get("Condition") or {}).get("StringEquals") or {}).get("aws:SourceAccount")
            if services != ["scheduler.amazonaws.com"] or others or not account:
                report(f"role {role.props.get('name')} must trust only scheduler.amazonaws.com, conditioned on "
                       "aws:SourceAccount (confused-deputy protection)", role.urn)
        # a state machine target is started (Scheduler's "universal" StartExecution target), a function invoked
        action, what = (("states:StartExecution", "the target state machine") if str(target.get("arn")) in machines
                        else ("lambda:InvokeFunction", "the target function"))
        allowed = {str(target.get("arn")), f"{target.get('arn')}:*"}
        for attachment in _attachments(args.resources, role):
            report(f"managed policy {attachment.props.get('policyArn')} is attached to schedule role "
                   f"{role.props.get('name')}", attachment.urn)
        for policy in _inline_policies(args.resources, role):
            for statement in _statements(policy.props.get("policy")):
                if statement.get("Effect") != "Allow":
                    continue
                actions, resources = set(_listed(statement.get("Action"))), set(_listed(statement.get("Resource")))
                if actions != {action} or not resources <= allowed:
                    report(f"schedule role {role.props.get('name')} may {', '.join(sorted(actions))} on "
                           f"{', '.join(sorted(resources))}: only {action} on {what}", policy.urn)


scheduler_role_least_privilege = StackPolicy(
    "scheduler-role-least-privilege",
    "An EventBridge Scheduler target role is trusted only by the scheduler of this account and may only invoke "
    "its target function (or start its target state machine).",
    types=[SCHEDULE, ROLE, ROLE_POLICY, ROLE_POLICY_ATTACHMENT, STATE_MACHINE], validate=_scheduler_roles,
    severity=Severity.HIGH,
    controls=["IAM least privilege", "EventBridge Scheduler execution role"],
    remediation="Give each schedule a role whose inline policy allows lambda:InvokeFunction on its target only.",
)

POLICIES: list[PackPolicy] = [
    lambda_in_vpc,
    lambda_supported_runtime,
    lambda_within_limits,
    lambda_concurrency_dlq_cmk,
    lambda_log_group_cmk,
    lambda_role_least_privilege,
    scheduler_role_least_privilege,
]
