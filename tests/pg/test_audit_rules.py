"""`edumatrix-db audit` on a fresh `local up`: clean reports nothing; a planted violation of each rule is
reported under that rule; the ops login is enough; exit codes 0, 1, 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config.access import build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg
from edumatrix_db.database.catalog import read_catalog
from edumatrix_db.database.drift import evaluate
from edumatrix_db.database.tenancy import enable_tenant_isolation_sql
from edumatrix_db.ops.audit import RULES, AuditReport, run_audit
from tests.pg.conftest import Postgres, free_port, scratch_root

pytestmark = pytest.mark.postgres
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fresh() -> Iterator[Postgres]:
    """A server of its own, provisioned by `local up` and never touched by other tests."""
    root = scratch_root("edumatrix-audit-")
    model = build_access_model(load_catalog())
    server = None
    try:
        server, state, _ = localpg.up(root, model, preferred_port=free_port())
        yield Postgres(server, state, model, json.loads(server.connections_file.read_text()))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


def ops(fresh: Postgres) -> psycopg.Connection[Any]:
    return fresh.connect(fresh.connections["platform"]["ops"])


def cli(fresh: Postgres, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edumatrix_db.cli", "audit", *args], capture_output=True,
                          text=True, cwd=ROOT_DIR, check=False, timeout=120)


def test_a_clean_local_up_audits_clean_as_the_ops_login(fresh: Postgres) -> None:
    with ops(fresh) as conn:
        report = run_audit(conn, fresh.model)
    assert report.findings == []
    assert report.counts_by_rule() == dict.fromkeys(RULES, 0)
    assert report.queries <= 9


def test_the_ops_login_reads_the_catalog_but_no_service_data(fresh: Postgres) -> None:
    with ops(fresh) as conn:
        row = conn.execute(
            "SELECT has_schema_privilege('feedback_schema', 'USAGE'), pg_has_role('pg_monitor', 'MEMBER'), "
            "has_database_privilege(current_database(), 'TEMPORARY')"
        ).fetchone()
    assert row == (False, True, False)


# Each plant runs as the superuser inside a transaction that is rolled back: the audit reads the catalog
# through the same connection, so it sees the plant and nothing is left behind. Tables are created as the
# owner, as a migration does. Second: every rule the plant breaks (a badly named table is outside tenant
# isolation too; feedback holds personal data, so once it has a table it owes the GDPR contract).
GDPR_READY_TABLE = (
    "SET LOCAL ROLE feedback_owner; CREATE TABLE feedback_schema.feedback_entry (institution_id uuid NOT NULL, "
    "id bigint NOT NULL, PRIMARY KEY (institution_id, id)); "
    + "; ".join(enable_tenant_isolation_sql("feedback", "feedback_entry"))
    + "; RESET ROLE; GRANT SELECT ON feedback_schema.feedback_entry TO rds_pgaudit"
)
PLANTS = {
    "isolation": ("GRANT pg_read_all_data TO feedback_app", {"isolation"}),
    "tenant_coverage": ("SET LOCAL ROLE feedback_owner; CREATE TABLE feedback_schema.feedback_open "
                        "(institution_id uuid NOT NULL); RESET ROLE", {"tenant_coverage", "gdpr"}),
    "naming": ("SET LOCAL ROLE feedback_owner; CREATE TABLE feedback_schema.orders (institution_id uuid NOT NULL); "
               "RESET ROLE", {"naming", "tenant_coverage", "gdpr"}),
    "ownership": ("CREATE SEQUENCE feedback_schema.feedback_counter; "
                  "ALTER SEQUENCE feedback_schema.feedback_counter OWNER TO feedback_app", {"ownership"}),
    "unknown_role": ("CREATE ROLE audit_stray NOLOGIN", {"unknown_role"}),
    "large_object": ("SELECT lo_create(4711); ALTER LARGE OBJECT 4711 OWNER TO feedback_app", {"large_object"}),
    "gdpr": (GDPR_READY_TABLE, {"gdpr"}),  # a well-isolated, audited personal table, but no contract
    "events": ("CREATE PUBLICATION feedback_leak FOR TABLE feedback_schema.feedback_inbox", {"events"}),
}


def test_every_rule_has_a_plant() -> None:
    assert set(PLANTS) == set(RULES)


@pytest.mark.parametrize("rule", RULES)
def test_a_planted_violation_is_reported_under_its_rule(fresh: Postgres, rule: str) -> None:
    plant, broken = PLANTS[rule]
    with fresh.superuser() as conn:
        conn.autocommit = False
        try:
            conn.execute(plant.encode())
            report = run_audit(conn, fresh.model)
        finally:
            conn.rollback()
    assert {f.rule for f in report.findings} == broken, report.findings
    assert all(f.fix and f.object and f.message for f in report.findings)
    assert {f.service for f in report.findings} == ({None} if rule == "unknown_role" else {"feedback"})


def test_lock_table_use_counts_advisory_locks_held(fresh: Postgres) -> None:
    with ops(fresh) as conn:
        before = run_audit(conn, fresh.model)
        capacity = conn.execute(
            "SELECT current_setting('max_locks_per_transaction')::int * "
            "(current_setting('max_connections')::int + current_setting('max_prepared_transactions')::int)"
        ).fetchone()
        with fresh.connect(fresh.uri("feedback", "migrator")) as migration:
            migration.execute("SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 2000) i")
            during = run_audit(conn, fresh.model)
    assert capacity is not None
    # counted in locks, not as a float difference (0.0628125 - 0.0003125 falls short of 0.0625 in binary)
    assert round((during.lock_table_use - before.lock_table_use) * capacity[0]) >= 2000
    assert 0 < during.lock_table_use < 1


def test_the_command_exits_0_on_a_clean_database_and_prints_json(fresh: Postgres) -> None:
    result = cli(fresh, "local", "--root", str(fresh.server.root), "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["findings"] == []
    assert data["counts"] == dict.fromkeys(RULES, 0)


def test_the_command_exits_1_and_names_rule_service_object_and_fix(fresh: Postgres) -> None:
    with fresh.superuser() as su:
        su.execute("CREATE ROLE audit_visible NOLOGIN")
        try:
            table = cli(fresh, "local", "--root", str(fresh.server.root))
            as_json = cli(fresh, "local", "--root", str(fresh.server.root), "--format", "json")
        finally:
            su.execute("DROP ROLE audit_visible")
    assert (table.returncode, as_json.returncode) == (1, 1), table.stdout + table.stderr
    assert "unknown_role" in table.stdout
    assert "audit_visible" in table.stdout
    (finding,) = json.loads(as_json.stdout)["findings"]
    assert finding["rule"] == "unknown_role"
    assert finding["object"] == "role audit_visible"
    assert "DROP ROLE" in finding["fix"]


@pytest.mark.parametrize("args", [
    (),
    ("local", "--uri", "postgresql://nobody@127.0.0.1:1/x"),
    ("--uri", "postgresql://nobody@127.0.0.1:1/x", "--stack", "local"),
    ("--uri", "postgresql://nobody@127.0.0.1:1/x"),
], ids=["no-target", "two-targets", "unreachable", "uri-without-stack"])
def test_usage_and_connection_errors_exit_2_with_a_message(fresh: Postgres, args: tuple[str, ...]) -> None:
    result = cli(fresh, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("audit: ")


def test_a_missing_grant_guard_is_an_isolation_finding_and_guard_install_restores_it(fresh: Postgres) -> None:
    def guard(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edumatrix_db.cli", "guard", command, "local", "--root",
                               str(fresh.server.root)], capture_output=True, text=True, cwd=ROOT_DIR, check=False)

    dropped = guard("drop")
    try:
        with ops(fresh) as conn:
            missing = run_audit(conn, fresh.model)
    finally:
        installed = guard("install")
    assert (dropped.returncode, installed.returncode) == (0, 0), dropped.stderr + installed.stderr
    assert [(f.rule, f.object) for f in missing.findings] == [
        ("isolation", "event trigger edumatrix_refuse_foreign_grants")]
    with ops(fresh) as conn:
        assert run_audit(conn, fresh.model).findings == []


def audit_with(fresh: Postgres, plant: str) -> list[tuple[str, str | None, str, str]]:
    """The audit's findings with `plant` run as the superuser in a transaction rolled back afterwards."""
    with fresh.superuser() as conn:
        conn.autocommit = False
        try:
            conn.execute(plant.encode())
            return [(f.rule, f.service, f.object, f.message) for f in run_audit(conn, fresh.model).findings]
        finally:
            conn.rollback()


def test_a_missing_outbox_publication_is_an_events_finding(fresh: Postgres) -> None:
    assert audit_with(fresh, "DROP PUBLICATION feedback_outbox_pub") == [
        ("events", "feedback", "publication feedback_outbox_pub", "missing: the service publishes events "
         "(config/services.yaml) but its outbox is not published, so they never leave")]


def test_an_outbox_publication_that_lost_its_outbox_is_an_events_finding(fresh: Postgres) -> None:
    found = audit_with(fresh, "ALTER PUBLICATION feedback_outbox_pub DROP TABLE feedback_schema.feedback_outbox")
    assert [(rule, obj) for rule, _, obj, _ in found] == [("events", "publication feedback_outbox_pub")]
    assert "does not cover feedback_schema.feedback_outbox" in found[0][3]


def test_an_outbox_publication_that_publishes_deletes_is_an_events_finding(fresh: Postgres) -> None:
    found = audit_with(fresh, "ALTER PUBLICATION feedback_outbox_pub SET (publish = 'insert, delete')")
    assert [(rule, obj) for rule, _, obj, _ in found] == [("events", "publication feedback_outbox_pub")]


def test_a_whole_schema_publication_is_an_events_finding_unless_it_is_the_extractions(fresh: Postgres) -> None:
    stray = audit_with(fresh, "CREATE PUBLICATION feedback_everything FOR TABLES IN SCHEMA feedback_schema")
    extraction = audit_with(fresh, "CREATE PUBLICATION edumatrix_extract_feedback FOR TABLES IN SCHEMA "
                                   "feedback_schema")
    assert stray == [("events", "feedback", "publication feedback_everything",
                      "covers the whole schema feedback_schema; only the service's extraction may publish it")]
    assert extraction == []


def test_a_publication_of_all_tables_is_an_events_finding(fresh: Postgres) -> None:
    found = audit_with(fresh, "CREATE PUBLICATION everything FOR ALL TABLES")
    assert [(rule, service, obj) for rule, service, obj, _ in found] == [("events", None, "publication everything")]


def test_the_cdc_login_reading_another_table_is_an_isolation_finding(fresh: Postgres) -> None:
    found = audit_with(fresh, "GRANT SELECT ON feedback_schema.feedback_inbox TO edumatrix_cdc_replicator")
    assert [(rule, obj) for rule, _, obj, _ in found] == [("isolation", "table feedback_schema.feedback_inbox")]


def test_the_cdc_login_losing_its_schema_usage_is_an_isolation_finding_the_platform_repairs(fresh: Postgres) -> None:
    with fresh.superuser() as conn:
        conn.autocommit = False
        try:
            conn.execute("REVOKE USAGE ON SCHEMA feedback_schema FROM edumatrix_cdc_replicator")
            found = [d for d in evaluate(read_catalog(conn, fresh.model), fresh.model) if d.rule == "isolation"]
        finally:
            conn.rollback()
    assert [(d.object, d.foreign) for d in found] == [("schema feedback_schema", False)]
    assert "GRANT USAGE ON SCHEMA feedback_schema TO \"edumatrix_cdc_replicator\"" in found[0].repair


def test_the_report_counts_zeros_for_every_rule() -> None:
    assert AuditReport().counts_by_rule() == dict.fromkeys(RULES, 0)
