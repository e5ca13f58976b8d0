"""Per-service metrics only PostgreSQL can give (spec 2.A "metrics: active connections, wait time, query
duration", 3.A "queryTime > 100ms average", "growth > 10% monthly", 4.B "unusual access patterns").

CloudWatch's RDS metrics describe the instance; the spec's triggers are per service. The services are roles
(`<service>_app`, `_readonly`, `_migrator`, `config/access.py`), so the collector groups by role:
- `pg_stat_activity`: connections, active ones, idle in transaction, waiting on a lock, per service;
- `pg_stat_statements` (cumulative): calls and execution time per service; between two samples the deltas
  give statements per interval and the average query time of that interval;
- relation sizes per schema (tables, indexes, TOAST): the growth alarm's input;
- `pg_stat_database`: the database's size and buffer cache hits (delta).

`collect(conn, previous)` takes one sample (four queries) on a connection of a login with `pg_monitor`
(on AWS the platform login `edumatrix_ops`; the runner calls it every minute with the previous sample);
`publish(client, sample, environment=...)` sends it to CloudWatch as metrics with `Environment` and
`Service` dimensions, in batches within PutMetricData's limits. The alarms on these metrics are in
`components/database_alarms.py`.

A counter that went backwards (pg_stat_statements_reset(), an evicted entry, a restart) gives no delta for
that interval rather than a negative one.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from config.access import AccessModel, build_access_model
from config.catalog import load_catalog
from config.monitoring import METRICS_NAMESPACE
from config.naming import RoleKind

NAMESPACE = METRICS_NAMESPACE
# PutMetricData: "Each request is limited to 1 MB ... no more than 1000 different metrics" (CloudWatch API
# reference, PutMetricData). A datum here is well under 1 KB, so 1000 per request also stays under 1 MB.
MAX_DATUMS_PER_REQUEST = 1000
MAX_REQUEST_BYTES = 1_000_000
SIZE_LOCK_TIMEOUT = "200ms"


class CollectorError(RuntimeError):
    """The collector cannot read what it needs (e.g. pg_stat_statements is not installed)."""


@dataclass(frozen=True)
class ServiceFigures:
    """One service in one sample. Delta fields are None in the first sample (or after a counter reset)."""

    service: str
    connections: int
    active: int
    idle_in_transaction: int
    lock_waits: int
    app_connections: int
    app_pool_size: int
    calls_total: int
    exec_time_ms_total: float
    schema_size_bytes: int
    statements: int | None = None
    average_query_ms: float | None = None

    @property
    def pool_utilization_percent(self) -> float:
        """The app role's connections against its pool (the role's connection limit), in percent."""
        return 100.0 * self.app_connections / self.app_pool_size if self.app_pool_size > 0 else 0.0


@dataclass(frozen=True)
class Sample:
    taken_at: dt.datetime  # the server's clock
    database: str
    max_connections: int
    connections_total: int
    lock_waits_total: int
    database_size_bytes: int
    blocks_hit: int
    blocks_read: int
    services: tuple[ServiceFigures, ...]
    cache_hit_percent: float | None = None  # over the interval since the previous sample
    interval_seconds: float | None = None
    # What the sample cost: rows the four queries returned and the client-side wall time.
    rows_read: int = 0
    duration_ms: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    def service(self, name: str) -> ServiceFigures:
        return next(s for s in self.services if s.service == name)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["taken_at"] = self.taken_at.isoformat()
        for entry, figures in zip(data["services"], self.services, strict=True):
            entry["pool_utilization_percent"] = round(figures.pool_utilization_percent, 2)
        return data


def _statements_relation(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT quote_ident(n.nspname) || '.pg_stat_statements' FROM pg_extension e "
                       "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
                       ).fetchone()
    if row is None:
        raise CollectorError("pg_stat_statements is not installed in this database: the access model installs "
                             "it (config/access.py); on RDS it also needs shared_preload_libraries")
    return str(row[0])


def collect(conn: psycopg.Connection[Any], previous: Sample | None, *, model: AccessModel | None = None) -> Sample:
    """One sample of per-service figures; deltas against `previous` when given (same database)."""
    model = model or build_access_model(load_catalog())
    started = time.perf_counter()
    role_service = {r.name: r.service for r in model.roles}
    roles = sorted(role_service)
    relation = _statements_relation(conn)
    rows_read = 1
    db = conn.execute(
        "SELECT now(), current_database(), current_setting('max_connections')::int, "
        "pg_database_size(current_database()), blks_hit, blks_read, "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
        "(SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock') "
        "FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert db is not None
    activity = conn.execute(
        "SELECT usename, count(*), count(*) FILTER (WHERE state = 'active'), "
        "count(*) FILTER (WHERE state LIKE 'idle in transaction%%'), count(*) FILTER (WHERE wait_event_type = 'Lock') "
        "FROM pg_stat_activity WHERE datname = current_database() AND usename = ANY(%s) GROUP BY usename",
        [roles]).fetchall()
    statements = conn.execute(
        f"SELECT r.rolname, sum(s.calls)::bigint, sum(s.total_exec_time)::float8 FROM {relation} s "
        "JOIN pg_roles r ON r.oid = s.userid "
        "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND r.rolname = ANY(%s) "
        "GROUP BY r.rolname", [roles]).fetchall()
    warnings: list[str] = []
    sizes = _schema_sizes(conn, [s.schema for s in model.services])
    if sizes is None:
        warnings.append(f"schema sizes skipped: a relation was locked for more than {SIZE_LOCK_TIMEOUT} "
                        "(a migration?); the previous sample's sizes are reported")
        sizes = [(s.schema, prior.schema_size_bytes) for s in model.services for prior in
                 (previous.services if previous else ()) if prior.service == s.service]
    rows_read += len(activity) + len(statements) + len(sizes)

    per_role = {row[0]: row[1:] for row in activity}
    per_role_statements = {row[0]: (int(row[1] or 0), float(row[2] or 0.0)) for row in statements}
    schema_size = {row[0]: int(row[1]) for row in sizes}
    before = {s.service: s for s in previous.services} if previous else {}
    figures = []
    for access in model.services:
        names = [r.name for r in access.roles]
        counts = [per_role.get(n, (0, 0, 0, 0)) for n in names]
        app = access.role(RoleKind.APP)
        calls = sum(per_role_statements.get(n, (0, 0.0))[0] for n in names)
        exec_ms = sum(per_role_statements.get(n, (0, 0.0))[1] for n in names)
        statements_delta: int | None = None
        average: float | None = None
        prior = before.get(access.service)
        if prior is not None:
            if calls >= prior.calls_total:
                statements_delta = calls - prior.calls_total
                # (a float sum over several entries may come out a hair lower in another order: never < 0)
                spent = max(0.0, exec_ms - prior.exec_time_ms_total)
                average = spent / statements_delta if statements_delta else 0.0
            else:
                warnings.append(f"{access.service}: pg_stat_statements counters went backwards (reset or "
                                "eviction); no delta this interval")
        figures.append(ServiceFigures(
            service=access.service,
            connections=sum(int(c[0]) for c in counts),
            active=sum(int(c[1]) for c in counts),
            idle_in_transaction=sum(int(c[2]) for c in counts),
            lock_waits=sum(int(c[3]) for c in counts),
            app_connections=int(per_role.get(app.name, (0,))[0]),
            app_pool_size=app.connection_limit,
            calls_total=calls,
            exec_time_ms_total=exec_ms,
            schema_size_bytes=schema_size.get(access.schema, 0),
            statements=statements_delta,
            average_query_ms=average,
        ))
    taken_at, database, max_connections, size, hit, read, total, locks = db
    cache_hit: float | None = None
    interval: float | None = None
    if previous is not None:
        interval = (taken_at - previous.taken_at).total_seconds()
        d_hit, d_read = int(hit) - previous.blocks_hit, int(read) - previous.blocks_read
        if d_hit >= 0 and d_read >= 0 and d_hit + d_read > 0:
            cache_hit = 100.0 * d_hit / (d_hit + d_read)
    return Sample(
        taken_at=taken_at, database=str(database), max_connections=int(max_connections),
        connections_total=int(total), lock_waits_total=int(locks), database_size_bytes=int(size),
        blocks_hit=int(hit), blocks_read=int(read), services=tuple(figures), cache_hit_percent=cache_hit,
        interval_seconds=interval, rows_read=rows_read, duration_ms=(time.perf_counter() - started) * 1000,
        warnings=tuple(warnings),
    )


def _schema_sizes(conn: psycopg.Connection[Any], schemas: list[str]) -> list[tuple[str, int]] | None:
    """Bytes per schema (tables, indexes, TOAST, materialized views), or None when a relation stays locked.

    `pg_total_relation_size` takes an ACCESS SHARE lock on each relation: behind a migration's ACCESS
    EXCLUSIVE lock it would wait, and the per-minute collector with it. It waits at most SIZE_LOCK_TIMEOUT.
    """
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{SIZE_LOCK_TIMEOUT}'")
            rows = conn.execute(
                "SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_namespace n "
                "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm') "
                "WHERE n.nspname = ANY(%s) GROUP BY n.nspname", [schemas]).fetchall()
    except psycopg.errors.LockNotAvailable:
        return None
    return [(str(name), int(size)) for name, size in rows]


# -- CloudWatch ------------------------------------------------------------------------------------------

# Metric names and units (CloudWatch StandardUnit); the alarms read the same names.
SERVICE_METRICS: tuple[tuple[str, str], ...] = (
    ("Connections", "Count"), ("ActiveConnections", "Count"), ("IdleInTransactionConnections", "Count"),
    ("LockWaits", "Count"), ("PoolUtilization", "Percent"), ("Statements", "Count"),
    ("AverageQueryTime", "Milliseconds"), ("SchemaSize", "Bytes"),
)
DATABASE_METRICS: tuple[tuple[str, str], ...] = (
    ("DatabaseSize", "Bytes"), ("ClientConnections", "Count"), ("LockWaits", "Count"),
    ("BufferCacheHitRatio", "Percent"),
)


def _service_values(s: ServiceFigures) -> dict[str, float | None]:
    return {
        "Connections": s.connections, "ActiveConnections": s.active,
        "IdleInTransactionConnections": s.idle_in_transaction, "LockWaits": s.lock_waits,
        "PoolUtilization": s.pool_utilization_percent, "Statements": s.statements,
        "AverageQueryTime": s.average_query_ms, "SchemaSize": s.schema_size_bytes,
    }


def metric_data(sample: Sample, *, environment: str) -> list[dict[str, Any]]:
    """The sample as PutMetricData `MetricData` items (values unknown this interval are left out)."""
    env = {"Name": "Environment", "Value": environment}
    units = dict(SERVICE_METRICS)
    out: list[dict[str, Any]] = []
    for figures in sample.services:
        for name, value in _service_values(figures).items():
            if value is None:
                continue
            out.append({"MetricName": name, "Timestamp": sample.taken_at, "Value": float(value),
                        "Unit": units[name], "Dimensions": [env, {"Name": "Service", "Value": figures.service}]})
    database_values: dict[str, float | None] = {
        "DatabaseSize": sample.database_size_bytes, "ClientConnections": sample.connections_total,
        "LockWaits": sample.lock_waits_total, "BufferCacheHitRatio": sample.cache_hit_percent,
    }
    units = dict(DATABASE_METRICS)
    for name, value in database_values.items():
        if value is not None:
            out.append({"MetricName": name, "Timestamp": sample.taken_at, "Value": float(value),
                        "Unit": units[name], "Dimensions": [env]})
    return out


def batches(items: Sequence[dict[str, Any]], *, max_items: int = MAX_DATUMS_PER_REQUEST,
            max_bytes: int = MAX_REQUEST_BYTES) -> Iterator[list[dict[str, Any]]]:
    """Split MetricData into requests of at most `max_items` datums and about `max_bytes` (JSON estimate)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, default=str))
        if batch and (len(batch) >= max_items or size + item_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item_size
    if batch:
        yield batch


def publish(cloudwatch_client: Any, sample: Sample, *, environment: str, namespace: str = NAMESPACE) -> int:
    """PutMetricData for the sample; returns the number of datums sent."""
    sent = 0
    for batch in batches(metric_data(sample, environment=environment)):
        cloudwatch_client.put_metric_data(Namespace=namespace, MetricData=batch)
        sent += len(batch)
    return sent


def rows(sample: Sample) -> Iterable[tuple[str, ...]]:
    """Table rows for a person: one per service."""
    for s in sample.services:
        yield (s.service, str(s.connections), str(s.active), str(s.idle_in_transaction), str(s.lock_waits),
               f"{s.pool_utilization_percent:.0f}%", "-" if s.statements is None else str(s.statements),
               "-" if s.average_query_ms is None else f"{s.average_query_ms:.2f}", f"{s.schema_size_bytes:,}")
