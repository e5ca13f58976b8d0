"""The exact words of the region-stack and secret-replica checks (config/regions.py): what a person reads when a
region stack, or the primary it replicates, is wrong. One row per check: the edit that breaks a copy of the
project's stack files, the stack loaded, and its one problem as (key, message, fix)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_stack
from config.regions import partition_of
from config.settings import ExtractionPoolerSettings
from tests.region_support import (
    add_secret_replica_region,
    copy_stacks,
    edit_stack,
    only_problem,
    region_stack_from_template,
)
from tests.region_support import write_stack as write_text

EU = "prod-eu-west-1"
CENTRAL = "prod-eu-central-1"
PRIMARY = "edumatrix-db:region.primaryStack"
SECRETS = "edumatrix-db:secrets.replicaRegions"
Change = Callable[[Path], object]  # breaks something in a copy of the stack files (what it returns is unused)


def edit(name: str, old: str, new: str) -> Change:
    return lambda stacks: edit_stack(stacks, name, old, new)


def add_central_region_stack(stacks: Path) -> None:
    add_secret_replica_region(stacks, "eu-central-1")
    write_text(stacks, CENTRAL, region_stack_from_template("eu-central-1"))


def remove(*names: str) -> Change:
    def delete(stacks: Path) -> None:
        for n in names:
            (stacks / f"Pulumi.{n}.yaml").unlink()
    return delete


def steps(*changes: Change) -> Change:
    def apply(stacks: Path) -> None:
        for change in changes:
            change(stacks)
    return apply


CASES = [
    pytest.param(
        edit("local", "config:\n", "config:\n  edumatrix-db:region:\n    primaryStack: prod\n"), "local",
        ("edumatrix-db:region", "a local stack cannot be a region stack",
         "remove the key, or set edumatrix-db:environment and aws:region"),
        id="local-stack-as-region-stack"),
    pytest.param(
        edit(EU, "config:\n", "config:\n  edumatrix-db:instance:\n    instanceClass: db.r6g.large\n"), EU,
        ("edumatrix-db:instance", "a region stack does not declare an instance of its own",
         "remove the key: the replica runs with the instance settings of 'prod' (override the class with "
         "edumatrix-db:region.instanceClass)"),
        id="region-stack-declaring-an-instance"),
    pytest.param(
        edit(EU, "config:\n", "config:\n  edumatrix-db:replicas:\n    count: 1\n"), EU,
        ("edumatrix-db:replicas.count", "same-region replicas of a region stack are not supported",
         "remove the key; declare read replicas on the primary stack"),
        id="region-stack-with-same-region-replicas"),
    pytest.param(
        edit(EU, "primaryStack: prod", f"primaryStack: {EU}"), EU,
        (PRIMARY, "a stack cannot replicate itself", "name the stack that holds the primary instance, e.g. prod"),
        id="replicating-itself"),
    pytest.param(
        edit(EU, "primaryStack: prod", "primaryStack: zzzzzz"), EU,
        (PRIMARY, "no stack named 'zzzzzz' (no stacks/Pulumi.zzzzzz.yaml)",
         "stacks with a primary instance: dev, prod, staging"),
        id="missing-primary-like-no-stack"),
    pytest.param(
        steps(edit(EU, "primaryStack: prod", "primaryStack: zzzzzz"), remove("dev", "prod", "staging")), EU,
        (PRIMARY, "no stack named 'zzzzzz' (no stacks/Pulumi.zzzzzz.yaml)", "stacks with a primary instance: none"),
        id="missing-primary-and-no-stack-with-a-primary"),
    pytest.param(
        # a sibling file that cannot be read is not known to be a region or local stack: it is listed
        steps(edit(EU, "primaryStack: prod", "primaryStack: zzzzzz"),
              lambda stacks: write_text(stacks, "broken", "config: [\n")), EU,
        (PRIMARY, "no stack named 'zzzzzz' (no stacks/Pulumi.zzzzzz.yaml)",
         "stacks with a primary instance: broken, dev, prod, staging"),
        id="missing-primary-next-to-an-unreadable-stack-file"),
    pytest.param(
        edit(EU, "primaryStack: prod", "primaryStack: local"), EU,
        (PRIMARY, "'local' is a local stack: nothing to replicate", "name an AWS stack, e.g. prod"),
        id="local-primary"),
    pytest.param(
        steps(add_central_region_stack, edit(CENTRAL, "primaryStack: prod", f"primaryStack: {EU}")), CENTRAL,
        (PRIMARY, f"'{EU}' is itself a region stack",
         "name the stack that holds the primary instance ('prod'); chained replicas are not supported"),
        id="chained-replica"),
    pytest.param(
        edit(EU, "aws:region: eu-west-1", "aws:region: cn-north-1"), EU,
        ("aws:region", "cn-north-1 is in partition aws-cn, the primary's us-east-1 in aws; RDS cannot replicate "
         "across", "choose a region in the primary's partition"),
        id="replica-in-the-china-partition"),
    pytest.param(
        edit(EU, "aws:region: eu-west-1", "aws:region: us-gov-west-1"), EU,
        ("aws:region", "us-gov-west-1 is in partition aws-us-gov, the primary's us-east-1 in aws; RDS cannot "
         "replicate across", "choose a region in the primary's partition"),
        id="replica-in-govcloud"),
    pytest.param(
        # the sibling's promote written as text is still read as a promotion
        steps(add_central_region_stack, edit(EU, "promote: false", 'promote: "true"'),
              edit(CENTRAL, "promote: false", "promote: true")), CENTRAL,
        ("edumatrix-db:region.promote",
         "stack 'prod-eu-west-1' is already the promoted primary of 'prod'; at most one region is primary",
         "set edumatrix-db:region.promote: false here, or first demote 'prod-eu-west-1' (see "
         "docs/failover-runbook.md)"),
        id="second-promotion-beside-one-written-as-text"),
    pytest.param(
        edit(EU, "aws:region: eu-west-1",
             "aws:region: eu-west-1\n  edumatrix-db:secrets: {replicaRegions: [us-west-2]}"),
        EU,
        (SECRETS, "a region stack's credentials are its primary's copies",
         "remove the key; list this region in the secrets.replicaRegions of prod"),
        id="region-stack-listing-secret-regions"),
]


@pytest.mark.parametrize(("change", "stack", "expected"), CASES)
def test_a_region_or_secret_replica_mistake_is_told_in_these_words(tmp_path: Path, change: Change, stack: str,
                                                                   expected: tuple[str, str, str]) -> None:
    stacks = copy_stacks(tmp_path)
    change(stacks)
    assert only_problem(stacks, stack) == expected


@pytest.mark.parametrize(("region", "message", "fix"), [
    ("eu-wset-1", "'eu-wset-1' is not an AWS region", "did you mean 'eu-west-1'?"),
    ("zzzzzz", "'zzzzzz' is not an AWS region", "use a region name, e.g. eu-west-1"),
    ("us-east-1", "us-east-1 is this stack's own region: the secrets are there", "remove us-east-1"),
    ("cn-north-1", "Secrets Manager does not replicate from us-east-1 into cn-north-1 (another partition)",
     "remove cn-north-1"),
])
def test_a_secret_region_the_primary_cannot_copy_into_is_told_in_these_words(tmp_path: Path, region: str,
                                                                              message: str, fix: str) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "      - eu-west-1\n", f"      - eu-west-1\n      - {region}\n")
    assert only_problem(stacks, "prod") == (SECRETS, message, fix)


@pytest.mark.parametrize(("region", "partition"), [
    ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"),
    ("us-gov-east-1", "aws-us-gov"), ("us-east-1", "aws"), ("eu-west-1", "aws")])
def test_each_region_belongs_to_its_partition(region: str, partition: str) -> None:
    assert partition_of(region) == partition


def problems(stacks: Path, name: str) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks)
    return [(p.key, p.message, p.fix) for p in caught.value.problems]


def rds_managed_primary_without_replicas_or_secret_regions(stacks: Path) -> None:
    edit_stack(stacks, "prod", "  edumatrix-db:replicas:\n    count: 2\n", "")
    edit_stack(stacks, "prod", "  edumatrix-db:secrets:\n    replicaRegions:\n      - eu-west-1\n", "")
    edit_stack(stacks, "prod", "  edumatrix-db:instance:\n",
               "  edumatrix-db:instance:\n    masterPassword: rds-managed\n")


def not_listed(stack: str, region: str) -> tuple[str, str, str]:
    return (SECRETS, f"stacks/Pulumi.{stack}.yaml replicates this stack into {region}, which is not listed: after a "
            "promotion there, no credentials would be found in that region",
            f"add {region} to {SECRETS} and `pulumi up` this stack before {stack}")


def test_an_rds_managed_password_under_a_region_stack_names_the_stack_that_replicates_it(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    rds_managed_primary_without_replicas_or_secret_regions(stacks)
    assert problems(stacks, "prod") == [
        ("edumatrix-db:instance.masterPassword", "prod-eu-west-1 replicates this instance, and RDS cannot create a "
         "replica of an instance whose master password it manages (ManageMasterUserPassword)",
         "remove masterPassword (default platform)"),
        not_listed(EU, "eu-west-1")]


def test_an_rds_managed_password_under_two_region_stacks_names_both(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    rds_managed_primary_without_replicas_or_secret_regions(stacks)
    write_text(stacks, CENTRAL, region_stack_from_template("eu-central-1"))
    assert problems(stacks, "prod") == [
        ("edumatrix-db:instance.masterPassword", "prod-eu-central-1, prod-eu-west-1 replicate this instance, and RDS "
         "cannot create a replica of an instance whose master password it manages (ManageMasterUserPassword)",
         "remove masterPassword (default platform)"),
        not_listed(CENTRAL, "eu-central-1"), not_listed(EU, "eu-west-1")]


def test_a_primary_that_does_not_validate_is_named_with_its_first_problem(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "  edumatrix-db:owner: platform-team\n", "  edumatrix-db:owner: platform-team\n"
               "  edumatrix-db:zzzzqqq: 1\n  edumatrix-db:qqqqzzz: 2\n")
    assert only_problem(stacks, EU) == (
        PRIMARY, "the primary stack 'prod' does not validate",
        f"fix it first: {stacks}/Pulumi.prod.yaml: edumatrix-db:zzzzqqq: unknown key\n    fix: allowed: alarms, "
        "backups, connections, dataClassification, environment, events, extractionPooler, extractions, instance, "
        "local, network, opsRunner, owner, region, replicas, secrets, services, tags")


def test_a_region_stacks_instance_is_its_primarys_without_the_primarys_identifier(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "  edumatrix-db:instance:\n",
               "  edumatrix-db:instance:\n    identifier: edumatrix-main\n")
    replica = load_stack(EU, stacks).replica_instance()
    assert (replica.identifier, replica.instance_class, replica.allocated_storage_gb) == (None, "db.r6g.2xlarge", 500)


def test_a_region_stack_may_run_its_replica_on_another_class(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, EU, "    promote: false\n", "    promote: false\n    instanceClass: db.r6g.large\n")
    assert load_stack(EU, stacks).replica_instance().instance_class == "db.r6g.large"


def test_only_a_region_stack_has_a_replica_instance() -> None:
    with pytest.raises(ValueError, match=r"^dev is not a region stack with a resolved primary$"):
        load_stack("dev").replica_instance()


def test_a_pooler_without_settings_misses_its_image_digest_certificate_and_addresses() -> None:
    assert ExtractionPoolerSettings().missing() == ("imageRepository", "imageDigest", "tlsSecretArn", "nlbAddresses")


REGIONS = ("us-east-1, us-east-2, us-west-1, us-west-2, af-south-1, ap-east-1, ap-east-2, ap-south-1, ap-south-2, "
           "ap-southeast-1, ap-southeast-2, ap-southeast-3, ap-southeast-4, ap-southeast-5, ap-southeast-6, "
           "ap-southeast-7, ap-northeast-1, ap-northeast-2, ap-northeast-3, ca-central-1, ca-west-1, eu-central-1, "
           "eu-central-2, eu-west-1, eu-west-2, eu-west-3, eu-south-1, eu-south-2, eu-north-1, il-central-1, "
           "me-south-1, me-central-1, mx-central-1, sa-east-1, us-gov-east-1, us-gov-west-1, cn-north-1, "
           "cn-northwest-1")


@pytest.mark.parametrize(("region", "fix"), [
    ("eu-wset-1", f"did you mean 'eu-west-1'? regions: {REGIONS}"),
    ("zzzzzz", f"regions: {REGIONS}"),
])
def test_an_unknown_aws_region_is_told_every_region(tmp_path: Path, region: str, fix: str) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "dev", "aws:region: us-east-1", f"aws:region: {region}")
    assert only_problem(stacks, "dev") == ("aws:region", f"{region!r} is not an AWS region", fix)
