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
from tests.policy.test_lambdas import NAME, policy_document, replaced

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"

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
        "rds.force_ssl is '0'; it must be '1'"),
    "rds-tls-minimum-version": (lambda: [parameter_group(ssl_min_protocol_version="TLSv1.2")],
        'ssl_min_protocol_version is TLSv1.2; at least TLSv1.3 is required'),
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
    "rds-backup-plan-declared": (lambda: [instance()],
        'instance edumatrix-test is not selected by any AWS Backup plan'),
    "rds-backup-plan-coverage": (lambda: [instance(), resource("aws:backup/plan:Plan", "plan",
                                                              {"name": "plan", "tags": dict(TAGS)})],
        'instance edumatrix-test is not selected by any AWS Backup plan'),
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
        "every resource (\"*\" is allowed only for the ENI actions of a VPC function and for PutMetricData "
        "conditioned on cloudwatch:namespace)"),
    "scheduler-role-least-privilege": (lambda: replaced(f"{NAME}-scheduler-policy", policy=policy_document(
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "*"})),
        "schedule role edumatrix-test-ops-runner-scheduler-role may lambda:InvokeFunction on *: only "
        "lambda:InvokeFunction on the target function"),
}


def test_every_policy_of_the_pack_has_an_example_it_refuses():
    # The ops runner's Lambda policies have theirs in tests/policy/test_lambdas.py (VIOLATIONS, run through the
    # same gate evaluation, each asserted to be reported by exactly that policy).
    from tests.policy.test_lambdas import VIOLATIONS

    assert set(REFUSED) | {policy for policy, _, _ in VIOLATIONS} == {p.name for p in POLICIES}


@pytest.mark.parametrize("policy", sorted(REFUSED))
def test_the_policy_refuses_its_example_saying_why(policy):
    resources, message = REFUSED[policy]
    assert [v.message for v in run(resources()) if v.policy == policy] == [message]
