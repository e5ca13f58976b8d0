"""policy/events.py, every violation of the brokers, topics, connectors and schema registry as a user reads it in
CI: one row per way to break a resource of the prod plan, with the whole message its policy reports
(tests/policy/test_events.py checks which policy reports each break; tests/policy/test_events_stack_messages.py
pins the stack-wide policies)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from edumatrix_db.offline.engine import Recording
from policy import events
from policy.base import PackPolicy
from tests.policy.fixtures import messages_after_edit

Edit = Callable[[dict[str, Any]], None]
E = events


def _encryption(**changes: Any) -> Edit:
    return lambda p: p["encryptionInfo"].update(changes)


def _transit(**changes: Any) -> Edit:
    return lambda p: p["encryptionInfo"]["encryptionInTransit"].update(changes)


def _without_in_transit(key: str) -> Edit:
    return lambda p: p["encryptionInfo"]["encryptionInTransit"].pop(key)


def _authentication(**changes: Any) -> Edit:
    return lambda p: p["clientAuthentication"].update(changes)


def _server_properties(text: str) -> Edit:
    return lambda p: p.update(serverProperties=text)


AUTO_CREATE = ("auto.create.topics.enable is not false: a client (or a misrouted connector) could create topics no "
               "one declared")
UNCLEAN = "unclean.leader.election.enable=true lets an out-of-date replica lead and lose events"


def _configuration(case: str, server_properties: str, message: str) -> Any:
    """A row: the MSK configuration with these serverProperties, reported with `message` alone."""
    return pytest.param(E.broker_authentication, E.CONFIGURATION, _server_properties(server_properties), [message],
                        id=case)


def _topic(factor: int, **configs: str) -> Edit:
    return lambda p: p.update(replicationFactor=factor, configs=json.dumps(configs))


def _config(**changes: Any) -> Edit:
    return lambda p: p["connectorConfiguration"].update(changes)


def _without(key: str) -> Edit:
    return lambda p: p["connectorConfiguration"].pop(key)


def _trusting_a_root_certificate_file(props: dict[str, Any]) -> None:
    """pgjdbc's own factory with the CA bundle's path (sslrootcert) instead of the plugin jar's factory."""
    props["connectorConfiguration"].pop("database.sslfactory")
    props["connectorConfiguration"]["database.sslrootcert"] = "/opt/certs/rds-global-bundle.pem"


KEPT = {"cleanup.policy": "delete", "retention.ms": "604800000"}

# (policy, type of the resource edited, the edit, the messages its policy then reports for it)
CASES: list[Any] = [
    # events-broker-encryption
    pytest.param(E.broker_encryption, E.CLUSTER, lambda p: p["encryptionInfo"].pop("encryptionAtRestKmsKeyArn"),
                 ["data volumes are not under the platform's customer-managed key (encryptionAtRestKmsKeyArn "
                  "None): without one MSK uses an AWS-managed key, and encryption cannot be changed later"],
                 id="cluster-without-a-key"),
    pytest.param(E.broker_encryption, E.CLUSTER, _encryption(encryptionAtRestKmsKeyArn="alias/aws/kafka"),
                 ["data volumes are not under the platform's customer-managed key (encryptionAtRestKmsKeyArn "
                  "'alias/aws/kafka'): without one MSK uses an AWS-managed key, and encryption cannot be changed "
                  "later"],
                 id="cluster-under-the-aws-managed-key"),
    pytest.param(E.broker_encryption, E.CLUSTER, _transit(clientBroker="TLS_PLAINTEXT"),
                 ["encryptionInTransit.clientBroker is 'TLS_PLAINTEXT': clients must use TLS only (TLS_PLAINTEXT "
                  "and PLAINTEXT accept unencrypted clients)"],
                 id="cluster-accepting-plain-text-clients"),
    pytest.param(E.broker_encryption, E.CLUSTER, _without_in_transit("clientBroker"), [],
                 id="cluster-client-broker-defaults-to-tls"),
    pytest.param(E.broker_encryption, E.CLUSTER, _transit(inCluster=False),
                 ["encryptionInTransit.inCluster is false: brokers would replicate in plain text (Security Hub "
                  "MSK.1, AWS Config msk-in-cluster-node-require-tls)"], id="cluster-plain-text-in-cluster"),
    pytest.param(E.broker_encryption, E.CLUSTER, lambda p: p.pop("loggingInfo"),
                 ["broker logs are not delivered to a CloudWatch log group (loggingInfo.brokerLogs.cloudwatchLogs)"],
                 id="cluster-without-logs"),
    pytest.param(E.broker_encryption, E.CLUSTER,
                 lambda p: p["loggingInfo"]["brokerLogs"]["cloudwatchLogs"].pop("logGroup"),
                 ["broker logs are not delivered to a CloudWatch log group (loggingInfo.brokerLogs.cloudwatchLogs)"],
                 id="cluster-logs-enabled-without-a-group"),
    # events-broker-authentication
    _configuration("configuration-auto-creating-topics", "auto.create.topics.enable=true", AUTO_CREATE),
    _configuration("configuration-unclean-leader-election",
                   "auto.create.topics.enable=false\nunclean.leader.election.enable=true", UNCLEAN),
    _configuration("configuration-commented-out-line-sets-nothing", "# auto.create.topics.enable=false", AUTO_CREATE),
    _configuration("configuration-written-with-a-colon-and-with-white-space",
                   "auto.create.topics.enable: false\nunclean.leader.election.enable true", UNCLEAN),
    _configuration("configuration-booleans-in-any-case-as-kafka-reads-them",
                   "auto.create.topics.enable=FALSE\nunclean.leader.election.enable=True", UNCLEAN),
    _configuration("configuration-line-commented-out-with-an-exclamation-mark", "! auto.create.topics.enable=false",
                   AUTO_CREATE),
    pytest.param(E.broker_authentication, E.CLUSTER, _authentication(unauthenticated=True),
                 ["clientAuthentication.unauthenticated is not false: anyone reaching the brokers could read and "
                  "write every topic (AWS Config msk-unrestricted-access-check)"],
                 id="cluster-unauthenticated"),
    pytest.param(E.broker_authentication, E.CLUSTER, lambda p: p["clientAuthentication"]["sasl"].update(iam=False),

                 ["IAM client authentication is off (clientAuthentication.sasl.iam): the connectors' roles and the "
                  "services' roles are what scope topics"], id="cluster-without-iam"),
    pytest.param(E.broker_authentication, E.CLUSTER, lambda p: p["clientAuthentication"]["sasl"].update(scram=True),

                 ["SCRAM or mutual-TLS authentication is on beside IAM: those principals bypass the IAM policies "
                  "that scope each connector to its topics"], id="cluster-with-scram"),
    pytest.param(E.broker_authentication, E.CLUSTER, _authentication(tls={"certificateAuthorityArns": [
        "arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/ca"]}),
                 ["SCRAM or mutual-TLS authentication is on beside IAM: those principals bypass the IAM policies "
                  "that scope each connector to its topics"], id="cluster-with-mutual-tls"),
    pytest.param(E.broker_authentication, E.CLUSTER, lambda p: p["brokerNodeGroupInfo"].update(connectivityInfo={
        "publicAccess": {"type": "SERVICE_PROVIDED_EIPS"}}),
                 ["brokers are publicly accessible (publicAccess 'SERVICE_PROVIDED_EIPS'; CT.MSK.PR.2)"],
                 id="cluster-publicly-accessible"),
    pytest.param(E.broker_authentication, E.CLUSTER, lambda p: p["brokerNodeGroupInfo"].update(connectivityInfo={
        "publicAccess": {"type": "DISABLED"}}), [], id="cluster-public-access-disabled-is-fine"),
    # events-topic-copies
    pytest.param(E.topic_copies, E.TOPIC, _topic(1, **KEPT),
                 ["replicationFactor 1: an event must survive the loss of a broker (at least 2 copies)"],
                 id="topic-one-copy"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(2, **KEPT), [], id="topic-two-copies-are-fine"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(2, **KEPT, **{"min.insync.replicas": "2"}),
                 ["min.insync.replicas 2 is not below replicationFactor 2: one broker's maintenance would stop "
                  "every producer (Amazon MSK best practices)"],
                 id="topic-min-insync-equal-to-two-copies"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(2, **KEPT, **{"min.insync.replicas": "1"}), [],
                 id="topic-min-insync-below-two-copies-is-fine"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(3, **{"cleanup.policy": "delete"}),
                 ["a topic of events keeps them for a set retention (cleanup.policy delete, retention.ms)"],
                 id="topic-without-retention"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(3, **{**KEPT, "cleanup.policy": "compact"}),
                 ["a topic of events keeps them for a set retention (cleanup.policy delete, retention.ms)"],
                 id="topic-compacted"),
    pytest.param(E.topic_copies, E.TOPIC, lambda p: p.pop("configs"),
                 ["a topic of events keeps them for a set retention (cleanup.policy delete, retention.ms)"],
                 id="topic-without-configs"),
    pytest.param(E.topic_copies, E.TOPIC, _topic(3, **{"retention.ms": "1"}), [],
                 id="topic-cleanup-policy-defaults-to-delete"),
    # events-connector-outbox-only
    pytest.param(E.connector_outbox_only, E.WORKER, lambda p: p.update(propertiesFileContent="key.converter=x"),
                 ["the worker configuration has no config provider: connectors could only carry passwords in clear "
                  "in their configuration"],
                 id="worker-without-config-provider"),
    pytest.param(E.connector_outbox_only, E.WORKER, lambda p: p.update(
        propertiesFileContent="config.providers=secretsmanager=x"), [],
                 id="worker-property-value-holding-an-equals-sign"),
    pytest.param(E.connector_outbox_only, E.PLUGIN, lambda p: p["location"]["s3"].pop("fileKey"),
                 ["the custom plugin does not name its S3 bucket and key"],
                 id="plugin-without-its-key"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, lambda p: p["kafkaClusterClientAuthentication"].update(
        authenticationType="NONE"),
                 ["the connector does not authenticate to MSK with IAM (authenticationType IAM)"],
                 id="connector-without-iam"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, lambda p: p["kafkaClusterEncryptionInTransit"].update(
        encryptionType="PLAINTEXT"),
                 ["the connector does not use TLS to the brokers (encryptionType TLS; Security Hub MSK.3)"],
                 id="connector-without-tls"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, lambda p: p.pop("logDelivery"),
                 ["the connector's worker logs are not delivered to CloudWatch (Security Hub MSK.5)"],
                 id="connector-without-logs"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _without("publication.name"),
                 ["publication.name '' is not a service's outbox publication: a CDC login decodes any table its "
                  "publication holds, so it reads only `<service>_outbox_pub`"],
                 id="connector-without-a-publication"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _config(**{"slot.name": "debezium"}),
                 ["slot.name is 'debezium'; students_platform's connector needs 'students_platform_outbox_slot'"],
                 id="connector-other-slot"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _config(**{
        "transforms.outbox.table.field.event.schema.version": "schema_version"}),
                 ["transforms.outbox.table.field.event.schema.version is set: the outbox router then caches the "
                  "value schema by version number alone, giving every event type of that version the first type's "
                  "schema (docs/events.md); the version travels as the schemaVersion header"],
                 id="connector-schema-version-field"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _config(**{"database.password": "hunter2"}),
                 ["database.password is written in the connector's configuration: reference the CDC secret through "
                  "the worker's config provider (${secretsmanager:<arn>:password})"],
                 id="connector-password-in-clear"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _without("database.password"), [],
                 id="connector-without-a-password-setting"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _config(**{
        "database.hostname": "edumatrix-prod.proxy-abc.us-east-1.rds.amazonaws.com"}),
                 ["database.hostname is an RDS Proxy endpoint: RDS Proxy does not serve replication connections; "
                  "use the instance endpoint"],
                 id="connector-through-rds-proxy"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _without("database.sslmode"),
                 ["database.sslmode '': the replication connection must verify the RDS server (verify-ca, "
                  "verify-full); `require` encrypts but accepts any server"],
                 id="connector-without-sslmode"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _config(**{
        "database.sslfactory": "org.postgresql.ssl.NonValidatingFactory"}),
                 ["database.sslfactory org.postgresql.ssl.NonValidatingFactory: pgjdbc then trusts any "
                  "certificate, whatever the sslmode"], id="connector-non-validating"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _without("database.sslfactory"),
                 ["database.sslmode verifies the server but nothing says what to trust (no database.sslfactory, no "
                  "database.sslrootcert): pgjdbc would look for ~/.postgresql/root.crt on the worker; use the "
                  "plugin jar's com.edumatrix.events.RdsCaBundleSocketFactory"],
                 id="connector-trusting-nothing-named"),
    pytest.param(E.connector_outbox_only, E.CONNECTOR, _trusting_a_root_certificate_file, [],
                 id="connector-trusting-a-root-certificate-file"),
    # events-registry-compatibility
    pytest.param(E.registry_compatibility, E.REGISTRY, lambda p: p.pop("registryName"),
                 ["the schema registry has no name the converters can use"], id="registry-without-a-name"),
    pytest.param(E.registry_compatibility, E.SCHEMA, lambda p: p.update(compatibility="FORWARD"),
                 ["compatibility 'FORWARD': versioned events need BACKWARD or stricter (BACKWARD, BACKWARD_ALL, FULL, "
                  "FULL_ALL), or a new version could break its consumers"], id="schema-forward-compatible-only"),
    pytest.param(E.registry_compatibility, E.SCHEMA, lambda p: p.update(compatibility="FULL_ALL"), [],
                 id="schema-full-all-is-fine"),
    pytest.param(E.registry_compatibility, E.SCHEMA, lambda p: p.update(dataFormat="AVRO"),
                 ["dataFormat 'AVRO': the registered definitions are derived for the Glue JSON Schema converter "
                  "(config/event_schemas.py)"], id="schema-in-avro"),
    pytest.param(E.registry_compatibility, E.SCHEMA, lambda p: p.update(schemaDefinition='{"type":"object"}'),
                 ["students_platform.heartbeat's schema definition is not the one the converter derives from the "
                  "catalog's payload: with auto-registration off no record would find its version and the "
                  "connector task would fail"], id="schema-definition-not-derived-from-the-catalog"),
    pytest.param(E.registry_compatibility, E.SCHEMA, lambda p: p.update(schemaName="someone_else.thing",
                                                                        schemaDefinition='{"type":"object"}'), [],
                 id="schema-of-no-catalog-event-is-not-compared"),
]


@pytest.mark.parametrize(("policy", "type_token", "edit", "expected"), CASES)
def test_the_event_policy_says_why_in_full(prod: Recording, policy: PackPolicy, type_token: str, edit: Edit,
                                           expected: list[str]) -> None:
    assert messages_after_edit(prod.resources, type_token, edit, [policy]).get(policy.name, []) == expected
