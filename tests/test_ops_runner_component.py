"""The ops runner as the program declares it (components/ops_runner.py), under the SDK's mocks: where it runs,
what it may do, what invokes it, what pages someone; and the `opsRunner` settings' errors."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from tests.region_support import copy_stacks, edit_stack, stack_errors

RUNNER = "edumatrix:ops:OpsRunner"
FUNCTION = "aws:lambda/function:Function"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SCHEDULE = "aws:scheduler/schedule:Schedule"
INSTANCE = "aws:rds/instance:Instance"

# What one runner declares (type -> count) with the default `awsApiAccess: endpoints`.
RUNNER_RESOURCES = Counter({
    "aws:ec2/securityGroup:SecurityGroup": 2,            # the runner's, its endpoints'
    EGRESS: 2,                                           # to the database, to its endpoints
    INGRESS: 2,                                          # on the database's group, on the endpoints' group
    "aws:ec2/vpcEndpoint:VpcEndpoint": 3,                # Secrets Manager, CloudWatch, AWS Backup (issue 15)
    "aws:cloudwatch/logGroup:LogGroup": 1,
    "aws:sqs/queue:Queue": 1,
    ROLE: 2,                                             # execution role, scheduler role
    ROLE_POLICY: 2,
    FUNCTION: 1,
    SCHEDULE: 3,                                         # the audit, the metrics, the heartbeat (issue 15)
    # instance events; AWS Backup's restore tests and backup jobs (issue 15, components/platform.py)
    "aws:cloudwatch/eventRule:EventRule": 3,
    "aws:cloudwatch/eventTarget:EventTarget": 3,
    "aws:lambda/permission:Permission": 3,
    ALARM: 3,                                            # errors, audit findings, lock table
})

Plans = dict[str, Recording]  # the `plans` fixture: a recording per primary stack


@pytest.fixture(scope="module")
def plans(planner: Planner) -> Plans:
    """The repository's primary stacks, planned once for the session (tests/conftest.py)."""
    return {stack: planner.plan(stack) for stack in ("prod", "staging", "dev")}


def runner_children(recording: Recording) -> list[RecordedResource]:
    runner = recording.one(RUNNER)
    return recording.children_of(runner.urn)


def child(recording: Recording, suffix: str) -> RecordedResource:
    found = [r for r in runner_children(recording) if r.name.endswith(suffix)]
    assert len(found) == 1, (suffix, [r.name for r in found])
    return found[0]


def primary(recording: Recording) -> RecordedResource:
    return next(r for r in recording.of_type(INSTANCE) if not r.inputs.get("replicateSourceDb"))


def statements(policy: RecordedResource) -> list[dict[str, Any]]:
    return list(json.loads(policy.inputs["policy"])["Statement"])


# staging extracts `feedback` through the platform's pooler: the cutover's switch needs SSM and ECS (issue 13).
POOLER_ENDPOINTS = Counter({"aws:ec2/vpcEndpoint:VpcEndpoint": 2})


@pytest.mark.parametrize("stack", ["prod", "staging", "dev"])
def test_each_primary_stack_declares_the_runner_with_exactly_its_resources(plans: Plans, stack: str) -> None:
    expected = RUNNER_RESOURCES + (POOLER_ENDPOINTS if stack == "staging" else Counter())
    assert Counter(r.type for r in runner_children(plans[stack])) == expected


def test_the_local_and_region_stacks_have_no_runner(planner: Planner) -> None:
    assert planner.plan("local").of_type(RUNNER) == []
    assert planner.plan("prod-eu-west-1").of_type(RUNNER) == []


def test_the_function_runs_the_packaged_handler_on_a_supported_runtime_within_lambda_limits(plans: Plans) -> None:
    function = child(plans["prod"], "-function")
    assert (function.inputs["handler"], function.inputs["runtime"]) == ("edumatrix_db.ops.runner.handler",
                                                                       "python3.13")
    assert 128 <= function.inputs["memorySize"] <= 10240
    assert 1 <= function.inputs["timeout"] <= 900
    assert function.inputs["reservedConcurrentExecutions"] == 2
    assert function.inputs["architectures"] == ["x86_64"]


def test_the_function_is_attached_to_the_databases_private_subnets_with_its_own_group(plans: Plans) -> None:
    recording = plans["prod"]
    function = child(recording, "-function")
    assert recording.settings.network is not None  # prod is an AWS stack: it has a network
    assert function.inputs["vpcConfig"]["subnetIds"] == list(recording.settings.network.subnet_ids)
    assert function.inputs["vpcConfig"]["securityGroupIds"] == [child(recording, "-ops-runner-sg").id]


def test_the_database_security_group_admits_the_runner_on_the_database_port(plans: Plans) -> None:
    recording = plans["prod"]
    database_group = primary(recording).inputs["vpcSecurityGroupIds"][0]
    runner_group = child(recording, "-ops-runner-sg").id
    ingress = child(recording, "-db-from-runner").inputs
    assert (ingress["securityGroupId"], ingress["referencedSecurityGroupId"]) == (database_group, runner_group)
    assert (ingress["fromPort"], ingress["toPort"], ingress["ipProtocol"]) == (5432, 5432, "tcp")


def test_the_runners_only_egress_is_postgresql_to_the_database_and_https_to_its_endpoints(plans: Plans) -> None:
    recording = plans["prod"]
    database_group = primary(recording).inputs["vpcSecurityGroupIds"][0]
    egress = {r.name.rsplit("-", 1)[-1]: r.inputs for r in runner_children(recording) if r.type == EGRESS}
    assert (egress["db"]["referencedSecurityGroupId"], egress["db"]["fromPort"]) == (database_group, 5432)
    assert (egress["endpoints"]["referencedSecurityGroupId"], egress["endpoints"]["fromPort"]) == (
        child(recording, "-endpoints-sg").id, 443)
    assert not [e for e in egress.values() if "cidrIpv4" in e]


def test_the_vpc_endpoints_change_nothing_else_in_the_vpc_and_serve_only_the_runner(plans: Plans) -> None:
    recording = plans["prod"]
    role_arn = child(recording, "-ops-runner-role").props["arn"]
    function = child(recording, "-function")
    for service, variable in (("secretsmanager", "EDUMATRIX_SECRETSMANAGER_ENDPOINT"),
                              ("monitoring", "EDUMATRIX_CLOUDWATCH_ENDPOINT")):
        endpoint = child(recording, f"-{service}")
        assert endpoint.inputs["privateDnsEnabled"] is False
        assert endpoint.inputs["serviceName"] == f"com.amazonaws.us-east-1.{service}"
        assert {s["Principal"]["AWS"] for s in statements(endpoint)} == {role_arn}
        assert function.inputs["environment"]["variables"][variable].startswith("https://vpce-")


def test_a_stack_with_an_extraction_pooler_gives_the_runner_ssm_and_ecs_endpoints_for_the_switch(plans: Plans) -> None:
    recording = plans["staging"]
    role_arn = child(recording, "-ops-runner-role").props["arn"]
    variables = child(recording, "-function").inputs["environment"]["variables"]
    found = {}
    for service, variable in (("ssm", "EDUMATRIX_SSM_ENDPOINT"), ("ecs", "EDUMATRIX_ECS_ENDPOINT")):
        endpoint = child(recording, f"-ops-runner-{service}")
        [statement] = statements(endpoint)
        found[service] = (endpoint.inputs["privateDnsEnabled"], endpoint.inputs["serviceName"],
                          statement["Principal"]["AWS"], statement["Action"], statement["Resource"],
                          variables[variable].startswith("https://vpce-"))
    assert found == {
        "ssm": (False, "com.amazonaws.us-east-1.ssm", role_arn, ["ssm:GetParameter", "ssm:PutParameter"],
                "arn:aws:ssm:us-east-1:123456789012:parameter/edumatrix-staging/extraction/*", True),
        "ecs": (False, "com.amazonaws.us-east-1.ecs", role_arn,
                ["ecs:DescribeServices", "ecs:DescribeTasks", "ecs:ListTasks"], "*", True),
    }


def test_a_stack_without_an_extraction_pooler_has_no_ssm_or_ecs_endpoint(plans: Plans) -> None:
    names = {r.name for r in runner_children(plans["prod"])}
    assert {"edumatrix-prod-ops-runner-ssm", "edumatrix-prod-ops-runner-ecs"} & names == set()


def test_the_execution_policy_names_only_the_runners_secret_key_queue_log_group_and_namespace(plans: Plans) -> None:
    recording = plans["prod"]
    function = child(recording, "-function")
    variables = function.inputs["environment"]["variables"]
    policy = child(recording, "-ops-runner-policy")
    assert policy.inputs["role"] == child(recording, "-ops-runner-role").id
    by_sid = {s["Sid"]: s for s in statements(policy)}
    assert by_sid["ReadTheOpsLoginSecret"]["Resource"] == variables["EDUMATRIX_DB_SECRET_ARN"]
    assert by_sid["DecryptThroughSecretsManagerAndSqs"]["Resource"] == recording.outputs["kmsKeyArn"]
    assert by_sid["DecryptThroughSecretsManagerAndSqs"]["Condition"] == {"StringEquals": {"kms:ViaService": [
        "secretsmanager.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com"]}}
    assert by_sid["EncryptDeadLettersThroughSqs"]["Resource"] == recording.outputs["kmsKeyArn"]
    assert by_sid["SendDeadLetters"]["Resource"] == function.inputs["deadLetterConfig"]["targetArn"]
    assert by_sid["WriteItsOwnLogs"]["Resource"] == child(recording, "-logs").props["arn"] + ":*"
    assert by_sid["PublishMetricsInOneNamespace"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "EduMatrix/Database"}}
    on_everything = {s["Sid"] for s in by_sid.values() if s["Resource"] == "*"}
    # PutRestoreValidationResult has no resource-level permission: "*" in the stack's region (issue 15)
    assert on_everything == {"ManageVpcNetworkInterfaces", "PublishMetricsInOneNamespace", "ReportRestoreTestResults"}
    assert by_sid["ReportRestoreTestResults"]["Condition"] == {"StringEquals": {"aws:RequestedRegion": "us-east-1"}}
    assert not [a for s in by_sid.values() for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
                if a.endswith("*")]


def test_the_function_logs_to_its_cmk_encrypted_group_and_dead_letters_to_a_cmk_encrypted_queue(plans: Plans) -> None:
    recording = plans["prod"]
    function, logs, queue = (child(recording, s) for s in ("-function", "-logs", "-dlq"))
    assert function.inputs["loggingConfig"]["logGroup"] == logs.inputs["name"]
    assert logs.inputs["name"] == "/aws/lambda/edumatrix-prod-ops-runner"
    assert logs.inputs["kmsKeyId"] == queue.inputs["kmsMasterKeyId"] == function.inputs["kmsKeyArn"] == (
        recording.outputs["kmsKeyArn"])
    assert function.inputs["deadLetterConfig"]["targetArn"] == queue.props["arn"]
    assert child(recording, "-logs").urn in function.dependencies  # created first: Lambda cannot make its own


def test_the_audit_runs_on_a_schedule_whose_role_may_only_invoke_the_runner(plans: Plans) -> None:
    recording = plans["prod"]
    function = child(recording, "-function")
    schedule = child(recording, "-audit-schedule").inputs
    assert schedule["scheduleExpression"] == "rate(60 minutes)"
    assert json.loads(schedule["target"]["input"]) == {"job": "audit"}
    assert schedule["target"]["arn"] == function.props["arn"]
    role = child(recording, "-scheduler-role")
    assert schedule["target"]["roleArn"] == role.props["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "scheduler.amazonaws.com"},
                      "Action": "sts:AssumeRole",
                      "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]
    assert statements(child(recording, "-scheduler-policy")) == [{
        "Sid": "InvokeTheOpsRunner", "Effect": "Allow", "Action": "lambda:InvokeFunction",
        "Resource": [function.props["arn"], function.props["arn"] + ":*"]}]


def test_the_metrics_run_every_minute_and_a_late_run_is_dropped(plans: Plans) -> None:
    recording = plans["prod"]
    schedule = child(recording, "-metrics-schedule").inputs
    assert schedule["scheduleExpression"] == "rate(1 minute)"
    assert json.loads(schedule["target"]["input"]) == {"job": "metrics"}
    assert schedule["target"]["arn"] == child(recording, "-function").props["arn"]
    assert schedule["target"]["retryPolicy"]["maximumEventAgeInSeconds"] == 60


def test_instance_events_reach_the_runner_wrapped_as_a_job(plans: Plans) -> None:
    recording = plans["prod"]
    rule = child(recording, "-instance-events")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail"]["SourceArn"] == [recording.outputs["arn"]]
    target = child(recording, "-instance-events-target").inputs
    assert target["inputTransformer"]["inputTemplate"] == '{"job": "ping", "event": <aws.events.event.json>}'
    permission = child(recording, "-instance-events-invoke").inputs
    assert (permission["principal"], permission["sourceArn"]) == ("events.amazonaws.com", rule.props["arn"])


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_alarms_page_the_stacks_alarm_topic(plans: Plans, stack: str) -> None:
    recording = plans[stack]
    topic = recording.one("edumatrix:monitoring:AlarmTopic")
    runner_alarms = [r for r in runner_children(recording) if r.type == ALARM]
    assert runner_alarms
    for alarm in runner_alarms:
        assert alarm.inputs["alarmActions"] == [recording.outputs["alarmTopicArn"]]
    assert recording.outputs["alarmTopicArn"] in {r.props["arn"] for r in recording.of_type("aws:sns/topic:Topic")
                                                  if r.parent == topic.urn}


def test_the_alarms_watch_errors_audit_findings_and_lock_table_use(plans: Plans) -> None:
    recording = plans["prod"]
    errors = child(recording, "-errors").inputs
    assert (errors["namespace"], errors["metricName"], errors["dimensions"]) == (
        "AWS/Lambda", "Errors", {"FunctionName": "edumatrix-prod-ops-runner"})
    findings = child(recording, "-audit-findings").inputs
    assert (findings["namespace"], findings["metricName"], findings["dimensions"], findings["threshold"]) == (
        "EduMatrix/Database", "AuditFindings", {"Environment": "prod"}, 0)
    assert findings["period"] == 3600
    lock = child(recording, "-lock-table").inputs
    assert (lock["metricName"], lock["threshold"], lock["comparisonOperator"]) == (
        "LockTableUse", 50, "GreaterThanOrEqualToThreshold")


def test_the_runner_knows_the_stacks_access_model_inputs(plans: Plans) -> None:
    variables = child(plans["dev"], "-function").inputs["environment"]["variables"]
    model = json.loads(variables["EDUMATRIX_DB_MODEL"])
    assert model["services"]["students_platform"] == {"pool_size": 10}  # dev's override
    assert (variables["EDUMATRIX_ENVIRONMENT"], variables["EDUMATRIX_DB_NAME"]) == ("dev", "edumatrix")
    assert variables["EDUMATRIX_DB_HOST"] == plans["dev"].outputs["address"]


# -- the package and the settings --------------------------------------------------------------------------

def plan_with(tmp_path: Path, runner_settings: str, stack: str = "dev") -> Recording:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, stack, "  edumatrix-db:network:", f"  edumatrix-db:opsRunner: {runner_settings}\n"
               "  edumatrix-db:network:")
    return Planner(stacks).plan(stack)


def test_the_zip_is_deployed_with_its_hash_so_only_a_changed_package_redeploys(tmp_path: Path) -> None:
    package = tmp_path / "ops-runner.zip"
    package.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    function = child(plan_with(tmp_path, f"{{packagePath: {package}}}"), "-function")
    assert function.inputs["code"] == {"FileArchive": str(package)}
    assert function.inputs["sourceCodeHash"] == base64.b64encode(hashlib.sha256(package.read_bytes()).digest()).decode()


@pytest.fixture(scope="module")
def nat_without_package(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """dev with `awsApiAccess: nat` and a package path where no zip was built."""
    tmp = tmp_path_factory.mktemp("nat")
    return plan_with(tmp, f"{{awsApiAccess: nat, packagePath: {tmp / 'absent.zip'}}}")


def test_a_missing_package_still_plans_and_warns_what_to_run(nat_without_package: Recording) -> None:
    assert "sourceCodeHash" not in child(nat_without_package, "-function").inputs
    assert any("absent.zip is missing" in w and "make runner-package" in w for w in nat_without_package.warnings)


def test_nat_access_declares_no_endpoints_and_opens_https_egress_only(nat_without_package: Recording) -> None:
    types = Counter(r.type for r in runner_children(nat_without_package))
    assert types["aws:ec2/vpcEndpoint:VpcEndpoint"] == 0
    https = child(nat_without_package, "-to-aws-apis").inputs
    assert (https["cidrIpv4"], https["fromPort"], https["toPort"]) == ("0.0.0.0/0", 443, 443)
    variables = child(nat_without_package, "-function").inputs["environment"]["variables"]
    assert "EDUMATRIX_SECRETSMANAGER_ENDPOINT" not in variables


def test_dev_may_turn_the_runner_off(tmp_path: Path) -> None:
    assert plan_with(tmp_path, "{enabled: false}").of_type(RUNNER) == []


def errors_for(tmp_path: Path, stack: str, runner_settings: str) -> str:
    anchor = "  edumatrix-db:network:" if stack != "prod-eu-west-1" else "  edumatrix-db:region:"
    return stack_errors(tmp_path, stack, f"  edumatrix-db:opsRunner: {runner_settings}", anchor)


def test_prod_cannot_turn_the_audit_off(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "prod", "{enabled: false}")
    assert "Pulumi.prod.yaml: edumatrix-db:opsRunner.enabled: the isolation audit cannot be off in prod" in message


def test_a_region_stack_has_no_runner_of_its_own(tmp_path: Path) -> None:
    message = errors_for(tmp_path, "prod-eu-west-1", "{memoryMb: 512}")
    assert "edumatrix-db:opsRunner: only a primary AWS stack runs the ops runner" in message
    assert "fix: remove the key" in message


@pytest.mark.parametrize(("settings", "key", "text"), [
    ("{memoryMb: 20000}", "opsRunner.memoryMb", "less than or equal to 10240"),
    ("{timeoutSeconds: 901}", "opsRunner.timeoutSeconds", "less than or equal to 900"),
    ("{timeoutSeconds: 600, auditEveryMinutes: 5}", "opsRunner", "must be shorter than the audit interval"),
    ("{awsApiAccess: public}", "opsRunner.awsApiAccess", "use one of: endpoints, nat"),
    ("{reservedConcurency: 1}", "opsRunner.reservedConcurency", "did you mean 'reservedConcurrency'?"),
])
def test_impossible_runner_settings_name_the_key(tmp_path: Path, settings: str, key: str, text: str) -> None:
    message = errors_for(tmp_path, "dev", settings)
    assert f"Pulumi.dev.yaml: edumatrix-db:{key}" in message
    assert text in message


def test_the_defaults_are_the_production_posture() -> None:
    runner = load_stack("prod").ops_runner
    assert (runner.enabled, runner.aws_api_access, runner.audit_every_minutes, runner.log_retention_days) == (
        True, "endpoints", 60, 365)
    assert copy.deepcopy(runner) == runner


def test_the_heartbeat_the_pitr_validation_reads_is_kept_scheduled_daily(plans: Plans) -> None:
    schedule = child(plans["prod"], "-heartbeat-schedule").inputs
    assert schedule["scheduleExpression"] == "rate(1 day)"
    assert json.loads(schedule["target"]["input"]) == {"job": "heartbeat-schedule"}
