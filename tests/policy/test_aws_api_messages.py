"""policy/aws_api.py, message by message: each row is one change of the platform-shaped stack of
tests/policy/test_aws_api.py (or a compliant variant at a boundary) and everything the policy then reports, each
message written out in full as the user reads it in CI."""

from __future__ import annotations

import json
from typing import Any

import pytest

from edumatrix_db.offline import gate
from edumatrix_db.offline.engine import RecordedResource
from policy import aws_api
from tests.policy.fixtures import ACCOUNT, MISSING, key_arn, resource
from tests.policy.reports import not_applicable, reports, rows
from tests.policy.test_aws_api import (
    ALARM_KEY,
    CONFIG,
    TOPIC,
    TOPIC_ARN,
    _alarm_key_policy,
    _changed,
    _params,
    compliant,
)

SOURCE_MANAGES = ("the replication source manages its master password in Secrets Manager; RDS answers "
                  "\"InvalidParameterValue: Creating read replicas for source instance ... where "
                  "ManageMasterUserPassword is enabled is not supported\"")
REPLICA_INHERITS = ("a read replica inherits its source's master user; {} must not be set (\"Cannot change master user "
                    "password on an RDS postgres Read Replica because it uses physical replication and therefore "
                    "cannot differ from its parent\")")
TIMEOUTS = ("custom timeouts missing or below the provider's defaults ({}; defaults create 40m, update 80m, delete "
            "60m): a cross-region replica of a large primary or a promotion with its Multi-AZ conversion outlasts "
            "them and fails the `up` half-way")
KEY_OF_REGION = ("{} is a key of {}, the resource is in {}: \"KMSKeyNotAccessibleFault: The specified KMS key [...] "
                 "does not exist, is not enabled or you do not have permissions to access it.\" (KMS keys are "
                 "regional)")
GP3_BASELINE = ("gp3 below 400 GiB has a fixed baseline (3,000 IOPS, 125 MiB/s); RDS refuses it (\"You can't specify "
                "IOPS or storage throughput for engine postgres and a storage size less than 400\")")
IDENTIFIER = ("identifier {!r}: RDS takes 1-63 lowercase letters, digits and hyphens, starting with a letter, without "
              "'--' or a trailing '-' (DBInstanceIdentifier)")
STATIC = ("{} is static: \"InvalidParameterCombination: cannot use immediate apply method for static parameter\" (the "
          "provider sends `immediate` when applyMethod is not given)")
LAG_THRESHOLD = ("threshold {} s: a PostgreSQL replica reports up to 300 s of lag when its source has no writes, so "
                 "this pages on quiet primaries")
AWS_MANAGED_TOPIC_KEY = ("alarm topic key {!r}: CloudWatch alarms cannot publish to a topic encrypted with "
                         "alias/aws/sns (\"CloudWatch Alarms does not have authorization to access the SNS topic "
                         "encryption key\"); use a customer-managed key")
NO_CLOUDWATCH_GRANT = ("the topic's key does not let cloudwatch.amazonaws.com use it (kms:Decrypt, "
                       "kms:GenerateDataKey*): alarms cannot publish")
NOT_IN_RDS_PASSWORD = ("{0} is rotated by the single-user function (which runs ALTER USER as {0}) but is not a "
                       "member of rds_password: \"ERROR: must be a member of rds_password to alter passwords\"")
QUEUE = "aws:sqs/queue:Queue"


def changed(*changes: tuple[str, dict[str, Any]], extra: tuple[RecordedResource, ...] = (),
            without: tuple[str, ...] = ()) -> list[RecordedResource]:
    """The platform-shaped stack with each (resource name, overrides) applied, `extra` resources added after it and
    the resources named in `without` left out."""
    resources = compliant()
    for name, overrides in changes:
        resources = _changed(resources, name, **overrides)
    return [r for r in resources if r.name not in without] + list(extra)


def other_primary(**overrides: Any) -> RecordedResource:
    """A second primary, listed first, that is nobody's source and whose password RDS does not manage."""
    props = {**next(r for r in compliant() if r.name == "primary").props, "identifier": "edumatrix-other",
             "arn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:edumatrix-other", **overrides}
    return resource("aws:rds/instance:Instance", "other", props)


def alarm(name: str, **props: Any) -> RecordedResource:
    return resource("aws:cloudwatch/metricAlarm:MetricAlarm", name, {
        "namespace": "AWS/RDS", "metricName": "ReplicaLag", "threshold": 600, "treatMissingData": "missing", **props})


MANAGED_PRIMARY = ("primary", {"manageMasterUserPassword": True, "passwordWo": MISSING, "passwordWoVersion": MISSING})

CASES = rows(
    # -- master password
    ("replicas-of-a-managed-password-source", aws_api.replica_source_managed_password, changed(MANAGED_PRIMARY),
     [("same-region-replica", SOURCE_MANAGES), ("region-replica", SOURCE_MANAGES)]),
    ("replica-of-a-managed-source-named-by-identifier", aws_api.replica_source_managed_password,
     [other_primary(), *changed(MANAGED_PRIMARY, ("same-region-replica", {"replicateSourceDb": "edumatrix-test"}),
                                without=("region-replica",))],
     [("same-region-replica", SOURCE_MANAGES)]),
    ("replica-of-another-stacks-source", aws_api.replica_source_managed_password,
     changed(without=("primary",)), []),
    ("replica-given-master-inputs", aws_api.master_password_inputs,
     changed(("same-region-replica", {"password": "p", "passwordWo": "w", "username": "admin",
                                      "manageMasterUserPassword": True})),
     [("same-region-replica", REPLICA_INHERITS.format("password, passwordWo, username, manageMasterUserPassword"))]),
    ("primary-managed-and-given-passwords", aws_api.master_password_inputs,
     changed(("primary", {"manageMasterUserPassword": True, "password": "p"})),
     [("primary", "manageMasterUserPassword \"cannot be set if password or password_wo is provided\" (got password, "
                  "passwordWo)")]),
    ("primary-write-only-password-without-version", aws_api.master_password_inputs,
     changed(("primary", {"passwordWoVersion": MISSING})),
     [("primary", "passwordWo \"requires password_wo_version to be set\"")]),
    ("mysql-instance-with-every-password-input", aws_api.master_password_inputs,
     changed(("primary", {"engine": "mysql", "manageMasterUserPassword": True, "passwordWoVersion": MISSING})), []),
    # -- timeouts and retention of the backup replication
    ("instance-without-timeouts", aws_api.rds_timeouts, changed(("primary", {"custom_timeouts": {}})),
     [("primary", TIMEOUTS.format("create 0m, update 0m, delete 0m"))]),
    ("instance-timeouts-below-defaults", aws_api.rds_timeouts,
     changed(("primary", {"custom_timeouts": {"create": "30m", "update": "80m", "delete": "3599s"}})),
     [("primary", TIMEOUTS.format("create 30m, delete 59m"))]),
    ("instance-timeouts-at-the-defaults", aws_api.rds_timeouts,
     changed(("primary", {"custom_timeouts": {"create": "40m", "update": "80m", "delete": "60m"}})), []),
    ("backup-replication-not-retained", aws_api.backup_replication_retained,
     changed(("backups", {"retain_on_delete": False})),
     [("backups", "without retain_on_delete, removing this resource (a promotion does) calls the source region and "
                  "waits up to 75 minutes for it: during the outage that prompted the promotion the `up` fails")]),
    # -- keys
    ("cross-region-replica-without-key", aws_api.replica_kms_key, changed(("region-replica", {"kmsKeyId": MISSING})),
     [("region-replica", "a cross-region replica of an encrypted source needs kmsKeyId, a key of its own region: "
                         "\"InvalidParameterCombination: Cannot create a cross region unencrypted read replica from "
                         "encrypted source.\"")]),
    ("same-region-replica-with-key", aws_api.replica_kms_key, changed(("same-region-replica", {"kmsKeyId": key_arn()})),
     [("same-region-replica", "a same-region replica always uses its source's key: \"InvalidParameterCombination: "
                              "Your request does not require the KMS key parameter. Please remove the KMS key "
                              "parameter and try your request again.\"")]),
    ("keys-of-another-region", aws_api.kms_key_region,
     changed(("region-replica", {"performanceInsightsKmsKeyId": key_arn(), "masterUserSecretKmsKeyId": key_arn()}),
             ("logs", {"kmsKeyId": key_arn("eu-west-1")}), ("topic", {"kmsMasterKeyId": key_arn("eu-west-1")})),
     [("region-replica", KEY_OF_REGION.format("performanceInsightsKmsKeyId", "us-east-1", "eu-west-1")),
      ("region-replica", KEY_OF_REGION.format("masterUserSecretKmsKeyId", "us-east-1", "eu-west-1")),
      ("topic", KEY_OF_REGION.format("kmsMasterKeyId", "eu-west-1", "us-east-1")),
      ("logs", KEY_OF_REGION.format("kmsKeyId", "eu-west-1", "us-east-1"))]),
    # -- storage, identifier, retention, lifecycle, insights
    ("io1-without-iops", aws_api.rds_storage, changed(("primary", {"storageType": "io1"})),
     [("primary", "storageType: storageType io1 needs provisioned IOPS; RDS refuses it without")]),
    ("gp3-iops-and-throughput-below-400-gib", aws_api.rds_storage,
     changed(("primary", {"iops": 3000, "storageThroughput": 500})),
     [("primary", f"iops: {GP3_BASELINE}"), ("primary", f"storageThroughputMibps: {GP3_BASELINE}")]),
    ("storage-type-defaults-to-gp2", aws_api.rds_storage,
     changed(("primary", {"storageType": MISSING, "iops": 3000})), []),
    ("storage-of-a-mysql-instance", aws_api.rds_storage,
     changed(("primary", {"storageType": "io1", "engine": "mysql"})), []),
    ("identifier-unset", aws_api.rds_identifier, changed(("primary", {"identifier": MISSING})), []),
    ("identifier-with-double-hyphen", aws_api.rds_identifier, changed(("primary", {"identifier": "edumatrix--test"})),
     [("primary", IDENTIFIER.format("edumatrix--test"))]),
    ("identifier-with-trailing-hyphen", aws_api.rds_identifier, changed(("primary", {"identifier": "edumatrix-"})),
     [("primary", IDENTIFIER.format("edumatrix-"))]),
    ("identifier-of-63-characters", aws_api.rds_identifier, changed(("primary", {"identifier": "e" * 63})), []),
    ("identifier-of-64-characters", aws_api.rds_identifier, changed(("primary", {"identifier": "e" * 64})),
     [("primary", IDENTIFIER.format("e" * 64))]),
    ("identifier-of-a-mysql-instance", aws_api.rds_identifier,
     changed(("primary", {"identifier": "Edumatrix", "engine": "mysql"})), []),
    ("retention-past-35-days", aws_api.backup_retention_range, changed(("primary", {"backupRetentionPeriod": 36})),
     [("primary", "backupRetentionPeriod 36: RDS keeps automated backups 0-35 days")]),
    ("retention-negative", aws_api.backup_retention_range, changed(("primary", {"backupRetentionPeriod": -1})),
     [("primary", "backupRetentionPeriod -1: RDS keeps automated backups 0-35 days")]),
    ("retention-bounds", aws_api.backup_retention_range,
     changed(("primary", {"backupRetentionPeriod": 35}), ("same-region-replica", {"backupRetentionPeriod": 0})), []),
    ("retention-of-a-mysql-instance", aws_api.backup_retention_range,
     changed(("primary", {"backupRetentionPeriod": 90, "engine": "mysql"})), []),
    ("lifecycle-not-set", aws_api.engine_lifecycle, changed(("primary", {"engineLifecycleSupport": MISSING})),
     [("primary", "engineLifecycleSupport is not set: RDS then enrolls the instance in Extended Support, billed once "
                  "the major version's standard support ends (default `open-source-rds-extended-support`)")]),
    ("insights-mode-not-set", aws_api.database_insights, changed(("primary", {"databaseInsightsMode": MISSING})),
     [("primary", "databaseInsightsMode is not set (standard or advanced): the Performance Insights console is "
                  "retired and RDS picks a mode")]),
    ("insights-advanced-with-7-days", aws_api.database_insights,
     changed(("primary", {"databaseInsightsMode": "advanced"})),
     [("primary", "Database Insights advanced keeps 465 days, not 7 (aws/aws-cdk#32851: advanced needs "
                  "performanceInsightRetention 465)")]),
    ("insights-of-a-mysql-instance", aws_api.database_insights,
     changed(("primary", {"databaseInsightsMode": MISSING, "engine": "mysql"})), []),
    ("insights-off", aws_api.database_insights,
     changed(("primary", {"databaseInsightsMode": MISSING, "performanceInsightsEnabled": False})), []),
    # -- parameter groups
    ("parameters-of-an-unlisted-family", aws_api.parameters_known, changed(("params", {"family": "postgres99"})),
     [("params", "no parameter table for postgres99 is checked in (config/rds_parameters): its parameters cannot be "
                 "checked")]),
    ("parameter-unknown-and-value-refused", aws_api.parameters_known,
     changed(("params", {"parameters": _params(shared_bufers=("1", "pending-reboot"),
                                               ssl_min_protocol_version=("TLSv1.3", "immediate"))})),
     [("params", "ssl_min_protocol_version takes one of TLSv1, TLSv1.1, TLSv1.2, not 'TLSv1.3'"),
      ("params", "'shared_bufers' is not a postgres15 parameter on RDS (\"InvalidParameterValue\")")]),
    ("parameter-without-value", aws_api.parameters_known,
     changed(("params", {"parameters": ["not-a-parameter", {"value": "1"}, {"name": "max_connections"}]})),
     [("params", "max_connections takes a number (no unit), not ''")]),
    ("static-parameters-of-an-unlisted-family", aws_api.static_parameter_pending_reboot,
     changed(("params", {"family": "postgres99", "parameters": _params(max_connections=("1000", "immediate"))})), []),
    ("parameters-of-a-mysql-family", aws_api.parameters_known,
     changed(("params", {"family": "mysql8.0", "parameters": _params(shared_bufers=("1", "immediate"))})), []),
    ("static-parameter-applied-immediately", aws_api.static_parameter_pending_reboot,
     changed(("params", {"parameters": [*_params(max_connections=MISSING, shared_preload_libraries=MISSING),
                                        {"name": "max_connections", "value": "1000", "applyMethod": "immediate"},
                                        {"name": "shared_preload_libraries", "value": "pgaudit"}]})),
     [("params", STATIC.format("max_connections")), ("params", STATIC.format("shared_preload_libraries"))]),
    ("parameter-at-the-family-default", aws_api.parameter_family_default,
     changed(("params", {"parameters": _params(**{"rds.force_ssl": ("1", "pending-reboot")})})),
     [("params", "rds.force_ssl=1 is the postgres15 default on RDS: the provider never reads it back, so every "
                 "preview shows a change (hashicorp/terraform-provider-aws#23335)")]),
    # -- alarms and their topics
    ("alarm-actions-of-another-region", aws_api.alarm_topic_region,
     changed(("lag", {"alarmActions": [f"arn:aws:sns:eu-west-1:{ACCOUNT}:a"], "okActions": [
         f"arn:aws:sns:eu-west-1:{ACCOUNT}:b"], "insufficientDataActions": [f"arn:aws:sns:eu-west-1:{ACCOUNT}:c"]})),
     [("lag", f"arn:aws:sns:eu-west-1:{ACCOUNT}:{t} is a topic of eu-west-1; CloudWatch alarms notify SNS topics of "
              "their own region (us-east-1)") for t in "abc"]),
    ("lag-alarm-at-the-idle-lag", aws_api.replica_lag_alarm, changed(("lag", {"threshold": 300})),
     [("lag", LAG_THRESHOLD.format(300))]),
    ("lag-alarm-above-the-idle-lag", aws_api.replica_lag_alarm, changed(("lag", {"threshold": 301})), []),
    ("lag-alarm-breaching-on-missing-data", aws_api.replica_lag_alarm,
     changed(("lag", {"treatMissingData": "breaching"})),
     [("lag", "treatMissingData breaching pages whenever the metric has a gap")]),
    ("other-alarms", aws_api.replica_lag_alarm, changed(extra=(
        alarm("cpu", metricName="CPUUtilization", threshold=80), alarm("other-namespace", namespace="Custom/RDS",
                                                                       threshold=1))), []),
    ("alarm-topic-without-key", aws_api.alarm_topic_key, changed(("topic", {"kmsMasterKeyId": MISSING})),
     [("topic", AWS_MANAGED_TOPIC_KEY.format("unset"))]),
    ("alarm-topic-aws-managed-key", aws_api.alarm_topic_key, changed(("topic", {"kmsMasterKeyId": "alias/aws/sns"})),
     [("topic", AWS_MANAGED_TOPIC_KEY.format("alias/aws/sns"))]),
    ("alarm-topic-key-without-cloudwatch-grant", aws_api.alarm_topic_key,
     changed(("topic", {"kmsMasterKeyId": key_arn()})),
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("alarm-topic-key-without-policy", aws_api.alarm_topic_key, changed(("alarm-key", {"policy": MISSING})),
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("alarm-topic-key-policy-not-json", aws_api.alarm_topic_key, changed(("alarm-key", {"policy": "{Statement"})),
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("alarm-topic-key-granted-to-every-principal", aws_api.alarm_topic_key,
     changed(("alarm-key", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*"}]})})),
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("alarm-topic-key-granted-to-services", aws_api.alarm_topic_key,
     changed(("alarm-key", {"policy": json.dumps({"Statement": [{"Effect": "Allow", "Principal": {
         "Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]}}]})})), []),
    ("alarm-topic-key-named-by-key-id", aws_api.alarm_topic_key,
     changed(("alarm-key", {"arn": MISSING, "keyId": "a1a1"}), ("topic", {"kmsMasterKeyId": "a1a1"}),
             ("data-key", {"keyId": "d1d1"}), ("logs", {"kmsKeyId": "d1d1"})), []),
    ("alarm-topic-key-shared", aws_api.alarm_topic_key,
     changed(("logs", {"kmsKeyId": ALARM_KEY}), ("primary", {"performanceInsightsKmsKeyId": ALARM_KEY}),
             ("same-region-replica", {"masterUserSecretKmsKeyId": ALARM_KEY}),
             extra=(resource(QUEUE, "queue", {"kmsMasterKeyId": ALARM_KEY}),)),
     [("topic", "the alarm topic's key also encrypts logs, primary, queue, same-region-replica; give the topic a key "
                "of its own or condition CloudWatch's grant on the topic")]),
    ("alarm-topic-key-named-by-key-id-without-grant", aws_api.alarm_topic_key,
     changed(("alarm-key", {"arn": MISSING, "keyId": "a1a1", "policy": "{}"}), ("topic", {"kmsMasterKeyId": "a1a1"})),
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("alarm-topics-each-reported", aws_api.alarm_topic_key,
     [resource(TOPIC, "quiet", {"arn": TOPIC_ARN + "-0", "kmsMasterKeyId": "alias/aws/sns"}),
      resource(TOPIC, "aws-managed", {"arn": TOPIC_ARN + "-1", "kmsMasterKeyId": "alias/aws/sns"}),
      resource(TOPIC, "no-grant", {"arn": TOPIC_ARN + "-2", "kmsMasterKeyId": key_arn()}),
      *changed(("lag", {"alarmActions": [f"{TOPIC_ARN}-{i}" for i in (1, 2)] + [TOPIC_ARN]}),
               ("logs", {"kmsKeyId": ALARM_KEY}))],
     [("aws-managed", AWS_MANAGED_TOPIC_KEY.format("alias/aws/sns")), ("no-grant", NO_CLOUDWATCH_GRANT),
      ("topic", "the alarm topic's key also encrypts logs; give the topic a key of its own or condition "
                "CloudWatch's grant on the topic")]),
    ("alarm-topics-after-one-of-another-stacks-key", aws_api.alarm_topic_key,
     [resource(TOPIC, "foreign-topic", {"arn": TOPIC_ARN + "-2", "kmsMasterKeyId": key_arn(key="foreign")}),
      *changed(("lag", {"okActions": [TOPIC_ARN + "-2"]}), ("alarm-key", {"policy": _alarm_key_policy()[:-2]}))],
     [("topic", NO_CLOUDWATCH_GRANT)]),
    ("topic-no-alarm-notifies", aws_api.alarm_topic_key,
     changed(("topic", {"kmsMasterKeyId": MISSING}), ("lag", {"alarmActions": [], "okActions": []})), []),
    # -- secrets
    ("secret-replica-without-key", aws_api.secret_replica_cmk,
     changed(("app-secret", {"replicas": [{"region": "eu-west-1"}, "not-a-replica",
                                          {"region": "ap-south-1", "kmsKeyId": "alias/aws/secretsmanager"}]})),
     [("app-secret", f"the replica in {r} has no customer-managed key: Secrets Manager would use aws/secretsmanager "
                     "there") for r in ("eu-west-1", "ap-south-1")]),
    ("secret-replica-key-of-another-region", aws_api.secret_replica_cmk,
     changed(("app-secret", {"replicas": [{"region": "eu-west-1", "kmsKeyId": key_arn()},
                                          {"region": "eu-west-1", "kmsKeyId": "alias/edumatrix-secrets"}]})),
     [("app-secret", "the replica in eu-west-1 names a key of us-east-1: a replica's key must be in its region")]),
    ("rotated-login-outside-rds-password", aws_api.rotation_rds_password, changed(without=("app-in-rds-password",)),
     [("app-rotation", NOT_IN_RDS_PASSWORD.format("feedback_app"))]),
    ("rotated-master-login", aws_api.rotation_rds_password,
     changed(("app-secret", {"tags": {"db-role": "edumatrix_admin"}}), without=("app-in-rds-password",)), []),
    ("rotated-secret-without-login-tag", aws_api.rotation_rds_password,
     changed(("app-secret", {"tags": {}}), without=("app-in-rds-password",)), []),
    ("rotated-login-of-a-secret-known-by-id", aws_api.rotation_rds_password,
     changed(("app-secret", {"arn": MISSING, "id": "sec-1"}), ("app-rotation", {"secretId": "sec-1"}),
             without=("app-in-rds-password",)),
     [("app-rotation", NOT_IN_RDS_PASSWORD.format("feedback_app"))]),
    ("rotated-login-granted-another-role", aws_api.rotation_rds_password,
     changed(("app-in-rds-password", {"grantRole": "rds_superuser"})),
     [("app-rotation", NOT_IN_RDS_PASSWORD.format("feedback_app"))]),
    ("restriction-named-in-capitals", aws_api.rotation_rds_password,
     changed(("params", {"parameters": _params(**{"rds.restrict_password_commands": MISSING, "RDS.Restrict_Password_"
                                                  "Commands": ("1", "pending-reboot")})}),
             without=("app-in-rds-password",)),
     [("app-rotation", NOT_IN_RDS_PASSWORD.format("feedback_app"))]),
    ("passwords-not-restricted", aws_api.rotation_rds_password,
     changed(("params", {"parameters": _params(**{"rds.restrict_password_commands": ("0", "pending-reboot")})}),
             without=("app-in-rds-password",)), []),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), CASES)
def test_the_aws_preflight_reports_exactly(policy: Any, resources: list[RecordedResource],
                                           expected: list[tuple[str, str]]) -> None:
    assert reports(policy, resources, config=CONFIG.get(policy.name)) == expected


def test_a_replica_of_another_stacks_managed_source_is_reported_from_policy_config() -> None:
    assert reports(aws_api.replica_source_managed_password, changed(without=("primary", "region-replica")),
                   config={"sourceManagesMasterPassword": True}) == [("same-region-replica", SOURCE_MANAGES)]


def test_the_missing_secret_copies_are_named_in_order() -> None:
    resources = changed(("app-secret", {"replicas": [{"region": "eu-west-1", "kmsKeyId": key_arn("eu-west-1")}]}))
    assert reports(aws_api.secret_replica_regions, resources,
                   config={"regions": ["us-west-2", "eu-west-1", "ap-south-1"]}) == [
        ("app-secret", "no copy in ap-south-1, us-west-2: a region stack there, once promoted, finds no credentials")]


def test_a_secret_needs_no_copy_unless_the_config_names_regions() -> None:
    assert reports(aws_api.secret_replica_regions, changed(("app-secret", {"replicas": MISSING}))) == []


def test_retain_on_delete_unknown_to_the_analyzer_says_who_checks_it(monkeypatch: pytest.MonkeyPatch) -> None:
    class AnalyzerOptions(gate.RecordedOptions):
        def __init__(self, res: RecordedResource) -> None:
            super().__init__(res)
            del self.retain_on_delete

    monkeypatch.setattr(gate, "_options", AnalyzerOptions)
    assert not_applicable(aws_api.backup_replication_retained, changed()) == (
        "the analyzer protocol does not carry retain_on_delete; the offline gate checks it")
