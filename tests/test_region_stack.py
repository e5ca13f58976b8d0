"""A region stack (spec 8.A): a cross-region replica of the primary stack's instance, declared in its own
region with its own key, reading the primary's ARN through a StackReference; promotion makes it a primary."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_stack, read_stack_config
from edumatrix_db.offline.engine import Planner, Recording, run_program
from edumatrix_db.offline.render import render_mermaid
from tests.region_support import copy_stacks, data_key, edit_stack

REGION = "eu-west-1"
INSTANCE = "aws:rds/instance:Instance"
KEY = "aws:kms/key:Key"
BACKUPS = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
GLOBAL_TYPES = ("aws:iam/",)  # IAM is global: the one resource family without a region


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner()


@pytest.fixture(scope="module")
def region(planner: Planner) -> Recording:
    return planner.plan(f"prod-{REGION}")


@pytest.fixture(scope="module")
def promoted(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    stacks = copy_stacks(tmp_path_factory.mktemp("promoted"))
    edit_stack(stacks, f"prod-{REGION}", "promote: false", "promote: true")
    return Planner(stacks).plan(f"prod-{REGION}")


def test_the_primary_is_read_through_a_stack_reference(planner: Planner, region: Recording) -> None:
    reference = region.one(STACK_REFERENCE)
    assert reference.inputs["name"] == "organization/edumatrix-db/prod"
    assert reference.props["outputs"]["arn"] == planner.plan("prod").outputs["arn"]


def test_the_replica_replicates_the_arn_the_primary_stack_exports(planner: Planner, region: Recording) -> None:
    replica = region.one(INSTANCE)
    assert replica.inputs["replicateSourceDb"] == planner.plan("prod").outputs["arn"]


def test_the_replication_source_is_whatever_the_stack_reference_returns() -> None:
    name = f"prod-{REGION}"
    config, _ = read_stack_config(name)
    asked: list[str] = []
    source = "arn:aws:rds:us-east-1:210987654321:db:restored-primary"

    def outputs(reference: str) -> dict[str, Any]:
        asked.append(reference)
        return {"arn": source, "kmsKeyArn": "arn:aws:kms:us-east-1:210987654321:key/k"}

    recording = run_program(name, config, settings=load_stack(name), stack_outputs=outputs)
    assert asked == ["organization/edumatrix-db/prod"]
    assert recording.one(INSTANCE).inputs["replicateSourceDb"] == source
    assert recording.one(BACKUPS).inputs["sourceDbInstanceArn"] == source


def test_every_regional_resource_is_pinned_to_the_stacks_region(region: Recording) -> None:
    regional = [r for r in region.resources
                if r.custom and r.type.startswith("aws:") and not r.type.startswith(GLOBAL_TYPES)]
    assert len(regional) >= 10
    assert {r.name: r.inputs.get("region") for r in regional} == {r.name: REGION for r in regional}


def test_the_regional_key_lives_in_the_replicas_region(region: Recording) -> None:
    key = data_key(region)
    assert key.inputs["region"] == REGION
    assert key.props["arn"].startswith(f"arn:aws:kms:{REGION}:")
    assert key.inputs["enableKeyRotation"] is True


def test_the_replica_is_encrypted_with_the_regional_key_not_the_primarys(region: Recording) -> None:
    key_arn = data_key(region).props["arn"]
    replica = region.one(INSTANCE)
    assert replica.inputs["storageEncrypted"] is True
    assert replica.inputs["kmsKeyId"] == key_arn
    assert replica.inputs["performanceInsightsKmsKeyId"] == key_arn
    assert region.outputs["kmsKeyArn"] == key_arn
    assert region.outputs["primaryKmsKeyArn"] != key_arn


def test_logs_and_backups_use_the_regional_key_and_the_alarm_topic_one_of_its_region(region: Recording) -> None:
    key_arn = data_key(region).props["arn"]
    assert {g.inputs["kmsKeyId"] for g in region.of_type("aws:cloudwatch/logGroup:LogGroup")} == {key_arn}
    assert region.one(BACKUPS).inputs["kmsKeyId"] == key_arn
    topic_key = region.one("aws:sns/topic:Topic").inputs["kmsMasterKeyId"]
    assert topic_key != key_arn
    assert topic_key.startswith(f"arn:aws:kms:{REGION}:")


def test_the_replica_has_its_own_network_and_parameter_group_in_the_primarys_family(region: Recording) -> None:
    replica = region.one(INSTANCE)
    subnets = region.one("aws:rds/subnetGroup:SubnetGroup")
    group = region.one("aws:ec2/securityGroup:SecurityGroup")
    params = region.one("aws:rds/parameterGroup:ParameterGroup")
    assert replica.inputs["dbSubnetGroupName"] == subnets.props["name"]
    ingress = region.one("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert replica.inputs["vpcSecurityGroupIds"] == [ingress.inputs["securityGroupId"]]
    assert ingress.inputs["referencedSecurityGroupId"] == "sg-0e1b2c3d4e5f60101"
    assert group.inputs["vpcId"] == load_stack(f"prod-{REGION}").network.vpc_id  # type: ignore[union-attr]
    assert replica.inputs["parameterGroupName"] == params.props["name"]
    assert params.inputs["family"] == load_stack("prod").instance.parameter_family


def test_the_replica_inherits_master_user_and_database_from_its_source(region: Recording) -> None:
    replica = region.one(INSTANCE).inputs
    for inherited in ("username", "dbName", "manageMasterUserPassword", "engine", "engineVersion",
                      "allocatedStorage"):
        assert inherited not in replica


def test_the_replica_is_monitored_with_the_reused_enhanced_monitoring_role(region: Recording) -> None:
    role = region.one("aws:iam/role:Role")
    replica = region.one(INSTANCE).inputs
    assert replica["monitoringInterval"] == 60
    assert replica["monitoringRoleArn"] == role.props["arn"]
    assert region.of_type("edumatrix:monitoring:EnhancedMonitoringRole")


def test_a_replica_keeps_backups_so_promotion_takes_none(region: Recording) -> None:
    replica = region.one(INSTANCE).inputs
    assert replica["backupRetentionPeriod"] == load_stack("prod").instance.backup_retention_days
    assert replica["skipFinalSnapshot"] is True  # RDS refuses final snapshots of read replicas
    assert replica["deletionProtection"] is True


def test_the_primarys_automated_backups_are_replicated_into_the_region(planner: Planner, region: Recording) -> None:
    backups = region.one(BACKUPS).inputs
    assert backups["sourceDbInstanceArn"] == planner.plan("prod").outputs["arn"]
    assert backups["region"] == REGION
    assert backups["retentionPeriod"] == 7


def test_the_lag_alarm_pages_on_lag_above_what_an_idle_primary_reports(region: Recording) -> None:
    alarm = region.one(ALARM).inputs
    assert region.outputs["lagThresholdSeconds"] == 600
    assert alarm["threshold"] == 600
    assert alarm["metricName"] == "ReplicaLag"
    assert alarm["dimensions"] == {"DBInstanceIdentifier": f"edumatrix-prod-{REGION}"}
    assert alarm["treatMissingData"] == "missing"


def test_a_region_stack_declares_no_shared_instance(region: Recording) -> None:
    assert region.of_type("edumatrix:database:SharedInstance") == []
    assert [r.name for r in region.of_type(INSTANCE)] == [f"edumatrix-prod-{REGION}-db"]


def test_the_primary_stack_exports_what_region_stacks_read(planner: Planner) -> None:
    outputs = planner.plan("prod").outputs
    assert {"arn", "kmsKeyArn", "identifier", "region", "engineVersion", "parameterFamily",
            "backupRetentionDays"} <= set(outputs)
    assert outputs["role"] == "primary"


def test_the_region_stack_outputs_describe_the_replica(region: Recording) -> None:
    assert region.outputs["role"] == "replica"
    assert region.outputs["region"] == REGION
    assert region.outputs["primaryRegion"] == "us-east-1"
    assert region.outputs["address"].endswith(f".{REGION}.rds.amazonaws.com")


def test_the_diagram_draws_the_cross_region_edge_from_the_primarys_region(region: Recording) -> None:
    diagram = render_mermaid(region)
    assert 'subgraph region_us_east_1["us-east-1"]' in diagram
    assert 'subgraph region_eu_west_1["eu-west-1"]' in diagram
    assert "source_edumatrix_prod -. async replication .-> edumatrix_prod_eu_west_1_db" in diagram


# -- promotion ---------------------------------------------------------------------------------------------

def test_promotion_removes_the_replication_source(promoted: Recording) -> None:
    assert "replicateSourceDb" not in promoted.one(INSTANCE).inputs
    assert promoted.outputs["role"] == "primary"
    assert "source_edumatrix_prod" not in render_mermaid(promoted)


def test_promotion_turns_on_primary_only_settings(promoted: Recording) -> None:
    primary = promoted.one(INSTANCE).inputs
    assert primary["multiAz"] is True
    assert primary["skipFinalSnapshot"] is False
    assert re.fullmatch(rf"edumatrix-prod-{REGION}-final-[0-9a-f]{{8}}", primary["finalSnapshotIdentifier"])
    assert primary["backupRetentionPeriod"] == 30
    assert primary["deletionProtection"] is True
    assert primary["applyImmediately"] is True


def test_promotion_stops_backup_replication_and_replica_lag_alarms(promoted: Recording) -> None:
    assert promoted.of_type(BACKUPS) == []
    assert [a for a in promoted.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"] == []


def test_promotion_keeps_the_regional_key_network_and_parameter_group(region: Recording,
                                                                      promoted: Recording) -> None:
    assert data_key(promoted).urn == data_key(region).urn
    kept = ("aws:rds/subnetGroup:SubnetGroup", "aws:ec2/securityGroup:SecurityGroup",
            "aws:rds/parameterGroup:ParameterGroup", INSTANCE)
    for type_token in kept:
        assert promoted.one(type_token).urn == region.one(type_token).urn  # same resource: updated in place
    assert data_key(promoted).urn == data_key(region).urn
    assert promoted.one(INSTANCE).inputs["kmsKeyId"] == region.one(INSTANCE).inputs["kmsKeyId"]


def test_backup_replication_can_be_turned_off_for_unsupported_region_pairs(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, f"prod-{REGION}", "promote: false", "promote: false\n    replicateBackups: false")
    recording = Planner(stacks).plan(f"prod-{REGION}")
    assert recording.of_type(BACKUPS) == []
    assert "replicateSourceDb" in recording.one(INSTANCE).inputs
    assert len([a for a in recording.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"]) == 1


class _SpyPlanner(Planner):
    """Records, for each stack reference resolved, whether the referenced stack was already planned."""

    def __init__(self, stacks_dir: Path) -> None:
        super().__init__(stacks_dir)
        self.resolved_from_cache: list[tuple[str, bool]] = []

    def _outputs_of(self, reference: str) -> Any:
        stack = reference.split("/")[-1]
        self.resolved_from_cache.append((stack, stack in self._cache))
        return super()._outputs_of(reference)


def test_referenced_stacks_are_planned_before_the_region_stack_runs(tmp_path: Path) -> None:
    planner = _SpyPlanner(copy_stacks(tmp_path))
    recording = planner.plan(f"prod-{REGION}")
    assert planner.resolved_from_cache == [("prod", True)]  # no program started inside another's registration
    assert recording.one(INSTANCE).inputs["replicateSourceDb"] == planner.plan("prod").outputs["arn"]
