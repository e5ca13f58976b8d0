"""Scheduled maintenance as plain data (spec 5.B: index maintenance, statistics updates, vacuum scheduling).

Two layers, both declared here once and applied the same way on RDS and on the local server:

- Instance-wide autovacuum/analyze values: parameters of the platform's parameter group
  (`config/parameters.py`) and lines of the local server's configuration (`localpg._write_conf`).
  PostgreSQL's defaults (vacuum at 20 % dead rows, analyze at 10 % changed rows, insert-triggered vacuum at
  20 %, https://www.postgresql.org/docs/15/runtime-config-autovacuum.html) let a large table accumulate
  millions of dead rows before autovacuum starts; the values below start it at 5 % / 2 % / 5 % and give
  it a larger cost budget so it finishes. Per-table values for large and hot tables are table storage
  options that a service's migrations set (`edumatrix_db.ops.maintenance.table_storage_sql`), checked
  against `TABLE_STORAGE_OPTIONS`.
  All of these parameters are dynamic on RDS ("immediate"): RDS lists them as modifiable, applied
  without reboot (RDS user guide, "Working with PostgreSQL autovacuum on Amazon RDS"; PostgreSQL marks
  them `sighup` in pg_settings.context).
- pg_cron, the in-database scheduler RDS supports from PostgreSQL 12.5: `pg_cron` in
  `shared_preload_libraries` and `cron.database_name` (the one database that holds `cron.job`), both
  static, so "pending-reboot" (RDS user guide, PostgreSQL_pg_cron: "This change requires a PostgreSQL DB
  instance restart"). RDS runs jobs in background workers (`cron.use_background_workers`, "You can't
  modify this value"); the local server is configured the same way. The extension is created by the
  admin (rds_superuser on RDS, the bootstrap superuser locally) and each service's migrator gets USAGE on
  schema `cron`: jobs are scheduled by the migrator itself (after `SET ROLE NONE`), so each runs as
  `<service>_migrator`, a LOGIN role whose login setting makes it act as `<service>_owner`: the owner's
  rights (ANALYZE, VACUUM, REINDEX of its own tables) and nothing outside its schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from config.naming import RoleKind

if TYPE_CHECKING:  # config.access imports config.settings, which imports this module
    from config.access import AccessModel

OPS_KIND = "ops"  # config.access.PlatformRoleKind.OPS

PG_CRON = "pg_cron"
CRON_SCHEMA = "cron"

# The platform's heartbeat (issue 15, the monthly point-in-time-restore validation): a pg_cron job of the ops
# login, every minute, doing nothing. pg_cron records each run in `cron.job_run_details` (start_time), a table
# of the database, so a copy restored to a moment T holds the runs before T and none after it: the evidence
# `pitr-verify` checks (edumatrix_db/ops/backup_jobs.py). The runner's `heartbeat-schedule` job keeps it
# scheduled; the ops login gets USAGE on schema `cron` for that (and sees only its own jobs: pg_cron's RLS).
HEARTBEAT_JOB = "edumatrix_heartbeat"
HEARTBEAT_SCHEDULE = "* * * * *"
HEARTBEAT_COMMAND = "SELECT 1"


def cron_schedulers(model: AccessModel) -> list[str]:
    """The logins that get USAGE on schema `cron`: each service's migrator, and the ops login (heartbeat)."""
    roles = [s.role(RoleKind.MIGRATOR).name for s in model.services]
    return roles + [r.name for r in model.platform.roles if r.kind == OPS_KIND]

# (name, value): instance-wide autovacuum/analyze values, all dynamic parameters.
AUTOVACUUM_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("autovacuum_vacuum_scale_factor", "0.05"),
    ("autovacuum_analyze_scale_factor", "0.02"),
    ("autovacuum_vacuum_insert_scale_factor", "0.05"),
    # 200 (vacuum_cost_limit) is shared by all workers; RDS's guide suggests raising it on busy instances.
    ("autovacuum_vacuum_cost_limit", "2000"),
    # Autovacuum runs slower than 10 s are logged (the health report's evidence of struggling tables).
    ("log_autovacuum_min_duration", "10000"),
)

# Per-table storage options a migration may set, with the range PostgreSQL accepts
# (https://www.postgresql.org/docs/15/sql-createtable.html#SQL-CREATETABLE-STORAGE-PARAMETERS).
TABLE_STORAGE_OPTIONS: dict[str, tuple[float, float]] = {
    "autovacuum_enabled": (0, 1),
    "autovacuum_vacuum_threshold": (0, 2_147_483_647),
    "autovacuum_vacuum_scale_factor": (0.0, 100.0),
    "autovacuum_vacuum_insert_threshold": (-1, 2_147_483_647),
    "autovacuum_vacuum_insert_scale_factor": (0.0, 100.0),
    "autovacuum_analyze_threshold": (0, 2_147_483_647),
    "autovacuum_analyze_scale_factor": (0.0, 100.0),
    "autovacuum_vacuum_cost_limit": (1, 10_000),
    "autovacuum_vacuum_cost_delay": (0, 100),
    "fillfactor": (10, 100),
}


def cron_parameters(database: str) -> tuple[tuple[str, str], ...]:
    """The pg_cron settings besides preloading the library (static: a reboot applies them on RDS)."""
    return (("cron.database_name", database),)


def maintenance_parameter_names() -> frozenset[str]:
    """Names the platform sets for maintenance: a stack cannot override them through instance.parameters."""
    return frozenset({name for name, _ in AUTOVACUUM_PARAMETERS} | {n for n, _ in cron_parameters("x")})
