"""What every RDS instance the platform declares has in common: the secure posture, written once.

The shared instance, its same-region read replicas and a regional replica (or promoted primary) all take
these arguments; each adds only what differs (source, sizes, backups, protection). Passing one of these
keys again at a call site is a TypeError, so a component cannot silently override the posture.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random as random

from components.log_groups import LOG_EXPORTS
from config.settings import InstanceSettings, InstanceTimeouts

# Engine lifecycle: without a value RDS enrolls the instance in Extended Support, billed once the major version's
# standard support ends (SDK rds/instance.py, `engine_lifecycle_support`: "Default value is
# `open-source-rds-extended-support`").
EXTENDED_SUPPORT = {True: "open-source-rds-extended-support", False: "open-source-rds-extended-support-disabled"}


def instance_posture(
    settings: InstanceSettings,
    *,
    key_arn: pulumi.Input[str],
    monitoring_role_arn: pulumi.Input[str] | None,
    region: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments of `aws.rds.Instance` shared by every instance of the platform."""
    return {
        "storage_type": settings.storage_type,
        "iops": settings.iops,
        "storage_throughput": settings.storage_throughput_mibps,
        "max_allocated_storage": settings.max_allocated_storage_gb,
        "storage_encrypted": True,
        "publicly_accessible": False,
        "iam_database_authentication_enabled": settings.iam_auth,
        "ca_cert_identifier": settings.ca_cert_identifier,
        "maintenance_window": settings.maintenance_window,
        "copy_tags_to_snapshot": True,
        "auto_minor_version_upgrade": settings.auto_minor_version_upgrade,
        "allow_major_version_upgrade": False,
        "performance_insights_enabled": True,
        "performance_insights_kms_key_id": key_arn,
        "performance_insights_retention_period": settings.performance_insights_retention_days,
        # Stated, not defaulted: the Performance Insights console is retired; its successor has two modes.
        "database_insights_mode": settings.database_insights_mode,
        "monitoring_interval": settings.monitoring_interval_seconds,
        "monitoring_role_arn": monitoring_role_arn,
        "enabled_cloudwatch_logs_exports": list(LOG_EXPORTS),
        "region": region,
    }


def final_snapshot_identifier(name: str, identifier: str, parent: pulumi.Resource) -> pulumi.Output[str]:
    """`<identifier>-final-<8 hex>`: unique per instance incarnation, so destroying a re-created stack
    never collides with the final snapshot of its predecessor (RDS: DBSnapshotAlreadyExists)."""
    suffix = random.RandomId(
        f"{name}-final-snapshot-suffix",
        byte_length=4,
        keepers={"identifier": identifier},
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.concat(identifier, "-final-", suffix.hex)


def engine_lifecycle(settings: InstanceSettings) -> str:
    """The `engine_lifecycle_support` of an instance created with CreateDBInstance (replicas inherit it)."""
    return EXTENDED_SUPPORT[settings.extended_support]


def custom_timeouts(timeouts: InstanceTimeouts) -> pulumi.CustomTimeouts:
    """The instance's operation timeouts, never below the provider's own (config.settings.InstanceTimeouts)."""
    return pulumi.CustomTimeouts(create=timeouts.create, update=timeouts.update, delete=timeouts.delete)
