"""`InstanceFoundation`: the key, network, parameter group, monitoring role and log groups every instance
stands on, declared once and composed by the shared instance and the region replica."""

from __future__ import annotations

import pytest

from components.instance_foundation import InstanceFoundation, InstanceFoundationArgs
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording, run_program

FOUNDATION = "edumatrix:database:InstanceFoundation"
PARTS = {  # child component type -> name suffix (unchanged from before the foundation existed)
    "edumatrix:security:PlatformKey": "kms",
    "edumatrix:network:DatabaseNetwork": "net",
    "edumatrix:database:ParameterGroup": "pg",
    "edumatrix:monitoring:EnhancedMonitoringRole": "monitoring",
    "edumatrix:monitoring:RdsLogGroups": "logs",
}
PART_RESOURCES = ("aws:kms/key:Key", "aws:rds/subnetGroup:SubnetGroup", "aws:ec2/securityGroup:SecurityGroup",
                  "aws:rds/parameterGroup:ParameterGroup", "aws:iam/role:Role", "aws:cloudwatch/logGroup:LogGroup")
REGION = "eu-west-1"
# Keys and security groups of other concerns: the alarm topic's key, the rotation function's security group, and
# the keys the primary stack copies its credentials under in other regions.
OTHER_OWNERS = ("edumatrix:monitoring:ReplicaLagAlarms", "edumatrix:security:SecretRotator", "edumatrix:ops:OpsRunner",
                "edumatrix:monitoring:AlarmTopic", "edumatrix:network:ConnectionLayer",
                "edumatrix:backup:BackupPlatform", "edumatrix:backup:PitrValidation", "edumatrix:events:EventBackbone")


def owned_elsewhere(recording: Recording, resource: RecordedResource) -> bool:
    recorded = {r.urn: r for r in recording.resources}
    ancestors, parent = [], resource.parent
    while parent in recorded:
        ancestors.append(recorded[parent])
        parent = recorded[parent].parent
    return any(a.type in OTHER_OWNERS or "-secrets-" in a.name for a in ancestors)


def descendants(recording: Recording, urn: str) -> list[RecordedResource]:
    found, frontier = [], [urn]
    while frontier:
        children = recording.children_of(frontier.pop())
        found.extend(children)
        frontier.extend(c.urn for c in children)
    return found


# Components with keys, groups or roles of their own: the alarm topic's key, the proxy's group and role.
def the_foundation_of(recording: Recording, owner_type: str) -> RecordedResource:
    owner = recording.one(owner_type)
    (foundation,) = [r for r in recording.children_of(owner.urn) if r.type == FOUNDATION]
    assert recording.of_type(FOUNDATION) == [foundation]  # exactly one in the whole stack
    return foundation


def assert_holds_every_part(recording: Recording, foundation: RecordedResource, name: str) -> None:
    """The five parts are the foundation's children; every key, network, parameter group and monitoring
    role of the stack, and the instance's own log groups, are below it (but the alarm topic's key, the proxy's
    network and role, the rotation function's network, the credential copies' keys and the ops runner's security
    groups, roles and log group)."""
    children = recording.children_of(foundation.urn)
    assert {(c.type, c.name) for c in children} == {(t, f"{name}-{s}") for t, s in PARTS.items()}
    below = {r.urn for r in descendants(recording, foundation.urn)}
    for type_token in PART_RESOURCES:
        found = [r for r in recording.of_type(type_token) if not owned_elsewhere(recording, r)
                 and (type_token != "aws:cloudwatch/logGroup:LogGroup"
                      or r.inputs["name"].startswith(f"/aws/rds/instance/{name}/"))]
        assert found, type_token
        assert {r.urn for r in found} <= below, type_token


@pytest.fixture(scope="module")
def region(planner: Planner) -> Recording:
    return planner.plan(f"prod-{REGION}")


def test_the_shared_instance_stands_on_exactly_one_foundation_holding_its_parts(prod: Recording) -> None:
    foundation = the_foundation_of(prod, "edumatrix:database:SharedInstance")
    assert foundation.name == "edumatrix-prod"
    assert_holds_every_part(prod, foundation, "edumatrix-prod")


def test_the_region_replica_stands_on_exactly_one_foundation_holding_its_parts(region: Recording) -> None:
    foundation = the_foundation_of(region, "edumatrix:database:RegionReplica")
    assert foundation.name == f"edumatrix-prod-{REGION}"
    assert_holds_every_part(region, foundation, f"edumatrix-prod-{REGION}")


def test_the_instance_uses_what_its_foundation_declares(prod: Recording) -> None:
    foundation = the_foundation_of(prod, "edumatrix:database:SharedInstance")
    below = descendants(prod, foundation.urn)

    def one(type_token: str) -> RecordedResource:
        (found,) = [r for r in below if r.type == type_token]
        return found

    (db,) = [r for r in prod.children_of(foundation.parent or "") if r.type == "aws:rds/instance:Instance"]
    assert db.inputs["kmsKeyId"] == one("aws:kms/key:Key").props["arn"]
    assert db.inputs["dbSubnetGroupName"] == one("aws:rds/subnetGroup:SubnetGroup").props["name"]
    assert db.inputs["vpcSecurityGroupIds"] == [one("aws:ec2/securityGroup:SecurityGroup").id]
    assert db.inputs["parameterGroupName"] == one("aws:rds/parameterGroup:ParameterGroup").props["name"]
    assert db.inputs["monitoringRoleArn"] == one("aws:iam/role:Role").props["arn"]
    log_groups = {r.urn for r in below if r.type == "aws:cloudwatch/logGroup:LogGroup"}
    assert len(log_groups) == 2
    assert log_groups <= set(db.dependencies)


def test_a_regional_foundation_pins_every_regional_child_to_its_region(region: Recording) -> None:
    foundation = the_foundation_of(region, "edumatrix:database:RegionReplica")
    custom = [r for r in descendants(region, foundation.urn) if r.custom]
    regional = [r for r in custom if not r.type.startswith("aws:iam/")]
    assert len(regional) >= 7  # key, alias, subnet group, security group, ingress rule, parameter group, 2 logs
    assert {r.name: r.inputs.get("region") for r in regional} == {r.name: REGION for r in regional}
    assert all("region" not in r.inputs for r in custom if r.type.startswith("aws:iam/"))  # IAM is global


def run_foundation(region: str | None = None, monitoring_interval: int | None = None) -> Recording:
    settings = load_stack("dev")
    assert settings.network is not None
    instance = settings.instance
    if monitoring_interval is not None:
        instance = instance.model_copy(update={"monitoring_interval_seconds": monitoring_interval})
    args = InstanceFoundationArgs(identifier="target-db", instance=instance, network=settings.network,
                                  key_description="target-db: everything", region=region, tags={"owner": "x"})

    def program() -> None:  # run_program takes a program returning None; the component registers itself
        InstanceFoundation("target", args)

    return run_program("dev", {}, settings=settings, program=program)


def test_without_a_region_the_children_live_in_the_providers_region() -> None:
    recording = run_foundation()
    assert all("region" not in r.inputs for r in recording.resources if r.custom)
    assert recording.one("aws:kms/key:Key").props["arn"].startswith("arn:aws:kms:us-east-1:")


def test_children_are_named_after_the_component_and_the_identifier() -> None:
    recording = run_foundation(region=REGION)
    foundation = recording.one(FOUNDATION)
    assert {(c.type, c.name) for c in recording.children_of(foundation.urn)} == {
        (t, f"target-{s}") for t, s in PARTS.items()}
    assert recording.one("aws:kms/alias:Alias").inputs["name"] == "alias/target-db-data"
    assert recording.one("aws:kms/key:Key").inputs["description"] == "target-db: everything"
    assert {g.inputs["name"] for g in recording.of_type("aws:cloudwatch/logGroup:LogGroup")} == {
        "/aws/rds/instance/target-db/postgresql", "/aws/rds/instance/target-db/upgrade"}


def test_no_monitoring_role_when_enhanced_monitoring_is_off() -> None:
    recording = run_foundation(monitoring_interval=0)
    assert recording.of_type("edumatrix:monitoring:EnhancedMonitoringRole") == []
    assert recording.of_type("aws:iam/role:Role") == []
