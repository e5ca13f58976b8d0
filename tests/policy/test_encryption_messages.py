"""policy/encryption.py, message by message: each row is one breaking input (or a compliant variant at a boundary)
and everything the policy then reports, each message written out in full as the user reads it in CI."""

from __future__ import annotations

from typing import Any

import pytest

from policy import encryption
from policy.base import BACKUP_REPLICATION, BACKUP_VAULT, KMS_KEY, LOG_GROUP, PARAMETER_GROUP, PROXY, SECRET
from tests.policy.fixtures import MISSING, instance, key_arn, parameter_group, replica
from tests.policy.reports import builder, reports, rows

DB, REPLICA, GROUP = "edumatrix-test-db", "edumatrix-test-replica", "edumatrix-test-pg-params"
SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"
NOT_SET = "{} is not set: AWS would use its own managed key instead of the platform's CMK"
AWS_MANAGED = "{} {!r} is an AWS-managed key; use the platform's customer-managed key"
FORCE_SSL = ("rds.force_ssl is {!r}; it must be '1' (before postgres15: set it; from there: leave it out, the default "
             "is 1)")
TLS_FLOOR = "ssl_min_protocol_version is {}; at least {} is required"

secret = builder(SECRET, {"name": "edumatrix-test/feedback_app", "kmsKeyId": key_arn()})
backups = builder(BACKUP_REPLICATION, {"sourceDbInstanceArn": SOURCE_ARN, "kmsKeyId": key_arn("eu-west-1"),
                                       "region": "eu-west-1"})
vault = builder(BACKUP_VAULT, {"name": "edumatrix-test", "kmsKeyArn": key_arn()})
log_group = builder(LOG_GROUP, {"name": "/aws/rds/instance/edumatrix-test/postgresql", "kmsKeyId": key_arn()})
key = builder(KMS_KEY, {"enableKeyRotation": True})
proxy = builder(PROXY, {"engineFamily": "POSTGRESQL", "requireTls": True})
group = builder(PARAMETER_GROUP, {"name": "edumatrix-test-params", "family": "postgres14", "parameters": [
    {"name": "rds.force_ssl", "value": "1"}, {"name": "ssl_min_protocol_version", "value": "TLSv1.2"}]})


CASES = rows(
    ("instance-without-key", encryption.storage_cmk, [instance(kmsKeyId=MISSING)], [(DB, NOT_SET.format("kmsKeyId"))]),
    ("instance-with-aws-managed-key", encryption.storage_cmk, [instance(kmsKeyId="alias/aws/rds")],
     [(DB, AWS_MANAGED.format("kmsKeyId", "alias/aws/rds"))]),
    ("same-region-replica-without-key", encryption.storage_cmk, [replica(replicateSourceDb=SOURCE_ARN)], []),
    ("same-region-replica-with-aws-managed-key", encryption.storage_cmk,
     [replica(replicateSourceDb=SOURCE_ARN, kmsKeyId="alias/aws/rds")],
     [(REPLICA, AWS_MANAGED.format("kmsKeyId", "alias/aws/rds"))]),
    ("mysql-with-performance-insights-without-key", encryption.performance_insights_cmk,
     [instance(engine="mysql", performanceInsightsKmsKeyId=MISSING)], []),
    ("performance-insights-without-key", encryption.performance_insights_cmk,
     [instance(performanceInsightsKmsKeyId=MISSING)], [(DB, NOT_SET.format("performanceInsightsKmsKeyId"))]),
    ("performance-insights-off-without-key", encryption.performance_insights_cmk,
     [instance(performanceInsightsEnabled=False, performanceInsightsKmsKeyId=MISSING)], []),
    ("secret-without-key", encryption.secrets_cmk, [secret("s", kmsKeyId=MISSING)],
     [("s", NOT_SET.format("kmsKeyId"))]),
    ("managed-master-secret-without-key", encryption.secrets_cmk, [instance(masterUserSecretKmsKeyId=MISSING)],
     [(DB, NOT_SET.format("masterUserSecretKmsKeyId"))]),
    ("managed-master-secret-with-aws-managed-key", encryption.secrets_cmk,
     [instance(masterUserSecretKmsKeyId="alias/aws/secretsmanager")],
     [(DB, AWS_MANAGED.format("masterUserSecretKmsKeyId", "alias/aws/secretsmanager"))]),
    ("backup-replication-without-key", encryption.backups_cmk, [backups("b", kmsKeyId=MISSING)],
     [("b", NOT_SET.format("kmsKeyId"))]),
    ("backup-vault-with-aws-managed-key", encryption.backups_cmk, [vault("v", kmsKeyArn="alias/aws/backup")],
     [("v", AWS_MANAGED.format("kmsKeyArn", "alias/aws/backup"))]),
    ("log-group-without-key", encryption.log_groups_cmk, [log_group("g", kmsKeyId=MISSING)],
     [("g", NOT_SET.format("kmsKeyId"))]),
    ("key-without-rotation", encryption.kms_key_rotation, [key("k", enableKeyRotation=MISSING)],
     [("k", "enableKeyRotation must be true (spec: encrypted with rotation)")]),
    ("asymmetric-key-without-rotation", encryption.kms_key_rotation,
     [key("k", enableKeyRotation=MISSING, customerMasterKeySpec="RSA_2048")], []),
    ("force-ssl-off", encryption.force_ssl, [parameter_group(**{"rds.force_ssl": "0"})],
     [(GROUP, FORCE_SSL.format("0"))]),
    ("force-ssl-left-out-from-postgres15", encryption.force_ssl, [parameter_group()], []),
    ("force-ssl-on-before-postgres15", encryption.force_ssl, [group("p")], []),
    ("force-ssl-left-out-before-postgres15", encryption.force_ssl,
     [group("p", parameters=["not-a-parameter", {"value": "1"}, {"name": "rds.force_ssl"}])],
     [("p", FORCE_SSL.format("unset"))]),
    ("force-ssl-of-a-family-without-version", encryption.force_ssl, [group("p", family="postgres", parameters=[])],
     [("p", FORCE_SSL.format("unset"))]),
    ("force-ssl-of-a-mysql-family", encryption.force_ssl, [group("p", family="mysql8.0", parameters=[])], []),
    ("tls-floor-unset", encryption.tls_minimum_version, [parameter_group(ssl_min_protocol_version=MISSING)],
     [(GROUP, TLS_FLOOR.format("unset", "TLSv1.2"))]),
    ("tls-floor-too-low", encryption.tls_minimum_version, [parameter_group(ssl_min_protocol_version="TLSv1.1")],
     [(GROUP, TLS_FLOOR.format("TLSv1.1", "TLSv1.2"))]),
    ("tls-floor-of-a-mysql-family", encryption.tls_minimum_version, [group("p", family="mysql8.0", parameters=[])],
     []),
    ("proxy-without-tls", encryption.proxy_require_tls, [proxy("x", requireTls=MISSING)],
     [("x", "requireTls must be true")]),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), CASES)
def test_the_encryption_policies_report_exactly(policy: Any, resources: list[Any],
                                                expected: list[tuple[str, str]]) -> None:
    assert reports(policy, resources) == expected


def test_a_replica_in_its_providers_region_needs_a_key_of_that_region() -> None:
    """No region input: the default provider's region (eu-west-1) makes the replica of a us-east-1 source
    cross-region, so it names its own key."""
    assert reports(encryption.storage_cmk, [replica(replicateSourceDb=SOURCE_ARN)], region="eu-west-1") == [
        (REPLICA, NOT_SET.format("kmsKeyId"))]


def test_the_tls_floor_follows_policy_config() -> None:
    assert reports(encryption.tls_minimum_version, [parameter_group()], config={"minimumVersion": "TLSv1.3"}) == [
        (GROUP, TLS_FLOOR.format("TLSv1.2", "TLSv1.3"))]
