"""Encryption: customer-managed KMS keys everywhere data rests (spec 4.A: AES-256 at rest, keys rotated)
and TLS in transit (rds.force_ssl, a minimum protocol version, proxies requiring TLS)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policy.base import (
    BACKUP_REPLICATION,
    BACKUP_VAULT,
    INSTANCE,
    KMS_KEY,
    LOG_GROUP,
    PARAMETER_GROUP,
    PROXY,
    SECRET,
    PackPolicy,
    TypedResourcePolicy,
    flag,
    is_aws_managed_key,
    is_cross_region_replica,
    is_postgres_family,
    is_postgres_instance,
    is_replica,
    parameters,
    resource_region,
    setting,
    tls_rank,
)

# The spec (4.A) asks TLS 1.3 in transit; RDS for PostgreSQL offers it from 16 ("RDS for PostgreSQL 16 and later
# supports TLS version 1.3", AWS RDS user guide), RDS Proxy speaks TLS 1.2, and some clients fail against a
# TLS-1.3-only server (prisma/orm#24943). The gate's floor is therefore 1.2, as the stacks' default (README, "TLS").
MINIMUM_TLS = "TLSv1.2"
# rds.force_ssl defaults to 1 from postgres15 on RDS ("For PostgreSQL versions 15+ ... SSL is required", AWS RDS user
# guide, as quoted in cloud-gov/cg-site#2417); the platform leaves it out there, since a parameter set to its family
# default shows a diff on every preview (cloud-gov/terraform-provision#1863).
FORCE_SSL_DEFAULT_FROM = 15


def _cmk_problem(what: str, key: Any) -> str | None:
    if not key:
        return f"{what} is not set: AWS would use its own managed key instead of the platform's CMK"
    if is_aws_managed_key(key):
        return f"{what} {key!r} is an AWS-managed key; use the platform's customer-managed key"
    return None


def _report_cmk(report: ReportViolation, what: str, key: Any) -> None:
    problem = _cmk_problem(what, key)
    if problem:
        report(problem, None)


def _storage_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if not is_postgres_instance(props):
        return
    region = resource_region(props, args.provider.props if args.provider else None)
    # A same-region replica is encrypted with its source's key; any other instance names its own key.
    if is_replica(props) and not is_cross_region_replica(props, region) and not props.get("kmsKeyId"):
        return
    _report_cmk(report, "kmsKeyId", props.get("kmsKeyId"))


storage_cmk = TypedResourcePolicy(
    "rds-storage-cmk",
    "Instance storage (and cross-region replicas) is encrypted with a customer-managed KMS key (AES-256).",
    types=[INSTANCE], validate=_storage_cmk, severity=Severity.HIGH,
    controls=["spec 4.A atRest"],
    remediation="Pass kms_key_id=<PlatformKey>.arn (for a cross-region replica: the key of the replica's region).",
)


def _performance_insights_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if is_postgres_instance(args.props) and flag(args.props, "performanceInsightsEnabled"):
        _report_cmk(report, "performanceInsightsKmsKeyId", args.props.get("performanceInsightsKmsKeyId"))


performance_insights_cmk = TypedResourcePolicy(
    "rds-performance-insights-cmk",
    "Performance Insights data is encrypted with a customer-managed KMS key.",
    types=[INSTANCE], validate=_performance_insights_cmk, severity=Severity.MEDIUM,
    controls=["CKV_AWS_354"],
    remediation="Pass performance_insights_kms_key_id=<PlatformKey>.arn.",
)


def _secrets_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == SECRET:
        _report_cmk(report, "kmsKeyId", props.get("kmsKeyId"))
    elif is_postgres_instance(props) and flag(props, "manageMasterUserPassword"):
        _report_cmk(report, "masterUserSecretKmsKeyId", props.get("masterUserSecretKmsKeyId"))


secrets_cmk = TypedResourcePolicy(
    "secrets-cmk",
    "Secrets (service credentials and the RDS-managed master secret) are encrypted with a customer-managed key.",
    types=[SECRET, INSTANCE], validate=_secrets_cmk, severity=Severity.HIGH,
    controls=["spec 4.A atRest"],
    remediation="Pass kms_key_id (secrets) / master_user_secret_kms_key_id (instance) = <PlatformKey>.arn.",
)


def _backups_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == BACKUP_REPLICATION:
        _report_cmk(report, "kmsKeyId", args.props.get("kmsKeyId"))
    else:
        _report_cmk(report, "kmsKeyArn", args.props.get("kmsKeyArn"))


backups_cmk = TypedResourcePolicy(
    "backups-cmk",
    "Backups and their cross-region copies (automated-backup replication, AWS Backup vaults) use a CMK.",
    types=[BACKUP_REPLICATION, BACKUP_VAULT], validate=_backups_cmk, severity=Severity.HIGH,
    controls=["CKV_AWS_245", "CKV_AWS_166", "spec 4.A backups"],
    remediation="Pass kms_key_id / kms_key_arn = the PlatformKey of the destination region.",
)


def _log_groups_cmk(args: ResourceValidationArgs, report: ReportViolation) -> None:
    _report_cmk(report, "kmsKeyId", args.props.get("kmsKeyId"))


log_groups_cmk = TypedResourcePolicy(
    "log-groups-cmk",
    "CloudWatch log groups (exported PostgreSQL logs hold query text) are encrypted with a CMK.",
    types=[LOG_GROUP], validate=_log_groups_cmk, severity=Severity.MEDIUM,
    controls=["CKV_AWS_158"],
    remediation="Create the log group with kms_key_id=<PlatformKey>.arn before RDS creates it unencrypted.",
)


def _key_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = args.props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and not flag(args.props, "enableKeyRotation"):
        report("enableKeyRotation must be true (spec: encrypted with rotation)", None)


kms_key_rotation = TypedResourcePolicy(
    "kms-key-rotation",
    "Customer-managed symmetric keys rotate automatically.",
    types=[KMS_KEY], validate=_key_rotation, severity=Severity.MEDIUM,
    controls=["CKV_AWS_7", "spec 4.A backups"],
    remediation="Use components.kms_key.PlatformKey (rotation yearly).",
)


def _pg_parameters(args: ResourceValidationArgs) -> Mapping[str, str] | None:
    return parameters(args.props) if is_postgres_family(args.props) else None


def family_major(props: Mapping[str, Any]) -> int | None:
    digits = str(props.get("family") or "").removeprefix("postgres")
    return int(digits) if digits.isdigit() else None


def _force_ssl(args: ResourceValidationArgs, report: ReportViolation) -> None:
    params = _pg_parameters(args)
    if params is None:
        return
    value = params.get("rds.force_ssl")
    major = family_major(args.props)
    if value is None and major is not None and major >= FORCE_SSL_DEFAULT_FROM:
        return  # the family default (1) applies
    if value != "1":
        report(f"rds.force_ssl is {value or 'unset'!r}; it must be '1' (before postgres{FORCE_SSL_DEFAULT_FROM}: "
               "set it; from there: leave it out, the default is 1)", None)


force_ssl = TypedResourcePolicy(
    "rds-force-ssl",
    "PostgreSQL parameter groups refuse unencrypted connections: rds.force_ssl=1, which is the family default from "
    "postgres15 (a parameter group there may leave it out, and must not set it to 0).",
    types=[PARAMETER_GROUP], validate=_force_ssl, severity=Severity.HIGH,
    controls=["RDS.38", "CKV2_AWS_69"],
    remediation="Never set rds.force_ssl=0; before postgres15 set it to 1 (config/parameters.py platform_parameters).",
)


def _tls_minimum(args: ResourceValidationArgs, report: ReportViolation) -> None:
    params = _pg_parameters(args)
    if params is None:
        return
    minimum = setting(args, "minimumVersion", MINIMUM_TLS)
    actual = params.get("ssl_min_protocol_version")
    if tls_rank(actual) < tls_rank(minimum):  # an unset or unknown floor ranks 0, below any minimum
        report(f"ssl_min_protocol_version is {actual or 'unset'}; at least {minimum} is required", None)


tls_minimum_version = TypedResourcePolicy(
    "rds-tls-minimum-version",
    "PostgreSQL accepts no TLS version below the minimum (spec 4.A in transit; TLSv1.2 unless the policy config "
    "asks TLSv1.3, which RDS offers from PostgreSQL 16).",
    types=[PARAMETER_GROUP], validate=_tls_minimum, severity=Severity.HIGH,
    controls=["spec 4.A inTransit"],
    config={"minimumVersion": {"type": "string", "enum": ["TLSv1.2", "TLSv1.3"], "default": MINIMUM_TLS}},
    remediation="Set sslMinProtocolVersion to TLSv1.2 (default) or, on PostgreSQL 16+, TLSv1.3 in the stack file.",
)


def _proxy_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not flag(args.props, "requireTls"):
        report("requireTls must be true", None)


proxy_require_tls = TypedResourcePolicy(
    "rds-proxy-require-tls",
    "RDS Proxies accept only TLS connections.",
    types=[PROXY], validate=_proxy_tls, severity=Severity.HIGH,
    controls=["RDS.43"],
    remediation="Set require_tls=True on the proxy.",
)

POLICIES: list[PackPolicy] = [
    storage_cmk, performance_insights_cmk, secrets_cmk, backups_cmk, log_groups_cmk, kms_key_rotation, force_ssl,
    tls_minimum_version, proxy_require_tls,
]
