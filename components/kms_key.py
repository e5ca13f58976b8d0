"""A customer-managed KMS key with rotation, usable by RDS, Performance Insights, Secrets Manager,
CloudWatch Logs and AWS Backup in one region (spec 4.A: AES-256 at rest, keys rotated).

CloudWatch alarms get nothing from this key: an alarm topic has a key of its own (components/alarm_topic.py), so
the topic never shares a key with the data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PlatformKeyArgs:
    description: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # The key's region; None means the provider's region (the stack's `aws:region`).
    region: str | None = None
    # Days KMS waits before deleting a scheduled key (7-30): the longest grace by default.
    deletion_window_days: int = 30
    alias: str | None = None


def key_policy(account_id: str, partition: str, region: str, dns_suffix: str = "amazonaws.com") -> str:
    """Key policy: the account administers the key through IAM; CloudWatch Logs may use it for this
    account's log groups in this region (RDS, Secrets Manager, PI and Backup use it via IAM + kms:ViaService).
    Alarm topics have a key of their own (components/alarm_topic.py): CloudWatch never uses this one."""
    admin = {
        "Sid": "AccountAdministersThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            admin,
            {
                "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.{dns_suffix}"},
                "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                           "kms:Describe*"],
                "Resource": "*",
                "Condition": {"ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:*",
                }},
            },
        ],
    })


class PlatformKey(pulumi.ComponentResource):
    """`edumatrix:security:PlatformKey`: a symmetric CMK with yearly rotation and an alias."""

    key: aws.kms.Key
    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]

    def __init__(self, name: str, args: PlatformKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:security:PlatformKey", name, None, opts)
        if not 7 <= args.deletion_window_days <= 30:
            raise ValueError(f"{name}: deletion_window_days must be 7-30, got {args.deletion_window_days}")
        invoke_opts = pulumi.InvokeOutputOptions(parent=self)
        identity = aws.get_caller_identity_output(opts=invoke_opts)
        partition = aws.get_partition_output(opts=invoke_opts)
        region = (pulumi.Output.from_input(args.region) if args.region
                  else aws.get_region_output(opts=invoke_opts).region)
        policy = pulumi.Output.all(identity.account_id, partition.partition, region, partition.dns_suffix).apply(
            lambda v: key_policy(v[0], v[1], v[2], v[3])
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args.description,
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=args.deletion_window_days,
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            policy=policy,
            region=args.region,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.alias or name}",
            target_key_id=self.key.key_id,
            region=args.region,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs({"arn": self.arn, "keyId": self.key_id})
