"""`edumatrix-db diff`: two plans compared by URN, secrets masked, and every class of dangerous change flagged
(the table of replacing inputs is checked against the installed SDKs)."""

import copy
import inspect
import json
import re
from typing import Any

import pulumi
import pulumi_aws
import pulumi_postgresql
import pytest

from components.publication import SchemaPublicationProvider
from components.service_events import ServiceEventsProvider
from edumatrix_db.cli import EXIT_CONFIG, main
from edumatrix_db.offline.diff import PlanDiff, diff_plans, render_json, render_markdown, render_text
from edumatrix_db.offline.replacements import (
    DYNAMIC_TYPES,
    KMS_KEY,
    RDS_INSTANCE,
    SCHEMA_PUBLICATION,
    SERVICE_EVENTS,
    STATEFUL,
)

STACK = "urn:pulumi:prod::edumatrix-db::"
SDK_CLASSES: dict[str, type[pulumi.CustomResource]] = {
    RDS_INSTANCE: pulumi_aws.rds.Instance,
    KMS_KEY: pulumi_aws.kms.Key,
    "aws:backup/vault:Vault": pulumi_aws.backup.Vault,
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration": pulumi_aws.backup.VaultLockConfiguration,
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication":
        pulumi_aws.rds.InstanceAutomatedBackupsReplication,
    "postgresql:index/subscription:Subscription": pulumi_postgresql.Subscription,
    "aws:msk/cluster:Cluster": pulumi_aws.msk.Cluster,
    "aws:msk/topic:Topic": pulumi_aws.msk.Topic,
    "aws:mskconnect/connector:Connector": pulumi_aws.mskconnect.Connector,
    "aws:mskconnect/customPlugin:CustomPlugin": pulumi_aws.mskconnect.CustomPlugin,
    "aws:glue/registry:Registry": pulumi_aws.glue.Registry,
    "aws:glue/schema:Schema": pulumi_aws.glue.Schema,
    "aws:s3/bucket:Bucket": pulumi_aws.s3.Bucket,
    "aws:dynamodb/table:Table": pulumi_aws.dynamodb.Table,
}
MSK_CLUSTER = "aws:msk/cluster:Cluster"


def resource(type_token: str, resource_name: str, /, protect: bool = False, **inputs: Any) -> dict:
    return {"urn": f"{STACK}{type_token}::{resource_name}", "type": type_token, "name": resource_name,
            "parent": None, "provider": None, "inputs": inputs, "protect": protect}


def plan(*resources: dict) -> dict:
    return {"project": "edumatrix-db", "stack": "prod", "resources": list(resources), "outputs": {}}


DB = resource(RDS_INSTANCE, "db", protect=True, identifier="edumatrix-prod", engine="postgres",
              kmsKeyId="arn:aws:kms:us-east-1:1:key/a", storageEncrypted=True, deletionProtection=True,
              instanceClass="db.r6g.large", tags={"owner": "platform"})
KEY = resource(KMS_KEY, "key", enableKeyRotation=True, keyUsage="ENCRYPT_DECRYPT")
ROLE = resource("postgresql:index/role:Role", "app", name="feedback_app", password="[secret]")


def changed(base_resource: dict, **inputs: Any) -> dict:
    new = copy.deepcopy(base_resource)
    new["inputs"].update(inputs)
    return new


def kinds(diff: PlanDiff) -> list[tuple[str, str]]:
    return [(d.kind, d.urn.rsplit("::", 1)[1]) for d in diff.dangers]


def compare(base: list[dict], head: list[dict]) -> PlanDiff:
    return diff_plans(plan(*base), plan(*head), stack="prod", base_label="main")


# -- the replacement table ---------------------------------------------------------------------------------

def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_every_stateful_type_but_the_dynamic_ones_is_checked_against_its_sdk() -> None:
    assert sorted(set(STATEFUL) - set(SDK_CLASSES)) == sorted(DYNAMIC_TYPES)


@pytest.mark.parametrize("type_token", sorted(SDK_CLASSES))
def test_every_replacing_input_in_the_table_is_an_input_of_the_sdk_resource(type_token: str) -> None:
    # every generated SDK resource class defines _internal_init; pulumi.CustomResource does not declare it
    parameters = inspect.signature(SDK_CLASSES[type_token]._internal_init).parameters  # type: ignore[attr-defined]
    snake = {_snake(path.split(".", 1)[0]) for path in STATEFUL[type_token].replaced_by}
    assert sorted(snake - set(parameters)) == []


@pytest.mark.parametrize(("args_class", "path"), [
    (pulumi_aws.msk.ClusterBrokerNodeGroupInfoArgs, "azDistribution"),
    (pulumi_aws.msk.ClusterBrokerNodeGroupInfoArgs, "clientSubnets"),
    (pulumi_aws.msk.ClusterBrokerNodeGroupInfoArgs, "securityGroups"),
    (pulumi_aws.msk.ClusterEncryptionInfoArgs, "encryptionAtRestKmsKeyArn"),
    (pulumi_aws.msk.ClusterEncryptionInfoArgs, "encryptionInTransit"),
    (pulumi_aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs, "inCluster"),
])
def test_the_nested_msk_cluster_inputs_in_the_table_are_fields_of_the_sdk_args(args_class: type[object],
                                                                               path: str) -> None:
    assert _snake(path) in inspect.signature(args_class.__init__).parameters


def test_the_service_events_entry_is_what_its_dynamic_provider_replaces_on() -> None:
    olds = {"service": "news", "database": "edumatrix", "host": "a", "publishes": True}
    for key in STATEFUL[SERVICE_EVENTS].replaced_by:
        assert ServiceEventsProvider().diff("id", olds, {**olds, key: "other"}).replaces == [key]
    assert ServiceEventsProvider().diff("id", olds, {**olds, "publishes": False}).replaces == []


def test_the_schema_publication_entry_is_what_its_dynamic_provider_replaces_on() -> None:
    olds = {"publication": "news_extract", "schema": "news", "database": "edumatrix", "host": "a", "port": 5432}
    for key in STATEFUL[SCHEMA_PUBLICATION].replaced_by:
        assert SchemaPublicationProvider().diff("id", olds, {**olds, key: "other"}).replaces == [key]
    assert SchemaPublicationProvider().diff("id", olds, {**olds, "port": 6432}).replaces == []


def test_an_rds_identifier_is_renamed_in_place_not_replaced() -> None:
    assert "identifier" not in STATEFUL[RDS_INSTANCE].replaced_by
    diff = compare([DB], [changed(DB, identifier="edumatrix-main")])
    assert diff.dangers == []
    assert any("renamed in place" in note for note in diff.notes)


# -- each danger ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "value"), [("kmsKeyId", "arn:aws:kms:us-east-1:1:key/b"),
                                            ("storageEncrypted", False), ("engine", "mysql")])
def test_an_rds_input_that_forces_replacement_is_a_danger(key: str, value: str | bool) -> None:
    diff = compare([DB], [changed(DB, **{key: value})])
    assert kinds(diff) == [("replace", "db")]
    assert key in diff.dangers[0].message
    assert diff.changed[0].replaced


def test_a_removed_kms_key_is_scheduled_for_deletion() -> None:
    diff = compare([DB, KEY], [DB])
    assert kinds(diff) == [("delete", "key")]
    assert "scheduled for deletion" in diff.dangers[0].message


def test_a_kms_key_replaced_by_a_new_key_usage_is_a_danger() -> None:
    assert kinds(compare([KEY], [changed(KEY, keyUsage="SIGN_VERIFY")])) == [("replace", "key")]


def test_a_removed_backup_vault_and_a_changed_vault_lock_are_dangers() -> None:
    vault = resource("aws:backup/vault:Vault", "vault", name="edumatrix-prod", kmsKeyArn="arn:k")
    lock = resource("aws:backup/vaultLockConfiguration:VaultLockConfiguration", "lock", backupVaultName="v",
                    minRetentionDays=30, changeableForDays=3)
    diff = compare([vault, lock], [changed(lock, minRetentionDays=7)])
    assert sorted(kinds(diff)) == [("delete", "vault"), ("replace", "lock")]


def test_a_subscription_of_an_extraction_in_flight_is_replaced_by_a_new_conninfo_but_not_by_pausing_it() -> None:
    sub = resource("postgresql:index/subscription:Subscription", "extract-news", name="news_extract",
                   conninfo="[secret]", publications=["news"])
    assert kinds(compare([sub], [changed(sub, publications=["news", "jobs"])])) == [("replace", "extract-news")]
    assert compare([sub], [changed(sub, enabled=False)]).dangers == []


# -- the event backbone, the erasure ledger and the outbox publication -----------------------------------------

CLUSTER = resource(MSK_CLUSTER, "events", clusterName="edumatrix-prod-events", kafkaVersion="3.6.0",
                   brokerNodeGroupInfo={"instanceType": "kafka.m7g.large", "clientSubnets": ["s-1", "s-2"],
                                        "securityGroups": ["sg-1"]},
                   encryptionInfo={"encryptionAtRestKmsKeyArn": "arn:k1",
                                   "encryptionInTransit": {"clientBroker": "TLS", "inCluster": True}})


def test_new_msk_cluster_subnets_replace_the_cluster() -> None:
    new = changed(CLUSTER, brokerNodeGroupInfo={**CLUSTER["inputs"]["brokerNodeGroupInfo"],
                                               "clientSubnets": ["s-1", "s-3"]})
    diff = compare([CLUSTER], [new])
    assert kinds(diff) == [("replace", "events")]
    assert "brokerNodeGroupInfo.clientSubnets" in diff.dangers[0].message


def test_a_new_msk_at_rest_key_replaces_the_cluster() -> None:
    new = copy.deepcopy(CLUSTER)
    new["inputs"]["encryptionInfo"]["encryptionAtRestKmsKeyArn"] = "arn:k2"
    assert kinds(compare([CLUSTER], [new])) == [("replace", "events")]


def test_an_msk_kafka_version_broker_type_or_client_broker_change_is_in_place() -> None:
    new = copy.deepcopy(CLUSTER)
    new["inputs"]["kafkaVersion"] = "3.7.x"
    new["inputs"]["brokerNodeGroupInfo"]["instanceType"] = "kafka.m7g.xlarge"
    new["inputs"]["encryptionInfo"]["encryptionInTransit"]["clientBroker"] = "TLS_PLAINTEXT"
    diff = compare([CLUSTER], [new])
    assert diff.dangers == []
    assert len(diff.changed[0].changes) == 3


def test_a_removed_msk_cluster_is_a_deletion() -> None:
    diff = compare([CLUSTER], [])
    assert kinds(diff) == [("delete", "events")]
    assert "every topic" in diff.dangers[0].message


def test_a_new_topic_replication_factor_replaces_the_topic_but_more_partitions_do_not() -> None:
    topic = resource("aws:msk/topic:Topic", "news-topic", name="edumatrix.news.article", partitionCount=6,
                     replicationFactor=3, clusterArn="arn:c")
    assert kinds(compare([topic], [changed(topic, replicationFactor=2)])) == [("replace", "news-topic")]
    assert compare([topic], [changed(topic, partitionCount=12)]).dangers == []


CONNECTOR = resource("aws:mskconnect/connector:Connector", "news-cdc", name="edumatrix-prod-news-cdc",
                     kafkaconnectVersion="2.7.1", connectorConfiguration={"slot.name": "news_cdc"},
                     capacity={"provisionedCapacity": {"mcuCount": 1, "workerCount": 1}})


def test_a_new_kafka_connect_version_replaces_the_connector() -> None:
    assert kinds(compare([CONNECTOR], [changed(CONNECTOR, kafkaconnectVersion="3.7.x")])) == [
        ("replace", "news-cdc")]


def test_a_connector_configuration_or_capacity_change_is_in_place() -> None:  # hashicorp/terraform-provider-aws#41706
    new = changed(CONNECTOR, connectorConfiguration={"slot.name": "news_cdc2"},
                  capacity={"provisionedCapacity": {"mcuCount": 2, "workerCount": 1}})
    assert compare([CONNECTOR], [new]).dangers == []


def test_a_new_plugin_archive_replaces_the_custom_plugin() -> None:
    plugin = resource("aws:mskconnect/customPlugin:CustomPlugin", "debezium", name="debezium", contentType="ZIP",
                      location={"s3": {"bucketArn": "arn:b", "fileKey": "debezium-2.7.4.zip"}})
    new = changed(plugin, location={"s3": {"bucketArn": "arn:b", "fileKey": "debezium-2.7.5.zip"}})
    diff = compare([plugin], [new])
    assert kinds(diff) == [("replace", "debezium")]
    assert "each connector using it is replaced" in diff.dangers[0].message


def test_a_renamed_glue_registry_is_replaced() -> None:
    registry = resource("aws:glue/registry:Registry", "registry", registryName="edumatrix-prod-events")
    assert kinds(compare([registry], [changed(registry, registryName="edumatrix-events")])) == [
        ("replace", "registry")]


def test_a_renamed_glue_schema_is_replaced_but_a_new_definition_is_a_new_version() -> None:
    schema = resource("aws:glue/schema:Schema", "article", schemaName="news.article.published",
                      schemaDefinition="{}", dataFormat="JSON", compatibility="BACKWARD")
    assert kinds(compare([schema], [changed(schema, schemaName="news.article.created")])) == [
        ("replace", "article")]
    assert compare([schema], [changed(schema, schemaDefinition='{"type": "object"}')]).dangers == []


def test_a_removed_glue_schema_loses_the_versions_records_name() -> None:
    schema = resource("aws:glue/schema:Schema", "article", schemaName="news.article.published")
    diff = compare([schema], [])
    assert kinds(diff) == [("delete", "article")]
    assert "can no longer be decoded" in diff.dangers[0].message


def test_a_new_bucket_prefix_replaces_the_plugin_bucket() -> None:
    bucket = resource("aws:s3/bucket:Bucket", "plugins", bucketPrefix="edumatrix-prod-cdc-")
    assert kinds(compare([bucket], [changed(bucket, bucketPrefix="edumatrix-cdc-")])) == [("replace", "plugins")]


LEDGER = resource("aws:dynamodb/table:Table", "ledger", protect=True, name="edumatrix-prod-erasure-ledger",
                  hashKey="request_id", rangeKey="record", deletionProtectionEnabled=True,
                  billingMode="PAY_PER_REQUEST")


def test_a_new_ledger_range_key_replaces_the_table() -> None:
    diff = compare([LEDGER], [changed(LEDGER, rangeKey="row")])
    assert kinds(diff) == [("replace", "ledger")]
    assert "erasure ledger" in diff.dangers[0].message


def test_removing_the_protected_ledger_is_both_a_deletion_and_a_protected_removal() -> None:
    assert sorted(kinds(compare([LEDGER], []))) == [("delete", "ledger"), ("protected-removed", "ledger")]


def test_dynamodb_deletion_protection_turned_off_is_a_danger() -> None:
    assert kinds(compare([LEDGER], [changed(LEDGER, deletionProtectionEnabled=False)])) == [
        ("deletion-protection-off", "ledger")]


EVENTS = resource(SERVICE_EVENTS, "news-events", service="news", database="edumatrix", host="db-a",
                  publishes=True, publication="news_outbox_pub", port=5432)


def test_service_events_moved_to_another_host_is_replaced_and_names_the_broken_connector() -> None:
    diff = compare([EVENTS], [changed(EVENTS, host="db-b")])
    assert kinds(diff) == [("replace", "news-events")]
    assert "publication does not exist" in diff.dangers[0].message


def test_service_events_with_a_new_port_is_updated_in_place() -> None:
    assert compare([EVENTS], [changed(EVENTS, port=6432)]).dangers == []


def test_service_events_that_stop_publishing_are_a_destructive_update() -> None:
    diff = compare([EVENTS], [changed(EVENTS, publishes=False)])
    assert kinds(diff) == [("destructive-update", "news-events")]
    assert "publication is dropped" in diff.dangers[0].message


def test_service_events_that_start_publishing_are_no_danger() -> None:
    quiet = changed(EVENTS, publishes=False)
    assert compare([quiet], [EVENTS]).dangers == []


PUBLICATION = resource(SCHEMA_PUBLICATION, "news-extract-pub", publication="news_extract", schema="news",
                       database="edumatrix", host="db-a", port=5432)


def test_an_extraction_publication_moved_to_another_schema_is_replaced_and_restarts_the_extraction() -> None:
    diff = compare([PUBLICATION], [changed(PUBLICATION, schema="news2")])
    assert kinds(diff) == [("replace", "news-extract-pub")]
    assert "starts over" in diff.dangers[0].message


def test_an_extraction_publication_with_a_new_port_is_updated_in_place() -> None:
    assert compare([PUBLICATION], [changed(PUBLICATION, port=6432)]).dangers == []


def test_removed_service_events_drop_the_publication() -> None:
    assert kinds(compare([EVENTS], [])) == [("delete", "news-events")]


def test_a_protected_resource_removed_is_a_danger_whatever_its_type() -> None:
    topic = resource("aws:sns/topic:Topic", "alarms", protect=True)
    assert kinds(compare([topic], [])) == [("protected-removed", "alarms")]


def test_removing_the_protected_instance_is_both_a_deletion_and_a_protected_removal() -> None:
    assert sorted(kinds(compare([DB], []))) == [("delete", "db"), ("protected-removed", "db")]


def test_deletion_protection_turned_off_is_a_danger() -> None:
    assert kinds(compare([DB], [changed(DB, deletionProtection=False)])) == [("deletion-protection-off", "db")]
    gone = copy.deepcopy(DB)
    del gone["inputs"]["deletionProtection"]
    assert kinds(compare([DB], [gone])) == [("deletion-protection-off", "db")]


def test_ordinary_changes_additions_and_removals_are_listed_without_danger() -> None:
    role2 = resource("postgresql:index/role:Role", "jobs", name="jobs_app")
    diff = compare([DB, ROLE], [changed(DB, instanceClass="db.r6g.xlarge", tags={"owner": "dba"}), role2])
    assert diff.dangers == []
    assert [r["name"] for r in diff.added] == ["jobs"]
    assert [r["name"] for r in diff.removed] == ["app"]
    assert [(c.path, c.before, c.after) for c in diff.changed[0].changes] == [
        ("instanceClass", "db.r6g.large", "db.r6g.xlarge"), ("tags.owner", "platform", "dba")]


def test_a_stack_new_at_the_base_is_all_additions() -> None:
    diff = diff_plans(None, plan(DB), stack="prod", base_label="main")
    assert [r["name"] for r in diff.added] == ["db"]
    assert diff.dangers == []
    assert any("does not exist at main" in n for n in diff.notes)


def test_a_base_plan_without_protect_is_noted() -> None:
    old = {k: v for k, v in ROLE.items() if k != "protect"}
    assert any("protect" in n for n in compare([old], [ROLE]).notes)


# -- secrets and output formats ----------------------------------------------------------------------------

def test_secret_and_password_like_inputs_are_masked_in_every_format() -> None:
    connection = resource("aws:secretsmanager/secretVersion:SecretVersion", "conn", secretString="hunter2-old")
    diff = compare([connection], [changed(connection, secretString="hunter2-new")])
    assert [c.path for c in diff.changed[0].changes] == ["secretString"]  # a change is still reported
    for text in (render_text(diff), render_json(diff), render_markdown(diff)):
        assert "hunter2" not in text
        assert "[secret]" in text


def test_json_lists_dangers_and_changes() -> None:
    data = json.loads(render_json(compare([DB, KEY], [changed(DB, storageEncrypted=False)])))
    assert set(data) == {"stack", "base", "added", "removed", "changed", "dangers", "notes"}
    assert [d["kind"] for d in data["dangers"]] == ["delete", "replace"]
    assert data["changed"][0]["changes"] == [
        {"path": "storageEncrypted", "before": True, "after": False, "replaces": True}]


def test_markdown_opens_with_a_caution_block_when_dangerous_and_tables_the_changes() -> None:
    text = render_markdown(compare([DB], [changed(DB, kmsKeyId="arn:aws:kms:us-east-1:1:key/b")]))
    assert text.index("> [!CAUTION]") < text.index("<summary>Changed (1)</summary>")
    assert "| `db` | `kmsKeyId` |" in text
    assert "**yes**" in text


def test_text_shouts_the_dangers_before_the_details() -> None:
    text = render_text(compare([DB, KEY], [DB]))
    assert text.index("!!! DANGER") < text.index("removed:")


def test_an_unknown_base_revision_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diff", "prod", "--base", "no-such-revision-anywhere"]) == EXIT_CONFIG
    assert "no-such-revision-anywhere" in capsys.readouterr().err
