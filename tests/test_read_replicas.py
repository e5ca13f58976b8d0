"""Same-region read replicas (spec 8.B): declared from the stack file's `replicas.count`, encrypted and
monitored like the primary, in its parameter family, each with a `ReplicaLag` alarm, addresses exported."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from tests.region_support import copy_stacks, edit_stack

INSTANCE = "aws:rds/instance:Instance"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"


@pytest.fixture(scope="module")
def prod() -> Recording:
    return Planner().plan("prod")


def _primary(recording: Recording) -> RecordedResource:
    return next(r for r in recording.of_type(INSTANCE) if not r.inputs.get("replicateSourceDb"))


def _lag_alarms(recording: Recording) -> list[RecordedResource]:
    return [a for a in recording.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"]


def _replicas(recording: Recording) -> list[RecordedResource]:
    return sorted((r for r in recording.of_type(INSTANCE) if r.inputs.get("replicateSourceDb")),
                  key=lambda r: r.inputs["identifier"])


def test_prod_declares_the_replica_count_of_its_stack_file(prod: Recording) -> None:
    assert load_stack("prod").replicas.count == 2
    assert [r.inputs["identifier"] for r in _replicas(prod)] == ["edumatrix-prod-replica-1",
                                                                 "edumatrix-prod-replica-2"]


def test_staging_has_one_replica_and_dev_none() -> None:
    assert len(_replicas(Planner().plan("staging"))) == 1
    dev = Planner().plan("dev")
    assert _replicas(dev) == []
    assert _lag_alarms(dev) == []
    assert "readerAddresses" not in dev.outputs


def test_replicas_replicate_the_shared_instance(prod: Recording) -> None:
    primary_arn = _primary(prod).props["arn"]
    assert {r.inputs["replicateSourceDb"] for r in _replicas(prod)} == {primary_arn}


def test_replicas_are_encrypted_and_inherit_the_primarys_cmk_without_naming_a_key(prod: Recording) -> None:
    """RDS rejects a KmsKeyId on a same-region replica: it always uses its source's key (the CMK)."""
    assert _primary(prod).inputs["kmsKeyId"] == prod.outputs["kmsKeyArn"]
    for replica in _replicas(prod):
        assert replica.inputs["storageEncrypted"] is True
        assert "kmsKeyId" not in replica.inputs


def test_replicas_keep_the_primarys_deletion_protection(prod: Recording) -> None:
    assert _primary(prod).inputs["deletionProtection"] is True
    assert all(replica.inputs["deletionProtection"] is True for replica in _replicas(prod))


def test_replicas_have_enhanced_monitoring_and_performance_insights_under_the_cmk(prod: Recording) -> None:
    primary = _primary(prod)
    for replica in _replicas(prod):
        assert replica.inputs["monitoringInterval"] == 60
        assert replica.inputs["monitoringRoleArn"] == primary.inputs["monitoringRoleArn"]
        assert replica.inputs["performanceInsightsEnabled"] is True
        assert replica.inputs["performanceInsightsKmsKeyId"] == prod.outputs["kmsKeyArn"]


def test_replicas_use_the_primarys_parameter_group(prod: Recording) -> None:
    for replica in _replicas(prod):
        assert replica.inputs["parameterGroupName"] == prod.outputs["parameterGroupName"]


def test_replicas_are_private_and_keep_the_primarys_tls_and_iam_posture(prod: Recording) -> None:
    primary = _primary(prod)
    for replica in _replicas(prod):
        assert replica.inputs["publiclyAccessible"] is False
        assert replica.inputs["vpcSecurityGroupIds"] == primary.inputs["vpcSecurityGroupIds"]
        assert replica.inputs["dbSubnetGroupName"] == primary.inputs["dbSubnetGroupName"]
        assert replica.inputs["caCertIdentifier"] == primary.inputs["caCertIdentifier"]
        assert replica.inputs["iamDatabaseAuthenticationEnabled"] is True


def test_replica_log_groups_exist_before_the_replicas_and_are_cmk_encrypted(prod: Recording) -> None:
    groups = {g.inputs["name"]: g for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for replica in _replicas(prod):
        for log in replica.inputs["enabledCloudwatchLogsExports"]:
            group = groups[f"/aws/rds/instance/{replica.inputs['identifier']}/{log}"]
            assert group.inputs["kmsKeyId"] == prod.outputs["kmsKeyArn"]
            assert group.urn in replica.dependencies


def test_each_replica_has_a_replica_lag_alarm(prod: Recording) -> None:
    alarms = _lag_alarms(prod)
    watched = sorted(a.inputs["dimensions"]["DBInstanceIdentifier"] for a in alarms)
    assert watched == [r.inputs["identifier"] for r in _replicas(prod)]
    for alarm in alarms:
        assert alarm.inputs["namespace"] == "AWS/RDS"
        assert alarm.inputs["metricName"] == "ReplicaLag"
        assert alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
        assert alarm.inputs["threshold"] == 600  # seconds: above the 300 s an idle primary's replicas report
        assert alarm.inputs["period"] == 60
        assert alarm.inputs["treatMissingData"] == "missing"


def test_lag_alarms_page_the_stacks_alarm_topic(prod: Recording) -> None:
    topic = prod.one(TOPIC)
    assert prod.outputs["alarmTopicArn"] == topic.props["arn"]
    lag = _lag_alarms(prod)
    assert len(lag) == 2
    for alarm in lag:
        assert alarm.inputs["alarmActions"] == [topic.props["arn"]]


def test_an_existing_alarm_topic_is_paged_instead_of_declaring_one(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    existing = "arn:aws:sns:us-east-1:123456789012:platform-pager"
    edit_stack(stacks, "prod", "    count: 2\n", f"    count: 2\n    alarmTopicArn: {existing}\n")
    recording = Planner(stacks).plan("prod")
    lag = _lag_alarms(recording)
    assert {tuple(a.inputs["alarmActions"]) for a in lag} == {(existing,)}


def test_reader_addresses_are_exported_for_read_only_clients(prod: Recording) -> None:
    assert prod.outputs["readerAddresses"] == [r.props["address"] for r in _replicas(prod)]
    assert prod.outputs["address"] not in prod.outputs["readerAddresses"]


def test_replica_instance_class_can_differ_from_the_primarys(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    count: 2\n", "    count: 2\n    instanceClass: db.r6g.xlarge\n")
    recording = Planner(stacks).plan("prod")
    assert {r.inputs["instanceClass"] for r in _replicas(recording)} == {"db.r6g.xlarge"}
    assert _primary(recording).inputs["instanceClass"] == "db.r6g.2xlarge"


def test_more_datapoints_than_evaluated_minutes_is_a_config_error(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    count: 2\n", "    count: 2\n    lagEvaluationMinutes: 2\n"
                                                 "    lagDatapointsToAlarm: 3\n")
    with pytest.raises(ConfigError, match=r"edumatrix-db:replicas.lagDatapointsToAlarm: lagDatapointsToAlarm \(3\) "
                                          r"exceeds"):
        load_stack("prod", stacks)


def test_a_replica_count_above_the_platform_ceiling_is_a_config_error(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    count: 2\n", "    count: 6\n")
    with pytest.raises(ConfigError, match=r"edumatrix-db:replicas\.count: .*less than or equal to 5"):
        load_stack("prod", stacks)
