"""policy/aws_api.py: the AWS preflight group. A compliant stack passes every policy of the group; each
violation, one change away from it, is reported by exactly its policy on exactly the resource."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from edumatrix_db.offline import gate
from edumatrix_db.offline.engine import RecordedResource
from policy import audit, aws_api
from tests.policy.fixtures import ACCOUNT, MISSING, TAGS, by_policy, instance_props, key_arn, resource, run

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
BACKUPS = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

TIMEOUTS = {"create": "4h", "update": "4h", "delete": "2h"}
PRIMARY_ARN = f"arn:aws:rds:us-east-1:{ACCOUNT}:db:edumatrix-test"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:edumatrix-test-lag-topic"
ALARM_KEY = key_arn(key="a1a1a1a1-0000-0000-0000-000000000001")
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:edumatrix-test/db/feedback/app-abc123"
CONFIG = {"aws-api-secret-replica-regions": {"regions": ["eu-west-1"]}}
POLICIES = [*aws_api.POLICIES, audit.log_hygiene]

# What the platform sends for postgres15 (config/parameters.py), apply methods from the family's table.
PARAMETERS = [
    ("ssl_min_protocol_version", "TLSv1.2", "immediate"), ("shared_preload_libraries", "pg_stat_statements,pgaudit",
                                                             "pending-reboot"),
    ("pgaudit.log", "ddl,role", "immediate"), ("log_min_duration_statement", "100", "immediate"),
    ("rds.logical_replication", "1", "pending-reboot"), ("max_connections", "1000", "pending-reboot"),
    ("log_parameter_max_length", "0", "immediate"), ("log_min_error_statement", "panic", "immediate"),
    ("temp_file_limit", "1048576", "immediate"), ("rds.restrict_password_commands", "1", "pending-reboot"),
]


def _primary_props(**overrides: Any) -> dict[str, Any]:
    props = instance_props(manageMasterUserPassword=MISSING, masterUserSecretKmsKeyId=MISSING,
                           passwordWo="generated", passwordWoVersion=1, engineVersion="15",
                           engineLifecycleSupport="open-source-rds-extended-support-disabled",
                           databaseInsightsMode="standard", storageType="gp3")
    props.update(overrides)
    return props


def _alarm_key_policy(condition: dict[str, Any] | None = None) -> str:
    grant: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
                             "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}
    if condition:
        grant["Condition"] = condition
    return json.dumps({"Statement": [grant]})


def compliant() -> list[RecordedResource]:
    replica = {k: v for k, v in _primary_props().items()
               if k not in ("engine", "engineVersion", "username", "passwordWo", "passwordWoVersion", "kmsKeyId",
                            "backupRetentionPeriod", "allocatedStorage", "engineLifecycleSupport", "arn")}
    return [
        resource(INSTANCE, "primary", _primary_props(), custom_timeouts=TIMEOUTS),
        resource(INSTANCE, "same-region-replica", {**replica, "identifier": "edumatrix-test-replica-1",
                                                   "replicateSourceDb": PRIMARY_ARN}, custom_timeouts=TIMEOUTS),
        resource(INSTANCE, "region-replica", {**replica, "identifier": "edumatrix-test-eu-west-1",
                                              "replicateSourceDb": PRIMARY_ARN, "region": "eu-west-1",
                                              "kmsKeyId": key_arn("eu-west-1"),
                                              "performanceInsightsKmsKeyId": key_arn("eu-west-1")},
                 custom_timeouts={"create": "12h", "update": "8h", "delete": "2h"}),
        resource(BACKUPS, "backups", {"sourceDbInstanceArn": PRIMARY_ARN, "kmsKeyId": key_arn("eu-west-1"),
                                      "retentionPeriod": 7, "region": "eu-west-1"}, retain_on_delete=True),
        resource(PARAMETER_GROUP, "params", {
            "name": "edumatrix-test-params", "family": "postgres15", "tags": dict(TAGS),
            "parameters": [{"name": n, "value": v, "applyMethod": m} for n, v, m in PARAMETERS]}),
        resource(KEY, "data-key", {"arn": key_arn(), "enableKeyRotation": True, "policy": json.dumps({"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "logs.us-east-1.amazonaws.com"}, "Action": "kms:*"}]})}),
        resource(KEY, "alarm-key", {"arn": ALARM_KEY, "enableKeyRotation": True, "policy": _alarm_key_policy()}),
        resource(TOPIC, "topic", {"arn": TOPIC_ARN, "kmsMasterKeyId": ALARM_KEY, "tags": dict(TAGS)}),
        resource(ALARM, "lag", {"namespace": "AWS/RDS", "metricName": "ReplicaLag", "threshold": 600,
                                "treatMissingData": "missing", "alarmActions": [TOPIC_ARN], "okActions": [TOPIC_ARN]}),
        resource(LOG_GROUP, "logs", {"name": "/aws/rds/instance/edumatrix-test/postgresql", "kmsKeyId": key_arn()}),
        resource(SECRET, "app-secret", {"arn": SECRET_ARN, "name": "edumatrix-test/db/feedback/app",
                                        "kmsKeyId": key_arn(), "tags": {**TAGS, "db-role": "feedback_app"},
                                        "replicas": [{"region": "eu-west-1", "kmsKeyId": key_arn("eu-west-1")}]}),
        resource(ROTATION, "app-rotation", {"secretId": SECRET_ARN, "rotationLambdaArn": "arn:aws:lambda:x"}),
        resource(GRANT_ROLE, "app-in-rds-password", {"role": "feedback_app", "grantRole": "rds_password"}),
    ]


def test_a_stack_shaped_like_the_platforms_passes_every_preflight_policy() -> None:
    assert run(compliant(), config=CONFIG, policies=POLICIES) == []


def _changed(resources: list[RecordedResource], name: str, **overrides: Any) -> list[RecordedResource]:
    out = []
    for res in resources:
        if res.name == name:
            options = {k: overrides.pop(k) for k in ("custom_timeouts", "retain_on_delete") if k in overrides}
            props = {k: v for k, v in {**res.props, **overrides}.items() if v is not MISSING}
            res = replace(res, props=props, inputs=props, **options)
        out.append(res)
    return out


def _params(**changes: Any) -> list[dict[str, Any]]:
    values = {n: [v, m] for n, v, m in PARAMETERS}
    for name, change in changes.items():
        if change is MISSING:
            values.pop(name)
        else:
            values[name] = list(change)
    return [{"name": n, "value": v, "applyMethod": m} for n, (v, m) in values.items()]


VIOLATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("aws-api-master-password-inputs", "primary", {"passwordWoVersion": MISSING}),
    ("aws-api-master-password-inputs", "same-region-replica", {"username": "edumatrix_admin"}),
    ("aws-api-rds-timeouts", "primary", {"custom_timeouts": {}}),
    ("aws-api-rds-timeouts", "region-replica", {"custom_timeouts": {"create": "30m", "update": "8h", "delete": "2h"}}),
    ("aws-api-backup-replication-retain", "backups", {"retain_on_delete": False}),
    ("aws-api-replica-kms-key", "same-region-replica", {"kmsKeyId": key_arn()}),
    ("aws-api-replica-kms-key", "region-replica", {"kmsKeyId": MISSING}),
    ("aws-api-kms-key-region", "region-replica", {"performanceInsightsKmsKeyId": key_arn("us-east-1")}),
    ("aws-api-kms-key-region", "logs", {"kmsKeyId": key_arn("eu-west-1")}),
    ("aws-api-rds-storage", "primary", {"storageType": "io1"}),
    ("aws-api-rds-storage", "primary", {"iops": 3000}),
    ("aws-api-rds-identifier", "primary", {"identifier": "edumatrix--test"}),
    ("aws-api-rds-identifier", "same-region-replica", {"identifier": "e" * 60 + "-replica-1"}),
    ("aws-api-backup-retention", "primary", {"backupRetentionPeriod": 36}),
    ("aws-api-engine-lifecycle", "primary", {"engineLifecycleSupport": MISSING}),
    ("aws-api-database-insights", "primary", {"databaseInsightsMode": MISSING}),
    ("aws-api-database-insights", "primary", {"databaseInsightsMode": "advanced"}),
    ("aws-api-parameter-known", "params", {"parameters": _params(shared_bufers=("1", "pending-reboot"))}),
    ("aws-api-parameter-known", "params", {"parameters": _params(ssl_min_protocol_version=("TLSv1.3", "immediate"))}),
    ("aws-api-static-parameter-immediate", "params", {"parameters": _params(max_connections=("1000", "immediate"))}),
    ("aws-api-parameter-family-default", "params",
     {"parameters": _params(**{"rds.force_ssl": ("1", "pending-reboot")})}),
    ("aws-api-alarm-topic-region", "lag", {"alarmActions": [f"arn:aws:sns:eu-west-1:{ACCOUNT}:pager"]}),
    ("aws-api-replica-lag-alarm", "lag", {"threshold": 0.1}),
    ("aws-api-replica-lag-alarm", "lag", {"treatMissingData": "breaching"}),
    ("aws-api-alarm-topic-key", "topic", {"kmsMasterKeyId": "alias/aws/sns"}),
    ("aws-api-alarm-topic-key", "topic", {"kmsMasterKeyId": key_arn()}),  # the key the logs use
    ("aws-api-secret-replica-cmk", "app-secret", {"replicas": [{"region": "eu-west-1"}]}),
    ("aws-api-secret-replica-cmk", "app-secret", {"replicas": [{"region": "eu-west-1", "kmsKeyId": key_arn()}]}),
    ("aws-api-secret-replica-regions", "app-secret", {"replicas": MISSING}),
    ("aws-api-rotation-rds-password", "app-rotation", {"__grant__": None}),
    ("rds-log-hygiene", "params", {"parameters": _params(log_parameter_max_length=MISSING)}),
    ("rds-log-hygiene", "params", {"parameters": _params(log_min_error_statement=("error", "immediate"))}),
]


@pytest.mark.parametrize(("policy", "name", "overrides"), VIOLATIONS,
                         ids=[f"{p}:{n}:{','.join(o)}" for p, n, o in VIOLATIONS])
def test_each_violation_is_reported_by_its_policy_on_its_resource(policy: str, name: str,
                                                                  overrides: dict[str, Any]) -> None:
    overrides = dict(overrides)
    resources = compliant()
    if "__grant__" in overrides:
        overrides.pop("__grant__")
        resources = [r for r in resources if r.name != "app-in-rds-password"]
        name_urn = next(r.urn for r in resources if r.name == name)
    else:
        resources = _changed(resources, name, **overrides)
        name_urn = next(r.urn for r in resources if r.name == name)
    found = by_policy(run(resources, config=CONFIG, policies=POLICIES))
    assert found == {policy: [name_urn]}


def test_replicas_of_a_primary_whose_password_rds_manages_are_reported() -> None:
    resources = _changed(compliant(), "primary", manageMasterUserPassword=True, passwordWo=MISSING,
                         passwordWoVersion=MISSING)
    replicas = sorted(r.urn for r in resources if "replica" in r.name)
    found = by_policy(run(resources, config=CONFIG, policies=[aws_api.replica_source_managed_password]))
    assert {k: sorted(v) for k, v in found.items()} == {"aws-api-replica-source-managed-password": replicas}


def test_a_managed_master_password_next_to_a_given_one_is_reported() -> None:
    primary = _changed(compliant(), "primary", manageMasterUserPassword=True)[0]
    assert by_policy(run([primary], policies=[aws_api.master_password_inputs])) == {
        "aws-api-master-password-inputs": [primary.urn]}


def test_the_topic_key_may_be_shared_when_cloudwatchs_grant_names_the_topic() -> None:
    condition = {"ArnLike": {"kms:EncryptionContext:aws:sns:topicArn": TOPIC_ARN}}
    resources = _changed(compliant(), "alarm-key", policy=_alarm_key_policy(condition))
    resources.append(resource(LOG_GROUP, "other-logs", {"name": "/x", "kmsKeyId": ALARM_KEY}))
    assert run(resources, config=CONFIG, policies=[aws_api.alarm_topic_key]) == []


def test_a_region_stacks_replica_of_a_managed_password_primary_is_reported_from_policy_config() -> None:
    resources = [r for r in compliant() if r.name == "region-replica"]
    config = {"aws-api-replica-source-managed-password": {"sourceManagesMasterPassword": True}}
    assert by_policy(run(resources, config=config, policies=[aws_api.replica_source_managed_password])) == {
        "aws-api-replica-source-managed-password": [resources[0].urn]}


def test_retain_on_delete_unknown_to_the_analyzer_is_not_applicable_not_a_violation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `pulumi preview` the analyzer protocol has no retain_on_delete: the policy says it could not check."""
    backups = next(r for r in compliant() if r.name == "backups")

    class AnalyzerOptions(gate.RecordedOptions):
        def __init__(self, res: RecordedResource) -> None:
            super().__init__(res)
            self.retain_on_delete = None

    monkeypatch.setattr(gate, "_options", AnalyzerOptions)
    violations, not_applicable = gate.evaluate([backups], {}, policies=[aws_api.backup_replication_retained])
    assert violations == []
    assert "aws-api-backup-replication-retain" in not_applicable


def test_policy_config_carries_what_only_the_stack_knows() -> None:
    from config.loader import load_stack

    prod = gate.policy_config(load_stack("prod"))
    region = gate.policy_config(load_stack("prod-eu-west-1"))
    assert prod["aws-api-secret-replica-regions"]["regions"] == ["eu-west-1"]
    assert prod["aws-api-kms-key-region"]["defaultRegion"] == "us-east-1"
    assert region["aws-api-replica-source-managed-password"] == {"sourceManagesMasterPassword": False}
    assert "aws-api-replica-source-managed-password" not in prod
