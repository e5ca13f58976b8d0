"""Every policy of the pack refuses at least one example, through the gate's own evaluation: a policy whose
validator stopped reporting (or never reported) fails here, and a new policy without an example fails too.

(This replaces a check that counted a policy as exercised when its name appeared in the test sources.)
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from edumatrix_db.offline.engine import RecordedResource
from policy.pack import POLICIES
from tests.policy import test_backup as backup_examples
from tests.policy.fixtures import (
    MISSING,
    TAGS,
    grant,
    instance,
    key_arn,
    ledger_table_props,
    parameter_group,
    replica,
    resource,
    role,
    run,
    service_access,
)
from tests.policy.test_lambdas import NAME, policy_document, replaced
from tests.policy.test_pooler import AWS_API_EXAMPLES as POOLER_AWS_API_EXAMPLES
from tests.policy.test_pooler import EXAMPLES as POOLER_EXAMPLES

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"
TIMEOUTS = {"create": "4h", "update": "4h", "delete": "2h"}
SNS = "arn:aws:sns:eu-west-1:123456789012:pager"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
ALIAS = "aws:kms/alias:Alias"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
PERMISSION = "aws:lambda/permission:Permission"
ZONE = "aws:route53/zone:Zone"
RECORD = "aws:route53/record:Record"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SAR = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
EXTENSION = "postgresql:index/extension:Extension"


def _group(*params: tuple[str, str, str]) -> list:
    return [resource("aws:rds/parameterGroup:ParameterGroup", "pg", {
        "name": "pg", "family": "postgres15", "tags": dict(TAGS),
        "parameters": [{"name": n, "value": v, "applyMethod": m} for n, v, m in params]})]


# The AWS preflight group (policy/aws_api.py) and rds-log-hygiene; tests/policy/test_aws_api.py has the rest.
AWS_API_EXAMPLES: dict[str, tuple[Callable[[], list], str]] = {
    "aws-api-replica-source-managed-password": (lambda: [instance(), replica(replicateSourceDb=SOURCE_ARN)],
        'the replication source manages its master password in Secrets Manager; RDS answers "InvalidParameterValue: '
        'Creating read replicas for source instance ... where ManageMasterUserPassword is enabled is not supported"'),
    "aws-api-master-password-inputs": (lambda: [instance(passwordWo="x", passwordWoVersion=1)],
        'manageMasterUserPassword "cannot be set if password or password_wo is provided" (got passwordWo)'),
    "aws-api-rds-timeouts": (lambda: [instance()],
        "custom timeouts missing or below the provider's defaults (create 0m, update 0m, delete 0m; defaults create "
        "40m, update 80m, delete 60m): a cross-region replica of a large primary or a promotion with its Multi-AZ "
        "conversion outlasts them and fails the `up` half-way"),
    "aws-api-backup-replication-retain": (lambda: [resource(
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", "b",
        {"sourceDbInstanceArn": SOURCE_ARN, "kmsKeyId": key_arn("eu-west-1"), "region": "eu-west-1"})],
        "without retain_on_delete, removing this resource (a promotion does) calls the source region and waits up "
        "to 75 minutes for it: during the outage that prompted the promotion the `up` fails"),
    "aws-api-replica-kms-key": (lambda: [replica(kmsKeyId=key_arn())],
        'a same-region replica always uses its source\'s key: "InvalidParameterCombination: Your request does not '
        'require the KMS key parameter. Please remove the KMS key parameter and try your request again."'),
    "aws-api-kms-key-region": (lambda: [resource("aws:cloudwatch/logGroup:LogGroup", "l", {
        "name": "l", "kmsKeyId": key_arn("eu-west-1"), "tags": dict(TAGS)})],
        'kmsKeyId is a key of eu-west-1, the resource is in us-east-1: "KMSKeyNotAccessibleFault: The specified KMS '
        'key [...] does not exist, is not enabled or you do not have permissions to access it." (KMS keys are '
        'regional)'),
    "aws-api-rds-storage": (lambda: [instance(storageType="io1")],
        "storageType: storageType io1 needs provisioned IOPS; RDS refuses it without"),
    "aws-api-rds-identifier": (lambda: [instance(identifier="edumatrix-")],
        "identifier 'edumatrix-': RDS takes 1-63 lowercase letters, digits and hyphens, starting with a letter, "
        "without '--' or a trailing '-' (DBInstanceIdentifier)"),
    "aws-api-backup-retention": (lambda: [instance(backupRetentionPeriod=40)],
        "backupRetentionPeriod 40: RDS keeps automated backups 0-35 days"),
    "aws-api-engine-lifecycle": (lambda: [instance()],
        "engineLifecycleSupport is not set: RDS then enrolls the instance in Extended Support, billed once the major "
        "version's standard support ends (default `open-source-rds-extended-support`)"),
    "aws-api-database-insights": (lambda: [instance()],
        "databaseInsightsMode is not set (standard or advanced): the Performance Insights console is retired and "
        "RDS picks a mode"),
    "aws-api-parameter-known": (lambda: _group(("shared_bufers", "1", "pending-reboot")),
        "'shared_bufers' is not a postgres15 parameter on RDS (\"InvalidParameterValue\")"),
    "aws-api-static-parameter-immediate": (lambda: _group(("max_connections", "100", "immediate")),
        'max_connections is static: "InvalidParameterCombination: cannot use immediate apply method for static '
        'parameter" (the provider sends `immediate` when applyMethod is not given)'),
    "aws-api-parameter-family-default": (lambda: _group(("rds.force_ssl", "1", "pending-reboot")),
        "rds.force_ssl=1 is the postgres15 default on RDS: the provider never reads it back, so every preview shows "
        "a change (hashicorp/terraform-provider-aws#23335)"),
    "aws-api-alarm-topic-region": (lambda: [resource("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {
        "alarmActions": [SNS], "tags": dict(TAGS)})],
        f"{SNS} is a topic of eu-west-1; CloudWatch alarms notify SNS topics of their own region (us-east-1)"),
    "aws-api-replica-lag-alarm": (lambda: [resource("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {
        "namespace": "AWS/RDS", "metricName": "ReplicaLag", "threshold": 0.1, "tags": dict(TAGS)})],
        "threshold 0.1 s: a PostgreSQL replica reports up to 300 s of lag when its source has no writes, so this "
        "pages on quiet primaries"),
    "aws-api-alarm-topic-key": (lambda: [
        resource("aws:sns/topic:Topic", "t", {"arn": SNS.replace("eu-west-1", "us-east-1"),
                                              "kmsMasterKeyId": "alias/aws/sns", "tags": dict(TAGS)}),
        resource("aws:cloudwatch/metricAlarm:MetricAlarm", "a", {
            "alarmActions": [SNS.replace("eu-west-1", "us-east-1")], "tags": dict(TAGS)})],
        "alarm topic key 'alias/aws/sns': CloudWatch alarms cannot publish to a topic encrypted with alias/aws/sns "
        '("CloudWatch Alarms does not have authorization to access the SNS topic encryption key"); use a '
        "customer-managed key"),
    "aws-api-secret-replica-cmk": (lambda: [resource("aws:secretsmanager/secret:Secret", "s", {
        "name": "s", "kmsKeyId": key_arn(), "replicas": [{"region": "eu-west-1"}], "tags": dict(TAGS)})],
        "the replica in eu-west-1 has no customer-managed key: Secrets Manager would use aws/secretsmanager there"),
    "aws-api-secret-replica-regions": (lambda: [resource("aws:secretsmanager/secret:Secret", "s", {
        "name": "s", "kmsKeyId": key_arn(), "tags": dict(TAGS)})],
        "no copy in eu-west-1: a region stack there, once promoted, finds no credentials"),
    "aws-api-rotation-rds-password": (lambda: [
        parameter_group(),
        resource("aws:secretsmanager/secret:Secret", "s", {"arn": "arn:s", "name": "s", "kmsKeyId": key_arn(),
                                                          "tags": {**TAGS, "db-role": "feedback_app"}}),
        resource("aws:secretsmanager/secretRotation:SecretRotation", "r", {"secretId": "arn:s"})],
        "feedback_app is rotated by the single-user function (which runs ALTER USER as feedback_app) but is not a "
        'member of rds_password: "ERROR: must be a member of rds_password to alter passwords"'),
    # policy/aws_api_services.py (tests/policy/test_aws_api_services.py breaks the prod plan one edit at a time)
    "aws-api-kms-alias-name": (lambda: [resource(ALIAS, "a", {"name": "alias/aws/edumatrix", "targetKeyId": "k"})],
        "alias 'alias/aws/edumatrix': \"The alias/aws/ prefix is reserved for AWS managed keys\" (CreateAlias)"),
    "aws-api-kms-alias-unique": (lambda: [resource(ALIAS, "a", {"name": "alias/x", "targetKeyId": "k"}),
                                          resource(ALIAS, "b", {"name": "alias/x", "targetKeyId": "l"})],
        "alias/x is declared twice in us-east-1 (also by a): \"AlreadyExistsException: An alias with the name ... "
        "already exists\""),
    "aws-api-event-target-input": (lambda: [resource(EVENT_TARGET, "t", {
        "arn": FUNCTION_ARN, "input": "{}", "inputPath": "$.detail"})],
        'input and inputPath are mutually exclusive (SDK cloudwatch/event_target.py: "Conflicts with")'),
    "aws-api-lambda-permission-source": (lambda: [resource(PERMISSION, "p", {
        "action": "lambda:InvokeFunction", "function": "f", "principal": "events.amazonaws.com"})],
        "events.amazonaws.com may invoke the function on behalf of any resource of any account: set sourceArn "
        '(Lambda developer guide, "Using resource-based policies for Lambda": confused deputy)'),
    "aws-api-event-target-lambda-permission": (lambda: [resource(EVENT_TARGET, "t", {"arn": FUNCTION_ARN})],
        "the target invokes Lambda function f, but no lambda Permission lets events.amazonaws.com invoke it from its "
        "rule: EventBridge's invocations fail (FailedInvocations) and nothing else reports it"),
    "aws-api-route53-zone": (lambda: [resource(ZONE, "z", {"name": "db.edumatrix.internal", "tags": dict(TAGS)})],
        "db.edumatrix.internal is under a top-level domain nobody delegates: as a public zone (no vpcs) its names "
        "never resolve; make it a private zone associated with the VPC"),
    "aws-api-route53-record": (lambda: [resource(RECORD, "r", {
        "zoneId": "Z1", "name": "primary.db.edumatrix.internal", "type": "CNAME", "records": ["a.example.com"]})],
        'a record that is not an alias needs ttl and records: Route 53 answers "InvalidInput: Invalid request: '
        'Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId]"'),
    "aws-api-route53-record-zone": (lambda: [
        resource(ZONE, "z", {"name": "db.edumatrix.internal", "zoneId": "Z1", "vpcs": [{"vpcId": "vpc-1"}]}),
        resource(RECORD, "r", {"zoneId": "Z1", "name": "db.edumatrix.internal", "type": "CNAME", "ttl": 60,
                               "records": ["a.example.com"]})],
        '"InvalidChangeBatch: RRSet of type CNAME with DNS name db.edumatrix.internal. is not permitted at apex in '
        'zone db.edumatrix.internal."'),
    "aws-api-dashboard": (lambda: [resource(DASHBOARD, "d", {"dashboardName": "edumatrix test",
                                                             "dashboardBody": '{"widgets": []}'})],
        "dashboardName 'edumatrix test': \"The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "
        '\\"-\\", and \\"_\\"\" (PutDashboard)'),
    "aws-api-metric-filter": (lambda: [resource(METRIC_FILTER, "f", {
        "name": "f", "pattern": "", "logGroupName": "g", "metricTransformation": {
            "name": "Errors", "namespace": "EduMatrix", "value": "1", "defaultValue": "0",
            "dimensions": {"Service": "$.service"}}})],
        'metricTransformation sets dimensions and defaultValue: "Conflicts with" (SDK; CloudWatch Logs '
        "MetricTransformation: \"If you specify dimensions, you can't also specify a default value\")"),
    "aws-api-metric-filter-log-group": (lambda: [resource(METRIC_FILTER, "f", {
        "name": "f", "pattern": "", "logGroupName": "/aws/rds/instance/x/postgresql",
        "metricTransformation": {"name": "Errors", "namespace": "EduMatrix", "value": "1"}})],
        "log group /aws/rds/instance/x/postgresql is not declared in this stack (in us-east-1): PutMetricFilter "
        'answers "ResourceNotFoundException: The specified log group does not exist" until RDS or Lambda first '
        "writes to it"),
    "aws-api-secret-version": (lambda: [resource(SECRET_VERSION, "v", {"secretId": "arn:s"})],
        "a secret version takes exactly one of secretString, secretBinary, secretStringWo (got none; SDK "
        "secretsmanager/secret_version.py)"),
    "aws-api-rotated-secret-value": (lambda: [
        resource("aws:secretsmanager/secret:Secret", "s", {"arn": "arn:s", "name": "s", "kmsKeyId": key_arn(),
                                                          "tags": dict(TAGS)}),
        resource("aws:secretsmanager/secretRotation:SecretRotation", "r", {"secretId": "arn:s"})],
        "s is rotated but has no value in this stack: the rotation function fails at createSecret "
        "(\"ResourceNotFoundException: Secrets Manager can't find the specified secret value for staging label: "
        'AWSCURRENT")'),
    "aws-api-rotation-application": (lambda: [resource(SAR, "app", {
        "name": "edumatrix-test-rotation", "semanticVersion": "1.1.671", "capabilities": ["CAPABILITY_IAM"],
        "applicationId": "arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
                         "SecretsManagerRDSPostgreSQLRotationSingleUser",
        "parameters": {"endpoint": "https://secretsmanager.us-east-1.amazonaws.com", "functionName": "rotate"},
        "tags": dict(TAGS)})],
        "capabilities lack CAPABILITY_RESOURCE_POLICY: the rotation application creates an IAM role and a resource "
        'policy ("Requires capabilities : [CAPABILITY_IAM, CAPABILITY_RESOURCE_POLICY]")'),
    "aws-api-sns-topic-policy": (lambda: [resource(TOPIC_POLICY, "p", {"arn": TOPIC, "policy": json.dumps({
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                       "Action": "sns:Publish", "Resource": SNS}]})})],
        f"statement 0 names {SNS}, not this topic ({TOPIC}): it grants nothing on the topic the policy is attached "
        "to"),
    "aws-api-sns-subscription": (lambda: [resource(SUBSCRIPTION, "s", {
        "protocol": "email", "endpoint": "dba-oncall", "topic": TOPIC})],
        "endpoint 'dba-oncall' is not a email endpoint (SNS Subscribe Endpoint: email address, URL, E.164 number or "
        'ARN by protocol): "InvalidParameter: Invalid parameter: Endpoint"'),
    "aws-api-pg-extension-supported": (lambda: [instance(), resource(EXTENSION, "e", {
        "name": "timescaledb", "database": "edumatrix"})],
        "timescaledb is not an extension RDS for PostgreSQL 15 offers: CREATE EXTENSION fails (\"could not open "
        'extension control file")'),
    "aws-api-pg-extension-preload": (lambda: [parameter_group(), resource(EXTENSION, "e", {
        "name": "pg_cron", "database": "postgres"})],
        "pg_cron is not in shared_preload_libraries: CREATE EXTENSION fails (\"unrecognized configuration parameter "
        'cron.database_name"; AWS RDS user guide, pg_cron: "add pg_cron to the shared_preload_libraries parameter")'),
    "rds-log-hygiene": (lambda: [parameter_group(log_parameter_max_length=MISSING)],
        "log_parameter_max_length is unset (-1: in full); 0 keeps bind parameters (personal data, pgcrypto keys) "
        "out of the statements logged for their duration"),
    **POOLER_AWS_API_EXAMPLES,
}

def _target(phase: str = "replicate", **overrides: object) -> RecordedResource:
    """An extraction target of feedback: the shared instance's posture under a key of its own."""
    props: dict = {"identifier": "edumatrix-test-feedback", "kmsKeyId": key_arn(key="f1"),
                   "performanceInsightsKmsKeyId": key_arn(key="f1"),
                   "tags": {**TAGS, "extraction-of": "feedback", "extraction-phase": phase}, **overrides}
    return instance("edumatrix-test-feedback-db", **props)


def _subscription(**overrides: object) -> RecordedResource:
    props: dict = {"name": "edumatrix_extract_feedback", "database": "edumatrix",
                   "publications": ["edumatrix_extract_feedback"], "slotName": "edumatrix_extract_feedback",
                   "conninfo": "host=db port=5432 dbname=edumatrix user=edumatrix_extraction_replicator "
                               "password=x sslmode=require", **overrides}
    return resource("postgresql:index/subscription:Subscription", "sub", props)


# Extraction (policy/extraction.py).
EXTRACTION_EXAMPLES: dict[str, tuple[Callable[[], list], str]] = {
    "extraction-target-as-secure": (lambda: [instance(), _target(kmsKeyId=key_arn())],
        "extraction target edumatrix-test-feedback is less secure than the shared instance: it shares the shared "
        "instance's KMS key instead of a key of its own"),
    "extraction-slot-lag-alarm": (lambda: [instance(), _target(), _subscription()],
        "1 replication resource(s) create a slot on edumatrix-test, but no alarm with actions watches its "
        "OldestReplicationSlotLag: a stalled subscriber would keep WAL until the disk fills"),
    "extraction-no-replication-left": (lambda: [instance(), _target("complete"), _subscription()],
        "the extraction of feedback is in phase complete, which has no replication, but its subscription is still "
        "declared (its slot would hold WAL on the shared instance)"),
    "extraction-replication-login": (lambda: [_subscription(conninfo="host=db user=feedback_migrator "
                                                                     "sslmode=require")],
        "subscription edumatrix_extract_feedback connects as feedback_migrator, not the platform's replication "
        "login edumatrix_extraction_replicator: a login that may decode the whole database is a platform secret, "
        "never a service's"),
}


def _service_events(**overrides: object) -> RecordedResource:
    props: dict = {"service": "news_system", "publishes": True, "publication": "news_system_outbox_pub",
                   "cdcRole": "edumatrix_cdc_replicator", "database": "edumatrix", "host": "db", "port": 5432,
                   "username": "edumatrix_admin", "password": "x", "sslmode": "verify-full",
                   "sslrootcert": "certs/rds-global-bundle.pem", **overrides}
    return resource("pulumi-python:dynamic/edumatrix:ServiceEvents", "events", props)


# Events, database side (policy/outbox.py).
OUTBOX_EXAMPLES: dict[str, tuple[Callable[[], list], str]] = {
    "service-events-outbox-only": (lambda: [_service_events(service="statistics", sslmode="require")],
        "statistics: connects with sslmode 'require' and CA bundle 'certs/rds-global-bundle.pem'; the master "
        "password goes only over verify-full TLS; publishes 'news_system_outbox_pub'; statistics's catalog entry "
        "says no publication (it lists no events)"),
}


# policy -> (resources with that policy's kind of mistake, the message it reports), with the prod policy config
REFUSED: dict[str, tuple[Callable[[], list], str]] = {
    "rds-not-publicly-accessible": (lambda: [instance(publiclyAccessible=True)],
        'publiclyAccessible must be false (the instance must not get a public IP address)'),
    "rds-storage-encrypted": (lambda: [instance(storageEncrypted=False)],
        'storageEncrypted must be true'),
    "rds-multi-az": (lambda: [instance(multiAz=False)],
        'multiAz must be true in this environment (standby in a second availability zone)'),
    "rds-deletion-protection": (lambda: [instance(deletionProtection=False)],
        'deletionProtection must be true in this environment'),
    "rds-enhanced-monitoring": (lambda: [instance(monitoringInterval=0)],
        'monitoringInterval is 0; enhanced monitoring needs one of 1, 5, 10, 15, 30, 60 seconds'),
    "rds-log-exports": (lambda: [instance(enabledCloudwatchLogsExports=["postgresql"])],
        'enabledCloudwatchLogsExports lacks upgrade'),
    "rds-iam-authentication": (lambda: [instance(iamDatabaseAuthenticationEnabled=False)],
        'iamDatabaseAuthenticationEnabled must be true'),
    "rds-automated-backups": (lambda: [instance(backupRetentionPeriod=7)],
        'backupRetentionPeriod is 7 days; this environment needs at least 30'),
    "rds-auto-minor-version-upgrade": (lambda: [instance(autoMinorVersionUpgrade=False)],
        'autoMinorVersionUpgrade is false'),
    "rds-copy-tags-to-snapshot": (lambda: [instance(copyTagsToSnapshot=False)],
        'copyTagsToSnapshot must be true'),
    "rds-custom-admin-username": (lambda: [instance(username="postgres")],
        "username 'postgres' is a default admin name (or missing); choose a custom one"),
    "rds-current-ca-certificate": (lambda: [instance(caCertIdentifier="rds-ca-2019")],
        "caCertIdentifier 'rds-ca-2019' is not one of rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1"),
    "rds-performance-insights": (lambda: [instance(performanceInsightsEnabled=False)],
        'performanceInsightsEnabled must be true'),
    "rds-platform-parameter-group": (lambda: [instance(parameterGroupName="default.postgres15")],
        "parameterGroupName 'default.postgres15' is not a parameter group of this stack, so its parameters "
        "cannot be checked"),
    "rds-storage-cmk": (lambda: [instance(kmsKeyId="alias/aws/rds")],
        "kmsKeyId 'alias/aws/rds' is an AWS-managed key; use the platform's customer-managed key"),
    "rds-performance-insights-cmk": (lambda: [instance(performanceInsightsKmsKeyId=MISSING)],
        "performanceInsightsKmsKeyId is not set: AWS would use its own managed key instead of the platform's CMK"),
    "secrets-cmk": (lambda: [resource("aws:secretsmanager/secret:Secret", "s", {"name": "s", "tags": dict(TAGS)})],
        "kmsKeyId is not set: AWS would use its own managed key instead of the platform's CMK"),
    "backups-cmk": (lambda: [resource("aws:backup/vault:Vault", "v", {"name": "v", "tags": dict(TAGS)})],
        "kmsKeyArn is not set: AWS would use its own managed key instead of the platform's CMK"),
    "log-groups-cmk": (lambda: [resource("aws:cloudwatch/logGroup:LogGroup", "l", {"name": "l", "tags": dict(TAGS)})],
        "kmsKeyId is not set: AWS would use its own managed key instead of the platform's CMK"),
    "kms-key-rotation": (lambda: [resource("aws:kms/key:Key", "k", {"enableKeyRotation": False, "tags": dict(TAGS)})],
        'enableKeyRotation must be true (spec: encrypted with rotation)'),
    "rds-force-ssl": (lambda: [parameter_group(**{"rds.force_ssl": "0"})],
        "rds.force_ssl is '0'; it must be '1' (before postgres15: set it; from there: leave it out, the default is 1)"),
    "rds-tls-minimum-version": (lambda: [parameter_group(ssl_min_protocol_version="TLSv1.1")],
        'ssl_min_protocol_version is TLSv1.1; at least TLSv1.2 is required'),
    "rds-proxy-require-tls": (lambda: [resource("aws:rds/proxy:Proxy", "p", {"requireTls": False, "tags": dict(TAGS)})],
        'requireTls must be true'),
    "rds-pgaudit": (lambda: [parameter_group(shared_preload_libraries="pg_stat_statements")],
        'shared_preload_libraries does not preload pgaudit'),
    "rds-query-logging": (lambda: [parameter_group(log_min_duration_statement="-1")],
        'log_min_duration_statement is -1; set 0-1000 ms to log slow queries'),
    "service-grants-confined": (lambda: [*service_access("feedback"),
                                        grant("cross", "feedback_app", "statistics_schema", ["USAGE"])],
        "grant gives feedback_app USAGE on statistics's schema statistics_schema"),
    "service-role-attributes": (lambda: [role("feedback_migrator", superuser=True)],
        'service role feedback_migrator has SUPERUSER'),
    "app-role-statement-timeout": (lambda: [role("feedback_app")],
        'statementTimeout of feedback_app is unset ms; must be 1-5000'),
    "connection-budget": (lambda: [role("feedback_app", statementTimeout=5000, connectionLimit=990),
                                  parameter_group()],
        "service roles' connection limits add up to 990, over the budget of 950 (max_connections of parameter "
        "group 1000 - 50 reserved)"),
    "logical-replication-enabled": (lambda: [parameter_group(**{"rds.logical_replication": "0"})],
        'rds.logical_replication must be 1: extracting a service to its own instance replicates its schema logically'),
    "replica-kms-key-in-region": (lambda: [instance(), replica(replicateSourceDb=SOURCE_ARN, region="eu-west-1",
                                                              kmsKeyId=key_arn("us-east-1"))],
        'replica in eu-west-1 uses kmsKeyId from us-east-1; a KMS key only encrypts in its own region'),
    "rds-backup-plan-coverage": (lambda: [instance()],
        'instance edumatrix-test is not selected by any AWS Backup plan'),
    "backup-vault-lock": (lambda: backup_examples.declared(locks=[
        backup_examples._lock("edumatrix-test-six-hourly", 7),
        backup_examples._lock("edumatrix-test-daily-eu-west-1", 30)]),
        "backup vault edumatrix-test-daily has no vault lock: anyone with backup:DeleteRecoveryPoint can delete "
        "its recovery points (spec 4.A: backups kept 30 days minimum)"),
    "backup-rule-retention": (lambda: backup_examples.declared(plan=backup_examples._plan(
        backup_examples._rule("daily", "edumatrix-test-daily", 30),
        backup_examples._rule("six-hourly", "edumatrix-test-daily", 7))),
        'rule six-hourly keeps recovery points 7 days but vault edumatrix-test-daily is locked at 30: "the vault '
        'fails that backup or copy job" (AWS Backup, vault lock); put the rule in a vault locked at its own '
        'retention'),
    "backup-copy-rules": (lambda: backup_examples.declared(plan=backup_examples._plan(backup_examples._rule(
        "daily", "edumatrix-test-daily", 30, copyActions=[{"destinationVaultArn": backup_examples.DR_ARN}]))),
        "rule daily's copy to edumatrix-test-daily-eu-west-1 has no lifecycle: kept forever, beyond the retention "
        "the spec states"),
    "backup-rds-rules": (lambda: backup_examples.declared(plan=backup_examples._plan(backup_examples._rule(
        "daily", "edumatrix-test-daily", 30, enableContinuousBackup=True))),
        "rule daily takes continuous backups: AWS Backup would own the instance's backup retention and window, "
        "which the instance also declares (drift on every up: hashicorp/terraform-provider-aws#33465); here RDS "
        "owns point-in-time recovery"),
    "backup-restore-test-network": (lambda: backup_examples.declared(testing=backup_examples._testing(
        validationWindowHours=None)),
        "restore testing selection edumatrix_test_weekly_instance has no validation window: the ops runner's "
        "restore-verify cannot report its result"),
    "pitr-validation-state-machine": (lambda: backup_examples.pitr_machine(
        lambda body: body["States"]["Restore"]["Parameters"].update(MultiAZ=True)),
        "edumatrix-test-pitr-validation.Restore must set PubliclyAccessible and MultiAZ to false (a private, "
        "single-AZ copy)"),
    "required-tags": (lambda: [instance(tags={})],
        'missing tags: service, environment, owner, data-classification, managed-by'),
    # the ops runner's function, role and schedule (tests/policy/test_lambdas.py builds them as declared)
    "lambda-in-vpc": (lambda: replaced(f"{NAME}-function", vpcConfig=MISSING),
        "the function is not attached to a VPC (vpcConfig needs subnetIds and securityGroupIds): it cannot reach "
        "the private database, and it would reach the internet directly"),
    "lambda-supported-runtime": (lambda: replaced(f"{NAME}-function", runtime="python3.11"),
        "runtime 'python3.11' is not a supported Lambda runtime here (allowed: python3.12, python3.13, "
        "python3.14): deprecated runtimes get no security patches and then block function updates"),
    "lambda-within-limits": (lambda: replaced(f"{NAME}-function", timeout=901),
        "timeout 901: Lambda runs an invocation 1 to 900 s (default 3 s: set it)"),
    "lambda-concurrency-dlq-cmk": (lambda: replaced(f"{NAME}-function", reservedConcurrentExecutions=MISSING),
        "reservedConcurrentExecutions None: reserve at least 1 (0 stops the function, unset lets it take the "
        "account's whole concurrency)"),
    "lambda-log-group-cmk": (lambda: replaced(f"{NAME}-logs", kmsKeyId=MISSING),
        "the function's log group /aws/lambda/edumatrix-test-ops-runner is not encrypted with the platform's CMK"),
    "lambda-role-least-privilege": (lambda: replaced(f"{NAME}-policy", policy=policy_document(
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})),
        "the inline policy of function role edumatrix-test-ops-runner-role: secretsmanager:GetSecretValue on "
        "every resource (\"*\" is allowed only for the ENI actions of a VPC function and for actions conditioned on "
        "their narrowing key: backup:PutRestoreValidationResult on aws:RequestedRegion, cloudwatch:PutMetricData on "
        "cloudwatch:namespace, ecs:ListTasks on ecs:cluster)"),
    "scheduler-role-least-privilege": (lambda: replaced(f"{NAME}-scheduler-policy", policy=policy_document(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})),
        "schedule role edumatrix-test-ops-runner-scheduler-role may lambda:InvokeFunction on *: only "
        "lambda:InvokeFunction on the target function"),
    "dynamodb-table-protected": (lambda: [resource("aws:dynamodb/table:Table", "ledger",
                                                                  ledger_table_props(deletionProtectionEnabled=False))],
        "deletion protection is off (deletionProtectionEnabled)"),
    "dynamodb-resource-policy-scoped": (lambda: [resource("aws:dynamodb/resourcePolicy:ResourcePolicy", "p", {
        "resourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/ledger",
        "policy": '{"Version": "2012-10-17", "Statement": [{"Sid": "AppendOnly", "Effect": "Deny", '
                  '"Principal": "*", "Action": ["dynamodb:DeleteItem"], "Resource": "*"}]}'})],
        "statement AppendOnly names *: a table's resource policy may only name the table "
        "(arn:aws:dynamodb:us-east-1:123456789012:table/ledger) and its indexes and streams"),
    "gdpr-erasure-ledger-declared": (lambda: [
        resource("postgresql:index/role:Role", "feedback-gdpr", {"name": "feedback_gdpr", "login": True}),
        resource("aws:kms/key:Key", "key", {"enableKeyRotation": True})],
        "services hold personal data (feedback_gdpr) but no erasure ledger is declared: a restore would bring "
        "erased people back"),
    **AWS_API_EXAMPLES,
    **EXTRACTION_EXAMPLES,
    **OUTBOX_EXAMPLES,
    **POOLER_EXAMPLES,
}


def test_every_policy_of_the_pack_has_an_example_it_refuses() -> None:
    # The ops runner's Lambda policies have theirs in tests/policy/test_lambdas.py (VIOLATIONS, run through the
    # same gate evaluation, each asserted to be reported by exactly that policy).
    # The connection layer's have theirs in tests/policy/test_connections.py (edits of the prod plan).
    # The event backbone's have theirs in tests/policy/test_events.py (edits of the prod plan, and the alarms').
    from tests.policy.test_connections import BROKEN, EXAMPLES_ELSEWHERE
    from tests.policy.test_events import BROKEN as EVENT_BROKEN
    from tests.policy.test_lambdas import VIOLATIONS

    assert (set(REFUSED) | {policy for policy, _, _ in VIOLATIONS} | {policy for _, _, policy, _ in BROKEN}
            | {policy for _, _, policy, _ in EVENT_BROKEN} | {"events-alarms"}
            | EXAMPLES_ELSEWHERE) == {p.name for p in POLICIES}


def test_every_aws_preflight_policy_has_an_example_it_refuses() -> None:
    assert set(AWS_API_EXAMPLES) == {p.name for p in POLICIES if p.name.startswith("aws-api-")} | {"rds-log-hygiene"}


@pytest.mark.parametrize("policy", sorted(REFUSED))
def test_the_policy_refuses_its_example_saying_why(policy: str) -> None:
    resources, message = REFUSED[policy]
    config = {"aws-api-secret-replica-regions": {"regions": ["eu-west-1"]}}
    assert [v.message for v in run(resources(), config=config) if v.policy == policy] == [message]


def test_a_publishing_services_declared_events_pass_the_outbox_policy() -> None:
    assert [v for v in run([_service_events()]) if v.policy == "service-events-outbox-only"] == []


def test_the_outbox_policy_refuses_another_cdc_login() -> None:
    found = [v.message for v in run([_service_events(cdcRole="news_system_app")])
             if v.policy == "service-events-outbox-only"]
    assert found == ["news_system: grants the outbox to 'news_system_app', not the platform's CDC login "
                     "edumatrix_cdc_replicator"]


def test_the_outbox_policy_refuses_a_publication_other_than_the_services_outbox() -> None:
    found = [v.message for v in run([_service_events(publication="news_system_all_tables")])
             if v.policy == "service-events-outbox-only"]
    assert found == ["news_system: publishes 'news_system_all_tables'; news_system's catalog entry says "
                     "news_system_outbox_pub"]


def test_the_outbox_policy_names_a_missing_service_as_empty() -> None:
    found = [v.message for v in run([_service_events(service=None)]) if v.policy == "service-events-outbox-only"]
    assert found == ["ServiceEvents names '', which is not a catalog service"]


def test_a_target_that_keeps_the_shared_posture_passes_the_extraction_policies() -> None:
    alarm = resource("aws:cloudwatch/metricAlarm:MetricAlarm", "slot", {
        "metricName": "OldestReplicationSlotLag", "dimensions": {"DBInstanceIdentifier": "edumatrix-test"},
        "alarmActions": [SNS]})
    found = run([instance(), _target(), _subscription(), alarm])
    assert [v.message for v in found if v.policy.startswith("extraction-")] == []


def test_the_target_policy_names_each_weaker_setting() -> None:
    found = run([instance(), _target(multiAz=False, deletionProtection=False, backupRetentionPeriod=7)])
    messages = [v.message for v in found if v.policy == "extraction-target-as-secure"]
    assert len(messages) == 3
    assert any("one availability zone" in m for m in messages)
    assert any("backups are kept 7 days, the shared instance's 30" in m for m in messages)


def test_a_single_az_target_the_stack_file_explains_passes_rds_multi_az_and_the_target_policy() -> None:
    config = {"rds-multi-az": {"singleAzTargets": {"edumatrix-test-feedback": "archive"}},
              "extraction-target-as-secure": {"singleAzTargets": {"edumatrix-test-feedback": "archive"}}}
    found = run([instance(), _target(multiAz=False)], config=config)
    assert [v.policy for v in found if v.policy in ("rds-multi-az", "extraction-target-as-secure")] == []


def test_a_service_login_made_a_replication_login_on_rds_is_refused() -> None:
    """RDS grants REPLICATION by membership in rds_replication: a service role there could decode every table."""
    membership = resource("postgresql:index/grantRole:GrantRole", "m", {"role": "feedback_app",
                                                                        "grantRole": "rds_replication"})
    assert [v.policy for v in run([membership]) if v.policy == "service-grants-confined"] == ["service-grants-confined"]


def test_an_extracted_services_roles_count_once_against_the_connection_budget() -> None:
    from tests.policy.fixtures import service_roles

    group = parameter_group(max_connections="100")
    once = [v for v in run([group, *service_roles("feedback", pool=40)]) if v.policy == "connection-budget"]
    twice = [v for v in run([group, *service_roles("feedback", pool=40), *service_roles("feedback", pool=40)])
             if v.policy == "connection-budget"]
    assert once == twice == []
