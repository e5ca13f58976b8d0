"""The extraction pooler's tasks looked up from ECS (edumatrix_db/ops/pooler_tasks.py): the exact ECS calls
(botocore's Stubber, no network), the refusals when the set of tasks is not settled, and the CLI wiring of
`--pooler-tasks`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from edumatrix_db.cli import extract as cli
from edumatrix_db.cli import main
from edumatrix_db.ops import pooler_tasks, traffic
from edumatrix_db.ops.pooler_agent import SsmRecordStore
from edumatrix_db.ops.pooler_tasks import PoolerTask, PoolerTasksError, admin_uris, lookup, running_tasks

CLUSTER, SERVICE = "edumatrix-staging-pooler-feedback", "pgbouncer"
ARN = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/"
TEMPLATE = ("postgresql://edumatrix_pooler_admin:secret@TASK:6432/pgbouncer?sslmode=verify-ca"
            "&sslrootcert=/etc/pooler-ca.pem")


def task(suffix: str, address: str = "10.0.1.5", status: str = "RUNNING") -> dict[str, Any]:
    details = [{"name": "subnetId", "value": "subnet-1"}]
    if address:
        details.append({"name": "privateIPv4Address", "value": address})
    return {"taskArn": ARN + suffix, "lastStatus": status,
            "attachments": [{"type": "ElasticNetworkInterface", "details": details}]}


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ecs", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect(stubber: Stubber, desired: int | None, tasks: list[dict[str, Any]]) -> None:
    """The three calls, in order, with exactly these parameters (without DescribeServices: `desired` None)."""
    if desired is not None:
        stubber.add_response("describe_services", {"services": [{"serviceName": SERVICE, "status": "ACTIVE",
                                                                 "desiredCount": desired}]},
                             {"cluster": CLUSTER, "services": [SERVICE]})
    arns = [t["taskArn"] for t in tasks]
    stubber.add_response("list_tasks", {"taskArns": arns},
                         {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "RUNNING"})
    if arns:
        stubber.add_response("describe_tasks", {"tasks": tasks, "failures": []}, {"cluster": CLUSTER, "tasks": arns})


def test_the_desired_count_of_running_tasks_gives_each_tasks_private_address(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("b", "10.0.2.7"), task("a", "10.0.1.5")])
    assert running_tasks(client, CLUSTER, SERVICE) == [PoolerTask(ARN + "a", "10.0.1.5"),
                                                       PoolerTask(ARN + "b", "10.0.2.7")]


def test_fewer_tasks_than_the_desired_count_are_refused(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a")])
    with pytest.raises(PoolerTasksError, match="1 task\\(s\\) to run but the service wants 2"):
        running_tasks(client, CLUSTER, SERVICE)


def test_one_task_more_than_desired_during_a_deployment_is_refused(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a", "10.0.1.5"), task("b", "10.0.2.7"), task("c", "10.0.1.9")])
    with pytest.raises(PoolerTasksError, match="3 task\\(s\\) to run but the service wants 2"):
        running_tasks(client, CLUSTER, SERVICE)


def test_the_relisting_inside_a_freeze_takes_every_running_task_whatever_the_count(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, None, [task("a", "10.0.1.5"), task("b", "10.0.2.7"), task("c", "10.0.1.9"),
                        task("d", "10.0.2.8", status="PENDING"), task("e", "")])
    assert [t.arn[-1] for t in running_tasks(client, CLUSTER, SERVICE, settled=False)] == ["a", "b", "c"]


def test_a_task_still_starting_is_refused_naming_it(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a"), task("b", "10.0.2.7", status="PROVISIONING")])
    with pytest.raises(PoolerTasksError, match=f"{ARN}b is PROVISIONING"):
        running_tasks(client, CLUSTER, SERVICE)


def test_a_running_task_without_an_address_is_refused(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    expect(stubber, 1, [task("a", address="")])
    with pytest.raises(PoolerTasksError, match="has no private IPv4 address"):
        running_tasks(client, CLUSTER, SERVICE)


def test_a_service_that_is_not_active_is_refused(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    stubber.add_response("describe_services", {"services": [], "failures": [
        {"arn": f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}", "reason": "MISSING"}]},
        {"cluster": CLUSTER, "services": [SERVICE]})
    with pytest.raises(PoolerTasksError, match=r"is not active.*MISSING"):
        running_tasks(client, CLUSTER, SERVICE)


def test_an_ecs_error_becomes_a_refusal_naming_the_service(ecs: tuple[Any, Stubber]) -> None:
    client, stubber = ecs
    stubber.add_client_error("describe_services", "AccessDeniedException", "not authorized to ecs:DescribeServices")
    with pytest.raises(PoolerTasksError, match=rf"cannot list the tasks of {CLUSTER}/{SERVICE}.*not authorized"):
        lookup(f"ecs:{CLUSTER}/{SERVICE}", TEMPLATE, client)


def test_each_admin_uri_is_the_template_with_the_tasks_address() -> None:
    uris = admin_uris(TEMPLATE, [PoolerTask("a", "10.0.1.5"), PoolerTask("b", "10.0.2.7")])
    assert uris == [TEMPLATE.replace("@TASK:", "@10.0.1.5:"), TEMPLATE.replace("@TASK:", "@10.0.2.7:")]


@pytest.mark.parametrize("spec", ["edumatrix/pgbouncer", "ecs:edumatrix", "ecs:/pgbouncer", "ecs:a/b/c"])
def test_a_target_that_is_not_ecs_cluster_slash_service_is_refused(spec: str) -> None:
    with pytest.raises(PoolerTasksError, match="expected ecs:CLUSTER/SERVICE"):
        pooler_tasks.parse_target(spec)


def _args(*extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parsers(parser.add_subparsers())
    return parser.parse_args(["extract", "feedback", "cutover", "--source", "postgresql://m@source.example/edumatrix",
                              "--target", "postgresql://m@target.example/edumatrix", *extra])


def test_pooler_tasks_switches_every_running_task_through_its_admin_console(
        ecs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a", "10.0.1.5"), task("b", "10.0.2.7")])
    monkeypatch.setattr(pooler_tasks, "ecs_client", lambda region=None, **_: client)
    switch = cli._switch(_args("--pooler-record", "/tmp/feedback-backend.json", "--pooler-pool", "edumatrix",
                               "--pooler-tasks", f"ecs:{CLUSTER}/{SERVICE}", "--pooler-admin-template", TEMPLATE))
    assert isinstance(switch, traffic.AgentPoolerSet)
    assert [c.name for c in switch.switches] == ["10.0.1.5:6432/pgbouncer", "10.0.2.7:6432/pgbouncer"]


def test_inside_the_freeze_the_switch_relists_every_running_task_whatever_the_count(
        ecs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a", "10.0.1.5"), task("b", "10.0.2.7")])
    expect(stubber, None, [task("a", "10.0.1.5"), task("b", "10.0.2.7"), task("c", "10.0.1.9")])
    monkeypatch.setattr(pooler_tasks, "ecs_client", lambda region=None, **_: client)
    switch = cli._switch(_args("--pooler-record", "/tmp/feedback-backend.json", "--pooler-pool", "edumatrix",
                               "--pooler-tasks", f"ecs:{CLUSTER}/{SERVICE}", "--pooler-admin-template", TEMPLATE))
    assert isinstance(switch, traffic.AgentPoolerSet)
    assert switch.discover is not None
    assert [c.name for c in switch.discover()] == [
        "10.0.1.5:6432/pgbouncer", "10.0.2.7:6432/pgbouncer", "10.0.1.9:6432/pgbouncer"]


def _outputs(tmp_path: Path, **extra: Any) -> Path:
    """A file as `pulumi stack output --json` writes it for staging (values as the plan names them)."""
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({
        "extractionPoolers": {"feedback": {"backendParameter": "/edumatrix-staging/extraction/feedback/pooler-backend",
                                           "poolerTasks": f"ecs:{CLUSTER}/{SERVICE}", "dnsName": "x",
                                           "adminSecretArn": "arn:x"}},
        "opsRunnerAwsEndpoints": {"EDUMATRIX_SSM_ENDPOINT": "https://vpce-1-ssm.example",
                                  "EDUMATRIX_ECS_ENDPOINT": "https://vpce-1-ecs.example"}, **extra}))
    return path


def test_the_stack_outputs_give_the_switch_its_record_tasks_and_endpoints(
        ecs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a", "10.0.1.5"), task("b", "10.0.2.7")])
    asked: list[str | None] = []

    def ecs_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
        asked.append(endpoint_url)
        return client

    monkeypatch.setattr(pooler_tasks, "ecs_client", ecs_client)
    monkeypatch.delenv(pooler_tasks.SSM_ENDPOINT_VARIABLE, raising=False)
    monkeypatch.delenv(pooler_tasks.ECS_ENDPOINT_VARIABLE, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    switch = cli._switch(_args("--stack-outputs", str(_outputs(tmp_path)), "--pooler-pool", "edumatrix",
                               "--pooler-admin-template", TEMPLATE))
    assert isinstance(switch, traffic.AgentPoolerSet)
    assert isinstance(switch.store, SsmRecordStore)
    assert (switch.store.describe(), switch.store.client.meta.endpoint_url, asked,
            [c.name for c in switch.switches]) == (
        "ssm:/edumatrix-staging/extraction/feedback/pooler-backend", "https://vpce-1-ssm.example",
        ["https://vpce-1-ecs.example"], ["10.0.1.5:6432/pgbouncer", "10.0.2.7:6432/pgbouncer"])


def test_stack_outputs_without_the_services_pooler_exit_2_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps({"opsRunnerFunctionName": "edumatrix-prod-ops-runner"}))
    code = main(["extract", "feedback", "cutover", "--source", "host=/nonexistent", "--target", "host=/nonexistent",
                 "--stack-outputs", str(path), "--pooler-admin-template", TEMPLATE])
    said = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert (code, "no extractionPoolers.feedback.backendParameter" in said) == (2, True)


def test_pooler_tasks_with_a_pooler_admin_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "feedback", "cutover", "--source", "host=/nonexistent", "--target", "host=/nonexistent",
                 "--pooler-record", "/tmp/feedback-backend.json", "--pooler-tasks", f"ecs:{CLUSTER}/{SERVICE}",
                 "--pooler-admin-template", TEMPLATE, "--pooler-admin", "postgresql://a@127.0.0.1:1/pgbouncer"])
    assert (code, "and no --pooler-admin" in capsys.readouterr().err) == (2, True)


def test_pooler_tasks_that_are_not_settled_exit_2_before_anything_changes(
        ecs: tuple[Any, Stubber], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client, stubber = ecs
    expect(stubber, 2, [task("a")])
    monkeypatch.setattr(pooler_tasks, "ecs_client", lambda region=None, **_: client)
    code = main(["extract", "feedback", "cutover", "--source", "host=/nonexistent", "--target", "host=/nonexistent",
                 "--pooler-record", "/tmp/feedback-backend.json", "--pooler-tasks", f"ecs:{CLUSTER}/{SERVICE}",
                 "--pooler-admin-template", TEMPLATE])
    assert (code, "is not settled" in capsys.readouterr().err) == (2, True)
