"""The metrics collector against the real server: a workload the test runs shows up, per service, in the
collector's numbers (statements, average query time, connections, pool use, idle transactions, lock waits,
schema growth). The collector logs in as a `pg_monitor` member, like the platform's `edumatrix_ops`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from config.naming import RoleKind
from edumatrix_db.ops import metrics
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

MONITOR = "metrics_monitor_probe"
SLEEP_MS = 20
CALLS = 12


@pytest.fixture(scope="module")
def monitor(pg: Postgres) -> Iterator[psycopg.Connection[Any]]:
    """A login with pg_monitor and USAGE on `extensions` (where pg_stat_statements lives) only, over TLS."""
    password = "monitor-probe-password"
    with pg.superuser() as su:
        su.execute(f"DROP ROLE IF EXISTS {MONITOR}")
        su.execute(f"CREATE ROLE {MONITOR} LOGIN PASSWORD '{password}' IN ROLE pg_monitor")
        su.execute(f"GRANT CONNECT ON DATABASE {pg.model.database} TO {MONITOR}")
    with pg.superuser() as su:  # in the database: pg_stat_statements' view is in schema extensions
        su.execute(f"GRANT USAGE ON SCHEMA extensions TO {MONITOR}")
    with psycopg.connect(pg.server.uri(MONITOR, password), autocommit=True) as conn:
        yield conn
    with pg.superuser() as su:  # leave the database holding exactly the access model (test_sql_renderer)
        su.execute(f"REVOKE ALL ON SCHEMA extensions FROM {MONITOR}")
        su.execute(f"REVOKE ALL ON DATABASE {pg.model.database} FROM {MONITOR}")
        su.execute(f"DROP ROLE {MONITOR}")


def sample(pg: Postgres, monitor: psycopg.Connection[Any], previous: metrics.Sample | None = None) -> metrics.Sample:
    return metrics.collect(monitor, previous, model=pg.model)


def test_statements_and_average_query_time_of_a_service_match_its_workload(
        pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    before = sample(pg, monitor)
    with pg.connect(pg.uri("jobs_portal", "app")) as app:
        for _ in range(CALLS):
            app.execute("SELECT pg_sleep(%s)", [SLEEP_MS / 1000])
    after = sample(pg, monitor, before)
    jobs = after.service("jobs_portal")
    assert jobs.statements == CALLS
    assert jobs.average_query_ms is not None
    assert jobs.average_query_ms >= SLEEP_MS  # each statement slept SLEEP_MS on the server
    assert after.service("news_system").statements == 0  # untouched service: no statements, average 0
    assert after.interval_seconds is not None
    assert after.interval_seconds > 0


def test_the_first_sample_has_no_rates(pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    first = sample(pg, monitor)
    assert {(s.statements, s.average_query_ms) for s in first.services} == {(None, None)}
    assert first.cache_hit_percent is None


def test_connections_and_pool_use_are_counted_per_service(pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    pool = pg.model.service("courses_platform").role(RoleKind.APP).connection_limit
    with ExitStack() as stack:
        for _ in range(4):
            stack.enter_context(pg.connect(pg.uri("courses_platform", "app")))
        stack.enter_context(pg.connect(pg.uri("courses_platform", "readonly")))
        idle = stack.enter_context(psycopg.connect(pg.uri("courses_platform", "readonly")))
        idle.execute("SELECT 1")  # a transaction left open
        courses = sample(pg, monitor).service("courses_platform")
    assert (courses.connections, courses.app_connections, courses.idle_in_transaction) == (6, 4, 1)
    assert courses.pool_utilization_percent == pytest.approx(100 * 4 / pool)


def test_a_service_waiting_on_a_lock_is_counted_and_the_collector_does_not_wait_too(
        pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    with pg.connect(pg.uri("freelancing", "migrator")) as migrator:
        migrator.execute("CREATE TABLE IF NOT EXISTS freelancing_lock_probe (id int)")
    previous = sample(pg, monitor)
    with psycopg.connect(pg.uri("freelancing", "migrator")) as holder:
        holder.execute("LOCK TABLE freelancing_lock_probe IN ACCESS EXCLUSIVE MODE")  # a migration's lock
        waiter = threading.Thread(target=_select_locked, args=(pg.uri("freelancing", "app"),))
        waiter.start()
        deadline = time.monotonic() + 4  # the app role's statement_timeout is 5 s
        while not _waiting(monitor, "freelancing_app") and time.monotonic() < deadline:
            time.sleep(0.05)
        during = sample(pg, monitor, previous)
        holder.rollback()
        waiter.join()
    assert during.service("freelancing").lock_waits == 1
    assert during.lock_waits_total >= 1
    assert any("schema sizes skipped" in w for w in during.warnings)  # it did not queue behind the lock
    assert during.service("freelancing").schema_size_bytes == previous.service("freelancing").schema_size_bytes


def _waiting(monitor: psycopg.Connection[Any], role: str) -> bool:
    """Whether `role` waits on a lock (only pg_monitor members see other sessions' wait events)."""
    row = monitor.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND wait_event_type = 'Lock'",
                          [role]).fetchone()
    return row == (1,)


def _select_locked(uri: str) -> None:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM freelancing_lock_probe")


def test_schema_growth_shows_in_the_schema_size(pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    before = sample(pg, monitor).service("statistics").schema_size_bytes
    with pg.connect(pg.uri("statistics", "migrator")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS statistics_growth_probe (payload text)")
        conn.execute("INSERT INTO statistics_growth_probe SELECT md5(i::text) || repeat('x', 1000) "
                     "FROM generate_series(1, 2000) i")
    after = sample(pg, monitor).service("statistics").schema_size_bytes
    assert after - before >= 2000 * 1000  # at least the rows' payload (TOAST compresses repeat(); md5 + x's)


def test_buffer_cache_hits_are_a_ratio_between_samples(pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    first = sample(pg, monitor)
    with pg.connect(pg.uri("feedback", "app")) as app:
        for _ in range(20):
            app.execute("SELECT count(*) FROM pg_class")
    second = sample(pg, monitor, first)
    assert second.cache_hit_percent is not None
    assert 0 < second.cache_hit_percent <= 100


def test_a_sample_reads_a_handful_of_rows_not_the_tables(pg: Postgres, monitor: psycopg.Connection[Any]) -> None:
    taken = sample(pg, monitor)
    # one database row, at most one per role (activity), per role (statements), one per schema
    assert taken.rows_read <= 1 + 2 * len(pg.model.roles) + len(pg.model.services)
    assert taken.max_connections == 500


def test_without_pg_stat_statements_the_collector_says_what_is_missing(pg: Postgres) -> None:
    with pg.superuser() as su:
        su.execute("CREATE DATABASE metrics_probe_empty")
    try:
        uri = pg.server.bootstrap_conninfo("metrics_probe_empty")
        with psycopg.connect(uri, autocommit=True) as conn, pytest.raises(metrics.CollectorError,
                                                                         match="pg_stat_statements"):
            metrics.collect(conn, None, model=pg.model)
    finally:
        with pg.superuser() as su:
            su.execute("DROP DATABASE metrics_probe_empty")


def test_metrics_collect_local_prints_the_services(pg: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    from edumatrix_db.cli import main

    code = main(["metrics", "collect", "local", "--root", str(pg.server.root), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    assert '"service": "students_platform"' in out
    assert '"database": "edumatrix"' in out
