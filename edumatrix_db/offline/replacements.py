"""Which input changes make AWS (through pulumi-aws / pulumi-postgresql) replace a stateful resource.

Kept small on purpose: only the stateful types this platform declares or is about to declare, and for
each only the inputs the provider marks `ForceNew` (a change deletes the resource and creates another).
Pulumi bridges these providers, so a `ForceNew` attribute is a replacement in `pulumi preview` too.
`edumatrix-db diff` flags a change to one of them, the removal of one of these resources, and the
removal of a resource Pulumi protects. Sources, read for this table:

- aws:rds/instance:Instance: terraform-provider-aws `internal/service/rds/instance.go` (the v5 schema,
  `ForceNew: true` on availability_zone, backup_target, character_set_name, custom_iam_instance_profile,
  db_name, engine, kms_key_id, nchar_character_set_name, restore_to_point_in_time, snapshot_identifier,
  storage_encrypted, timezone, username). `identifier` is NOT there: since provider v5.0.0 it is renamed
  in place with ModifyDBInstance `NewDBInstanceIdentifier` (hashicorp/terraform-provider-aws#31232,
  closing #507; pulumi/pulumi-aws#589 was the Pulumi report while it still replaced). A rename keeps
  the data but changes the endpoint address, so it is reported as a note, not a danger.
- aws:kms/key:Key: terraform-provider-aws `internal/service/kms/key.go` (`ForceNew` on
  customer_master_key_spec, key_usage, custom_key_store_id, multi_region, xks_key_id). Deleting a key
  schedules it for deletion (7-30 days); what it encrypted is unreadable afterwards.
- aws:backup/vault:Vault: terraform-provider-aws `internal/service/backup/vault.go` (`ForceNew` on name,
  kms_key_arn).
- aws:backup/vaultLockConfiguration:VaultLockConfiguration: terraform-provider-aws
  `internal/service/backup/vault_lock_configuration.go` has no Update function: every argument replaces
  (backup_vault_name, changeable_for_days, max_retention_days, min_retention_days).
- aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication: terraform-provider-aws
  `internal/service/rds/instance_automated_backups_replication.go` has no Update function (`ForceNew` on
  kms_key_id, pre_signed_url, retention_period, source_db_instance_arn; research/issue10.md section 4);
  the backups replicated so far go with the old one.
- postgresql:index/subscription:Subscription: cyrilgdn/terraform-provider-postgresql
  `postgresql/resource_postgresql_subscription.go` (`ForceNew` on name, database, conninfo, publications,
  create_slot, slot_name; only `enabled` is updated in place): a new subscription copies every table
  again.
- `region` (pulumi-aws 7 / terraform-provider-aws 6 per-resource region) on every AWS type above: a
  regional resource cannot move, so a new region is a new resource. This one is reasoned, not read from
  the provider's source (its enhanced-region-support guide does not say it here).
"""

from __future__ import annotations

from dataclasses import dataclass

RDS_INSTANCE = "aws:rds/instance:Instance"
KMS_KEY = "aws:kms/key:Key"


@dataclass(frozen=True)
class StatefulType:
    """A type whose replacement or deletion loses data, and the inputs (camelCase) that replace it."""

    label: str
    replaced_by: frozenset[str]
    loses: str  # what a replacement or deletion destroys, for the reviewer


def _aws(*inputs: str) -> frozenset[str]:
    return frozenset({*inputs, "region"})


STATEFUL: dict[str, StatefulType] = {
    RDS_INSTANCE: StatefulType(
        "RDS instance",
        _aws("availabilityZone", "backupTarget", "characterSetName", "customIamInstanceProfile", "dbName", "engine",
             "kmsKeyId", "ncharCharacterSetName", "restoreToPointInTime", "snapshotIdentifier", "storageEncrypted",
             "timezone", "username"),
        "the database and its automated backups (only a final snapshot, if one is taken, remains)",
    ),
    KMS_KEY: StatefulType(
        "KMS key",
        _aws("customerMasterKeySpec", "keyUsage", "customKeyStoreId", "multiRegion", "xksKeyId"),
        "the key is scheduled for deletion: what it encrypts (storage, snapshots, secrets, logs) becomes "
        "unreadable when the waiting period ends",
    ),
    "aws:backup/vault:Vault": StatefulType(
        "backup vault", _aws("name", "kmsKeyArn"), "the recovery points stored in the vault"),
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": StatefulType(
        "backup vault lock", _aws("backupVaultName", "changeableForDays", "maxRetentionDays", "minRetentionDays"),
        "the vault's write-once protection, until a new lock is in place"),
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": StatefulType(
        "backup replication", _aws("kmsKeyId", "preSignedUrl", "retentionPeriod", "sourceDbInstanceArn"),
        "the automated backups replicated to this region"),
    "postgresql:index/subscription:Subscription": StatefulType(
        "logical replication subscription",
        frozenset({"name", "database", "conninfo", "publications", "createSlot", "slotName"}),
        "the extraction in flight: a new subscription copies every table again"),
}


def replacing_inputs(type_token: str, changed: set[str]) -> set[str]:
    """The inputs among `changed` (top-level, camelCase) that make the provider replace a `type_token`."""
    stateful = STATEFUL.get(type_token)
    return changed & stateful.replaced_by if stateful else set()
