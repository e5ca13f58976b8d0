"""The ops runner's restore-test validation (`restore-verify`) against a real server standing in for the
instance AWS Backup restored: it logs in as the platform's ops login over verified TLS, checks the schemas and
the isolation audit, and reports SUCCESSFUL or FAILED to (a stubbed) AWS Backup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import pytest
from botocore.stub import ANY, Stubber

from edumatrix_db.ops import runner
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
