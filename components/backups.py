"""BackupPlatform (`edumatrix:backup:BackupPlatform`): AWS Backup for a primary stack (spec 6.A, 4.A).

What it declares, and why each piece looks the way it does:
- A CMK of its own for the vaults (a vault's key cannot be changed later), and per region stack's region a key
  of that region for the copies there (a KMS key encrypts only in its own region).
- Two vaults, because a vault lock's minimum retention fails every job kept for less ("If the job's retention
  period is shorter than that minimum retention period, then the vault fails that backup or copy job", AWS
  Backup, PutBackupVaultLockConfiguration): `<prefix>-daily` (locked at 30 days) for the spec's daily full
  backups, `<prefix>-six-hourly` (locked at 7 days) for the 6-hourly ones. Locks are in governance mode outside
  prod (no `changeable_for_days`: IAM can still remove them) and in compliance mode in prod, immutable after
  `backups.lockGraceDays` (at least 3: AWS Backup's 72-hour cooling-off period).
- The plan: `daily` at 00:00 UTC kept 30 days, copied to each region stack's region (a vault there, declared
  here with `region=`, so the region stack never references back into this stack); `six-hourly` at 06:00,
  12:00 and 18:00 UTC kept 7 days (00:00 is the daily one, kept longer). Snapshot rules only: point-in-time
  recovery is RDS's own (automated backups, `instance.backupRetentionDays`), so AWS Backup never takes over
  `backup_retention_period` or the backup window (hashicorp/terraform-provider-aws#33465). No cold storage:
  RDS recovery points cannot transition to it.
- The selection: the shared instance by ARN, and any instance tagged `edumatrix-backup: <stack>` (extraction
  target instances carry that tag); the IAM role AWS Backup assumes, with AWS's two managed policies for backup
  and restore and nothing else.
- Restore testing: weekly, the latest daily recovery point of the last 7 days restored into the instance's
  subnet group and security group (otherwise RDS restore tests use the default VPC, absent or wrong here), a
  validation window for the ops runner's `restore-verify` job, which the restore job's event starts.
- Alarms: failed and expired backup jobs per vault, failed copy jobs, failed restore (test) jobs, a failed
  restore-test validation, and a backup job that ran longer than an hour (spec 3.A), the last two from the ops
  runner's metrics (`RestoreValidationFailed`, `BackupJobMinutes`; edumatrix_db/ops/backup_jobs.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.kms_key import PlatformKey, PlatformKeyArgs
from config.monitoring import METRICS_NAMESPACE

DAILY_SCHEDULE = "cron(0 0 * * ? *)"
"""Spec 6.A: full backups daily at 00:00 UTC."""
SIX_HOURLY_SCHEDULE = "cron(0 6,12,18 * * ? *)"
"""Spec 6.A: every 6 hours; 00:00 is taken by the daily rule (kept longer)."""
TIMEZONE = "Etc/UTC"
SELECTION_TAG = "edumatrix-backup"
"""Instances tagged `edumatrix-backup: <stack>` are in the stack's backup selection (extraction targets)."""
BACKUP_JOB_MINUTES = "BackupJobMinutes"
"""The ops runner's metric (namespace EduMatrix/Database): minutes from a backup job's creation to its end."""
BACKUP_WINDOW_MINUTES = 60
"""Spec 3.A: a backup finishes within an hour."""
MANAGED_POLICIES = ("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores")


@dataclass(frozen=True)
class BackupPlatformArgs:
    stack: str
    prefix: str
    environment: str
    instance_arn: pulumi.Input[str]
    subnet_group_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    daily_retention_days: int
    six_hourly_retention_days: int
    start_window_minutes: int
    completion_window_minutes: int
    compliance_lock: bool
    lock_grace_days: int
    copy_regions: Sequence[str]
    copy_retention_days: int
    restore_test_schedule: str
    restore_test_validation_hours: int
    alarm_topic_arn: pulumi.Input[str] | None
    partition: str = "aws"
    tags: Mapping[str, str] = field(default_factory=dict)


class BackupPlatform(pulumi.ComponentResource):
    """`edumatrix:backup:BackupPlatform`: vaults, locks, plan, selection, role, restore testing and alarms."""

    daily_vault_arn: pulumi.Output[str]
    six_hourly_vault_arn: pulumi.Output[str]
    copy_vault_arns: dict[str, pulumi.Output[str]]
    plan_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    restore_testing_plan_name: pulumi.Output[str]

    def __init__(self, name: str, args: BackupPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:backup:BackupPlatform", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # The vaults and their keys outlive any `pulumi destroy` where the locks are in compliance mode (prod):
        # a deleted key would make every recovery point in its vaults unreadable.
        kept = pulumi.ResourceOptions(parent=self, protect=args.compliance_lock)
        tags = dict(args.tags)
        key = PlatformKey(f"{name}-key", PlatformKeyArgs(
            description=f"{args.prefix}: AWS Backup vaults (recovery points of the shared instance)",
            alias=f"{args.prefix}-backup", tags=tags), opts=kept)

        def vault(suffix: str, retention: int, key_arn: pulumi.Input[str], region: str | None = None
                  ) -> aws.backup.Vault:
            vault_name = f"{args.prefix}-{suffix}"
            created = aws.backup.Vault(f"{name}-{suffix}", name=vault_name, kms_key_arn=key_arn, force_destroy=False,
                                       region=region, tags=tags, opts=kept)
            aws.backup.VaultLockConfiguration(
                f"{name}-{suffix}-lock", backup_vault_name=created.name, min_retention_days=retention,
                changeable_for_days=args.lock_grace_days if args.compliance_lock else None, region=region,
                opts=child)
            return created

        daily = vault("daily", args.daily_retention_days, key.arn)
        six_hourly = vault("six-hourly", args.six_hourly_retention_days, key.arn)
        copies: dict[str, aws.backup.Vault] = {}
        for region in args.copy_regions:
            regional_key = PlatformKey(f"{name}-key-{region}", PlatformKeyArgs(
                description=f"{args.prefix}: copies of its daily backups in {region}", alias=f"{args.prefix}-backup",
                region=region, tags=tags), opts=kept)
            copies[region] = vault(f"daily-{region}", args.copy_retention_days, regional_key.arn, region)

        def rule(rule_name: str, vault: aws.backup.Vault, schedule: str, days: int,
                 copies: Sequence[aws.backup.Vault] = ()) -> aws.backup.PlanRuleArgs:
            return aws.backup.PlanRuleArgs(
                rule_name=rule_name, target_vault_name=vault.name, schedule=schedule,
                schedule_expression_timezone=TIMEZONE, start_window=args.start_window_minutes,
                completion_window=args.completion_window_minutes, enable_continuous_backup=False,
                lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=days),
                recovery_point_tags={**tags, "rule": rule_name},
                copy_actions=[aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=args.copy_retention_days),
                ) for copy in copies])

        plan = aws.backup.Plan(
            f"{name}-plan", name=args.prefix, tags=tags, opts=child,
            rules=[rule("daily", daily, DAILY_SCHEDULE, args.daily_retention_days, list(copies.values())),
                   rule("six-hourly", six_hourly, SIX_HOURLY_SCHEDULE, args.six_hourly_retention_days)])

        role = aws.iam.Role(
            f"{name}-role", name=f"{args.prefix}-backup", description="AWS Backup: back up and restore the "
            "shared instance and the extraction targets (AWS's managed backup and restore policies only)",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags, opts=child)
        attachments = [aws.iam.RolePolicyAttachment(
            f"{name}-role-{policy}", role=role.name, opts=child,
            policy_arn=f"arn:{args.partition}:iam::aws:policy/service-role/{policy}") for policy in MANAGED_POLICIES]
        after_role = pulumi.ResourceOptions(parent=self, depends_on=attachments)
        aws.backup.Selection(
            f"{name}-selection", name=f"{args.prefix}-databases", plan_id=plan.id, iam_role_arn=role.arn,
            resources=[args.instance_arn],
            selection_tags=[aws.backup.SelectionSelectionTagArgs(type="STRINGEQUALS", key=SELECTION_TAG,
                                                                 value=args.stack)],
            opts=after_role)

        testing_name = args.prefix.replace("-", "_") + "_weekly"
        testing = aws.backup.RestoreTestingPlan(
            f"{name}-restore-testing", name=testing_name, schedule_expression=args.restore_test_schedule,
            schedule_expression_timezone=TIMEZONE, start_window_hours=1, tags=tags, opts=child,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW", include_vaults=[daily.arn], recovery_point_types=["SNAPSHOT"],
                selection_window_days=7))
        aws.backup.RestoreTestingSelection(
            f"{name}-restore-testing-selection", name=f"{testing_name}_instance",
            restore_testing_plan_name=testing.name, protected_resource_type="RDS", iam_role_arn=role.arn,
            protected_resource_arns=[args.instance_arn],
            # Without these, RDS restore tests go to the default VPC (AWS Backup, "Restore testing inferred
            # metadata"); here they land where the ops runner reaches them.
            restore_metadata_overrides={
                "dbsubnetgroupname": args.subnet_group_name,
                "vpcsecuritygroupids": pulumi.Output.from_input(args.security_group_id).apply(
                    lambda sg: json.dumps([sg])),
            },
            validation_window_hours=args.restore_test_validation_hours, opts=after_role)

        if args.alarm_topic_arn is not None:
            self._alarms(name, args, {"daily": daily, "six-hourly": six_hourly}, tags)

        self.daily_vault_arn = daily.arn
        self.six_hourly_vault_arn = six_hourly.arn
        self.copy_vault_arns = {region: v.arn for region, v in copies.items()}
        self.plan_id = plan.id
        self.role_arn = role.arn
        self.restore_testing_plan_name = testing.name
        self.register_outputs({
            "dailyVaultArn": self.daily_vault_arn, "sixHourlyVaultArn": self.six_hourly_vault_arn,
            "copyVaultArns": self.copy_vault_arns, "planId": self.plan_id, "roleArn": self.role_arn,
            "restoreTestingPlanName": self.restore_testing_plan_name,
        })

    def _alarms(self, name: str, args: BackupPlatformArgs, vaults: Mapping[str, aws.backup.Vault],
                tags: Mapping[str, str]) -> None:
        topic = args.alarm_topic_arn
        assert topic is not None  # the caller declares alarms only with a topic
        child = pulumi.ResourceOptions(parent=self)

        def alarm(suffix: str, description: str, *, namespace: str, metric: str,
                  dimensions: Mapping[str, pulumi.Input[str]], threshold: float = 0, period: int = 3600,
                  statistic: str = "Sum") -> None:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{suffix}", alarm_description=description, namespace=namespace, metric_name=metric,
                dimensions=dimensions, statistic=statistic, period=period, evaluation_periods=1,
                threshold=threshold, comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching",
                alarm_actions=[topic], ok_actions=[topic], tags=dict(tags), opts=child)

        for rule, v in vaults.items():
            alarm(f"{rule}-failed", f"An AWS Backup job into {args.prefix}-{rule} failed: the job's status message "
                  "says why (docs/recovery-runbook.md, 'Alarms')", namespace="AWS/Backup",
                  metric="NumberOfBackupJobsFailed", dimensions={"BackupVaultName": v.name})
            alarm(f"{rule}-expired", f"An AWS Backup job into {args.prefix}-{rule} did not start within its start "
                  "window (the instance was busy, e.g. its own backup window ran long)", namespace="AWS/Backup",
                  metric="NumberOfBackupJobsExpired", dimensions={"BackupVaultName": v.name})
            alarm(f"{rule}-copy-failed", f"Copying a recovery point of {args.prefix}-{rule} to another region "
                  "failed", namespace="AWS/Backup", metric="NumberOfCopyJobsFailed",
                  dimensions={"BackupVaultName": v.name})
        alarm("restore-failed", "An AWS Backup restore job of an RDS recovery point failed (the weekly restore "
              "test, or a restore someone started)", namespace="AWS/Backup", metric="NumberOfRestoreJobsFailed",
              dimensions={"ResourceType": "RDS"}, period=86_400)
        alarm("restore-validation-failed", "The weekly restore test restored an instance the ops runner found "
              "wrong (missing schema, isolation finding) or could not reach: its log and the restore job's "
              "validation message say what", namespace=METRICS_NAMESPACE, metric="RestoreValidationFailed",
              dimensions={"Environment": args.environment}, statistic="Maximum", period=86_400)
        alarm("backup-over-an-hour", f"A backup job of {args.environment} ran longer than "
              f"{BACKUP_WINDOW_MINUTES} minutes (spec 3.A: backups within a 1-hour window); the ops runner "
              "publishes BackupJobMinutes when AWS Backup reports the job complete", namespace=METRICS_NAMESPACE,
              metric=BACKUP_JOB_MINUTES, dimensions={"Environment": args.environment},
              threshold=BACKUP_WINDOW_MINUTES, statistic="Maximum", period=21_600)
