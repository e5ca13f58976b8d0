"""AWS Backup as the program declares it (components/backups.py), under the SDK's mocks: the spec's rules in
vaults locked at their retention, who owns point-in-time recovery, the DR copy declared from the primary stack,
the selection, restore testing inside the instance's network, the alarms; and the `backups` settings' errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, Recording
from tests.region_support import copy_stacks, edit_stack, stack_errors

PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
SELECTION = "aws:backup/selection:Selection"
TESTING_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
TESTING_SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
INSTANCE = "aws:rds/instance:Instance"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"


@pytest.fixture(scope="module")
def plans(planner: Planner) -> dict[str, Recording]:
    return {stack: planner.plan(stack) for stack in ("prod", "dev", "prod-eu-west-1")}


def _rules(recording: Recording) -> dict[str, dict]:
    return {r["ruleName"]: r for r in recording.one(PLAN).inputs["rules"]}


def _locks(recording: Recording) -> dict[str, dict]:
    return {r.inputs["backupVaultName"]: r.inputs for r in recording.of_type(LOCK)}


def test_the_daily_and_six_hourly_rules_follow_the_spec(plans: dict[str, Recording]) -> None:
    rules = _rules(plans["prod"])
    assert {name: (r["schedule"], r["scheduleExpressionTimezone"], r["lifecycle"]["deleteAfter"])
            for name, r in rules.items()} == {
        "daily": ("cron(0 0 * * ? *)", "Etc/UTC", 30),
        "six-hourly": ("cron(0 6,12,18 * * ? *)", "Etc/UTC", 7),
    }


def test_each_rule_has_a_vault_locked_at_its_own_retention(plans: dict[str, Recording]) -> None:
    rules, locks = _rules(plans["prod"]), _locks(plans["prod"])
    assert {name: locks[r["targetVaultName"]]["minRetentionDays"] for name, r in rules.items()} == {
        "daily": 30, "six-hourly": 7}
    assert rules["daily"]["targetVaultName"] != rules["six-hourly"]["targetVaultName"]


def test_prod_locks_in_compliance_mode_after_the_grace_period_and_dev_in_governance(
        plans: dict[str, Recording]) -> None:
    assert {lock.get("changeableForDays") for lock in _locks(plans["prod"]).values()} == {14}
    assert {lock.get("changeableForDays") for lock in _locks(plans["dev"]).values()} == {None}


def test_prod_protects_its_vaults_and_their_keys_from_pulumi_destroy(plans: dict[str, Recording]) -> None:
    keys = [k for k in plans["prod"].of_type("aws:kms/key:Key") if "-backup-key" in k.name]
    assert len(keys) == 2  # the vaults' key, the DR region's key
    assert all(r.protect for r in [*plans["prod"].of_type(VAULT), *keys])
    assert not any(r.protect for r in plans["dev"].of_type(VAULT))


def test_every_vault_is_under_a_customer_managed_key_of_its_region(plans: dict[str, Recording]) -> None:
    vaults = {v.inputs["name"]: v.inputs for v in plans["prod"].of_type(VAULT)}
    assert {name: v["kmsKeyArn"].split(":")[3] for name, v in vaults.items()} == {
        "edumatrix-prod-daily": "us-east-1", "edumatrix-prod-six-hourly": "us-east-1",
        "edumatrix-prod-daily-eu-west-1": "eu-west-1"}


def test_rds_owns_point_in_time_recovery_and_aws_backup_takes_snapshots(plans: dict[str, Recording]) -> None:
    """The decision of docs/recovery-runbook.md: the instance keeps its automated backups (30 days, window
    00:00-00:30 UTC) and AWS Backup never takes continuous backups, so neither owns the other's settings."""
    instance = next(i for i in plans["prod"].of_type(INSTANCE) if "replicateSourceDb" not in i.inputs)
    assert (instance.inputs["backupRetentionPeriod"], instance.inputs["backupWindow"]) == (30, "00:00-00:30")
    assert {r["enableContinuousBackup"] for r in _rules(plans["prod"]).values()} == {False}
    testing = plans["prod"].one(TESTING_PLAN).inputs["recoveryPointSelection"]
    assert testing["recoveryPointTypes"] == ["SNAPSHOT"]


def test_the_daily_backups_are_copied_to_the_region_stacks_region_from_the_primary_stack(
        plans: dict[str, Recording]) -> None:
    (copy,) = _rules(plans["prod"])["daily"]["copyActions"]
    dr_vault = next(v for v in plans["prod"].of_type(VAULT) if v.inputs.get("region") == "eu-west-1")
    assert copy["destinationVaultArn"] == dr_vault.props["arn"]
    assert copy["lifecycle"] == {"deleteAfter": 30}
    assert plans["prod-eu-west-1"].of_type(VAULT) == []  # the region stack declares none: no reference back


def test_the_selection_covers_the_shared_instance_and_tagged_extraction_targets(plans: dict[str, Recording]) -> None:
    selection = plans["prod"].one(SELECTION).inputs
    instance = next(i for i in plans["prod"].of_type(INSTANCE) if "replicateSourceDb" not in i.inputs)
    assert selection["resources"] == [instance.props["arn"]]
    assert selection["selectionTags"] == [{"type": "STRINGEQUALS", "key": "edumatrix-backup", "value": "prod"}]


def test_restore_tests_land_in_the_instances_subnet_group_and_security_group(plans: dict[str, Recording]) -> None:
    overrides = plans["prod"].one(TESTING_SELECTION).inputs["restoreMetadataOverrides"]
    instance = next(i for i in plans["prod"].of_type(INSTANCE) if "replicateSourceDb" not in i.inputs)
    assert overrides["dbsubnetgroupname"] == instance.inputs["dbSubnetGroupName"]
    assert overrides["vpcsecuritygroupids"] == f'["{instance.inputs["vpcSecurityGroupIds"][0]}"]'


def test_failed_expired_copy_restore_and_long_backups_page_someone(plans: dict[str, Recording]) -> None:
    metrics = sorted({a.inputs["metricName"] for a in plans["prod"].of_type(ALARM)
                      if a.inputs.get("namespace") == "AWS/Backup"
                      or a.inputs.get("metricName") in ("BackupJobMinutes", "RestoreValidationFailed")})
    assert metrics == ["BackupJobMinutes", "NumberOfBackupJobsExpired", "NumberOfBackupJobsFailed",
                       "NumberOfCopyJobsFailed", "NumberOfRestoreJobsFailed", "RestoreValidationFailed"]
    long_backup = next(a for a in plans["prod"].of_type(ALARM) if a.inputs.get("metricName") == "BackupJobMinutes")
    assert (long_backup.inputs["threshold"], long_backup.inputs["comparisonOperator"]) == (60, "GreaterThanThreshold")


def test_the_runner_validates_restore_tests_and_times_backup_jobs_on_aws_backups_events(
        plans: dict[str, Recording]) -> None:
    rules = {r.name: r.inputs for r in plans["prod"].of_type("aws:cloudwatch/eventRule:EventRule")}
    targets = {t.name: t.inputs for t in plans["prod"].of_type("aws:cloudwatch/eventTarget:EventTarget")}
    restore = next(json.loads(r["eventPattern"]) for n, r in rules.items() if n.endswith("-restore-tests"))
    assert restore["detail-type"] == ["Restore Job State Change"]
    assert restore["detail"] == {"status": ["COMPLETED"], "restoreTestingPlanArn": [{"exists": True}]}
    jobs = {n: t["inputTransformer"]["inputTemplate"] for n, t in targets.items()}
    assert any('"job": "restore-verify"' in template for template in jobs.values())
    assert any('"job": "backup-job-duration"' in template for template in jobs.values())
    policy = next(p for p in plans["prod"].of_type("aws:iam/rolePolicy:RolePolicy")
                  if p.name.endswith("ops-runner-policy"))
    (report,) = [s for s in json.loads(policy.inputs["policy"])["Statement"] if s["Sid"] == "ReportRestoreTestResults"]
    assert (report["Action"], report["Condition"]) == ("backup:PutRestoreValidationResult",
                                                       {"StringEquals": {"aws:RequestedRegion": "us-east-1"}})


def test_a_promoted_region_backs_up_its_instance(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod-eu-west-1", "promote: false", "promote: true")
    promoted = Planner(stacks).plan("prod-eu-west-1")
    instance = promoted.one(INSTANCE)
    assert promoted.one(SELECTION).inputs["resources"] == [instance.props["arn"]]


def _errors(tmp_path: Path, stack: str, text: str, anchor: str = "  edumatrix-db:network:") -> str:
    return stack_errors(tmp_path, stack, text, anchor)


def test_prod_cannot_turn_aws_backup_off(tmp_path: Path) -> None:
    message = _errors(tmp_path, "prod", "  edumatrix-db:backups: {enabled: false}")
    assert "edumatrix-db:backups.enabled: AWS Backup cannot be off in prod" in message


def test_a_region_stack_declares_no_backups_of_its_own(tmp_path: Path) -> None:
    message = _errors(tmp_path, "prod-eu-west-1", "  edumatrix-db:backups: {dailyRetentionDays: 40}",
                      anchor="  edumatrix-db:region:")
    assert "edumatrix-db:backups: only a primary AWS stack declares AWS Backup" in message


@pytest.mark.parametrize(("settings", "text"), [
    ("{dailyRetentionDays: 14}", "greater than or equal to 30"),
    ("{lockGraceDays: 2}", "greater than or equal to 3"),
    ("{startWindowMinutes: 120, completionWindowMinutes: 150}", "at least 60 minutes longer than startWindowMinutes"),
])
def test_backup_settings_outside_the_spec_or_aws_limits_are_refused(tmp_path: Path, settings: str, text: str) -> None:
    assert text in _errors(tmp_path, "dev", f"  edumatrix-db:backups: {settings}")


def test_an_rds_backup_window_that_would_expire_the_daily_job_is_refused(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "dev", "    backupRetentionDays: 7", "    backupRetentionDays: 7\n    backupWindow: 00:20-00:55")
    with pytest.raises(ConfigError) as caught:
        load_stack("dev", stacks)
    assert "the RDS backup window 00:20-00:55 runs into AWS Backup's daily job" in str(caught.value)
    assert "end the RDS window by 00:50 UTC" in str(caught.value)


def test_an_extraction_target_is_in_its_stacks_backup_selection_by_tag(planner: Planner) -> None:
    staging = planner.plan("staging")  # extracts feedback (stacks/Pulumi.staging.yaml)
    (tag,) = staging.one(SELECTION).inputs["selectionTags"]
    target = next(i for i in staging.of_type(INSTANCE) if "edumatrix:extraction:TargetInstance$" in i.urn)
    assert target.inputs["tags"][tag["key"]] == tag["value"] == "staging"
