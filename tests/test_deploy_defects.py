"""Issue 10, "the defects": what `pulumi up` would have failed on (or paid for, or leaked) although the SDK's
mocks accepted it. One test (or a few) per defect; each failed on the code before the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.errors import ConfigError
from config.loader import load_stack, read_stack_config
from edumatrix_db.offline import engine
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording, run_program
from edumatrix_db.offline.mocks import PlatformMocks, mock_master_password
from tests.region_support import copy_stacks, edit_stack

PERSONAL = sum(1 for s in load_stack("prod").catalog() if s.holds_personal_data)  # services with a gdpr login

REGION_STACK = "prod-eu-west-1"
INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SAR_STACK = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
BACKUPS = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
# terraform-provider-aws internal/service/rds/instance.go, `Timeouts`: what an instance gets without custom ones.
PROVIDER_DEFAULT_MINUTES = {"create": 40, "update": 80, "delete": 60}


@pytest.fixture(scope="module")
def region(planner: Planner) -> Recording:
    return planner.plan(REGION_STACK)


def primary_instance(recording: Recording) -> RecordedResource:
    (db,) = [r for r in recording.of_type(INSTANCE) if "replicateSourceDb" not in r.inputs]
    return db


def secret_named(recording: Recording, suffix: str) -> RecordedResource:
    (secret,) = [s for s in recording.of_type(SECRET) if s.inputs["name"].endswith(suffix)]
    return secret


def version_of(recording: Recording, secret: RecordedResource) -> RecordedResource:
    (version,) = [v for v in recording.of_type(SECRET_VERSION) if v.parent == secret.parent]
    return version


def parameters(recording: Recording) -> dict[str, tuple[str, str]]:
    group = recording.one("aws:rds/parameterGroup:ParameterGroup")
    return {p["name"]: (p["value"], p["applyMethod"]) for p in group.inputs["parameters"]}


def problems_of(tmp_path: Path, stack: str, old: str, new: str) -> str:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, stack, old, new)
    with pytest.raises(ConfigError) as caught:
        load_stack(stack, stacks)
    return caught.value.render()


# -- 1. read replicas of a managed-password source; the platform's master password --------------------------

def test_1_the_replicated_primary_does_not_let_rds_manage_its_master_password(prod: Recording) -> None:
    db = primary_instance(prod)
    assert "manageMasterUserPassword" not in db.inputs
    assert db.inputs["passwordWo"] == "[secret]"
    assert db.inputs["passwordWoVersion"] == 1
    assert any(r.inputs.get("replicateSourceDb") == db.props["arn"] for r in prod.of_type(INSTANCE))


def test_1_the_master_password_lives_in_a_secret_of_the_rotation_shape_under_the_cmk(prod: Recording) -> None:
    secret = secret_named(prod, "/db/master")
    assert secret.inputs["kmsKeyId"] == prod.outputs["kmsKeyArn"]
    value = json.loads(version_of(prod, secret).props["secretString"])
    db = primary_instance(prod)
    assert value == {"username": "edumatrix_admin", "password": db.props["passwordWo"], "host": db.props["address"],
                     "port": 5432, "dbname": "edumatrix", "engine": "postgres"}
    assert prod.outputs["masterSecretArn"] == secret.props["arn"]


def test_1_after_creation_the_secret_is_the_only_source_of_the_master_password(prod: Recording) -> None:
    version = version_of(prod, secret_named(prod, "/db/master"))
    assert "secretString" in version.ignore_changes  # a later `up` never writes the generated value back


def test_1_a_second_plan_with_another_generated_password_keeps_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    class OtherPasswords(PlatformMocks):
        def new_resource(self, args: Any) -> tuple[str | None, dict[str, Any]]:
            ident, state = super().new_resource(args)
            if args.typ.startswith("random:index/randomPassword"):
                state["result"] = "another-generated-password"
            return ident, state

    settings = load_stack("prod")
    config, _ = read_stack_config("prod")
    first = run_program("prod", config, settings=settings)
    monkeypatch.setattr(engine, "PlatformMocks", OtherPasswords)
    second = run_program("prod", config, settings=settings)
    assert primary_instance(second).props["passwordWo"] != primary_instance(first).props["passwordWo"]
    assert primary_instance(second).inputs["passwordWoVersion"] == primary_instance(first).inputs["passwordWoVersion"]


def test_1_the_master_secret_is_rotated_by_aws_single_user_application_in_the_vpc(prod: Recording) -> None:
    app = prod.one(SAR_STACK)
    assert app.inputs["applicationId"] == ("arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
                                           "SecretsManagerRDSPostgreSQLRotationSingleUser")
    assert app.inputs["semanticVersion"] == "1.1.671"
    assert set(app.inputs["capabilities"]) == {"CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"}
    params = app.inputs["parameters"]
    assert params["vpcSubnetIds"] == ",".join(load_stack("prod").network.subnet_ids)  # type: ignore[union-attr]
    assert params["endpoint"] == "https://secretsmanager.us-east-1.amazonaws.com"
    assert params["kmsKeyArn"] == prod.outputs["kmsKeyArn"]
    master = secret_named(prod, "/db/master")
    (rotation,) = [r for r in prod.of_type(ROTATION) if r.inputs["secretId"] == master.props["arn"]]
    assert rotation.inputs["rotationLambdaArn"] == app.props["outputs"]["RotationLambdaARN"]
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 30}


def test_1_the_rotation_function_may_reach_the_instance(prod: Recording) -> None:
    rotator = prod.one("edumatrix:security:SecretRotator")
    (group,) = [g for g in prod.of_type("aws:ec2/securityGroup:SecurityGroup") if g.parent == rotator.urn]
    db = primary_instance(prod)
    assert any(r.inputs["referencedSecurityGroupId"] == group.id and r.inputs["securityGroupId"] in
               db.inputs["vpcSecurityGroupIds"]
               for r in prod.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"))
    assert prod.one(SAR_STACK).inputs["parameters"]["vpcSecurityGroupIds"] == group.id


def test_1_the_schema_provider_reads_the_master_password_from_the_platforms_secret(prod: Recording) -> None:
    provider = next(p for p in prod.of_type("pulumi:providers:postgresql"))
    assert provider.props["password"] == mock_master_password(prod.outputs["masterSecretArn"])


def test_1_service_logins_are_rotated_and_may_set_their_own_password(prod: Recording) -> None:
    rotated = {s.inputs["name"].rsplit("/", 2)[-2:][1] for s in prod.of_type(SECRET)
               if any(r.inputs["secretId"] == s.props["arn"] for r in prod.of_type(ROTATION))
               and not s.inputs["name"].endswith("/master")}
    # the migrator cannot rotate itself (tests/pg/test_password_rotation.py); the GDPR login rotates (docs/gdpr.md)
    assert rotated == {"app", "readonly", "gdpr"}
    members = {r.inputs["role"] for r in prod.of_type(GRANT_ROLE) if r.inputs["grantRole"] == "rds_password"}
    catalog = load_stack("prod").catalog()
    assert members == {f"{s.name}_{k}" for s in catalog for k in ("app", "readonly")} | {
        f"{s.name}_gdpr" for s in catalog if s.holds_personal_data}


def test_1_replicas_of_an_rds_managed_password_are_refused_by_the_loader(tmp_path: Path) -> None:
    text = problems_of(tmp_path, "prod", "    maxConnections: 1500\n",
                       "    maxConnections: 1500\n    masterPassword: rds-managed\n")
    assert "edumatrix-db:instance.masterPassword" in text
    assert "ManageMasterUserPassword" in text


def test_1_without_replicas_rds_may_still_manage_the_master_password(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "dev", "    maxConnections: 500\n", "    maxConnections: 500\n    masterPassword: rds-managed\n")
    recording = Planner(stacks).plan("dev")
    db = primary_instance(recording)
    assert db.inputs["manageMasterUserPassword"] is True
    assert "passwordWo" not in db.inputs
    assert recording.outputs["masterSecretArn"] == db.props["masterUserSecrets"][0]["secretArn"]


# -- 2. custom timeouts on every instance ------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["prod", REGION_STACK])
def test_2_every_instance_waits_longer_than_the_providers_defaults(planner: Planner, stack: str) -> None:
    instances = planner.plan(stack).of_type(INSTANCE)
    assert instances
    for db in instances:
        timeouts = getattr(db, "custom_timeouts", {})  # recorded since this fix
        for op, minutes in PROVIDER_DEFAULT_MINUTES.items():
            hours = timeouts.get(op, "0h")
            assert hours.endswith("h")
            assert int(hours[:-1]) * 60 > minutes, (db.name, op)


def test_2_the_cross_region_replica_gets_the_longest_create_timeout(region: Recording) -> None:
    assert region.one(INSTANCE).custom_timeouts == {"create": "12h", "update": "8h", "delete": "2h"}


# -- 3. promotion must not wait on the lost region -------------------------------------------------------

def test_3_replicated_backups_are_only_forgotten_when_promotion_removes_them(region: Recording) -> None:
    assert getattr(region.one(BACKUPS), "retain_on_delete", False) is True


def test_3_the_runbook_stops_the_replication_by_hand_later() -> None:
    runbook = (Path(__file__).resolve().parent.parent / "docs" / "failover-runbook.md").read_text()
    assert "aws rds stop-db-instance-automated-backups-replication" in runbook


# -- 4. credentials in the region stacks' regions --------------------------------------------------------

def test_4_every_credential_is_copied_into_the_region_stack_region_under_a_key_there(prod: Recording) -> None:
    secrets = prod.of_type(SECRET)
    # the master, nine services' three logins, the GDPR logins of the services holding personal data, the
    # platform's four logins
    assert len(secrets) == 1 + 27 + PERSONAL + 4
    for secret in secrets:
        (replica,) = secret.inputs["replicas"]
        assert replica["region"] == "eu-west-1"
        assert replica["kmsKeyId"].startswith("arn:aws:kms:eu-west-1:")


def test_4_a_promoted_region_exports_where_its_credentials_are(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, REGION_STACK, "promote: false", "promote: true")
    promoted = Planner(stacks).plan(REGION_STACK)
    assert promoted.outputs["masterSecretName"] == "edumatrix-prod/db/master"
    assert promoted.outputs["masterSecretArn"].startswith("arn:aws:secretsmanager:eu-west-1:")
    assert promoted.outputs["serviceSecretNames"]["feedback"] == {
        "migrator": "edumatrix-prod/db/feedback/migrator", "app": "edumatrix-prod/db/feedback/app",
        "readonly": "edumatrix-prod/db/feedback/readonly", "gdpr": "edumatrix-prod/db/feedback/gdpr"}


# -- 5. lag alarms that page only on real lag ------------------------------------------------------------

def test_5_lag_alarms_page_above_what_an_idle_primary_reports_and_not_on_missing_data(planner: Planner) -> None:
    alarms = [a for a in [*planner.plan("prod").of_type(ALARM), *planner.plan(REGION_STACK).of_type(ALARM)]
              if a.inputs.get("metricName") == "ReplicaLag"]
    assert len(alarms) == 3
    for alarm in alarms:
        assert alarm.inputs["threshold"] > 300  # RDS reports up to five minutes on a primary without writes
        assert alarm.inputs["treatMissingData"] in ("missing", "notBreaching")


def test_5_a_threshold_an_idle_primary_reaches_is_refused(tmp_path: Path) -> None:
    text = problems_of(tmp_path, REGION_STACK, "lagThresholdSeconds: 600", "lagThresholdSeconds: 60")
    assert "edumatrix-db:region.lagThresholdSeconds" in text


# -- 6. rds.force_ssl: no perpetual diff, and static parameters never `immediate` ------------------------

def test_6_no_parameter_is_sent_at_its_family_default(prod: Recording) -> None:
    from config.parameter_table import parameter_table

    table = parameter_table("postgres15")
    sent = parameters(prod)
    assert "rds.force_ssl" not in sent  # 1 is postgres15's default on RDS
    assert [n for n, (v, _) in sent.items() if table.get(n) and table.get(n).rds_default == v] == []  # type: ignore


def test_6_every_parameter_is_applied_the_way_its_family_allows(prod: Recording) -> None:
    from config.parameter_table import parameter_table

    table = parameter_table("postgres15")
    for name, (_, method) in parameters(prod).items():
        assert method == table.apply_method(name), name


# -- 7. storage and retention RDS refuses ---------------------------------------------------------------

@pytest.mark.parametrize(("new", "expected"), [
    ("    storageType: io1\n", "edumatrix-db:instance.storageType: storageType io1 needs provisioned IOPS"),
    ("    storageType: io1\n    iops: 1000\n", "edumatrix-db:instance.allocatedStorageGb: io1 starts at 100 GiB"),
    ("    storageType: gp3\n    iops: 12000\n", "edumatrix-db:instance.iops: gp3 below 400 GiB has a fixed baseline"),
])
def test_7_storage_rds_refuses_is_a_configuration_error(tmp_path: Path, new: str, expected: str) -> None:
    # dev has 20 GiB: gp3 iops are refused below 400 GiB, io1 needs iops and 100 GiB
    assert expected in problems_of(tmp_path, "dev", "    maxConnections: 500\n", "    maxConnections: 500\n" + new)


def test_7_backup_retention_above_35_days_stays_refused(tmp_path: Path) -> None:
    text = problems_of(tmp_path, "dev", "    backupRetentionDays: 7\n", "    backupRetentionDays: 36\n")
    assert "edumatrix-db:instance.backupRetentionDays" in text


# -- 8. hygiene -------------------------------------------------------------------------------------------

def test_8_extended_support_and_database_insights_are_stated_not_defaulted(prod: Recording) -> None:
    db = primary_instance(prod)
    assert db.inputs["engineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert {r.inputs["databaseInsightsMode"] for r in prod.of_type(INSTANCE)} == {"standard"}


def test_8_the_alarm_topic_is_encrypted_with_a_key_that_only_serves_it(prod: Recording) -> None:
    topic = prod.one("aws:sns/topic:Topic")
    key = next(k for k in prod.of_type("aws:kms/key:Key") if k.props["arn"] == topic.inputs["kmsMasterKeyId"])
    data_key = next(k for k in prod.of_type("aws:kms/key:Key") if k.props["arn"] == prod.outputs["kmsKeyArn"])
    assert key.urn != data_key.urn
    assert "cloudwatch.amazonaws.com" in key.inputs["policy"]
    assert "cloudwatch.amazonaws.com" not in data_key.inputs["policy"]


def test_8_scram_salts_are_random_ids_kept_in_state_not_derived_from_the_password(prod: Recording) -> None:
    salts = [r for r in prod.of_type("random:index/randomId:RandomId") if r.name.endswith("-scram-salt")]
    logins = [r for r in prod.of_type("postgresql:index/role:Role") if r.inputs.get("login")]
    assert len(salts) == len(logins) == 27 + PERSONAL + 4  # every service, GDPR and platform login


def test_8_the_ca_bundle_is_named_relative_to_the_project(prod: Recording) -> None:
    provider = next(p for p in prod.of_type("pulumi:providers:postgresql"))
    assert provider.inputs["sslrootcert"] == "certs/rds-global-bundle.pem"


# -- 9. log hygiene ---------------------------------------------------------------------------------------

def test_9_logs_keep_no_bind_parameters_no_failed_statement_text_and_passwords_are_restricted(
        prod: Recording) -> None:
    sent = parameters(prod)
    assert sent["log_parameter_max_length"] == ("0", "immediate")
    assert sent["log_min_error_statement"] == ("panic", "immediate")
    assert sent["rds.restrict_password_commands"] == ("1", "pending-reboot")
    assert sent["temp_file_limit"] == (str(1024 * 1024), "immediate")  # kB
