"""Each small component on its own, under mocks: secure defaults, children parented, bad args refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from components.kms_key import PlatformKey, PlatformKeyArgs
from components.log_groups import RdsLogGroups, RdsLogGroupsArgs
from components.network import DatabaseNetwork, DatabaseNetworkArgs
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, Recording, run_program

WriteStack = Callable[[str, dict], Path]  # tests/conftest.py's write_stack fixture
SUBNETS = ("subnet-0000000000000001a", "subnet-0000000000000002b")


def run(program: Callable[[], object]) -> Recording:
    def declare() -> None:  # the component `program` returns is not the program's result
        program()

    return run_program("dev", {}, settings=load_stack("dev"), program=declare)


def test_network_admits_each_named_cidr_on_the_database_port_only() -> None:
    recording = run(lambda: DatabaseNetwork("n", DatabaseNetworkArgs(
        vpc_id="vpc-00000001", subnet_ids=SUBNETS, allowed_cidrs=("10.1.0.0/16", "10.2.0.0/16"), port=6543)))
    rules = recording.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert sorted(r.inputs["cidrIpv4"] for r in rules) == ["10.1.0.0/16", "10.2.0.0/16"]
    assert {(r.inputs["fromPort"], r.inputs["toPort"], r.inputs["ipProtocol"]) for r in rules} == {(6543, 6543, "tcp")}


def test_network_declares_no_egress_or_open_ingress_inline() -> None:
    recording = run(lambda: DatabaseNetwork("n", DatabaseNetworkArgs(
        vpc_id="vpc-00000001", subnet_ids=SUBNETS, allowed_security_group_ids=("sg-00000001",))))
    group = recording.one("aws:ec2/securityGroup:SecurityGroup")
    assert "ingress" not in group.inputs
    assert "egress" not in group.inputs


def test_network_without_any_allowed_client_is_refused() -> None:
    with pytest.raises(ValueError, match="nobody could connect"):
        run(lambda: DatabaseNetwork("n", DatabaseNetworkArgs(vpc_id="vpc-00000001", subnet_ids=SUBNETS)))


def test_network_in_a_single_subnet_is_refused() -> None:
    with pytest.raises(ValueError, match="at least two availability zones"):
        run(lambda: DatabaseNetwork("n", DatabaseNetworkArgs(
            vpc_id="vpc-00000001", subnet_ids=SUBNETS[:1], allowed_cidrs=("10.0.0.0/8",))))


def test_key_in_an_explicit_region_carries_that_region_and_its_logs_principal() -> None:
    recording = run(lambda: PlatformKey("k", PlatformKeyArgs(description="d", region="eu-west-1")))
    key = recording.one("aws:kms/key:Key")
    assert key.inputs["region"] == "eu-west-1"
    assert "logs.eu-west-1.amazonaws.com" in key.inputs["policy"]
    assert recording.one("aws:kms/alias:Alias").inputs["region"] == "eu-west-1"


def test_key_deletion_window_outside_kms_limits_is_refused() -> None:
    with pytest.raises(ValueError, match="deletion_window_days must be 7-30"):
        run(lambda: PlatformKey("k", PlatformKeyArgs(description="d", deletion_window_days=3)))


def test_components_parent_their_children() -> None:
    recording = run(lambda: RdsLogGroups("logs", RdsLogGroupsArgs(
        instance_identifier="db1", kms_key_arn="arn:aws:kms:us-east-1:1:key/x", retention_days=30)))
    component = recording.one("edumatrix:monitoring:RdsLogGroups")
    assert {r.parent for r in recording.of_type("aws:cloudwatch/logGroup:LogGroup")} == {component.urn}


def test_dev_stack_turns_off_only_what_it_says(planner: Planner) -> None:
    db = planner.plan("dev").one("aws:rds/instance:Instance").inputs  # dev has no read replica
    assert db["multiAz"] is False
    assert db["deletionProtection"] is False
    assert planner.plan("dev").one("aws:rds/instance:Instance").protect is False
    assert db["storageEncrypted"] is True
    assert db["publiclyAccessible"] is False
    assert db["backupRetentionPeriod"] == 7


def test_monitoring_interval_zero_declares_no_monitoring_role(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = {"aws:region": "us-east-1", "edumatrix-db:environment": "dev",
              "edumatrix-db:network": {"vpcId": "vpc-00000001", "subnetIds": list(SUBNETS),
                                       "allowedCidrs": ["10.0.0.0/8"]},
              "edumatrix-db:instance": {"monitoringIntervalSeconds": 0}}
    write_stack("nomon", config)
    recording = Planner(stacks_dir).plan("nomon")
    assert not [r for r in recording.of_type("aws:iam/role:Role")
                if "monitoring.rds.amazonaws.com" in r.inputs["assumeRolePolicy"]]
    assert recording.one("aws:rds/instance:Instance").inputs["monitoringInterval"] == 0
