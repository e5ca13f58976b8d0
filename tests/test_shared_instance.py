"""The prod stack declares the shared instance with every setting the foundation issue asks for."""

from __future__ import annotations

import json
import re

import pytest

from edumatrix_db.offline.engine import RecordedResource, Recording

INSTANCE = "aws:rds/instance:Instance"


def primary(recording: Recording) -> RecordedResource:
    """The shared instance itself (prod also declares read replicas of it)."""
    (instance,) = [r for r in recording.of_type(INSTANCE) if "replicateSourceDb" not in r.inputs]
    return instance


@pytest.fixture(scope="module")
def db(prod: Recording) -> RecordedResource:
    return primary(prod)


@pytest.fixture(scope="module")
def key_arn(prod: Recording) -> str:
    return data_key(prod).props["arn"]


def data_key(prod: Recording) -> RecordedResource:
    """The instance's CMK (the alarm topic and the credential copies in other regions have keys of their own)."""
    (key,) = [k for k in prod.of_type("aws:kms/key:Key") if k.name == "edumatrix-prod-kms-key"]
    return key


def instance_security_group(prod: Recording) -> RecordedResource:
    (group,) = [g for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup") if g.name == "edumatrix-prod-net-sg"]
    return group


def params(prod: Recording) -> dict[str, tuple[str, str]]:
    group = prod.one("aws:rds/parameterGroup:ParameterGroup")
    return {p["name"]: (p["value"], p["applyMethod"]) for p in group.inputs["parameters"]}


def test_storage_performance_insights_and_master_secret_use_the_customer_managed_key(
        prod: Recording, db: RecordedResource, key_arn: str) -> None:
    assert db.inputs["storageEncrypted"] is True
    assert db.inputs["kmsKeyId"] == key_arn
    assert db.inputs["performanceInsightsEnabled"] is True
    assert db.inputs["performanceInsightsKmsKeyId"] == key_arn
    master = next(s for s in prod.of_type("aws:secretsmanager/secret:Secret") if s.inputs["name"].endswith("/master"))
    assert master.inputs["kmsKeyId"] == key_arn


def test_the_key_rotates_and_lets_cloudwatch_logs_encrypt_only_this_accounts_groups(prod: Recording) -> None:
    key = data_key(prod).inputs
    assert key["enableKeyRotation"] is True
    policy = json.loads(key["policy"])
    logs = next(s for s in policy["Statement"] if s["Principal"].get("Service", "").startswith("logs."))
    assert logs["Principal"]["Service"] == "logs.us-east-1.amazonaws.com"
    assert "123456789012:log-group:*" in json.dumps(logs["Condition"])


def test_the_master_password_is_the_platforms_passed_write_only_under_a_non_default_name(db: RecordedResource) -> None:
    assert "manageMasterUserPassword" not in db.inputs  # RDS refuses replicas of a managed-password source
    assert db.inputs["passwordWo"] == "[secret]"
    assert db.inputs["passwordWoVersion"] == 1
    assert "password" not in db.inputs
    assert db.inputs["username"] == "edumatrix_admin"


def own(prod: Recording, type_token: str) -> RecordedResource:
    """The one resource of `type_token` that belongs to the shared instance (the proxy, the ops runner and the
    rotation function have groups and roles of their own)."""
    others = ("edumatrix:network:ConnectionLayer$", "edumatrix:ops:OpsRunner$", "edumatrix:security:SecretRotator$",
              "edumatrix:backup:BackupPlatform$", "edumatrix:backup:PitrValidation$", "edumatrix:events:EventBackbone$")
    (found,) = [r for r in prod.of_type(type_token) if not any(owner in r.urn for owner in others)]
    return found


def test_the_instance_is_private_in_the_configured_subnets_and_security_group(prod: Recording,
                                                                              db: RecordedResource) -> None:
    assert db.inputs["publiclyAccessible"] is False
    subnets = own(prod, "aws:rds/subnetGroup:SubnetGroup")
    assert db.inputs["dbSubnetGroupName"] == subnets.props["name"]
    assert len(subnets.inputs["subnetIds"]) == 3
    assert db.inputs["vpcSecurityGroupIds"] == [instance_security_group(prod).id]


def test_port_5432_is_admitted_only_from_the_configured_group_the_proxy_the_ops_runner_the_rotator_the_connectors(
        prod: Recording, db: RecordedResource) -> None:
    rules = [r for r in prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
             if r.inputs["securityGroupId"] == db.inputs["vpcSecurityGroupIds"][0]]
    runner_group = next(r for r in prod.of_type("aws:ec2/securityGroup:SecurityGroup")
                        if r.name == "edumatrix-prod-ops-runner-sg")
    rotator = prod.one("edumatrix:security:SecretRotator")
    (rotator_group,) = [g for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup") if g.parent == rotator.urn]
    (proxy_group,) = [g.id for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup")
                      if "edumatrix:network:ConnectionLayer" in g.urn]
    # the event backbone's CDC connectors (components/event_backbone.py) replicate from the instance itself
    connectors_group = next(g.id for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup")
                            if g.name == "edumatrix-prod-events-connectors-sg")
    assert sorted((r.inputs["fromPort"], r.inputs["toPort"], r.inputs["referencedSecurityGroupId"])
                  for r in rules) == sorted([(5432, 5432, "sg-0a1b2c3d4e5f60101"), (5432, 5432, runner_group.id),
                                             (5432, 5432, rotator_group.id), (5432, 5432, proxy_group),
                                             (5432, 5432, connectors_group)])
    assert not any("cidrIpv4" in r.inputs for r in rules)


def test_high_availability_and_protection_are_on_in_prod(db: RecordedResource) -> None:
    assert db.inputs["multiAz"] is True
    assert db.inputs["deletionProtection"] is True
    assert db.protect is True  # and Pulumi refuses to delete it too
    assert db.inputs["skipFinalSnapshot"] is False
    assert re.fullmatch(r"edumatrix-prod-final-[0-9a-f]{8}", db.inputs["finalSnapshotIdentifier"])
    assert db.inputs["copyTagsToSnapshot"] is True


def test_the_final_snapshot_name_is_unique_per_instance_incarnation(prod: Recording, db: RecordedResource) -> None:
    """A fixed name would make the second destroy of a re-created stack fail (DBSnapshotAlreadyExists)."""
    suffix = next(r for r in prod.of_type("random:index/randomId:RandomId") if r.parent == db.parent)
    assert suffix.inputs["keepers"] == {"identifier": "edumatrix-prod"}
    assert db.inputs["finalSnapshotIdentifier"] == f"edumatrix-prod-final-{suffix.props['hex']}"


def test_backups_start_at_midnight_utc_and_are_kept_thirty_days(db: RecordedResource) -> None:
    assert db.inputs["backupWindow"].startswith("00:00-")
    assert db.inputs["backupRetentionPeriod"] == 30


def test_the_engine_version_is_a_major_prefix_so_minor_upgrades_never_fight_the_program(prod: Recording,
                                                                                        db: RecordedResource) -> None:
    assert db.inputs["engineVersion"] == "15"
    assert prod.outputs["engineVersionActual"].startswith("15.")


def test_iam_auth_minor_upgrades_current_ca_and_autoscaling_storage(db: RecordedResource) -> None:
    assert db.inputs["iamDatabaseAuthenticationEnabled"] is True
    assert db.inputs["autoMinorVersionUpgrade"] is True
    assert db.inputs["caCertIdentifier"] == "rds-ca-rsa2048-g1"
    assert db.inputs["maxAllocatedStorage"] > db.inputs["allocatedStorage"]


def test_enhanced_monitoring_uses_its_own_role(prod: Recording, db: RecordedResource) -> None:
    role = own(prod, "aws:iam/role:Role")
    assert "monitoring.rds.amazonaws.com" in role.inputs["assumeRolePolicy"]
    assert db.inputs["monitoringInterval"] == 60
    assert db.inputs["monitoringRoleArn"] == role.props["arn"]


def test_logs_are_exported_to_cmk_encrypted_groups_created_before_the_instance(prod: Recording, db: RecordedResource,
                                                                               key_arn: str) -> None:
    assert db.inputs["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    groups = {g.inputs["name"]: g.inputs for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup")
              if g.inputs["name"].startswith("/aws/rds/instance/edumatrix-prod/")}
    assert set(groups) == {"/aws/rds/instance/edumatrix-prod/postgresql", "/aws/rds/instance/edumatrix-prod/upgrade"}
    assert all(g["kmsKeyId"] == key_arn for g in groups.values())
    group_urns = {g.urn for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup") if g.inputs["name"] in groups}
    assert group_urns <= set(db.dependencies)  # else RDS would create them, unencrypted and kept forever


def test_parameter_group_enforces_tls_audit_slow_query_logging_and_logical_replication(prod: Recording,
                                                                                       db: RecordedResource) -> None:
    values = params(prod)
    assert "rds.force_ssl" not in values  # 1 is postgres15's default on RDS; setting it diffs on every preview
    assert values["ssl_min_protocol_version"] == ("TLSv1.2", "immediate")
    assert values["shared_preload_libraries"] == ("pg_stat_statements,pgaudit,pg_cron", "pending-reboot")
    assert values["pgaudit.log"][0] == "ddl,role"
    assert values["log_connections"][0] == values["log_disconnections"][0] == "1"
    assert values["log_min_duration_statement"][0] == "100"
    assert values["rds.logical_replication"] == ("1", "pending-reboot")
    assert "idle_in_transaction_session_timeout" in values
    group = prod.one("aws:rds/parameterGroup:ParameterGroup")
    assert group.inputs["family"] == "postgres15"
    assert db.inputs["parameterGroupName"] == group.props["name"]


def test_every_taggable_resource_carries_the_four_required_tags(prod: Recording) -> None:
    required = {"service", "environment", "owner", "data-classification"}
    taggable = [r for r in prod.resources if r.custom and "tags" in r.inputs]
    assert len(taggable) >= 8
    for resource in taggable:
        assert required <= set(resource.inputs["tags"]), resource.name


def _descendants(recording: Recording, urn: str) -> set[str]:
    found, frontier = set(), [urn]
    while frontier:
        children = [r.urn for r in recording.children_of(frontier.pop())]
        found.update(children)
        frontier.extend(children)
    return found


def test_the_instance_and_its_parts_hang_under_the_shared_instance_component(prod: Recording,
                                                                             db: RecordedResource) -> None:
    instance_side = _descendants(prod, prod.one("edumatrix:database:SharedInstance").urn)
    parts = [db, prod.one("aws:rds/parameterGroup:ParameterGroup"), prod.one("aws:rds/subnetGroup:SubnetGroup"),
             instance_security_group(prod), data_key(prod),
             *(g for g in prod.of_type("aws:cloudwatch/logGroup:LogGroup") if "/edumatrix-prod/" in g.inputs["name"])]
    assert {p.urn for p in parts} <= instance_side


def test_every_aws_resource_belongs_to_a_platform_component(prod: Recording) -> None:
    components = [r for r in prod.resources if r.type.startswith("edumatrix:")]
    owned = set().union(*(_descendants(prod, c.urn) for c in components))
    assert [r.name for r in prod.resources if r.type.startswith("aws:") and r.urn not in owned] == []


def test_outputs_carry_address_not_endpoint_and_the_secret_and_key_arns(prod: Recording, db: RecordedResource,
                                                                        key_arn: str) -> None:
    outputs = prod.outputs
    assert outputs["address"] == db.props["address"]
    assert ":" not in outputs["address"]
    assert outputs["port"] == 5432
    assert outputs["identifier"] == "edumatrix-prod"
    assert outputs["arn"].startswith("arn:aws:rds:us-east-1:")
    assert outputs["masterSecretArn"].startswith("arn:aws:secretsmanager:")
    assert outputs["kmsKeyArn"] == key_arn
    assert outputs["parameterGroupName"] == prod.one("aws:rds/parameterGroup:ParameterGroup").props["name"]


def test_parameter_group_schedules_maintenance_autovacuum_now_and_pg_cron_at_the_next_reboot(prod: Recording) -> None:
    values = params(prod)
    assert values["cron.database_name"] == ("edumatrix", "pending-reboot")
    assert values["autovacuum_vacuum_scale_factor"] == ("0.05", "immediate")
    assert values["autovacuum_analyze_scale_factor"] == ("0.02", "immediate")
