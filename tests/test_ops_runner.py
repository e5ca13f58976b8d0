"""The ops runner's handler without a database: event shapes, the job registry, configuration, metric batches.
(Against the real local server: tests/pg/test_ops_runner.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edumatrix_db.ops import runner
from edumatrix_db.ops.runner import Job, JobContext, RunnerConfig, RunnerError
from tests.ops_runner_support import SECRET_ARN, datum, stubbed_clients

CONFIG = RunnerConfig(environment="test", secret_arn=SECRET_ARN)


@pytest.fixture
def echo_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that returns the event it was given and adds one datapoint."""

    def echo(ctx: JobContext) -> dict[str, Any]:
        ctx.metrics.add("Echo", 1, Rule="echo")
        return {"received": dict(ctx.event or {}), "readOnly": ctx.read_only}

    monkeypatch.setitem(runner.JOBS, "echo", Job("echo", echo))


def test_the_runner_registers_the_jobs_of_this_issue() -> None:
    assert {"ping", "audit"} <= set(runner.JOBS)


def test_a_job_name_can_be_registered_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        runner.job("ping")(lambda ctx: {})


def test_a_scheduled_event_names_the_job_and_its_metrics_are_published(echo_job: None) -> None:
    with stubbed_clients() as aws:
        aws.expect_metrics("EduMatrix/Database", [datum("Echo", 1, Rule="echo")])
        result = runner.run({"job": "echo"}, CONFIG, aws.clients)
    assert result == {"job": "echo", "ok": True, "metrics": 1, "putMetricDataCalls": 1, "received": {},
                      "readOnly": True}


def test_an_eventbridge_event_reaches_the_job_wrapped_by_the_rules_input_transformer(echo_job: None) -> None:
    backup_event = {"source": "aws.backup", "detail-type": "Restore Job State Change",
                    "detail": {"restoreJobId": "r-1", "status": "COMPLETED"}}
    with stubbed_clients() as aws:
        aws.expect_metrics("EduMatrix/Database", [datum("Echo", 1, Rule="echo")])
        result = runner.run({"job": "echo", "event": backup_event}, CONFIG, aws.clients)
    assert result["received"] == backup_event


def test_a_raw_eventbridge_event_is_refused_with_the_shape_to_route_it() -> None:
    with pytest.raises(RunnerError, match=r"input transformer.*<aws\.events\.event\.json>"):
        runner.parse_event({"source": "aws.backup", "detail-type": "Restore Job State Change", "detail": {}})


def test_an_unknown_job_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(RunnerError, match=r"unknown job 'audits'; jobs: .*audit.*ping"):
        runner.parse_event({"job": "audits"})


def test_a_carried_event_must_be_an_object() -> None:
    with pytest.raises(RunnerError, match="JSON object"):
        runner.parse_event({"job": "ping", "event": "not an object"})


def test_datapoints_beyond_a_thousand_go_out_in_several_put_metric_data_calls() -> None:
    """PutMetricData accepts at most 1000 metrics per request."""
    metrics = runner.Metrics("EduMatrix/Database", "test")
    for i in range(2500):
        metrics.add("Many", i)
    with stubbed_clients() as aws:
        for start in (0, 1000, 2000):
            aws.expect_metrics("EduMatrix/Database", metrics.data[start:start + 1000])
        assert metrics.publish(aws.clients.cloudwatch) == 3


def test_a_job_that_fails_publishes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: JobContext) -> dict[str, Any]:
        ctx.metrics.add("Half", 1)
        raise RuntimeError("boom")

    monkeypatch.setitem(runner.JOBS, "broken", Job("broken", broken))
    with stubbed_clients() as aws, pytest.raises(RuntimeError, match="boom"):
        runner.run({"job": "broken"}, CONFIG, aws.clients)  # the Stubber fails any unexpected call


def test_the_configuration_comes_from_the_functions_environment() -> None:
    config = RunnerConfig.from_environ({
        "EDUMATRIX_ENVIRONMENT": "prod", "EDUMATRIX_DB_SECRET_ARN": SECRET_ARN,
        "EDUMATRIX_DB_HOST": "db.example.internal", "EDUMATRIX_DB_PORT": "5432", "EDUMATRIX_DB_NAME": "edumatrix",
        "EDUMATRIX_DB_MODEL": json.dumps({"database": "edumatrix", "services": {"feedback": {"pool_size": 7}}}),
    })
    assert (config.environment, config.host, config.port, config.namespace) == (
        "prod", "db.example.internal", 5432, "EduMatrix/Database")
    assert config.sslrootcert.endswith("certs/rds-global-bundle.pem")


def test_a_missing_environment_variable_is_named() -> None:
    with pytest.raises(RunnerError, match="EDUMATRIX_DB_SECRET_ARN"):
        RunnerConfig.from_environ({"EDUMATRIX_ENVIRONMENT": "prod"})


def test_the_access_model_carries_the_stacks_service_overrides() -> None:
    config = RunnerConfig(environment="dev", secret_arn=SECRET_ARN,
                          model={"database": "edumatrix", "services": {"feedback": {"pool_size": 7}}})
    app = config.access_model().service("feedback").role("app")
    assert app.connection_limit == 7


def test_the_statement_timeout_ends_before_the_invocation() -> None:
    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 120_000

    assert runner.statement_timeout_for(Context()) == 115_000
    assert runner.statement_timeout_for(None) == runner.DEFAULT_STATEMENT_TIMEOUT_MS


def test_a_secret_without_credentials_is_reported_by_its_arn() -> None:
    with stubbed_clients() as aws:
        aws.expect_secret(json.dumps({"host": "db"}))
        ctx = JobContext("ping", CONFIG, aws.clients, runner.Metrics("N", "test"))
        with pytest.raises(RunnerError, match=f"{SECRET_ARN} lacks username or password"):
            ctx.conninfo()


def test_findings_without_a_known_service_count_for_the_platform() -> None:
    class F:
        def __init__(self, service: str | None) -> None:
            self.service = service

    counts = runner.findings_by_service([F("feedback"), F(None), F("feedback"), F("gone")], ["feedback", "news"])
    assert counts == {"feedback": 2, "news": 0, "platform": 2}


def test_the_aws_clients_use_the_runners_own_vpc_endpoints_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # Lambda sets AWS_REGION
    clients = runner.aws_clients({
        "EDUMATRIX_SECRETSMANAGER_ENDPOINT": "https://vpce-0abc-secretsmanager.us-east-1.vpce.amazonaws.com",
        "EDUMATRIX_CLOUDWATCH_ENDPOINT": "https://vpce-0def-monitoring.us-east-1.vpce.amazonaws.com",
    })
    assert clients.secrets.meta.endpoint_url == "https://vpce-0abc-secretsmanager.us-east-1.vpce.amazonaws.com"
    assert clients.cloudwatch.meta.endpoint_url == "https://vpce-0def-monitoring.us-east-1.vpce.amazonaws.com"


def test_the_log_keeps_the_first_findings_and_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    class F:
        rule, service, object, message, fix = "naming", "feedback", "table x", "badly named", "rename it"

    with caplog.at_level("WARNING", logger="edumatrix_db.ops.runner"):
        assert runner.log_findings([F()] * 5, limit=3) == 3
    assert caplog.records[-1].getMessage() == (
        "2 more audit findings not logged; run `edumatrix-db audit` for all")
    assert caplog.records[0].getMessage() == "audit finding [naming] feedback table x: badly named (fix: rename it)"
