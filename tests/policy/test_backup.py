"""policy/backup.py: RDS.26 coverage (mandatory), vault locks, rule retention against the locks, copies, the
RDS limits of AWS Backup. Each policy: the stack as components/backups.py declares it passes; one change
that AWS would refuse, or that breaks the spec, fails with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import Violation
from policy import backup
from tests.policy.fixtures import TAGS, instance, replica, resource, run

if TYPE_CHECKING:
    from components.pitr_validation import PitrValidationArgs

PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
TESTING = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
DR_ARN = "arn:aws:backup:eu-west-1:123456789012:backup-vault:edumatrix-test-daily-eu-west-1"
CONFIG = {"backup-copy-rules": {"defaultRegion": "us-east-1"}}


def _vault(name: str, region: str = "us-east-1") -> RecordedResource:
    props: dict[str, Any] = {"name": name, "kmsKeyArn": f"arn:aws:kms:{region}:123456789012:key/k", "tags": dict(TAGS),
                             "arn": f"arn:aws:backup:{region}:123456789012:backup-vault:{name}"}
    if region != "us-east-1":
        props["region"] = region
    return resource(VAULT, name, props)


def _lock(vault: str, days: int, grace: int | None = 14) -> RecordedResource:
    props: dict[str, Any] = {"backupVaultName": vault, "minRetentionDays": days}
    if grace is not None:
        props["changeableForDays"] = grace
    return resource(LOCK, f"{vault}-lock", props)


def _rule(name: str, vault: str, days: int, **extra: Any) -> dict[str, Any]:
    return {"ruleName": name, "targetVaultName": vault, "lifecycle": {"deleteAfter": days},
            "enableContinuousBackup": False, **extra}


def _plan(*rules: dict[str, Any]) -> RecordedResource:
    rules = rules or (
        _rule("daily", "edumatrix-test-daily", 30,
              copyActions=[{"destinationVaultArn": DR_ARN, "lifecycle": {"deleteAfter": 30}}]),
        _rule("six-hourly", "edumatrix-test-six-hourly", 7))
    return resource(PLAN, "edumatrix-test-backup-plan", {"name": "edumatrix-test", "rules": list(rules),
                                                          "tags": dict(TAGS)})


def _testing(**overrides: Any) -> RecordedResource:
    props = {"name": "edumatrix_test_weekly_instance", "protectedResourceType": "RDS", "validationWindowHours": 4,
             "restoreMetadataOverrides": {"dbsubnetgroupname": "edumatrix-test-subnets",
                                          "vpcsecuritygroupids": '["sg-0123456789abcdef0"]'}, **overrides}
    return resource(TESTING, "edumatrix-test-restore-testing-selection", props)


def declared(*, plan: RecordedResource | None = None, locks: list[RecordedResource] | None = None,
             testing: RecordedResource | None = None) -> list[RecordedResource]:
    """The backup resources as components/backups.py declares them for a stack with one DR region."""
    inst = instance()
    vaults = [_vault("edumatrix-test-daily"), _vault("edumatrix-test-six-hourly"),
              _vault("edumatrix-test-daily-eu-west-1", "eu-west-1")]
    locks = locks if locks is not None else [_lock("edumatrix-test-daily", 30), _lock("edumatrix-test-six-hourly", 7),
                                             _lock("edumatrix-test-daily-eu-west-1", 30)]
    selection = resource(SELECTION, "db-selection", {"resources": [inst.props["arn"]]})
    return [inst, *vaults, *locks, plan or _plan(), selection, testing or _testing()]


def _summary(violations: list[Violation]) -> list[tuple[str, str]]:
    return [(v.policy, v.message) for v in violations]


def test_the_declared_backups_pass_every_backup_policy() -> None:
    assert run(declared(), policies=backup.POLICIES, config=CONFIG) == []


def test_an_instance_no_plan_selects_is_a_mandatory_violation_even_without_any_plan() -> None:
    inst = instance()
    (violation,) = run([inst], policies=backup.POLICIES)
    assert (violation.policy, violation.enforcement, violation.urn) == ("rds-backup-plan-coverage", "mandatory",
                                                                        inst.urn)


def test_replicas_need_no_backup_plan_of_their_own() -> None:
    inst = instance()
    assert [v.urn for v in run([inst, replica()], policies=backup.POLICIES)] == [inst.urn]


def test_with_a_backup_plan_an_unselected_instance_is_mandatory() -> None:
    inst = instance()
    other = resource(SELECTION, "other-selection", {"resources": ["arn:aws:rds:us-east-1:123456789012:db:other"]})
    assert [(v.policy, v.urn) for v in run([inst, _plan(), other], policies=[backup.backup_plan_coverage])] == [
        ("rds-backup-plan-coverage", inst.urn)]


def test_selection_by_arn_covers_the_instance() -> None:
    inst = instance()
    selection = resource(SELECTION, "db-selection", {"resources": [inst.props["arn"]]})
    assert run([inst, selection], policies=[backup.backup_plan_coverage]) == []


def test_selection_by_wildcard_or_tag_covers_the_instance() -> None:
    inst = instance()
    wildcard = resource(SELECTION, "all-dbs", {"resources": ["arn:aws:rds:*:*:db:*"]})
    by_tag = resource(SELECTION, "by-tag", {"selectionTags": [
        {"type": "STRINGEQUALS", "key": "service", "value": "edumatrix-db"}]})
    assert run([inst, wildcard], policies=[backup.backup_plan_coverage]) == []
    assert run([inst, by_tag], policies=[backup.backup_plan_coverage]) == []


def test_a_vault_without_a_lock_is_refused() -> None:
    locks = [_lock("edumatrix-test-daily", 30), _lock("edumatrix-test-daily-eu-west-1", 30)]
    assert _summary(run(declared(locks=locks), policies=[backup.backup_vault_lock])) == [
        ("backup-vault-lock", "backup vault edumatrix-test-six-hourly has no vault lock: anyone with "
         "backup:DeleteRecoveryPoint can delete its recovery points (spec 4.A: backups kept 30 days minimum)")]


def test_a_governance_lock_is_refused_in_prod_and_accepted_in_dev() -> None:
    locks = [_lock("edumatrix-test-daily", 30, None), _lock("edumatrix-test-six-hourly", 7, None),
             _lock("edumatrix-test-daily-eu-west-1", 30, None)]
    prod = run(declared(locks=locks), policies=[backup.backup_vault_lock])
    assert len(prod) == 3
    assert "is in governance mode (no changeableForDays); production requires compliance mode" in prod[0].message
    assert run(declared(locks=locks), environment="dev", policies=[backup.backup_vault_lock]) == []


def test_a_compliance_lock_inside_the_cooling_off_period_is_refused() -> None:
    locks = [_lock("edumatrix-test-daily", 30, 2), _lock("edumatrix-test-six-hourly", 7),
             _lock("edumatrix-test-daily-eu-west-1", 30)]
    (violation,) = run(declared(locks=locks), policies=[backup.backup_vault_lock])
    assert 'you must set ChangeableForDays to 3 or greater' in violation.message


def test_a_rule_kept_less_than_its_vault_lock_is_refused() -> None:
    plan = _plan(_rule("six-hourly", "edumatrix-test-daily", 7),
                 _rule("daily", "edumatrix-test-daily", 30))
    assert _summary(run(declared(plan=plan), policies=[backup.backup_rule_retention])) == [
        ("backup-rule-retention", "rule six-hourly keeps recovery points 7 days but vault edumatrix-test-daily is "
         "locked at 30: \"the vault fails that backup or copy job\" (AWS Backup, vault lock); put the rule in a vault "
         "locked at its own retention")]


def test_a_copy_kept_less_than_the_destination_lock_is_refused() -> None:
    plan = _plan(_rule("daily", "edumatrix-test-daily", 30,
                       copyActions=[{"destinationVaultArn": DR_ARN, "lifecycle": {"deleteAfter": 7}}]))
    (violation,) = run(declared(plan=plan), policies=[backup.backup_rule_retention])
    assert violation.message == ("rule daily copies to edumatrix-test-daily-eu-west-1 for 7 days; its lock requires "
                                 "30: every copy job would fail")


def test_a_plan_without_a_30_day_rule_is_refused() -> None:
    plan = _plan(_rule("daily", "edumatrix-test-six-hourly", 7))
    (violation,) = run(declared(plan=plan), policies=[backup.backup_rule_retention])
    assert violation.message.startswith("no rule keeps recovery points 30 days (longest: 7)")


@pytest.mark.parametrize(("copy", "message"), [
    ({"destinationVaultArn": "arn:aws:backup:eu-west-1:123456789012:backup-vault:elsewhere",
      "lifecycle": {"deleteAfter": 30}}, "a vault this stack does not declare"),
    ({"destinationVaultArn": "arn:aws:backup:us-east-1:123456789012:backup-vault:edumatrix-test-six-hourly",
      "lifecycle": {"deleteAfter": 30}}, "in its own region us-east-1"),
    ({"destinationVaultArn": DR_ARN}, "has no lifecycle: kept forever"),
])
def test_copies_go_to_a_declared_vault_of_another_region_with_a_lifecycle(copy: dict[str, Any], message: str) -> None:
    plan = _plan(_rule("daily", "edumatrix-test-daily", 30, copyActions=[copy]))
    (violation,) = run(declared(plan=plan), policies=[backup.backup_copy_rules], config=CONFIG)
    assert message in violation.message


@pytest.mark.parametrize(("extra", "message"), [
    ({"enableContinuousBackup": True}, "hashicorp/terraform-provider-aws#33465"),
    ({"lifecycle": {"deleteAfter": 120, "coldStorageAfter": 30}}, "cannot transition to cold storage"),
])
def test_continuous_backups_and_cold_storage_are_refused_for_rds(extra: dict[str, Any], message: str) -> None:
    plan = _plan({**_rule("daily", "edumatrix-test-daily", 30), **extra})
    (violation,) = run(declared(plan=plan), policies=[backup.backup_rds_rules])
    assert message in violation.message


def test_a_restore_test_without_the_network_overrides_is_refused() -> None:
    testing = _testing(restoreMetadataOverrides={"dbsubnetgroupname": "edumatrix-test-subnets"})
    (violation,) = run(declared(testing=testing), policies=[backup.backup_restore_test_network])
    assert "does not override vpcsecuritygroupids: RDS restore tests go to the default VPC" in violation.message


@pytest.mark.parametrize(("props", "message"), [
    ({"name": "edumatrix-test-weekly", "startWindowHours": 1},
     "restore testing plan name 'edumatrix-test-weekly': AWS Backup takes 1-50 letters, digits and underscores"),
    ({"name": "e" * 51, "startWindowHours": 1}, "AWS Backup takes 1-50 letters, digits and underscores"),
    ({"name": "edumatrix_test_weekly", "startWindowHours": 169}, "startWindowHours 169 is outside 1-168"),
])
def test_a_restore_testing_plan_aws_backup_refuses_is_reported(props: dict[str, Any], message: str) -> None:
    plan = resource("aws:backup/restoreTestingPlan:RestoreTestingPlan", "edumatrix-test-restore-testing", props)
    found = [m for p, m in _summary(run([*declared(), plan], policies=backup.POLICIES, config=CONFIG))
             if p == "backup-restore-test-network"]
    (reported,) = found
    assert message in reported


# -- the point-in-time validation's state machine (components/pitr_validation.py) ---------------------------
MACHINE = "aws:sfn/stateMachine:StateMachine"
LOGS_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/edumatrix-test-pitr-validation"
Edit = Callable[[dict[str, Any]], object]  # changes the state machine's definition in place


def pitr_args() -> PitrValidationArgs:
    from components.pitr_validation import PitrValidationArgs

    return PitrValidationArgs(
        stack="test", name_prefix="edumatrix-test", environment="prod", instance_identifier="edumatrix-test",
        instance_arn="arn:aws:rds:us-east-1:123456789012:db:edumatrix-test", subnet_group_name="edumatrix-test",
        parameter_group_name="edumatrix-test-pg15", vpc_id="vpc-1", port=5432,
        runner_function_arn="arn:aws:lambda:us-east-1:123456789012:function:edumatrix-test-ops-runner",
        runner_security_group_id="sg-runner", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alarms", schedule="cron(0 4 1 * ? *)",
        instance_class="db.t4g.micro", max_wait_minutes=240, heartbeat_minutes=5, log_retention_days=365)


def pitr_machine(edit: Edit | None = None, **props: Any) -> list[RecordedResource]:
    """The state machine as components/pitr_validation.py declares it, its log group and the backup selection."""
    import json

    from components.pitr_validation import definition

    body = definition(pitr_args(), "arn:aws:lambda:us-east-1:123456789012:function:edumatrix-test-ops-runner",
                      "sg-copy", "edumatrix-test-pg15", "edumatrix-test")
    if edit is not None:
        edit(body)
    machine = resource(MACHINE, "edumatrix-test-pitr-validation-machine", {
        "name": "edumatrix-test-pitr-validation", "definition": json.dumps(body), "tags": dict(TAGS),
        "loggingConfiguration": {"level": "ALL", "includeExecutionData": True, "logDestination": f"{LOGS_ARN}:*"},
        **props})
    logs = resource("aws:cloudwatch/logGroup:LogGroup", "pitr-logs", {
        "arn": LOGS_ARN, "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k", "tags": dict(TAGS)})
    selection = resource(SELECTION, "db-selection", {"resources": [], "selectionTags": [
        {"type": "STRINGEQUALS", "key": "edumatrix-backup", "value": "test"}]})
    return [machine, logs, selection]


def _pitr(edit: Edit | None = None, **props: Any) -> list[str]:
    return [v.message for v in run(pitr_machine(edit, **props), policies=[backup.pitr_validation_state_machine])]


def test_the_declared_pitr_validation_state_machine_passes() -> None:
    assert _pitr() == []


def _param(state: str, key: str, value: Any) -> Edit:
    def edit(body: dict[str, Any]) -> None:
        body["States"][state]["Parameters"][key] = value
    return edit


@pytest.mark.parametrize(("edit", "message"), [
    (_param("Restore", "DbParameterGroupName", None), "leaves DbParameterGroupName to RDS"),
    (_param("Restore", "VpcSecurityGroupIds", []), "leaves VpcSecurityGroupIds to RDS"),
    (_param("Restore", "PubliclyAccessible", True), "must set PubliclyAccessible and MultiAZ to false"),
    (_param("Restore", "DeletionProtection", True), "must set DeletionProtection false"),
    (_param("Restore", "Tags", [{"Key": "edumatrix-backup", "Value": "test"}]), "no backup selection takes"),
    (_param("Delete", "SkipFinalSnapshot", False), "must delete with SkipFinalSnapshot and DeleteAutomatedBackups"),
    (lambda body: body["States"]["Validate"]["Catch"][0].update(Next="ValidationFailed"),
     "ValidationFailed can end the execution without deleting the restored copy"),
    (lambda body: body.pop("TimeoutSeconds"), "has no TimeoutSeconds"),
])
def test_a_pitr_state_machine_that_aws_or_the_spec_would_fault_is_refused(edit: Edit, message: str) -> None:
    (found,) = _pitr(edit)
    assert message in found


def test_a_pitr_state_machine_without_cmk_logging_is_refused() -> None:
    (found,) = _pitr(loggingConfiguration={"level": "OFF"})
    assert "does not log to a CMK-encrypted log group" in found
