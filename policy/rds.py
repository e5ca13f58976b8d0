"""Posture of RDS for PostgreSQL instances: Security Hub RDS controls and their checkov twins."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.settings import CURRENT_CA_IDENTIFIERS, DEFAULT_ADMIN_NAMES
from policy.base import (
    INSTANCE,
    PARAMETER_GROUP,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    flag,
    is_postgres_instance,
    is_replica,
    of_type,
    setting,
)

MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
# Log types RDS for PostgreSQL can export; Security Hub RDS.9 asks for both, RDS.36 for `postgresql`.
LOG_TYPES = ("postgresql", "upgrade")
MINIMUM_RETENTION_DAYS = 7
MAX_MONITORING_INTERVAL = 60


def _postgres(args: ResourceValidationArgs) -> bool:
    return is_postgres_instance(args.props)


def _not_public(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args):
        return
    if args.props.get("publiclyAccessible") is not False:
        report("publiclyAccessible must be false (the instance must not get a public IP address)", None)
    if not args.props.get("dbSubnetGroupName") and not is_replica(args.props):
        report("dbSubnetGroupName is not set: the instance would land in the default VPC", None)


not_publicly_accessible = TypedResourcePolicy(
    "rds-not-publicly-accessible",
    "RDS instances are private: not publicly accessible and placed in the platform's subnet group.",
    types=[INSTANCE], validate=_not_public, severity=Severity.CRITICAL,
    controls=["RDS.2", "RDS.18", "CKV_AWS_17"],
    remediation="Set publicly_accessible=False and db_subnet_group_name to the private subnet group "
                "(components/network.py).",
)


def _storage_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args):
        return
    value = args.props.get("storageEncrypted")
    # A replica inherits encryption from its source; it may omit the flag but never turn it off.
    if value is False or (value is None and not is_replica(args.props)):
        report("storageEncrypted must be true", None)


storage_encrypted = TypedResourcePolicy(
    "rds-storage-encrypted",
    "RDS storage is encrypted at rest.",
    types=[INSTANCE], validate=_storage_encrypted, severity=Severity.CRITICAL,
    controls=["RDS.3", "CKV_AWS_16"],
    remediation="Set storage_encrypted=True with kms_key_id of the platform key (encryption cannot be added "
                "later: restore from an encrypted snapshot copy).",
)


def _multi_az(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args) or is_replica(args.props) or not setting(args, "required", True):
        return
    if not flag(args.props, "multiAz"):
        # An extraction target whose stack file says why it runs in one zone (config/extraction_plan.py).
        if args.props.get("identifier") in (setting(args, "singleAzTargets", {}) or {}):
            return
        report("multiAz must be true in this environment (standby in a second availability zone)", None)


multi_az = TypedResourcePolicy(
    "rds-multi-az",
    "Primary RDS instances run Multi-AZ where the environment requires it (prod).",
    types=[INSTANCE], validate=_multi_az, severity=Severity.HIGH,
    controls=["RDS.5", "CKV_AWS_157"],
    config={"required": {"type": "boolean", "default": True,
                         "description": "Whether Multi-AZ is required (policy/config/<env>.json)"},
            "singleAzTargets": {"type": "object", "default": {},
                                "description": "extraction targets allowed one zone: identifier -> the stack "
                                               "file's reason (edumatrix-db policy-config fills it)"}},
    remediation="Remove `multiAz: false` from the stack file (only dev may turn it off; an extraction target "
                "may, with extractions.<service>.instance.singleAzReason).",
)


def _deletion_protection(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args) or not setting(args, "required", True):
        return
    if not flag(args.props, "deletionProtection"):
        report("deletionProtection must be true in this environment", None)


deletion_protection = TypedResourcePolicy(
    "rds-deletion-protection",
    "RDS instances are deletion-protected where the environment requires it (prod).",
    types=[INSTANCE], validate=_deletion_protection, severity=Severity.HIGH,
    controls=["RDS.8", "CKV_AWS_293"],
    config={"required": {"type": "boolean", "default": True,
                         "description": "Whether deletion protection is required"}},
    remediation="Remove `deletionProtection: false` from the stack file.",
)


def _enhanced_monitoring(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args):
        return
    interval = args.props.get("monitoringInterval") or 0
    limit = setting(args, "maxIntervalSeconds", MAX_MONITORING_INTERVAL)
    if interval not in MONITORING_INTERVALS or interval > limit:
        report(f"monitoringInterval is {interval}; enhanced monitoring needs one of "
               f"{', '.join(str(i) for i in MONITORING_INTERVALS if i <= limit)} seconds", None)
    elif not args.props.get("monitoringRoleArn"):
        report("monitoringRoleArn is not set: enhanced monitoring has no role to publish with", None)


enhanced_monitoring = TypedResourcePolicy(
    "rds-enhanced-monitoring",
    "Enhanced monitoring publishes OS metrics at least every 60 seconds.",
    types=[INSTANCE], validate=_enhanced_monitoring, severity=Severity.MEDIUM,
    controls=["RDS.6", "CKV_AWS_118"],
    config={"maxIntervalSeconds": {"type": "integer", "default": MAX_MONITORING_INTERVAL,
                                   "enum": list(MONITORING_INTERVALS)}},
    remediation="Set monitoringIntervalSeconds to 60 or less; the component attaches the monitoring role.",
)


def _log_exports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _postgres(args):
        return
    required = setting(args, "logTypes", list(LOG_TYPES))
    exported = set(args.props.get("enabledCloudwatchLogsExports") or [])
    missing = [t for t in required if t not in exported]
    if missing:
        report(f"enabledCloudwatchLogsExports lacks {', '.join(missing)}", None)


log_exports = TypedResourcePolicy(
    "rds-log-exports",
    "PostgreSQL and upgrade logs are published to CloudWatch Logs.",
    types=[INSTANCE], validate=_log_exports, severity=Severity.MEDIUM,
    controls=["RDS.9", "RDS.36", "CKV_AWS_129"],
    config={"logTypes": {"type": "array", "items": {"type": "string", "enum": list(LOG_TYPES)},
                         "default": list(LOG_TYPES)}},
    remediation="Export ['postgresql', 'upgrade'] (components/log_groups.py LOG_EXPORTS).",
)


def _iam_auth(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _postgres(args) and not flag(args.props, "iamDatabaseAuthenticationEnabled"):
        report("iamDatabaseAuthenticationEnabled must be true", None)


iam_authentication = TypedResourcePolicy(
    "rds-iam-authentication",
    "IAM database authentication is enabled.",
    types=[INSTANCE], validate=_iam_auth, severity=Severity.MEDIUM,
    controls=["RDS.10", "CKV_AWS_161"],
    remediation="Set iam_database_authentication_enabled=True (the default of InstanceSettings.iam_auth).",
)


def _backups(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # Read replicas are covered by their source's backups (Security Hub RDS.11 does not evaluate them).
    if not _postgres(args) or is_replica(args.props):
        return
    days = args.props.get("backupRetentionPeriod") or 0
    minimum = setting(args, "minimumRetentionDays", MINIMUM_RETENTION_DAYS)
    if days < minimum:
        report(f"backupRetentionPeriod is {days} days; this environment needs at least {minimum}", None)


automated_backups = TypedResourcePolicy(
    "rds-automated-backups",
    "Automated backups are kept at least the environment's minimum (spec: 30 days in prod).",
    types=[INSTANCE], validate=_backups, severity=Severity.HIGH,
    controls=["RDS.11", "CKV_AWS_133"],
    config={"minimumRetentionDays": {"type": "integer", "minimum": 1, "maximum": 35,
                                     "default": MINIMUM_RETENTION_DAYS}},
    remediation="Raise backupRetentionDays in the stack file (prod: 30).",
)


def _minor_upgrades(args: ResourceValidationArgs, report: ReportViolation) -> None:
    # AWS defaults to true; only an explicit false fails.
    if _postgres(args) and args.props.get("autoMinorVersionUpgrade") is False:
        report("autoMinorVersionUpgrade is false", None)


auto_minor_version_upgrade = TypedResourcePolicy(
    "rds-auto-minor-version-upgrade",
    "Minor engine upgrades are applied automatically in the maintenance window.",
    types=[INSTANCE], validate=_minor_upgrades, severity=Severity.MEDIUM,
    controls=["RDS.13", "CKV_AWS_226"],
    remediation="Remove `autoMinorVersionUpgrade: false` from the stack file.",
)


def _copy_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _postgres(args) and not flag(args.props, "copyTagsToSnapshot"):
        report("copyTagsToSnapshot must be true", None)


copy_tags_to_snapshot = TypedResourcePolicy(
    "rds-copy-tags-to-snapshot",
    "Snapshots carry the instance's tags.",
    types=[INSTANCE], validate=_copy_tags, severity=Severity.LOW,
    controls=["RDS.17", "CKV2_AWS_60"],
    remediation="Set copy_tags_to_snapshot=True.",
)


def _admin_name(args: ResourceValidationArgs, report: ReportViolation) -> None:
    username = args.props.get("username")
    if _postgres(args) and not is_replica(args.props) and (not username or username in DEFAULT_ADMIN_NAMES):
        report(f"username {username!r} is a default admin name (or missing); choose a custom one", None)


custom_admin_username = TypedResourcePolicy(
    "rds-custom-admin-username",
    "The master user has a non-default name.",
    types=[INSTANCE], validate=_admin_name, severity=Severity.MEDIUM,
    controls=["RDS.25"],
    remediation="Set masterUsername to a project-specific name (default edumatrix_admin).",
)


def _ca(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _postgres(args) and args.props.get("caCertIdentifier") not in CURRENT_CA_IDENTIFIERS:
        report(f"caCertIdentifier {args.props.get('caCertIdentifier')!r} is not one of "
               f"{', '.join(CURRENT_CA_IDENTIFIERS)}", None)


current_ca = TypedResourcePolicy(
    "rds-current-ca-certificate",
    "The server certificate is signed by a current RDS CA.",
    types=[INSTANCE], validate=_ca, severity=Severity.MEDIUM,
    controls=["CKV_AWS_211"],
    remediation="Set caCertIdentifier to rds-ca-rsa2048-g1 (default), rds-ca-rsa4096-g1 or rds-ca-ecc384-g1.",
)


def _performance_insights(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if _postgres(args) and not flag(args.props, "performanceInsightsEnabled"):
        report("performanceInsightsEnabled must be true", None)


performance_insights = TypedResourcePolicy(
    "rds-performance-insights",
    "Performance Insights is enabled.",
    types=[INSTANCE], validate=_performance_insights, severity=Severity.LOW,
    controls=["CKV_AWS_353"],
    remediation="Set performance_insights_enabled=True with the platform key.",
)


def _platform_parameter_group(args: StackValidationArgs, report: ReportViolation) -> None:
    declared = {str(g.props.get("name")) for g in of_type(args.resources, PARAMETER_GROUP) if g.props.get("name")}
    for inst in of_type(args.resources, INSTANCE):
        if not is_postgres_instance(inst.props):
            continue
        name = inst.props.get("parameterGroupName")
        if not name:
            report("no parameterGroupName: the engine default group does not enforce TLS, pgaudit or logical "
                   "replication", inst.urn)
        elif name not in declared:
            report(f"parameterGroupName {name!r} is not a parameter group of this stack, so its parameters "
                   "cannot be checked", inst.urn)


platform_parameter_group = StackPolicy(
    "rds-platform-parameter-group",
    "Every PostgreSQL instance uses a parameter group declared in the stack (so parameter policies see it).",
    types=[INSTANCE, PARAMETER_GROUP], validate=_platform_parameter_group, severity=Severity.HIGH,
    controls=["CKV2_AWS_69", "CKV2_AWS_30"],
    remediation="Pass the DatabaseParameterGroup's name as parameter_group_name.",
)

POLICIES: list[PackPolicy] = [
    not_publicly_accessible, storage_encrypted, multi_az, deletion_protection, enhanced_monitoring, log_exports,
    iam_authentication, automated_backups, auto_minor_version_upgrade, copy_tags_to_snapshot,
    custom_admin_username, current_ca, performance_insights, platform_parameter_group,
]
