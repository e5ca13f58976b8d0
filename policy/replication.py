"""Replication: logical replication on (service extraction relies on it, spec 3.B) and replicas'
encryption keys in the replica's own region (a KMS key cannot encrypt data in another region)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policy.base import (
    BACKUP_REPLICATION,
    INSTANCE,
    PARAMETER_GROUP,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    arn_region,
    is_postgres_family,
    is_replica,
    of_type,
    parameters,
    resource_region,
)


def _logical_replication(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if is_postgres_family(args.props) and parameters(args.props).get("rds.logical_replication") != "1":
        report("rds.logical_replication must be 1: extracting a service to its own instance replicates its "
               "schema logically", None)


logical_replication = TypedResourcePolicy(
    "logical-replication-enabled",
    "The shared instance's parameter group enables logical replication (spec 3.B extraction).",
    types=[PARAMETER_GROUP], validate=_logical_replication, severity=Severity.MEDIUM,
    controls=["spec 3.B migration phase", "spec 8.A dataSync"],
    remediation="Keep rds.logical_replication=1 (config/parameters.py); it needs a reboot to take effect.",
)


def _region(res: PolicyResource, default: str | None) -> str | None:
    provider_props: Mapping[str, Any] | None = res.provider.props if res.provider else None
    return resource_region(res.props, provider_props, default)


def _keys_in_region(args: StackValidationArgs, report: ReportViolation) -> None:
    default = args.get_config().get("defaultRegion")
    for res in of_type(args.resources, INSTANCE, BACKUP_REPLICATION):
        if res.resource_type == INSTANCE and not is_replica(res.props):
            continue
        key = res.props.get("kmsKeyId")
        key_region, region = arn_region(key), _region(res, default)
        if key and key_region and region and key_region != region:
            what = "replica" if res.resource_type == INSTANCE else "automated-backup replication"
            report(f"{what} in {region} uses kmsKeyId from {key_region}; a KMS key only encrypts in its own region",
                   res.urn)


replica_key_in_region = StackPolicy(
    "replica-kms-key-in-region",
    "Replicas and replicated backups are encrypted with a key of their own region.",
    types=[INSTANCE, BACKUP_REPLICATION], validate=_keys_in_region, severity=Severity.HIGH,
    controls=["spec 8.A multi-region", "CKV_AWS_245"],
    config={"defaultRegion": {"type": "string", "description": "the stack's aws:region (for resources "
                                                              "without a region input or explicit provider)"}},
    remediation="Create a PlatformKey in the replica's region (region=...) and pass its ARN as kms_key_id.",
)

POLICIES: list[PackPolicy] = [logical_replication, replica_key_in_region]
