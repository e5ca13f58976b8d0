"""The ops runner's handler against the real local server: credentials from a (stubbed) Secrets Manager secret,
TLS verify-full against a CA bundle, metrics to a (stubbed) CloudWatch."""

from __future__ import annotations

import json
import secrets
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.stub import ANY

from config.scram import scram_verifier
from edumatrix_db.ops import runner
from edumatrix_db.ops.runner import Job, JobContext, RunnerConfig
from tests.ops_runner_support import SECRET_ARN, datum, self_signed_ca, stubbed_clients
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class OpsLogin:
    """A login standing in for the platform's `edumatrix_ops` (member of pg_monitor, no service access)."""

    name: str
    password: str

    def secret(self, pg: Postgres) -> str:
        return json.dumps({"username": self.name, "password": self.password, "host": "127.0.0.1",
                           "port": pg.state.port, "dbname": pg.model.database, "engine": "postgres"})


@pytest.fixture(scope="module")
def ops_login(pg: Postgres) -> Iterator[OpsLogin]:
    login = OpsLogin(f"runner_probe_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24))
    with pg.admin() as conn:
        conn.execute(f"CREATE ROLE {login.name} LOGIN PASSWORD '{scram_verifier(login.password)}' "
                     "IN ROLE pg_monitor")
        conn.execute(f"GRANT CONNECT ON DATABASE {pg.model.database} TO {login.name}")
    yield login
    with pg.admin() as conn:  # leave no unknown role behind for the audit's own tests
        conn.execute(f"REVOKE CONNECT ON DATABASE {pg.model.database} FROM {login.name}")
        conn.execute(f"DROP ROLE {login.name}")


def config(pg: Postgres, **overrides: Any) -> RunnerConfig:
    """The runner as the component configures it; host, port and database come from the secret here."""
    values: dict[str, Any] = {"environment": "test", "secret_arn": SECRET_ARN,
                              "sslrootcert": str(pg.server.ca_cert), "model": {"database": pg.model.database}}
    return RunnerConfig(**{**values, **overrides})


def test_ping_logs_in_with_the_secret_over_verified_tls_and_publishes_a_heartbeat(
        pg: Postgres, ops_login: OpsLogin) -> None:
    with stubbed_clients() as aws:
        aws.expect_secret(ops_login.secret(pg))
        aws.expect_metrics("EduMatrix/Database", [datum("RunnerHeartbeat", 1)])
        result = runner.run({"job": "ping"}, config(pg), aws.clients)
    assert (result["ok"], result["user"], result["tls"]) == (True, ops_login.name, True)
    assert "PostgreSQL 15" in result["server"]


def test_the_runner_refuses_a_server_its_ca_bundle_does_not_vouch_for(
        pg: Postgres, ops_login: OpsLogin, tmp_path: Path) -> None:
    with stubbed_clients() as aws:
        aws.expect_secret(ops_login.secret(pg))  # no PutMetricData: the Stubber fails an unexpected call
        with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
            runner.run({"job": "ping"}, config(pg, sslrootcert=str(self_signed_ca(tmp_path / "ca.pem"))), aws.clients)


def test_a_missing_ca_bundle_stops_the_job_before_it_connects(pg: Postgres, tmp_path: Path) -> None:
    with stubbed_clients() as aws, pytest.raises(runner.RunnerError, match=r"RDS CA bundle .* is missing"):
        runner.run({"job": "ping"}, config(pg, sslrootcert=str(tmp_path / "absent.pem")), aws.clients)


@pytest.fixture
def session_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job reporting what its session is allowed to do."""

    def session(ctx: JobContext) -> dict[str, Any]:
        with ctx.connect() as conn:
            read_only = conn.execute("SHOW default_transaction_read_only").fetchone()
            timeout = conn.execute("SHOW statement_timeout").fetchone()
            try:
                conn.execute("CREATE TEMP TABLE runner_write_probe (id int)")
                wrote = True
            except psycopg.errors.ReadOnlySqlTransaction:
                wrote = False
        return {"readOnly": read_only and read_only[0], "statementTimeout": timeout and timeout[0],
                "wrote": wrote}

    monkeypatch.setitem(runner.JOBS, "session", Job("session", session))


class LambdaContext:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_a_job_session_is_read_only_and_times_out_before_the_invocation(
        pg: Postgres, ops_login: OpsLogin, session_job: None) -> None:
    with stubbed_clients() as aws:
        aws.expect_secret(ops_login.secret(pg))
        result = runner.run({"job": "session"}, config(pg), aws.clients, LambdaContext(remaining_ms=65_000))
    assert (result["readOnly"], result["statementTimeout"], result["wrote"]) == ("on", "1min", False)


# -- the audit job, through the guard's interface (edumatrix_db/ops/audit.py) --------------------------------

@dataclass(frozen=True)
class StandInFinding:
    rule: str
    service: str | None
    object: str
    message: str
    fix: str


@dataclass
class StandInReport:
    findings: list[StandInFinding]
    lock_table_use: float
    queries: int = 1
    rules: tuple[str, ...] = field(default=())

    def counts_by_rule(self) -> dict[str, int]:
        counts = dict.fromkeys(self.rules, 0)
        for f in self.findings:
            counts[f.rule] += 1
        return counts


STAND_IN_RULES = ("isolation", "tenant-coverage", "naming", "ownership", "unknown-roles", "large-objects")


@pytest.fixture
def stand_in_audit(monkeypatch: pytest.MonkeyPatch) -> list[StandInReport]:
    """`edumatrix_db.ops.audit` as the guard's interface defines it: `run_audit(conn, model) -> AuditReport`.
    Its lock-table use is read from the real server; its findings are fixed."""
    reports: list[StandInReport] = []

    def run_audit(conn: psycopg.Connection[Any], model: Any) -> StandInReport:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM pg_locks)::float8 / (current_setting('max_locks_per_transaction')::int * "
            "(current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int))"
        ).fetchone()
        assert row is not None
        assert {s.service for s in model.services} >= {"feedback", "news_system"}
        report = StandInReport(
            findings=[
                StandInFinding("naming", "feedback", "feedback_schema.notes", "table not named feedback_<entity>",
                               "rename it"),
                StandInFinding("unknown-roles", None, "role intruder", "role not in the model", "drop it"),
            ],
            lock_table_use=float(row[0]), rules=STAND_IN_RULES)
        reports.append(report)
        return report

    module = types.ModuleType("edumatrix_db.ops.audit")
    module.RULES = STAND_IN_RULES  # type: ignore[attr-defined]
    module.run_audit = run_audit  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "edumatrix_db.ops.audit", module)
    return reports


def test_the_audit_job_publishes_findings_per_rule_and_service_their_total_and_lock_table_use(
        pg: Postgres, ops_login: OpsLogin, stand_in_audit: list[StandInReport]) -> None:
    services = [s.service for s in pg.model.services]
    with stubbed_clients() as aws:
        aws.expect_secret(ops_login.secret(pg))
        expected = [datum("AuditFindings", 1 if rule in ("naming", "unknown-roles") else 0, Rule=rule)
                    for rule in STAND_IN_RULES]
        expected += [datum("AuditFindings", 1 if s == "feedback" else 0, Service=s) for s in services]
        expected += [datum("AuditFindings", 1, Service="platform"), datum("AuditFindings", 2)]

        # The lock-table use is read from the server during the run: its value is checked through the result.
        lock_use = {**datum("LockTableUse", 0, unit="Percent"), "Value": ANY}
        aws.expect_metrics("EduMatrix/Database", [*expected, lock_use])
        result = runner.run({"job": "audit"}, config(pg), aws.clients)
    assert result["findings"] == 2
    assert result["byRule"] == {"isolation": 0, "tenant-coverage": 0, "naming": 1, "ownership": 0,
                                "unknown-roles": 1, "large-objects": 0}
    assert result["lockTableUse"] == stand_in_audit[0].lock_table_use
    assert 0 < result["lockTableUse"] < 1


def test_the_lambda_entry_point_reads_its_environment(
        pg: Postgres, ops_login: OpsLogin, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"EDUMATRIX_ENVIRONMENT": "test", "EDUMATRIX_DB_SECRET_ARN": SECRET_ARN,
                       "EDUMATRIX_DB_HOST": "127.0.0.1", "EDUMATRIX_DB_PORT": str(pg.state.port),
                       "EDUMATRIX_DB_NAME": pg.model.database, "EDUMATRIX_DB_SSLROOTCERT": str(pg.server.ca_cert),
                       "EDUMATRIX_DB_MODEL": json.dumps({"database": pg.model.database})}.items():
        monkeypatch.setenv(key, value)
    with stubbed_clients() as aws:
        monkeypatch.setattr(runner, "_CLIENTS", aws.clients)
        aws.expect_secret(json.dumps({"username": ops_login.name, "password": ops_login.password}))
        aws.expect_metrics("EduMatrix/Database", [datum("RunnerHeartbeat", 1)])
        result = runner.handler({"job": "ping"}, LambdaContext(remaining_ms=30_000))
    assert result["user"] == ops_login.name
