"""The metrics job: the ops runner runs the collector (edumatrix_db/ops/metrics.py) as the platform login
edumatrix_ops against the local server and publishes per-service figures to a (stubbed) CloudWatch; a warm
runner's second sample adds the rates of the interval, and a workload the test runs shows up in them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from edumatrix_db.ops import runner
from edumatrix_db.ops.runner import RunnerConfig
from tests.ops_runner_support import SECRET_ARN, StubbedClients, stubbed_clients
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

CALLS = 25


@pytest.fixture
def cold_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh execution environment: no previous sample."""
    monkeypatch.setattr(runner, "_PREVIOUS_SAMPLES", {})


@pytest.fixture
def aws() -> Iterator[StubbedClients]:
    with stubbed_clients() as clients:
        yield clients


def ops_secret(pg: Postgres) -> str:
    uri = urlsplit(pg.connections["platform"]["ops"])
    return json.dumps({"username": unquote(uri.username or ""), "password": unquote(uri.password or ""),
                       "host": uri.hostname, "port": uri.port, "dbname": pg.model.database})


def run_metrics(pg: Postgres, aws: StubbedClients) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One invocation; returns its result and the datums CloudWatch received (validated by botocore)."""
    sent: list[dict[str, Any]] = []
    aws.expect_secret(ops_secret(pg))
    aws.cloudwatch.add_response("put_metric_data", {})  # any datums; botocore still validates the request

    def record(params: dict[str, Any], **_: Any) -> None:
        assert params["Namespace"] == "EduMatrix/Database"
        sent.extend(params["MetricData"])

    aws.clients.cloudwatch.meta.events.register("provide-client-params.cloudwatch.PutMetricData", record)
    config = RunnerConfig(environment="test", secret_arn=SECRET_ARN, sslrootcert=str(pg.server.ca_cert),
                          model={"database": pg.model.database})
    result = runner.run({"job": "metrics"}, config, aws.clients)
    aws.clients.cloudwatch.meta.events.unregister("provide-client-params.cloudwatch.PutMetricData", record)
    return result, sent


def of(datums: list[dict[str, Any]], name: str, service: str) -> list[float]:
    return [d["Value"] for d in datums if d["MetricName"] == name
            and {"Name": "Service", "Value": service} in d["Dimensions"]]


def test_a_cold_runner_publishes_every_services_gauges_and_no_rate(pg: Postgres, cold_runner: None,
                                                                   aws: StubbedClients) -> None:
    result, sent = run_metrics(pg, aws)
    assert result["rates"] is False
    services = {s.service for s in pg.model.services}
    for gauge in ("Connections", "ActiveConnections", "PoolUtilization", "SchemaSize"):
        published = {dim["Value"] for d in sent if d["MetricName"] == gauge
                     for dim in d["Dimensions"] if dim["Name"] == "Service"}
        assert published == services, gauge
    assert not [d for d in sent if d["MetricName"] in ("Statements", "AverageQueryTime")]
    assert all({"Name": "Environment", "Value": "test"} in d["Dimensions"] for d in sent)


def test_the_ops_login_sees_another_services_connection(pg: Postgres, cold_runner: None,
                                                        aws: StubbedClients) -> None:
    with pg.connect(pg.uri("courses_platform", "app")):
        _, sent = run_metrics(pg, aws)
    assert of(sent, "Connections", "courses_platform")[0] >= 1


def test_a_warm_runners_second_sample_publishes_the_statements_of_the_interval(
        pg: Postgres, cold_runner: None, aws: StubbedClients) -> None:
    run_metrics(pg, aws)
    with pg.connect(pg.uri("feedback", "app")) as conn:
        for _ in range(CALLS):
            conn.execute("SELECT pg_sleep(0.001)")
    result, sent = run_metrics(pg, aws)
    assert result["rates"] is True
    assert of(sent, "Statements", "feedback")[0] >= CALLS
    assert of(sent, "AverageQueryTime", "feedback")[0] > 0
