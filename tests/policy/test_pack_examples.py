"""Every policy of the pack refuses at least one example, through the gate's own evaluation: a policy whose
validator stopped reporting (or never reported) fails here, and a new policy without an example fails too.

(This replaces a check that counted a policy as exercised when its name appeared in the test sources.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from policy.pack import POLICIES
from tests.policy.fixtures import (
    MISSING,
    TAGS,
    grant,
    instance,
    key_arn,
    parameter_group,
    replica,
    resource,
    role,
    run,
    service_access,
)

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"

# policy -> resources with exactly that policy's kind of mistake (evaluated with the prod policy config)
REFUSED: dict[str, Callable[[], list]] = {
    "rds-not-publicly-accessible": lambda: [instance(publiclyAccessible=True)],
    "rds-storage-encrypted": lambda: [instance(storageEncrypted=False)],
    "rds-multi-az": lambda: [instance(multiAz=False)],
    "rds-deletion-protection": lambda: [instance(deletionProtection=False)],
    "rds-enhanced-monitoring": lambda: [instance(monitoringInterval=0)],
    "rds-log-exports": lambda: [instance(enabledCloudwatchLogsExports=["postgresql"])],
    "rds-iam-authentication": lambda: [instance(iamDatabaseAuthenticationEnabled=False)],
    "rds-automated-backups": lambda: [instance(backupRetentionPeriod=7)],
    "rds-auto-minor-version-upgrade": lambda: [instance(autoMinorVersionUpgrade=False)],
    "rds-copy-tags-to-snapshot": lambda: [instance(copyTagsToSnapshot=False)],
    "rds-custom-admin-username": lambda: [instance(username="postgres")],
    "rds-current-ca-certificate": lambda: [instance(caCertIdentifier="rds-ca-2019")],
    "rds-performance-insights": lambda: [instance(performanceInsightsEnabled=False)],
    "rds-platform-parameter-group": lambda: [instance(parameterGroupName="default.postgres15")],
    "rds-storage-cmk": lambda: [instance(kmsKeyId="alias/aws/rds")],
    "rds-performance-insights-cmk": lambda: [instance(performanceInsightsKmsKeyId=MISSING)],
    "secrets-cmk": lambda: [resource("aws:secretsmanager/secret:Secret", "s", {"name": "s", "tags": dict(TAGS)})],
    "backups-cmk": lambda: [resource("aws:backup/vault:Vault", "v", {"name": "v", "tags": dict(TAGS)})],
    "log-groups-cmk": lambda: [resource("aws:cloudwatch/logGroup:LogGroup", "l", {"name": "l", "tags": dict(TAGS)})],
    "kms-key-rotation": lambda: [resource("aws:kms/key:Key", "k", {"enableKeyRotation": False, "tags": dict(TAGS)})],
    "rds-force-ssl": lambda: [parameter_group(**{"rds.force_ssl": "0"})],
    "rds-tls-minimum-version": lambda: [parameter_group(ssl_min_protocol_version="TLSv1.2")],
    "rds-proxy-require-tls": lambda: [resource("aws:rds/proxy:Proxy", "p", {"requireTls": False, "tags": dict(TAGS)})],
    "rds-pgaudit": lambda: [parameter_group(shared_preload_libraries="pg_stat_statements")],
    "rds-query-logging": lambda: [parameter_group(log_min_duration_statement="-1")],
    "service-grants-confined": lambda: [*service_access("feedback"),
                                        grant("cross", "feedback_app", "statistics_schema", ["USAGE"])],
    "service-role-attributes": lambda: [role("feedback_migrator", superuser=True)],
    "app-role-statement-timeout": lambda: [role("feedback_app")],
    "connection-budget": lambda: [role("feedback_app", statementTimeout=5000, connectionLimit=990),
                                  parameter_group()],
    "logical-replication-enabled": lambda: [parameter_group(**{"rds.logical_replication": "0"})],
    "replica-kms-key-in-region": lambda: [instance(), replica(replicateSourceDb=SOURCE_ARN, region="eu-west-1",
                                                              kmsKeyId=key_arn("us-east-1"))],
    "rds-backup-plan-declared": lambda: [instance()],
    "rds-backup-plan-coverage": lambda: [instance(), resource("aws:backup/plan:Plan", "plan",
                                                              {"name": "plan", "tags": dict(TAGS)})],
    "required-tags": lambda: [instance(tags={})],
}


def test_every_policy_of_the_pack_has_an_example_it_refuses():
    assert set(REFUSED) == {p.name for p in POLICIES}


@pytest.mark.parametrize("policy", sorted(REFUSED))
def test_the_policy_refuses_its_example(policy):
    assert policy in {v.policy for v in run(REFUSED[policy]())}
