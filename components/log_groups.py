"""CloudWatch log groups for an instance's exported logs, created first so they are CMK-encrypted and
kept for a set time (RDS would otherwise create them unencrypted and kept forever)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

LOG_EXPORTS = ("postgresql", "upgrade")


@dataclass(frozen=True)
class RdsLogGroupsArgs:
    instance_identifier: str
    kms_key_arn: pulumi.Input[str]
    retention_days: int
    exports: Sequence[str] = LOG_EXPORTS
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None


class RdsLogGroups(pulumi.ComponentResource):
    """`edumatrix:monitoring:RdsLogGroups`: `/aws/rds/instance/<identifier>/<log>` per export."""

    groups: list[aws.cloudwatch.LogGroup]

    def __init__(self, name: str, args: RdsLogGroupsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:monitoring:RdsLogGroups", name, None, opts)
        self.groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}",
                name=f"/aws/rds/instance/{args.instance_identifier}/{log}",
                kms_key_id=args.kms_key_arn,
                retention_in_days=args.retention_days,
                region=args.region,
                tags=dict(args.tags),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for log in args.exports
        ]
        self.register_outputs({"names": [g.name for g in self.groups]})
