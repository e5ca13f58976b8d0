"""policy/replication.py: logical replication on; replicas' keys in the replica's region."""

from policy import replication
from tests.policy.fixtures import by_policy, instance, key_arn, parameter_group, replica, resource, run

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-test"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
CONFIG = {"replica-kms-key-in-region": {"defaultRegion": "us-east-1"}}


def test_platform_parameter_group_enables_logical_replication() -> None:
    assert run([instance(), parameter_group()], config=CONFIG, policies=replication.POLICIES) == []


def test_parameter_group_without_logical_replication_is_reported() -> None:
    group = parameter_group(**{"rds.logical_replication": "0"})
    assert by_policy(run([group], config=CONFIG, policies=replication.POLICIES)) == {
        "logical-replication-enabled": [group.urn]}


def test_cross_region_replica_with_a_key_of_its_region_passes() -> None:
    rep = replica(replicateSourceDb=SOURCE_ARN, region="eu-west-1", kmsKeyId=key_arn("eu-west-1"))
    assert run([instance(), rep], config=CONFIG, policies=replication.POLICIES) == []


def test_cross_region_replica_with_the_sources_key_is_reported() -> None:
    rep = replica(replicateSourceDb=SOURCE_ARN, region="eu-west-1", kmsKeyId=key_arn("us-east-1"))
    assert by_policy(run([instance(), rep], config=CONFIG, policies=replication.POLICIES)) == {
        "replica-kms-key-in-region": [rep.urn]}


def test_replica_region_comes_from_its_explicit_provider() -> None:
    provider = resource("pulumi:providers:aws", "eu-west-1", {"region": "eu-west-1"})
    rep = resource("aws:rds/instance:Instance", "edumatrix-test-eu",
                   {**replica().props, "replicateSourceDb": SOURCE_ARN, "kmsKeyId": key_arn("us-east-1")},
                   provider=f"{provider.urn}::provider-id")
    assert by_policy(run([instance(), provider, rep], config=CONFIG, policies=replication.POLICIES)) == {
        "replica-kms-key-in-region": [rep.urn]}


def test_replica_in_the_default_region_uses_the_stack_region() -> None:
    rep = replica(replicateSourceDb=SOURCE_ARN, kmsKeyId=key_arn("eu-west-1"))
    assert by_policy(run([instance(), rep], config=CONFIG, policies=replication.POLICIES)) == {
        "replica-kms-key-in-region": [rep.urn]}


def test_replicated_backups_with_a_key_of_another_region_are_reported() -> None:
    copy = resource(BACKUP_REPLICATION, "edumatrix-test-backups-eu", {
        "sourceDbInstanceArn": SOURCE_ARN, "kmsKeyId": key_arn("us-east-1"), "region": "eu-west-1"})
    assert by_policy(run([instance(), copy], config=CONFIG, policies=replication.POLICIES)) == {
        "replica-kms-key-in-region": [copy.urn]}


def test_without_a_provider_region_the_replica_is_placed_by_the_default_region_config() -> None:
    rep = replica(replicateSourceDb=SOURCE_ARN, kmsKeyId=key_arn("eu-west-1"))
    assert by_policy(run([instance(), rep], config=CONFIG, policies=replication.POLICIES, region=None)) == {
        "replica-kms-key-in-region": [rep.urn]}
