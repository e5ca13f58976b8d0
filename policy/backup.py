"""AWS Backup (spec 6.A, 4.A; Security Hub RDS.26): coverage, vault locks, rule retention against the locks,
copies, and the constraints of AWS Backup for RDS that the SDK's mocks accept but AWS refuses or ignores.

Sources, each cited where its rule is checked:
- Vault lock: "If the job's retention period is shorter than that minimum retention period, then the vault
  fails that backup or copy job" (AWS Backup API, PutBackupVaultLockConfiguration, MinRetentionDays);
  "AWS Backup enforces a 72-hour cooling-off period ... Therefore, you must set ChangeableForDays to 3 or
  greater" (CloudFormation AWS::Backup::BackupVault LockConfigurationType); without ChangeableForDays the
  lock is in governance mode (pulumi-aws `backup.VaultLockConfiguration.changeable_for_days`).
- Continuous backup of an RDS instance makes AWS Backup own `backup_retention_period` and the backup window;
  IaC setting them too drifts (hashicorp/terraform-provider-aws#33465). This platform lets RDS own
  point-in-time recovery (docs/recovery-runbook.md), so AWS Backup rules are snapshot rules.
- Cold storage: AWS Backup's "Feature availability by resource" lists no cold-storage transition for RDS.
- Restore tests of RDS go to the default VPC unless `RestoreMetadataOverrides` name the subnet group and
  security groups (AWS Backup, "Restore testing inferred metadata").
- RestoreDBInstanceToPointInTime: "The target database is created with most of the original configuration, but
  in a system-selected Availability Zone, with the default security group, the default subnet group, and the
  default DB parameter group" (RDS API reference): the platform's parameter group (TLS, pgaudit) and network
  must be named. Step Functions AWS SDK integrations take the API's parameters in PascalCase
  (`arn:aws:states:::aws-sdk:rds:restoreDBInstanceToPointInTime`; developer guide, "AWS SDK service
  integrations"); a state machine's `TimeoutSeconds` bounds an execution (else a year: Step Functions quotas).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, Severity, StackValidationArgs

from policy.base import (
    BACKUP_PLAN,
    BACKUP_SELECTION,
    BACKUP_VAULT,
    INSTANCE,
    PackPolicy,
    StackPolicy,
    arn_region,
    is_postgres_instance,
    is_replica,
    of_type,
    setting,
)

VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
RESTORE_TESTING_SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
RESTORE_TESTING_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
# "Must be between 1 and 50 characters long and contain only alphanumeric characters and underscores";
# start_window_hours "Must be between 1 and 168" (pulumi_aws backup/restore_testing_plan.py, AWS Backup API).
_RESTORE_TESTING_PLAN_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
LOCK_COOLING_OFF_DAYS = 3
SPEC_DAILY_RETENTION_DAYS = 30


def _selects(selection: Mapping[str, Any], instance: PolicyResource) -> bool:
    arn = str(instance.props.get("arn") or "")
    if any(fnmatch.fnmatchcase(arn, str(pattern)) for pattern in selection.get("resources") or []):
        return True
    tags = instance.props.get("tags") or {}
    for condition in selection.get("selectionTags") or []:
        if condition.get("type", "STRINGEQUALS") == "STRINGEQUALS" and \
                tags.get(condition.get("key")) == condition.get("value"):
            return True
    return False


def _primaries(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in of_type(args.resources, INSTANCE)
            if is_postgres_instance(r.props) and not is_replica(r.props)]


def _uncovered(args: StackValidationArgs, report: ReportViolation) -> None:
    primaries = _primaries(args)
    if not primaries:
        args.not_applicable("no primary instance in this stack")
        return
    selections = of_type(args.resources, BACKUP_SELECTION)
    for inst in primaries:
        if not any(_selects(s.props, inst) for s in selections):
            report(f"instance {inst.props.get('identifier', inst.name)} is not selected by any AWS Backup plan",
                   inst.urn)


backup_plan_coverage = StackPolicy(
    "rds-backup-plan-coverage",
    "Every primary instance is selected by an AWS Backup plan (by ARN, wildcard or tag).",
    types=[INSTANCE, BACKUP_PLAN, BACKUP_SELECTION], validate=_uncovered, severity=Severity.HIGH,
    controls=["RDS.26", "spec 6.A"],
    remediation="Keep backups.enabled (components/backups.py selects the shared instance by ARN and extraction "
                "targets by the tag edumatrix-backup=<stack>).",
)


def _locks(args: StackValidationArgs) -> dict[str, PolicyResource]:
    return {str(lock.props.get("backupVaultName")): lock for lock in of_type(args.resources, VAULT_LOCK)}


def _vault_lock(args: StackValidationArgs, report: ReportViolation) -> None:
    vaults = of_type(args.resources, BACKUP_VAULT)
    if not vaults:
        args.not_applicable("no backup vault in this stack")
        return
    compliance = bool(setting(args, "complianceMode", False))
    locks = _locks(args)
    for vault in vaults:
        name = str(vault.props.get("name"))
        lock = locks.get(name)
        if lock is None:
            report(f"backup vault {name} has no vault lock: anyone with backup:DeleteRecoveryPoint can delete its "
                   "recovery points (spec 4.A: backups kept 30 days minimum)", vault.urn)
            continue
        if not lock.props.get("minRetentionDays"):
            report(f"the lock of {name} sets no minRetentionDays: it enforces no retention", lock.urn)
        grace = lock.props.get("changeableForDays")
        if compliance and grace is None:
            report(f"the lock of {name} is in governance mode (no changeableForDays); production requires "
                   "compliance mode (backups.lockGraceDays)", lock.urn)
        if grace is not None and int(grace) < LOCK_COOLING_OFF_DAYS:
            report(f"changeableForDays {grace} on {name}: AWS Backup enforces a 72-hour cooling-off period, "
                   f"\"you must set ChangeableForDays to {LOCK_COOLING_OFF_DAYS} or greater\"", lock.urn)


backup_vault_lock = StackPolicy(
    "backup-vault-lock",
    "Every backup vault has a vault lock with a minimum retention; in production in compliance mode.",
    types=[BACKUP_VAULT, VAULT_LOCK], validate=_vault_lock, severity=Severity.HIGH, controls=["spec 4.A backups"],
    remediation="Declare aws.backup.VaultLockConfiguration for the vault (components/backups.py does).",
    config={"complianceMode": {"type": "boolean", "default": False}},
)


def _rules(plan: PolicyResource) -> Iterable[Mapping[str, Any]]:
    return [r for r in plan.props.get("rules") or [] if isinstance(r, Mapping)]


def _delete_after(block: Any) -> int | None:
    if isinstance(block, Mapping) and block.get("deleteAfter") is not None:
        return int(block["deleteAfter"])
    return None


def _retention(args: StackValidationArgs, report: ReportViolation) -> None:
    plans = of_type(args.resources, BACKUP_PLAN)
    if not plans:
        args.not_applicable("no backup plan in this stack")
        return
    locks = _locks(args)
    vaults_by_arn = {str(v.props.get("arn")): str(v.props.get("name")) for v in of_type(args.resources, BACKUP_VAULT)}
    minimum_daily = int(setting(args, "minimumDailyRetentionDays", SPEC_DAILY_RETENTION_DAYS))
    longest = 0
    for plan in plans:
        for rule in _rules(plan):
            name, kept = rule.get("ruleName"), _delete_after(rule.get("lifecycle"))
            longest = max(longest, kept or 0)
            lock = locks.get(str(rule.get("targetVaultName")))
            floor = int(lock.props.get("minRetentionDays") or 0) if lock else 0
            if kept is None and lock is not None:
                pass  # kept forever: above any minimum
            elif kept is not None and kept < floor:
                report(f"rule {name} keeps recovery points {kept} days but vault {rule.get('targetVaultName')} is "
                       f"locked at {floor}: \"the vault fails that backup or copy job\" (AWS Backup, vault lock); "
                       "put the rule in a vault locked at its own retention", plan.urn)
            for copy in rule.get("copyActions") or []:
                copy_kept = _delete_after(copy.get("lifecycle"))
                vault = vaults_by_arn.get(str(copy.get("destinationVaultArn")))
                copy_lock = locks.get(vault) if vault else None
                copy_floor = int(copy_lock.props.get("minRetentionDays") or 0) if copy_lock else 0
                if copy_kept is not None and copy_kept < copy_floor:
                    report(f"rule {name} copies to {vault} for {copy_kept} days; its lock requires {copy_floor}: "
                           "every copy job would fail", plan.urn)
    if longest and longest < minimum_daily:
        report(f"no rule keeps recovery points {minimum_daily} days (longest: {longest}); spec 4.A/6.A: daily full "
               f"backups kept {minimum_daily} days", plans[0].urn)


backup_rule_retention = StackPolicy(
    "backup-rule-retention",
    "A rule's retention (and each copy's) is at least its vault lock's minimum; one rule keeps 30 days.",
    types=[BACKUP_PLAN, BACKUP_VAULT, VAULT_LOCK], validate=_retention, severity=Severity.HIGH,
    controls=["spec 4.A backups", "spec 6.A"],
    remediation="Keep each rule in the vault locked at its retention (daily: 30 days, six-hourly: 7 days).",
    config={"minimumDailyRetentionDays": {"type": "integer", "minimum": 1, "default": SPEC_DAILY_RETENTION_DAYS}},
)


def _copies(args: StackValidationArgs, report: ReportViolation) -> None:
    plans = of_type(args.resources, BACKUP_PLAN)
    if not plans:
        args.not_applicable("no backup plan in this stack")
        return
    vaults = {str(v.props.get("arn")): v for v in of_type(args.resources, BACKUP_VAULT)}
    default_region = setting(args, "defaultRegion", "")
    for plan in plans:
        for rule in _rules(plan):
            target = next((v for v in vaults.values() if v.props.get("name") == rule.get("targetVaultName")), None)
            source_region = (target.props.get("region") if target else None) or default_region
            for copy in rule.get("copyActions") or []:
                arn = str(copy.get("destinationVaultArn"))
                vault = vaults.get(arn)
                if vault is None:
                    report(f"rule {rule.get('ruleName')} copies to {arn}, a vault this stack does not declare: its "
                           "key and lock are not checked (declare the DR vault here, with region=)", plan.urn)
                    continue
                if arn_region(arn) and arn_region(arn) == source_region:
                    report(f"rule {rule.get('ruleName')} copies to {vault.props.get('name')} in its own region "
                           f"{source_region}: a copy protects against the loss of a region only in another one",
                           plan.urn)
                if _delete_after(copy.get("lifecycle")) is None:
                    report(f"rule {rule.get('ruleName')}'s copy to {vault.props.get('name')} has no lifecycle: "
                           "kept forever, beyond the retention the spec states", plan.urn)


backup_copy_rules = StackPolicy(
    "backup-copy-rules",
    "Copies go to a vault of another region that the stack declares (its key and lock checked), with a lifecycle.",
    types=[BACKUP_PLAN, BACKUP_VAULT], validate=_copies, severity=Severity.MEDIUM, controls=["spec 8.A", "spec 6.A"],
    remediation="Declare the DR vault in the primary stack with region=<DR region> and a key of that region.",
    config={"defaultRegion": {"type": "string", "default": ""}},
)


def _rds_rules(args: StackValidationArgs, report: ReportViolation) -> None:
    plans = of_type(args.resources, BACKUP_PLAN)
    if not plans:
        args.not_applicable("no backup plan in this stack")
        return
    for plan in plans:
        for rule in _rules(plan):
            lifecycle = rule.get("lifecycle") or {}
            if lifecycle.get("coldStorageAfter") is not None or lifecycle.get("optInToArchiveForSupportedResources"):
                report(f"rule {rule.get('ruleName')} moves recovery points to cold storage: RDS recovery points "
                       "cannot transition to cold storage (AWS Backup, feature availability by resource)", plan.urn)
            if rule.get("enableContinuousBackup"):
                report(f"rule {rule.get('ruleName')} takes continuous backups: AWS Backup would own the instance's "
                       "backup retention and window, which the instance also declares (drift on every up: "
                       "hashicorp/terraform-provider-aws#33465); here RDS owns point-in-time recovery", plan.urn)


backup_rds_rules = StackPolicy(
    "backup-rds-rules",
    "AWS Backup rules take snapshots (RDS owns point-in-time recovery) and never move RDS to cold storage.",
    types=[BACKUP_PLAN], validate=_rds_rules, severity=Severity.HIGH, controls=["spec 6.A"],
    remediation="Remove enableContinuousBackup and coldStorageAfter from the rule.",
)


def _restore_tests(args: StackValidationArgs, report: ReportViolation) -> None:
    for plan in of_type(args.resources, RESTORE_TESTING_PLAN):
        name = str(plan.props.get("name") or "")
        if not _RESTORE_TESTING_PLAN_NAME.match(name):
            report(f"restore testing plan name {name!r}: AWS Backup takes 1-50 letters, digits and underscores",
                   plan.urn)
        hours = plan.props.get("startWindowHours")
        if hours is not None and not 1 <= int(hours) <= 168:
            report(f"restore testing plan {name}: startWindowHours {hours} is outside 1-168", plan.urn)
    selections = [s for s in of_type(args.resources, RESTORE_TESTING_SELECTION)
                  if str(s.props.get("protectedResourceType")) == "RDS"]
    if not selections:
        args.not_applicable("no RDS restore testing selection in this stack")
        return
    for selection in selections:
        overrides = {str(k).lower() for k in (selection.props.get("restoreMetadataOverrides") or {})}
        missing = sorted({"dbsubnetgroupname", "vpcsecuritygroupids"} - overrides)
        if missing:
            report(f"restore testing selection {selection.props.get('name')} does not override "
                   f"{', '.join(missing)}: RDS restore tests go to the default VPC otherwise (AWS Backup, 'Restore "
                   "testing inferred metadata') and cannot be reached or fail", selection.urn)
        if not selection.props.get("validationWindowHours"):
            report(f"restore testing selection {selection.props.get('name')} has no validation window: the ops "
                   "runner's restore-verify cannot report its result", selection.urn)


backup_restore_test_network = StackPolicy(
    "backup-restore-test-network",
    "RDS restore tests restore into the instance's subnet group and security group, with a validation window; "
    "restore testing plans have names and start windows AWS Backup takes.",
    types=[RESTORE_TESTING_SELECTION, RESTORE_TESTING_PLAN], validate=_restore_tests, severity=Severity.MEDIUM,
    controls=["spec 6.A"],
    remediation="Set restore_metadata_overrides dbsubnetgroupname and vpcsecuritygroupids (components/backups.py).",
)

STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RDS_SDK = "arn:aws:states:::aws-sdk:rds:"


def _states(definition: Any) -> dict[str, Mapping[str, Any]]:
    if isinstance(definition, str):
        try:
            definition = json.loads(definition)
        except ValueError:
            return {}
    states = (definition or {}).get("States") if isinstance(definition, Mapping) else None
    return {str(k): v for k, v in (states or {}).items() if isinstance(v, Mapping)}


def _next_states(state: Mapping[str, Any]) -> list[str]:
    found = [state.get("Next"), state.get("Default")]
    found += [c.get("Next") for c in state.get("Choices") or []]
    found += [c.get("Next") for c in state.get("Catch") or []]
    return [str(n) for n in found if n]


def _leaks(states: Mapping[str, Mapping[str, Any]], start: str) -> list[str]:
    """End states reachable from `start` without passing a DeleteDBInstance task: paths that leave the restored
    copy running (and costing)."""
    seen, todo, ends = set(), [start], []
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name]
        if str(state.get("Resource", "")) == f"{RDS_SDK}deleteDBInstance":
            continue
        if state.get("Type") in ("Succeed", "Fail") or state.get("End"):
            ends.append(name)
        todo += _next_states(state)
    return sorted(ends)


def _pitr_state_machines(args: StackValidationArgs, report: ReportViolation) -> None:
    machines = [m for m in of_type(args.resources, STATE_MACHINE)
                if f"{RDS_SDK}restoreDBInstanceToPointInTime" in str(m.props.get("definition", ""))]
    if not machines:
        args.not_applicable("no state machine restores an RDS instance")
        return
    encrypted = {str(g.props.get("arn")) for g in of_type(args.resources, LOG_GROUP) if g.props.get("kmsKeyId")}
    selected = {(str(c.get("key")), str(c.get("value"))) for sel in of_type(args.resources, BACKUP_SELECTION)
                for c in sel.props.get("selectionTags") or []}
    for machine in machines:
        name = machine.props.get("name")
        states = _states(machine.props.get("definition"))
        logging = machine.props.get("loggingConfiguration") or {}
        destination = str(logging.get("logDestination") or "").removesuffix(":*")
        if logging.get("level") in (None, "OFF") or destination not in encrypted:
            report(f"state machine {name} does not log to a CMK-encrypted log group of the stack (level "
                   f"{logging.get('level') or 'OFF'}, destination {destination or 'none'})", machine.urn)
        definition = machine.props.get("definition")
        parsed = json.loads(definition) if isinstance(definition, str) else definition or {}
        if not (isinstance(parsed, Mapping) and parsed.get("TimeoutSeconds")):
            report(f"state machine {name} has no TimeoutSeconds: an execution stuck waiting for the restore would "
                   "run for up to a year", machine.urn)
        for state_name, state in states.items():
            resource = str(state.get("Resource", ""))
            params = state.get("Parameters") or {}
            if resource == f"{RDS_SDK}restoreDBInstanceToPointInTime":
                missing = [k for k in ("DbSubnetGroupName", "VpcSecurityGroupIds", "DbParameterGroupName")
                           if not params.get(k)]
                if missing:
                    report(f"{name}.{state_name} leaves {', '.join(missing)} to RDS: the copy gets the default "
                           "subnet group, security group and parameter group (RDS API, "
                           "RestoreDBInstanceToPointInTime)", machine.urn)
                if params.get("PubliclyAccessible") is not False or params.get("MultiAZ") is not False:
                    report(f"{name}.{state_name} must set PubliclyAccessible and MultiAZ to false (a private, "
                           "single-AZ copy)", machine.urn)
                if params.get("DeletionProtection") is not False:
                    report(f"{name}.{state_name} must set DeletionProtection false, or the clean-up cannot delete "
                           "the copy", machine.urn)
                tags = {(str(t.get("Key")), str(t.get("Value"))) for t in params.get("Tags") or []}
                if tags & selected or not any(k == "edumatrix-backup" for k, _ in tags):
                    report(f"{name}.{state_name} must tag the copy edumatrix-backup with a value no backup "
                           "selection takes, so AWS Backup never backs the copy up", machine.urn)
                if not state.get("Next"):
                    report(f"{name}.{state_name} ends the execution: the restored copy is never deleted (go on to "
                           "the validation and DeleteDBInstance)", machine.urn)
                elif leaks := _leaks(states, str(state["Next"])):
                    report(f"{name}: after {state_name}, {', '.join(leaks)} can end the execution without "
                           "deleting the restored copy (route every Catch through DeleteDBInstance)", machine.urn)
            if resource == f"{RDS_SDK}deleteDBInstance" and not (
                    params.get("SkipFinalSnapshot") is True and params.get("DeleteAutomatedBackups") is True):
                report(f"{name}.{state_name} must delete with SkipFinalSnapshot and DeleteAutomatedBackups (a "
                       "snapshot or retained backups of a throw-away copy cost and linger)", machine.urn)


pitr_validation_state_machine = StackPolicy(
    "pitr-validation-state-machine",
    "A state machine that restores an RDS instance to a point in time restores a private single-AZ copy into "
    "the named subnet group, security group and parameter group, untagged for AWS Backup, deletes it (without "
    "final snapshot or retained backups) on every path, is bounded in time and logs to a CMK log group.",
    types=[STATE_MACHINE, LOG_GROUP, BACKUP_SELECTION], validate=_pitr_state_machines, severity=Severity.HIGH,
    controls=["spec 6.A", "spec 4.A"],
    remediation="Declare it with components/pitr_validation.py (definition(): every Catch goes to CleanUp).",
)

POLICIES: list[PackPolicy] = [backup_plan_coverage, backup_vault_lock, backup_rule_retention, backup_copy_rules,
                              backup_rds_rules, backup_restore_test_network, pitr_validation_state_machine]
