"""policy/replication.py, message by message: each breaking input and the whole message the user reads in CI."""

from __future__ import annotations

from policy import replication
from policy.base import BACKUP_REPLICATION
from tests.policy.fixtures import MISSING, key_arn, parameter_group, replica, resource
from tests.policy.reports import reports

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"


def test_a_parameter_group_without_logical_replication_says_what_extraction_needs() -> None:
    group = parameter_group("edumatrix-test-pg-params", **{"rds.logical_replication": MISSING})
    assert reports(replication.logical_replication, [group]) == [
        ("edumatrix-test-pg-params", "rds.logical_replication must be 1: extracting a service to its own instance "
                                     "replicates its schema logically")]


def test_a_key_of_another_region_is_named_with_what_uses_it() -> None:
    copy = resource(BACKUP_REPLICATION, "backups-eu", {"sourceDbInstanceArn": SOURCE_ARN, "kmsKeyId": key_arn(),
                                                       "region": "eu-west-1"})
    rep = replica("replica-eu", replicateSourceDb=SOURCE_ARN, region="eu-west-1", kmsKeyId=key_arn())
    assert reports(replication.replica_key_in_region, [copy, rep]) == [
        ("backups-eu", "automated-backup replication in eu-west-1 uses kmsKeyId from us-east-1; a KMS key only "
                       "encrypts in its own region"),
        ("replica-eu", "replica in eu-west-1 uses kmsKeyId from us-east-1; a KMS key only encrypts in its own region")]
