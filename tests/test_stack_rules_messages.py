"""The exact words of config/stack_rules.py, and the cases each rule leaves alone: the rules that need the whole
stack (identifiers, master user, alarm topics, derived names, the point-in-time validation) and the ones that read
sibling stack files (a private zone or network ids another stack uses). Each test calls the rule itself on settings
built without the loader (tests/stack_settings.py) and, for siblings, a reader of in-memory stack files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError, Problem
from config.settings import StackSettings
from config.stack_rules import (
    ConfigReader,
    alarm_topic_problems,
    derived_name_problems,
    identifier_problems,
    master_user_problems,
    network_reuse_problems,
    pitr_validation_on,
    pitr_validation_problems,
    zone_reuse_problems,
)
from tests.stack_settings import DEV_NETWORK, SOURCE, stack_settings

NS = "edumatrix-db"
REGION = {"primaryStack": "prod"}
NO_PITR: dict[str, Any] = {"backups": {"pitrValidation": False}}  # stack-file sections, as stack_settings takes them
IDENTIFIER_FIX = ("rename the stack (and its file) to lowercase letters, digits and single hyphens, short enough for "
                  "'edumatrix-<stack>' to fit 63 characters")
TOO_LONG = ("the instance identifier derived from the stack name: 'edumatrix-" + "p" * 60 + "' is 70 characters; RDS "
            "identifiers are at most 63")


def said(problems: list[Problem]) -> list[tuple[str, str, str]]:
    assert all(p.source == SOURCE for p in problems), problems
    return [(p.key, p.message, p.fix) for p in problems]


# -- identifiers -------------------------------------------------------------------------------------------------

def test_a_primary_stack_name_too_long_for_its_identifier_is_told_to_rename_or_set_the_identifier() -> None:
    assert said(identifier_problems(stack_settings(stack="p" * 60))) == [
        ("stack name", TOO_LONG, f"{IDENTIFIER_FIX}, or set {NS}:instance.identifier")]


def test_a_region_stack_name_too_long_for_its_identifier_is_told_to_rename_only() -> None:
    """A region stack's replica takes its identifier from the stack name whatever instance.identifier says."""
    settings = stack_settings(stack="p" * 60, region=REGION, instance={"identifier": "edu"})
    assert said(identifier_problems(settings)) == [("stack name", TOO_LONG, IDENTIFIER_FIX)]


def test_a_region_stack_takes_no_replica_suffix_from_the_replicas_section() -> None:
    """Its replica is one instance named edumatrix-<stack>: 63 characters fit although replicas.count is 2."""
    assert identifier_problems(stack_settings(stack="r" * 53, region=REGION, replicas={"count": 2})) == []


def test_a_primary_without_replicas_or_pitr_copy_may_use_all_63_characters() -> None:
    assert identifier_problems(stack_settings(stack="p" * 53, **NO_PITR)) == []


# -- the master user, alarm topics, derived names ------------------------------------------------------------------

def test_a_master_user_named_like_a_service_role_is_told_whose_role_it_is() -> None:
    assert said(master_user_problems(stack_settings(instance={"masterUsername": "feedback_app"}))) == [(
        f"{NS}:instance.masterUsername",
        "'feedback_app' is the app role of service 'feedback', which the platform creates with its own grants",
        "choose another name, e.g. edumatrix_admin")]


def topic_in(region: str) -> str:
    return f"arn:aws:sns:{region}:123456789012:dba"


def cross_region_topic(section: str, topic: str, alarms: str) -> tuple[str, str, str]:
    return (f"{NS}:{section}.alarmTopicArn",
            f"the topic is in {topic} (aws) and this stack's alarms in {alarms}; CloudWatch alarms only notify topics "
            "of their own region",
            f"use a topic in {alarms} (arn:aws:sns:{alarms}:<account>:<name>), or remove the key and the stack "
            "declares its own")


@pytest.mark.parametrize(("settings", "expected"), [
    pytest.param(stack_settings(replicas={"alarmTopicArn": topic_in("eu-west-1")}),
                 [cross_region_topic("replicas", "eu-west-1", "us-east-1")], id="replicas-topic-of-another-region"),
    pytest.param(stack_settings(stack="prod-eu-west-1", aws_region="eu-west-1",
                                region={**REGION, "alarmTopicArn": topic_in("us-east-1")}),
                 [cross_region_topic("region", "us-east-1", "eu-west-1")], id="region-topic-of-the-primarys-region"),
])
def test_an_alarm_topic_of_another_region_is_told_to_use_one_of_the_stacks_region(
        settings: StackSettings, expected: list[tuple[str, str, str]]) -> None:
    assert said(alarm_topic_problems(settings)) == expected


def test_names_derived_from_a_long_stack_name_are_each_named_with_the_limit_they_break() -> None:
    stack = "d" * 40
    assert said(derived_name_problems(stack_settings(stack=stack))) == [(
        "stack name",
        "AWS refuses names this stack derives from its name: the rotation function's Lambda name (64 of A-Z a-z 0-9 "
        f"- _): 'edumatrix-{stack}-secret-rotation'; the point-in-time validation's state machine, schedule and role "
        f"name (64 of A-Z a-z 0-9 - _): 'edumatrix-{stack}-pitr-validation'; the restore testing plan's name (50 of "
        f"A-Z a-z 0-9 _): 'edumatrix-{stack}_weekly'",
        "rename the stack (and its file) to letters, digits and hyphens, at most 33 characters")]


def test_a_region_stack_derives_no_names_of_its_own_from_its_stack_name() -> None:
    assert derived_name_problems(stack_settings(stack="d" * 40, region=REGION)) == []


# -- the point-in-time validation ------------------------------------------------------------------------------

@pytest.mark.parametrize(("sections", "on"), [
    pytest.param({}, True, id="by-default"),
    pytest.param({"backups": {"pitrValidation": True}}, True, id="asked-for"),
    pytest.param({"backups": {"pitrValidation": False}}, False, id="turned-off"),
    pytest.param({"backups": {"enabled": False}}, False, id="without-aws-backup"),
    pytest.param({"opsRunner": {"enabled": False}}, False, id="without-the-ops-runner"),
])
def test_the_point_in_time_validation_runs_with_aws_backup_and_the_ops_runner_unless_turned_off(
        sections: dict[str, Any], on: bool) -> None:
    assert pitr_validation_on(stack_settings(**sections)) is on


PITR_WITHOUT_RUNNER: dict[str, Any] = {"backups": {"pitrValidation": True}, "opsRunner": {"enabled": False}}


def test_a_point_in_time_validation_asked_for_without_the_ops_runner_is_told_both_ways_out() -> None:
    assert said(pitr_validation_problems(stack_settings(**PITR_WITHOUT_RUNNER))) == [(
        f"{NS}:backups.pitrValidation",
        "the monthly point-in-time-restore validation needs the ops runner (its pitr-verify job validates the "
        "restored copy), and opsRunner.enabled is false",
        "set opsRunner.enabled: true, or backups.pitrValidation: false (and validate point-in-time restores by hand "
        "every month: docs/recovery-runbook.md)")]


@pytest.mark.parametrize("stack", [
    pytest.param({"stack": "local", "environment": "local", "aws_region": None}, id="local-stack"),
    pytest.param({"stack": "prod-eu-west-1", "region": REGION}, id="region-stack"),
])
def test_only_a_primary_aws_stack_is_judged_for_the_point_in_time_validation(stack: dict[str, Any]) -> None:
    assert pitr_validation_problems(stack_settings(**stack, **PITR_WITHOUT_RUNNER)) == []


# -- sibling stack files: private zones and network ids -------------------------------------------------------------

BROKEN = "broken"  # a sibling whose file does not load: judged on its own


def reader(siblings: dict[str, dict[str, Any]]) -> ConfigReader:
    def read(name: str, stacks_dir: Path) -> tuple[dict[str, Any], str]:
        if name == BROKEN:
            raise ConfigError([Problem(f"stacks/Pulumi.{name}.yaml", "", "cannot be read", "")])
        return siblings[name], f"stacks/Pulumi.{name}.yaml"
    return read


def sibling(region: str = "us-east-1", network: dict[str, Any] = DEV_NETWORK, **keys: Any) -> dict[str, Any]:
    return {"aws:region": region, f"{NS}:network": network, **{f"{NS}:{k}": v for k, v in keys.items()}}


DEV = stack_settings(network=DEV_NETWORK)
DEV_ZONE = {"dnsZone": "dev.db.edumatrix.internal"}
ZONE_TAKEN = (f"{NS}:connections.dnsZone",
              "stacks/Pulumi.blue.yaml declares the private zone dev.db.edumatrix.internal in the same VPC "
              "vpc-0c1b2c3d4e5f60718; Route 53 refuses a second zone of that name there (\"ConflictingDomainExists\")",
              "give this stack another dnsZone (the default is dev.db.edumatrix.internal)")
OTHER_VPC = {**DEV_NETWORK, "vpcId": "vpc-0d1b2c3d4e5f60718"}


def zone_reuse(settings: StackSettings, siblings: dict[str, dict[str, Any]],
               known: list[str]) -> list[tuple[str, str, str]]:
    return said(zone_reuse_problems(settings, Path("stacks"), reader(siblings), known))


@pytest.mark.parametrize(("siblings", "known"), [
    pytest.param({"blue": sibling(connections=DEV_ZONE)}, ["blue"], id="its-dnsZone-names-this-stacks-zone"),
    pytest.param({"blue": sibling(connections=DEV_ZONE)}, ["dev", "blue"], id="after-the-stack-itself"),
    pytest.param({"blue": sibling(connections=DEV_ZONE)}, [BROKEN, "blue"], id="after-a-file-that-does-not-load"),
    pytest.param({"green": sibling(network=OTHER_VPC, connections=DEV_ZONE), "blue": sibling(connections=DEV_ZONE)},
                 ["green", "blue"], id="after-a-stack-in-another-vpc"),
])
def test_a_sibling_declaring_this_stacks_private_zone_in_its_vpc_is_named(
        siblings: dict[str, dict[str, Any]], known: list[str]) -> None:
    assert zone_reuse(DEV, siblings, known) == [ZONE_TAKEN]


@pytest.mark.parametrize("blue", [
    pytest.param(sibling(network=OTHER_VPC, connections=DEV_ZONE), id="in-another-vpc"),
    pytest.param(sibling(region="us-west-2", connections=DEV_ZONE), id="in-another-region"),
    pytest.param(sibling(connections=DEV_ZONE) | {f"{NS}:region": REGION},
                 id="a-region-stack"),
    pytest.param(sibling(), id="with-its-own-default-zone"),
])
def test_a_sibling_that_cannot_share_the_zone_in_the_vpc_is_not_named(blue: dict[str, Any]) -> None:
    assert zone_reuse(DEV, {"blue": blue}, ["blue"]) == []


def test_a_region_stack_is_not_judged_for_its_zone() -> None:
    """A region stack declares no private zone of its own."""
    settings = stack_settings(stack="dev", network=DEV_NETWORK, region=REGION)
    assert zone_reuse(settings, {"blue": sibling(connections=DEV_ZONE)}, ["blue"]) == []


def network_reuse(siblings: dict[str, dict[str, Any]], known: list[str]) -> list[tuple[str, str, str]]:
    return said(network_reuse_problems(DEV, Path("stacks"), reader(siblings), known))


NETWORK_FIX = "use the ids of this stack's VPC in us-east-1 (one of the two files was copied without updating them)"
ONE_REGION = "a VPC, its subnets and security groups exist in one region only"
SUBNETS = DEV_NETWORK["subnetIds"]
VPC_ELSEWHERE = (f"{NS}:network.vpcId", f"vpc-0c1b2c3d4e5f60718 is also in stacks/Pulumi.eu.yaml, a stack in "
                 f"eu-west-1; {ONE_REGION}", NETWORK_FIX)


@pytest.mark.parametrize(("known", "network", "expected"), [
    pytest.param(["eu"], {**OTHER_VPC, "subnetIds": SUBNETS}, [
        (f"{NS}:network.subnetIds", f"subnet-0c1b2c3d4e5f60001, subnet-0c1b2c3d4e5f60002 are also in "
         f"stacks/Pulumi.eu.yaml, a stack in eu-west-1; {ONE_REGION}", NETWORK_FIX)], id="two-ids-are"),
    pytest.param(["eu"], {**OTHER_VPC, "subnetIds": [SUBNETS[1], "subnet-0e1b2c3d4e5f60003"]}, [
        (f"{NS}:network.subnetIds", f"subnet-0c1b2c3d4e5f60002 is also in stacks/Pulumi.eu.yaml, a stack in "
         f"eu-west-1; {ONE_REGION}", NETWORK_FIX)], id="one-id-is"),
    pytest.param(["dev", "eu"], {**DEV_NETWORK, "subnetIds": []}, [VPC_ELSEWHERE], id="after-the-stack-itself"),
    pytest.param([BROKEN, "eu"], {**DEV_NETWORK, "subnetIds": []}, [VPC_ELSEWHERE],
                 id="after-a-file-that-does-not-load"),
])
def test_network_ids_a_stack_in_another_region_names_are_each_told(
        known: list[str], network: dict[str, Any], expected: list[tuple[str, str, str]]) -> None:
    assert network_reuse({"eu": sibling(region="eu-west-1", network=network)}, known) == expected
