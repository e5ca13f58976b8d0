"""Bad region-stack input fails before any resource is declared, with the file, the key and a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.errors import ConfigError, Problem
from config.loader import load_stack, settings_from_config
from config.regions import AWS_REGIONS, partition_of
from edumatrix_db.offline.engine import Planner
from tests.region_support import (
    add_secret_replica_region,
    copy_stacks,
    edit_stack,
    region_stack_from_template,
    write_stack,
)

EU = "prod-eu-west-1"


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    return copy_stacks(tmp_path)


def _only_problem(stacks: Path, name: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        load_stack(name, stacks)
    assert len(caught.value.problems) == 1, caught.value.render()
    return caught.value.problems[0]


def test_an_unknown_region_name_is_rejected_with_a_suggestion(stacks: Path) -> None:
    edit_stack(stacks, EU, "aws:region: eu-west-1", "aws:region: eu-wset-1")
    problem = _only_problem(stacks, EU)
    assert (problem.source.endswith(f"Pulumi.{EU}.yaml"), problem.key) == (True, "aws:region")
    assert problem.message == "'eu-wset-1' is not an AWS region"
    assert problem.fix.startswith("did you mean 'eu-west-1'?")


def test_an_unknown_region_in_a_primary_stack_is_rejected_too(stacks: Path) -> None:
    edit_stack(stacks, "staging", "aws:region: us-east-1", "aws:region: us-east-7")
    assert _only_problem(stacks, "staging").key == "aws:region"


def test_a_replica_in_its_primarys_own_region_is_rejected(stacks: Path) -> None:
    edit_stack(stacks, EU, "aws:region: eu-west-1", "aws:region: us-east-1")
    problem = _only_problem(stacks, EU)
    assert problem.key == "aws:region"
    assert "primary's own region (us-east-1)" in problem.message
    assert "edumatrix-db:replicas.count" in problem.fix


def test_a_region_stack_naming_a_missing_primary_stack_is_rejected(stacks: Path) -> None:
    edit_stack(stacks, EU, "primaryStack: prod", "primaryStack: prdo")
    problem = _only_problem(stacks, EU)
    assert problem.key == "edumatrix-db:region.primaryStack"
    assert problem.message == "no stack named 'prdo' (no stacks/Pulumi.prdo.yaml)"
    assert problem.fix == "did you mean 'prod'? stacks with a primary instance: dev, prod, staging"


def test_promotion_while_another_region_is_primary_is_rejected(stacks: Path) -> None:
    edit_stack(stacks, EU, "promote: false", "promote: true")
    add_secret_replica_region(stacks, "eu-central-1")
    write_stack(stacks, "prod-eu-central-1",
                region_stack_from_template("eu-central-1").replace("promote: false", "promote: true"))
    problem = _only_problem(stacks, "prod-eu-central-1")
    assert problem.key == "edumatrix-db:region.promote"
    assert problem.message == ("stack 'prod-eu-west-1' is already the promoted primary of 'prod'; at most one "
                               "region is primary")


def test_one_promoted_region_next_to_unpromoted_ones_is_accepted(stacks: Path) -> None:
    edit_stack(stacks, EU, "promote: false", "promote: true")
    add_secret_replica_region(stacks, "eu-central-1")
    write_stack(stacks, "prod-eu-central-1", region_stack_from_template("eu-central-1"))
    assert load_stack(EU, stacks).region.promote is True  # type: ignore[union-attr]
    assert load_stack("prod-eu-central-1", stacks).region.promote is False  # type: ignore[union-attr]


def test_a_region_stack_cannot_declare_the_shared_instance(stacks: Path) -> None:
    edit_stack(stacks, EU, "config:\n", "config:\n  edumatrix-db:instance:\n    instanceClass: db.r6g.large\n")
    problem = _only_problem(stacks, EU)
    assert problem.key == "edumatrix-db:instance"
    assert "region.instanceClass" in problem.fix


def test_a_region_stack_cannot_replicate_another_region_stack(stacks: Path) -> None:
    write_stack(stacks, "prod-eu-central-1",
                region_stack_from_template("eu-central-1").replace("primaryStack: prod", f"primaryStack: {EU}"))
    problem = _only_problem(stacks, "prod-eu-central-1")
    assert problem.key == "edumatrix-db:region.primaryStack"
    assert problem.message == f"'{EU}' is itself a region stack"


def test_a_region_stack_cannot_replicate_itself(stacks: Path) -> None:
    edit_stack(stacks, EU, "primaryStack: prod", f"primaryStack: {EU}")
    assert _only_problem(stacks, EU).message == "a stack cannot replicate itself"


def test_a_region_stack_keeps_its_primarys_environment(stacks: Path) -> None:
    edit_stack(stacks, EU, "primaryStack: prod", "primaryStack: staging")
    add_secret_replica_region(stacks, "eu-west-1", primary="staging")
    problem = _only_problem(stacks, EU)
    assert problem.key == "edumatrix-db:environment"
    assert problem.fix == "set edumatrix-db:environment: staging"


def test_a_replica_cannot_cross_partitions(stacks: Path) -> None:
    edit_stack(stacks, EU, "aws:region: eu-west-1", "aws:region: cn-north-1")
    problem = _only_problem(stacks, EU)
    assert problem.key == "aws:region"
    assert "cannot replicate across" in problem.message


def test_a_typo_in_the_region_section_names_the_right_key(stacks: Path) -> None:
    edit_stack(stacks, EU, "lagThresholdSeconds: 600", "lagTresholdSeconds: 600")
    problem = _only_problem(stacks, EU)
    assert problem.key == "edumatrix-db:region.lagTresholdSeconds"
    assert problem.fix.startswith("did you mean 'lagThresholdSeconds'?")


def test_the_planner_refuses_a_bad_region_stack_before_running_anything(stacks: Path) -> None:
    edit_stack(stacks, EU, "primaryStack: prod", "primaryStack: prdo")
    planner = Planner(stacks)
    with pytest.raises(ConfigError, match=r"Pulumi\.prod-eu-west-1\.yaml: edumatrix-db:region\.primaryStack"):
        planner.plan(EU)
    assert planner._cache == {}  # nothing was planned, not even the (misnamed) primary


# prod stacks must name who is paged (config/monitoring.py)
PAGED = '{"subscriptions": [{"protocol": "email", "endpoint": "dba-oncall@edumatrix.example"}]}'


def test_the_program_reads_the_primary_from_the_stacks_dir_it_is_given(stacks: Path) -> None:
    config = {"aws:region": "eu-west-1", "edumatrix-db:environment": "prod",
              "edumatrix-db:region": '{"primaryStack": "prod"}',
              "edumatrix-db:alarms": PAGED,
              "edumatrix-db:network": '{"vpcId": "vpc-0e1b2c3d4e5f60718", "subnetIds": '
                                      '["subnet-0e1b2c3d4e5f60001", "subnet-0e1b2c3d4e5f60002"], '
                                      '"allowedCidrs": ["10.30.0.0/16"]}'}
    (stacks / "Pulumi.prod.yaml").rename(stacks / "Pulumi.main.yaml")
    with pytest.raises(ConfigError, match="no stack named 'prod'"):
        settings_from_config(config, stack="x", source="x.yaml", stacks_dir=stacks)
    assert settings_from_config(config, stack="x", source="x.yaml").primary is not None  # the project's stacks/


def test_the_region_list_has_no_duplicates_and_knows_the_regions_in_use() -> None:
    assert len(set(AWS_REGIONS)) == len(AWS_REGIONS)
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(AWS_REGIONS)


def test_the_local_stack_cannot_ask_for_read_replicas(stacks: Path) -> None:
    edit_stack(stacks, "local", "config:\n", "config:\n  edumatrix-db:replicas:\n    count: 1\n")
    assert _only_problem(stacks, "local").key == "edumatrix-db:replicas.count"


# A VPC of its own: reusing another region stack's ids is refused (a VPC exists in one region only).
_REGION_STACK = {
    "edumatrix-db:environment": "prod",
    "edumatrix-db:region": '{"primaryStack": "prod"}',
    "edumatrix-db:alarms": PAGED,
    "edumatrix-db:network": '{"vpcId": "vpc-0f1b2c3d4e5f60718", "subnetIds": ["subnet-0f1b2c3d4e5f60001", '
                            '"subnet-0f1b2c3d4e5f60002"], "allowedCidrs": ["10.30.0.0/16"]}',
}


@given(st.sampled_from([r for r in AWS_REGIONS if partition_of(r) == "aws" and r != "us-east-1"]))
@settings(max_examples=25, deadline=None)
def test_any_other_region_of_the_primarys_partition_is_accepted(region: str) -> None:
    loaded = settings_from_config({**_REGION_STACK, "aws:region": region}, stack="prod-x", source="x.yaml")
    assert loaded.primary is not None
    assert (loaded.primary.stack, loaded.primary.region) == ("prod", "us-east-1")


def test_a_region_stack_listing_secret_regions_is_told_its_credentials_are_the_primarys_copies(
        stacks: Path) -> None:
    edit_stack(stacks, EU, "aws:region: eu-west-1",
               "aws:region: eu-west-1\n  edumatrix-db:secrets: {replicaRegions: [us-west-2]}")
    problem = _only_problem(stacks, EU)
    assert (problem.key, problem.message) == ("edumatrix-db:secrets.replicaRegions",
                                              "a region stack's credentials are its primary's copies")


def test_a_primary_not_listing_its_region_stacks_region_says_promotion_would_find_no_credentials(
        stacks: Path) -> None:
    edit_stack(stacks, "prod", "      - eu-west-1\n", "      - eu-central-1\n")
    problem = _only_problem(stacks, "prod")
    assert problem.message == (f"stacks/Pulumi.{EU}.yaml replicates this stack into eu-west-1, which is not listed: "
                               "after a promotion there, no credentials would be found in that region")
