"""The ops runner's AWS Backup jobs without a database: the restored instance's address, the backup duration."""

from __future__ import annotations

import pytest

from edumatrix_db.ops import runner
from edumatrix_db.ops.backup_jobs import restored_address
from edumatrix_db.ops.runner import RunnerConfig, RunnerError
from tests.ops_runner_support import SECRET_ARN, datum, stubbed_clients


def test_the_restored_instance_gets_the_primarys_endpoint_with_its_own_identifier() -> None:
    assert restored_address("arn:aws:rds:us-east-1:123456789012:db:awsbackup-restore-test-1a2b",
                            "edumatrix-prod.c9akciq32.us-east-1.rds.amazonaws.com") == (
        "awsbackup-restore-test-1a2b.c9akciq32.us-east-1.rds.amazonaws.com")


def test_a_host_that_is_not_an_rds_endpoint_is_kept() -> None:
    assert restored_address("arn:aws:rds:us-east-1:123456789012:db:x", "127.0.0.1") == "127.0.0.1"


def test_a_created_resource_that_is_not_an_instance_is_refused() -> None:
    with pytest.raises(RunnerError, match="not an RDS instance ARN"):
        restored_address("arn:aws:rds:us-east-1:123456789012:cluster:Bad_Name",
                         "edumatrix-prod.c9akciq32.us-east-1.rds.amazonaws.com")


def _duration_event(**detail: str) -> dict:
    return {"job": "backup-job-duration", "event": {"source": "aws.backup", "detail-type": "Backup Job State Change",
            "time": "2026-11-27T01:20:00Z", "detail": {"backupJobId": "j-1", "backupVaultName": "edumatrix-prod-daily",
                                                        "state": "COMPLETED", **detail}}}


@pytest.mark.parametrize(("detail", "minutes"), [
    ({"creationDate": "2026-11-27T00:00:05.000Z", "completionDate": "2026-11-27T01:15:05.000Z"}, 75.0),
    ({"creationDate": "2026-11-27T00:00:00Z"}, 80.0),  # no completionDate: the event's time
])
def test_a_completed_backup_job_publishes_its_minutes(detail: dict, minutes: float) -> None:
    config = RunnerConfig(environment="test", secret_arn=SECRET_ARN)
    with stubbed_clients() as aws:
        aws.expect_metrics("EduMatrix/Database", [datum("BackupJobMinutes", minutes, unit="None")])
        result = runner.run(_duration_event(**detail), config, aws.clients)
    assert result["minutes"] == minutes


def test_a_backup_event_without_its_dates_is_an_error() -> None:
    with stubbed_clients() as aws, pytest.raises(RunnerError, match="lacks creationDate"):
        runner.run({"job": "backup-job-duration", "event": {"detail": {}}},
                   RunnerConfig(environment="test", secret_arn=SECRET_ARN), aws.clients)
