"""Scheduled maintenance inside a service's schema (spec 5.B): per-table autovacuum settings and pg_cron
jobs, both set by the service's own migrations; plus the platform side that lets migrators schedule.

Per-table storage options (large and hot tables): `table_storage_sql(service, table, **options)` in a
migration's upgrade(), `reset_table_storage_sql(...)` in its downgrade(). Names and ranges are checked
against `config.maintenance.TABLE_STORAGE_OPTIONS` before any SQL is rendered.

pg_cron jobs: `schedule(bind, job)` / `unschedule(bind, service, name)` from a migration
(`bind = op.get_bind()`). Decisions (config/maintenance.py has the why):
- the job is scheduled by the migrator itself: the helper runs `SET LOCAL ROLE NONE` (back to
  `session_user`, the LOGIN migrator) around `cron.schedule`, so `cron.job.username` is
  `<service>_migrator`; when the job runs, the migrator's login setting `role = <service>_owner` applies,
  so it has the owner's rights (ANALYZE, VACUUM and REINDEX of the service's tables) and nothing else.
  A NOINHERIT migrator (the guard, #11) keeps this working: SET ROLE needs membership, not inheritance.
- commands come from builders (`analyze`, `vacuum_analyze`, `reindex`) that schema-qualify every name
  and refuse names outside the service's prefix; the job name is `<service>_job_<action>`.
- pg_cron lives in one database (`cron.database_name`). On the scratch database of `migrate check`
  (marked by the session setting `edumatrix.scratch_database`) the helpers schedule nothing; anywhere
  else a missing pg_cron is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

from config.maintenance import PG_CRON, TABLE_STORAGE_OPTIONS
from config.naming import RoleKind, belongs_to, check_identifier, quote_ident, schema_name

_CRON_FIELD = r"(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*"
CRON_EXPRESSION = re.compile(rf"^{_CRON_FIELD}( {_CRON_FIELD}){{4}}$")


# -- per-table storage options ---------------------------------------------------------------------------
def _qualified(service: str, name: str, what: str) -> str:
    check_identifier(name, what)
    if not belongs_to(service, name):
        raise ValueError(f"{what} {name!r} is not {service}'s: names follow {service}_<entity>")
    return f"{quote_ident(schema_name(service))}.{quote_ident(name)}"


def table_storage_sql(service: str, table: str, **options: float | int | bool) -> list[str]:
    """`ALTER TABLE <schema>.<table> SET (...)` for autovacuum/analyze values of one large or hot table."""
    if not options:
        raise ValueError("name at least one storage option")
    rendered = []
    for key, value in sorted(options.items()):
        if key not in TABLE_STORAGE_OPTIONS:
            raise ValueError(f"{key!r} is not a table storage option this platform sets; "
                             f"use one of {', '.join(sorted(TABLE_STORAGE_OPTIONS))}")
        low, high = TABLE_STORAGE_OPTIONS[key]
        number = float(value)
        if not low <= number <= high:
            raise ValueError(f"{key}={value} is outside PostgreSQL's range {low}..{high}")
        literal = ("true" if value else "false") if isinstance(value, bool) else repr(value)
        rendered.append(f"{key} = {literal}")
    return [f"ALTER TABLE {_qualified(service, table, 'table')} SET ({', '.join(rendered)})"]


def reset_table_storage_sql(service: str, table: str, *names: str) -> list[str]:
    """The downgrade of `table_storage_sql`: back to the instance-wide values."""
    unknown = [n for n in names if n not in TABLE_STORAGE_OPTIONS]
    if unknown or not names:
        raise ValueError(f"reset which options? unknown: {unknown}")
    return [f"ALTER TABLE {_qualified(service, table, 'table')} RESET ({', '.join(sorted(names))})"]


# -- pg_cron jobs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CronJob:
    service: str
    action: str
    schedule: str
    command: str

    @property
    def name(self) -> str:
        return job_name(self.service, self.action)

    def __post_init__(self) -> None:
        job_name(self.service, self.action)
        if not CRON_EXPRESSION.match(self.schedule):
            raise ValueError(f"schedule {self.schedule!r} is not a 5-field cron expression (pg_cron 1.4 "
                             "schedules by the minute, e.g. '30 2 * * *')")


def job_name(service: str, action: str) -> str:
    return check_identifier(f"{service}_job_{check_identifier(action, 'job action')}", "job name")


def analyze(service: str, action: str, schedule: str, table: str) -> CronJob:
    """ANALYZE one table (e.g. shortly after a nightly bulk load), statistics for the planner."""
    return CronJob(service, action, schedule, f"ANALYZE {_qualified(service, table, 'table')}")


def vacuum_analyze(service: str, action: str, schedule: str, table: str) -> CronJob:
    return CronJob(service, action, schedule, f"VACUUM (ANALYZE) {_qualified(service, table, 'table')}")


def reindex(service: str, action: str, schedule: str, index: str) -> CronJob:
    """REINDEX INDEX CONCURRENTLY of an index that bloats (its own job: CONCURRENTLY cannot run in a
    transaction block, so never together with other statements)."""
    return CronJob(service, action, schedule, f"REINDEX INDEX CONCURRENTLY {_qualified(service, index, 'index')}")


SCRATCH_SETTING = "edumatrix.scratch_database"  # set by `migrate check` on its scratch database


def _cron_here(bind: Connection) -> bool:
    """True where pg_cron is installed; False on the scratch database of `migrate check` (pg_cron serves
    one database of the server); an error anywhere else, where the platform should have installed it."""
    installed, scratch, database = bind.execute(text(
        "SELECT to_regnamespace('cron') IS NOT NULL, current_setting(:scratch, true), current_database()"
    ), {"scratch": SCRATCH_SETTING}).one()
    if installed:
        return True
    if scratch == "on":
        return False
    raise RuntimeError(f"pg_cron is not installed in {database}: the platform creates it (edumatrix-db local "
                       f"up; on RDS the ScheduledMaintenance component, after {PG_CRON} is preloaded)")


def _as_migrator(bind: Connection, service: str) -> None:
    migrator = f"{service}_{RoleKind.MIGRATOR.value}"
    who = bind.execute(text("SELECT session_user::text")).scalar_one()
    if who != migrator:
        raise RuntimeError(f"pg_cron jobs of {service} are scheduled by {migrator}, not {who}")
    bind.execute(text("SET LOCAL ROLE NONE"))


def _back_to_owner(bind: Connection, service: str) -> None:
    bind.execute(text(f"SET LOCAL ROLE {quote_ident(f'{service}_{RoleKind.OWNER.value}')}"))


def schedule(bind: Connection, job: CronJob) -> str:
    """Schedule (or reschedule, same name) a job as the service's migrator; returns what happened."""
    if not _cron_here(bind):
        return f"scratch database without pg_cron: job {job.name} not scheduled ({job.command})"
    _as_migrator(bind, job.service)
    try:
        bind.execute(text("SELECT cron.schedule(:name, :schedule, :command)"),
                     {"name": job.name, "schedule": job.schedule, "command": job.command})
    finally:
        _back_to_owner(bind, job.service)
    return f"scheduled {job.name} ({job.schedule}): {job.command}"


def unschedule(bind: Connection, service: str, action: str) -> str:
    name = job_name(service, action)
    if not _cron_here(bind):
        return f"scratch database without pg_cron: nothing to unschedule for {name}"
    _as_migrator(bind, service)
    try:
        bind.execute(text("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = :name"), {"name": name})
    finally:
        _back_to_owner(bind, service)
    return f"unscheduled {name}"
