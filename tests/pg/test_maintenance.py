"""Scheduled maintenance on a real PostgreSQL: the example migrations set per-table autovacuum options and
schedule pg_cron jobs as the service's migrator; jobs run as their service and only within its schema."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import errors

from edumatrix_db.ops import maintenance, migrate
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def jobs(pg: Postgres) -> set[tuple[str, str]]:
    with pg.superuser() as su:
        rows = su.execute("SELECT jobname, username FROM cron.job WHERE jobname LIKE 'feedback%'").fetchall()
    return {(r[0], r[1]) for r in rows}


def test_the_example_migrations_schedule_their_jobs_as_the_migrator_and_downgrade_removes_them(pg: Postgres) -> None:
    uri = pg.uri("feedback", "migrator")
    migrate.upgrade("feedback", uri)
    scheduled = jobs(pg)
    migrate.downgrade("feedback", uri, "base")
    assert scheduled == {("feedback_job_analyze_entries", "feedback_migrator"),
                         ("feedback_job_reindex_entry_created", "feedback_migrator")}
    assert jobs(pg) == set()


def test_a_migration_sets_per_table_autovacuum_options(migrated: Postgres) -> None:
    with migrated.superuser() as su:
        options = su.execute("SELECT reloptions FROM pg_class WHERE oid = 'feedback_schema.feedback_entry'::regclass"
                             ).fetchone()
    assert options is not None
    assert sorted(options[0]) == ["autovacuum_analyze_scale_factor=0.005", "autovacuum_vacuum_scale_factor=0.01"]


def test_the_instance_wide_autovacuum_values_are_those_of_the_parameter_group(pg: Postgres) -> None:
    from config.maintenance import AUTOVACUUM_PARAMETERS

    with pg.admin() as admin:
        live = {name: admin.execute(f"SELECT current_setting('{name}')").fetchone()[0]  # type: ignore[index]
                for name, _ in AUTOVACUUM_PARAMETERS}
    assert live == {"autovacuum_vacuum_scale_factor": "0.05", "autovacuum_analyze_scale_factor": "0.02",
                    "autovacuum_vacuum_insert_scale_factor": "0.05", "autovacuum_vacuum_cost_limit": "2000",
                    "log_autovacuum_min_duration": "10s"}


def test_pg_cron_jobs_run_as_their_service_and_only_within_its_schema(
        pg: Postgres, probes: dict[str, dict[str, int]]) -> None:
    """Two jobs of feedback's migrator, every minute: one writes into feedback's schema (succeeds, as the
    migrator acting as the owner), one reads courses_platform's schema (permission denied)."""
    own = maintenance.CronJob("feedback", "probe_own", "* * * * *",
                              "INSERT INTO feedback_schema.feedback_probe (note) VALUES (current_user || '/' || "
                              "session_user)")
    spy = maintenance.CronJob("feedback", "probe_spy", "* * * * *",
                              "SELECT count(*) FROM courses_platform_schema.courses_platform_probe")
    with migrate.migrator_connection(pg.uri("feedback", "migrator"), "feedback") as conn:
        for job in (own, spy):
            maintenance.schedule(conn, job)
        conn.commit()
    try:
        outcome: dict[str, tuple[str, str]] = {}
        with pg.superuser() as su:
            for _ in range(130):  # pg_cron 1.4 starts jobs on the minute
                outcome = {r[0]: (r[1], r[2]) for r in su.execute(
                    "SELECT DISTINCT ON (j.jobname) j.jobname, d.status, d.return_message FROM cron.job_run_details d "
                    "JOIN cron.job j USING (jobid) WHERE j.jobname IN (%s, %s) AND d.status IN ('succeeded', 'failed') "
                    "ORDER BY j.jobname, d.start_time", [own.name, spy.name])}
                if len(outcome) == 2:
                    break
                time.sleep(1)
            written = su.execute("SELECT note FROM feedback_schema.feedback_probe WHERE note LIKE '%/%'").fetchall()
    finally:
        with migrate.migrator_connection(pg.uri("feedback", "migrator"), "feedback") as conn:
            for job in (own, spy):
                maintenance.unschedule(conn, "feedback", job.action)
            conn.commit()
    assert outcome[own.name][0] == "succeeded"
    assert ("feedback_owner/feedback_migrator",) in written
    assert outcome[spy.name] == ("failed", "ERROR: permission denied for schema courses_platform_schema")


def test_a_migrator_cannot_unschedule_another_services_job(migrated: Postgres) -> None:
    with psycopg.connect(migrated.uri("courses_platform", "migrator"), autocommit=True) as other:
        other.execute("SET ROLE NONE")
        assert other.execute("SELECT count(*) FROM cron.job").fetchone() == (0,)  # feedback's jobs are invisible
        with pytest.raises(errors.InternalError, match="could not find valid entry"):
            other.execute("SELECT cron.unschedule('feedback_job_analyze_entries')")


@pytest.mark.parametrize("statement", [
    "SELECT cron.schedule_in_database('feedback_job_x', '* * * * *', 'SELECT 1', 'postgres')",
    "SELECT cron.schedule_in_database('feedback_job_x', '* * * * *', 'SELECT 1', 'edumatrix', 'edumatrix_admin')",
    "UPDATE cron.job SET username = 'edumatrix_admin'",
])
def test_a_migrator_cannot_run_a_job_elsewhere_or_as_another_role(pg: Postgres, statement: str) -> None:
    with psycopg.connect(pg.uri("feedback", "migrator"), autocommit=True) as conn:
        conn.execute("SET ROLE NONE")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute(statement)


def test_only_migrators_may_schedule(pg: Postgres) -> None:
    with psycopg.connect(pg.uri("feedback", "app"), autocommit=True) as conn, pytest.raises(
            errors.InsufficientPrivilege, match="schema cron"):
        conn.execute("SELECT cron.schedule('feedback_job_x', '* * * * *', 'SELECT 1')")
