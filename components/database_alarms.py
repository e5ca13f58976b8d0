"""Every scaling trigger and security alert of the spec as exactly one CloudWatch alarm (per instance, proxy or
service), paging the stack's alarm topic; security metric filters on the exported PostgreSQL log; RDS event
subscriptions; one dashboard per environment (spec 2.A, 3.A, 4.B). Thresholds: `config.settings.AlarmSettings`
(stack key `edumatrix-db:alarms`), defaults the spec's values. docs/monitoring.md lists every alarm.

Decisions written down here and in docs/monitoring.md:
- memory: CloudWatch reports `FreeableMemory` (bytes) but no total, so "memory > 80 % used" compares it
  with 20 % of the instance class's memory from a table (`config/monitoring.py`, AWS's hardware
  specifications), not metric math: no CloudWatch metric carries the total.
- growth "> 10 % monthly": an alarm cannot look back more than 7 days, and the collector is stateless
  between runs, so the alarm uses a 7-day rate: metric math `RATE()` over daily maxima of each schema's
  size, extrapolated to 30 days, breaching on 7 of 7 days.
- "capacity > 80 % used" is two alarms on two limits: free space against the allocation (RDS reports
  `FreeStorageSpace`), and the database's size (collector) against `maxAllocatedStorageGb`, the ceiling
  storage autoscaling stops at.
- Per-service triggers (query time, pool use, growth, anomalies) read the collector's metrics
  (namespace `EduMatrix/Database`, dimensions Environment and Service, `edumatrix_db/ops/metrics.py`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.personal_data_reads import metric_name as personal_data_metric
from config.monitoring import METRICS_NAMESPACE, log_metrics_namespace
from config.settings import AlarmSettings

RDS = "AWS/RDS"
COLLECTOR = METRICS_NAMESPACE
GIB = 1024**3
MINUTE, DAY = 60, 86_400

# Security metric filters on /aws/rds/instance/<id>/postgresql (CloudWatch Logs filter-pattern terms: every
# quoted term must occur; case-sensitive). The lines are PostgreSQL's own text, which RDS does not change:
# RDS fixes only the prefix (`%t:%r:%u@%d:[%p]:`) and pgaudit writes CSV after "AUDIT: ". Tested against
# real lines of the local server (tests/pg/test_log_filters.py).
SECURITY_FILTERS: dict[str, tuple[str, str]] = {
    # metric name: (filter pattern, what it counts)
    "FailedLogins": ('"password authentication failed for user"', "failed password logins"),
    "PrivilegeChanges": ('"AUDIT: SESSION," ",ROLE,"', "pgaudit ROLE lines: GRANT, REVOKE, CREATE/ALTER/DROP ROLE"),
    "SchemaChanges": ('"AUDIT: SESSION," ",DDL,"', "pgaudit DDL lines: CREATE, ALTER, DROP ..."),
}
# RDS event subscriptions (spec 4.B): what a person must know about the instance and the proxies.
INSTANCE_EVENT_CATEGORIES = ("failover", "failure", "low storage", "configuration change", "security",
                             "security patching", "availability", "maintenance")


@dataclass(frozen=True)
class DatabaseAlarmsArgs:
    name_prefix: str
    environment: str
    settings: AlarmSettings
    topic_arn: pulumi.Input[str]
    instance_identifier: pulumi.Input[str]
    instance_memory_gib: float
    allocated_storage_gb: int
    max_allocated_storage_gb: int
    max_connections: int
    services: Sequence[str]
    postgresql_log_group: pulumi.Input[str]
    proxy_names: Sequence[pulumi.Input[str]] = ()
    endpoint_names: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    replica_identifiers: Sequence[pulumi.Input[str]] = ()
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    personal_data_services: Sequence[str] = ()
    """Services holding personal data: the dashboard graphs their `PersonalDataReads.<service>`."""


def metric(name: str, dimensions: Mapping[str, Any], stat: str, period: int = MINUTE,
           namespace: str = RDS) -> dict[str, Any]:
    return {"metric_name": name, "namespace": namespace, "dimensions": dict(dimensions), "stat": stat,
            "period": period}


class DatabaseAlarms(pulumi.ComponentResource):
    """`edumatrix:monitoring:DatabaseAlarms`: the alarms, metric filters, event subscriptions and dashboard."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    alarm_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: DatabaseAlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:monitoring:DatabaseAlarms", name, None, opts)
        self._args = args
        self._child = pulumi.ResourceOptions(parent=self)
        self._name = name
        self.alarms = {}
        s, db = args.settings, {"DBInstanceIdentifier": args.instance_identifier}
        env = {"Environment": args.environment}

        # -- 3.A performance --------------------------------------------------------------------------------
        self._simple("cpu", f"CPU above {s.cpu_percent:g} % for {s.cpu_sustained_minutes} minutes (spec 3.A "
                            "cpu > 70 % sustained)", metric("CPUUtilization", db, "Average"), "GreaterThanThreshold",
                     s.cpu_percent, s.cpu_sustained_minutes)
        free_memory = (100 - s.memory_used_percent) / 100 * args.instance_memory_gib * GIB
        self._simple("memory", f"FreeableMemory below {100 - s.memory_used_percent:g} % of "
                               f"{args.instance_memory_gib:g} GiB, i.e. memory above {s.memory_used_percent:g} % used "
                               "(spec 3.A)", metric("FreeableMemory", db, "Average"), "LessThanThreshold",
                     free_memory, 5)
        self._simple("connections", f"DatabaseConnections above {s.connections_percent:g} % of max_connections "
                                    f"{args.max_connections} (spec 3.A connections > 75 %)",
                     metric("DatabaseConnections", db, "Maximum"), "GreaterThanThreshold",
                     s.connections_percent / 100 * args.max_connections, 5)
        for index, proxy in enumerate(args.proxy_names, start=1):
            suffix = "" if len(args.proxy_names) == 1 else f"-{index}"
            by_proxy = {"ProxyName": proxy}
            self._math(f"proxy-pool{suffix}", f"RDS Proxy pool above {s.pool_utilization_percent:g} % used "
                                               "(borrowed / allowed database connections; spec 2.A alert at 80 %)",
                       "100 * borrowed / allowed",
                       {"borrowed": metric("DatabaseConnectionsCurrentlyBorrowed", by_proxy, "Sum"),
                        "allowed": metric("MaxDatabaseConnectionsAllowed", by_proxy, "Sum")},
                       s.pool_utilization_percent, 5)
            self._simple(f"proxy-borrow-latency{suffix}",
                         f"RDS Proxy borrow latency above {s.borrow_latency_ms} ms (spec 2.A wait time; the proxy "
                         "gives up at 30 s)", metric("DatabaseConnectionsBorrowLatency", by_proxy, "Average"),
                         "GreaterThanThreshold", s.borrow_latency_ms * 1000, 5)  # the metric is in microseconds
            self._math(f"proxy-pinned{suffix}", f"more than {s.pinned_percent:g} % of borrowed proxy connections "
                                                 "pinned for 15 minutes (SET, advisory locks, prepared statements ...: "
                                                 "docs/connections.md)", "IF(borrowed > 0, 100 * pinned / borrowed, 0)",
                       {"pinned": metric("DatabaseConnectionsCurrentlySessionPinned", by_proxy, "Sum"),
                        "borrowed": metric("DatabaseConnectionsCurrentlyBorrowed", by_proxy, "Sum")},
                       s.pinned_percent, 15)
        for service in args.services:
            svc = {**env, "Service": service}
            self._simple(f"query-time-{service}", f"{service}: average query time above {s.query_time_ms:g} ms "
                                                  "(spec 3.A queryTime > 100ms average; collector)",
                         metric("AverageQueryTime", svc, "Average", namespace=COLLECTOR), "GreaterThanThreshold",
                         s.query_time_ms, 5, missing="notBreaching")
            self._simple(f"pool-{service}", f"{service}: app pool above {s.pool_utilization_percent:g} % used "
                                            "(spec 2.A alert at 80 % pool utilization; collector)",
                         metric("PoolUtilization", svc, "Maximum", namespace=COLLECTOR), "GreaterThanThreshold",
                         s.pool_utilization_percent, 5, missing="notBreaching")

        # -- 3.A storage ------------------------------------------------------------------------------------
        self._simple("free-storage", f"FreeStorageSpace below {100 - s.storage_used_percent:g} % of the "
                                     f"{args.allocated_storage_gb} GiB allocation (spec 3.A capacity > 80 % used)",
                     metric("FreeStorageSpace", db, "Minimum", period=5 * MINUTE), "LessThanThreshold",
                     (100 - s.storage_used_percent) / 100 * args.allocated_storage_gb * GIB, 3)
        self._simple("storage-ceiling", f"database size above {s.storage_used_percent:g} % of maxAllocatedStorageGb "
                                        f"{args.max_allocated_storage_gb} GiB, where storage autoscaling stops "
                                        "(collector)", metric("DatabaseSize", env, "Maximum", period=5 * MINUTE,
                                                              namespace=COLLECTOR), "GreaterThanThreshold",
                     s.storage_used_percent / 100 * args.max_allocated_storage_gb * GIB, 3, missing="notBreaching")
        monthly = s.growth_percent_per_month
        for service in args.services:
            size = metric("SchemaSize", {**env, "Service": service}, "Maximum", period=DAY, namespace=COLLECTOR)
            self._math(f"growth-{service}", f"{service}: schema growing faster than {monthly:g} % a month, judged on "
                                            "7 daily rates (spec 3.A growth > 10% monthly)",
                       "IF(size > 0, 100 * RATE(size) * 86400 * 30 / size, 0)", {"size": size}, monthly, 7,
                       missing="notBreaching", period=DAY)
        self._simple("wal", f"TransactionLogsDiskUsage above {s.wal_gb:g} GiB (spec 3.A wal > 50GB)",
                     metric("TransactionLogsDiskUsage", db, "Maximum"), "GreaterThanThreshold", s.wal_gb * GIB, 5)
        self._simple("replication-slot-lag", f"OldestReplicationSlotLag above {s.replication_slot_lag_gb:g} GiB "
                                             "(a logical replication slot holds WAL)",
                     metric("OldestReplicationSlotLag", db, "Maximum"), "GreaterThanThreshold",
                     s.replication_slot_lag_gb * GIB, 5, missing="notBreaching")
        self._simple("replication-slot-disk", f"ReplicationSlotDiskUsage above {s.replication_slot_disk_gb:g} GiB "
                                              "(logical slots can fill the disk)",
                     metric("ReplicationSlotDiskUsage", db, "Maximum"), "GreaterThanThreshold",
                     s.replication_slot_disk_gb * GIB, 5, missing="notBreaching")
        self._simple("xid-wraparound", f"MaximumUsedTransactionIDs above {s.max_used_transaction_ids:,} "
                                       "(wraparound stops writes near 2^31; vacuum now)",
                     metric("MaximumUsedTransactionIDs", db, "Maximum"), "GreaterThanThreshold",
                     s.max_used_transaction_ids, 5)

        # -- 4.B unusual access patterns: anomaly bands per service -----------------------------------------
        for service in args.services:
            svc = {**env, "Service": service}
            for key, metric_name in (("connections", "Connections"), ("statements", "Statements")):
                self._anomaly(f"anomaly-{key}-{service}",
                              f"{service}: {metric_name.lower()} outside the {s.anomaly_band_width:g}-sigma band of "
                              "their usual pattern (spec 4.B unusual access patterns; collector)",
                              metric(metric_name, svc, "Average", period=5 * MINUTE, namespace=COLLECTOR))

        # -- 4.B security alerts from the log -----------------------------------------------------------------
        thresholds = {"FailedLogins": s.failed_logins_per_5_minutes,
                      "PrivilegeChanges": s.privilege_changes_per_5_minutes,
                      "SchemaChanges": s.schema_changes_per_5_minutes}
        namespace = pulumi.Output.from_input(args.instance_identifier).apply(log_metrics_namespace)
        for metric_name, (pattern, what) in SECURITY_FILTERS.items():
            key = "".join(f"-{c.lower()}" if c.isupper() else c for c in metric_name).lstrip("-")
            aws.cloudwatch.LogMetricFilter(
                f"{name}-{key}",
                name=f"{args.name_prefix}-{key}",
                log_group_name=args.postgresql_log_group,
                pattern=pattern,
                metric_transformation=aws.cloudwatch.LogMetricFilterMetricTransformationArgs(
                    name=metric_name, namespace=namespace, value="1", default_value="0", unit="Count"),
                region=args.region,
                opts=self._child,
            )
            self._simple(key, f"{thresholds[metric_name]} or more {what} in 5 minutes (spec 4.B)",
                         {"metric_name": metric_name, "namespace": namespace, "dimensions": {}, "stat": "Sum",
                          "period": 5 * MINUTE},
                         "GreaterThanOrEqualToThreshold", thresholds[metric_name], 1, missing="notBreaching")

        # -- RDS events ---------------------------------------------------------------------------------------
        if s.event_subscriptions:
            subscriptions: list[tuple[str, str, list[Any], Sequence[str] | None]] = [
                ("instance-events", "db-instance", [args.instance_identifier, *args.replica_identifiers],
                 INSTANCE_EVENT_CATEGORIES),
                ("parameter-events", "db-parameter-group", [], ("configuration change",)),
            ]
            if args.proxy_names:
                subscriptions.append(("proxy-events", "db-proxy", list(args.proxy_names), None))  # every category
            for key, source_type, ids, categories in subscriptions:
                aws.rds.EventSubscription(
                    f"{name}-{key}",
                    name=f"{args.name_prefix}-{key}",
                    sns_topic=args.topic_arn,
                    source_type=source_type,
                    source_ids=ids or None,
                    event_categories=list(categories) if categories else None,
                    region=args.region,
                    tags=dict(args.tags),
                    opts=self._child,
                )

        # -- the dashboard ------------------------------------------------------------------------------------
        aws.cloudwatch.Dashboard(
            f"{name}-dashboard",
            dashboard_name=f"{args.name_prefix}-database",
            dashboard_body=pulumi.Output.all(args.instance_identifier, pulumi.Output.all(*args.proxy_names),
                                             pulumi.Output.all(**dict(args.endpoint_names)),
                                             pulumi.Output.all(*args.replica_identifiers),
                                             args.region or aws.get_region_output(
                                                 opts=pulumi.InvokeOutputOptions(parent=self)).region).apply(
                lambda v: dashboard_body(args, v[0], v[1], v[2], v[3], v[4])),
            region=args.region,
            opts=self._child,
        )
        self.alarm_names = {k: a.name for k, a in self.alarms.items()}
        self.register_outputs({"alarmNames": self.alarm_names})

    # -- alarm builders ---------------------------------------------------------------------------------------
    def _alarm(self, key: str, description: str, **kwargs: Any) -> None:
        args = self._args
        self.alarms[key] = aws.cloudwatch.MetricAlarm(
            f"{self._name}-{key}",
            name=f"{args.name_prefix}-{key}",
            alarm_description=f"{description}. Runbook: docs/monitoring.md",
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            region=args.region,
            tags=dict(args.tags),
            opts=self._child,
            **kwargs,
        )

    def _simple(self, key: str, description: str, m: dict[str, Any], comparison: str, threshold: float,
                evaluation: int, *, missing: str = "missing") -> None:
        self._alarm(key, description, namespace=m["namespace"], metric_name=m["metric_name"],
                    dimensions=m["dimensions"] or None, statistic=m["stat"], period=m["period"],
                    comparison_operator=comparison, threshold=threshold, evaluation_periods=evaluation,
                    datapoints_to_alarm=evaluation, treat_missing_data=missing)

    def _math(self, key: str, description: str, expression: str, metrics: Mapping[str, dict[str, Any]],
              threshold: float, evaluation: int, *, missing: str = "missing", period: int = MINUTE) -> None:
        queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(id="e1", expression=expression, label=description[:60],
                                                             return_data=True)]
        queries += [aws.cloudwatch.MetricAlarmMetricQueryArgs(id=qid, return_data=False,
                                                              metric=_query_metric(m)) for qid, m in metrics.items()]
        self._alarm(key, description, metric_queries=queries, comparison_operator="GreaterThanThreshold",
                    threshold=threshold, evaluation_periods=evaluation, datapoints_to_alarm=evaluation,
                    treat_missing_data=missing)

    def _anomaly(self, key: str, description: str, m: dict[str, Any]) -> None:
        width = self._args.settings.anomaly_band_width
        self._alarm(key, description, comparison_operator="LessThanLowerOrGreaterThanUpperThreshold",
                    threshold_metric_id="band", evaluation_periods=3, datapoints_to_alarm=3,
                    treat_missing_data="notBreaching", metric_queries=[
                        aws.cloudwatch.MetricAlarmMetricQueryArgs(id="m1", return_data=True, metric=_query_metric(m)),
                        aws.cloudwatch.MetricAlarmMetricQueryArgs(
                            id="band", expression=f"ANOMALY_DETECTION_BAND(m1, {width:g})", label="expected",
                            return_data=True),
                    ])


def _query_metric(m: Mapping[str, Any]) -> aws.cloudwatch.MetricAlarmMetricQueryMetricArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(metric_name=m["metric_name"], namespace=m["namespace"],
                                                           dimensions=m["dimensions"], stat=m["stat"],
                                                           period=m["period"])


def dashboard_body(args: DatabaseAlarmsArgs, instance: str, proxies: Sequence[str], endpoints: Mapping[str, str],
                   replicas: Sequence[str], region: str) -> str:
    """The environment's dashboard (spec 4.B performance metrics): connections, wait time, query duration,
    lock contention, buffer cache hits, storage, replication."""
    env = args.environment

    def widget(title: str, metrics: list[list[Any]], y: int, x: int, stat: str = "Average") -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                "properties": {"title": title, "region": region, "stat": stat, "period": 60, "view": "timeSeries",
                               "metrics": metrics}}

    def per_service(metric_name: str) -> list[list[Any]]:
        return [[COLLECTOR, metric_name, "Environment", env, "Service", s] for s in args.services]

    widgets = [
        widget("Connections (instance)", [[RDS, "DatabaseConnections", "DBInstanceIdentifier", instance]], 0, 0,
               "Maximum"),
        widget("Connections per service (collector)", per_service("Connections"), 0, 12, "Maximum"),
        widget("Wait for a pooled connection: proxy borrow latency (µs)",
               [[RDS, "DatabaseConnectionsBorrowLatency", "ProxyName", p] for p in proxies], 6, 0),
        widget("Proxy client connections per service endpoint",
               [[RDS, "ClientConnections", "ProxyName", proxies[0], "EndpointName", e] for e in endpoints.values()]
               if proxies else [[RDS, "DatabaseConnections", "DBInstanceIdentifier", instance]], 6, 12, "Sum"),
        widget("Average query time per service (ms)", per_service("AverageQueryTime"), 12, 0),
        widget("Lock waits per service", per_service("LockWaits"), 12, 12, "Maximum"),
        widget("Buffer cache hit ratio (%)", [[COLLECTOR, "BufferCacheHitRatio", "Environment", env]], 18, 0),
        widget("CPU (%) and freeable memory", [[RDS, "CPUUtilization", "DBInstanceIdentifier", instance],
                                               [RDS, "FreeableMemory", "DBInstanceIdentifier", instance,
                                                {"yAxis": "right"}]], 18, 12),
        widget("Storage: free space, WAL, replication slots (bytes)",
               [[RDS, m, "DBInstanceIdentifier", instance] for m in
                ("FreeStorageSpace", "TransactionLogsDiskUsage", "ReplicationSlotDiskUsage")], 24, 0, "Maximum"),
        widget("Schema size per service (bytes)", per_service("SchemaSize"), 24, 12, "Maximum"),
        widget("Replica lag (s)", [[RDS, "ReplicaLag", "DBInstanceIdentifier", r] for r in replicas]
               or [[RDS, "MaximumUsedTransactionIDs", "DBInstanceIdentifier", instance]], 30, 0, "Maximum"),
        widget("Security: failed logins, privilege and schema changes",
               [[log_metrics_namespace(instance), m] for m in SECURITY_FILTERS], 30, 12, "Sum"),
    ]
    if args.personal_data_services:  # spec 4.A access tracking (docs/gdpr.md, components/personal_data_reads.py)
        widgets.append(widget("Reads of personal data per service (pgaudit object audit)",
                              [[log_metrics_namespace(instance), personal_data_metric(s)]
                               for s in args.personal_data_services], 36, 0, "Sum"))
    return json.dumps({"widgets": widgets})
