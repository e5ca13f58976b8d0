"""The event backbone on AWS (issue 19, spec 2.B; docs/event-backbone.md): a service's committed outbox row
becomes a versioned event on Kafka without the service reading anyone's schema.

- Amazon MSK, provisioned (Serverless takes no customer-managed key and delivers no broker logs): brokers in the
  stack's subnets (one availability zone each), IAM client authentication only (`unauthenticated` false, no
  SCRAM/mTLS), TLS client-broker and in-cluster, data volumes under the platform CMK, broker logs to a
  CMK-encrypted log group, `auto.create.topics.enable=false` so only the declared topics exist;
- a topic per publishing service and aggregate (`edumatrix.<service>.<aggregate>`, config/naming.py) with the
  stack's partitions, replication factor, `min.insync.replicas` and retention;
- a Glue schema registry with one schema per event type (`<service>.<aggregate>.<type>`), BACKWARD or
  stricter, so a payload version that breaks consumers is refused when it is registered;
- MSK Connect: the Debezium PostgreSQL connector (a custom plugin from a CMK-encrypted, versioned, private,
  TLS-only bucket), one connector per publishing service reading only its outbox publication through its own
  slot as the platform's CDC login (password from Secrets Manager through the worker's config provider), IAM
  to the brokers on 9098, TLS; its role may write only its service's topics; its logs to a CMK log group;
- alarms on the region's alarm topic: a connector with failed tasks, consumers lagging behind (MSK's
  EstimatedMaxTimeLag per consumer group). Slot lag is the instance's `OldestReplicationSlotLag` alarm
  (components/database_alarms.py), which policy `events-alarms` requires.

The connector connects to the instance endpoint (RDS Proxy does not serve replication connections) with
`sslmode=verify-full` through the plugin jar's socket factory, which trusts the RDS CA bundle (events-plugin/). Its
AWS API calls (Secrets Manager for the password, Glue for the schemas) go to interface VPC endpoints of its own,
admitting HTTPS from the connectors only and serving only their roles, private DNS off: the config provider and
the converter are given the endpoints' own DNS names.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.network import client_sources
from config.catalog import ServiceSpec
from config.event_schemas import event_definition, heartbeat_json_definition
from config.events import (
    HEARTBEAT_PREFIX,
    IAM_PORT,
    cluster_name,
    heartbeat_schema_name,
    heartbeat_topic_name,
    plugin_bucket_prefix,
    registry_name,
)
from config.naming import (
    event_schema_name,
    event_topic_name,
    outbox_publication_name,
    outbox_slot_name,
    outbox_table_name,
    schema_name,
)
from config.settings import EventSettings, NetworkSettings

HTTPS = 443
CONNECT_INTERNAL = "__amazon_msk_connect_*"
"""MSK Connect's own topics and groups (offsets, configs, status), named `__amazon_msk_connect_*`, and the
worker group `connect-<connector>` (Amazon MSK developer guide, "Understand service execution role")."""
CONFIG_PROVIDER = "secretsmanager"
CONFIG_PROVIDER_CLASS = "com.amazonaws.kafka.config.providers.SecretsManagerConfigProvider"
"""The MSK config providers (github.com/aws-samples/msk-config-providers), bundled in the plugin zip: the worker
resolves `${secretsmanager:<secret>:<key>}` with the connector's role, so no password is in its configuration."""
GLUE_CONVERTER = "com.amazonaws.services.schemaregistry.kafkaconnect.jsonschema.JsonSchemaConverter"
GLUE_AVRO_CONVERTER = "com.amazonaws.services.schemaregistry.kafkaconnect.AWSKafkaAvroConverter"
DATABASE_SSL_FACTORY = "com.edumatrix.events.RdsCaBundleSocketFactory"
"""events-plugin/: a javax.net.ssl.SSLSocketFactory trusting every CA of the RDS bundle packed in its jar. Debezium
hands `database.*` to pgjdbc without the prefix (RelationalDatabaseConnectorConfig), pgjdbc instantiates
`sslfactory` by name and, under verify-full, checks the host name itself (MakeSSL.verifyPeerName); pgjdbc's own
SingleCertValidatingFactory trusts a single certificate, and `sslrootcert` needs a file path on the worker."""
READ_SCHEMAS = ("glue:GetRegistry", "glue:GetSchema", "glue:GetSchemaVersion", "glue:GetSchemaByDefinition",
                "glue:ListSchemaVersions")
"""What the converter calls with auto-registration off (GetSchemaByDefinition finds the version of a value)."""
SECRETS_ENDPOINT = "secretsmanager"
GLUE_ENDPOINT = "glue"
ENDPOINT_PARAMETER = f"config.providers.{CONFIG_PROVIDER}.param.endpoint"
"""The MSK config providers' endpoint override (msk-config-providers AwsServiceConfigProvider
`setClientCommonConfig`: `endpointOverride`; github.com/aws-samples/msk-config-providers d3c6274); the Glue
converter's is `endpoint` (AWSSchemaRegistryConstants.AWS_ENDPOINT, AWSSchemaRegistryClient `endpointOverride`;
github.com/awslabs/aws-glue-schema-registry eed1506)."""


@dataclass(frozen=True)
class Publisher:
    """A publishing service: its topics (one per aggregate) and its event types."""

    service: str
    aggregates: tuple[str, ...]
    events: tuple[tuple[str, str, int, tuple[tuple[str, str], ...]], ...]  # (aggregate, type, version, payload)

    @classmethod
    def of(cls, spec: ServiceSpec) -> Publisher:
        return cls(spec.name, spec.aggregates,
                   tuple((e.aggregate, e.type, e.version, e.payload) for e in spec.events))

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(event_topic_name(self.service, a) for a in self.aggregates)

    @property
    def heartbeat_topic(self) -> str:
        return heartbeat_topic_name(self.service)


@dataclass(frozen=True)
class EventBackboneArgs:
    prefix: str
    settings: EventSettings
    network: NetworkSettings
    publishers: Sequence[Publisher]
    kms_key_arn: pulumi.Input[str]
    instance_address: pulumi.Input[str]
    instance_security_group_id: pulumi.Input[str]
    port: int
    database: str
    cdc_login: str
    cdc_secret_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    region: str
    partition: str = "aws"
    tags: Mapping[str, str] = field(default_factory=dict)
    protect: bool = False
    """Pulumi `protect` on what holds data or its history (the cluster, its topics, the registry and its schemas):
    the stack's `deletionProtection`, as for the shared instance, so `pulumi destroy` or a replacement stops."""


def connector_configuration(publisher: Publisher, args: EventBackboneArgs, address: str,
                            secret_arn: str, glue_endpoint: str) -> dict[str, str]:
    """The Debezium PostgreSQL connector of one service (Debezium 2.x property names): its outbox only, its
    publication (never created by Debezium), its slot, pgoutput, the server verified against the RDS CA bundle,
    the outbox event router to our topic names, values through the Glue schema registry's converter (through the
    stack's Glue VPC endpoint) with auto-registration off."""
    service, events = publisher.service, args.settings
    secret = f"${{{CONFIG_PROVIDER}:{secret_arn}"
    registry = {
        "region": args.region,
        "registry.name": registry_name(args.prefix),
        "schemaAutoRegistrationEnabled": "false",
        "dataFormat": events.schema_format,
        # The registry's schema for a record is `<service>.<aggregate>.<type>` (config/naming.py), which the
        # converter's default naming (the topic) cannot produce: this class, shipped in the plugin zip, does.
        "schemaNameGenerationClass": events.schema_naming_class,
        "endpoint": glue_endpoint,  # the stack's interface endpoint (private DNS off): its own DNS name
        # No Connect schema names in the derived definitions: the router names a value schema after the first
        # aggregate that had its payload shape (config/event_schemas.py), so a name would not follow the type.
        "connect.meta.data": "false",
    }
    converter = GLUE_CONVERTER if events.schema_format == "JSON" else GLUE_AVRO_CONVERTER
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",  # one slot, one reader: Debezium's PostgreSQL connector runs a single task
        "database.hostname": address,  # the instance: RDS Proxy serves no replication connections
        "database.port": str(args.port),
        "database.dbname": args.database,
        "database.user": args.cdc_login,
        "database.password": f"{secret}:password}}",
        # the server's certificate chains to the RDS CA bundle in the plugin jar and names this host
        "database.sslmode": "verify-full",
        "database.sslfactory": DATABASE_SSL_FACTORY,
        "topic.prefix": f"edumatrix.{service}",
        "plugin.name": "pgoutput",
        "slot.name": outbox_slot_name(service),
        "publication.name": outbox_publication_name(service),
        "publication.autocreate.mode": "disabled",  # the database side declares the publication (outbox only)
        "table.include.list": f"{schema_name(service)}.{outbox_table_name(service)}",
        "snapshot.mode": events.snapshot_mode,
        "tombstones.on.delete": "false",
        "transforms": "outbox",
        "transforms.outbox.type": "io.debezium.transforms.outbox.EventRouter",
        # heartbeats pass the router untouched (they are not outbox rows)
        "transforms.outbox.predicate": "isHeartbeat",
        "transforms.outbox.negate": "true",
        "predicates": "isHeartbeat",
        "predicates.isHeartbeat.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicates.isHeartbeat.pattern": f"{HEARTBEAT_PREFIX}\\..*",
        "transforms.outbox.route.by.field": "aggregatetype",
        "transforms.outbox.route.topic.replacement": f"edumatrix.{service}.${{routedByValue}}",
        "transforms.outbox.table.field.event.key": "aggregateid",
        "transforms.outbox.table.expand.json.payload": "true",
        # eventType also in the value's envelope: the schema naming class sees the value, not the headers
        "transforms.outbox.table.fields.additional.placement": ",".join([
            "type:header:eventType", "type:envelope:eventType", "schema_version:header:schemaVersion",
            "institution_id:header:institutionId", "occurred_at:header:occurredAt"]),
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": converter,
        **{f"value.converter.{k}": v for k, v in registry.items()},
        # a quiet outbox still confirms its slot's position, so the slot holds no WAL (config/events.py)
        "heartbeat.interval.ms": "60000",
        "heartbeat.topics.prefix": HEARTBEAT_PREFIX,
    }




def schema_definition(payload: Mapping[str, str]) -> str:
    """An event type version's registered definition: exactly what the Glue JSON Schema converter derives from
    the records Debezium's outbox router makes of such a payload (config/event_schemas.py), so the converter,
    with auto-registration off, finds this version for them (GetSchemaByDefinition). A payload change is a new
    definition, registered as the schema's next version, which the registry refuses unless compatible."""
    return event_definition(payload)


def heartbeat_definition() -> str:
    """What the converter derives from Debezium's heartbeat value (a struct with the required int64 `ts_ms`)."""
    return heartbeat_json_definition()


def topic_arn_pattern(cluster_arn: str, topic: str, kind: str = "topic") -> str:
    """`arn:<p>:kafka:<r>:<a>:topic/<cluster>/<uuid>/<topic>` from the cluster's ARN (`...:cluster/<name>/<uuid>`;
    Amazon MSK, "Authorization policy resources")."""
    head, _, rest = cluster_arn.partition(":cluster/")
    return f"{head}:{kind}/{rest}/{topic}"


def connector_role_policy(cluster_arn: str, topics: Sequence[str], secret_arn: str, key_arn: str,
                          registry_arn: str, schema_arns: Sequence[str], region: str) -> str:
    """What one service's connector may do: connect; write its own topics only; MSK Connect's internal topics and
    groups; read the CDC secret (decrypt through Secrets Manager only); read its schemas."""
    own = [topic_arn_pattern(cluster_arn, t) for t in topics]  # the service's event topics and its heartbeats
    internal_topics = topic_arn_pattern(cluster_arn, CONNECT_INTERNAL)
    groups = [topic_arn_pattern(cluster_arn, g, "group") for g in (CONNECT_INTERNAL, "connect-*")]
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Connect", "Effect": "Allow", "Action": ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"],
         "Resource": cluster_arn},
        {"Sid": "WriteOwnTopics", "Effect": "Allow",
         "Action": ["kafka-cluster:WriteData", "kafka-cluster:DescribeTopic"], "Resource": own},
        {"Sid": "ConnectInternalTopics", "Effect": "Allow",
         "Action": ["kafka-cluster:CreateTopic", "kafka-cluster:WriteData", "kafka-cluster:ReadData",
                    "kafka-cluster:DescribeTopic"], "Resource": internal_topics},
        {"Sid": "ConnectGroups", "Effect": "Allow",
         "Action": ["kafka-cluster:AlterGroup", "kafka-cluster:DescribeGroup"], "Resource": groups},
        {"Sid": "CdcSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
        {"Sid": "DecryptThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
        {"Sid": "ReadOwnSchemas", "Effect": "Allow", "Action": list(READ_SCHEMAS),
         "Resource": [registry_arn, *schema_arns]},
    ]})


def _role_policy(topics: Sequence[str], region: str, values: list[Any]) -> str:
    cluster_arn, secret_arn, key_arn, registry_arn, *schema_arns = values
    return connector_role_policy(cluster_arn, topics, secret_arn, key_arn, registry_arn, schema_arns, region)


def _configuration(publisher: Publisher, args: EventBackboneArgs, values: list[Any]) -> dict[str, str]:
    address, secret_arn, glue_endpoint = values
    return connector_configuration(publisher, args, address, secret_arn, glue_endpoint)


def worker_properties(region: str, secrets_endpoint: str) -> str:
    """The connectors' worker configuration: the Secrets Manager config provider, through the stack's endpoint."""
    return "\n".join([
        "key.converter=org.apache.kafka.connect.storage.StringConverter",
        "value.converter=org.apache.kafka.connect.storage.StringConverter",
        f"config.providers={CONFIG_PROVIDER}",
        f"config.providers.{CONFIG_PROVIDER}.class={CONFIG_PROVIDER_CLASS}",
        f"config.providers.{CONFIG_PROVIDER}.param.region={region}",
        f"{ENDPOINT_PARAMETER}={secrets_endpoint}",
        # the provider's default (`ignore`) would hand the connector an empty password for a missing secret
        f"config.providers.{CONFIG_PROVIDER}.param.NotFoundStrategy=fail",
    ])


def endpoint_policy(role_arns: Sequence[str], actions: Sequence[str], resources: Sequence[str]) -> str:
    """An interface endpoint that serves only the connectors' roles, for their calls on their resources."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": list(role_arns)}, "Action": list(actions),
        "Resource": list(resources)}]})


def _endpoint_policy_of(actions: Sequence[str], values: list[Any]) -> str:
    role_arns, resources = values
    return endpoint_policy(role_arns, actions, resources)


def _endpoint_url(entries: Sequence[Any]) -> str:
    """`https://<the endpoint's regional DNS name>` (the first of its DNS entries; the others are per zone)."""
    return f"https://{entries[0].dns_name}" if entries else ""


def _bucket_tls_policy(bucket_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})


class EventBackbone(pulumi.ComponentResource):
    """`edumatrix:events:EventBackbone`: MSK, topics, schema registry, one CDC connector per publishing service."""

    cluster_arn: pulumi.Output[str]
    bootstrap_brokers: pulumi.Output[str]
    registry_arn: pulumi.Output[str]
    connector_arns: dict[str, pulumi.Output[str]]
    topics: dict[str, list[str]]

    def __init__(self, name: str, args: EventBackboneArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:events:EventBackbone", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stateful = pulumi.ResourceOptions(parent=self, protect=args.protect)
        tags, region, ev = dict(args.tags), args.region, args.settings
        net = args.network

        def log_group(suffix: str, path: str) -> aws.cloudwatch.LogGroup:
            return aws.cloudwatch.LogGroup(f"{name}-{suffix}-logs", name=path, kms_key_id=args.kms_key_arn,
                                           retention_in_days=ev.log_retention_days, region=region, tags=tags,
                                           opts=child)

        # -- network: brokers admit IAM/TLS clients on 9098 from the connectors and the stack's clients ----------
        broker_sg = aws.ec2.SecurityGroup(f"{name}-brokers-sg", description=f"{args.prefix}: MSK brokers (IAM, TLS)",
                                          vpc_id=net.vpc_id, region=region, tags=tags, opts=child)
        connector_sg = aws.ec2.SecurityGroup(f"{name}-connectors-sg",
                                             description=f"{args.prefix}: CDC connectors (MSK Connect)",
                                             vpc_id=net.vpc_id, region=region, tags=tags, opts=child)
        rule: dict[str, Any] = {"ip_protocol": "tcp", "region": region, "tags": tags, "opts": child}
        aws.vpc.SecurityGroupIngressRule(f"{name}-brokers-from-connectors", security_group_id=broker_sg.id,
                                         from_port=IAM_PORT, to_port=IAM_PORT,
                                         referenced_security_group_id=connector_sg.id,
                                         description="Kafka (IAM, TLS) from the CDC connectors", **rule)
        for suffix, source in client_sources(net.allowed_security_group_ids, net.allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(f"{name}-brokers-from-{suffix}", security_group_id=broker_sg.id,
                                             from_port=IAM_PORT, to_port=IAM_PORT,
                                             description=f"Kafka (IAM, TLS) from {next(iter(source.values()))}",
                                             **{**rule, **source})
        aws.vpc.SecurityGroupEgressRule(f"{name}-connectors-to-brokers", security_group_id=connector_sg.id,
                                        from_port=IAM_PORT, to_port=IAM_PORT,
                                        referenced_security_group_id=broker_sg.id,
                                        description="Kafka (IAM, TLS) to the brokers", **rule)
        aws.vpc.SecurityGroupEgressRule(f"{name}-connectors-to-database", security_group_id=connector_sg.id,
                                        from_port=args.port, to_port=args.port,
                                        referenced_security_group_id=args.instance_security_group_id,
                                        description="PostgreSQL replication to the instance", **rule)
        aws.vpc.SecurityGroupIngressRule(f"{name}-database-from-connectors",
                                         security_group_id=args.instance_security_group_id,
                                         from_port=args.port, to_port=args.port,
                                         referenced_security_group_id=connector_sg.id,
                                         description="PostgreSQL replication from the CDC connectors", **rule)
        # Secrets Manager and Glue (the config provider, the converter): HTTPS to the stack's own endpoints only.
        endpoints_sg = aws.ec2.SecurityGroup(f"{name}-endpoints-sg",
                                             description=f"{args.prefix}: the CDC connectors' VPC endpoints "
                                                         "(HTTPS from the connectors only)",
                                             vpc_id=net.vpc_id, region=region, tags=tags, opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-endpoints-from-connectors", security_group_id=endpoints_sg.id,
                                         from_port=HTTPS, to_port=HTTPS, referenced_security_group_id=connector_sg.id,
                                         description="HTTPS from the CDC connectors", **rule)
        aws.vpc.SecurityGroupEgressRule(f"{name}-connectors-to-endpoints", security_group_id=connector_sg.id,
                                        from_port=HTTPS, to_port=HTTPS, referenced_security_group_id=endpoints_sg.id,
                                        description="HTTPS to the Secrets Manager and Glue VPC endpoints", **rule)

        # -- the cluster -------------------------------------------------------------------------------------
        broker_logs = log_group("brokers", f"/aws/msk/{cluster_name(args.prefix)}")
        configuration = aws.msk.Configuration(
            f"{name}-config", name=f"{args.prefix}-events",
            kafka_versions=[ev.kafka_version],
            description=f"{args.prefix}: only declared topics; writes wait for min.insync.replicas copies",
            server_properties="\n".join([
                "auto.create.topics.enable=false",
                f"default.replication.factor={ev.replication_factor}",
                f"min.insync.replicas={ev.min_insync_replicas}",
                "unclean.leader.election.enable=false",
            ]),
            region=region, opts=child)
        cluster = aws.msk.Cluster(
            f"{name}-cluster",
            cluster_name=cluster_name(args.prefix),
            kafka_version=ev.kafka_version,
            number_of_broker_nodes=len(net.subnet_ids) * ev.brokers_per_zone,
            broker_node_group_info=aws.msk.ClusterBrokerNodeGroupInfoArgs(
                instance_type=ev.broker_instance_type,
                client_subnets=list(net.subnet_ids),
                security_groups=[broker_sg.id],
                storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoArgs(
                    ebs_storage_info=aws.msk.ClusterBrokerNodeGroupInfoStorageInfoEbsStorageInfoArgs(
                        volume_size=ev.broker_volume_gb)),
            ),
            client_authentication=aws.msk.ClusterClientAuthenticationArgs(
                sasl=aws.msk.ClusterClientAuthenticationSaslArgs(iam=True, scram=False),
                unauthenticated=False,
            ),
            encryption_info=aws.msk.ClusterEncryptionInfoArgs(
                encryption_at_rest_kms_key_arn=args.kms_key_arn,
                encryption_in_transit=aws.msk.ClusterEncryptionInfoEncryptionInTransitArgs(
                    client_broker="TLS", in_cluster=True),
            ),
            configuration_info=aws.msk.ClusterConfigurationInfoArgs(arn=configuration.arn,
                                                                     revision=configuration.latest_revision),
            logging_info=aws.msk.ClusterLoggingInfoArgs(broker_logs=aws.msk.ClusterLoggingInfoBrokerLogsArgs(
                cloudwatch_logs=aws.msk.ClusterLoggingInfoBrokerLogsCloudwatchLogsArgs(
                    enabled=True, log_group=broker_logs.name))),
            enhanced_monitoring="PER_BROKER",
            region=region, tags=tags, opts=stateful)
        self.cluster_arn = cluster.arn
        self.bootstrap_brokers = cluster.bootstrap_brokers_sasl_iam

        # -- topics and schemas ------------------------------------------------------------------------------
        topic_configs = json.dumps({
            "retention.ms": str(ev.retention_hours * 3_600_000),
            "min.insync.replicas": str(ev.min_insync_replicas),
            "cleanup.policy": "delete",
        })
        heartbeat_configs = json.dumps({**json.loads(topic_configs), "retention.ms": str(3_600_000)})
        self.topics = {}
        for pub in args.publishers:
            self.topics[pub.service] = list(pub.topics)
            for topic in pub.topics:
                aws.msk.Topic(f"{name}-{topic}", name=topic, cluster_arn=cluster.arn,
                              partition_count=ev.partitions, replication_factor=ev.replication_factor,
                              configs=topic_configs, region=region, opts=stateful)
            aws.msk.Topic(f"{name}-{pub.heartbeat_topic}", name=pub.heartbeat_topic, cluster_arn=cluster.arn,
                          partition_count=1, replication_factor=ev.replication_factor,
                          configs=heartbeat_configs, region=region, opts=stateful)
        registry = aws.glue.Registry(f"{name}-registry", registry_name=registry_name(args.prefix),
                                     description=f"{args.prefix}: one schema per event type (spec 2.B versioned "
                                                 "events)", region=region, tags=tags, opts=stateful)
        self.registry_arn = registry.arn
        schemas: dict[str, list[pulumi.Output[str]]] = {}
        for pub in args.publishers:
            heartbeat = aws.glue.Schema(
                f"{name}-{heartbeat_schema_name(pub.service)}", schema_name=heartbeat_schema_name(pub.service),
                registry_arn=registry.arn, data_format=ev.schema_format, compatibility=ev.schema_compatibility,
                schema_definition=heartbeat_definition(),
                description=f"Debezium heartbeats of {pub.service}'s connector", region=region, tags=tags,
                opts=stateful)
            schemas.setdefault(pub.service, []).append(heartbeat.arn)
            for aggregate, event_type, version, payload in pub.events:
                schema = aws.glue.Schema(
                    f"{name}-{event_schema_name(pub.service, aggregate, event_type)}",
                    schema_name=event_schema_name(pub.service, aggregate, event_type),
                    registry_arn=registry.arn, data_format=ev.schema_format, compatibility=ev.schema_compatibility,
                    schema_definition=schema_definition(dict(payload)),
                    description=f"{event_type} of {pub.service} ({aggregate}), version {version}",
                    region=region, tags=tags, opts=stateful)
                schemas.setdefault(pub.service, []).append(schema.arn)

        # -- the connector plugin: Debezium from a private, encrypted, versioned bucket ------------------------
        bucket = aws.s3.Bucket(f"{name}-plugins", bucket_prefix=plugin_bucket_prefix(args.prefix), region=region,
                               tags=tags, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-plugins-sse", bucket=bucket.id, region=region,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.
                BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=args.kms_key_arn),
                bucket_key_enabled=True)],
            opts=child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-plugins-versioning", bucket=bucket.id, region=region,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"), opts=child)
        aws.s3.BucketPublicAccessBlock(f"{name}-plugins-private", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, region=region, opts=child)
        aws.s3.BucketPolicy(f"{name}-plugins-tls-only", bucket=bucket.id,
                            policy=bucket.arn.apply(_bucket_tls_policy), region=region, opts=child)
        plugin = aws.mskconnect.CustomPlugin(
            f"{name}-debezium", name=f"{args.prefix}-debezium-postgres", content_type="ZIP",
            description="Debezium PostgreSQL connector with the outbox event router, MSK config providers and the "
                        "Glue schema registry converter",
            location=aws.mskconnect.CustomPluginLocationArgs(s3=aws.mskconnect.CustomPluginLocationS3Args(
                bucket_arn=bucket.arn, file_key=ev.plugin_key, object_version=ev.plugin_object_version)),
            region=region, tags=tags, opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))

        # -- one connector per publishing service --------------------------------------------------------------
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        roles = {pub.service: aws.iam.Role(
            f"{name}-{pub.service.replace('_', '-')}-role",
            name_prefix=f"{args.prefix[:20]}-cdc-{pub.service.replace('_', '-')[:10]}-",
            description=f"MSK Connect: {pub.service}'s outbox connector",
            assume_role_policy=account.apply(lambda a: json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "kafkaconnect.amazonaws.com"},
                "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": a}}}]})),
            tags={**tags, "db-service": pub.service}, opts=child) for pub in args.publishers}
        role_arns = pulumi.Output.all(*(role.arn for role in roles.values()))

        # -- the connectors' interface endpoints: their subnets, HTTPS from them only, their roles only ----------
        # Private DNS off (as the ops runner's): on, it would send every workload of the VPC calling Secrets
        # Manager or Glue to endpoints that admit only the connectors, and AWS refuses a second private-DNS endpoint
        # for a service in a VPC ("conflicting DNS domain"). The clients are given the endpoints' own names.
        all_schemas = [arn for arns in schemas.values() for arn in arns]
        endpoint_calls: dict[str, tuple[tuple[str, ...], pulumi.Output[list[str]]]] = {
            SECRETS_ENDPOINT: (("secretsmanager:GetSecretValue",), pulumi.Output.all(args.cdc_secret_arn)),
            GLUE_ENDPOINT: (READ_SCHEMAS, pulumi.Output.all(registry.arn, *all_schemas)),
        }
        urls: dict[str, pulumi.Output[str]] = {}
        for service, (actions, resources) in endpoint_calls.items():
            endpoint = aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint", vpc_id=net.vpc_id,
                service_name=f"com.amazonaws.{region}.{service}", vpc_endpoint_type="Interface",
                subnet_ids=list(net.subnet_ids), security_group_ids=[endpoints_sg.id], private_dns_enabled=False,
                policy=pulumi.Output.all(role_arns, resources).apply(functools.partial(_endpoint_policy_of, actions)),
                region=region, tags=tags, opts=child)
            urls[service] = endpoint.dns_entries.apply(_endpoint_url)
        worker = aws.mskconnect.WorkerConfiguration(
            f"{name}-worker", name=f"{args.prefix}-cdc-worker",
            description="Secrets through the config provider; no password in a connector's configuration",
            properties_file_content=urls[SECRETS_ENDPOINT].apply(functools.partial(worker_properties, region)),
            region=region, tags=tags, opts=child)

        self.connector_arns = {}
        for pub in args.publishers:
            host = pub.service.replace("_", "-")
            connector_name = f"{args.prefix}-{host}-outbox"
            role = roles[pub.service]
            aws.iam.RolePolicy(
                f"{name}-{host}-policy", role=role.id,
                policy=pulumi.Output.all(cluster.arn, args.cdc_secret_arn, args.kms_key_arn, registry.arn,
                                         *schemas.get(pub.service, [])).apply(
                    functools.partial(_role_policy, (*pub.topics, pub.heartbeat_topic), region)),
                opts=child)
            logs = log_group(f"{host}-connector", f"/aws/mskconnect/{connector_name}")
            connector = aws.mskconnect.Connector(
                f"{name}-{host}",
                name=connector_name,
                description=f"{pub.service}: outbox -> {', '.join(pub.topics)}",
                kafkaconnect_version=ev.kafkaconnect_version,
                capacity=aws.mskconnect.ConnectorCapacityArgs(
                    provisioned_capacity=aws.mskconnect.ConnectorCapacityProvisionedCapacityArgs(
                        mcu_count=ev.connector_mcu, worker_count=1)),
                connector_configuration=pulumi.Output.all(args.instance_address, args.cdc_secret_arn,
                                                          urls[GLUE_ENDPOINT]).apply(
                    functools.partial(_configuration, pub, args)),
                kafka_cluster=aws.mskconnect.ConnectorKafkaClusterArgs(
                    apache_kafka_cluster=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterArgs(
                        bootstrap_servers=cluster.bootstrap_brokers_sasl_iam,
                        vpc=aws.mskconnect.ConnectorKafkaClusterApacheKafkaClusterVpcArgs(
                            security_groups=[connector_sg.id], subnets=list(net.subnet_ids)))),
                kafka_cluster_client_authentication=aws.mskconnect.ConnectorKafkaClusterClientAuthenticationArgs(
                    authentication_type="IAM"),
                kafka_cluster_encryption_in_transit=aws.mskconnect.ConnectorKafkaClusterEncryptionInTransitArgs(
                    encryption_type="TLS"),
                log_delivery=aws.mskconnect.ConnectorLogDeliveryArgs(
                    worker_log_delivery=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryArgs(
                        cloudwatch_logs=aws.mskconnect.ConnectorLogDeliveryWorkerLogDeliveryCloudwatchLogsArgs(
                            enabled=True, log_group=logs.name))),
                plugins=[aws.mskconnect.ConnectorPluginArgs(custom_plugin=aws.mskconnect.ConnectorPluginCustomPluginArgs(
                    arn=plugin.arn, revision=plugin.latest_revision))],
                worker_configuration=aws.mskconnect.ConnectorWorkerConfigurationArgs(
                    arn=worker.arn, revision=worker.latest_revision),
                service_execution_role_arn=role.arn,
                region=region, tags={**tags, "db-service": pub.service}, opts=child)
            self.connector_arns[pub.service] = connector.arn
            self._alarm(f"{name}-{host}-failed-tasks", f"{connector_name}: a task failed (events of {pub.service} "
                        "are not published; its slot holds WAL)", args,
                        namespace="AWS/KafkaConnect", metric_name="ErroredTaskCount",
                        dimensions={"ConnectorName": connector_name}, statistic="Maximum", period=60,
                        evaluation_periods=5, datapoints_to_alarm=2, threshold=0,
                        comparison_operator="GreaterThanThreshold", treat_missing_data="breaching")
        # Consumer lag: every consumer group of every topic, through a Metrics Insights query (consumer groups are
        # the services' own; the metric exists per group and topic only).
        lag_query = (f'SELECT MAX(EstimatedMaxTimeLag) FROM SCHEMA("AWS/Kafka", "Cluster Name", "Consumer Group", '
                     f"Topic) WHERE \"Cluster Name\" = '{cluster_name(args.prefix)}'")
        self._alarm(f"{name}-consumer-lag", f"a consumer group is more than {ev.consumer_lag_seconds} s behind its "
                    "topic (EstimatedMaxTimeLag)", args, evaluation_periods=5, datapoints_to_alarm=3,
                    threshold=ev.consumer_lag_seconds, comparison_operator="GreaterThanThreshold",
                    treat_missing_data="notBreaching",
                    metric_queries=[aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="lag", expression=lag_query, period=60, return_data=True)])
        self.register_outputs({"clusterArn": self.cluster_arn, "bootstrapBrokers": self.bootstrap_brokers,
                               "registryArn": self.registry_arn, "connectorArns": self.connector_arns,
                               "topics": self.topics})

    def _alarm(self, name: str, description: str, args: EventBackboneArgs, **kwargs: Any) -> None:
        aws.cloudwatch.MetricAlarm(name, name=name, alarm_description=f"{description}. Runbook: docs/event-backbone.md",
                                   alarm_actions=[args.alarm_topic_arn], ok_actions=[args.alarm_topic_arn],
                                   region=args.region, tags=dict(args.tags),
                                   opts=pulumi.ResourceOptions(parent=self), **kwargs)
