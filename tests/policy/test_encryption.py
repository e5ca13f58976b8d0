"""policy/encryption.py: customer-managed keys where data rests, TLS where it moves."""

from typing import Any

import pytest

from edumatrix_db.offline.engine import RecordedResource
from policy import encryption
from tests.policy.fixtures import (
    MISSING,
    TAGS,
    by_policy,
    instance,
    key_arn,
    parameter_group,
    replica,
    resource,
    run,
)

SECRET = "aws:secretsmanager/secret:Secret"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
VAULT = "aws:backup/vault:Vault"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
PROXY = "aws:rds/proxy:Proxy"


def compliant_resources() -> list[RecordedResource]:
    return [
        instance(),
        parameter_group(),
        resource(SECRET, "feedback-app-secret", {"name": "edumatrix-test/feedback_app", "kmsKeyId": key_arn(),
                                                 "tags": dict(TAGS)}),
        resource(BACKUP_REPLICATION, "edumatrix-test-backups-eu", {
            "sourceDbInstanceArn": "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test",
            "kmsKeyId": key_arn("eu-west-1"), "retentionPeriod": 14, "region": "eu-west-1"}),
        resource(VAULT, "edumatrix-test-vault", {"name": "edumatrix-test", "kmsKeyArn": key_arn()}),
        resource(LOG_GROUP, "edumatrix-test-logs-postgresql", {"name": "/aws/rds/instance/edumatrix-test/postgresql",
                                                                "kmsKeyId": key_arn(), "retentionInDays": 365}),
        resource(KEY, "edumatrix-test-kms-key", {"enableKeyRotation": True,
                                                 "customerMasterKeySpec": "SYMMETRIC_DEFAULT"}),
        resource(PROXY, "edumatrix-test-proxy", {"engineFamily": "POSTGRESQL", "requireTls": True}),
    ]


def test_compliant_resources_pass_every_encryption_policy() -> None:
    assert run(compliant_resources(), policies=encryption.POLICIES) == []


def _replace(resources: list[RecordedResource], name: str, **overrides: Any) -> list[RecordedResource]:
    out: list[RecordedResource] = []
    for res in resources:
        if res.name == name:
            props = {**res.props, **overrides}
            res = resource(res.type, res.name, {k: v for k, v in props.items() if v is not MISSING})
        out.append(res)
    return out


VIOLATIONS: list[tuple[str, str, dict[str, Any]]] = [
    ("rds-storage-cmk", "edumatrix-test-db", {"kmsKeyId": MISSING}),
    ("rds-storage-cmk", "edumatrix-test-db", {"kmsKeyId": "alias/aws/rds"}),
    ("rds-performance-insights-cmk", "edumatrix-test-db", {"performanceInsightsKmsKeyId": MISSING}),
    ("secrets-cmk", "edumatrix-test-db", {"masterUserSecretKmsKeyId": MISSING}),
    ("secrets-cmk", "feedback-app-secret", {"kmsKeyId": MISSING}),
    ("secrets-cmk", "feedback-app-secret", {"kmsKeyId": "alias/aws/secretsmanager"}),
    ("backups-cmk", "edumatrix-test-backups-eu", {"kmsKeyId": MISSING}),
    ("backups-cmk", "edumatrix-test-vault", {"kmsKeyArn": MISSING}),
    ("log-groups-cmk", "edumatrix-test-logs-postgresql", {"kmsKeyId": MISSING}),
    ("kms-key-rotation", "edumatrix-test-kms-key", {"enableKeyRotation": False}),
    ("rds-proxy-require-tls", "edumatrix-test-proxy", {"requireTls": False}),
]


@pytest.mark.parametrize(("policy", "name", "overrides"), VIOLATIONS,
                         ids=[f"{p}:{n}:{','.join(o)}" for p, n, o in VIOLATIONS])
def test_violation_is_reported_by_that_policy_on_that_resource(policy: str, name: str,
                                                               overrides: dict[str, Any]) -> None:
    resources = _replace(compliant_resources(), name, **overrides)
    urn = next(r.urn for r in resources if r.name == name)
    assert by_policy(run(resources, policies=encryption.POLICIES)) == {policy: [urn]}


@pytest.mark.parametrize(("policy", "parameter", "value"), [
    ("rds-force-ssl", "rds.force_ssl", "0"),
    ("rds-tls-minimum-version", "ssl_min_protocol_version", "TLSv1.1"),
    ("rds-tls-minimum-version", "ssl_min_protocol_version", MISSING),
])
def test_parameter_group_without_tls_enforcement_is_reported(policy: str, parameter: str, value: object) -> None:
    overrides: dict[str, Any] = {parameter: value}  # Any as parameter_group takes it (see FORCE_SSL_LEFT_OUT)
    group = parameter_group(**overrides)
    assert by_policy(run([instance(), group], policies=encryption.POLICIES)) == {policy: [group.urn]}


# parameter_group's overrides (Any, as it takes them): typed so, mypy does not read the unpacked dict as a
# possible value of its `name`.
FORCE_SSL_LEFT_OUT: dict[str, Any] = {"rds.force_ssl": MISSING}


def test_force_ssl_left_out_on_postgres15_is_the_family_default_and_compliant() -> None:
    group = parameter_group(**FORCE_SSL_LEFT_OUT)
    assert run([instance(), group], policies=encryption.POLICIES) == []


def test_force_ssl_left_out_before_postgres15_is_reported() -> None:
    group = parameter_group(**FORCE_SSL_LEFT_OUT)
    older = resource(group.type, group.name, {**group.props, "family": "postgres14"})
    assert by_policy(run([instance(), older], policies=encryption.POLICIES)) == {"rds-force-ssl": [older.urn]}


def test_tls_1_2_meets_the_default_minimum() -> None:
    group = parameter_group(ssl_min_protocol_version="TLSv1.2")
    assert run([group], policies=encryption.POLICIES) == []


def test_a_tls_floor_in_lower_case_meets_the_minimum_as_postgresql_reads_it() -> None:
    group = parameter_group(ssl_min_protocol_version="tlsv1.3")
    assert run([group], policies=encryption.POLICIES) == []


def test_tls_minimum_follows_policy_config() -> None:
    group = parameter_group(ssl_min_protocol_version="TLSv1.2")
    config = {"rds-tls-minimum-version": {"minimumVersion": "TLSv1.3"}}
    assert by_policy(run([group], config=config, policies=encryption.POLICIES)) == {
        "rds-tls-minimum-version": [group.urn]}


def test_same_region_replica_inherits_its_sources_key() -> None:
    assert run([instance(), replica()], policies=encryption.POLICIES) == []


def test_cross_region_replica_without_its_own_key_is_reported() -> None:
    rep = replica(replicateSourceDb="arn:aws:rds:us-east-1:123456789012:db:edumatrix-test", region="eu-west-1")
    assert by_policy(run([instance(), rep], policies=encryption.POLICIES)) == {"rds-storage-cmk": [rep.urn]}


def _rotation(props: dict) -> list[str]:
    key = resource("aws:kms/key:Key", "k", props)
    return [v.message for v in run([key], policies=[encryption.kms_key_rotation])]


def test_a_symmetric_key_without_rotation_is_refused_whether_or_not_its_spec_is_written() -> None:
    assert _rotation({"enableKeyRotation": False}) == _rotation(
        {"enableKeyRotation": False, "customerMasterKeySpec": "SYMMETRIC_DEFAULT"}) == [
        "enableKeyRotation must be true (spec: encrypted with rotation)"]


def test_an_asymmetric_key_cannot_rotate_and_is_not_asked_to() -> None:
    assert _rotation({"enableKeyRotation": False, "customerMasterKeySpec": "RSA_2048"}) == []
