"""What an RDS instance of the platform stands on, declared once: its CMK, network, parameter group,
enhanced-monitoring role and CMK-encrypted log groups.

The shared instance and a regional replica compose one `InstanceFoundation` each (the extraction target
will too), so the five parts are written in one place. With a `region`, every regional part is pinned to
it (KMS keys, subnet and security groups, parameter groups and log groups are regional); the monitoring
role is IAM, which is global. Without one, the parts live in the provider's region (the stack's
`aws:region`).

Children are named after the component (`<name>-kms`, `<name>-net`, `<name>-pg`, `<name>-monitoring`,
`<name>-logs`). An instance passes its own name, so its parts keep the names they had before they moved
under the foundation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from components.kms_key import PlatformKey, PlatformKeyArgs
from components.log_groups import RdsLogGroups, RdsLogGroupsArgs
from components.monitoring_role import EnhancedMonitoringRole, EnhancedMonitoringRoleArgs
from components.network import DatabaseNetwork, DatabaseNetworkArgs
from components.parameter_group import DatabaseParameterGroup, DatabaseParameterGroupArgs
from config.settings import InstanceSettings, NetworkSettings


@dataclass(frozen=True)
class InstanceFoundationArgs:
    identifier: str
    """The RDS identifier of the instance standing on this foundation: names the key alias
    (`alias/<identifier>-data`) and the log groups (`/aws/rds/instance/<identifier>/<log>`)."""
    instance: InstanceSettings
    """Port, parameters, monitoring interval and log retention come from here."""
    network: NetworkSettings
    """The VPC, private subnets and allowed clients; a VPC in `region` when one is given."""
    key_description: str
    """What the CMK encrypts, as shown in KMS."""
    region: str | None = None
    """None: the provider's region. A region pins every regional child to it."""
    tags: Mapping[str, str] = field(default_factory=dict)


class InstanceFoundation(pulumi.ComponentResource):
    """`edumatrix:database:InstanceFoundation`: `PlatformKey`, `DatabaseNetwork`, `DatabaseParameterGroup`,
    `EnhancedMonitoringRole` (only when the monitoring interval is above 0) and `RdsLogGroups`.

    An instance passes `log_groups` in its `depends_on`: RDS would otherwise create the groups itself,
    unencrypted and kept forever.
    """

    key: PlatformKey
    key_arn: pulumi.Output[str]
    subnet_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    parameter_group_name: pulumi.Output[str]
    monitoring_role_arn: pulumi.Output[str] | None
    log_groups: RdsLogGroups

    def __init__(self, name: str, args: InstanceFoundationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:database:InstanceFoundation", name, None, opts)
        settings, region, tags = args.instance, args.region, dict(args.tags)
        child = pulumi.ResourceOptions(parent=self)

        self.key = PlatformKey(f"{name}-kms", PlatformKeyArgs(
            description=args.key_description,
            alias=f"{args.identifier}-data",
            region=region,
            tags=tags,
        ), opts=child)
        network = DatabaseNetwork(f"{name}-net", DatabaseNetworkArgs.from_settings(
            args.network, port=settings.port, tags=tags, region=region), opts=child)
        params = DatabaseParameterGroup(f"{name}-pg", DatabaseParameterGroupArgs(
            instance=settings, tags=tags, region=region), opts=child)
        monitoring = (
            EnhancedMonitoringRole(f"{name}-monitoring", EnhancedMonitoringRoleArgs(tags=tags), opts=child)
            if settings.monitoring_interval_seconds > 0 else None
        )
        self.log_groups = RdsLogGroups(f"{name}-logs", RdsLogGroupsArgs(
            instance_identifier=args.identifier,
            kms_key_arn=self.key.arn,
            retention_days=settings.log_retention_days,
            tags=tags,
            region=region,
        ), opts=child)

        self.key_arn = self.key.arn
        self.subnet_group_name = network.subnet_group_name
        self.security_group_id = network.security_group_id
        self.parameter_group_name = params.name
        self.monitoring_role_arn = monitoring.arn if monitoring else None
        self.register_outputs({
            "keyArn": self.key_arn,
            "subnetGroupName": self.subnet_group_name,
            "securityGroupId": self.security_group_id,
            "parameterGroupName": self.parameter_group_name,
            "monitoringRoleArn": self.monitoring_role_arn,
            "logGroupNames": [g.name for g in self.log_groups.groups],
        })
