"""The ops runner's jobs for AWS Backup (issue 15), registered in `edumatrix_db.ops.runner`'s job registry.

- `restore-verify`: AWS Backup's weekly restore test restored the latest daily snapshot into a new instance in
  the shared instance's subnet group and security group; its "Restore Job State Change" (COMPLETED) event
  starts this job, which logs in to the restored instance as the platform's ops login over verified TLS and
  checks it: every service's schema is there, owned by its owner, and the isolation audit (the catalog read
  back against the access model, `edumatrix_db.ops.audit`) finds nothing. It reports SUCCESSFUL or FAILED with
  the reason to AWS Backup (PutRestoreValidationResult), which then deletes the instance, and publishes
  `RestoreValidationFailed` (0 or 1) for the alarm.
  What it does not do: compare rows with a source (`restore-schema --verify` does). The ops login reads no
  service data (by design), and the live instance has moved on since the snapshot, so there is no source to
  compare a restored snapshot with row by row.
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
from collections.abc import Mapping
from typing import Any

from edumatrix_db.ops.runner import JobContext, RunnerError, job

RESTORE_VALIDATION_FAILED = "RestoreValidationFailed"
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


def validate_restored(ctx: JobContext, host: str) -> list[str]:
    """What is wrong with the restored instance (empty: nothing)."""
    from edumatrix_db.ops.audit import run_audit

    model = ctx.model()
    problems: list[str] = []
    with ctx.connect(host=host) as conn:
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
    isolation = [f for f in report.findings if f.rule in ("isolation", "ownership", "unknown_role")]
    problems += [f"audit [{f.rule}] {f.object}: {f.message}" for f in isolation]
    ctx.metrics.add("RestoredTables", float(tables[0]) if tables else 0.0)
    return problems


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
