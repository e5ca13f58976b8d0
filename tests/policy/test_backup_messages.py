"""policy/backup.py, every violation as a user reads it in CI: one row per way to break the backups as
components/backups.py and components/pitr_validation.py declare them (tests/policy/test_backup.py), with the
resource the violation names and its whole message; and the reason each policy gives for checking nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from policy import backup
from policy.base import PackPolicy
from tests.policy.fixtures import MISSING, instance, resource
from tests.policy.reports import reasons_not_applicable as not_applicable
from tests.policy.reports import violations_of as reports
from tests.policy.test_backup import (
    CONFIG,
    DR_ARN,
    SELECTION,
    _lock,
    _param,
    _plan,
    _rule,
    _testing,
    declared,
    pitr_machine,
)

Build = Callable[[], list]
B = backup
DAILY, SIX_HOURLY, DR = "edumatrix-test-daily", "edumatrix-test-six-hourly", "edumatrix-test-daily-eu-west-1"


def _locks(**changes: Any) -> Build:
    """The declared backups with the vaults' locks changed: vault name -> (days, grace) or None for no lock."""
    def build() -> list:
        chosen = {DAILY: (30, 14), SIX_HOURLY: (7, 14), DR: (30, 14), **changes}
        return declared(locks=[_lock(v, *dg) for v, dg in chosen.items() if dg is not None])
    return build


def _rules(*rules: dict[str, Any]) -> Build:
    return lambda: declared(plan=_plan(*rules))


def _selected_by(*conditions: dict[str, Any]) -> Build:
    """An instance (tagged service=edumatrix-db) and one selection by tag `conditions`."""
    return lambda: [instance(), resource(SELECTION, "by-tag", {"selectionTags": list(conditions)})]


def _restore_plan(**props: Any) -> Build:
    return lambda: [*declared(), resource(B.RESTORE_TESTING_PLAN, "edumatrix-test-restore-testing", props)]


def _states_after_restore(**states: dict[str, Any]) -> Build:
    """The PITR state machine whose Restore goes on to state A of `states` (the declared states stay)."""
    def edit(body: dict[str, Any]) -> None:
        body["States"]["Restore"]["Next"] = "A"
        body["States"].update(states)
    return lambda: pitr_machine(edit)


LEAK = {"Type": "Fail", "Error": "Leak"}
DELETE = "CleanUp"  # a DeleteDBInstance state of the declared machine

CASES: list[Any] = [
    # rds-backup-plan-coverage: names the instance, by identifier else by resource name
    pytest.param(B.backup_plan_coverage, lambda: [instance()],
                 [("edumatrix-test-db", "instance edumatrix-test is not selected by any AWS Backup plan")],
                 id="coverage-instance-unselected"),
    pytest.param(B.backup_plan_coverage, lambda: [instance(identifier=MISSING)],
                 [("edumatrix-test-db", "instance edumatrix-test-db is not selected by any AWS Backup plan")],
                 id="coverage-instance-without-identifier"),
    pytest.param(B.backup_plan_coverage, _selected_by({"key": "service", "value": "edumatrix-db"}), [],
                 id="coverage-tag-condition-without-type-is-string-equals"),
    pytest.param(B.backup_plan_coverage, _selected_by({"type": "STRINGEQUALS", "key": "service", "value": "other"}),
                 [("edumatrix-test-db", "instance edumatrix-test is not selected by any AWS Backup plan")],
                 id="coverage-tag-condition-not-met"),
    pytest.param(B.backup_plan_coverage, _selected_by({"type": "STRINGNOTEQUALS", "key": "service",
                                                       "value": "edumatrix-db"}),
                 [("edumatrix-test-db", "instance edumatrix-test is not selected by any AWS Backup plan")],
                 id="coverage-other-condition-types-select-nothing"),
    # backup-vault-lock: names the vault or its lock
    pytest.param(B.backup_vault_lock, _locks(**{SIX_HOURLY: None}),
                 [("edumatrix-test-six-hourly",
                   "backup vault edumatrix-test-six-hourly has no vault lock: anyone with "
                   "backup:DeleteRecoveryPoint can delete its recovery points (spec 4.A: backups kept 30 days "
                   "minimum)")], id="vault-lock-missing"),
    pytest.param(B.backup_vault_lock, _locks(**{DAILY: None, SIX_HOURLY: (0, 14)}),
                 [("edumatrix-test-daily",
                   "backup vault edumatrix-test-daily has no vault lock: anyone with backup:DeleteRecoveryPoint "
                   "can delete its recovery points (spec 4.A: backups kept 30 days minimum)"),
                  ("edumatrix-test-six-hourly-lock",
                   "the lock of edumatrix-test-six-hourly sets no minRetentionDays: it enforces no retention")],
                 id="vault-lock-missing-then-lock-without-minimum"),
    pytest.param(B.backup_vault_lock, _locks(**{DR: (30, None)}),
                 [("edumatrix-test-daily-eu-west-1-lock",
                   "the lock of edumatrix-test-daily-eu-west-1 is in governance mode (no changeableForDays); "
                   "production requires compliance mode (backups.lockGraceDays)")], id="vault-lock-governance-mode"),
    pytest.param(B.backup_vault_lock, _locks(**{DR: (30, 2)}),
                 [("edumatrix-test-daily-eu-west-1-lock",
                   "changeableForDays 2 on edumatrix-test-daily-eu-west-1: AWS Backup enforces a 72-hour "
                   'cooling-off period, "you must set ChangeableForDays to 3 or greater"')],
                 id="vault-lock-inside-cooling-off"),
    pytest.param(B.backup_vault_lock, _locks(**{DR: (30, 3)}), [], id="vault-lock-cooling-off-of-three-days-is-fine"),
    # backup-rule-retention: names the plan
    pytest.param(B.backup_rule_retention, _rules(_rule("six-hourly", DAILY, 7), _rule("daily", DAILY, 30)),
                 [("edumatrix-test-backup-plan",
                   "rule six-hourly keeps recovery points 7 days but vault edumatrix-test-daily is locked at 30: "
                   '"the vault fails that backup or copy job" (AWS Backup, vault lock); put the rule in a vault '
                   "locked at its own retention")],
                 id="retention-rule-below-its-lock"),
    pytest.param(B.backup_rule_retention, _rules(_rule("daily", DAILY, 30, copyActions=[
        {"destinationVaultArn": DR_ARN, "lifecycle": {"deleteAfter": 7}}])),
                 [("edumatrix-test-backup-plan",
                   "rule daily copies to edumatrix-test-daily-eu-west-1 for 7 days; its lock requires 30: every "
                   "copy job would fail")], id="retention-copy-below-its-lock"),
    pytest.param(B.backup_rule_retention, _rules(_rule("daily", SIX_HOURLY, 7)),
                 [("edumatrix-test-backup-plan",
                   "no rule keeps recovery points 30 days (longest: 7); spec 4.A/6.A: daily full backups kept 30 "
                   "days")],
                 id="retention-no-rule-of-thirty-days"),
    pytest.param(B.backup_rule_retention, _rules({"ruleName": "forever", "targetVaultName": DAILY}), [],
                 id="retention-rules-kept-forever-are-fine"),
    pytest.param(B.backup_rule_retention, _rules(_rule("daily", DAILY, 30), _rule("scratch", "unlocked", 0)), [],
                 id="retention-a-rule-in-an-unlocked-vault-has-no-floor"),
    pytest.param(B.backup_rule_retention, lambda: declared(plan=_plan(_rule("daily", DAILY, 30), _rule(
        "scratch", SIX_HOURLY, 0)), locks=[_lock(DAILY, 30), _lock(SIX_HOURLY, 0), _lock(DR, 30)]), [],
                 id="retention-a-lock-without-minimum-sets-no-floor"),
    pytest.param(B.backup_rule_retention, _rules(_rule("daily", DAILY, 30, copyActions=[
        {"destinationVaultArn": "arn:aws:backup:eu-west-1:123456789012:backup-vault:elsewhere",
         "lifecycle": {"deleteAfter": 0}}])), [], id="retention-a-copy-to-an-unlocked-vault-has-no-floor"),
    pytest.param(B.backup_rule_retention, lambda: declared(plan=_plan(_rule("daily", DAILY, 30, copyActions=[
        {"destinationVaultArn": DR_ARN, "lifecycle": {"deleteAfter": 0}}])),
        locks=[_lock(DAILY, 30), _lock(SIX_HOURLY, 7), _lock(DR, 0)]), [],
                 id="retention-a-copy-to-a-lock-without-minimum-has-no-floor"),
    # backup-copy-rules: names the plan
    pytest.param(B.backup_copy_rules, _rules(_rule("daily", DAILY, 30, copyActions=[
        {"destinationVaultArn": "arn:aws:backup:eu-west-1:123456789012:backup-vault:elsewhere",
         "lifecycle": {"deleteAfter": 30}},
        {"destinationVaultArn": DR_ARN}])),
                 [("edumatrix-test-backup-plan",
                   "rule daily copies to arn:aws:backup:eu-west-1:123456789012:backup-vault:elsewhere, a vault "
                   "this stack does not declare: its key and lock are not checked (declare the DR vault here, with "
                   "region=)"),
                  ("edumatrix-test-backup-plan",
                   "rule daily's copy to edumatrix-test-daily-eu-west-1 has no lifecycle: kept forever, beyond the "
                   "retention the spec states")], id="copy-to-an-undeclared-vault-then-without-lifecycle"),
    pytest.param(B.backup_copy_rules, _rules(_rule("daily", DAILY, 30, copyActions=[
        {"destinationVaultArn": "arn:aws:backup:us-east-1:123456789012:backup-vault:edumatrix-test-six-hourly",
         "lifecycle": {"deleteAfter": 30}}])),
                 [("edumatrix-test-backup-plan",
                   "rule daily copies to edumatrix-test-six-hourly in its own region us-east-1: a copy protects "
                   "against the loss of a region only in another one")], id="copy-to-its-own-region"),
    pytest.param(B.backup_copy_rules, _rules(_rule("dr", DR, 30, copyActions=[
        {"destinationVaultArn": DR_ARN, "lifecycle": {"deleteAfter": 30}}])),
                 [("edumatrix-test-backup-plan",
                   "rule dr copies to edumatrix-test-daily-eu-west-1 in its own region eu-west-1: a copy protects "
                   "against the loss of a region only in another one")],
                 id="copy-from-a-vault-of-another-region-to-that-region"),
    pytest.param(B.backup_copy_rules, _rules(_rule("daily", DAILY, 30), _rule("scratch", "undeclared", 1)), [],
                 id="copy-rules-of-a-rule-in-an-undeclared-vault-without-copies"),
    # backup-rds-rules: names the plan
    pytest.param(B.backup_rds_rules, _rules(_rule("daily", DAILY, 30, enableContinuousBackup=True)),
                 [("edumatrix-test-backup-plan",
                   "rule daily takes continuous backups: AWS Backup would own the instance's backup retention and "
                   "window, which the instance also declares (drift on every up: "
                   "hashicorp/terraform-provider-aws#33465); here RDS owns point-in-time recovery")],
                 id="rds-rules-continuous-backup"),
    pytest.param(B.backup_rds_rules, _rules({**_rule("daily", DAILY, 30), "lifecycle": {
        "deleteAfter": 30, "optInToArchiveForSupportedResources": True}}),
                 [("edumatrix-test-backup-plan",
                   "rule daily moves recovery points to cold storage: RDS recovery points cannot transition to "
                   "cold storage (AWS Backup, feature availability by resource)")], id="rds-rules-archive-tier"),
    # backup-restore-test-network: names the restore testing plan or selection
    pytest.param(B.backup_restore_test_network, _restore_plan(name="edumatrix-test-weekly", startWindowHours=1),
                 [("edumatrix-test-restore-testing",
                   "restore testing plan name 'edumatrix-test-weekly': AWS Backup takes 1-50 letters, digits and "
                   "underscores")],
                 id="restore-testing-plan-name"),
    pytest.param(B.backup_restore_test_network, _restore_plan(startWindowHours=1),
                 [("edumatrix-test-restore-testing",
                   "restore testing plan name '': AWS Backup takes 1-50 letters, digits and underscores")],
                 id="restore-testing-plan-without-name"),
    pytest.param(B.backup_restore_test_network, _restore_plan(name="weekly", startWindowHours=169),
                 [("edumatrix-test-restore-testing",
                   "restore testing plan weekly: startWindowHours 169 is outside 1-168")],
                 id="restore-testing-start-window-169-hours"),
    pytest.param(B.backup_restore_test_network, _restore_plan(name="weekly", startWindowHours=168), [],
                 id="restore-testing-start-window-168-hours-is-fine"),
    pytest.param(B.backup_restore_test_network, lambda: declared(testing=_testing(restoreMetadataOverrides={})),
                 [("edumatrix-test-restore-testing-selection",
                   "restore testing selection edumatrix_test_weekly_instance does not override dbsubnetgroupname, "
                   "vpcsecuritygroupids: RDS restore tests go to the default VPC otherwise (AWS Backup, 'Restore "
                   "testing inferred metadata') and cannot be reached or fail")],
                 id="restore-testing-selection-without-overrides"),
    pytest.param(B.backup_restore_test_network, lambda: declared(testing=_testing(validationWindowHours=None)),
                 [("edumatrix-test-restore-testing-selection",
                   "restore testing selection edumatrix_test_weekly_instance has no validation window: the ops "
                   "runner's restore-verify cannot report its result")],
                 id="restore-testing-selection-without-validation-window"),
    # pitr-validation-state-machine: names the state machine
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(loggingConfiguration={
        "level": "ALL", "logDestination": "arn:aws:logs:us-east-1:123456789012:log-group:plain:*"}),
                 [("edumatrix-test-pitr-validation-machine",
                   "state machine edumatrix-test-pitr-validation does not log to a CMK-encrypted log group of the "
                   "stack (level ALL, destination arn:aws:logs:us-east-1:123456789012:log-group:plain)")],
                 id="pitr-logs-to-an-unencrypted-group"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(loggingConfiguration={}),
                 [("edumatrix-test-pitr-validation-machine",
                   "state machine edumatrix-test-pitr-validation does not log to a CMK-encrypted log group of the "
                   "stack (level OFF, destination none)")],
                 id="pitr-logs-nowhere"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(loggingConfiguration={
        **pitr_machine()[0].props["loggingConfiguration"], "level": "OFF"}),
                 [("edumatrix-test-pitr-validation-machine",
                   "state machine edumatrix-test-pitr-validation does not log to a CMK-encrypted log group of the "
                   "stack (level OFF, destination "
                   "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/edumatrix-test-pitr-validation)")],
                 id="pitr-logging-off"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(lambda body: body.pop("TimeoutSeconds")),
                 [("edumatrix-test-pitr-validation-machine",
                   "state machine edumatrix-test-pitr-validation has no TimeoutSeconds: an execution stuck waiting "
                   "for the restore would run for up to a year")],
                 id="pitr-without-timeout"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(
        definition=json.dumps([f"{B.RDS_SDK}restoreDBInstanceToPointInTime"])),
                 [("edumatrix-test-pitr-validation-machine",
                   "state machine edumatrix-test-pitr-validation has no TimeoutSeconds: an execution stuck waiting "
                   "for the restore would run for up to a year")],
                 id="pitr-definition-not-an-object"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(_param("Restore", "DbSubnetGroupName", "")),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore leaves DbSubnetGroupName to RDS: the copy gets the "
                   "default subnet group, security group and parameter group (RDS API, "
                   "RestoreDBInstanceToPointInTime)")],
                 id="pitr-restore-default-subnet-group"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(lambda body: body["States"]["Restore"][
        "Parameters"].update(DbSubnetGroupName="", VpcSecurityGroupIds=[])),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore leaves DbSubnetGroupName, VpcSecurityGroupIds to RDS: "
                   "the copy gets the default subnet group, security group and parameter group (RDS API, "
                   "RestoreDBInstanceToPointInTime)")], id="pitr-restore-default-network"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(_param("Restore", "MultiAZ", True)),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore must set PubliclyAccessible and MultiAZ to false (a "
                   "private, single-AZ copy)")],
                 id="pitr-restore-multi-az"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(_param("Restore", "DeletionProtection", None)),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore must set DeletionProtection false, or the clean-up "
                   "cannot delete the copy")], id="pitr-restore-deletion-protection-unset"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(_param("Restore", "Tags", [
        {"Key": "team", "Value": "platform"}])),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore must tag the copy edumatrix-backup with a value no "
                   "backup selection takes, so AWS Backup never backs the copy up")],
                 id="pitr-restore-without-the-backup-tag"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(_param("CleanUp", "DeleteAutomatedBackups",
                                                                              False)),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.CleanUp must delete with SkipFinalSnapshot and "
                   "DeleteAutomatedBackups (a snapshot or retained backups of a throw-away copy cost and linger)")],
                 id="pitr-delete-keeping-automated-backups"),
    pytest.param(B.pitr_validation_state_machine, lambda: pitr_machine(
        lambda body: body["States"]["Restore"].update(Next=None, End=True)),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation.Restore ends the execution: the restored copy is never deleted (go "
                   "on to the validation and DeleteDBInstance)")],
                 id="pitr-restore-ending-the-execution"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak", "Catch": [{"Next": "Gone"}]}, Leak=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-leak-after-a-state-of-no-definition"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak", "Catch": [{"Next": "A"}]}, Leak=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-leak-after-a-state-seen-before"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak", "Catch": [{"Next": DELETE}]}, Leak=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-leak-beside-a-delete"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak", "Catch": [{"Next": "B"}]}, B={"Type": "Pass", "Next": DELETE}, Leak=LEAK),
        [("edumatrix-test-pitr-validation-machine",
          "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the restored "
          "copy (route every Catch through DeleteDBInstance)")], id="pitr-leak-beside-a-path-to-delete"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak"}, Leak={"Type": "Succeed"}),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")], id="pitr-leak-to-a-succeed-state"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "End": True}),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, A can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")], id="pitr-leak-at-a-state-that-ends"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Choice", "Choices": [{"Next": "Leak"}], "Default": DELETE}, Leak=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-leak-by-a-choice"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Choice", "Choices": [{"Next": DELETE}], "Default": "Leak"}, Leak=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Leak can end the execution without deleting the "
                   "restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-leak-by-a-choice-default"),
    pytest.param(B.pitr_validation_state_machine, _states_after_restore(
        A={"Type": "Pass", "Next": "Leak", "Catch": [{"Next": "Gone"}]}, Leak=LEAK, Gone=LEAK),
                 [("edumatrix-test-pitr-validation-machine",
                   "edumatrix-test-pitr-validation: after Restore, Gone, Leak can end the execution without "
                   "deleting the restored copy (route every Catch through DeleteDBInstance)")],
                 id="pitr-two-leaks"),
]


@pytest.mark.parametrize(("policy", "build", "expected"), CASES)
def test_the_backup_policy_names_the_resource_and_says_why(policy: PackPolicy, build: Build,
                                                           expected: list[tuple[str, str]]) -> None:
    assert [(name, message) for _, name, message in reports(build(), [policy], config=CONFIG)] == expected


def test_each_backup_policy_says_why_it_checks_nothing_in_a_stack_without_backups() -> None:
    assert not_applicable([], B.POLICIES) == {
        "rds-backup-plan-coverage": "no primary instance in this stack",
        "backup-vault-lock": "no backup vault in this stack",
        "backup-rule-retention": "no backup plan in this stack",
        "backup-copy-rules": "no backup plan in this stack",
        "backup-rds-rules": "no backup plan in this stack",
        "backup-restore-test-network": "no RDS restore testing selection in this stack",
        "pitr-validation-state-machine": "no state machine restores an RDS instance",
    }


def test_the_daily_retention_the_stack_requires_is_the_configured_one() -> None:
    config = {**CONFIG, "backup-rule-retention": {"minimumDailyRetentionDays": 35}}
    assert [(name, message) for _, name, message in reports(declared(), [B.backup_rule_retention], config=config)] == [
        ("edumatrix-test-backup-plan", "no rule keeps recovery points 35 days (longest: 30); spec 4.A/6.A: daily full "
                                       "backups kept 35 days")]
