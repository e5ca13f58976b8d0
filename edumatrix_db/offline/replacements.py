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
- aws:msk/cluster:Cluster: terraform-provider-aws `internal/service/kafka/cluster.go` (read at
  pulumi/terraform-provider-aws 0c2d03e6 and hashicorp 0b2fe557: `ForceNew` on cluster_name,
  broker_node_group_info.{az_distribution, client_subnets, security_groups},
  encryption_info.encryption_at_rest_kms_key_arn and encryption_info.encryption_in_transit.in_cluster).
  The blocks themselves are `ForceNew` only when added or removed (SDKv2): kafka_version, instance_type,
  storage, client_authentication and encryption_in_transit.client_broker are updated in place
  (UpdateClusterKafkaVersion, UpdateBrokerType, UpdateBrokerStorage, UpdateSecurity). A maintainer
  confirms the security-group replacement: there is no API to change them (hashicorp/terraform-provider-
  aws#25196).
- aws:msk/topic:Topic: `internal/service/kafka/topic.go` (hashicorp 0e37492c, a framework resource:
  `RequiresReplace` on cluster_arn, name, replication_factor; configs and partition_count are updated).
- aws:mskconnect/connector:Connector: `internal/service/kafkaconnect/connector.go` (hashicorp 9dfe6ffb:
  every argument but `capacity` is `ForceNew`), except `connector_configuration`, updated in place since
  hashicorp/terraform-provider-aws#41706 (v5.90, 2025; pulumi-aws 7 bridges v6). An open report,
  hashicorp/terraform-provider-aws#47004, says such an update completes without being applied (the
  connector keeps its old configuration, the diff reappears): not a danger here, but check it after `up`.
- aws:mskconnect/customPlugin:CustomPlugin: `internal/service/kafkaconnect/custom_plugin.go` (cde80b25:
  content_type, description, location.s3.*, name are `ForceNew`; Update changes tags only). A new plugin
  has a new ARN, and a connector's `plugins` is `ForceNew`: every connector using it is replaced too.
- aws:glue/registry:Registry: `internal/service/glue/registry.go` (`ForceNew` on registry_name).
- aws:glue/schema:Schema: `internal/service/glue/schema.go` (14c697d0: `ForceNew` on schema_name only).
  `data_format` and `registry_arn` are NOT `ForceNew`, but Update never sends them (only description,
  compatibility and a new schema_definition version): a change to them is silently not applied.
- aws:s3/bucket:Bucket: `internal/service/s3/bucket.go` (`ForceNew` on bucket, bucket_prefix,
  object_lock_enabled).
- aws:dynamodb/table:Table: `internal/service/dynamodb/table.go` (01335dd3: `ForceNew` on name, hash_key,
  range_key, local_secondary_index, restore_source_name, restore_to_latest_time, restore_date_time).
- pulumi-python:dynamic/edumatrix:ServiceEvents: its own provider (components/service_events.py
  `REPLACING_INPUTS`, delete before replace). Replacing it drops the outbox publication and creates it
  again; the Debezium connector decoding the slot then fails with "publication does not exist" (the
  slot's historic snapshot predates the new publication) until the slot is recreated.
- pulumi-python:dynamic/edumatrix:SchemaPublication: its own provider (components/publication.py
  `REPLACING_INPUTS`, delete before replace). The publication of an extraction in flight: dropping and
  creating it again breaks the target's subscription the same way ("publication does not exist" from the
  slot's historic snapshot), so the extraction must start over (a new slot, every table copied again).
- Not listed, because nothing in them is data: the extraction pooler (ECS cluster, task definition and
  service, NLB, target group, listener: components/service_pooler.py; replacing them interrupts pooled
  connections, it loses nothing), the PITR validation state machine, MSK configurations and Connect
  worker configurations (revisions of text the program declares), log groups, alarms, IAM.
- `region` (pulumi-aws 7 / terraform-provider-aws 6 per-resource region) on every AWS type above: a
  regional resource cannot move, so a new region is a new resource. This one is reasoned, not read from
  the provider's source (its enhanced-region-support guide does not say it here).

An entry is an input path as the plan records it (camelCase, nested inputs dotted: `encryptionInfo.
encryptionAtRestKmsKeyArn`); a changed path replaces when it is an entry or lies inside one.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.publication import REPLACING_INPUTS as PUBLICATION_REPLACING_INPUTS
from components.service_events import REPLACING_INPUTS as SERVICE_EVENTS_REPLACING_INPUTS

RDS_INSTANCE = "aws:rds/instance:Instance"
KMS_KEY = "aws:kms/key:Key"
SERVICE_EVENTS = "pulumi-python:dynamic/edumatrix:ServiceEvents"
SCHEMA_PUBLICATION = "pulumi-python:dynamic/edumatrix:SchemaPublication"
DYNAMIC_TYPES = (SERVICE_EVENTS, SCHEMA_PUBLICATION)
"""The platform's own dynamic providers: their replacing inputs are their providers' `REPLACING_INPUTS`."""


@dataclass(frozen=True)
class StatefulType:
    """A type whose replacement or deletion loses data, and the input paths (camelCase) that replace it."""

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
    "aws:msk/cluster:Cluster": StatefulType(
        "MSK cluster",
        _aws("clusterName", "brokerNodeGroupInfo.azDistribution", "brokerNodeGroupInfo.clientSubnets",
             "brokerNodeGroupInfo.securityGroups", "encryptionInfo.encryptionAtRestKmsKeyArn",
             "encryptionInfo.encryptionInTransit.inCluster"),
        "every topic with the events it retains and the consumers' offsets; the bootstrap address every "
        "connector and consumer uses changes"),
    "aws:msk/topic:Topic": StatefulType(
        "MSK topic", _aws("clusterArn", "name", "replicationFactor"),
        "the events the topic retains and its consumers' committed offsets"),
    "aws:mskconnect/connector:Connector": StatefulType(
        "MSK Connect connector",
        _aws("description", "kafkaCluster", "kafkaClusterClientAuthentication",
             "kafkaClusterEncryptionInTransit", "kafkaconnectVersion", "logDelivery", "name", "plugins",
             "serviceExecutionRoleArn", "workerConfiguration"),
        "the connector's source offsets (its own internal topics): a new connector starts from its snapshot "
        "mode, so events can be published again, and nothing is published while it is recreated"),
    "aws:mskconnect/customPlugin:CustomPlugin": StatefulType(
        "MSK Connect custom plugin", _aws("contentType", "description", "location", "name"),
        "the plugin the connectors run: each connector using it is replaced as well (its `plugins` forces "
        "replacement), losing its offsets"),
    "aws:glue/registry:Registry": StatefulType(
        "Glue schema registry", _aws("registryName"), "every event schema in the registry, with all versions"),
    "aws:glue/schema:Schema": StatefulType(
        "Glue schema", _aws("schemaName"),
        "every version of the schema: records already in the topics name their schema version and can no "
        "longer be decoded"),
    "aws:s3/bucket:Bucket": StatefulType(
        "S3 bucket", _aws("bucket", "bucketPrefix", "objectLockEnabled"),
        "the objects and their versions (for the plugin bucket: the connector plugin archive, so the "
        "custom plugin and its connectors must be recreated from a new upload)"),
    "aws:dynamodb/table:Table": StatefulType(
        "DynamoDB table",
        _aws("name", "hashKey", "rangeKey", "localSecondaryIndexes", "restoreSourceName", "restoreToLatestTime",
             "restoreDateTime"),
        "every item and the table's point-in-time-recovery backups (for the erasure ledger: the record of "
        "every erasure that a restore must replay)"),
    SERVICE_EVENTS: StatefulType(
        "service events (outbox publication)", frozenset(SERVICE_EVENTS_REPLACING_INPUTS),
        "the outbox publication is dropped and created again: the connector decoding the slot fails with "
        "\"publication does not exist\" until its slot is recreated (the outbox and inbox rows stay)"),
    SCHEMA_PUBLICATION: StatefulType(
        "extraction publication", frozenset(PUBLICATION_REPLACING_INPUTS),
        "the extraction's publication is dropped and created again: the target's subscription fails with "
        "\"publication does not exist\" and the extraction starts over (a new slot, every table copied again)"),
}


@dataclass(frozen=True)
class DestructiveUpdate:
    """An input whose in-place update destroys something: `before` -> anything else, and what goes."""

    path: str
    before: object
    loses: str


DESTRUCTIVE_UPDATES: dict[str, DestructiveUpdate] = {
    # ServiceEventsProvider.update drops the publication when `publishes` goes from true to false.
    SERVICE_EVENTS: DestructiveUpdate(
        "publishes", True,
        "the service stops publishing: its outbox publication is dropped, so its connector fails until it is "
        "removed and the slot behind it keeps WAL until it is dropped (docs/events.md)"),
}


def _within(path: str, entry: str) -> bool:
    return path == entry or path.startswith(f"{entry}.")


def replacing_inputs(type_token: str, changed: set[str]) -> set[str]:
    """The input paths among `changed` (camelCase, nested dotted) that make the provider replace a `type_token`."""
    stateful = STATEFUL.get(type_token)
    if not stateful:
        return set()
    return {path for path in changed if any(_within(path, entry) for entry in stateful.replaced_by)}
