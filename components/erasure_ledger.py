"""ErasureLedger (edumatrix:gdpr:ErasureLedger): the GDPR erasure ledger on AWS, outside the database instance.

Backups and point-in-time recovery keep erased rows for up to 30 days; a restored schema is erased again by
replaying this ledger (docs/gdpr.md, `edumatrix_db.ops.gdpr.replay_erasures`). So the ledger must survive a
full restore of the instance, and the loss of the region the instance runs in:

- one DynamoDB table, partition key `request_id`, sort key `record` (`edumatrix_db/ops/ledger.py`
  `DynamoLedger` writes it), on-demand capacity;
- encrypted with the platform CMK (`server_side_encryption.kms_key_arn`; without it DynamoDB uses an
  AWS-owned key), point-in-time recovery on, deletion protection on, and Pulumi `protect`;
- a replica in every region of `secrets.replicaRegions` (the region stacks' regions), each under that region's
  key, with deletion protection and point-in-time recovery of its own. Replicas need streams
  (`stream_enabled`): a table with replicas gets its streams turned on by AWS, and a plan without
  `stream_enabled: true` would try to turn them off again on every update (hashicorp/terraform-provider-aws#43625);
- a resource policy that denies `DeleteItem`, `UpdateItem` and `DeleteTable` to every principal: records are
  appended with a conditional put and never changed (DynamoDB has no object lock; this is the closest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# Who may never change or remove a record, nor the table (the resource policy's denied actions).
DENIED_ACTIONS = ("dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:DeleteTable")


@dataclass
class ErasureLedgerArgs:
    table_name: str
    """The table's name (`<prefix>-gdpr-erasure-ledger`, `StackSettings.erasure_ledger_table`)."""
    kms_key_arn: pulumi.Input[str]
    """The platform CMK of the instance's region."""
    replica_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Region -> a CMK there: one replica of the table per region (the secrets' replica regions)."""
    tags: dict[str, str] = field(default_factory=dict)


class ErasureLedger(pulumi.ComponentResource):
    def __init__(self, name: str, args: ErasureLedgerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:gdpr:ErasureLedger", name, None, opts)
        if not args.table_name:
            raise ValueError("ErasureLedgerArgs.table_name is required")
        replicas = [
            aws.dynamodb.TableReplicaArgs(region_name=region, kms_key_arn=key, point_in_time_recovery=True,
                                          deletion_protection_enabled=True, propagate_tags=True)
            for region, key in sorted(args.replica_keys.items())
        ]
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            name=args.table_name,
            billing_mode="PAY_PER_REQUEST",
            hash_key="request_id",
            range_key="record",
            attributes=[aws.dynamodb.TableAttributeArgs(name="request_id", type="S"),
                        aws.dynamodb.TableAttributeArgs(name="record", type="S")],
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(enabled=True,
                                                                              kms_key_arn=args.kms_key_arn),
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(enabled=True),
            deletion_protection_enabled=True,
            replicas=replicas or None,
            stream_enabled=True if replicas else None,
            stream_view_type="NEW_AND_OLD_IMAGES" if replicas else None,
            tags={**args.tags, "purpose": "gdpr-erasure-ledger"},
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.policy = aws.dynamodb.ResourcePolicy(
            f"{name}-append-only",
            resource_arn=self.table.arn,
            policy=self.table.arn.apply(lambda arn: json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Sid": "AppendOnly", "Effect": "Deny", "Principal": "*",
                               "Action": list(DENIED_ACTIONS), "Resource": arn}],
            })),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.table_name = self.table.name
        self.arn = self.table.arn
        self.register_outputs({"tableName": self.table.name, "arn": self.table.arn})
