"""Same-region read replicas of the shared instance (spec 8.B "horizontal scaling: read replicas").

Read-only clients connect to a replica's `address` directly: RDS Proxy cannot route to the read replicas
of an RDS *instance* (a proxy's read-only endpoints exist only for Aurora clusters), so the proxy, when there
is one, keeps serving the primary and read traffic is pointed at `reader_addresses`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.instance_posture import custom_timeouts, instance_posture
from components.lag_alarms import ReplicaLagAlarms, ReplicaLagAlarmsArgs
from components.log_groups import RdsLogGroups, RdsLogGroupsArgs
from config.settings import InstanceSettings, ReplicaSettings


@dataclass(frozen=True)
class ReadReplicasArgs:
    """The primary's settings and resources the replicas share (same region, same network, same key)."""

    source_identifier: str  # the primary's identifier; replicas are `<source_identifier>-replica-<n>`
    source_arn: pulumi.Input[str]
    instance: InstanceSettings  # the primary's settings: replicas keep its family, posture and windows
    replicas: ReplicaSettings
    kms_key_arn: pulumi.Input[str]  # the primary's CMK: storage, Performance Insights, logs
    parameter_group_name: pulumi.Input[str]  # the primary's group: same family, same parameters
    subnet_group_name: pulumi.Input[str]
    security_group_id: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]  # the region's AlarmTopic: what the lag alarms page
    monitoring_role_arn: pulumi.Input[str] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None


class ReadReplicas(pulumi.ComponentResource):
    """`edumatrix:database:ReadReplicas`: `count` encrypted, monitored replicas with a lag alarm each."""

    replicas: list[aws.rds.Instance]
    identifiers: list[str]
    reader_addresses: pulumi.Output[list[str]]
    alarm_topic_arn: pulumi.Output[str] | None

    def __init__(self, name: str, args: ReadReplicasArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:database:ReadReplicas", name, None, opts)
        if args.replicas.count < 1:
            raise ValueError(f"{name}: replicas.count is {args.replicas.count}; declare the component only for 1+")
        if args.instance.monitoring_interval_seconds > 0 and args.monitoring_role_arn is None:
            raise ValueError(f"{name}: monitoring_role_arn is required when enhanced monitoring is on")
        settings, tags = args.instance, dict(args.tags)
        self.identifiers = [f"{args.source_identifier}-replica-{n}" for n in range(1, args.replicas.count + 1)]
        self.replicas = []
        for index, identifier in enumerate(self.identifiers, start=1):
            logs = RdsLogGroups(f"{name}-{index}-logs", RdsLogGroupsArgs(
                instance_identifier=identifier,
                kms_key_arn=args.kms_key_arn,
                retention_days=settings.log_retention_days,
                tags=tags,
                region=args.region,
            ), opts=pulumi.ResourceOptions(parent=self))
            self.replicas.append(aws.rds.Instance(
                f"{name}-{index}",
                identifier=identifier,
                # Same region with an explicit subnet group: the SDK asks for the source's ARN, not identifier.
                replicate_source_db=args.source_arn,
                instance_class=args.replicas.instance_class or settings.instance_class,
                # Encrypted with the source's CMK: RDS refuses a KmsKeyId for a same-region replica (it
                # always inherits the source's key), so none is passed.
                parameter_group_name=args.parameter_group_name,
                db_subnet_group_name=args.subnet_group_name,
                vpc_security_group_ids=[args.security_group_id],
                # Availability comes from the Multi-AZ primary; a replica is a read path, rebuilt if lost.
                multi_az=False,
                # The primary holds the backups; RDS refuses a final snapshot of a read replica.
                backup_retention_period=0,
                skip_final_snapshot=True,
                # As the primary's (Security Hub RDS.8 covers replicas too). Removing a replica is therefore
                # two reviewed steps: docs/read-replicas.md, "Removing a replica".
                deletion_protection=settings.deletion_protection,
                apply_immediately=settings.apply_immediately,
                **instance_posture(settings, key_arn=args.kms_key_arn, monitoring_role_arn=args.monitoring_role_arn,
                                   region=args.region),
                tags={**tags, "replica-of": args.source_identifier},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logs],
                                            custom_timeouts=custom_timeouts(settings.timeouts)),
            ))
        alarms = ReplicaLagAlarms(f"{name}-lag", ReplicaLagAlarmsArgs(
            replica_identifiers=[replica.identifier for replica in self.replicas],
            settings=args.replicas,
            topic_arn=args.alarm_topic_arn,
            region=args.region,
            tags=tags,
        ), opts=pulumi.ResourceOptions(parent=self))
        self.alarm_topic_arn = alarms.topic_arn
        self.reader_addresses = pulumi.Output.all(*[replica.address for replica in self.replicas])
        self.register_outputs({"readerAddresses": self.reader_addresses, "identifiers": self.identifiers})
