"""PitrValidation (edumatrix:backup:PitrValidation): the monthly point-in-time-restore validation on AWS (spec 6.A
"point-in-time ... monthly validation", 4.A "monthly validation"; docs/recovery-runbook.md).

RDS owns point-in-time recovery here (components/backups.py), so AWS Backup's restore testing cannot test it. A
Lambda cannot wait for an instance restore (15 minutes at most), so a Step Functions state machine does, using
the AWS SDK service integrations (`arn:aws:states:::aws-sdk:rds:<action>`; their parameters and results are the
API's names in PascalCase as the AWS Java SDK spells them: `SourceDBInstanceIdentifier`, `DbSubnetGroupName`,
`DbInstances[0].DbInstanceStatus`; Step Functions developer guide, "AWS SDK service integrations"):

1. `Start`: the restore time T is the execution's start (`$$.Execution.StartTime`); `Settle` waits
   `SETTLE_SECONDS`, because RDS can restore only up to its latest restorable time, "typically within the last
   five minutes" (RDS user guide, "Restoring a DB instance to a specified time").
2. `Restore`: RestoreDBInstanceToPointInTime of the shared instance to T into `<identifier>-pitr-check`: the
   private subnet group, a security group only the ops runner reaches, not public, no Multi-AZ, the stack's
   smallest class, the instance's parameter group, no deletion protection, tagged `edumatrix-backup:
   excluded` (AWS Backup's selection takes `edumatrix-backup: <stack>`, so it never backs the copy up) and
   `edumatrix-pitr-validation: <stack>`. An encrypted source restores encrypted under the same KMS key (the
   instance's CMK); RestoreDBInstanceToPointInTime has no key parameter for an instance.
3. `Wait`/`Describe`/`Available?`: DescribeDBInstances every `POLL_SECONDS` until `available`, at most
   `max_wait_minutes` (a failed state or the bound ends it).
4. `Validate`: the ops runner's `pitr-verify` job (edumatrix_db/ops/backup_jobs.py) logs in to the restored
   instance and proves T: a heartbeat shortly before T and none between T and the restore request, every
   service schema present, owned and isolated (the guard's audit), every table and index readable end to end.
5. `Delete` (DeleteDBInstance, SkipFinalSnapshot, DeleteAutomatedBackups) on success AND on every failure after
   the restore request (each Task's Catch goes to `CleanUp`), retried while the instance is still busy; then
   `Validated` or `ValidationFailed`. A failed execution or one that timed out raises an alarm on the region's
   alarm topic (components/alarm_topic.py).

Logging: ALL events with execution data to a CMK-encrypted log group `/aws/vendedlogs/states/<name>`
(Step Functions needs the log-delivery actions on "*": developer guide, "IAM policies for logging to
CloudWatch Logs"). X-Ray tracing is off by default (`tracing` setting).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.backups import SELECTION_TAG
from components.network import allow_tcp
from components.ops_runner import assume_role_policy
from config.aws_names import PITR_CHECK_SUFFIX

SETTLE_SECONDS = 600
"""Between T and the restore request: RDS's latest restorable time trails the present by up to 5 minutes."""
POLL_SECONDS = 300
VALIDATION_TAG = "edumatrix-pitr-validation"
EXCLUDED = "excluded"
"""The restored copy's `edumatrix-backup` tag: not the stack's name, so AWS Backup's selection skips it."""
RESTORED_SUFFIX = PITR_CHECK_SUFFIX
FAILED_STATES = ("failed", "incompatible-restore", "incompatible-parameters", "incompatible-network",
                 "storage-full", "inaccessible-encryption-credentials", "restore-error")
"""DescribeDBInstances statuses a restore does not come back from (RDS user guide, "Viewing DB instance status")."""
LOG_DELIVERY_ACTIONS = ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                        "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                        "logs:DescribeResourcePolicies", "logs:DescribeLogGroups")
"""What Step Functions needs to log to CloudWatch Logs; these actions take no resource ARN."""
RDS_SDK = "arn:aws:states:::aws-sdk:rds:"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


def restored_identifier(instance_identifier: str) -> str:
    """The restored copy's identifier (at most 63 characters: config/aws_names.py checks the stack's)."""
    return f"{instance_identifier}{RESTORED_SUFFIX}"


@dataclass(frozen=True)
class PitrValidationArgs:
    stack: str
    name_prefix: str
    environment: str
    instance_identifier: str
    instance_arn: pulumi.Input[str]
    subnet_group_name: pulumi.Input[str]
    parameter_group_name: pulumi.Input[str]
    vpc_id: str
    port: int
    runner_function_arn: pulumi.Input[str]
    runner_security_group_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    schedule: str
    instance_class: str
    max_wait_minutes: int
    heartbeat_minutes: int
    log_retention_days: int
    tracing: bool = False
    partition: str = "aws"
    region: str = "us-east-1"
    tags: Mapping[str, str] = field(default_factory=dict)


def definition(args: PitrValidationArgs, runner_arn: str, security_group_id: str, parameter_group: str,
               subnet_group: str) -> dict[str, Any]:
    """The state machine (Amazon States Language, JSONPath). Every path after `Restore` passes `Delete`."""
    restored = restored_identifier(args.instance_identifier)
    polls = max(1, args.max_wait_minutes * 60 // POLL_SECONDS)
    catch_to_cleanup = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "CleanUp"}]

    def delete(next_state: str) -> dict[str, Any]:
        return {
            "Type": "Task", "Resource": f"{RDS_SDK}deleteDBInstance",
            "Parameters": {"DbInstanceIdentifier": restored, "SkipFinalSnapshot": True,
                           "DeleteAutomatedBackups": True},
            "ResultPath": None,
            # a restore still finishing (backing-up, modifying) refuses deletion for a while
            "Retry": [{"ErrorEquals": ["Rds.InvalidDbInstanceStateException"], "IntervalSeconds": 120,
                       "MaxAttempts": 30, "BackoffRate": 1.0},
                      {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 60, "MaxAttempts": 5, "BackoffRate": 2.0}],
            "Catch": [{"ErrorEquals": ["Rds.DbInstanceNotFoundException"], "ResultPath": None, "Next": next_state},
                      {"ErrorEquals": ["States.ALL"], "ResultPath": "$.deleteError", "Next": "DeleteFailed"}],
            "Next": next_state,
        }

    return {
        "Comment": f"{args.name_prefix}: monthly point-in-time-restore validation (components/pitr_validation.py)",
        "StartAt": "Start",
        "TimeoutSeconds": SETTLE_SECONDS + args.max_wait_minutes * 60 + 4 * 3600,
        "States": {
            "Start": {"Type": "Pass", "Parameters": {"restoreTime.$": "$$.Execution.StartTime",
                                                     "polls": {"n": 0}}, "Next": "Settle"},
            "Settle": {"Type": "Wait", "Seconds": SETTLE_SECONDS, "Next": "Requested"},
            "Requested": {"Type": "Pass", "Parameters": {"at.$": "$$.State.EnteredTime"},
                          "ResultPath": "$.restoreRequestedAt", "Next": "Restore"},
            "Restore": {
                "Type": "Task", "Resource": f"{RDS_SDK}restoreDBInstanceToPointInTime",
                "Parameters": {
                    "SourceDBInstanceIdentifier": args.instance_identifier,
                    "TargetDBInstanceIdentifier": restored,
                    "RestoreTime.$": "$.restoreTime",
                    "DbInstanceClass": args.instance_class,
                    "DbSubnetGroupName": subnet_group,
                    "VpcSecurityGroupIds": [security_group_id],
                    "DbParameterGroupName": parameter_group,
                    "MultiAZ": False,
                    "PubliclyAccessible": False,
                    "DeletionProtection": False,
                    "AutoMinorVersionUpgrade": False,
                    "CopyTagsToSnapshot": False,
                    "Tags": [{"Key": SELECTION_TAG, "Value": EXCLUDED}, {"Key": VALIDATION_TAG, "Value": args.stack},
                             *({"Key": k, "Value": v} for k, v in sorted(args.tags.items())
                               if k not in (SELECTION_TAG, VALIDATION_TAG))],
                },
                "ResultPath": None,
                # nothing was created when the request itself failed: nothing to delete
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RestoreFailed"}],
                "Next": "Wait",
            },
            "Wait": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": "Describe"},
            "Describe": {
                "Type": "Task", "Resource": f"{RDS_SDK}describeDBInstances",
                "Parameters": {"DbInstanceIdentifier": restored},
                "ResultSelector": {"status.$": "$.DbInstances[0].DbInstanceStatus"},
                "ResultPath": "$.instance",
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 3,
                           "BackoffRate": 2.0}],
                "Catch": catch_to_cleanup, "Next": "Count"},
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.polls.n, 1)"}, "ResultPath": "$.polls",
                      "Next": "Available?"},
            "Available?": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.instance.status", "StringEquals": "available", "Next": "Validate"},
                    {"Or": [{"Variable": "$.instance.status", "StringEquals": s} for s in FAILED_STATES],
                     "Next": "RestoreBroken"},
                    {"Variable": "$.polls.n", "NumericGreaterThanEquals": polls, "Next": "TooSlow"},
                ],
                "Default": "Wait"},
            "RestoreBroken": {"Type": "Pass", "Parameters": {"Error": "RestoreBroken", "Cause.$": "$.instance.status"},
                              "ResultPath": "$.error", "Next": "CleanUp"},
            "TooSlow": {"Type": "Pass", "Parameters": {
                "Error": "RestoreTooSlow", "Cause": f"not available after {args.max_wait_minutes} minutes"},
                "ResultPath": "$.error", "Next": "CleanUp"},
            "Validate": {
                "Type": "Task", "Resource": LAMBDA_INVOKE,
                "Parameters": {"FunctionName": runner_arn, "Payload": {
                    "job": "pitr-verify",
                    "event": {"restoredIdentifier": restored, "restoreTime.$": "$.restoreTime",
                              "restoreRequestedAt.$": "$.restoreRequestedAt.at",
                              "heartbeatMinutes": args.heartbeat_minutes}}},
                "ResultSelector": {"result.$": "$.Payload"},
                "ResultPath": "$.validation",
                "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException",
                                           "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
                           "IntervalSeconds": 10, "MaxAttempts": 3, "BackoffRate": 2.0}],
                "Catch": catch_to_cleanup, "Next": "Delete"},
            "Delete": delete("Validated"),
            "CleanUp": delete("ValidationFailed"),
            "Validated": {"Type": "Succeed"},
            "RestoreFailed": {"Type": "Fail", "Error": "RestoreFailed",
                              "Cause": "RestoreDBInstanceToPointInTime refused the request (see the execution's "
                                       "history: quota, subnet group, a copy left from an earlier run)"},
            "ValidationFailed": {"Type": "Fail", "Error": "ValidationFailed",
                                 "Cause": "the restored copy was not validated (see $.error in the history); it "
                                          "was deleted"},
            "DeleteFailed": {"Type": "Fail", "Error": "DeleteFailed",
                             "Cause": f"{restored} could not be deleted: delete it by hand "
                                      "(docs/recovery-runbook.md), it costs until then"},
        },
    }


def role_policy(args: PitrValidationArgs, account: str, instance_arn: str, runner_arn: str, key_arn: str,
                subnet_group: str, parameter_group: str) -> str:
    """Least privilege: restore from the shared instance into the one restored identifier, describe, tag and
    delete only that identifier, invoke only the runner; the CMK only through RDS; log delivery."""
    arn = f"arn:{args.partition}:rds:{args.region}:{account}"
    restored = f"{arn}:db:{restored_identifier(args.instance_identifier)}"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "RestoreTheSharedInstanceIntoTheCheckCopy", "Effect": "Allow",
         "Action": "rds:RestoreDBInstanceToPointInTime",
         "Resource": [instance_arn, restored, f"{arn}:subgrp:{subnet_group}", f"{arn}:pg:{parameter_group}"]},
        {"Sid": "TagDescribeAndDeleteTheCheckCopyOnly", "Effect": "Allow",
         "Action": ["rds:AddTagsToResource", "rds:DescribeDBInstances", "rds:DeleteDBInstance"],
         "Resource": restored},
        {"Sid": "UseTheInstanceKeyThroughRds", "Effect": "Allow",
         "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"rds.{args.region}.amazonaws.com"}}},
        {"Sid": "InvokeTheOpsRunner", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": [runner_arn, f"{runner_arn}:*"]},
        {"Sid": "DeliverExecutionLogs", "Effect": "Allow", "Action": list(LOG_DELIVERY_ACTIONS), "Resource": "*"},
        *([{"Sid": "Tracing", "Effect": "Allow", "Resource": "*",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                       "xray:GetSamplingTargets"]}] if args.tracing else []),
    ]})


def start_policy(state_machine_arn: str) -> str:
    """The schedule's role: start this state machine, nothing else."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "StartThePitrValidation", "Effect": "Allow", "Action": "states:StartExecution",
        "Resource": state_machine_arn}]})


class PitrValidation(pulumi.ComponentResource):
    """`edumatrix:backup:PitrValidation`: the state machine, its role, log group, schedule, network and alarms."""

    state_machine_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: PitrValidationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:backup:PitrValidation", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        machine_name = f"{args.name_prefix}-pitr-validation"
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id

        # -- a security group only the ops runner reaches ------------------------------------------------------
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", name=f"{machine_name}-copy", vpc_id=args.vpc_id, tags=tags, opts=child,
            description="The point-in-time-restore check copy: reached by the ops runner only")
        allow_tcp(source=args.runner_security_group_id, target=group.id, port=args.port,
                  egress_name=f"{name}-runner-to-copy", ingress_name=f"{name}-from-runner",
                  egress_description="the ops runner to the point-in-time-restore check copy",
                  ingress_description="the ops runner's pitr-verify job", tags=tags, opts=child)

        # -- logs, role, state machine ----------------------------------------------------------------------
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/vendedlogs/states/{machine_name}", kms_key_id=args.kms_key_arn,
            retention_in_days=args.log_retention_days, tags=tags, opts=child)
        role = aws.iam.Role(
            f"{name}-role", name=machine_name, description="Step Functions: restore the shared instance to a point "
            "in time into its check copy, validate it through the ops runner, delete it",
            assume_role_policy=account.apply(lambda a: assume_role_policy("states.amazonaws.com", a)),
            tags=tags, opts=child)
        policy = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id, opts=child,
            policy=pulumi.Output.all(account, args.instance_arn, args.runner_function_arn, args.kms_key_arn,
                                     args.subnet_group_name, args.parameter_group_name).apply(
                lambda v: role_policy(args, *v)))
        machine = aws.sfn.StateMachine(
            f"{name}-machine", name=machine_name, type="STANDARD", role_arn=role.arn, tags=tags,
            definition=pulumi.Output.all(args.runner_function_arn, group.id, args.parameter_group_name,
                                         args.subnet_group_name).apply(
                lambda v: json.dumps(definition(args, *v))),
            logging_configuration={"level": "ALL", "include_execution_data": True,
                                   "log_destination": logs.arn.apply(lambda a: f"{a}:*")},
            tracing_configuration={"enabled": args.tracing},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))

        # -- the monthly schedule ---------------------------------------------------------------------------
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role", description=f"{machine_name}: EventBridge Scheduler starts the validation",
            assume_role_policy=account.apply(lambda a: assume_role_policy("scheduler.amazonaws.com", a)),
            tags=tags, opts=child)
        scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy", role=scheduler_role.id, policy=machine.arn.apply(start_policy), opts=child)
        aws.scheduler.Schedule(
            f"{name}-schedule", name=machine_name, description="Monthly point-in-time-restore validation "
            "(spec 6.A, 4.A)", schedule_expression=args.schedule, schedule_expression_timezone="Etc/UTC",
            flexible_time_window={"mode": "OFF"},
            target={"arn": machine.arn, "role_arn": scheduler_role.arn, "input": "{}",
                    "retry_policy": {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 3}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]))

        # -- alarms to the region's alarm topic --------------------------------------------------------------
        for metric, what in (("ExecutionsFailed", "failed: the restore, the validation or the deletion went "
                                                  "wrong; the execution's history says which state"),
                             ("ExecutionsTimedOut", "timed out: the restore took longer than allowed; check "
                                                    f"that {restored_identifier(args.instance_identifier)} is "
                                                    "gone")):
            aws.cloudwatch.MetricAlarm(
                f"{name}-{metric.lower()}", name=f"{machine_name}-{metric.lower()}",
                alarm_description=f"The monthly point-in-time-restore validation of {args.environment} {what} "
                                  "(docs/recovery-runbook.md)", namespace="AWS/States",
                metric_name=metric, dimensions={"StateMachineArn": machine.arn}, statistic="Sum", period=86_400,
                evaluation_periods=1, threshold=0, comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching", alarm_actions=[args.alarm_topic_arn],
                ok_actions=[args.alarm_topic_arn], tags=tags, opts=child)

        self.state_machine_arn = machine.arn
        self.security_group_id = group.id
        self.register_outputs({"stateMachineArn": self.state_machine_arn, "securityGroupId": self.security_group_id})
