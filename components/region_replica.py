"""A cross-region replica of the primary instance, or, once promoted, a standalone primary (spec 8.A).

Everything here is declared in the replica's region through the resources' `region` argument (pulumi_aws 7),
except the enhanced-monitoring role (IAM is global). KMS keys are regional, so the replica's storage,
Performance Insights, logs and replicated backups use a key created in its region (the alarm topic one of its
own there): the primary's key ARN cannot be used here.

Promotion (`promote=True`) drops `replicate_source_db`; the SDK documents that "removing the
`replicate_source_db` attribute from an existing RDS Replicate database managed by the provider will promote
the database to a fully standalone database". Promotion also turns on what only a primary needs: Multi-AZ and
a final snapshot, and stops alarming on a replica lag that no longer exists. The master password stays what it
was (a physical replica has its source's): its copy in this region is the primary stack's master secret,
replicated here (components/secrets.py), and the region stack exports its name.

The replicated automated backups are declared with `retain_on_delete`: deleting that resource (which promotion
does) calls the *source* region and waits up to 75 minutes for it to confirm (terraform-provider-aws
`instance_automated_backups_replication.go`: the delete opens "a new client to the source region"). During the
regional outage that prompted the promotion that fails or hangs the `up`; with `retain_on_delete` Pulumi only
forgets the resource, and the runbook stops the replication once the source region answers again
(docs/failover-runbook.md, "Afterwards").

Instance operations get long custom timeouts (`region.timeouts`, default create 12h): creating the replica copies
a snapshot of the whole primary across regions, and a promotion is followed by the Multi-AZ conversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.instance_foundation import InstanceFoundation, InstanceFoundationArgs
from components.instance_posture import custom_timeouts, final_snapshot_identifier, instance_posture
from components.lag_alarms import ReplicaLagAlarms, ReplicaLagAlarmsArgs
from config.settings import InstanceSettings, NetworkSettings, RegionSettings


@dataclass(frozen=True)
class RegionReplicaArgs:
    identifier: str
    region: str  # the replica's region (never None: every regional child is pinned to it)
    primary_region: str
    primary_arn: pulumi.Input[str]  # from the primary stack's outputs (StackReference)
    instance: InstanceSettings  # the primary's instance settings with this region's overrides
    network: NetworkSettings  # a VPC in `region`
    settings: RegionSettings
    alarm_topic_arn: pulumi.Input[str]  # this region's AlarmTopic: what the lag alarms page
    tags: Mapping[str, str] = field(default_factory=dict)


class RegionReplica(pulumi.ComponentResource):
    """`edumatrix:database:RegionReplica`: a regional `InstanceFoundation` (key, network, parameter group,
    monitoring role, log groups), the replica (or promoted primary), replicated automated backups and lag
    alarms."""

    instance: aws.rds.Instance
    address: pulumi.Output[str]
    arn: pulumi.Output[str]
    identifier: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]
    parameter_group_name: pulumi.Output[str]
    backups_replication: aws.rds.InstanceAutomatedBackupsReplication | None
    alarm_topic_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: RegionReplicaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:database:RegionReplica", name, None, opts)
        if args.region == args.primary_region:
            raise ValueError(f"{name}: region {args.region} is the primary's region; use ReadReplicas there")
        promoted = args.settings.promote
        settings, region, tags = args.instance, args.region, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        foundation = InstanceFoundation(name, InstanceFoundationArgs(
            identifier=args.identifier,
            instance=settings,
            network=args.network,
            key_description=(f"{args.identifier}: storage, Performance Insights, logs, replicated backups "
                             f"in {region}"),
            region=region,
            tags=tags,
        ), opts=child)
        key_arn = foundation.key_arn

        final_snapshot = promoted and settings.final_snapshot
        self.instance = aws.rds.Instance(
            f"{name}-db",
            identifier=args.identifier,
            # Cross-region: the source's ARN. Removing it promotes the replica (see the module docstring).
            replicate_source_db=None if promoted else args.primary_arn,
            # A promoted replica keeps engine, storage, database and master user of the primary it was;
            # these are inherited at creation and never set on a replica.
            instance_class=settings.instance_class,
            kms_key_id=key_arn,
            parameter_group_name=foundation.parameter_group_name,
            db_subnet_group_name=foundation.subnet_group_name,
            vpc_security_group_ids=[foundation.security_group_id],
            multi_az=settings.multi_az if promoted else False,
            # Backups on the replica too: AWS recommends them before promotion so none is taken during it.
            backup_retention_period=settings.backup_retention_days,
            backup_window=settings.backup_window,
            delete_automated_backups=False,
            # RDS refuses a final snapshot of a read replica; a promoted primary gets one.
            skip_final_snapshot=not final_snapshot,
            final_snapshot_identifier=(final_snapshot_identifier(name, args.identifier, self)
                                       if final_snapshot else None),
            deletion_protection=settings.deletion_protection,
            # A failover is applied now, not at the next maintenance window.
            apply_immediately=True if promoted else settings.apply_immediately,
            **instance_posture(settings, key_arn=key_arn, monitoring_role_arn=foundation.monitoring_role_arn,
                               region=region),
            tags={**tags, "role": "primary"} if promoted else {**tags, "role": "replica",
                                                                "replica-of": args.primary_region},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[foundation.log_groups],
                                        protect=settings.deletion_protection,
                                        custom_timeouts=custom_timeouts(args.settings.timeouts)),
        )

        self.backups_replication = None
        self.alarm_topic_arn = None
        if not promoted and args.settings.replicate_backups:
            # The primary's automated backups, copied here: point-in-time recovery in this region even if the
            # primary's region is lost (spec 8.A "recovery: point-in-time capable").
            self.backups_replication = aws.rds.InstanceAutomatedBackupsReplication(
                f"{name}-backups",
                source_db_instance_arn=args.primary_arn,
                kms_key_id=key_arn,
                retention_period=args.settings.backup_replication_days,
                region=region,
                # Promotion deletes this resource; its delete waits on the (lost) source region. See above.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
        if not promoted:
            alarms = ReplicaLagAlarms(f"{name}-lag", ReplicaLagAlarmsArgs(
                replica_identifiers=[self.instance.identifier],
                settings=args.settings,
                topic_arn=args.alarm_topic_arn,
                region=region,
                tags=tags,
            ), opts=child)
            self.alarm_topic_arn = alarms.topic_arn

        self.address = self.instance.address
        self.arn = self.instance.arn
        self.identifier = self.instance.identifier
        self.kms_key_arn = key_arn
        self.parameter_group_name = foundation.parameter_group_name
        self.register_outputs({
            "address": self.address,
            "arn": self.arn,
            "identifier": self.identifier,
            "kmsKeyArn": self.kms_key_arn,
            "parameterGroupName": self.parameter_group_name,
        })
