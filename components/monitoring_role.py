"""The IAM role RDS enhanced monitoring assumes to publish OS metrics (Security Hub RDS.6)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# An AWS-managed policy; its ARN carries the partition (aws, aws-cn, aws-us-gov).
ENHANCED_MONITORING_POLICY = "iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


@dataclass(frozen=True)
class EnhancedMonitoringRoleArgs:
    tags: Mapping[str, str] = field(default_factory=dict)


class EnhancedMonitoringRole(pulumi.ComponentResource):
    """`edumatrix:monitoring:EnhancedMonitoringRole` (IAM is global: one role serves every region)."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: EnhancedMonitoringRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:monitoring:EnhancedMonitoringRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-role",
            description="RDS enhanced monitoring publishes OS metrics to CloudWatch",
            assume_role_policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }],
            }),
            tags=dict(args.tags),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-policy",
            role=role.name,
            policy_arn=aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition.apply(
                lambda partition: f"arn:{partition}:{ENHANCED_MONITORING_POLICY}"),
            opts=child,
        )
        self.arn = role.arn
        self.register_outputs({"arn": self.arn})
