"""The ops runner's restore-test validation (`restore-verify`) against a real server standing in for the
instance AWS Backup restored: it logs in as the platform's ops login over verified TLS, checks the schemas and
the isolation audit, and reports SUCCESSFUL or FAILED to (a stubbed) AWS Backup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import psycopg
import pytest
from botocore.stub import ANY, Stubber

from config.maintenance import HEARTBEAT_JOB
from edumatrix_db.ops import runner
from edumatrix_db.ops.backup_jobs import ensure_heartbeat
from edumatrix_db.ops.runner import Clients, RunnerConfig
from tests.ops_runner_support import REGION, SECRET_ARN, stubbed_clients
from tests.pg.conftest import Postgres
from tests.pg.servers import Server, local_server

pytestmark = pytest.mark.postgres
JOB_ID = "B8C3A2E1-1111-2222-3333-444455556666"
TESTING_PLAN = "arn:aws:backup:us-east-1:123456789012:restore-testing-plan:edumatrix_prod_weekly-abc"


@pytest.fixture(scope="module")
def restored(pg: Postgres) -> Iterator[Server]:
    """A server provisioned like production: what a restore of a clean snapshot looks like."""
    with local_server("edumatrix-restored-", pg.model) as server:
        yield server


def _secret(server: Server) -> str:
    uri = urlparse(server.connections["platform"]["ops"])
    return json.dumps({"username": unquote(uri.username or ""), "password": unquote(uri.password or ""),
                       "host": uri.hostname, "port": uri.port, "dbname": uri.path.lstrip("/"), "engine": "postgres"})


def _config(server: Server) -> RunnerConfig:
    return RunnerConfig(environment="test", secret_arn=SECRET_ARN, sslrootcert=str(server.server.ca_cert),
                        model={"database": "edumatrix"})


def _event(**detail: Any) -> dict[str, Any]:
    return {"job": "restore-verify", "event": {
        "source": "aws.backup", "detail-type": "Restore Job State Change", "detail": {
            "restoreJobId": JOB_ID, "status": "COMPLETED", "resourceType": "RDS",
            "createdResourceArn": "arn:aws:rds:us-east-1:123456789012:db:awsbackup-restore-test-abc",
            "restoreTestingPlanArn": TESTING_PLAN, **detail}}}


def _run(server: Server, event: dict[str, Any], status: str | None, failed: int | None) -> dict[str, Any]:
    backup = boto3.client("backup", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with stubbed_clients() as aws, Stubber(backup) as backup_stub:
        if status is not None:
            aws.expect_secret(_secret(server))
            aws.expect_secret(_secret(server))
            backup_stub.add_response("put_restore_validation_result", {}, {
                "RestoreJobId": JOB_ID, "ValidationStatus": status, "ValidationStatusMessage": ANY})
            aws.cloudwatch.add_response("put_metric_data", {}, {"Namespace": "EduMatrix/Database", "MetricData": ANY})
        clients = Clients(secrets=aws.clients.secrets, cloudwatch=aws.clients.cloudwatch, backup=backup)
        result = runner.run(event, _config(server), clients)
        backup_stub.assert_no_pending_responses()
    if failed is not None:
        assert result["metrics"] == 2  # RestoredTables, RestoreValidationFailed
    return result


def test_a_clean_restored_instance_is_reported_successful(restored: Server) -> None:
    result = _run(restored, _event(), "SUCCESSFUL", 0)
    assert (result["status"], result["problems"]) == ("SUCCESSFUL", [])


def test_a_restored_instance_whose_isolation_drifted_is_reported_failed_with_the_reason(restored: Server) -> None:
    with restored.superuser() as su:
        su.execute("CREATE TABLE feedback_schema.feedback_leak (id int)")
        su.execute("ALTER TABLE feedback_schema.feedback_leak OWNER TO feedback_owner")
        su.execute("GRANT SELECT ON feedback_schema.feedback_leak TO news_system_app")
    try:
        result = _run(restored, _event(), "FAILED", 1)
    finally:
        with restored.superuser() as su:
            su.execute("DROP TABLE feedback_schema.feedback_leak")
    assert result["status"] == "FAILED"
    assert any("feedback_leak" in p and p.startswith("audit [isolation]") for p in result["problems"])


def test_a_restore_that_is_not_a_restore_test_is_left_alone(restored: Server) -> None:
    event = _event()
    del event["event"]["detail"]["restoreTestingPlanArn"]
    result = _run(restored, event, None, None)
    assert result["skipped"].startswith(f"restore job {JOB_ID} is not a restore test")


def test_a_restored_table_that_cannot_be_read_fails_the_restore_test(restored: Server) -> None:
    with restored.superuser() as su:
        su.execute("CREATE TABLE feedback_schema.feedback_lost (id int)")
        su.execute("ALTER TABLE feedback_schema.feedback_lost OWNER TO feedback_owner")
        su.execute("INSERT INTO feedback_schema.feedback_lost VALUES (1)")
        su.execute("CHECKPOINT")
        path = su.execute("SELECT current_setting('data_directory') || '/' || "
                          "pg_relation_filepath('feedback_schema.feedback_lost')").fetchone()
    assert path is not None
    restored.server._run(["rm", "-f", str(path[0])])  # the file the restored copy lost
    try:
        result = _run(restored, _event(), "FAILED", 1)
    finally:
        with restored.superuser() as su:
            su.execute("DROP TABLE feedback_schema.feedback_lost")
    assert result["status"] == "FAILED"
    assert [p for p in result["problems"] if p.startswith("feedback_schema.feedback_lost cannot be read: could "
                                                          "not open file")] != []


def test_every_table_and_index_of_a_clean_copy_reads_end_to_end(restored: Server) -> None:
    from edumatrix_db.ops.backup_jobs import readability_problems

    with restored.superuser() as su:
        su.execute("CREATE TABLE feedback_schema.feedback_read (id int PRIMARY KEY)")
        su.execute("INSERT INTO feedback_schema.feedback_read SELECT generate_series(1, 500)")
    try:
        with psycopg.connect(restored.connections["platform"]["ops"], autocommit=True) as ops:
            problems, tuples = readability_problems(ops, ["feedback_schema"])
    finally:
        with restored.superuser() as su:
            su.execute("DROP TABLE feedback_schema.feedback_read")
    assert (problems, tuples) == ([], 500)


# -- the monthly point-in-time validation's job (components/pitr_validation.py) -----------------------------

def _heartbeat(server: Server, at: str) -> None:
    """One run of the heartbeat as pg_cron records it (pg_cron schedules by the minute: the test writes the
    run it would have written at `at`, an SQL timestamp expression)."""
    with server.superuser() as su:
        su.execute("INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status, "
                   f"return_message, start_time, end_time) SELECT jobid, 1, database, username, command, "
                   f"'succeeded', 'SELECT 1', {at}, {at} FROM cron.job WHERE jobname = %s", [HEARTBEAT_JOB])


def _scheduled(server: Server) -> str:
    with psycopg.connect(server.connections["platform"]["ops"], autocommit=True) as ops:
        return ensure_heartbeat(ops)


def _pitr_event(restore_time: str, requested_at: str) -> dict[str, Any]:
    return {"job": "pitr-verify", "event": {"restoredIdentifier": "edumatrix-test-pitr-check",
                                            "restoreTime": restore_time, "restoreRequestedAt": requested_at,
                                            "heartbeatMinutes": 5}}


def _run_pitr(server: Server, event: dict[str, Any], port: int | None = None) -> dict[str, Any]:
    secret = json.loads(_secret(server))
    secret["port"] = port or secret["port"]
    with stubbed_clients() as aws:
        aws.expect_secret(json.dumps(secret))
        aws.expect_secret(json.dumps(secret))
        aws.cloudwatch.add_response("put_metric_data", {}, {"Namespace": "EduMatrix/Database", "MetricData": ANY})
        clients = Clients(secrets=aws.clients.secrets, cloudwatch=aws.clients.cloudwatch)
        return runner.run(event, _config(server), clients)


def _now(server: Server, shift: str = "0 seconds") -> str:
    with server.superuser() as su:
        row = su.execute("SELECT to_char((clock_timestamp() + %s::interval) AT TIME ZONE 'UTC', "
                         "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", [shift]).fetchone()
    assert row is not None
    return str(row[0])


def test_the_heartbeat_is_scheduled_once_as_the_ops_login(restored: Server) -> None:
    assert _scheduled(restored) in ("scheduled", "unchanged")
    assert _scheduled(restored) == "unchanged"
    with restored.superuser() as su:
        jobs = su.execute("SELECT username, schedule, command FROM cron.job WHERE jobname = %s",
                          [HEARTBEAT_JOB]).fetchall()
    assert jobs == [("edumatrix_ops", "* * * * *", "SELECT 1")]


@contextmanager
def _only_written_runs(server: Server) -> Iterator[None]:
    """pg_cron's own runs of the heartbeat (every minute) held back, and those of the last minute removed, so the
    runs the test writes are the only ones near its point in time (a real run landing in the window was counted
    too: '2 heartbeat(s)' under load). The job is active again afterwards."""
    with server.superuser() as su:
        su.execute("SELECT cron.alter_job(jobid, active := false) FROM cron.job WHERE jobname = %s", [HEARTBEAT_JOB])
        su.execute("DELETE FROM cron.job_run_details WHERE jobid IN (SELECT jobid FROM cron.job WHERE jobname = %s) "
                   "AND start_time > clock_timestamp() - interval '1 minute'", [HEARTBEAT_JOB])
    try:
        yield
    finally:
        with server.superuser() as su:
            su.execute("SELECT cron.alter_job(jobid, active := true) FROM cron.job WHERE jobname = %s",
                       [HEARTBEAT_JOB])


def test_a_copy_holding_a_heartbeat_after_the_point_in_time_fails_the_validation(restored: Server) -> None:
    _scheduled(restored)
    with _only_written_runs(restored):
        moment = _now(restored, "-1 second")
        _heartbeat(restored, "clock_timestamp() - interval '30 seconds'")
        _heartbeat(restored, "clock_timestamp()")  # after the moment: a PITR to the moment must not hold it
        with pytest.raises(runner.RunnerError, match=r"1 heartbeat\(s\) after .*: the copy holds what was "
                                                     "committed after the point in time"):
            _run_pitr(restored, _pitr_event(moment, _now(restored, "1 second")))


def test_a_copy_without_a_recent_heartbeat_before_the_point_in_time_fails_the_validation(restored: Server) -> None:
    _scheduled(restored)
    later = _now(restored, "1 hour")  # no run within 5 minutes before it
    with pytest.raises(runner.RunnerError, match="no heartbeat within 5 minutes before"):
        _run_pitr(restored, _pitr_event(later, _now(restored, "2 hours")))


def test_the_runners_heartbeat_job_schedules_the_heartbeat_through_a_writable_session(restored: Server) -> None:
    with restored.superuser() as su:
        su.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %s", [HEARTBEAT_JOB])
    with stubbed_clients() as aws:
        aws.expect_secret(_secret(restored))
        result = runner.run({"job": "heartbeat-schedule"}, _config(restored),
                            Clients(secrets=aws.clients.secrets, cloudwatch=aws.clients.cloudwatch))
    assert result["heartbeat"] == "scheduled"
    assert _scheduled(restored) == "unchanged"
