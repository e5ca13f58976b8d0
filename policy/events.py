"""The event backbone (issue 19, components/event_backbone.py, docs/event-backbone.md): MSK, MSK Connect, the Glue
schema registry and the connector plugin's bucket, as AWS documents their constraints and the spec asks.

Sources read (through the `search` corpora): Amazon MSK developer guide "Amazon MSK encryption" (data volumes
under a KMS key, `EncryptionInTransit.ClientBroker` TLS and `InCluster`; an existing cluster's encryption cannot
be changed), "IAM access control" and "Authorization policy resources" (topic ARNs
`arn:aws:kafka:<region>:<account>:topic/<cluster>/<uuid>/<topic>`), "Understand service execution role" (MSK
Connect's role, its `__amazon_msk_connect_*` topics and groups, trust `kafkaconnect.amazonaws.com` with
`aws:SourceAccount`), "Monitoring Amazon MSK Connect" (`ErroredTaskCount` per `ConnectorName`), "Monitor consumer
lags" (`EstimatedMaxTimeLag`, per consumer group and topic); AWS Config rules `msk-unrestricted-access-check`
(unauthenticated access disabled) and `msk-in-cluster-node-require-tls`; AWS Control Tower CT.MSK.PR.1
(in-cluster TLS); AWS Glue "AWS Glue Schema Registry" (compatibility modes NONE, DISABLED, BACKWARD, BACKWARD_ALL,
FORWARD, FORWARD_ALL, FULL, FULL_ALL: the pulumi_aws glue/schema.py docstring lists the same); Debezium
PostgreSQL connector documentation (`publication.autocreate.mode`, `slot.name`, `plugin.name`); Security Hub
S3.5 (buckets require SSL), S3.8 (block public access); RDS user guide (RDS Proxy does not support PostgreSQL
replication connections). Connector TLS and AWS API routes (issue 19, session 4): pgjdbc REL42.6.1 (the driver
of Debezium 2.7.4) `SocketFactoryFactory`/`MakeSSL` (an `sslfactory` by name; verify-full checks the host name;
`NonValidatingFactory` trusts any certificate) and Debezium v2.7.4 `RelationalDatabaseConnectorConfig` (`database.*`
reach the driver without the prefix); interface endpoints: `private-dns-enabled cannot be set because there is
already a conflicting DNS domain ... in the VPC` (EC2 CreateVpcEndpoint, hashicorp/terraform-provider-aws#17535),
private DNS "affects the entire VPC" (CloudSnorkel/cdk-github-runners#327); endpoint overrides of the MSK config
providers (aws-samples/msk-config-providers `param.endpoint`) and the Glue converter (`endpoint`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.access import PlatformRoleKind, platform_role_name
from config.catalog import load_catalog
from config.event_schemas import event_definition, heartbeat_json_definition
from config.events import heartbeat_schema_name, heartbeat_topic_name
from config.naming import (
    event_schema_name,
    outbox_publication_name,
    outbox_slot_name,
    outbox_table_name,
    schema_name,
)
from policy.base import INSTANCE, PackPolicy, StackPolicy, TypedResourcePolicy, is_aws_managed_key, of_type

CLUSTER = "aws:msk/cluster:Cluster"
CONFIGURATION = "aws:msk/configuration:Configuration"
TOPIC = "aws:msk/topic:Topic"
CONNECTOR = "aws:mskconnect/connector:Connector"
PLUGIN = "aws:mskconnect/customPlugin:CustomPlugin"
WORKER = "aws:mskconnect/workerConfiguration:WorkerConfiguration"
REGISTRY = "aws:glue/registry:Registry"
SCHEMA = "aws:glue/schema:Schema"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

BACKWARD_OR_STRICTER = ("BACKWARD", "BACKWARD_ALL", "FULL", "FULL_ALL")
VERIFYING_SSL_MODES = ("verify-ca", "verify-full")
NON_VALIDATING_FACTORY = "org.postgresql.ssl.NonValidatingFactory"
HTTPS = 443
CONNECTOR_API_SERVICES = {"secretsmanager": "the config provider reads the CDC password",
                          "glue": "the converter looks up each value's schema version"}
"""The AWS APIs a CDC connector's worker calls from its subnets, and why."""
SECRET_REFERENCE = "${"
OUTBOX_ROUTER = "io.debezium.transforms.outbox.EventRouter"
CDC_LOGIN = platform_role_name(PlatformRoleKind.CDC_REPLICATOR)
"""The platform's replication login for CDC (config/access.py): never a service's login, which has no REPLICATION."""


# -- the cluster -------------------------------------------------------------------------------------------------

def _cluster_encryption(args: ResourceValidationArgs, report: ReportViolation) -> None:
    info = args.props.get("encryptionInfo") or {}
    key = info.get("encryptionAtRestKmsKeyArn")
    if not key or is_aws_managed_key(key):
        report("data volumes are not under the platform's customer-managed key (encryptionAtRestKmsKeyArn "
               f"{key!r}): without one MSK uses an AWS-managed key, and encryption cannot be changed later", None)
    transit = info.get("encryptionInTransit") or {}
    if transit.get("clientBroker", "TLS") != "TLS":
        report(f"encryptionInTransit.clientBroker is {transit.get('clientBroker')!r}: clients must use TLS only "
               "(TLS_PLAINTEXT and PLAINTEXT accept unencrypted clients)", None)
    if transit.get("inCluster") is False:
        report("encryptionInTransit.inCluster is false: brokers would replicate in plain text (Security Hub MSK.1, "
               "AWS Config msk-in-cluster-node-require-tls)", None)
    logs = (((args.props.get("loggingInfo") or {}).get("brokerLogs") or {}).get("cloudwatchLogs") or {})
    if logs.get("enabled") is not True or not logs.get("logGroup"):
        report("broker logs are not delivered to a CloudWatch log group (loggingInfo.brokerLogs.cloudwatchLogs)", None)


broker_encryption = TypedResourcePolicy(
    "events-broker-encryption",
    "MSK brokers: data volumes under the platform CMK, TLS client-broker and in-cluster, broker logs kept.",
    types=[CLUSTER], validate=_cluster_encryption, severity=Severity.HIGH,
    controls=["Security Hub MSK.1", "CT.MSK.PR.1", "spec 4.A"],
    remediation="Declare the cluster through components/event_backbone.py (the shared instance's CMK, "
                "client_broker TLS, in_cluster true, broker logs to the CMK log group).",
)


def _cluster_authentication(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == CONFIGURATION:
        # Kafka reads a boolean trimmed and in any case (ConfigDef.parseType BOOLEAN: equalsIgnoreCase)
        properties = _properties(str(args.props.get("serverProperties") or ""))
        if properties.get("auto.create.topics.enable", "true").lower() != "false":
            report("auto.create.topics.enable is not false: a client (or a misrouted connector) could create "
                   "topics no one declared", None)
        if properties.get("unclean.leader.election.enable", "").lower() == "true":
            report("unclean.leader.election.enable=true lets an out-of-date replica lead and lose events", None)
        return
    auth = args.props.get("clientAuthentication") or {}
    if auth.get("unauthenticated") is not False:
        report("clientAuthentication.unauthenticated is not false: anyone reaching the brokers could read and "
               "write every topic (AWS Config msk-unrestricted-access-check)", None)
    sasl = auth.get("sasl") or {}
    if sasl.get("iam") is not True:
        report("IAM client authentication is off (clientAuthentication.sasl.iam): the connectors' roles and the "
               "services' roles are what scope topics", None)
    if sasl.get("scram") is True or (auth.get("tls") or {}).get("certificateAuthorityArns"):
        report("SCRAM or mutual-TLS authentication is on beside IAM: those principals bypass the IAM policies "
               "that scope each connector to its topics", None)
    public = (((args.props.get("brokerNodeGroupInfo") or {}).get("connectivityInfo") or {})
              .get("publicAccess") or {}).get("type")
    if public not in (None, "DISABLED"):
        report(f"brokers are publicly accessible (publicAccess {public!r}; CT.MSK.PR.2)", None)


PROPERTY_LINE = re.compile(r"(?P<key>[^=:\s]*)\s*[=:]?\s*(?P<value>.*)")
"""A Java Properties line, as MSK's `serverProperties` and MSK Connect's worker `propertiesFileContent` are read
(java.util.Properties.load): the key ends at the first `=`, `:` or white space; white space and one `=` or `:`
then separate it from the value; a key alone has the empty value."""


def _properties(text: str) -> dict[str, str]:
    """The properties `text` sets; lines whose first character is `#` or `!` are comments. Escapes and lines
    continued with a backslash are not read (the platform's own configurations use neither). Values are stripped:
    Kafka trims a boolean or number before reading it."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            found = PROPERTY_LINE.fullmatch(line)
            assert found is not None  # every part of the pattern may be empty
            out[found["key"]] = found["value"]
    return out


broker_authentication = TypedResourcePolicy(
    "events-broker-authentication",
    "MSK: IAM client authentication only, no unauthenticated or public access, only declared topics exist.",
    types=[CLUSTER, CONFIGURATION], validate=_cluster_authentication, severity=Severity.HIGH,
    controls=["AWS Config msk-unrestricted-access-check", "CT.MSK.PR.2"],
    remediation="Keep sasl.iam true, unauthenticated false and the configuration's auto.create.topics.enable=false "
                "(components/event_backbone.py).",
)


def _topic_copies(args: ResourceValidationArgs, report: ReportViolation) -> None:
    factor = args.props.get("replicationFactor")
    configs = json.loads(str(args.props.get("configs") or "{}"))
    minimum = int(configs.get("min.insync.replicas", 1))
    if not isinstance(factor, int) or factor < 2:
        report(f"replicationFactor {factor!r}: an event must survive the loss of a broker (at least 2 copies)", None)
    elif factor > 1 and minimum >= factor:
        report(f"min.insync.replicas {minimum} is not below replicationFactor {factor}: one broker's maintenance "
               "would stop every producer (Amazon MSK best practices)", None)
    if str(configs.get("cleanup.policy", "delete")) != "delete" or "retention.ms" not in configs:
        report("a topic of events keeps them for a set retention (cleanup.policy delete, retention.ms)", None)


topic_copies = TypedResourcePolicy(
    "events-topic-copies",
    "Event topics: at least two copies, min.insync.replicas below the replication factor, a set retention.",
    types=[TOPIC], validate=_topic_copies, severity=Severity.MEDIUM, controls=["spec 2.B"],
    remediation="Set events.replicationFactor / minInsyncReplicas / retentionHours in the stack file.",
)


# -- the connectors ----------------------------------------------------------------------------------------------

def _outbox_services() -> dict[str, str]:
    """publication -> service, for every service of the catalog that publishes events."""
    return {outbox_publication_name(s.name): s.name for s in load_catalog() if s.events}


def _connector(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == WORKER:
        properties = _properties(str(args.props.get("propertiesFileContent") or ""))
        if not properties.get("config.providers"):
            report("the worker configuration has no config provider: connectors could only carry passwords in "
                   "clear in their configuration", None)
        return
    if args.resource_type == PLUGIN:
        location = ((args.props.get("location") or {}).get("s3") or {})
        if not location.get("bucketArn") or not location.get("fileKey"):
            report("the custom plugin does not name its S3 bucket and key", None)
        return
    props = args.props
    config: Mapping[str, Any] = props.get("connectorConfiguration") or {}
    if (props.get("kafkaClusterClientAuthentication") or {}).get("authenticationType") != "IAM":
        report("the connector does not authenticate to MSK with IAM (authenticationType IAM)", None)
    if (props.get("kafkaClusterEncryptionInTransit") or {}).get("encryptionType") != "TLS":
        report("the connector does not use TLS to the brokers (encryptionType TLS; Security Hub MSK.3)", None)
    delivery = (((props.get("logDelivery") or {}).get("workerLogDelivery") or {}).get("cloudwatchLogs") or {})
    if delivery.get("enabled") is not True:
        report("the connector's worker logs are not delivered to CloudWatch (Security Hub MSK.5)", None)
    if not str(config.get("connector.class", "")).startswith("io.debezium.connector.postgresql"):
        return  # the rest is about PostgreSQL CDC connectors
    publication = str(config.get("publication.name", ""))
    service = _outbox_services().get(publication)
    if service is None:
        report(f"publication.name {publication!r} is not a service's outbox publication: a CDC login decodes any "
               "table its publication holds, so it reads only `<service>_outbox_pub`", None)
        return
    expected = {
        "database.user": CDC_LOGIN,
        "slot.name": outbox_slot_name(service),
        "plugin.name": "pgoutput",
        "publication.autocreate.mode": "disabled",
        "table.include.list": f"{schema_name(service)}.{outbox_table_name(service)}",
        "transforms.outbox.type": OUTBOX_ROUTER,
        # versions enforced at publish time: the converter only finds versions the stack declared, by definitions
        # that carry no Connect schema names (config/event_schemas.py)
        "value.converter.schemaAutoRegistrationEnabled": "false",
        "value.converter.connect.meta.data": "false",
    }
    for key, value in expected.items():
        if str(config.get(key, "")) != value:
            report(f"{key} is {config.get(key)!r}; {service}'s connector needs {value!r}", None)
    _connector_tls(config, report)
    if "transforms.outbox.table.field.event.schema.version" in config:
        report("transforms.outbox.table.field.event.schema.version is set: the outbox router then caches the value "
               "schema by version number alone, giving every event type of that version the first type's schema "
               "(docs/events.md); the version travels as the schemaVersion header", None)
    password = str(config.get("database.password", ""))
    if password and not password.startswith(SECRET_REFERENCE):
        report("database.password is written in the connector's configuration: reference the CDC secret through "
               "the worker's config provider (${secretsmanager:<arn>:password})", None)
    if ".proxy-" in str(config.get("database.hostname", "")):
        report("database.hostname is an RDS Proxy endpoint: RDS Proxy does not serve replication connections; use "
               "the instance endpoint", None)


def _connector_tls(config: Mapping[str, Any], report: ReportViolation) -> None:
    mode, factory = str(config.get("database.sslmode", "")), str(config.get("database.sslfactory", ""))
    if mode not in VERIFYING_SSL_MODES:
        report(f"database.sslmode {mode!r}: the replication connection must verify the RDS server "
               f"({', '.join(VERIFYING_SSL_MODES)}); `require` encrypts but accepts any server", None)
    elif factory == NON_VALIDATING_FACTORY:
        report(f"database.sslfactory {factory}: pgjdbc then trusts any certificate, whatever the sslmode", None)
    elif not factory and not config.get("database.sslrootcert"):
        report("database.sslmode verifies the server but nothing says what to trust (no database.sslfactory, no "
               "database.sslrootcert): pgjdbc would look for ~/.postgresql/root.crt on the worker; use the plugin "
               "jar's com.edumatrix.events.RdsCaBundleSocketFactory", None)


connector_outbox_only = TypedResourcePolicy(
    "events-connector-outbox-only",
    "CDC connectors: IAM and TLS to MSK, logs delivered, only a service's outbox publication and slot, never "
    "creating a publication, the password from Secrets Manager, the instance endpoint verified by TLS.",
    types=[CONNECTOR, PLUGIN, WORKER], validate=_connector, severity=Severity.HIGH,
    controls=["Security Hub MSK.3", "Security Hub MSK.5", "spec 2.B"],
    remediation="Declare connectors through components/event_backbone.py (connector_configuration).",
)


def _connector_role_scoped(args: StackValidationArgs, report: ReportViolation) -> None:
    """Each connector's execution role writes only its own service's topics."""
    roles = {r.props.get("arn") or "": r for r in of_type(args.resources, ROLE)}
    policies = of_type(args.resources, ROLE_POLICY)
    for connector in of_type(args.resources, CONNECTOR):
        config = connector.props.get("connectorConfiguration") or {}
        service = _outbox_services().get(str(config.get("publication.name", "")))
        if service is None:
            continue
        role = roles.get(connector.props.get("serviceExecutionRoleArn") or "")
        if role is None:
            report(f"{service}'s connector runs with a role this stack does not declare", connector.urn)
            continue
        names = {role.props.get(k) for k in ("id", "name", "arn")} - {None}
        attached = [p for p in policies if p.props.get("role") in names]
        if not attached:
            report(f"{service}'s connector role has no policy: it cannot reach its topics", connector.urn)
        for policy in attached:
            for statement in json.loads(str(policy.props.get("policy") or "{}")).get("Statement", []):
                actions = statement.get("Action")
                actions = [actions] if isinstance(actions, str) else list(actions or [])
                if not any(a in ("kafka-cluster:WriteData", "kafka-cluster:*", "*") for a in actions):
                    continue
                resources = statement.get("Resource")
                resources = [resources] if isinstance(resources, str) else list(resources or [])
                for arn in resources:
                    topic = str(arn).rsplit("/", 1)[-1]
                    if ":topic/" not in str(arn) or not (topic.startswith(f"edumatrix.{service}.")
                                                         or topic == heartbeat_topic_name(service)
                                                         or topic.startswith("__amazon_msk_connect")):
                        report(f"{service}'s connector role may write {arn}: only its own topics "
                               f"(edumatrix.{service}.*), its heartbeats and MSK Connect's internal ones", policy.urn)


connector_role_scoped = StackPolicy(
    "events-connector-role-scoped",
    "A CDC connector's execution role may write only its own service's topics.",
    types=[CONNECTOR, ROLE, ROLE_POLICY], validate=_connector_role_scoped, severity=Severity.HIGH,
    controls=["spec 2.B", "least privilege"],
    remediation="Keep components/event_backbone.py connector_role_policy (topic ARNs of the service only).",
)


def _connector_aws_apis(args: StackValidationArgs, report: ReportViolation) -> None:
    """The connectors' AWS API calls have a route: an interface endpoint per service, private DNS off, a policy,
    HTTPS only from security groups (no CIDR), and the clients pointed at it."""
    connectors = of_type(args.resources, CONNECTOR)
    if not connectors:
        return
    endpoints = of_type(args.resources, VPC_ENDPOINT)
    for service, why in CONNECTOR_API_SERVICES.items():
        found = [e for e in endpoints if str(e.props.get("serviceName", "")).endswith(f".{service}")
                 and e.props.get("vpcEndpointType") == "Interface"]
        if not found:
            report(f"the CDC connectors call {service} from their subnets ({why}) and the stack declares no "
                   f"interface endpoint for it: without a NAT route the task fails", connectors[0].urn)
        for endpoint in found:
            if endpoint.props.get("privateDnsEnabled") is True:
                report(f"the {service} endpoint has private DNS on: every workload of the VPC would resolve "
                       f"{service} to it, and AWS allows one such endpoint per service and VPC", endpoint.urn)
            principals = json.dumps([s.get("Principal") for s in
                                     json.loads(str(endpoint.props.get("policy") or "{}")).get("Statement", [])])
            if not endpoint.props.get("policy") or '"*"' in principals:
                report(f"the {service} endpoint has no policy naming the connectors' roles: any principal in "
                       "the VPC could use it", endpoint.urn)
            groups = set(endpoint.props.get("securityGroupIds") or [])
            for rule in of_type(args.resources, SG_INGRESS):
                props = rule.props
                opening = props.get("cidrIpv4") or props.get("cidrIpv6") or (
                    None if props.get("fromPort") == HTTPS else f"port {props.get('fromPort')}")
                if props.get("securityGroupId") in groups and opening:
                    report(f"the {service} endpoint's security group admits {opening}: only HTTPS from the "
                           "connectors' group", rule.urn)
    worker_text = " ".join(str(w.props.get("propertiesFileContent") or "") for w in of_type(args.resources, WORKER))
    if "param.endpoint=https://" not in worker_text:
        report("the worker configuration's config provider does not name the Secrets Manager endpoint "
               "(config.providers.secretsmanager.param.endpoint): with private DNS off it would call the public "
               "name", connectors[0].urn)
    for connector in connectors:
        config = connector.props.get("connectorConfiguration") or {}
        glue = str(config.get("value.converter", "")).startswith("com.amazonaws.services.schemaregistry.")
        if glue and not str(
                config.get("value.converter.endpoint", "")).startswith("https://"):
            report(f"connector {connector.props.get('name')}: the Glue converter does not name the Glue endpoint "
                   "(value.converter.endpoint)", connector.urn)


connector_aws_apis = StackPolicy(
    "events-connector-aws-apis",
    "CDC connectors reach Secrets Manager and Glue through interface endpoints of their own: private DNS off, a "
    "policy for their roles, HTTPS from security groups only, the clients given the endpoints' names.",
    types=[CONNECTOR, VPC_ENDPOINT, WORKER, SG_INGRESS], validate=_connector_aws_apis, severity=Severity.HIGH,
    controls=["spec 2.B", "AWS PrivateLink"],
    remediation="Declare the connectors through components/event_backbone.py (its endpoints and endpoint URLs).",
)


# -- the schema registry -----------------------------------------------------------------------------------------

def _registry(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == REGISTRY:
        if not args.props.get("registryName"):
            report("the schema registry has no name the converters can use", None)
        return
    compatibility = args.props.get("compatibility")
    if compatibility not in BACKWARD_OR_STRICTER:
        report(f"compatibility {compatibility!r}: versioned events need BACKWARD or stricter "
               f"({', '.join(BACKWARD_OR_STRICTER)}), or a new version could break its consumers", None)
    if args.props.get("dataFormat") != "JSON":
        report(f"dataFormat {args.props.get('dataFormat')!r}: the registered definitions are derived for the Glue "
               "JSON Schema converter (config/event_schemas.py)", None)
    name = str(args.props.get("schemaName", ""))
    expected = _registered_definitions().get(name)
    if expected is not None and args.props.get("schemaDefinition") != expected:
        report(f"{name}'s schema definition is not the one the converter derives from the catalog's payload: with "
               "auto-registration off no record would find its version and the connector task would fail", None)


def _registered_definitions() -> dict[str, str]:
    """Schema name -> the definition the Glue converter derives from its records (config/event_schemas.py)."""
    publishers = [s for s in load_catalog() if s.events]
    definitions = {event_schema_name(s.name, e.aggregate, e.type): event_definition(e.fields)
                   for s in publishers for e in s.events}
    return definitions | {heartbeat_schema_name(s.name): heartbeat_json_definition() for s in publishers}


registry_compatibility = TypedResourcePolicy(
    "events-registry-compatibility",
    "Glue schema registry: every event schema BACKWARD or stricter, JSON, its definition the one the converter "
    "derives from the catalog's payload.",
    types=[REGISTRY, SCHEMA], validate=_registry, severity=Severity.HIGH, controls=["spec 2.B versioned events"],
    remediation="Set events.schemaCompatibility to BACKWARD, BACKWARD_ALL, FULL or FULL_ALL.",
)


# -- the plugin bucket -------------------------------------------------------------------------------------------

def _plugin_bucket(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = of_type(args.resources, BUCKET)
    if not buckets:
        return
    for bucket in buckets:
        # Companions name the bucket by its id (its name); under a preview it may be unknown: a stack with one
        # bucket (the plugin bucket) then owns every companion.
        ident = str(bucket.props.get("bucket") or bucket.props.get("id") or "")

        def companion(type_: str, ident: str = ident) -> Mapping[str, Any]:
            found = [r.props for r in of_type(args.resources, type_)
                     if str(r.props.get("bucket")) == ident or (len(buckets) == 1 and not ident)]
            return found[0] if found else {}

        ident = ident or bucket.name
        rules = companion(BUCKET_SSE).get("rules") or []
        default = (rules[0].get("applyServerSideEncryptionByDefault") or {}) if rules else {}
        if default.get("sseAlgorithm") != "aws:kms" or is_aws_managed_key(default.get("kmsMasterKeyId")) \
                or not default.get("kmsMasterKeyId"):
            report(f"bucket {ident}: not encrypted with the platform CMK (SSE-KMS)", bucket.urn)
        status = (companion(BUCKET_VERSIONING).get("versioningConfiguration") or {}).get("status")
        if status != "Enabled":
            report(f"bucket {ident}: versioning is not enabled (a replaced plugin zip must stay recoverable)",
                   bucket.urn)
        block = companion(BUCKET_PAB)
        if not all(block.get(k) is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                                  "restrictPublicBuckets")):
            report(f"bucket {ident}: public access is not blocked on all four settings (Security Hub S3.8)",
                   bucket.urn)
        text = str(companion(BUCKET_POLICY).get("policy") or "")
        if '"aws:SecureTransport": "false"' not in text or '"Deny"' not in text:
            report(f"bucket {ident}: no policy denies requests without TLS (Security Hub S3.5)", bucket.urn)


plugin_bucket = StackPolicy(
    "events-plugin-bucket",
    "The connector plugin's S3 bucket: SSE-KMS with the platform CMK, versioned, no public access, TLS only.",
    types=[BUCKET, BUCKET_SSE, BUCKET_VERSIONING, BUCKET_PAB, BUCKET_POLICY], validate=_plugin_bucket,
    severity=Severity.HIGH, controls=["Security Hub S3.5", "Security Hub S3.8", "spec 4.A"],
    remediation="Declare the bucket through components/event_backbone.py with its four companions.",
)


# -- alarms ------------------------------------------------------------------------------------------------------

def _alarmed(alarm: Any) -> bool:
    return bool(alarm.props.get("alarmActions")) and alarm.props.get("actionsEnabled") is not False


def _events_alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    connectors = of_type(args.resources, CONNECTOR)
    if not connectors:
        return
    alarms = [a for a in of_type(args.resources, ALARM) if _alarmed(a)]
    failed = {(a.props.get("dimensions") or {}).get("ConnectorName") for a in alarms
              if a.props.get("metricName") == "ErroredTaskCount"}
    for connector in connectors:
        if connector.props.get("name") not in failed:
            report(f"connector {connector.props.get('name')}: no ErroredTaskCount alarm pages anyone (a failed task "
                   "stops its service's events and its slot holds WAL)", connector.urn)
    queries = [q for a in alarms for q in (a.props.get("metricQueries") or [])]
    if not any("EstimatedMaxTimeLag" in str(q.get("expression", "")) or "OffsetLag" in str(q.get("expression", ""))
               for q in queries) and not any("OffsetLag" in str(a.props.get("metricName", "")) or
                                            "TimeLag" in str(a.props.get("metricName", "")) for a in alarms):
        report("no consumer-lag alarm (EstimatedMaxTimeLag / SumOffsetLag / MaxOffsetLag) pages anyone",
               connectors[0].urn)
    if of_type(args.resources, INSTANCE) and not any(a.props.get("metricName") == "OldestReplicationSlotLag"
                                                     for a in alarms):
        report("the instance has outbox slots but no OldestReplicationSlotLag alarm pages anyone (a stuck slot "
               "holds WAL until the disk is full)", connectors[0].urn)


events_alarms = StackPolicy(
    "events-alarms",
    "The event backbone pages someone: a connector's failed tasks, consumer lag, the instance's slot lag.",
    types=[CONNECTOR, ALARM], validate=_events_alarms, severity=Severity.HIGH, controls=["spec 2.B", "spec 4.B"],
    remediation="Keep the alarms of components/event_backbone.py and components/database_alarms.py.",
)


POLICIES: list[PackPolicy] = [broker_encryption, broker_authentication, topic_copies, connector_outbox_only,
                              connector_role_scoped, connector_aws_apis, registry_compatibility, plugin_bucket,
                              events_alarms]
