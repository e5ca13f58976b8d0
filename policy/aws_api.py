"""AWS preflight: constraints of the AWS APIs that the SDK's mocks do not enforce, so that a stack that would
fail forty minutes into `pulumi up` fails review instead. Every policy's description carries the error text
users see or the documentation it comes from; docs/policy-parity.md, "AWS preflight", lists them with their
sources. The config loader refuses the same combinations for the settings it knows (config/preflight.py,
config/regions.py), so a user meets these policies only when code, not a stack file, gets it wrong.

Facts about AWS (the storage rules, the per-family parameter tables) are read from `config/`, where the loader
reads them too: they describe AWS, not the platform's choices, and one table cannot disagree with itself. The
platform's own thresholds stay written here (docs/policy-parity.md, "Why the pack writes its own thresholds").
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.parameter_table import ParameterSpec, parameter_table
from config.preflight import storage_problems
from policy.base import (
    BACKUP_REPLICATION,
    INSTANCE,
    KMS_KEY,
    LOG_GROUP,
    PARAMETER_GROUP,
    PG_GRANT_ROLE,
    REGION_CONFIG,
    SECRET,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    arn_region,
    flag,
    is_aws_managed_key,
    is_cross_region_replica,
    is_postgres_instance,
    is_replica,
    of_type,
    setting,
    validation_region,
)

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SNS_TOPIC = "aws:sns/topic:Topic"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"

# terraform-provider-aws internal/service/rds/instance.go, `Timeouts`: create 40m, update 80m, delete 60m.
PROVIDER_TIMEOUT_SECONDS = {"create": 40 * 60, "update": 80 * 60, "delete": 60 * 60}
# "A PostgreSQL read replica reports a replication lag of up to five minutes if there are no user transactions
# occurring on the source DB instance" (AWS RDS user guide, read replicas for RDS for PostgreSQL).
IDLE_REPLICA_LAG_SECONDS = 300
INSIGHTS_RETENTION = {"standard": 7, "advanced": 465}
_IDENTIFIER = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*$")


def _family_table(props: Mapping[str, Any]) -> Any:
    try:
        return parameter_table(str(props.get("family") or ""))
    except KeyError:
        return None


def _params(props: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, value, apply method as the provider sends it: `immediate` unless given) of a parameter group."""
    return [(str(p.get("name")), str(p.get("value", "")), str(p.get("applyMethod") or "immediate"))
            for p in props.get("parameters") or [] if isinstance(p, Mapping) and p.get("name")]


def _known_params(props: Mapping[str, Any]) -> Iterator[tuple[ParameterSpec, str, str]]:
    """(spec, value, apply method) of every parameter the group's family table knows."""
    table = _family_table(props)
    for name, value, method in _params(props) if table is not None else ():
        spec = table.get(name)
        if spec is not None:
            yield spec, value, method


# -- RDS instances ---------------------------------------------------------------------------------------

def _source_manages_password(args: StackValidationArgs, report: ReportViolation) -> None:
    instances = of_type(args.resources, INSTANCE)
    other_stack = bool(setting(args, "sourceManagesMasterPassword", False))
    for replica in instances:
        if not is_replica(replica.props):
            continue
        wanted = str(replica.props.get("replicateSourceDb"))
        source = next((i for i in instances if i is not replica
                       and wanted in (str(i.props.get("arn")), str(i.props.get("identifier")))), None)
        managed = flag(source.props, "manageMasterUserPassword") if source is not None else other_stack
        if managed:
            report("the replication source manages its master password in Secrets Manager; RDS answers "
                   "\"InvalidParameterValue: Creating read replicas for source instance ... where "
                   "ManageMasterUserPassword is enabled is not supported\"", replica.urn)


replica_source_managed_password = StackPolicy(
    "aws-api-replica-source-managed-password",
    "No read replica of an instance whose master password RDS manages (\"Creating read replicas for source "
    "instance ... where ManageMasterUserPassword is enabled is not supported\"; AWS RDS user guide, \"Password "
    "management with Amazon RDS and AWS Secrets Manager\", limitations).",
    types=[INSTANCE], validate=_source_manages_password, severity=Severity.CRITICAL,
    controls=["issue 10 finding 1"],
    config={"sourceManagesMasterPassword": {"type": "boolean", "default": False, "description":
                                            "a region stack's primary (in another stack) uses rds-managed"}},
    remediation="Keep instance.masterPassword: platform (the default) on any stack with replicas or region stacks.",
)


def _master_password_inputs(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not is_postgres_instance(props):
        return
    given = [k for k in ("password", "passwordWo") if props.get(k)]
    if is_replica(props):
        sent = [k for k in ("password", "passwordWo", "username", "manageMasterUserPassword") if props.get(k)]
        if sent:
            report(f"a read replica inherits its source's master user; {', '.join(sent)} must not be set (\"Cannot "
                   "change master user password on an RDS postgres Read Replica because it uses physical "
                   "replication and therefore cannot differ from its parent\")", None)
        return
    if flag(props, "manageMasterUserPassword") and given:
        report(f"manageMasterUserPassword \"cannot be set if password or password_wo is provided\" (got "
               f"{', '.join(given)})", None)
    if props.get("passwordWo") and props.get("passwordWoVersion") is None:
        report("passwordWo \"requires password_wo_version to be set\"", None)


master_password_inputs = TypedResourcePolicy(
    "aws-api-master-password-inputs",
    "Master password inputs RDS accepts: a managed password or a (write-only) one, never both; passwordWo with "
    "passwordWoVersion; nothing on a replica (pulumi_aws rds/instance.py docstrings; terraform-aws-modules/"
    "terraform-aws-rds#526).",
    types=[INSTANCE], validate=_master_password_inputs, severity=Severity.HIGH,
    controls=["issue 10 finding 1"],
    remediation="components/shared_instance.py passes password_wo with a fixed password_wo_version; replicas none.",
)


def _timeouts(args: ResourceValidationArgs, report: ReportViolation) -> None:
    timeouts = args.opts.custom_timeouts
    short = [f"{op} {int(getattr(timeouts, f'{op}_seconds') or 0) // 60}m" for op, floor in
             PROVIDER_TIMEOUT_SECONDS.items() if (getattr(timeouts, f"{op}_seconds") or 0) < floor]
    if short:
        report(f"custom timeouts missing or below the provider's defaults ({', '.join(short)}; defaults create 40m, "
               "update 80m, delete 60m): a cross-region replica of a large primary or a promotion with its "
               "Multi-AZ conversion outlasts them and fails the `up` half-way", None)


rds_timeouts = TypedResourcePolicy(
    "aws-api-rds-timeouts",
    "Every RDS instance sets custom timeouts at least the provider's defaults (terraform-provider-aws "
    "internal/service/rds/instance.go: create 40m, update 80m, delete 60m).",
    types=[INSTANCE], validate=_timeouts, severity=Severity.MEDIUM,
    controls=["issue 10 finding 2"],
    remediation="Pass opts=ResourceOptions(custom_timeouts=instance_posture.custom_timeouts(settings.timeouts)).",
)


def _retained(args: ResourceValidationArgs, report: ReportViolation) -> None:
    retained = getattr(args.opts, "retain_on_delete", None)
    if retained is None:
        args.not_applicable("the analyzer protocol does not carry retain_on_delete; the offline gate checks it")
    elif not retained:
        report("without retain_on_delete, removing this resource (a promotion does) calls the source region and "
               "waits up to 75 minutes for it: during the outage that prompted the promotion the `up` fails", None)


backup_replication_retained = TypedResourcePolicy(
    "aws-api-backup-replication-retain",
    "Automated-backup replication is declared retain_on_delete: its delete waits on the source region "
    "(terraform-provider-aws instance_automated_backups_replication.go), which is down during a failover.",
    types=[BACKUP_REPLICATION], validate=_retained, severity=Severity.HIGH,
    controls=["issue 10 finding 3"],
    remediation="opts=ResourceOptions(retain_on_delete=True); stop the replication by hand later "
                "(docs/failover-runbook.md).",
)


def _replica_kms(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not is_postgres_instance(props) or not is_replica(props):
        return
    cross = is_cross_region_replica(props, validation_region(args))
    if cross and not props.get("kmsKeyId"):
        report("a cross-region replica of an encrypted source needs kmsKeyId, a key of its own region: "
               "\"InvalidParameterCombination: Cannot create a cross region unencrypted read replica from "
               "encrypted source.\"", None)
    elif not cross and props.get("kmsKeyId"):
        report("a same-region replica always uses its source's key: \"InvalidParameterCombination: Your request "
               "does not require the KMS key parameter. Please remove the KMS key parameter and try your request "
               "again.\"", None)


replica_kms_key = TypedResourcePolicy(
    "aws-api-replica-kms-key",
    "Cross-region replicas name a KMS key of their region; same-region replicas name none (CreateDBInstanceReadReplica "
    "`KmsKeyId`; cloudposse/terraform-aws-rds-replica#5, terraform-aws-modules/terraform-aws-rds#428).",
    types=[INSTANCE], validate=_replica_kms, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="components/read_replicas.py passes no key; components/region_replica.py the regional PlatformKey.",
)

_KEY_INPUTS = {
    INSTANCE: ("kmsKeyId", "performanceInsightsKmsKeyId", "masterUserSecretKmsKeyId"),
    BACKUP_REPLICATION: ("kmsKeyId",),
    LOG_GROUP: ("kmsKeyId",),
    SNS_TOPIC: ("kmsMasterKeyId",),
    SECRET: ("kmsKeyId",),
}


def _keys_of_region(args: ResourceValidationArgs, report: ReportViolation) -> None:
    region = validation_region(args)
    for key_input in _KEY_INPUTS.get(args.resource_type, ()):
        key_region = arn_region(args.props.get(key_input))
        if region and key_region and key_region != region:
            report(f"{key_input} is a key of {key_region}, the resource is in {region}: \"KMSKeyNotAccessibleFault: "
                   "The specified KMS key [...] does not exist, is not enabled or you do not have permissions to "
                   "access it.\" (KMS keys are regional)", None)


kms_key_region = TypedResourcePolicy(
    "aws-api-kms-key-region",
    "Every KMS key a resource names lives in the resource's region (KMSKeyNotAccessibleFault; "
    "hashicorp/terraform-provider-aws#16362).",
    types=list(_KEY_INPUTS), validate=_keys_of_region, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="Use the PlatformKey declared in the resource's region.",
)


def _storage(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not is_postgres_instance(props) or is_replica(props):
        return  # a replica's size is its source's
    allocated = props.get("allocatedStorage")
    if not isinstance(allocated, int | float):
        return
    for key, message, _fix in storage_problems(str(props.get("storageType") or "gp2"), int(allocated),
                                               props.get("iops"), props.get("storageThroughput")):
        report(f"{key}: {message}", None)


rds_storage = TypedResourcePolicy(
    "aws-api-rds-storage",
    "Storage RDS for PostgreSQL accepts: io1/io2 with iops (0.5-50 per GiB, from 100 GiB); gp3 iops/throughput only "
    "from 400 GiB and not below its baseline (\"You can't specify IOPS or storage throughput for engine postgres "
    "and a storage size less than 400\"; \"Invalid iops to max storage (GB) ratio\").",
    types=[INSTANCE], validate=_storage, severity=Severity.HIGH,
    controls=["issue 10 finding 7"],
    remediation="Set instance.storageType/iops/storageThroughputMibps within the rules (config/preflight.py).",
)


def _identifier(args: ResourceValidationArgs, report: ReportViolation) -> None:
    identifier = str(args.props.get("identifier") or "")
    if not identifier or not is_postgres_instance(args.props):
        return
    if len(identifier) > 63 or not _IDENTIFIER.match(identifier) or identifier.endswith("-"):
        report(f"identifier {identifier!r}: RDS takes 1-63 lowercase letters, digits and hyphens, starting with a "
               "letter, without '--' or a trailing '-' (DBInstanceIdentifier)", None)


rds_identifier = TypedResourcePolicy(
    "aws-api-rds-identifier",
    "Instance identifiers follow RDS's DBInstanceIdentifier rules (1-63 characters, letter first, no '--', no "
    "trailing '-'), replicas' `-replica-N` included (AWS RDS API CreateDBInstance).",
    types=[INSTANCE], validate=_identifier, severity=Severity.HIGH,
    controls=["issue 10 finding 7"],
    remediation="Shorten instance.identifier (or the stack name it derives from).",
)


def _retention(args: ResourceValidationArgs, report: ReportViolation) -> None:
    days = args.props.get("backupRetentionPeriod")
    if is_postgres_instance(args.props) and isinstance(days, int | float) and not 0 <= days <= 35:
        report(f"backupRetentionPeriod {days}: RDS keeps automated backups 0-35 days", None)


backup_retention_range = TypedResourcePolicy(
    "aws-api-backup-retention",
    "Automated backups are kept 0-35 days, the range RDS accepts (CreateDBInstance BackupRetentionPeriod).",
    types=[INSTANCE], validate=_retention, severity=Severity.HIGH,
    controls=["issue 10 finding 7"],
    remediation="Use backupRetentionDays 1-35.",
)


def _lifecycle(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Instances created with CreateDBInstance (engine given); replicas and their promotions inherit their source's.
    if args.props.get("engine") == "postgres" and not args.props.get("engineLifecycleSupport"):
        report("engineLifecycleSupport is not set: RDS then enrolls the instance in Extended Support, billed once "
               "the major version's standard support ends (default `open-source-rds-extended-support`)", None)


engine_lifecycle = TypedResourcePolicy(
    "aws-api-engine-lifecycle",
    "Instances state their engine lifecycle (pulumi_aws rds/instance.py `engine_lifecycle_support`: \"Default value "
    "is open-source-rds-extended-support\"; https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/extended-support.html).",
    types=[INSTANCE], validate=_lifecycle, severity=Severity.MEDIUM,
    controls=["issue 10 finding 8"],
    remediation="instance.extendedSupport (default false) sets open-source-rds-extended-support-disabled.",
)


def _insights(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not is_postgres_instance(props) or not flag(props, "performanceInsightsEnabled"):
        return
    mode = props.get("databaseInsightsMode")
    if mode not in INSIGHTS_RETENTION:
        report("databaseInsightsMode is not set (standard or advanced): the Performance Insights console is "
               "retired and RDS picks a mode", None)
        return
    days = props.get("performanceInsightsRetentionPeriod")
    if days is not None and days != INSIGHTS_RETENTION[mode]:
        report(f"Database Insights {mode} keeps {INSIGHTS_RETENTION[mode]} days, not {days} (aws/aws-cdk#32851: "
               "advanced needs performanceInsightRetention 465)", None)


database_insights = TypedResourcePolicy(
    "aws-api-database-insights",
    "Database Insights mode stated, with its retention (standard 7 days, advanced 465; SDK `database_insights_mode`; "
    "the Performance Insights end-of-life notice quoted in SummitRoute/aws_breaking_changes#134).",
    types=[INSTANCE], validate=_insights, severity=Severity.MEDIUM,
    controls=["issue 10 finding 8"],
    remediation="instance.databaseInsightsMode (default standard) with performanceInsightsRetentionDays 7 or 465.",
)


# -- parameter groups ------------------------------------------------------------------------------------

def _parameters_known(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not str(args.props.get("family") or "").startswith("postgres"):
        return
    table = _family_table(args.props)
    if table is None:
        report(f"no parameter table for {args.props.get('family')} is checked in (config/rds_parameters): its "
               "parameters cannot be checked", None)
        return
    for name, value, _ in _params(args.props):
        spec = table.get(name)
        if spec is None:
            report(f"{name!r} is not a {table.family} parameter on RDS (\"InvalidParameterValue\")", None)
        elif (problem := spec.value_problem(value)) is not None:
            report(problem, None)


parameters_known = TypedResourcePolicy(
    "aws-api-parameter-known",
    "Every parameter exists in the group's family on RDS and takes the value given (config/rds_parameters/"
    "postgres<N>.json: pg_settings of that PostgreSQL plus AWS's documented rds.* parameters; TLSv1.3 only from "
    "postgres16: \"RDS for PostgreSQL 16 and later supports TLS version 1.3\").",
    types=[PARAMETER_GROUP], validate=_parameters_known, severity=Severity.HIGH,
    controls=["issue 10 preflight", "spec 4.A inTransit"],
    remediation="Use parameter names and values of the family's table (instance.parameters, sslMinProtocolVersion).",
)


def _static_immediate(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for spec, _, method in _known_params(args.props):
        if spec.apply == "static" and method != "pending-reboot":
            report(f"{spec.name} is static: \"InvalidParameterCombination: cannot use immediate apply method for "
                   "static parameter\" (the provider sends `immediate` when applyMethod is not given)", None)


static_parameter_pending_reboot = TypedResourcePolicy(
    "aws-api-static-parameter-immediate",
    "Static parameters are applied pending-reboot (\"cannot use immediate apply method for static parameter\", "
    "ministryofjustice/cloud-platform#1197); which ones are static: config/rds_parameters.",
    types=[PARAMETER_GROUP], validate=_static_immediate, severity=Severity.HIGH,
    controls=["issue 10 finding 9", "issue 10 preflight"],
    remediation="config/parameters.py takes the apply method from the family's table.",
)


def _family_default(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for spec, value, _ in _known_params(args.props):
        if spec.rds_default is not None and spec.rds_default == value:
            report(f"{spec.name}={value} is the {args.props.get('family')} default on RDS: the provider never reads "
                   "it back, so every preview shows a change (hashicorp/terraform-provider-aws#23335)", None)


parameter_family_default = TypedResourcePolicy(
    "aws-api-parameter-family-default",
    "No parameter is set to its family's default on RDS, which gives a perpetual diff (rds.force_ssl=1 on "
    "postgres15+: cloud-gov/terraform-provision#1863; the SDK's \"Problematic Plan Changes\" note).",
    types=[PARAMETER_GROUP], validate=_family_default, severity=Severity.MEDIUM,
    controls=["issue 10 finding 6"],
    remediation="Leave the parameter out (config/parameters.py drops family defaults).",
)


# -- alarms and their topics -----------------------------------------------------------------------------

def _actions(props: Mapping[str, Any]) -> list[str]:
    return [str(a) for k in ("alarmActions", "okActions", "insufficientDataActions") for a in props.get(k) or []]


def _alarm_topic_region(args: ResourceValidationArgs, report: ReportViolation) -> None:
    region = validation_region(args)
    for action in _actions(args.props):
        action_region = arn_region(action)
        if action.startswith("arn:") and ":sns:" in action and region and action_region != region:
            report(f"{action} is a topic of {action_region}; CloudWatch alarms notify SNS topics of their own region "
                   f"({region})", None)


alarm_topic_region = TypedResourcePolicy(
    "aws-api-alarm-topic-region",
    "Alarm actions name SNS topics of the alarm's region (CloudWatch PutMetricAlarm AlarmActions; the loader's "
    "\"CloudWatch alarms can only notify an SNS topic in their own region\").",
    types=[METRIC_ALARM], validate=_alarm_topic_region, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="Use a topic of the alarm's region (alarmTopicArn), or let the stack declare one.",
)


def _replica_lag_alarm(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if props.get("metricName") != "ReplicaLag" or props.get("namespace") != "AWS/RDS":
        return
    threshold = props.get("threshold")
    if isinstance(threshold, int | float) and threshold <= IDLE_REPLICA_LAG_SECONDS:
        report(f"threshold {threshold} s: a PostgreSQL replica reports up to {IDLE_REPLICA_LAG_SECONDS} s of lag "
               "when its source has no writes, so this pages on quiet primaries", None)
    if props.get("treatMissingData") == "breaching":
        report("treatMissingData breaching pages whenever the metric has a gap", None)


replica_lag_alarm = TypedResourcePolicy(
    "aws-api-replica-lag-alarm",
    "ReplicaLag alarms page on real lag: threshold above 300 s and missing data not breaching (\"A PostgreSQL read "
    "replica reports a replication lag of up to five minutes if there are no user transactions occurring on the "
    "source DB instance\", AWS RDS user guide).",
    types=[METRIC_ALARM], validate=_replica_lag_alarm, severity=Severity.MEDIUM,
    controls=["issue 10 finding 5"],
    remediation="lagThresholdSeconds (default 600); components/lag_alarms.py treats missing data as missing.",
)


def _policy_statements(key: PolicyResource) -> list[Mapping[str, Any]]:
    try:
        return list(json.loads(str(key.props.get("policy") or "{}")).get("Statement") or [])
    except ValueError:
        return []


def _grants_cloudwatch(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal") or {}
    services = principal.get("Service") if isinstance(principal, Mapping) else None
    return "cloudwatch.amazonaws.com" in ([services] if isinstance(services, str) else list(services or []))


def _alarm_topic_key(args: StackValidationArgs, report: ReportViolation) -> None:
    alarm_targets = {a for alarm in of_type(args.resources, METRIC_ALARM) for a in _actions(alarm.props)}
    keys = {str(k.props.get(f)): k for k in of_type(args.resources, KMS_KEY)
            for f in ("arn", "keyId") if k.props.get(f)}
    users: dict[str, list[PolicyResource]] = {}
    for res in args.resources:
        for field in ("kmsKeyId", "kmsMasterKeyId", "performanceInsightsKmsKeyId", "masterUserSecretKmsKeyId"):
            if res.props.get(field):
                users.setdefault(str(res.props[field]), []).append(res)
    for topic in of_type(args.resources, SNS_TOPIC):
        if str(topic.props.get("arn")) not in alarm_targets:
            continue
        key_id = topic.props.get("kmsMasterKeyId")
        if not key_id or is_aws_managed_key(key_id):
            report(f"alarm topic key {key_id or 'unset'!r}: CloudWatch alarms cannot publish to a topic encrypted with "
                   "alias/aws/sns (\"CloudWatch Alarms does not have authorization to access the SNS topic encryption "
                   "key\"); use a customer-managed key", topic.urn)
            continue
        key = keys.get(str(key_id))
        if key is None:
            continue  # a key of another stack: its policy is not visible here
        grants = [s for s in _policy_statements(key) if _grants_cloudwatch(s)]
        if not grants:
            report("the topic's key does not let cloudwatch.amazonaws.com use it (kms:Decrypt, kms:GenerateDataKey*): "
                   "alarms cannot publish", topic.urn)
            continue
        shared = [r.name for r in users.get(str(key_id), []) if r.resource_type != SNS_TOPIC]
        if shared and not any("aws:sns:topicArn" in json.dumps(s.get("Condition") or {}) for s in grants):
            report(f"the alarm topic's key also encrypts {', '.join(sorted(shared))}; give the topic a key of its own "
                   "or condition CloudWatch's grant on the topic", topic.urn)


alarm_topic_key = StackPolicy(
    "aws-api-alarm-topic-key",
    "An alarm topic is encrypted with a customer-managed key that lets CloudWatch alarms publish, and that key "
    "serves the topic only or conditions CloudWatch's grant on it (repost.aws knowledge center "
    "\"cloudwatch-configure-alarm-sns\").",
    types=[SNS_TOPIC, KMS_KEY, METRIC_ALARM], validate=_alarm_topic_key, severity=Severity.MEDIUM,
    controls=["issue 10 finding 8"],
    remediation="Page the region's AlarmTopic (components/alarm_topic.py), whose key serves that topic only.",
)


# -- secrets ---------------------------------------------------------------------------------------------

def _replicas(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [r for r in props.get("replicas") or [] if isinstance(r, Mapping)]


def _secret_replica_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for replica in _replicas(args.props):
        region, key = replica.get("region"), replica.get("kmsKeyId")
        if not key or is_aws_managed_key(key):
            report(f"the replica in {region} has no customer-managed key: Secrets Manager would use aws/secretsmanager "
                   "there", None)
        elif arn_region(key) and arn_region(key) != region:
            report(f"the replica in {region} names a key of {arn_region(key)}: a replica's key must be in its region",
                   None)


secret_replica_cmk = TypedResourcePolicy(
    "aws-api-secret-replica-cmk",
    "Secret replicas are encrypted with a customer-managed key of their own region (pulumi_aws secretsmanager "
    "`replicas[].kms_key_id`: \"ARN, Key ID, or Alias of the AWS KMS key within the region secret is replicated "
    "to\"; without it the replica uses aws/secretsmanager).",
    types=[SECRET], validate=_secret_replica_cmk, severity=Severity.HIGH,
    controls=["issue 10 finding 4", "spec 4.A atRest"],
    remediation="components/secrets.replica_args with the primary stack's PlatformKey in each replica region.",
)


def _secret_replica_regions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    wanted = set(setting(args, "regions", []))
    missing = sorted(wanted - {str(r.get("region")) for r in _replicas(args.props)})
    if missing:
        report(f"no copy in {', '.join(missing)}: a region stack there, once promoted, finds no credentials", None)


secret_replica_regions = TypedResourcePolicy(
    "aws-api-secret-replica-regions",
    "Every credential secret has a copy in each region stack's region (a promoted region must find its "
    "credentials; Secrets Manager \"Replicate secrets\").",
    types=[SECRET], validate=_secret_replica_regions, severity=Severity.HIGH,
    controls=["issue 10 finding 4"],
    config={"regions": {"type": "array", "items": {"type": "string"}, "default": [],
                        "description": "secrets.replicaRegions of the stack"}},
    remediation="List the region stacks' regions in secrets.replicaRegions of the primary stack.",
)


def _rotation_rds_password(args: StackValidationArgs, report: ReportViolation) -> None:
    restricted = any(
        (name.lower(), value) == ("rds.restrict_password_commands", "1")
        for group in of_type(args.resources, PARAMETER_GROUP) for name, value, _ in _params(group.props))
    if not restricted:
        return
    members = {str(g.props.get("role")) for g in of_type(args.resources, PG_GRANT_ROLE)
               if g.props.get("grantRole") == "rds_password"}
    masters = {str(i.props.get("username")) for i in of_type(args.resources, INSTANCE) if i.props.get("username")}
    secrets = {str(s.props.get(f)): s for s in of_type(args.resources, SECRET) for f in ("arn", "id")
               if s.props.get(f)}
    for rotation in of_type(args.resources, SECRET_ROTATION):
        secret = secrets.get(str(rotation.props.get("secretId")))
        role = str(((secret.props.get("tags") or {}) if secret else {}).get("db-role") or "")
        if role and role not in members | masters:
            report(f"{role} is rotated by the single-user function (which runs ALTER USER as {role}) but is not a "
                   "member of rds_password: \"ERROR: must be a member of rds_password to alter passwords\"",
                   rotation.urn)


rotation_rds_password = StackPolicy(
    "aws-api-rotation-rds-password",
    "With rds.restrict_password_commands=1, every login rotated by the single-user function is in rds_password "
    "(AWS RDS user guide, \"Delegating and controlling user password management\": \"must be a member of "
    "rds_password to alter passwords\"); the master is, through rds_superuser.",
    types=[SECRET_ROTATION, SECRET, PG_GRANT_ROLE, PARAMETER_GROUP], validate=_rotation_rds_password,
    severity=Severity.HIGH, controls=["issue 10 finding 9"],
    remediation="components/service_schema.py grants rds_password to every login whose secret it rotates.",
)


POLICIES: list[PackPolicy] = [
    replica_source_managed_password, master_password_inputs, rds_timeouts, backup_replication_retained,
    replica_kms_key, kms_key_region, rds_storage, rds_identifier, backup_retention_range, engine_lifecycle,
    database_insights, parameters_known, static_parameter_pending_reboot, parameter_family_default,
    alarm_topic_region, replica_lag_alarm, alarm_topic_key, secret_replica_cmk, secret_replica_regions,
    rotation_rds_password,
]
