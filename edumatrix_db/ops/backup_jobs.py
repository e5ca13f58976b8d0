"""The ops runner's jobs for AWS Backup (issue 15), registered in `edumatrix_db.ops.runner`'s job registry.

- `restore-verify`: AWS Backup's weekly restore test restored the latest daily snapshot into a new instance in
  the shared instance's subnet group and security group; its "Restore Job State Change" (COMPLETED) event
  starts this job, which logs in to the restored instance as the platform's ops login over verified TLS and
  checks it: every service's schema is there, owned by its owner, and the isolation audit (the catalog read
  back against the access model, `edumatrix_db.ops.audit`) finds nothing, and every table and index of every
  service schema is readable end to end. It reports SUCCESSFUL or FAILED with the reason to AWS Backup
  (PutRestoreValidationResult), which then deletes the instance, and publishes `RestoreValidationFailed`
  (0 or 1) for the alarm.
  "Rows" in a restore test: the live instance has moved on since the snapshot, so there is no source to compare
  row by row (`restore-schema --verify` does that, against the instance a schema is restored from), and the ops
  login reads no service data (by design). What it proves instead: every heap and B-tree page of every table
  and index reads back without error, counting the live tuples (pgstattuple's `pgstattuple` and `pgstatindex`,
  which scan every page and return counts only; executable by the ops login through pg_monitor's
  pg_stat_scan_tables). amcheck (`bt_index_check`) would check index structure more deeply, but its functions
  are executable by superusers only unless granted, and RDS's master user is not one: not used.
- `pitr-verify`: the monthly point-in-time-restore validation (components/pitr_validation.py): its state
  machine restored the shared instance to T (the execution's start) into `<identifier>-pitr-check` and
  invokes this job with `restoreTime` T and `restoreRequestedAt` R. A PITR to T holds what was committed
  before T and nothing after: the platform's heartbeat (a pg_cron job of the ops login, every minute:
  config/maintenance.py) has a run within `heartbeatMinutes` before T in the copy and none in (T, R] (runs
  after R are the copy's own pg_cron at work); plus the restore test's checks above. A failure raises (the
  state machine catches it, deletes the copy and fails: the ExecutionsFailed alarm).
- `heartbeat-schedule`: keeps the heartbeat scheduled (pg_cron's `cron.schedule` as the ops login, only when
  missing or different); daily.
- `backup-job-duration`: on "Backup Job State Change" (COMPLETED), the minutes from the job's creation to its
  completion as `BackupJobMinutes`; the alarm fires past 60 (spec 3.A: backups within a 1-hour window). The
  figure includes the time a job waited to start (e.g. behind the instance's own backup window).

Endpoint of a restored instance: RDS names instances
`<identifier>.<account and region hash>.<region>.rds.amazonaws.com`, the same hash for every instance of the
account in the region, so the restored instance's address is the shared instance's with the restored
identifier (no rds:DescribeDBInstances, which has no resource-level scoping).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg

from config.maintenance import HEARTBEAT_COMMAND, HEARTBEAT_JOB, HEARTBEAT_SCHEDULE
from edumatrix_db.ops.runner import JobContext, RunnerError, job

RESTORE_VALIDATION_FAILED = "RestoreValidationFailed"
PITR_VALIDATION_FAILED = "PitrValidationFailed"
BACKUP_JOB_MINUTES = "BackupJobMinutes"
_RDS_ENDPOINT = re.compile(r"^[a-z][a-z0-9-]*(?P<suffix>\.[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(\.cn)?)$")
MESSAGE_LIMIT = 1000


def restored_address(restored_arn: str, primary_host: str) -> str:
    """The restored instance's address: the primary's RDS endpoint with the restored identifier. A host that
    is not an RDS endpoint (a local server in tests) is returned as it is."""
    identifier = restored_arn.rsplit(":", 1)[-1]
    m = _RDS_ENDPOINT.match(primary_host)
    if not m:
        return primary_host
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", identifier):
        raise RunnerError(f"the restore job created {restored_arn!r}: not an RDS instance ARN")
    return identifier + m["suffix"]


def readability_problems(conn: psycopg.Connection[Any], schemas: Sequence[str]) -> tuple[list[str], int]:
    """Every table's heap and every B-tree index of `schemas` read end to end (pgstattuple's full scans, which
    return counts, never rows): (the relations that cannot be read, with the error; the live tuples counted)."""
    stattuple = _extension_schema(conn, "pgstattuple")
    if stattuple is None:
        return ["the pgstattuple extension is missing: cannot read the tables end to end "
                "(components/maintenance.py creates it)"], 0
    relations = conn.execute(
        "SELECT c.oid, c.oid::regclass::text, c.relkind::text, coalesce(am.amname, '') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_am am ON am.oid = c.relam "
        "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'm', 't', 'i') AND c.relpersistence = 'p' "
        "ORDER BY 1", (list(schemas),)).fetchall()
    problems, tuples = [], 0
    for oid, name, kind, method in relations:
        if kind == "i" and method != "btree":
            continue  # pgstatindex reads B-trees only; the heap it indexes is read anyway
        function = "pgstatindex" if kind == "i" else "pgstattuple"
        column = "leaf_pages" if kind == "i" else "tuple_count"
        try:
            with conn.transaction():
                # by OID: a name would need USAGE on the schema, which the ops login does not have
                row = conn.execute(f"SELECT {column} FROM {stattuple}.{function}(%s::oid::regclass)",
                                   (oid,)).fetchone()
        except psycopg.Error as exc:
            problems.append(f"{name} cannot be read: {str(exc).strip().splitlines()[0]}")
            continue
        if kind != "i" and row is not None:
            tuples += int(row[0])
    return problems, tuples


def _extension_schema(conn: psycopg.Connection[Any], name: str) -> str | None:
    """Where an extension lives (edumatrix_db/ops/health.py has the same; the runner's package leaves health
    out: it needs Rich)."""
    row = conn.execute("SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n "
                       "ON n.oid = e.extnamespace WHERE e.extname = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


def heartbeat_problems(conn: psycopg.Connection[Any], restore_time: datetime.datetime,
                       requested_at: datetime.datetime, minutes: int) -> tuple[list[str], str | None]:
    """The point in time the copy holds, read from the heartbeat's runs (cron.job_run_details, as the ops login
    that scheduled it sees them): (problems, the latest run at or before `restore_time`)."""
    if conn.execute("SELECT to_regclass('cron.job_run_details')").fetchone() in (None, (None,)):
        return ["pg_cron is not installed on the copy: no heartbeat to tell the point in time"], None
    row = conn.execute(
        "SELECT max(d.start_time) FILTER (WHERE d.start_time <= %(t)s), "
        "count(*) FILTER (WHERE d.start_time > %(t)s AND d.start_time <= %(r)s) "
        "FROM cron.job_run_details d JOIN cron.job j ON j.jobid = d.jobid WHERE j.jobname = %(name)s",
        {"t": restore_time, "r": requested_at, "name": HEARTBEAT_JOB}).fetchone()
    latest, after = (row[0], int(row[1])) if row else (None, 0)
    problems = []
    if latest is None or latest < restore_time - datetime.timedelta(minutes=minutes):
        problems.append(f"no heartbeat within {minutes} minutes before {restore_time.isoformat()} (latest: "
                        f"{latest.isoformat() if latest else 'none'}): the copy lacks what was committed before "
                        "the point in time, or the heartbeat is not running (heartbeat-schedule)")
    if after:
        problems.append(f"{after} heartbeat(s) after {restore_time.isoformat()} (and before the restore was "
                        "requested): the copy holds what was committed after the point in time")
    return problems, latest.isoformat() if latest else None


def validate_restored(ctx: JobContext, host: str) -> list[str]:
    """What is wrong with the restored instance (empty: nothing)."""
    problems, _ = _validate(ctx, host)
    return problems


def _validate(ctx: JobContext, host: str, extra: Callable[[psycopg.Connection[Any]], list[str]] | None = None
              ) -> tuple[list[str], int]:
    """The checks every restored copy gets (and `extra`'s): (problems, live tuples read)."""
    from edumatrix_db.ops.audit import run_audit

    model = ctx.model()
    problems: list[str] = []
    with ctx.connect(host=host) as conn:
        if extra is not None:
            problems += extra(conn)
        owners = dict(conn.execute(
            "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = ANY(%s)",
            ([s.schema for s in model.services],)).fetchall())
        for s in model.services:
            if s.schema not in owners:
                problems.append(f"schema {s.schema} ({s.service}) is missing")
            elif owners[s.schema] != s.owner:
                problems.append(f"schema {s.schema} is owned by {owners[s.schema]}, not {s.owner}")
        tables = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)", ([s.schema for s in model.services],)
        ).fetchone()
        report = run_audit(conn, model)
        unreadable, tuples = readability_problems(conn, [s.schema for s in model.services])
    isolation = [f for f in report.findings if f.rule in ("isolation", "ownership", "unknown_role")]
    problems += [f"audit [{f.rule}] {f.object}: {f.message}" for f in isolation]
    problems += unreadable
    ctx.metrics.add("RestoredTables", float(tables[0]) if tables else 0.0)
    return problems, tuples


def _detail(ctx: JobContext) -> Mapping[str, Any]:
    detail = (ctx.event or {}).get("detail")
    if not isinstance(detail, Mapping):
        raise RunnerError("the job needs the AWS Backup event (`event.detail`)")
    return detail


@job("restore-verify")
def restore_verify(ctx: JobContext) -> dict[str, Any]:
    detail = _detail(ctx)
    job_id, arn = detail.get("restoreJobId"), detail.get("createdResourceArn")
    if not job_id or not arn:
        raise RunnerError("the Restore Job State Change event lacks restoreJobId or createdResourceArn")
    if not detail.get("restoreTestingPlanArn"):
        return {"skipped": f"restore job {job_id} is not a restore test: nothing to report"}
    if ctx.clients.backup is None:
        raise RunnerError("no AWS Backup client: the runner reports restore-test results to AWS Backup")
    primary_host = ctx.config.host or str(ctx.credentials().get("host") or "")
    host = restored_address(str(arn), primary_host)
    try:
        problems = validate_restored(ctx, host)
    except Exception as exc:  # a restored instance that cannot be reached or read failed the test
        problems = [f"could not validate {host}: {type(exc).__name__}: {exc}"]
    status = "FAILED" if problems else "SUCCESSFUL"
    message = "; ".join(problems) if problems else f"{host}: every service schema present and isolated"
    ctx.clients.backup.put_restore_validation_result(
        RestoreJobId=job_id, ValidationStatus=status, ValidationStatusMessage=message[:MESSAGE_LIMIT])
    ctx.metrics.add(RESTORE_VALIDATION_FAILED, 1 if problems else 0)
    return {"restoreJobId": job_id, "host": host, "status": status, "problems": problems}


@job("pitr-verify")
def pitr_verify(ctx: JobContext) -> dict[str, Any]:
    event = ctx.event or {}
    identifier, restore_time = event.get("restoredIdentifier"), _timestamp(event.get("restoreTime"))
    requested_at, minutes = _timestamp(event.get("restoreRequestedAt")), int(event.get("heartbeatMinutes") or 5)
    if not identifier or restore_time is None or requested_at is None:
        raise RunnerError("pitr-verify needs event.restoredIdentifier, event.restoreTime and "
                          "event.restoreRequestedAt (components/pitr_validation.py passes them)")
    primary_host = ctx.config.host or str(ctx.credentials().get("host") or "")
    host = restored_address(f"arn:aws:rds:::db:{identifier}", primary_host)
    found: dict[str, Any] = {}

    def heartbeat(conn: psycopg.Connection[Any]) -> list[str]:
        problems, found["latestHeartbeat"] = heartbeat_problems(conn, restore_time, requested_at, minutes)
        return problems

    problems, tuples = _validate(ctx, host, heartbeat)
    ctx.metrics.add(PITR_VALIDATION_FAILED, 1 if problems else 0)
    if problems:
        ctx.metrics.publish(ctx.clients.cloudwatch)  # the job raises: run() publishes nothing after it
        ctx.metrics.data.clear()
        raise RunnerError(f"the copy restored to {restore_time.isoformat()} is not right: " + "; ".join(problems))
    return {"host": host, "restoreTime": restore_time.isoformat(), "tuplesRead": tuples, **found}


@job("heartbeat-schedule", read_only=False)
def heartbeat_schedule(ctx: JobContext) -> dict[str, Any]:
    with ctx.connect() as conn:
        return {"heartbeat": ensure_heartbeat(conn)}


def ensure_heartbeat(conn: psycopg.Connection[Any]) -> str:
    """Schedule the platform's heartbeat as the connected login (the ops login) unless it already is, as it
    should be: 'scheduled', 'unchanged', or why it cannot be (pg_cron missing, no USAGE on schema cron)."""
    if conn.execute("SELECT to_regnamespace('cron')").fetchone() in (None, (None,)):
        return "pg_cron is not installed"
    if conn.execute("SELECT has_schema_privilege('cron', 'USAGE')").fetchone() != (True,):
        return "no USAGE on schema cron (components/maintenance.py grants it)"
    row = conn.execute("SELECT schedule, command, active FROM cron.job WHERE jobname = %s AND username = "
                       "current_user", (HEARTBEAT_JOB,)).fetchone()
    if row == (HEARTBEAT_SCHEDULE, HEARTBEAT_COMMAND, True):
        return "unchanged"
    conn.execute("SELECT cron.schedule(%s, %s, %s)", (HEARTBEAT_JOB, HEARTBEAT_SCHEDULE, HEARTBEAT_COMMAND))
    return "scheduled"


def _timestamp(value: Any) -> datetime.datetime | None:
    if not value:
        return None
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@job("backup-job-duration")
def backup_job_duration(ctx: JobContext) -> dict[str, Any]:
    detail = _detail(ctx)
    created = _timestamp(detail.get("creationDate"))
    completed = _timestamp(detail.get("completionDate")) or _timestamp((ctx.event or {}).get("time"))
    if created is None or completed is None:
        raise RunnerError("the Backup Job State Change event lacks creationDate or completionDate/time")
    minutes = round((completed - created).total_seconds() / 60, 1)
    ctx.metrics.add(BACKUP_JOB_MINUTES, minutes, unit="None")
    return {"backupJobId": detail.get("backupJobId"), "vault": detail.get("backupVaultName"), "minutes": minutes}
