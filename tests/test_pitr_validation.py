"""components/pitr_validation.py under the mocks: the monthly point-in-time-restore validation of prod as the
state machine, its role, schedule, network, logs and alarms are declared; the loader's rules for its settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, Recording
from policy import backup, lambdas
from tests.policy.fixtures import messages_after_edit
from tests.region_support import copy_stacks, edit_stack, stack_errors

MACHINE = "aws:sfn/stateMachine:StateMachine"


def _mine(prod: Recording, type_token: str) -> list[Any]:
    return [r for r in prod.of_type(type_token) if "pitr-validation" in r.urn]


def _definition(prod: Recording) -> dict[str, Any]:
    (machine,) = prod.of_type(MACHINE)
    return json.loads(machine.inputs["definition"])


def _statements(resource: Any) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(resource.inputs["policy"])["Statement"]}


def test_prod_restores_its_instance_monthly_into_a_private_single_az_copy_aws_backup_skips(prod: Recording) -> None:
    restore = _definition(prod)["States"]["Restore"]
    params = restore["Parameters"]
    assert restore["Resource"] == "arn:aws:states:::aws-sdk:rds:restoreDBInstanceToPointInTime"
    assert (params["SourceDBInstanceIdentifier"], params["TargetDBInstanceIdentifier"]) == (
        "edumatrix-prod", "edumatrix-prod-pitr-check")
    assert (params["MultiAZ"], params["PubliclyAccessible"], params["DbInstanceClass"]) == (False, False,
                                                                                            "db.t4g.micro")
    assert {"Key": "edumatrix-backup", "Value": "excluded"} in params["Tags"]
    (schedule,) = _mine(prod, "aws:scheduler/schedule:Schedule")
    assert schedule.inputs["scheduleExpression"] == "cron(0 4 1 * ? *)"


def test_the_restore_time_is_the_executions_start_and_the_validation_gets_it(prod: Recording) -> None:
    states = _definition(prod)["States"]
    assert states["Start"]["Parameters"]["restoreTime.$"] == "$$.Execution.StartTime"
    assert states["Restore"]["Parameters"]["RestoreTime.$"] == "$.restoreTime"
    event = states["Validate"]["Parameters"]["Payload"]["event"]
    assert (event["restoreTime.$"], event["restoreRequestedAt.$"]) == ("$.restoreTime", "$.restoreRequestedAt.at")
    assert states["Validate"]["Parameters"]["Payload"]["job"] == "pitr-verify"


def test_the_copy_is_deleted_without_snapshot_or_retained_backups_on_success_and_on_failure(prod: Recording) -> None:
    states = _definition(prod)["States"]
    for name in ("Delete", "CleanUp"):
        assert states[name]["Parameters"] == {"DbInstanceIdentifier": "edumatrix-prod-pitr-check",
                                              "SkipFinalSnapshot": True, "DeleteAutomatedBackups": True}
    assert (states["Delete"]["Next"], states["CleanUp"]["Next"]) == ("Validated", "ValidationFailed")
    assert [c["Next"] for c in states["Validate"]["Catch"]] == ["CleanUp"]
    assert [c["Next"] for c in states["Describe"]["Catch"]] == ["CleanUp"]


def test_waiting_for_the_copy_is_bounded_by_the_setting(prod: Recording) -> None:
    states = _definition(prod)["States"]
    bound = [c for c in states["Available?"]["Choices"] if c.get("Variable") == "$.polls.n"]
    assert bound == [{"Variable": "$.polls.n", "NumericGreaterThanEquals": 240 * 60 // 300, "Next": "TooSlow"}]
    assert _definition(prod)["TimeoutSeconds"] > 240 * 60


def test_the_role_restores_only_the_shared_instance_into_the_copy_and_invokes_only_the_runner(prod: Recording) -> None:
    (policy,) = [p for p in _mine(prod, "aws:iam/rolePolicy:RolePolicy") if "scheduler" not in p.urn]
    statements = _statements(policy)
    restore = statements["RestoreTheSharedInstanceIntoTheCheckCopy"]["Resource"]
    assert [r for r in restore if ":db:" in r] == ["arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod",
                                                   "arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod-pitr-check"]
    assert statements["TagDescribeAndDeleteTheCheckCopyOnly"]["Resource"] == \
        "arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod-pitr-check"
    assert statements["InvokeTheOpsRunner"]["Action"] == "lambda:InvokeFunction"
    assert all(s["Resource"] != "*" for sid, s in statements.items() if sid != "DeliverExecutionLogs")


def test_the_copys_security_group_admits_only_the_ops_runner(prod: Recording) -> None:
    (rule,) = _mine(prod, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    (runner_group,) = [g for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup") if "ops-runner" in g.urn
                       and "endpoints" not in g.urn]
    assert rule.inputs["referencedSecurityGroupId"] == runner_group.id


def test_failed_or_timed_out_validations_page_the_regions_alarm_topic(prod: Recording) -> None:
    alarms = {a.inputs["metricName"]: a for a in _mine(prod, "aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert set(alarms) == {"ExecutionsFailed", "ExecutionsTimedOut"}
    (topic,) = [t for t in prod.of_type("aws:sns/topic:Topic") if "alarm" in t.urn]
    assert {a.inputs["alarmActions"][0] for a in alarms.values()} == {topic.props["arn"]}


def test_the_state_machine_logs_everything_to_a_cmk_log_group(prod: Recording) -> None:
    (machine,) = prod.of_type(MACHINE)
    (logs,) = _mine(prod, "aws:cloudwatch/logGroup:LogGroup")
    assert machine.inputs["loggingConfiguration"]["level"] == "ALL"
    assert machine.inputs["loggingConfiguration"]["logDestination"] == f"{logs.props['arn']}:*"
    assert logs.inputs["kmsKeyId"]


def test_a_schedule_role_that_may_invoke_instead_of_start_the_state_machine_is_refused(prod: Recording) -> None:
    def invoke(props: dict[str, Any]) -> None:
        props["policy"] = props["policy"].replace("states:StartExecution", "lambda:InvokeFunction")

    (which,) = [i for i, p in enumerate(prod.of_type("aws:iam/rolePolicy:RolePolicy"))
                if p.urn.endswith("pitr-validation-scheduler-policy")]
    found = messages_after_edit(prod.resources, "aws:iam/rolePolicy:RolePolicy", invoke,
                                [lambdas.scheduler_role_least_privilege, backup.pitr_validation_state_machine],
                                which=which)
    (message,) = found["scheduler-role-least-privilege"]
    assert "only states:StartExecution on the target state machine" in message


def test_without_the_ops_runner_and_unasked_the_validation_is_left_out(planner: Planner, tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "dev", "  edumatrix-db:network:", "  edumatrix-db:opsRunner: {enabled: false}\n"
                                                         "  edumatrix-db:network:")
    assert Planner(stacks).plan("dev").of_type(MACHINE) == []


def _errors(tmp_path: Path, stack: str, text: str) -> str:
    return stack_errors(tmp_path, stack, text, "  edumatrix-db:network:")


def test_the_validation_asked_for_without_the_ops_runner_is_refused_naming_both_keys(tmp_path: Path) -> None:
    message = _errors(tmp_path, "dev", "  edumatrix-db:opsRunner: {enabled: false}\n"
                                       "  edumatrix-db:backups: {pitrValidation: true}")
    assert "edumatrix-db:backups.pitrValidation: the monthly point-in-time-restore validation needs the ops " \
           "runner" in message
    assert "set opsRunner.enabled: true, or backups.pitrValidation: false" in message


def test_a_schedule_that_is_no_scheduler_expression_is_refused(tmp_path: Path) -> None:
    message = _errors(tmp_path, "dev", "  edumatrix-db:backups: {pitrValidationSchedule: monthly}")
    assert "'monthly' is not an EventBridge Scheduler expression" in message


def test_an_identifier_too_long_for_the_check_copy_is_refused(tmp_path: Path) -> None:
    identifier = "edumatrix-" + "x" * 45  # 55 characters: the copy's 66
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "dev", "    instanceClass: db.t4g.medium\n", f"    instanceClass: db.t4g.medium\n"
               f"    identifier: {identifier}\n")
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", stacks)
    message = str(caught.value)
    assert "the point-in-time validation's copy (backups.pitrValidation) append '-pitr-check'" in message
