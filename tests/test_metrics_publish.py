"""Publishing a collector sample to CloudWatch (botocore's Stubber checks every request against the API
model): Service and Environment dimensions, units, batches within PutMetricData's limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from edumatrix_db.ops.metrics import (
    MAX_DATUMS_PER_REQUEST,
    NAMESPACE,
    Sample,
    ServiceFigures,
    batches,
    metric_data,
    publish,
)

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def figures(service: str, *, statements: int | None = 10, average: float | None = 12.5) -> ServiceFigures:
    return ServiceFigures(service=service, connections=5, active=2, idle_in_transaction=1, lock_waits=0,
                          app_connections=4, app_pool_size=20, calls_total=100, exec_time_ms_total=900.0,
                          schema_size_bytes=8192, statements=statements, average_query_ms=average)


def sample(services: tuple[ServiceFigures, ...], cache_hit: float | None = 99.0) -> Sample:
    return Sample(taken_at=NOW, database="edumatrix", max_connections=500, connections_total=12,
                  lock_waits_total=0, database_size_bytes=10_000_000, blocks_hit=1, blocks_read=1,
                  services=services, cache_hit_percent=cache_hit)


@pytest.fixture
def cloudwatch() -> Any:  # a boto3 client: boto3 has no type stubs here
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_each_service_metric_carries_environment_and_service_dimensions() -> None:
    data = metric_data(sample((figures("feedback"),)), environment="prod")
    per_service = [d for d in data if len(d["Dimensions"]) == 2]
    assert {d["MetricName"] for d in per_service} == {
        "Connections", "ActiveConnections", "IdleInTransactionConnections", "LockWaits", "PoolUtilization",
        "Statements", "AverageQueryTime", "SchemaSize"}
    assert {tuple((x["Name"], x["Value"]) for x in d["Dimensions"]) for d in per_service} == {
        (("Environment", "prod"), ("Service", "feedback"))}
    by_name = {d["MetricName"]: d for d in per_service}
    assert (by_name["AverageQueryTime"]["Value"], by_name["AverageQueryTime"]["Unit"]) == (12.5, "Milliseconds")
    assert (by_name["PoolUtilization"]["Value"], by_name["PoolUtilization"]["Unit"]) == (20.0, "Percent")


def test_rates_unknown_in_a_first_sample_are_not_published_as_zero() -> None:
    data = metric_data(sample((figures("feedback", statements=None, average=None),), cache_hit=None),
                       environment="dev")
    names = {d["MetricName"] for d in data}
    assert "AverageQueryTime" not in names
    assert "Statements" not in names
    assert "BufferCacheHitRatio" not in names


def test_publish_sends_one_valid_put_metric_data_and_counts_the_datums(cloudwatch: Any) -> None:
    taken = sample((figures("feedback"), figures("news_system")))
    expected = len(metric_data(taken, environment="staging"))
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})
        assert publish(cloudwatch, taken, environment="staging") == expected
        stub.assert_no_pending_responses()


def test_a_large_sample_is_split_into_requests_of_at_most_1000_metrics(cloudwatch: Any) -> None:
    services = tuple(figures(f"svc{i}") for i in range(150))  # 150 x 8 + 4 = 1204 datums
    taken = sample(services)
    with Stubber(cloudwatch) as stub:
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})
        stub.add_response("put_metric_data", {}, {"Namespace": NAMESPACE, "MetricData": ANY})
        assert publish(cloudwatch, taken, environment="prod") == 150 * 8 + 4
        stub.assert_no_pending_responses()


def test_batches_respect_the_byte_limit_too() -> None:
    items = [{"MetricName": "x" * 100} for _ in range(50)]
    split = list(batches(items, max_items=MAX_DATUMS_PER_REQUEST, max_bytes=1000))
    assert all(sum(len(str(i)) for i in b) <= 1000 + 120 for b in split)
    assert sum(len(b) for b in split) == 50
    assert len(split) > 1
