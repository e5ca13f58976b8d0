"""policy/rds.py, message by message: each row is one change of the compliant prod instance of
tests/policy/fixtures.py (or a compliant variant at a boundary) and everything the policy then reports, each
message written out in full as the user reads it in CI."""

from __future__ import annotations

from typing import Any

import pytest

from policy import rds
from tests.policy.fixtures import MISSING, instance, parameter_group, replica
from tests.policy.reports import reports, rows

DB = "edumatrix-test-db"
CA = "caCertIdentifier {!r} is not one of rds-ca-rsa2048-g1, rds-ca-rsa4096-g1, rds-ca-ecc384-g1"
DEFAULT_ADMIN = "username {!r} is a default admin name (or missing); choose a custom one"


CASES = rows(
    ("public-and-outside-the-subnet-group", rds.not_publicly_accessible,
     [instance(publiclyAccessible=True, dbSubnetGroupName=MISSING)],
     [(DB, "publiclyAccessible must be false (the instance must not get a public IP address)"),
      (DB, "dbSubnetGroupName is not set: the instance would land in the default VPC")]),
    ("public-flag-unset", rds.not_publicly_accessible, [instance(publiclyAccessible=MISSING)],
     [(DB, "publiclyAccessible must be false (the instance must not get a public IP address)")]),
    ("unencrypted", rds.storage_encrypted, [instance(storageEncrypted=False)], [(DB, "storageEncrypted must be true")]),
    ("single-az", rds.multi_az, [instance(multiAz=False)],
     [(DB, "multiAz must be true in this environment (standby in a second availability zone)")]),
    ("without-deletion-protection", rds.deletion_protection, [instance(deletionProtection=False)],
     [(DB, "deletionProtection must be true in this environment")]),
    ("without-enhanced-monitoring", rds.enhanced_monitoring, [instance(monitoringInterval=MISSING)],
     [(DB, "monitoringInterval is 0; enhanced monitoring needs one of 1, 5, 10, 15, 30, 60 seconds")]),
    ("monitoring-interval-rds-does-not-take", rds.enhanced_monitoring, [instance(monitoringInterval=45)],
     [(DB, "monitoringInterval is 45; enhanced monitoring needs one of 1, 5, 10, 15, 30, 60 seconds")]),
    ("monitoring-without-role", rds.enhanced_monitoring, [instance(monitoringRoleArn=MISSING)],
     [(DB, "monitoringRoleArn is not set: enhanced monitoring has no role to publish with")]),
    ("without-log-exports", rds.log_exports, [instance(enabledCloudwatchLogsExports=MISSING)],
     [(DB, "enabledCloudwatchLogsExports lacks postgresql, upgrade")]),
    ("without-iam-authentication", rds.iam_authentication, [instance(iamDatabaseAuthenticationEnabled=False)],
     [(DB, "iamDatabaseAuthenticationEnabled must be true")]),
    ("backups-below-the-environments-minimum", rds.automated_backups, [instance(backupRetentionPeriod=29)],
     [(DB, "backupRetentionPeriod is 29 days; this environment needs at least 30")]),
    ("backups-unset", rds.automated_backups, [instance(backupRetentionPeriod=MISSING)],
     [(DB, "backupRetentionPeriod is 0 days; this environment needs at least 30")]),
    ("backups-at-the-environments-minimum", rds.automated_backups, [instance(backupRetentionPeriod=30)], []),
    ("minor-upgrades-off", rds.auto_minor_version_upgrade, [instance(autoMinorVersionUpgrade=False)],
     [(DB, "autoMinorVersionUpgrade is false")]),
    ("snapshots-without-tags", rds.copy_tags_to_snapshot, [instance(copyTagsToSnapshot=False)],
     [(DB, "copyTagsToSnapshot must be true")]),
    ("default-admin-name", rds.custom_admin_username, [instance(username="postgres")],
     [(DB, DEFAULT_ADMIN.format("postgres"))]),
    ("admin-name-unset", rds.custom_admin_username, [instance(username=MISSING)], [(DB, DEFAULT_ADMIN.format(None))]),
    ("retired-ca", rds.current_ca, [instance(caCertIdentifier="rds-ca-2019")], [(DB, CA.format("rds-ca-2019"))]),
    ("ca-unset", rds.current_ca, [instance(caCertIdentifier=MISSING)], [(DB, CA.format(None))]),
    ("without-performance-insights", rds.performance_insights, [instance(performanceInsightsEnabled=False)],
     [(DB, "performanceInsightsEnabled must be true")]),
    ("without-parameter-group", rds.platform_parameter_group,
     [instance("mysql", engine="mysql", parameterGroupName=MISSING), instance(parameterGroupName=MISSING),
      parameter_group()],
     [(DB, "no parameterGroupName: the engine default group does not enforce TLS, pgaudit or logical replication")]),
    ("parameter-group-of-another-stack", rds.platform_parameter_group,
     [instance(parameterGroupName="default.postgres15"), parameter_group()],
     [(DB, "parameterGroupName 'default.postgres15' is not a parameter group of this stack, so its parameters "
           "cannot be checked")]),
    ("instance-without-engine-or-source", rds.not_publicly_accessible,
     [instance(engine=MISSING, publiclyAccessible=True)], []),
    ("replica-without-engine", rds.not_publicly_accessible, [replica(publiclyAccessible=True)],
     [("edumatrix-test-replica", "publiclyAccessible must be false (the instance must not get a public IP "
                                 "address)")]),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), CASES)
def test_the_rds_policies_report_exactly(policy: Any, resources: list[Any], expected: list[tuple[str, str]]) -> None:
    assert reports(policy, resources) == expected


CONFIGURED = rows(
    ("monitoring-slower-than-the-configured-interval", rds.enhanced_monitoring, {"maxIntervalSeconds": 30},
     [instance(monitoringInterval=60)],
     [(DB, "monitoringInterval is 60; enhanced monitoring needs one of 1, 5, 10, 15, 30 seconds")]),
    ("only-the-configured-log-types", rds.log_exports, {"logTypes": ["postgresql"]},
     [instance(enabledCloudwatchLogsExports=["postgresql"])], []),
    ("single-az-target-with-a-reason", rds.multi_az, {"singleAzTargets": {"edumatrix-test": "a cutover rehearsal"}},
     [instance(multiAz=False)], []),
)


@pytest.mark.parametrize(("policy", "config", "resources", "expected"), CONFIGURED)
def test_the_rds_policies_follow_their_config(policy: Any, config: dict[str, Any], resources: list[Any],
                                              expected: list[tuple[str, str]]) -> None:
    assert reports(policy, resources, config=config) == expected
