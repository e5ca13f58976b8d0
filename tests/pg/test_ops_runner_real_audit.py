"""The audit job runs the guard's real audit (edumatrix_db/ops/audit.py) as the platform login edumatrix_ops
against the local server: a clean `local up` gives zero findings for every rule, published per rule."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

import pytest
from botocore.stub import ANY

from edumatrix_db.ops import runner
from edumatrix_db.ops.audit import RULES
from edumatrix_db.ops.runner import RunnerConfig
from tests.ops_runner_support import SECRET_ARN, datum, stubbed_clients
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def test_the_audit_job_runs_the_real_audit_as_the_ops_login(pg: Postgres) -> None:
    uri = urlsplit(pg.connections["platform"]["ops"])
    secret = json.dumps({"username": unquote(uri.username or ""), "password": unquote(uri.password or ""),
                         "host": uri.hostname, "port": uri.port, "dbname": pg.model.database})
    config = RunnerConfig(environment="test", secret_arn=SECRET_ARN, sslrootcert=str(pg.server.ca_cert),
                          model={"database": pg.model.database})
    services = [s.service for s in pg.model.services]
    expected = [datum("AuditFindings", 0, Rule=rule) for rule in RULES]
    expected += [datum("AuditFindings", 0, Service=s) for s in [*services, "platform"]]
    expected += [datum("AuditFindings", 0), {**datum("LockTableUse", 0, unit="Percent"), "Value": ANY}]
    with stubbed_clients() as aws:
        aws.expect_secret(secret)
        aws.expect_metrics("EduMatrix/Database", expected)
        result = runner.run({"job": "audit"}, config, aws.clients)
    assert result["findings"] == 0
    assert result["byRule"] == dict.fromkeys(RULES, 0)
    assert 0 < result["lockTableUse"] < 1
