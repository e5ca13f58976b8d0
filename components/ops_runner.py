"""The platform's ops runner on AWS: one Lambda in the database's VPC that runs every scheduled and
event-triggered job of the platform (the isolation audit now; per-minute metrics and restore-test validation
by the issues that add them). The code is `edumatrix_db/ops/runner.py`, packaged by `make runner-package`.

What `OpsRunner("<prefix>-ops-runner", ...)` declares, least privilege throughout:
- network: a security group of its own whose only egress is PostgreSQL to the database's security group
  (plus HTTPS to the runner's VPC endpoints, or to the VPC's route with `awsApiAccess: nat`), and an ingress
  rule on the database's security group from it; with `endpoints`, interface endpoints for Secrets Manager
  and CloudWatch (AWS Backup when it reports restore tests; SSM and ECS when an extraction pooler is declared)
  without private DNS (nothing else in the VPC changes), their policies naming this role;
- IAM: an execution role with one inline policy (ENI management, its own log group, GetSecretValue on the
  one secret, kms:Decrypt/GenerateDataKey only through Secrets Manager and SQS, SendMessage to its dead-letter
  queue, PutMetricData only in the platform's namespace); a scheduler role that may only invoke this function;
- the function (runtime `OPS_RUNNER_RUNTIME`, VPC-attached to the database's private subnets, reserved
  concurrency, environment encrypted with the CMK, JSON logs to a CMK-encrypted log group it cannot create
  itself, a CMK-encrypted SQS dead-letter queue for failed asynchronous invocations);
- one EventBridge Scheduler schedule per `ScheduledJob` (input `{"job": ...}`; the audit's runs every
  `auditEveryMinutes`), and one EventBridge rule per `EventRoute` (target input `{"job": ..., "event": <the
  event>}`, a Lambda permission for that rule);
- alarms: the function's Errors, the audit's findings (total), the lock-table use; to the stack's alarm
  topic (components/alarm_topic.py) or `opsRunner.alarmTopicArn`.

AWS limits the settings already respect (config/settings.py): memory 128-10,240 MB, timeout <= 900 s.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.network import allow_tcp
from config.monitoring import METRICS_NAMESPACE
from config.settings import OPS_RUNNER_RUNTIME, OpsRunnerSettings

HANDLER = "edumatrix_db.ops.runner.handler"
AUDIT_FINDINGS = "AuditFindings"
LOCK_TABLE_USE = "LockTableUse"
HTTPS = 443
# What a VPC-attached function needs to manage its network interfaces. EC2 grants the Describe actions only
# on "*" (AWSLambdaVPCAccessExecutionRole, the AWS-managed policy, lists these six on "*").
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
# SQS keeps a dead letter at most 14 days (MessageRetentionPeriod 60-1,209,600 s).
DLQ_RETENTION_SECONDS = 1_209_600
ERRORS_PERIOD_SECONDS = 300


@dataclass(frozen=True)
class EventRoute:
    """EventBridge events that run a job: an EventBridge rule matching `pattern`, its target the function."""

    name: str
    """Suffix of the rule's resource name (`<runner>-<name>`)."""
    job: str
    """The job of edumatrix_db/ops/runner.py the matching events run."""
    pattern: pulumi.Input[Mapping[str, Any]]
    """The rule's event pattern (may hold outputs, e.g. the instance's ARN)."""
    description: str


@dataclass(frozen=True)
class ScheduledJob:
    """An EventBridge Scheduler schedule whose input is `{"job": <job>}`."""

    name: str
    """Suffix of the schedule's name (`<runner>-<name>`)."""
    job: str
    expression: str
    """`rate(...)` or `cron(...)`, in UTC."""
    description: str
    max_event_age_seconds: int = 3600
    """A run that could not start within this long is dropped (60-86,400 s): the next one is due."""


@dataclass(frozen=True)
class OpsRunnerArgs:
    settings: OpsRunnerSettings
    environment: str
    region: str
    """The stack's region: names the VPC endpoints' services (`com.amazonaws.<region>.secretsmanager`)."""
    vpc_id: str
    subnet_ids: Sequence[str]
    """The database's private subnets (two or more availability zones)."""
    database_security_group_id: pulumi.Input[str]
    database_port: int
    database_address: pulumi.Input[str]
    database_name: str
    database_secret_arn: pulumi.Input[str]
    """The ops login's Secrets Manager secret (JSON username/password), encrypted with `kms_key_arn`."""
    kms_key_arn: pulumi.Input[str]
    """The platform CMK: log group, dead-letter queue, environment, the secret and (when declared) the topic."""
    package: Path
    """The zip `make runner-package` builds; a missing file is reported as a warning (plans still work)."""
    alarm_topic_arn: pulumi.Input[str]
    """What the runner's alarms page: the region's AlarmTopic (components/alarm_topic.py) or the stack's own."""
    model: Mapping[str, Any] = field(default_factory=dict)
    """The access model's stack inputs (`database`, `idleInTransactionMs`, `services` overrides) for the audit."""
    schedules: Sequence[ScheduledJob] = ()
    event_routes: Sequence[EventRoute] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    reports_restore_tests: bool = False
    """Its `restore-verify` job reports AWS Backup restore tests (PutRestoreValidationResult; an endpoint)."""
    pooler_parameters: str = ""
    """`/<prefix>/extraction/` when the stack has an extraction pooler (components/service_pooler.py): the
    cutover's switch, run with this role from this security group, puts those backend records (SSM) and looks up
    the pooler's tasks (ECS), so `endpoints` adds an endpoint for each."""


def package_hash(package: Path) -> str | None:
    """Base64 SHA-256 of the zip (Lambda's CodeSha256 form), or None when it is missing."""
    if not package.is_file():
        return None
    return base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()


RESTORE_RESULTS_SID = "ReportRestoreTestResults"


def restore_results_statement(region: str) -> dict[str, Any]:
    """backup:PutRestoreValidationResult has no resource-level permission (it takes a restore job id, and IAM
    lists no resource type for it), so it is allowed on "*" in the stack's region only."""
    return {"Sid": RESTORE_RESULTS_SID, "Effect": "Allow", "Action": "backup:PutRestoreValidationResult",
            "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": region}}}


def execution_policy(*, log_group_arn: str, secret_arn: str, key_arn: str, queue_arn: str, region: str,
                     dns_suffix: str = "amazonaws.com", restore_results: bool = False) -> str:
    """The runner role's one inline policy (JSON); `restore_results`: it reports AWS Backup restore tests."""
    via = {"secretsmanager": f"secretsmanager.{region}.{dns_suffix}", "sqs": f"sqs.{region}.{dns_suffix}"}
    extra = [restore_results_statement(region)] if restore_results else []
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ManageVpcNetworkInterfaces", "Effect": "Allow", "Action": list(ENI_ACTIONS), "Resource": "*"},
            {"Sid": "WriteItsOwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{log_group_arn}:*"},
            {"Sid": "ReadTheOpsLoginSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": secret_arn},
            {"Sid": "DecryptThroughSecretsManagerAndSqs", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": key_arn, "Condition": {"StringEquals": {"kms:ViaService": sorted(via.values())}}},
            {"Sid": "EncryptDeadLettersThroughSqs", "Effect": "Allow", "Action": "kms:GenerateDataKey",
             "Resource": key_arn, "Condition": {"StringEquals": {"kms:ViaService": via["sqs"]}}},
            {"Sid": "SendDeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
            {"Sid": "PublishMetricsInOneNamespace", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
             "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}},
            *extra,
        ],
    })


def assume_role_policy(service: str, account_id: str | None = None) -> str:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account_id:  # confused-deputy protection where the service passes it (EventBridge Scheduler does)
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account_id}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def invoke_policy(function_arn: str) -> str:
    """The scheduler role's one inline policy: invoke this function (any version or alias), nothing else."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "InvokeTheOpsRunner", "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": [function_arn, f"{function_arn}:*"]}]})


def endpoint_policy(role_arn: str, action: str | list[str], resource: str) -> str:
    """A VPC endpoint that serves only the runner's role, for its calls."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": role_arn}, "Action": action, "Resource": resource}]})


def _endpoint_policy_of(action: str | list[str], values: list[str]) -> str:
    role_arn, resource = values
    return endpoint_policy(role_arn, action, resource)


def event_input_template(job: str) -> str:
    """The rule target's input: the job, and the matched event as `event` (an EventBridge reserved variable)."""
    return '{"job": ' + json.dumps(job) + ', "event": <aws.events.event.json>}'


class OpsRunner(pulumi.ComponentResource):
    """`edumatrix:ops:OpsRunner`: the ops runner's function and everything it needs (see the module doc)."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    dead_letter_queue_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    alarm_topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: OpsRunnerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:ops:OpsRunner", name, None, opts)
        settings, tags = args.settings, dict(args.tags)
        too_long = [n for n in (name, *(f"{name}-{j.name}" for j in args.schedules)) if len(n) > 64]
        if too_long:  # Lambda function and EventBridge schedule names: 1-64 characters
            raise ValueError(f"{name}: {', '.join(too_long)} exceeds 64 characters")
        if len(args.subnet_ids) < 2:
            raise ValueError(f"{name}: subnet_ids needs subnets in at least two availability zones")
        child = pulumi.ResourceOptions(parent=self)
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        account_id = aws.get_caller_identity_output(opts=invoke_opts).account_id
        dns_suffix = aws.get_partition_output(opts=invoke_opts).dns_suffix

        # -- network ---------------------------------------------------------------------------------------
        group = aws.ec2.SecurityGroup(
            f"{name}-sg", description=f"{name}: the ops runner (PostgreSQL to the database only)",
            vpc_id=args.vpc_id, tags=tags, opts=child)
        allow_tcp(source=group.id, target=args.database_security_group_id, port=args.database_port,
                  egress_name=f"{name}-to-db", ingress_name=f"{name}-db-from-runner",
                  egress_description="PostgreSQL to the database", ingress_description=f"PostgreSQL from {name}",
                  tags=tags, opts=child)

        # -- logs, dead letters, role ------------------------------------------------------------------------
        logs = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=f"/aws/lambda/{name}", kms_key_id=args.kms_key_arn,
            retention_in_days=settings.log_retention_days, tags=tags, opts=child)
        queue = aws.sqs.Queue(
            f"{name}-dlq", name=f"{name}-dlq", kms_master_key_id=args.kms_key_arn,
            kms_data_key_reuse_period_seconds=300, message_retention_seconds=DLQ_RETENTION_SECONDS, tags=tags,
            opts=child)
        role = aws.iam.Role(
            f"{name}-role", description=f"{name}: the ops runner's execution role",
            assume_role_policy=assume_role_policy("lambda.amazonaws.com"), tags=tags, opts=child)
        policy = aws.iam.RolePolicy(
            f"{name}-policy", role=role.id,
            policy=pulumi.Output.all(logs.arn, args.database_secret_arn, args.kms_key_arn, queue.arn,
                                     dns_suffix).apply(
                lambda v: execution_policy(log_group_arn=v[0], secret_arn=v[1], key_arn=v[2], queue_arn=v[3],
                                           region=args.region, dns_suffix=v[4],
                                           restore_results=args.reports_restore_tests)),
            opts=child)

        environment: dict[str, pulumi.Input[str]] = {
            "EDUMATRIX_ENVIRONMENT": args.environment,
            "EDUMATRIX_DB_SECRET_ARN": args.database_secret_arn,
            "EDUMATRIX_DB_HOST": args.database_address,
            "EDUMATRIX_DB_PORT": str(args.database_port),
            "EDUMATRIX_DB_NAME": args.database_name,
            "EDUMATRIX_DB_MODEL": json.dumps(dict(args.model), sort_keys=True),
            "EDUMATRIX_METRICS_NAMESPACE": METRICS_NAMESPACE,
        }
        self.aws_endpoints: dict[str, pulumi.Output[str]] = {}
        """With awsApiAccess endpoints: EDUMATRIX_<SERVICE>_ENDPOINT -> its URL (the function's environment; the
        stack output opsRunnerAwsEndpoints, which the cutover's CLI reads with --stack-outputs)."""
        if settings.aws_api_access == "endpoints":
            self.aws_endpoints = self._endpoints(name, args, group, role, tags)
            environment.update(self.aws_endpoints)
        else:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-aws-apis", security_group_id=group.id, ip_protocol="tcp", from_port=HTTPS,
                to_port=HTTPS, cidr_ipv4="0.0.0.0/0", tags=tags, opts=child,
                description="HTTPS to Secrets Manager and CloudWatch through the VPC's route (NAT)")

        # -- the function ----------------------------------------------------------------------------------
        source_code_hash = package_hash(args.package)
        if source_code_hash is None:
            pulumi.log.warn(f"{args.package} is missing: the ops runner's code; run `make runner-package` "
                            "before `pulumi up` (README, 'The ops runner')")
        function = aws.lambda_.Function(
            f"{name}-function",
            name=name,
            description="The platform's ops runner: scheduled and event-triggered jobs inside the VPC",
            role=role.arn,
            runtime=OPS_RUNNER_RUNTIME,
            handler=HANDLER,
            code=pulumi.FileArchive(str(args.package)),
            source_code_hash=source_code_hash,
            architectures=["x86_64"],  # the package's wheels are manylinux x86_64
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            reserved_concurrent_executions=settings.reserved_concurrency,
            vpc_config={"subnet_ids": list(args.subnet_ids), "security_group_ids": [group.id]},
            kms_key_arn=args.kms_key_arn,
            environment={"variables": environment},
            dead_letter_config={"target_arn": queue.arn},
            logging_config={"log_format": "JSON", "log_group": logs.name, "application_log_level": "INFO",
                            "system_log_level": "WARN"},
            tags=tags,
            # The role must hold its ENI permissions when Lambda attaches the function to the VPC.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs, policy]),
        )

        # -- schedule and events ---------------------------------------------------------------------------
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler-role", description=f"{name}: EventBridge Scheduler invokes the ops runner",
            assume_role_policy=account_id.apply(lambda a: assume_role_policy("scheduler.amazonaws.com", a)),
            tags=tags, opts=child)
        scheduler_policy = aws.iam.RolePolicy(
            f"{name}-scheduler-policy", role=scheduler_role.id, policy=function.arn.apply(invoke_policy),
            opts=child)
        for scheduled in args.schedules:
            aws.scheduler.Schedule(
                f"{name}-{scheduled.name}-schedule",
                name=f"{name}-{scheduled.name}",
                description=scheduled.description,
                schedule_expression=scheduled.expression,
                flexible_time_window={"mode": "OFF"},
                target={"arn": function.arn, "role_arn": scheduler_role.arn,
                        "input": json.dumps({"job": scheduled.job}),
                        "retry_policy": {"maximum_event_age_in_seconds": scheduled.max_event_age_seconds,
                                         "maximum_retry_attempts": 3}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]),
            )
        for route in args.event_routes:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{route.name}", description=route.description,
                event_pattern=pulumi.Output.json_dumps(route.pattern), tags=tags, opts=child)
            permission = aws.lambda_.Permission(
                f"{name}-{route.name}-invoke", action="lambda:InvokeFunction", function=function.name,
                principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
            aws.cloudwatch.EventTarget(
                f"{name}-{route.name}-target", rule=rule.name, arn=function.arn,
                input_transformer={"input_template": event_input_template(route.job)},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]))

        # -- alarms ----------------------------------------------------------------------------------------
        interval_seconds = settings.audit_every_minutes * 60  # the audit's schedule (components/platform.py)
        topic_arn = pulumi.Output.from_input(args.alarm_topic_arn)
        def alarm(suffix: str, description: str, **metric: Any) -> None:
            aws.cloudwatch.MetricAlarm(f"{name}-{suffix}", alarm_description=description, evaluation_periods=1,
                                       alarm_actions=[topic_arn], ok_actions=[topic_arn], tags=tags, opts=child,
                                       **metric)

        alarm("errors",
              f"The ops runner {name} failed (a job raised, timed out or could not connect); its log group says "
              "why; failed scheduled runs wait in the dead-letter queue",
              namespace="AWS/Lambda", metric_name="Errors", dimensions={"FunctionName": function.name},
              statistic="Sum", period=ERRORS_PERIOD_SECONDS, threshold=0, comparison_operator="GreaterThanThreshold",
              treat_missing_data="notBreaching")
        # The audit's figures: one datapoint per run; the state is kept between runs ("ignore"), so a period the
        # next run has not reached yet neither clears nor raises the alarm.
        for suffix, metric, threshold, operator, description in (
            ("audit-findings", AUDIT_FINDINGS, 0, "GreaterThanThreshold",
             f"The isolation audit ({args.environment}) reports findings: the function's log lists each with its "
             "fix; per rule and per service: metric AuditFindings"),
            ("lock-table", LOCK_TABLE_USE, settings.lock_table_alarm_percent, "GreaterThanOrEqualToThreshold",
             f"The shared lock table ({args.environment}) is {settings.lock_table_alarm_percent}% used or more: "
             "one role holding many advisory locks can make every new connection fail with 'out of shared "
             "memory'"),
        ):
            alarm(suffix, description, namespace=METRICS_NAMESPACE, metric_name=metric,
                  dimensions={"Environment": args.environment}, statistic="Maximum", period=interval_seconds,
                  threshold=threshold, comparison_operator=operator, treat_missing_data="ignore")

        self.function_name = function.name
        self.function_arn = function.arn
        self.role_arn = role.arn
        self.security_group_id = group.id
        self.dead_letter_queue_arn = queue.arn
        self.log_group_name = logs.name
        self.alarm_topic_arn = topic_arn
        self.register_outputs({
            "functionName": self.function_name,
            "functionArn": self.function_arn,
            "roleArn": self.role_arn,
            "securityGroupId": self.security_group_id,
            "deadLetterQueueArn": self.dead_letter_queue_arn,
            "logGroupName": self.log_group_name,
            "alarmTopicArn": self.alarm_topic_arn,
        })

    def _endpoints(self, name: str, args: OpsRunnerArgs, group: aws.ec2.SecurityGroup, role: aws.iam.Role,
                   tags: dict[str, str]) -> dict[str, pulumi.Output[str]]:
        """Interface endpoints for the AWS APIs the runner calls, reachable only from its security group,
        serving only its role. No private DNS: other workloads in the VPC keep resolving AWS as before; the
        runner is given the endpoints' own names (environment variables read by `aws_clients`)."""
        child = pulumi.ResourceOptions(parent=self)
        endpoints_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg", description=f"{name}: its VPC endpoints (HTTPS from the runner only)",
            vpc_id=args.vpc_id, tags=tags, opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-from-runner", security_group_id=endpoints_group.id, ip_protocol="tcp",
            from_port=HTTPS, to_port=HTTPS, referenced_security_group_id=group.id,
            description=f"HTTPS from {name}", tags=tags, opts=child)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-endpoints", security_group_id=group.id, ip_protocol="tcp", from_port=HTTPS, to_port=HTTPS,
            referenced_security_group_id=endpoints_group.id, description="HTTPS to its VPC endpoints", tags=tags,
            opts=child)
        calls: dict[str, tuple[str, str | list[str], pulumi.Input[str]]] = {
            "secretsmanager": ("EDUMATRIX_SECRETSMANAGER_ENDPOINT", "secretsmanager:GetSecretValue",
                               args.database_secret_arn),
            "monitoring": ("EDUMATRIX_CLOUDWATCH_ENDPOINT", "cloudwatch:PutMetricData", "*"),
        }
        if args.reports_restore_tests:
            calls["backup"] = ("EDUMATRIX_BACKUP_ENDPOINT", "backup:PutRestoreValidationResult", "*")
        if args.pooler_parameters:
            # The extraction cutover's switch (edumatrix_db/ops/pooler_tasks.py reads these variables): the
            # backend records under the stack's prefix, and the pooler's tasks. The role's own policy
            # (components/service_pooler.py runner_policy) narrows each to one parameter and one cluster.
            invoke_opts = pulumi.InvokeOutputOptions(parent=self)
            records = pulumi.Output.all(aws.get_partition_output(opts=invoke_opts).partition,
                                        aws.get_caller_identity_output(opts=invoke_opts).account_id).apply(
                lambda v: f"arn:{v[0]}:ssm:{args.region}:{v[1]}:parameter{args.pooler_parameters}*")
            calls["ssm"] = ("EDUMATRIX_SSM_ENDPOINT", ["ssm:GetParameter", "ssm:PutParameter"], records)
            calls["ecs"] = ("EDUMATRIX_ECS_ENDPOINT", ["ecs:DescribeServices", "ecs:DescribeTasks", "ecs:ListTasks"],
                            "*")
        urls: dict[str, pulumi.Output[str]] = {}
        for service, (variable, action, resource) in calls.items():
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{service}",
                vpc_id=args.vpc_id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                subnet_ids=list(args.subnet_ids),
                security_group_ids=[endpoints_group.id],
                private_dns_enabled=False,
                policy=pulumi.Output.all(role.arn, resource).apply(functools.partial(_endpoint_policy_of, action)),
                tags=tags,
                opts=child,
            )
            urls[variable] = endpoint.dns_entries.apply(
                lambda entries: f"https://{entries[0].dns_name}" if entries else "")
        return urls
