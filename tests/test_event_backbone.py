"""The event backbone (issue 19, AWS side): the `events` stack section and its loader rules, the replication
slots and WAL senders derived from the stack, and what prod declares under mocks: MSK with IAM and TLS under
the platform CMK, a topic per service and aggregate, one outbox connector per publishing service scoped to its
topics, one BACKWARD schema per event type, alarms on the region's alarm topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.catalog import load_catalog
from config.errors import ConfigError
from config.events import (
    MAX_STACK_NAME,
    SENDER_HEADROOM,
    SLOT_HEADROOM,
    events_problems,
    heartbeat_schema_name,
    heartbeat_topic_name,
    replication_budget,
)
from config.loader import load_stack
from config.naming import (
    event_schema_name,
    event_topic_name,
    outbox_publication_name,
    outbox_slot_name,
    outbox_table_name,
    schema_name,
)
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from tests.region_support import copy_stacks, edit_stack

CLUSTER = "aws:msk/cluster:Cluster"
TOPIC = "aws:msk/topic:Topic"
CONNECTOR = "aws:mskconnect/connector:Connector"
SCHEMA = "aws:glue/schema:Schema"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
PUBLISHERS = [s for s in load_catalog() if s.events]
PROD_EVENTS = "  edumatrix-db:events:\n    enabled: true\n"


def load_error(stacks: Path, stack: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_stack(stack, stacks)
    return str(caught.value)


# -- the stack section -------------------------------------------------------------------------------------------

def test_statistics_publishes_nothing_so_eight_services_publish() -> None:
    assert "statistics" not in {s.name for s in PUBLISHERS}
    assert len(PUBLISHERS) == 8


def test_a_region_stack_may_not_declare_the_backbone(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    path = stacks / "Pulumi.prod-eu-west-1.yaml"
    path.write_text(path.read_text(encoding="utf-8") + PROD_EVENTS, encoding="utf-8")
    message = load_error(stacks, "prod-eu-west-1")
    assert "edumatrix-db:events" in message
    assert "logical decoding reads the primary's WAL" in message
    assert "remove the key" in message


def test_the_local_stack_may_not_declare_the_backbone(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    path = stacks / "Pulumi.local.yaml"
    path.write_text(path.read_text(encoding="utf-8") + PROD_EVENTS, encoding="utf-8")
    assert "the local stack has no RDS instance" in load_error(stacks, "local")


def test_more_copies_than_brokers_is_refused_with_the_broker_count(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "staging", "    replicationFactor: 2\n    minInsyncReplicas: 1\n", "")
    message = load_error(stacks, "staging")
    assert "edumatrix-db:events.replicationFactor" in message
    assert "the cluster has 2 (2 zone(s) x brokersPerZone 1)" in message


def test_prod_keeps_three_copies_of_every_event(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", PROD_EVENTS, PROD_EVENTS + "    replicationFactor: 2\n    minInsyncReplicas: 1\n")
    assert "prod keeps three copies of every event" in load_error(stacks, "prod")


def test_avro_is_refused_because_the_registered_definitions_are_derived_for_json_only(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", PROD_EVENTS, PROD_EVENTS + "    schemaFormat: AVRO\n")
    message = load_error(stacks, "prod")
    assert "edumatrix-db:events.schemaFormat" in message
    assert "derived for the Glue JSON Schema converter only" in message


# -- replication slots and WAL senders ---------------------------------------------------------------------------

def test_prod_sizes_slots_for_its_connectors_replicas_and_regions_plus_headroom() -> None:
    settings = load_stack("prod")
    budget = replication_budget(settings)
    regions = len(settings.secrets.replica_regions)
    assert budget.slots == len(PUBLISHERS) + settings.replicas.count + regions + SLOT_HEADROOM
    assert budget.senders == budget.slots + SENDER_HEADROOM
    assert settings.instance.parameters["max_replication_slots"] == str(budget.slots)
    assert settings.instance.parameters["max_wal_senders"] == str(budget.senders)


def test_a_region_replica_gets_its_primarys_wal_senders() -> None:
    # A hot standby refuses to start with fewer max_wal_senders than its primary.
    region = load_stack("prod-eu-west-1").replica_instance().parameters
    assert region["max_wal_senders"] == load_stack("prod").instance.parameters["max_wal_senders"]


def test_a_stack_without_the_backbone_keeps_postgresqls_default_floor() -> None:
    assert load_stack("dev").instance.parameters["max_replication_slots"] == "10"


def test_a_stack_overriding_the_slots_below_its_needs_is_refused(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    maxConnections: 1500\n",
               "    maxConnections: 1500\n    parameters:\n      max_replication_slots: '8'\n")
    message = load_error(stacks, "prod")
    assert "edumatrix-db:instance.parameters.max_replication_slots" in message
    assert "below the 15 this stack needs (8 outbox connector(s)" in message


def test_a_stack_may_allow_more_slots_than_it_needs(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    maxConnections: 1500\n",
               "    maxConnections: 1500\n    parameters:\n      max_replication_slots: '40'\n")
    assert load_stack("prod", stacks).instance.parameters["max_replication_slots"] == "40"


# -- what prod declares ------------------------------------------------------------------------------------------

def test_prod_declares_one_msk_cluster_with_iam_clients_tls_and_the_platform_key(prod: Recording) -> None:
    cluster = prod.one(CLUSTER).inputs
    assert cluster["clientAuthentication"] == {"sasl": {"iam": True, "scram": False}, "unauthenticated": False}
    transit = cluster["encryptionInfo"]["encryptionInTransit"]
    assert (transit["clientBroker"], transit["inCluster"]) == ("TLS", True)
    assert cluster["encryptionInfo"]["encryptionAtRestKmsKeyArn"] == prod.outputs["kmsKeyArn"]
    assert cluster["numberOfBrokerNodes"] == len(cluster["brokerNodeGroupInfo"]["clientSubnets"]) == 3
    assert cluster["loggingInfo"]["brokerLogs"]["cloudwatchLogs"]["enabled"] is True


def test_prod_declares_one_topic_per_service_and_aggregate_with_three_copies(prod: Recording) -> None:
    topics = {t.inputs["name"]: t.inputs for t in prod.of_type(TOPIC)}
    assert set(topics) == {event_topic_name(s.name, a) for s in PUBLISHERS for a in s.aggregates} | {
        heartbeat_topic_name(s.name) for s in PUBLISHERS}
    assert {(t["replicationFactor"], json.loads(t["configs"])["min.insync.replicas"]) for t in topics.values()} == {
        (3, "2")}


def test_what_holds_events_or_their_schemas_is_protected_where_the_instance_is(prod: Recording) -> None:
    held = [*prod.of_type(CLUSTER), *prod.of_type(TOPIC), *prod.of_type("aws:glue/registry:Registry"),
            *prod.of_type(SCHEMA)]
    assert len(held) > 3
    assert all(r.protect for r in held)


def test_a_stack_without_deletion_protection_leaves_the_backbone_unprotected(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "staging", "    instanceClass: db.r6g.large\n",
               "    instanceClass: db.r6g.large\n    deletionProtection: false\n")
    staging = Planner(stacks).plan("staging")
    assert staging.of_type(CLUSTER)
    assert not any(r.protect for r in staging.of_type(CLUSTER))


def test_each_publishing_service_gets_a_connector_on_its_outbox_only(prod: Recording) -> None:
    connectors = {c.inputs["connectorConfiguration"]["publication.name"]: c.inputs for c in prod.of_type(CONNECTOR)}
    assert set(connectors) == {outbox_publication_name(s.name) for s in PUBLISHERS}
    for service in PUBLISHERS:
        config = connectors[outbox_publication_name(service.name)]["connectorConfiguration"]
        assert config["slot.name"] == outbox_slot_name(service.name)
        assert config["table.include.list"] == f"{schema_name(service.name)}.{outbox_table_name(service.name)}"
        assert config["publication.autocreate.mode"] == "disabled"
        assert config["plugin.name"] == "pgoutput"
        assert config["snapshot.mode"] == "no_data"
        assert config["transforms.outbox.route.topic.replacement"] == f"edumatrix.{service.name}.${{routedByValue}}"


def test_heartbeats_skip_the_outbox_router_and_go_to_the_services_own_heartbeat_topic(prod: Recording) -> None:
    for connector in prod.of_type(CONNECTOR):
        config = connector.inputs["connectorConfiguration"]
        assert (config["transforms.outbox.predicate"], config["transforms.outbox.negate"]) == ("isHeartbeat", "true")
        assert config["predicates.isHeartbeat.pattern"] == r"__debezium-heartbeat\..*"
        assert f'{config["heartbeat.topics.prefix"]}.{config["topic.prefix"]}' == heartbeat_topic_name(
            connector.inputs["tags"]["db-service"])


def test_connectors_read_the_instance_not_the_proxy_as_the_cdc_login(prod: Recording) -> None:
    address = prod.outputs["address"]
    for connector in prod.of_type(CONNECTOR):
        config = connector.inputs["connectorConfiguration"]
        assert config["database.hostname"] == address
        assert config["database.user"] == "edumatrix_cdc_replicator"
        assert config["database.password"].startswith("${secretsmanager:")
        assert "/platform/cdc_replicator" in config["database.password"]


def test_a_connectors_role_writes_only_its_own_services_topics(prod: Recording) -> None:
    roles = {r.props["arn"]: r.props["name"] for r in prod.of_type(ROLE)}
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in prod.of_type(ROLE_POLICY)}
    for connector in prod.of_type(CONNECTOR):
        service = connector.inputs["tags"]["db-service"]
        document = policies[roles[connector.inputs["serviceExecutionRoleArn"]]]
        write = next(s for s in document["Statement"] if s["Sid"] == "WriteOwnTopics")
        assert {arn.rsplit("/", 1)[1] for arn in write["Resource"]} == {
            event_topic_name(service, a) for a in next(s for s in PUBLISHERS if s.name == service).aggregates} | {
            heartbeat_topic_name(service)}


def test_every_event_type_has_a_backward_compatible_schema(prod: Recording) -> None:
    schemas = {s.inputs["schemaName"]: s.inputs for s in prod.of_type(SCHEMA)}
    assert set(schemas) == {event_schema_name(s.name, e.aggregate, e.type) for s in PUBLISHERS for e in s.events} | {
        heartbeat_schema_name(s.name) for s in PUBLISHERS}
    assert {s["compatibility"] for s in schemas.values()} == {"BACKWARD"}


def test_failed_connector_tasks_and_consumer_lag_page_the_regions_alarm_topic(prod: Recording) -> None:
    topic = prod.outputs["alarmTopicArn"]
    failed = [a.inputs for a in prod.of_type(ALARM) if a.inputs.get("metricName") == "ErroredTaskCount"]
    assert {a["dimensions"]["ConnectorName"] for a in failed} == {c.inputs["name"] for c in prod.of_type(CONNECTOR)}
    lag = [a.inputs for a in prod.of_type(ALARM) if "EstimatedMaxTimeLag" in json.dumps(a.inputs.get("metricQueries"))]
    assert len(lag) == 1
    assert all(a["alarmActions"] == [topic] for a in [*failed, *lag])


def test_prods_parameter_group_carries_the_derived_slots(prod: Recording) -> None:
    parameters = {p["name"]: p for p in prod.one(PARAMETER_GROUP).inputs["parameters"]}
    budget = replication_budget(load_stack("prod"))
    assert parameters["max_replication_slots"]["value"] == str(budget.slots)
    assert parameters["max_replication_slots"]["applyMethod"] == "pending-reboot"  # static


def test_region_stacks_and_dev_declare_no_backbone(planner: Planner) -> None:
    for stack in ("prod-eu-west-1", "dev"):
        assert planner.plan(stack).of_type(CLUSTER) == []


def test_a_stack_name_too_long_for_the_plugin_bucket_prefix_is_refused_with_the_limit() -> None:
    settings = load_stack("staging").model_copy(update={"stack": "s" * (MAX_STACK_NAME + 1)})
    problems = [p for p in events_problems(settings) if p.key == "stack name"]
    assert len(problems) == 1
    assert "connector plugin bucket's prefix" in problems[0].message
    assert f"at most {MAX_STACK_NAME} characters" in problems[0].fix


def test_a_stack_name_of_the_limit_fits_every_derived_name() -> None:
    settings = load_stack("staging").model_copy(update={"stack": "s" * MAX_STACK_NAME})
    assert [p for p in events_problems(settings) if p.key == "stack name"] == []


def test_every_event_alarm_says_where_its_runbook_is(prod: Recording) -> None:
    event_alarms = [a for a in prod.of_type(ALARM) if "edumatrix:events:EventBackbone$" in a.urn]
    assert len(event_alarms) == len(PUBLISHERS) + 1
    assert all(a.inputs["alarmDescription"].endswith("Runbook: docs/event-backbone.md") for a in event_alarms)


# -- the connectors' database TLS and AWS API routes (session 4) ----------------------------------------------------

ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
WORKER = "aws:mskconnect/workerConfiguration:WorkerConfiguration"


def events_child(recording: Recording, type_: str, suffix: str) -> RecordedResource:
    return next(r for r in recording.of_type(type_) if "-events-" in r.name and r.name.endswith(suffix))


def test_connectors_verify_the_rds_server_against_the_plugins_ca_bundle(prod: Recording) -> None:
    for connector in prod.of_type(CONNECTOR):
        config = connector.inputs["connectorConfiguration"]
        assert config["database.sslmode"] == "verify-full"
        assert config["database.sslfactory"] == "com.edumatrix.events.RdsCaBundleSocketFactory"


def test_connectors_get_a_secrets_manager_and_a_glue_endpoint_of_their_own_with_private_dns_off(
        prod: Recording) -> None:
    network = load_stack("prod").network
    assert network is not None
    group = events_child(prod, "aws:ec2/securityGroup:SecurityGroup", "-endpoints-sg").id
    for service in ("secretsmanager", "glue"):
        endpoint = events_child(prod, ENDPOINT, f"-{service}-endpoint").inputs
        assert endpoint["serviceName"] == f"com.amazonaws.us-east-1.{service}"
        assert (endpoint["vpcEndpointType"], endpoint["privateDnsEnabled"]) == ("Interface", False)
        assert endpoint["subnetIds"] == list(network.subnet_ids)
        assert endpoint["securityGroupIds"] == [group]


def test_the_endpoints_serve_only_the_connectors_roles_for_their_own_calls(prod: Recording) -> None:
    roles = {c.inputs["serviceExecutionRoleArn"] for c in prod.of_type(CONNECTOR)}
    secret = json.loads(events_child(prod, ENDPOINT, "-secretsmanager-endpoint").inputs["policy"])["Statement"]
    glue = json.loads(events_child(prod, ENDPOINT, "-glue-endpoint").inputs["policy"])["Statement"]
    assert [set(s["Principal"]["AWS"]) for s in secret + glue] == [roles, roles]
    assert secret[0]["Action"] == ["secretsmanager:GetSecretValue"]
    assert len(secret[0]["Resource"]) == 1
    assert "/platform/cdc_replicator" in secret[0]["Resource"][0]
    registry = prod.one("aws:glue/registry:Registry").props["arn"]
    assert set(glue[0]["Resource"]) == {registry} | {s.props["arn"] for s in prod.of_type(SCHEMA)}
    assert all(a.startswith("glue:Get") or a.startswith("glue:List") for a in glue[0]["Action"])


def test_only_the_connectors_reach_the_endpoints_and_the_connectors_reach_nothing_else_over_https(
        prod: Recording) -> None:
    endpoints_group = events_child(prod, "aws:ec2/securityGroup:SecurityGroup", "-endpoints-sg").id
    connectors_group = events_child(prod, "aws:ec2/securityGroup:SecurityGroup", "-connectors-sg").id
    ingress = [r.inputs for r in prod.of_type(INGRESS) if r.inputs["securityGroupId"] == endpoints_group]
    assert [(r["referencedSecurityGroupId"], r["fromPort"], r["toPort"]) for r in ingress] == [
        (connectors_group, 443, 443)]
    egress = [r.inputs for r in prod.of_type(EGRESS) if r.inputs["securityGroupId"] == connectors_group]
    assert not [r for r in egress if "cidrIpv4" in r or "cidrIpv6" in r]
    assert [r["referencedSecurityGroupId"] for r in egress if r["fromPort"] == 443] == [endpoints_group]


def test_the_config_provider_and_the_converter_are_given_the_endpoints_own_names(prod: Recording) -> None:
    glue = events_child(prod, ENDPOINT, "-glue-endpoint").props["dnsEntries"][0]["dnsName"]
    secrets = events_child(prod, ENDPOINT, "-secretsmanager-endpoint").props["dnsEntries"][0]["dnsName"]
    worker = events_child(prod, WORKER, "-worker").inputs["propertiesFileContent"].splitlines()
    assert f"config.providers.secretsmanager.param.endpoint=https://{secrets}" in worker
    for connector in prod.of_type(CONNECTOR):
        assert connector.inputs["connectorConfiguration"]["value.converter.endpoint"] == f"https://{glue}"


def test_a_missing_cdc_secret_fails_the_connector_instead_of_an_empty_password(prod: Recording) -> None:
    worker = events_child(prod, WORKER, "-worker").inputs["propertiesFileContent"].splitlines()
    assert "config.providers.secretsmanager.param.NotFoundStrategy=fail" in worker
