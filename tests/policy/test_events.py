"""The event-backbone policies on the prod plan: it passes them, and each AWS constraint or spec rule they
encode is reported when one resource breaks it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from edumatrix_db.offline.engine import Recording
from policy import events
from tests.policy.fixtures import messages_after_edit, run

Edit = Callable[[dict[str, Any]], None]


def violations_after(prod: Recording, type_token: str, edit: Edit, *, which: int = 0) -> dict[str, list[str]]:
    return messages_after_edit(prod.resources, type_token, edit, events.POLICIES, which=which)


def test_the_prod_plan_passes_every_event_policy(prod: Recording) -> None:
    assert run(prod.resources, policies=events.POLICIES) == []


def _config(**changes: Any) -> Edit:
    return lambda p: p["connectorConfiguration"].update(changes)


def _server_properties(text: str) -> Edit:
    return lambda p: p.update(serverProperties=text)


def _widen_role(props: dict[str, Any]) -> None:
    document = json.loads(props["policy"])
    write = next(s for s in document["Statement"] if s["Sid"] == "WriteOwnTopics")
    write["Resource"].append(write["Resource"][0].rsplit("/", 1)[0] + "/edumatrix.feedback.feedback")
    props["policy"] = json.dumps(document)


def _no_alarm_actions(props: dict[str, Any]) -> None:
    props["alarmActions"] = []


# (type, edit of a compliant resource, the policy that must report it, a piece of its message)
BROKEN: list[tuple[str, Edit, str, str]] = [
    (events.CLUSTER, lambda p: p["encryptionInfo"].pop("encryptionAtRestKmsKeyArn"), "events-broker-encryption",
     "customer-managed key"),
    (events.CLUSTER, lambda p: p["encryptionInfo"]["encryptionInTransit"].update(clientBroker="TLS_PLAINTEXT"),
     "events-broker-encryption", "clients must use TLS only"),
    (events.CLUSTER, lambda p: p["encryptionInfo"]["encryptionInTransit"].update(inCluster=False),
     "events-broker-encryption", "plain text"),
    (events.CLUSTER, lambda p: p.pop("loggingInfo"), "events-broker-encryption", "broker logs"),
    (events.CLUSTER, lambda p: p["clientAuthentication"].update(unauthenticated=True),
     "events-broker-authentication", "msk-unrestricted-access-check"),
    (events.CLUSTER, lambda p: p["clientAuthentication"]["sasl"].update(iam=False),
     "events-broker-authentication", "IAM client authentication is off"),
    (events.CLUSTER, lambda p: p["clientAuthentication"]["sasl"].update(scram=True),
     "events-broker-authentication", "bypass the IAM policies"),
    (events.CONFIGURATION, _server_properties("auto.create.topics.enable=true"), "events-broker-authentication",
     "topics no one declared"),
    (events.TOPIC, lambda p: p.update(replicationFactor=1), "events-topic-copies", "at least 2 copies"),
    (events.TOPIC, lambda p: p.update(configs=json.dumps({"min.insync.replicas": "3", "retention.ms": "1"})),
     "events-topic-copies", "would stop every producer"),
    (events.CONNECTOR, _config(**{"publication.name": "dbz_publication"}), "events-connector-outbox-only",
     "is not a service's outbox publication"),
    (events.CONNECTOR, _config(**{"publication.autocreate.mode": "filtered"}), "events-connector-outbox-only",
     "publication.autocreate.mode"),
    (events.CONNECTOR, _config(**{"slot.name": "debezium"}), "events-connector-outbox-only", "slot.name"),
    (events.CONNECTOR, _config(**{"database.user": "students_platform_app"}), "events-connector-outbox-only",
     "needs 'edumatrix_cdc_replicator'"),
    (events.CONNECTOR, _config(**{"table.include.list": "students_platform_schema.students_platform_students"}),
     "events-connector-outbox-only", "table.include.list"),
    (events.CONNECTOR, _config(**{"database.password": "hunter2"}), "events-connector-outbox-only",
     "written in the connector's configuration"),
    (events.CONNECTOR, _config(**{"database.sslmode": "disable"}), "events-connector-outbox-only",
     "must verify the RDS server"),
    (events.CONNECTOR, _config(**{"database.sslmode": "require"}), "events-connector-outbox-only",
     "accepts any server"),
    (events.CONNECTOR, _config(**{"database.sslfactory": "org.postgresql.ssl.NonValidatingFactory"}),
     "events-connector-outbox-only", "trusts any certificate"),
    (events.CONNECTOR, lambda p: p["connectorConfiguration"].pop("database.sslfactory"),
     "events-connector-outbox-only", "nothing says what to trust"),
    (events.CONNECTOR, lambda p: p["connectorConfiguration"].pop("value.converter.endpoint"),
     "events-connector-aws-apis", "does not name the Glue endpoint"),
    (events.WORKER, lambda p: p.update(propertiesFileContent="\n".join(
        line for line in p["propertiesFileContent"].splitlines() if ".param.endpoint=" not in line)),
     "events-connector-aws-apis", "does not name the Secrets Manager endpoint"),
    (events.VPC_ENDPOINT, lambda p: p.update(privateDnsEnabled=True), "events-connector-aws-apis",
     "one such endpoint per service and VPC"),
    (events.VPC_ENDPOINT, lambda p: p.update(policy=json.dumps({"Statement": [{"Principal": "*"}]})),
     "events-connector-aws-apis", "any principal in the VPC"),
    (events.VPC_ENDPOINT, lambda p: p.update(serviceName="com.amazonaws.us-east-1.sts"),
     "events-connector-aws-apis", "declares no interface endpoint"),
    (events.SG_INGRESS, lambda p: p.update(cidrIpv4="10.0.0.0/8"), "events-connector-aws-apis",
     "only HTTPS from the connectors' group"),
    (events.CONNECTOR, _config(**{"database.hostname": "edumatrix-prod.proxy-abc.us-east-1.rds.amazonaws.com"}),
     "events-connector-outbox-only", "does not serve replication connections"),
    (events.CONNECTOR, lambda p: p["kafkaClusterClientAuthentication"].update(authenticationType="NONE"),
     "events-connector-outbox-only", "authenticate to MSK with IAM"),
    (events.CONNECTOR, lambda p: p["kafkaClusterEncryptionInTransit"].update(encryptionType="PLAINTEXT"),
     "events-connector-outbox-only", "MSK.3"),
    (events.CONNECTOR, lambda p: p.pop("logDelivery"), "events-connector-outbox-only", "MSK.5"),
    (events.WORKER, lambda p: p.update(propertiesFileContent="key.converter=x"), "events-connector-outbox-only",
     "no config provider"),
    (events.PLUGIN, lambda p: p["location"]["s3"].pop("fileKey"), "events-connector-outbox-only",
     "does not name its S3 bucket and key"),
    (events.ROLE_POLICY, _widen_role, "events-connector-role-scoped", "only its own topics"),
    (events.SCHEMA, lambda p: p.update(compatibility="NONE"), "events-registry-compatibility",
     "BACKWARD or stricter"),
    (events.SCHEMA, lambda p: p.update(compatibility="FORWARD"), "events-registry-compatibility",
     "BACKWARD or stricter"),
    (events.REGISTRY, lambda p: p.pop("registryName"), "events-registry-compatibility", "no name"),
    (events.SCHEMA, lambda p: p.update(schemaDefinition='{"type":"object"}'), "events-registry-compatibility",
     "not the one the converter derives"),
    (events.SCHEMA, lambda p: p.update(dataFormat="AVRO"), "events-registry-compatibility", "derived for the Glue"),
    (events.CONNECTOR, _config(**{"value.converter.schemaAutoRegistrationEnabled": "true"}),
     "events-connector-outbox-only", "schemaAutoRegistrationEnabled"),
    (events.CONNECTOR, _config(**{"value.converter.connect.meta.data": "true"}), "events-connector-outbox-only",
     "connect.meta.data"),
    (events.CONNECTOR, _config(**{"transforms.outbox.table.field.event.schema.version": "schema_version"}),
     "events-connector-outbox-only", "caches the value schema by version number alone"),
    (events.BUCKET_SSE, lambda p: p["rules"][0]["applyServerSideEncryptionByDefault"].update(sseAlgorithm="AES256"),
     "events-plugin-bucket", "not encrypted with the platform CMK"),
    (events.BUCKET_VERSIONING, lambda p: p["versioningConfiguration"].update(status="Suspended"),
     "events-plugin-bucket", "versioning is not enabled"),
    (events.BUCKET_PAB, lambda p: p.update(restrictPublicBuckets=False), "events-plugin-bucket", "S3.8"),
    (events.BUCKET_POLICY, lambda p: p.update(policy="{}"), "events-plugin-bucket", "S3.5"),
]


@pytest.mark.parametrize(("type_token", "edit", "policy", "message"), BROKEN)
def test_a_broken_resource_is_reported_by_its_policy(prod: Recording, type_token: str, edit: Edit, policy: str,
                                                     message: str) -> None:
    which = 0
    if type_token in (events.ROLE_POLICY, events.VPC_ENDPOINT):  # the backbone's, not another component's
        which = next(i for i, r in enumerate(prod.of_type(type_token)) if "-events-" in r.name
                     and "secretsmanager" not in str(r.props.get("serviceName")))
    if type_token == events.SG_INGRESS:  # the rule admitting the connectors to their endpoints
        which = next(i for i, r in enumerate(prod.of_type(type_token)) if r.name.endswith("-endpoints-from-connectors"))
    found = violations_after(prod, type_token, edit, which=which)
    assert policy in found, found
    assert any(message in m for m in found[policy]), found[policy]


def test_a_connector_whose_failed_tasks_page_nobody_is_reported(prod: Recording) -> None:
    which = next(i for i, r in enumerate(prod.of_type(events.ALARM)) if r.props.get("metricName") == "ErroredTaskCount")
    found = violations_after(prod, events.ALARM, _no_alarm_actions, which=which)
    assert any("no ErroredTaskCount alarm pages anyone" in m for m in found["events-alarms"])


def test_a_backbone_without_a_consumer_lag_alarm_is_reported(prod: Recording) -> None:
    which = next(i for i, r in enumerate(prod.of_type(events.ALARM)) if r.props.get("metricQueries")
                 and "EstimatedMaxTimeLag" in json.dumps(r.props["metricQueries"]))
    found = violations_after(prod, events.ALARM, _no_alarm_actions, which=which)
    assert any("no consumer-lag alarm" in m for m in found["events-alarms"])


def test_outbox_slots_without_a_slot_lag_alarm_are_reported(prod: Recording) -> None:
    which = next(i for i, r in enumerate(prod.of_type(events.ALARM))
                 if r.props.get("metricName") == "OldestReplicationSlotLag")
    found = violations_after(prod, events.ALARM, _no_alarm_actions, which=which)
    assert any("no OldestReplicationSlotLag alarm" in m for m in found["events-alarms"])


def test_every_event_policy_has_a_refused_example() -> None:
    alarms = {"events-alarms"}  # the three alarm tests above
    assert {policy for _, _, policy, _ in BROKEN} | alarms == {p.name for p in events.POLICIES}


@pytest.mark.parametrize(("text", "read"), [
    pytest.param("a.b=c", {"a.b": "c"}, id="equals"),
    pytest.param("  a.b = c  ", {"a.b": "c"}, id="white-space-around-the-equals-sign"),
    pytest.param("a.b:c", {"a.b": "c"}, id="colon"),
    pytest.param("a.b\t: c", {"a.b": "c"}, id="white-space-then-colon"),
    pytest.param("a.b c", {"a.b": "c"}, id="white-space-alone"),
    pytest.param("a.b", {"a.b": ""}, id="a-key-alone-has-the-empty-value"),
    pytest.param("a.b=c=d", {"a.b": "c=d"}, id="the-first-separator-ends-the-key"),
    pytest.param("a.b==c", {"a.b": "=c"}, id="one-separator-only"),
    pytest.param("# a.b=c\n  ! d=e\n\nf=g", {"f": "g"}, id="comments-and-blank-lines-set-nothing"),
    pytest.param("a=1\na=2", {"a": "2"}, id="the-last-line-wins"),
])
def test_configurations_are_read_as_java_properties(text: str, read: dict[str, str]) -> None:
    """What MSK and Kafka Connect read from `serverProperties` / `propertiesFileContent` (java.util.Properties)."""
    assert events._properties(text) == read
