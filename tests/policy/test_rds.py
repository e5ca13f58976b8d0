"""policy/rds.py: each instance policy passes the compliant instance and reports its own violation."""

from typing import Any

import pytest

from policy import rds
from tests.policy.fixtures import MISSING, by_policy, instance, parameter_group, replica, run


def test_compliant_prod_instance_passes_every_rds_policy() -> None:
    assert run([instance(), parameter_group()], policies=rds.POLICIES) == []


VIOLATIONS: list[tuple[str, dict[str, Any]]] = [
    ("rds-not-publicly-accessible", {"publiclyAccessible": True}),
    ("rds-not-publicly-accessible", {"dbSubnetGroupName": MISSING}),
    ("rds-storage-encrypted", {"storageEncrypted": False}),
    ("rds-storage-encrypted", {"storageEncrypted": MISSING}),
    ("rds-multi-az", {"multiAz": False}),
    ("rds-deletion-protection", {"deletionProtection": False}),
    ("rds-enhanced-monitoring", {"monitoringInterval": 0}),
    ("rds-enhanced-monitoring", {"monitoringRoleArn": MISSING}),
    ("rds-log-exports", {"enabledCloudwatchLogsExports": ["postgresql"]}),
    ("rds-iam-authentication", {"iamDatabaseAuthenticationEnabled": False}),
    ("rds-automated-backups", {"backupRetentionPeriod": 7}),
    ("rds-auto-minor-version-upgrade", {"autoMinorVersionUpgrade": False}),
    ("rds-copy-tags-to-snapshot", {"copyTagsToSnapshot": False}),
    ("rds-custom-admin-username", {"username": "postgres"}),
    ("rds-current-ca-certificate", {"caCertIdentifier": "rds-ca-2019"}),
    ("rds-performance-insights", {"performanceInsightsEnabled": False}),
    ("rds-platform-parameter-group", {"parameterGroupName": "default.postgres15"}),
    ("rds-platform-parameter-group", {"parameterGroupName": MISSING}),
]


@pytest.mark.parametrize(("policy", "overrides"), VIOLATIONS,
                         ids=[f"{p}:{','.join(o)}" for p, o in VIOLATIONS])
def test_violating_instance_is_reported_by_that_policy_only(policy: str, overrides: dict[str, Any]) -> None:
    inst = instance(**overrides)
    found = by_policy(run([inst, parameter_group()], policies=rds.POLICIES))
    assert found == {policy: [inst.urn]}


def test_dev_config_allows_single_az_without_deletion_protection() -> None:
    inst = instance(multiAz=False, deletionProtection=False, backupRetentionPeriod=7)
    assert run([inst, parameter_group()], environment="dev", policies=rds.POLICIES) == []


def test_prod_requires_thirty_days_of_backups_where_dev_accepts_seven() -> None:
    inst = instance(backupRetentionPeriod=7)
    assert by_policy(run([inst, parameter_group()], environment="prod", policies=rds.POLICIES)) == {
        "rds-automated-backups": [inst.urn]}
    assert run([inst, parameter_group()], environment="dev", policies=rds.POLICIES) == []


def test_same_region_replica_passes_without_primary_only_settings() -> None:
    assert run([instance(), replica(), parameter_group()], policies=rds.POLICIES) == []


def test_public_replica_is_reported() -> None:
    rep = replica(publiclyAccessible=True)
    assert by_policy(run([instance(), rep, parameter_group()], policies=rds.POLICIES)) == {
        "rds-not-publicly-accessible": [rep.urn]}


def test_non_postgres_instance_is_left_to_other_packs() -> None:
    mysql = instance(engine="mysql", publiclyAccessible=True, username="admin")
    assert run([mysql], policies=rds.POLICIES) == []


def test_a_replica_without_deletion_protection_is_reported_in_prod() -> None:
    rep = replica(deletionProtection=False)
    assert by_policy(run([instance(), rep, parameter_group()], policies=rds.POLICIES)) == {
        "rds-deletion-protection": [rep.urn]}
