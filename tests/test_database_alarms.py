"""Every trigger of the spec is exactly one alarm with the right metric, statistic, dimensions, unit
conversion, threshold and action (under mocks, on the prod plan)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.catalog import load_catalog
from config.errors import ConfigError
from config.loader import load_stack
from config.monitoring import METRICS_NAMESPACE, log_metrics_namespace
from edumatrix_db.offline.engine import Planner, Recording
from tests.region_support import copy_stacks, edit_stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GIB = 1024**3
SERVICES = load_catalog().names
PREFIX = "edumatrix-prod"
# spec trigger -> the alarm (name suffix) that watches it; {s}: one alarm per service
TRIGGERS = {
    "3.A cpu > 70% sustained": "cpu",
    "3.A memory > 80% usage": "memory",
    "3.A connections > 75% pool": "connections",
    "2.A alert at 80% pool utilization (proxy pool)": "proxy-pool",
    "2.A wait time (proxy borrow latency)": "proxy-borrow-latency",
    "pinned proxy connections": "proxy-pinned",
    "3.A queryTime > 100ms average": "query-time-{s}",
    "2.A alert at 80% pool utilization (service pool)": "pool-{s}",
    "3.A capacity > 80% used (allocation)": "free-storage",
    "3.A capacity > 80% used (autoscaling ceiling)": "storage-ceiling",
    "3.A growth > 10% monthly": "growth-{s}",
    "3.A wal > 50GB": "wal",
    "logical replication slot lag": "replication-slot-lag",
    "logical replication slot disk usage": "replication-slot-disk",
    "transaction ID wraparound": "xid-wraparound",
    "4.B unusual access patterns (connections)": "anomaly-connections-{s}",
    "4.B unusual access patterns (statements)": "anomaly-statements-{s}",
    "4.B failed login attempts": "failed-logins",
    "4.B privilege escalations": "privilege-changes",
    "4.B schema modifications": "schema-changes",
}


def alarms(recording: Recording) -> dict[str, Any]:
    """The database's alarms (the replica-lag alarms and the ops runner's own are declared elsewhere)."""
    return {a.inputs["name"].removeprefix(f"{PREFIX}-"): a for a in recording.of_type(ALARM)
            if "ReplicaLag" not in json.dumps(a.inputs) and "edumatrix:ops:OpsRunner$" not in a.urn
            and "edumatrix:backup:BackupPlatform$" not in a.urn and "edumatrix:backup:PitrValidation$" not in a.urn}


def expand(template: str) -> list[str]:
    return [template.format(s=s) for s in SERVICES] if "{s}" in template else [template]


def query(alarm: Any, qid: str) -> dict[str, Any]:
    return next(q for q in alarm.inputs["metricQueries"] if q["id"] == qid)


def test_every_trigger_is_exactly_one_alarm_and_every_alarm_a_trigger(prod: Recording) -> None:
    expected = [name for template in TRIGGERS.values() for name in expand(template)]
    assert len(expected) == len(set(expected))
    assert sorted(alarms(prod)) == sorted(expected)


def test_every_alarm_pages_the_alarm_topic_and_says_where_the_runbook_is(prod: Recording) -> None:
    topic = prod.outputs["alarmTopicArn"]
    for alarm in alarms(prod).values():
        assert alarm.inputs["alarmActions"] == [topic]
        assert alarm.inputs["okActions"] == [topic]
        assert "docs/monitoring.md" in alarm.inputs["alarmDescription"]


def test_cpu_is_above_70_percent_for_15_one_minute_periods(prod: Recording) -> None:
    cpu = alarms(prod)["cpu"].inputs
    assert (cpu["namespace"], cpu["metricName"], cpu["statistic"]) == ("AWS/RDS", "CPUUtilization", "Average")
    assert cpu["dimensions"] == {"DBInstanceIdentifier": "edumatrix-prod"}
    assert (cpu["comparisonOperator"], cpu["threshold"]) == ("GreaterThanThreshold", 70)
    assert (cpu["period"], cpu["evaluationPeriods"], cpu["datapointsToAlarm"]) == (60, 15, 15)


def test_memory_compares_freeable_bytes_with_20_percent_of_the_class_memory(prod: Recording) -> None:
    memory = alarms(prod)["memory"].inputs
    assert memory["metricName"] == "FreeableMemory"
    assert memory["comparisonOperator"] == "LessThanThreshold"
    assert memory["threshold"] == pytest.approx(0.2 * 64 * GIB)  # db.r6g.2xlarge: 64 GiB


def test_connections_alarm_at_75_percent_of_max_connections(prod: Recording) -> None:
    connections = alarms(prod)["connections"].inputs
    assert (connections["metricName"], connections["statistic"]) == ("DatabaseConnections", "Maximum")
    assert connections["threshold"] == pytest.approx(0.75 * 1500)


def test_proxy_pool_utilization_is_borrowed_over_allowed_metric_math(prod: Recording) -> None:
    pool = alarms(prod)["proxy-pool"]
    assert query(pool, "e1")["expression"] == "100 * borrowed / allowed"
    proxy = {"ProxyName": prod.outputs["proxyNames"][0]}
    assert query(pool, "borrowed")["metric"]["metricName"] == "DatabaseConnectionsCurrentlyBorrowed"
    assert query(pool, "allowed")["metric"]["metricName"] == "MaxDatabaseConnectionsAllowed"
    assert {query(pool, q)["metric"]["stat"] for q in ("borrowed", "allowed")} == {"Sum"}
    assert query(pool, "allowed")["metric"]["dimensions"] == proxy
    assert pool.inputs["threshold"] == 80


def test_borrow_latency_threshold_is_converted_to_microseconds(prod: Recording) -> None:
    latency = alarms(prod)["proxy-borrow-latency"].inputs
    assert latency["metricName"] == "DatabaseConnectionsBorrowLatency"
    assert latency["threshold"] == 1_000_000  # 1000 ms


def test_query_time_and_pool_use_are_per_service_collector_metrics(prod: Recording) -> None:
    query_time = alarms(prod)["query-time-feedback"].inputs
    assert (query_time["namespace"], query_time["metricName"]) == ("EduMatrix/Database", "AverageQueryTime")
    assert query_time["dimensions"] == {"Environment": "prod", "Service": "feedback"}
    assert query_time["threshold"] == 100  # ms, the collector's unit
    pool = alarms(prod)["pool-feedback"].inputs
    assert (pool["metricName"], pool["threshold"]) == ("PoolUtilization", 80)


def test_storage_thresholds_are_in_bytes(prod: Recording) -> None:
    found = alarms(prod)
    assert found["free-storage"].inputs["threshold"] == pytest.approx(0.2 * 500 * GIB)
    assert found["storage-ceiling"].inputs["threshold"] == pytest.approx(0.8 * 4000 * GIB)
    assert found["wal"].inputs["metricName"] == "TransactionLogsDiskUsage"
    assert found["wal"].inputs["threshold"] == 50 * GIB
    assert found["xid-wraparound"].inputs["metricName"] == "MaximumUsedTransactionIDs"
    assert found["replication-slot-disk"].inputs["metricName"] == "ReplicationSlotDiskUsage"
    assert found["replication-slot-lag"].inputs["metricName"] == "OldestReplicationSlotLag"


def test_growth_is_a_7_day_rate_extrapolated_to_a_month(prod: Recording) -> None:
    growth = alarms(prod)["growth-courses_platform"]
    assert "RATE(size) * 86400 * 30" in query(growth, "e1")["expression"]
    assert query(growth, "size")["metric"]["period"] == 86_400
    assert (growth.inputs["evaluationPeriods"], growth.inputs["threshold"]) == (7, 10)


def test_anomaly_bands_watch_each_services_connections_and_statements(prod: Recording) -> None:
    band = alarms(prod)["anomaly-statements-jobs_portal"]
    assert band.inputs["comparisonOperator"] == "LessThanLowerOrGreaterThanUpperThreshold"
    assert band.inputs["thresholdMetricId"] == "band"
    assert query(band, "band")["expression"] == "ANOMALY_DETECTION_BAND(m1, 3)"
    assert query(band, "m1")["metric"]["dimensions"] == {"Environment": "prod", "Service": "jobs_portal"}


def test_security_alarms_count_metric_filters_on_the_postgresql_log(prod: Recording) -> None:
    filters = {f.inputs["metricTransformation"]["name"]: f for f in
               prod.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
               if not f.inputs["metricTransformation"]["name"].startswith("PersonalDataReads.")}  # test_gdpr.py
    assert set(filters) == {"FailedLogins", "PrivilegeChanges", "SchemaChanges"}
    for metric_filter in filters.values():
        assert metric_filter.inputs["logGroupName"] == "/aws/rds/instance/edumatrix-prod/postgresql"
        assert metric_filter.inputs["metricTransformation"]["namespace"] == "EduMatrix/Database/edumatrix-prod"
    failed = alarms(prod)["failed-logins"].inputs
    assert (failed["metricName"], failed["statistic"], failed["period"], failed["threshold"]) == (
        "FailedLogins", "Sum", 300, 5)


def test_rds_events_for_the_instance_replicas_and_proxy_go_to_the_topic(prod: Recording) -> None:
    subscriptions = {s.inputs["sourceType"]: s for s in prod.of_type("aws:rds/eventSubscription:EventSubscription")}
    assert set(subscriptions) == {"db-instance", "db-parameter-group", "db-proxy"}
    instance = subscriptions["db-instance"].inputs
    assert {"failover", "failure", "low storage", "configuration change", "security"} <= set(
        instance["eventCategories"])
    assert instance["sourceIds"] == ["edumatrix-prod", "edumatrix-prod-replica-1", "edumatrix-prod-replica-2"]
    assert subscriptions["db-proxy"].inputs["sourceIds"] == prod.outputs["proxyNames"]
    assert {s.inputs["snsTopic"] for s in subscriptions.values()} == {prod.outputs["alarmTopicArn"]}


def test_one_dashboard_shows_the_specs_metrics(prod: Recording) -> None:
    dashboard = prod.one("aws:cloudwatch/dashboard:Dashboard")
    assert dashboard.inputs["dashboardName"] == "edumatrix-prod-database"
    body = json.loads(dashboard.inputs["dashboardBody"])
    titles = " | ".join(w["properties"]["title"] for w in body["widgets"]).lower()
    for wanted in ("connections", "wait", "query time", "lock", "buffer cache"):
        assert wanted in titles


def test_the_dashboard_graphs_reads_of_personal_data_per_service_from_the_filters_metrics(prod: Recording) -> None:
    body = json.loads(prod.one("aws:cloudwatch/dashboard:Dashboard").inputs["dashboardBody"])
    (widget,) = [w for w in body["widgets"] if "personal data" in w["properties"]["title"].lower()]
    filters = {(f.inputs["metricTransformation"]["namespace"], f.inputs["metricTransformation"]["name"])
               for f in prod.of_type("aws:cloudwatch/logMetricFilter:LogMetricFilter")
               if f.inputs["metricTransformation"]["name"].startswith("PersonalDataReads.")}
    holding = [s.name for s in load_catalog() if s.holds_personal_data]
    assert {tuple(m) for m in widget["properties"]["metrics"]} == filters
    assert len(filters) == len(holding)


def _namespaces(value: Any) -> set[str]:
    """Every CloudWatch namespace named in a resource's inputs: alarms' and filters' `namespace`, IAM
    conditions on `cloudwatch:namespace`, dashboard widgets' metric rows (`[namespace, metric, ...]`)."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return _namespaces(json.loads(value))
        except ValueError:
            return set()
    if isinstance(value, list):
        return set().union(*(_namespaces(v) for v in value))
    if not isinstance(value, dict):
        return set()
    found = {v for k, v in value.items() if k.lower() in ("namespace", "cloudwatch:namespace") and isinstance(v, str)}
    rows = value.get("metrics") if isinstance(value.get("title"), str) else None
    if isinstance(rows, list):
        found |= {row[0] for row in rows if isinstance(row, list) and row and isinstance(row[0], str)}
    return found.union(*(_namespaces(v) for v in value.values()))


def test_every_platform_metric_alarm_and_widget_uses_the_one_namespace(prod: Recording) -> None:
    named = set().union(*(_namespaces(r.inputs) for r in prod.resources))
    ours = {n for n in named if not n.startswith("AWS/")}
    assert ours  # the collector's, the runner's and the log filters' metrics are there
    assert {n for n in ours if n != METRICS_NAMESPACE and not n.startswith(METRICS_NAMESPACE + "/")} == set()
    assert log_metrics_namespace("edumatrix-prod") in ours


def test_thresholds_are_stack_settings(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "    subscriptions:\n", "    cpuPercent: 60\n    queryTimeMs: 250\n    subscriptions:\n")
    recording = Planner(stacks).plan("prod")
    assert alarms(recording)["cpu"].inputs["threshold"] == 60
    assert alarms(recording)["query-time-feedback"].inputs["threshold"] == 250


def test_an_instance_class_of_unknown_memory_needs_its_memory_stated(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "instanceClass: db.r6g.2xlarge", "instanceClass: db.x2g.large")
    with pytest.raises(ConfigError, match=r"alarms.instanceMemoryGb: the memory of db.x2g.large is not in"):
        load_stack("prod", stacks)
    edit_stack(stacks, "prod", "    subscriptions:\n", "    instanceMemoryGb: 32\n    subscriptions:\n")
    assert load_stack("prod", stacks).alarms.instance_memory_gb == 32
