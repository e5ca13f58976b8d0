"""The extraction pooler, declared (issue 13; components/service_pooler.py): staging extracts `feedback` in phase
replicate, so its plan holds PgBouncer on ECS Fargate behind an internal NLB, the service's name leading to it.
The other phases are in tests/test_extraction_plans.py (the pooler exists exactly where FACTS says)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.service_pooler import ADMIN_USER, NAME_MAX, POOLER_PORT, RUN_DIR, elb_name
from config.catalog import load_catalog
from config.errors import ConfigError
from config.loader import read_stack_config, validate_config
from config.settings import StackSettings
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from edumatrix_db.ops.pooler_agent import BackendRecord, configured_backends, render

STACK = "staging"
PREFIX = "edumatrix-staging-pooler-feedback"
DIGEST = "sha256:4b7d1c1f0e2a9c3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5"
TLS_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:edumatrix-staging/pooler-tls-AbCdEf"
POOLER_KEY = "edumatrix-db:extractionPooler"
PARAMETER = "/edumatrix-staging/extraction/feedback/pooler-backend"


@pytest.fixture(scope="module")
def staging(planner: Planner) -> Recording:
    return planner.plan(STACK)


def _named(rec: Recording, name: str) -> RecordedResource:
    return next(r for r in rec.resources if r.name == name)


def _container(rec: Recording) -> dict[str, Any]:
    [container] = json.loads(_named(rec, f"{PREFIX}-task").props["containerDefinitions"])
    return dict(container)


def _env(rec: Recording) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(rec)["environment"]}


def test_the_image_is_the_stacks_repository_pinned_by_digest(staging: Recording) -> None:
    assert _container(staging)["image"] == (
        f"123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/pgbouncer@{DIGEST}")


def test_pgbouncer_pools_in_transaction_mode_and_verifies_the_instances(staging: Recording) -> None:
    env = _env(staging)
    assert (env["PGBOUNCER_POOL_MODE"], env["PGBOUNCER_SERVER_TLS_SSLMODE"], env["PGBOUNCER_CLIENT_TLS_SSLMODE"]) == (
        "transaction", "verify-full", "require")


def test_the_task_learns_its_backend_from_the_record_not_from_the_phase(staging: Recording) -> None:
    env = _env(staging)
    assert (env["EDUMATRIX_POOLER_RECORD"], "PGBOUNCER_SOURCE" in env, "PGBOUNCER_TARGET" in env) == (
        f"ssm:{PARAMETER}", False, False)


def test_the_backend_record_first_leads_to_the_shared_instance(staging: Recording) -> None:
    record = _named(staging, f"{PREFIX}-backend").inputs
    shared = _named(staging, "edumatrix-staging-db").props
    assert (record["name"], record["type"], record["tier"]) == (PARAMETER, "String", "Standard")
    assert BackendRecord.from_json(record["insecureValue"]) == BackendRecord(shared["address"], 5432, "edumatrix", 0)


def test_a_pulumi_up_never_moves_the_backend_record(staging: Recording) -> None:
    assert _named(staging, f"{PREFIX}-backend").ignore_changes == ("insecureValue",)


def test_the_task_role_may_only_read_its_backend_record(staging: Recording) -> None:
    task = _named(staging, f"{PREFIX}-task").inputs
    policy = json.loads(_named(staging, f"{PREFIX}-task-policy").props["policy"])
    assert task["taskRoleArn"] == _named(staging, f"{PREFIX}-task-role").props["arn"]
    assert [(s["Action"], s["Resource"]) for s in policy["Statement"]] == [
        ("ssm:GetParameter", _named(staging, f"{PREFIX}-backend").props["arn"])]


def test_only_ecs_tasks_of_the_stacks_account_assume_the_task_role(staging: Recording) -> None:
    [statement] = json.loads(_named(staging, f"{PREFIX}-task-role").inputs["assumeRolePolicy"])["Statement"]
    assert (statement["Principal"], statement["Condition"]) == (
        {"Service": "ecs-tasks.amazonaws.com"}, {"StringEquals": {"aws:SourceAccount": "123456789012"}})


def test_the_ops_runner_may_switch_the_record_and_read_the_admin_secret(staging: Recording) -> None:
    runner = _named(staging, f"{PREFIX}-runner-policy")
    statements = {s["Sid"]: s for s in json.loads(runner.props["policy"])["Statement"]}
    assert runner.inputs["role"] == _named(staging, "edumatrix-staging-ops-runner-role").props["arn"].rsplit("/")[-1]
    assert (statements["SwitchTheBackendRecord"]["Action"], statements["SwitchTheBackendRecord"]["Resource"]) == (
        ["ssm:GetParameter", "ssm:PutParameter"], _named(staging, f"{PREFIX}-backend").props["arn"])
    assert statements["ReadThePoolerAdminSecret"]["Resource"] == _named(staging, f"{PREFIX}-admin-secret").props["arn"]


def test_the_ops_runner_may_list_and_describe_the_pooler_tasks_of_this_cluster_only(staging: Recording) -> None:
    statements = {s["Sid"]: s for s in json.loads(_named(staging, f"{PREFIX}-runner-policy").props["policy"])[
        "Statement"]}
    cluster = _named(staging, f"{PREFIX}-cluster").props["arn"]
    listing, describing = statements["ListThePoolerTasks"], statements["DescribeThePoolerTasks"]
    assert (listing["Action"], listing["Resource"], listing["Condition"]) == (
        "ecs:ListTasks", "*", {"ArnEquals": {"ecs:cluster": cluster}})
    assert (describing["Action"], describing["Resource"], describing["Condition"]) == (
        ["ecs:DescribeServices", "ecs:DescribeTasks"],
        [cluster.replace(":cluster/", ":service/") + "/pgbouncer", cluster.replace(":cluster/", ":task/") + "/*"],
        {"ArnEquals": {"ecs:cluster": cluster}})


def test_the_agent_renders_pgbouncer_from_exactly_what_the_task_definition_gives_it(staging: Recording) -> None:
    container = _container(staging)
    env = {e["name"]: e["value"] for e in container["environment"]} | {s["name"]: "x" for s in container["secrets"]}
    files = render(env, BackendRecord("db.example", 5432, "edumatrix"), Path(RUN_DIR))
    assert configured_backends(files["pgbouncer.ini"], ("edumatrix",)) == {
        "edumatrix": ("db.example", 5432, "edumatrix")}


def test_the_read_only_container_writes_pgbouncers_files_to_a_task_volume(staging: Recording) -> None:
    task = _named(staging, f"{PREFIX}-task").inputs
    assert task["volumes"] == [{"name": "pgbouncer-run"}]
    assert _container(staging)["mountPoints"] == [
        {"sourceVolume": "pgbouncer-run", "containerPath": "/run/pgbouncer", "readOnly": False}]


def test_every_password_and_the_tls_key_come_from_secrets_manager_not_the_environment(staging: Recording) -> None:
    container = _container(staging)
    secrets = {s["name"]: s["valueFrom"] for s in container["secrets"]}
    assert set(secrets) == {"PGBOUNCER_ADMIN_PASSWORD", "PGBOUNCER_TLS_CERTIFICATE", "PGBOUNCER_TLS_KEY",
                            "PGBOUNCER_PASSWORD_FEEDBACK_APP", "PGBOUNCER_PASSWORD_FEEDBACK_READONLY"}
    assert secrets["PGBOUNCER_TLS_KEY"] == f"{TLS_SECRET}:privateKey::"
    assert all(v.startswith("arn:aws:secretsmanager:") for v in secrets.values())
    assert not any("PASSWORD" in e["name"] or "KEY" in e["name"] for e in container["environment"])


def test_the_execution_role_reads_exactly_the_poolers_image_logs_and_secrets(staging: Recording) -> None:
    policy = json.loads(_named(staging, f"{PREFIX}-execution-policy").props["policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["PullThePoolerImage"]["Resource"] == (
        "arn:aws:ecr:us-east-1:123456789012:repository/platform/pgbouncer")
    assert by_sid["WriteItsLogs"]["Resource"] == _named(staging, f"{PREFIX}-logs").props["arn"] + ":*"
    readable = set(by_sid["ReadItsSecrets"]["Resource"])
    app = _named(staging, "feedback-app-secret").props["arn"]
    readonly = _named(staging, "feedback-readonly-secret").props["arn"]
    admin = _named(staging, f"{PREFIX}-admin-secret").props["arn"]
    assert readable == {app, readonly, admin, TLS_SECRET}
    assert by_sid["DecryptThemThroughSecretsManager"]["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}


NLB_ADDRESSES = {"subnet-0b1b2c3d4e5f60001": "10.20.1.250", "subnet-0b1b2c3d4e5f60002": "10.20.2.250"}


def test_the_nlb_takes_the_stacks_fixed_address_in_each_subnet(staging: Recording) -> None:
    nlb = _named(staging, f"{PREFIX}-nlb").inputs
    assert {m["subnetId"]: m["privateIpv4Address"] for m in nlb["subnetMappings"]} == NLB_ADDRESSES


def test_through_the_nlb_a_connection_arrives_from_the_nlbs_address(staging: Recording) -> None:
    assert _named(staging, f"{PREFIX}-targets").inputs["preserveClientIp"] == "false"


def test_the_tasks_are_told_the_nlbs_addresses_to_refuse_the_admin_console(staging: Recording) -> None:
    assert _env(staging)["PGBOUNCER_NLB_ADDRESSES"] == "10.20.1.250,10.20.2.250"


def test_two_tasks_run_over_the_stacks_subnets_without_public_addresses(staging: Recording) -> None:
    service = _named(staging, f"{PREFIX}-service").inputs
    assert service["desiredCount"] == 2
    assert service["launchType"] == "FARGATE"
    assert service["networkConfiguration"]["subnets"] == ["subnet-0b1b2c3d4e5f60001", "subnet-0b1b2c3d4e5f60002"]
    assert service["networkConfiguration"]["assignPublicIp"] is False


def test_the_nlb_passes_postgresql_through_as_tcp_to_pgbouncer(staging: Recording) -> None:
    listener = _named(staging, f"{PREFIX}-listener").inputs
    group = _named(staging, f"{PREFIX}-targets")
    nlb = _named(staging, f"{PREFIX}-nlb").inputs
    assert (listener["protocol"], listener["port"]) == ("TCP", 5432)
    assert listener["defaultActions"][0]["targetGroupArn"] == group.props["arn"]
    assert (group.inputs["protocol"], group.inputs["port"], group.inputs["targetType"]) == ("TCP", POOLER_PORT, "ip")
    assert (nlb["loadBalancerType"], nlb["internal"]) == ("network", True)


def _rules(rec: Recording, kind: str, group_id: str) -> list[dict[str, Any]]:
    return [r.inputs for r in rec.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule")
            if r.inputs["securityGroupId"] == group_id]


def test_pgbouncer_is_reached_only_from_its_nlb_and_the_ops_runner(staging: Recording) -> None:
    tasks = _named(staging, f"{PREFIX}-task-sg").id
    nlb = _named(staging, f"{PREFIX}-nlb-sg").id
    runner = _named(staging, "edumatrix-staging-ops-runner-sg").id
    assert tasks is not None  # the mocks give every registered resource a physical id
    assert runner is not None
    sources = {(r["referencedSecurityGroupId"], r["fromPort"]) for r in _rules(staging, "Ingress", tasks)}
    assert sources == {(nlb, POOLER_PORT), (runner, POOLER_PORT)}
    assert {(r.get("referencedSecurityGroupId"), r["fromPort"]) for r in _rules(staging, "Egress", runner)} >= {
        (tasks, POOLER_PORT)}


def test_both_instances_admit_the_pooler_tasks(staging: Recording) -> None:
    tasks = _named(staging, f"{PREFIX}-task-sg").id
    for instance in ("edumatrix-staging-db", "edumatrix-staging-feedback-db"):
        [group] = _named(staging, instance).inputs["vpcSecurityGroupIds"]
        assert any(r.get("referencedSecurityGroupId") == tasks for r in _rules(staging, "Ingress", group)), instance


def test_the_admin_console_password_is_a_cmk_encrypted_secret(staging: Recording) -> None:
    secret = _named(staging, f"{PREFIX}-admin-secret").inputs
    assert secret["name"] == "edumatrix-staging/extraction/feedback/pooler-admin"
    assert secret["kmsKeyId"] == _named(staging, "edumatrix-staging-db").inputs["kmsKeyId"]
    assert f'"username": "{ADMIN_USER}"' in _named(staging, f"{PREFIX}-admin-value").props["secretString"]


def test_the_logs_go_to_a_cmk_encrypted_group(staging: Recording) -> None:
    logs = _named(staging, f"{PREFIX}-logs").inputs
    assert logs["kmsKeyId"] == _named(staging, "edumatrix-staging-db").inputs["kmsKeyId"]
    assert _container(staging)["logConfiguration"]["options"]["awslogs-group"] == logs["name"]


def test_the_pooler_alarms_page_the_regions_alarm_topic(staging: Recording) -> None:
    topic = next(r for r in staging.of_type("aws:sns/topic:Topic") if r.name == "edumatrix-staging-alarms-topic")
    alarms = {r.name: r.inputs for r in staging.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
              if r.name.startswith(PREFIX)}
    assert {a["metricName"] for a in alarms.values()} == {"UnHealthyHostCount", "HealthyHostCount",
                                                          "RunningTaskCount"}
    assert all(a["alarmActions"] == [topic.props["arn"]] for a in alarms.values())


def test_the_services_connection_settings_lead_to_the_pooler_by_its_own_name(staging: Recording) -> None:
    feedback = staging.outputs["connections"]["feedback"]
    assert feedback["viaExtractionPooler"] is True
    assert feedback["viaProxy"] is False
    app = feedback["app"]
    assert (app["host"], app["tlsServerName"], app["sslrootcert"]) == (
        feedback["host"], feedback["host"], "the EDU Matrix private CA (edumatrix-internal-ca.pem)")
    # migrations never go through PgBouncer (session state, DDL): to the instance
    assert feedback["migrations"]["host"] == _named(staging, "edumatrix-staging-db").props["address"]


def test_the_stack_outputs_the_poolers_name_and_admin_secret(staging: Recording) -> None:
    assert set(staging.outputs["extractionPoolers"]["feedback"]) == {"dnsName", "adminSecretArn", "backendParameter",
                                                                     "poolerTasks"}


def test_the_stack_outputs_the_poolers_tasks_as_the_cutover_names_them(staging: Recording) -> None:
    cluster = _named(staging, f"{PREFIX}-cluster").props["name"]
    assert staging.outputs["extractionPoolers"]["feedback"]["poolerTasks"] == f"ecs:{cluster}/pgbouncer"


def test_the_stack_outputs_the_runners_endpoints_the_switch_uses(staging: Recording) -> None:
    [variables] = [v for f in staging.of_type("aws:lambda/function:Function")
                   if "EDUMATRIX_SSM_ENDPOINT" in (v := (f.inputs.get("environment") or {}).get("variables") or {})]
    endpoints = staging.outputs["opsRunnerAwsEndpoints"]
    assert {k: variables[k] for k in ("EDUMATRIX_SSM_ENDPOINT", "EDUMATRIX_ECS_ENDPOINT")} == {
        k: endpoints[k] for k in ("EDUMATRIX_SSM_ENDPOINT", "EDUMATRIX_ECS_ENDPOINT")}


@pytest.mark.parametrize("prefix", ["edumatrix-staging", "edumatrix-prod-eu-west-1", "x" * 40])
def test_load_balancer_names_fit_elb_and_stay_distinct_per_service(prefix: str) -> None:
    names = [elb_name(prefix, s.name) for s in load_catalog()]
    assert all(len(n) <= NAME_MAX and not n.endswith("-") for n in names)
    assert len(set(names)) == len(names)


# -- the loader ------------------------------------------------------------------------------------------

def _load(**pooler: Any) -> StackSettings:
    config, source = read_stack_config(STACK)
    config = copy.deepcopy(config)
    config[POOLER_KEY] = {**config[POOLER_KEY], **pooler}
    for key in [k for k, v in pooler.items() if v is None]:
        del config[POOLER_KEY][key]
    return validate_config(config, stack=STACK, source=source)


def _problems(**pooler: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as caught:
        _load(**pooler)
    return [(p.key, p.fix) for p in caught.value.problems]


def test_a_pooled_phase_without_the_image_digest_is_refused_naming_the_key() -> None:
    [(key, fix)] = _problems(imageDigest=None)
    assert key == f"{POOLER_KEY}.imageDigest"
    assert "aws ecr describe-images" in fix


def test_an_image_tag_instead_of_a_digest_is_refused() -> None:
    [(key, fix)] = _problems(imageDigest="latest")
    assert key == f"{POOLER_KEY}.imageDigest"
    assert "sha256:" in fix


def test_a_pooled_phase_without_the_nlb_addresses_is_refused_naming_the_key() -> None:
    [(key, fix)] = _problems(nlbAddresses=None)
    assert key == f"{POOLER_KEY}.nlbAddresses"
    assert "first four or last address" in fix


def test_a_subnet_without_an_nlb_address_is_refused_naming_it() -> None:
    [(key, fix)] = _problems(nlbAddresses={"subnet-0b1b2c3d4e5f60001": "10.20.1.250"})
    assert (key, fix) == (f"{POOLER_KEY}.nlbAddresses", "add 'subnet-0b1b2c3d4e5f60002: <a free private IPv4 "
                                                          "address inside that subnet's CIDR>'")


def test_an_nlb_address_for_a_subnet_the_stack_does_not_use_is_refused() -> None:
    [(key, _)] = _problems(nlbAddresses={**NLB_ADDRESSES, "subnet-0b1b2c3d4e5f60003": "10.20.3.250"})
    assert key == f"{POOLER_KEY}.nlbAddresses.subnet-0b1b2c3d4e5f60003"


def test_a_public_nlb_address_is_refused() -> None:
    [(key, _)] = _problems(nlbAddresses={**NLB_ADDRESSES, "subnet-0b1b2c3d4e5f60002": "8.8.8.8"})
    assert key.startswith(f"{POOLER_KEY}.nlbAddresses")


def test_a_fargate_size_that_does_not_exist_is_refused() -> None:
    [(key, fix)] = _problems(cpu=256, memoryMb=4096)
    assert key == f"{POOLER_KEY}.memoryMb"
    assert fix == "with cpu 256 choose memoryMb from 512, 1024, 2048"


def test_a_single_pooler_task_is_refused() -> None:
    [(key, _)] = _problems(taskCount=1)
    assert key == f"{POOLER_KEY}.taskCount"


def test_a_pooled_phase_without_the_ops_runner_is_refused() -> None:
    config, source = read_stack_config(STACK)
    config = {**config, "edumatrix-db:opsRunner": {"enabled": False}}
    with pytest.raises(ConfigError) as caught:
        validate_config(config, stack=STACK, source=source)
    assert [(p.key, p.message, p.fix) for p in caught.value.problems] == [(
        "edumatrix-db:opsRunner.enabled", "the extraction of feedback (phase replicate) has a pooler whose admin "
        "console only the ops runner's security group may reach, and the ops runner is off",
        "remove the key (the runner is on by default)")]


def test_a_stack_without_a_pooled_extraction_needs_no_pooler_settings() -> None:
    config, source = read_stack_config("prod")
    assert POOLER_KEY not in config
    assert validate_config(config, stack="prod", source=source).extraction_pooler.missing()


def test_an_nlb_address_for_a_subnet_the_stack_does_not_use_is_told_the_subnets_it_may_name() -> None:
    [(_, fix)] = _problems(nlbAddresses={**NLB_ADDRESSES, "subnet-0b1b2c3d4e5f60003": "10.20.3.250"})
    assert fix == ("remove it, or add the subnet to network.subnetIds; allowed: subnet-0b1b2c3d4e5f60001, "
                   "subnet-0b1b2c3d4e5f60002")
