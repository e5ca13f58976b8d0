"""The shared PostgreSQL instance on RDS that all nine service schemas live in (spec sections 1, 2, 4.A).

Secure by default: CMK-encrypted storage, Performance Insights, master secret and logs; RDS-managed master
password in Secrets Manager; IAM database authentication; Multi-AZ; deletion protection; backups in the
spec's 00:00 UTC window; final snapshot; TLS enforced by the parameter group; never publicly accessible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.instance_foundation import InstanceFoundation, InstanceFoundationArgs
from components.instance_posture import final_snapshot_identifier, instance_posture
from config.settings import InstanceSettings, NetworkSettings


@dataclass(frozen=True)
class SharedInstanceArgs:
    """What the shared instance needs; everything else is a secure default in InstanceSettings."""

    identifier: str
    instance: InstanceSettings
    network: NetworkSettings
    tags: Mapping[str, str] = field(default_factory=dict)


class SharedInstance(pulumi.ComponentResource):
    """`edumatrix:database:SharedInstance`: its `InstanceFoundation` (KMS key, network, parameter group,
    monitoring role, log groups) and the RDS instance. Clients connect to `address` (not `endpoint`, which
    carries the port)."""

    instance: aws.rds.Instance
    address: pulumi.Output[str]
    port: pulumi.Output[int]
    arn: pulumi.Output[str]
    identifier: pulumi.Output[str]
    engine_version_actual: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    parameter_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    subnet_group_name: pulumi.Output[str]
    monitoring_role_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: SharedInstanceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:database:SharedInstance", name, None, opts)
        settings = args.instance
        tags = dict(args.tags)

        foundation = InstanceFoundation(name, InstanceFoundationArgs(
            identifier=args.identifier,
            instance=settings,
            network=args.network,
            key_description=f"{args.identifier}: storage, Performance Insights, master secret, logs, backups",
            tags=tags,
        ), opts=pulumi.ResourceOptions(parent=self))
        key_arn = foundation.key_arn

        self.instance = aws.rds.Instance(
            f"{name}-db",
            identifier=args.identifier,
            engine="postgres",
            engine_version=settings.engine_version,
            instance_class=settings.instance_class,
            allocated_storage=settings.allocated_storage_gb,
            kms_key_id=key_arn,
            db_name=settings.database_name,
            port=settings.port,
            username=settings.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=key_arn,
            multi_az=settings.multi_az,
            deletion_protection=settings.deletion_protection,
            db_subnet_group_name=foundation.subnet_group_name,
            vpc_security_group_ids=[foundation.security_group_id],
            parameter_group_name=foundation.parameter_group_name,
            backup_retention_period=settings.backup_retention_days,
            backup_window=settings.backup_window,
            delete_automated_backups=False,
            skip_final_snapshot=not settings.final_snapshot,
            final_snapshot_identifier=(final_snapshot_identifier(name, args.identifier, self)
                                       if settings.final_snapshot else None),
            apply_immediately=settings.apply_immediately,
            tags=tags,
            **instance_posture(settings, key_arn=key_arn, monitoring_role_arn=foundation.monitoring_role_arn),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[foundation.log_groups],
                                        protect=settings.deletion_protection),
        )

        self.address = self.instance.address
        self.port = self.instance.port
        self.arn = self.instance.arn
        self.identifier = self.instance.identifier
        self.engine_version_actual = self.instance.engine_version_actual
        self.master_secret_arn = self.instance.master_user_secrets.apply(
            lambda secrets: (secrets[0].secret_arn or "") if secrets else ""
        )
        self.kms_key_arn = key_arn
        self.parameter_group_name = foundation.parameter_group_name
        self.security_group_id = foundation.security_group_id
        self.subnet_group_name = foundation.subnet_group_name
        self.monitoring_role_arn = foundation.monitoring_role_arn
        self.register_outputs({
            "address": self.address,
            "port": self.port,
            "arn": self.arn,
            "identifier": self.identifier,
            "engineVersionActual": self.engine_version_actual,
            "masterSecretArn": self.master_secret_arn,
            "kmsKeyArn": self.kms_key_arn,
            "parameterGroupName": self.parameter_group_name,
        })
