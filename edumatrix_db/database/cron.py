"""pg_cron on the platform side: who may schedule jobs (each service's migrator: USAGE on schema `cron`),
and what jobs a service has. The jobs themselves are scheduled by the services' migrations
(edumatrix_db.ops.maintenance); config/maintenance.py says why the migrator schedules them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from config.access import AccessModel
from config.maintenance import CRON_SCHEMA, cron_schedulers
from config.naming import RoleKind, quote_ident


def cron_grants(model: AccessModel) -> list[tuple[str, str]]:
    """(role, privilege) on schema cron: each service's migrator schedules its own jobs, the ops login the
    platform's heartbeat (config/maintenance.py)."""
    return [(role, "USAGE") for role in cron_schedulers(model)]


def apply_cron_access(conn: psycopg.Connection[Any], model: AccessModel) -> list[str]:
    """GRANT USAGE ON SCHEMA cron to every migrator, as the owner of schema cron (the superuser locally,
    rds_superuser on RDS, where components/maintenance.py declares the same grants). Idempotent."""
    if conn.execute("SELECT to_regnamespace(%s)", [CRON_SCHEMA]).fetchone() in (None, (None,)):
        return []
    done = []
    for role, privilege in cron_grants(model):
        held = conn.execute("SELECT has_schema_privilege(%s, %s, %s)", [role, CRON_SCHEMA, privilege]).fetchone()
        if held != (True,):
            conn.execute(f"GRANT {privilege} ON SCHEMA {CRON_SCHEMA} TO {quote_ident(role)}".encode())
            done.append(f"GRANT {privilege} ON SCHEMA {CRON_SCHEMA} TO {role}")
    return done


def service_jobs(migrator: psycopg.Connection[Any], service: str) -> list[Mapping[str, Any]]:
    """The service's pg_cron jobs and their last run, read on a connection of `<service>_migrator`: pg_cron's
    row-level security shows a login only the jobs it scheduled (an admin sees none of them)."""
    if migrator.execute("SELECT to_regnamespace('cron')").fetchone() in (None, (None,)):
        return []
    name = f"{service}_{RoleKind.MIGRATOR.value}"
    if migrator.execute("SELECT session_user::text").fetchone() != (name,):
        raise ValueError(f"read {service}'s jobs as {name}: pg_cron shows each login only its own jobs")
    migrator.execute("SET ROLE NONE")
    try:
        rows = migrator.execute(
            "SELECT j.jobname, j.schedule, j.command, j.username, j.active, r.status, r.return_message, "
            "r.start_time FROM cron.job j LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d "
            "WHERE d.jobid = j.jobid ORDER BY d.start_time DESC NULLS LAST LIMIT 1) r ON true ORDER BY j.jobname"
        ).fetchall()
    finally:
        migrator.execute("RESET ROLE")
    keys = ("name", "schedule", "command", "username", "active", "last_status", "last_message", "last_start")
    return [dict(zip(keys, row, strict=True)) for row in rows]
