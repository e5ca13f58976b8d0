"""Issue 11's findings, one by one, on a real PostgreSQL: each attack that used to succeed now fails, or is
repaired or reported by `local up` (here `pg.server.apply`, the code `edumatrix-db local up` runs).

Tests that plant drift leave the shared server as they found it (the repair does, or a `finally`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from config.access import ADVISORY_LOCK_FUNCTIONS
from edumatrix_db.database.drift import GUARD_TRIGGER, Drift
from edumatrix_db.database.sql import ApplyReport
from edumatrix_db.database.tenancy import enable_tenant_isolation, tenant_transaction
from edumatrix_db.ops.audit import AuditReport, run_audit
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

A, B = uuid.UUID(int=0xA1), uuid.UUID(int=0xB1)


def local_up(pg: Postgres, **kwargs: bool) -> ApplyReport:
    return pg.server.apply(pg.model, **kwargs)


def audit(pg: Postgres) -> AuditReport:
    with pg.superuser() as conn:
        return run_audit(conn, pg.model)


def about(findings: list[Drift] | AuditReport, rule: str, obj: str) -> list[str]:
    items = findings.findings if isinstance(findings, AuditReport) else findings
    return [f"{f.object}: {f.message}" for f in items if f.rule == rule and obj in f.object]


def scalar(pg: Postgres, query: str, params: list[object] | None = None, dbname: str | None = None) -> object:
    with psycopg.connect(pg.server.bootstrap_conninfo(dbname or pg.model.database), autocommit=True) as conn:
        row = conn.execute(query.encode(), params).fetchone()
    assert row is not None
    return row[0]


@pytest.fixture
def guard_off(pg: Postgres) -> Iterator[None]:
    """The grant guard disabled, as on an RDS instance where nobody installed it yet."""
    with pg.superuser() as su:
        su.execute(f"ALTER EVENT TRIGGER {GUARD_TRIGGER} DISABLE")
        try:
            yield
        finally:
            su.execute(f"ALTER EVENT TRIGGER {GUARD_TRIGGER} ENABLE")


# -- 1. advisory locks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["app", "readonly"])
def test_1_a_service_login_cannot_fill_the_shared_lock_table_with_advisory_locks(pg: Postgres, kind: str) -> None:
    with pg.connect(pg.uri("jobs_portal", kind)) as conn, pytest.raises(
        errors.InsufficientPrivilege, match="permission denied for function pg_advisory_lock"
    ):
        conn.execute("SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 200000) i")
    with pg.admin() as admin:  # new connections still get in
        assert admin.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("dbname", ["edumatrix", "postgres", "template1"])
def test_1_only_the_owners_may_execute_the_advisory_lock_functions_in_every_database(
    pg: Postgres, dbname: str
) -> None:
    owners = {s.owner for s in pg.model.services}
    roles = [*owners, *(r.name for r in pg.model.all_roles if r.login)]
    with psycopg.connect(pg.server.bootstrap_conninfo(dbname), autocommit=True) as conn:
        allowed = set(conn.execute(
            "SELECT r, f FROM unnest(%s::text[]) r, unnest(%s::text[]) f "
            "WHERE has_function_privilege(r, f::regprocedure, 'EXECUTE')",
            [roles, list(ADVISORY_LOCK_FUNCTIONS)],
        ).fetchall())
    assert allowed == {(owner, fn) for owner in owners for fn in ADVISORY_LOCK_FUNCTIONS}


def test_1_service_logins_cannot_reach_the_lock_table_through_another_database(pg: Postgres) -> None:
    uri = pg.uri("jobs_portal", "readonly").replace("/edumatrix?", "/postgres?")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(uri).close()


def test_1_a_migration_running_as_the_owner_still_takes_advisory_locks(pg: Postgres) -> None:
    with pg.connect(pg.uri("jobs_portal", "migrator")) as conn:
        assert conn.execute("SELECT pg_try_advisory_lock(4242), current_user").fetchone() == (
            True, "jobs_portal_owner")
        assert conn.execute("SELECT pg_advisory_unlock(4242)").fetchone() == (True,)


# -- 2. grants across services ----------------------------------------------------------------------------
@pytest.mark.parametrize("stmt", [
    "GRANT USAGE ON SCHEMA feedback_schema TO statistics_app",
    "GRANT SELECT ON feedback_probe TO statistics_app",
    "GRANT SELECT (note) ON feedback_probe TO statistics_readonly",
    "GRANT EXECUTE ON FUNCTION feedback_fn_probe() TO PUBLIC",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA feedback_schema GRANT SELECT ON TABLES TO statistics_app",
    "ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO jobs_portal_app",
    "DO $$ BEGIN EXECUTE 'GRANT SELECT ON feedback_probe TO jobs_portal_readonly'; END $$",
], ids=["schema", "table", "column", "function-to-public", "defaults-in-schema", "defaults-everywhere", "dynamic"])
def test_2_a_migrator_cannot_grant_its_objects_to_another_services_roles(
    pg: Postgres, probes: dict[str, dict[str, int]], stmt: str
) -> None:
    with pg.connect(pg.uri("feedback", "migrator")) as conn, pytest.raises(
        errors.InsufficientPrivilege, match=r"refused: .* not a role of schema feedback_schema"
    ):
        conn.execute(stmt.encode())
    assert scalar(pg, "SELECT has_table_privilege('statistics_app', 'feedback_schema.feedback_probe', 'SELECT')") \
        is False


def test_2_grants_to_the_services_own_roles_still_pass_the_guard(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.connect(pg.uri("feedback", "migrator")) as conn:
        conn.execute("GRANT SELECT ON feedback_probe TO feedback_readonly")
        conn.execute("CREATE TABLE IF NOT EXISTS feedback_guarded (id int)")
        conn.execute("DROP TABLE feedback_guarded")


def test_2_a_foreign_grant_that_got_through_is_reported_and_revoked_only_when_asked(
    pg: Postgres, probes: dict[str, dict[str, int]], guard_off: None
) -> None:
    with pg.connect(pg.uri("feedback", "migrator")) as conn:
        conn.execute("GRANT USAGE ON SCHEMA feedback_schema TO statistics_app")
        conn.execute("GRANT SELECT ON feedback_probe TO statistics_app")
    with pg.connect(pg.uri("statistics", "app")) as other:  # the attack: statistics reads feedback's table
        other.execute("SELECT count(*) FROM feedback_schema.feedback_probe")
    try:
        reported = local_up(pg)
        assert about(reported.findings, "isolation", "feedback_schema.feedback_probe"), reported.findings
        assert all(d.foreign for d in reported.findings if "statistics_app" in d.message)
        assert scalar(pg, "SELECT has_table_privilege('statistics_app', 'feedback_schema.feedback_probe', "
                          "'SELECT')") is True
    finally:
        revoked = local_up(pg, revoke_foreign=True)
    assert [d for d in revoked.findings if d.foreign] == []
    assert scalar(pg, "SELECT has_table_privilege('statistics_app', 'feedback_schema.feedback_probe', 'SELECT') "
                      "OR has_schema_privilege('statistics_app', 'feedback_schema', 'USAGE')") is False


# -- 3. drift the old `local up` left in place --------------------------------------------------------------
DRIFT = {
    "member-of-pg_read_all_data": (
        "GRANT pg_read_all_data TO news_system_app",
        "SELECT pg_has_role('news_system_app', 'pg_read_all_data', 'MEMBER')",
    ),
    "member-of-pg_signal_backend": (
        "GRANT pg_signal_backend TO news_system_readonly",
        "SELECT pg_has_role('news_system_readonly', 'pg_signal_backend', 'MEMBER')",
    ),
    "member-of-another-services-owner": (
        "GRANT statistics_owner TO news_system_app",
        "SELECT pg_has_role('news_system_app', 'statistics_owner', 'MEMBER')",
    ),
    "create-on-schema-public": (
        "GRANT CREATE ON SCHEMA public TO news_system_app",
        "SELECT has_schema_privilege('news_system_app', 'public', 'CREATE')",
    ),
    "create-on-schema-extensions": (
        "GRANT CREATE ON SCHEMA extensions TO news_system_app",
        "SELECT has_schema_privilege('news_system_app', 'extensions', 'CREATE')",
    ),
    "database-wide-default-to-public": (
        "ALTER DEFAULT PRIVILEGES FOR ROLE news_system_owner GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
        # no global entry at all is PostgreSQL's default: PUBLIC executes new functions
        "SELECT coalesce((SELECT bool_or(a.grantee = 0) FROM pg_default_acl d, aclexplode(d.defaclacl) a "
        "WHERE d.defaclrole = 'news_system_owner'::regrole AND d.defaclnamespace = 0 AND d.defaclobjtype = 'f'), "
        "true)",
    ),
    "public-execute-on-a-security-definer-function": (
        "CREATE OR REPLACE FUNCTION news_system_schema.news_system_fn_definer() RETURNS int LANGUAGE sql "
        "SECURITY DEFINER SET search_path = pg_catalog AS 'SELECT 1'; "
        "ALTER FUNCTION news_system_schema.news_system_fn_definer() OWNER TO news_system_owner; "
        "GRANT EXECUTE ON FUNCTION news_system_schema.news_system_fn_definer() TO PUBLIC",
        "SELECT has_function_privilege('statistics_app', 'news_system_schema.news_system_fn_definer()', 'EXECUTE')",
    ),
    "statement-timeout-0-in-database": (
        "ALTER ROLE news_system_app IN DATABASE edumatrix SET statement_timeout = 0",
        "SELECT EXISTS (SELECT 1 FROM pg_db_role_setting WHERE setrole = 'news_system_app'::regrole "
        "AND setdatabase <> 0)",
    ),
    "connection-limit-raised": (
        "ALTER ROLE news_system_app CONNECTION LIMIT 500",
        "SELECT rolconnlimit = 500 FROM pg_roles WHERE rolname = 'news_system_app'",
    ),
}


@pytest.mark.parametrize("case", sorted(DRIFT))
def test_3_local_up_repairs_drift_of_what_the_model_declares(pg: Postgres, case: str) -> None:
    plant, still_there = DRIFT[case]
    with pg.superuser() as su:
        su.execute(plant.encode())
    assert scalar(pg, still_there) is True
    report = local_up(pg)
    assert scalar(pg, still_there) is False, report.warnings
    assert [f for f in report.findings if f.service == "news_system" and f.rule == "isolation"] == []


def test_3_roles_outside_the_model_and_unprotected_tables_are_reported_not_touched(pg: Postgres) -> None:
    with pg.superuser() as su:
        su.execute("CREATE ROLE stray_login LOGIN")
        su.execute("CREATE TABLE news_system_schema.news_system_open (institution_id uuid NOT NULL, v text); "
                   "ALTER TABLE news_system_schema.news_system_open OWNER TO news_system_owner")
        try:
            report = local_up(pg)
            assert about(report.findings, "unknown_role", "role stray_login")
            assert about(report.findings, "tenant_coverage", "news_system_schema.news_system_open")
            assert scalar(pg, "SELECT count(*) FROM pg_roles WHERE rolname = 'stray_login'") == 1
        finally:
            su.execute("DROP TABLE news_system_schema.news_system_open; DROP ROLE stray_login")


# -- 4. tenant coverage -----------------------------------------------------------------------------------
COVERAGE = {
    "table-without-the-helper": (
        "CREATE TABLE statistics_plain (id bigint, institution_id uuid NOT NULL, PRIMARY KEY (institution_id, id))",
        "table statistics_schema.statistics_plain", "row-level security disabled"),
    "nullable-institution-id": (
        "CREATE TABLE statistics_nullable (id bigint, institution_id uuid, UNIQUE (institution_id, id))",
        "table statistics_schema.statistics_nullable", "institution_id"),
    "view-without-security-invoker": (
        "CREATE VIEW statistics_report AS SELECT 1 AS n", "view statistics_schema.statistics_report",
        "security_invoker"),
    "materialized-view": (
        "CREATE MATERIALIZED VIEW statistics_snapshot AS SELECT 1 AS n",
        "materialized view statistics_schema.statistics_snapshot", "no row-level security"),
    "unique-without-institution-id": (
        "CREATE TABLE statistics_codes (institution_id uuid NOT NULL, code text UNIQUE)",
        "table statistics_schema.statistics_codes", "unique constraint"),
    "foreign-key-without-institution-id": (
        "CREATE TABLE statistics_parent (institution_id uuid NOT NULL, id bigint UNIQUE, "
        "UNIQUE (institution_id, id)); CREATE TABLE statistics_child (institution_id uuid NOT NULL, "
        "parent_id bigint REFERENCES statistics_parent (id))",
        "table statistics_schema.statistics_child", "foreign key"),
}


@pytest.mark.parametrize("case", sorted(COVERAGE))
def test_4_a_table_or_view_outside_tenant_isolation_is_reported(pg: Postgres, case: str) -> None:
    ddl, obj, words = COVERAGE[case]
    try:
        with pg.connect(pg.uri("statistics", "migrator")) as conn:
            conn.execute(ddl.encode())
        found = about(audit(pg), "tenant_coverage", obj)
        assert any(words in f for f in found), found
    finally:
        with pg.connect(pg.uri("statistics", "migrator")) as conn:
            for name in ("statistics_child", "statistics_parent", "statistics_codes", "statistics_plain",
                         "statistics_nullable"):
                conn.execute(f"DROP TABLE IF EXISTS {name}".encode())
            conn.execute("DROP VIEW IF EXISTS statistics_report")
            conn.execute("DROP MATERIALIZED VIEW IF EXISTS statistics_snapshot")


def test_4_a_table_created_without_the_helper_returns_every_tenants_rows_and_is_reported(pg: Postgres) -> None:
    with pg.connect(pg.uri("freelancing", "migrator")) as conn:
        conn.execute("CREATE TABLE freelancing_bids (id bigint, institution_id uuid NOT NULL, "
                     "PRIMARY KEY (institution_id, id))")
        conn.execute("INSERT INTO freelancing_bids VALUES (1, %s), (2, %s)", [A, B])
    try:
        with pg.connect(pg.uri("freelancing", "app")) as app, tenant_transaction(app, A):
            rows = app.execute("SELECT count(DISTINCT institution_id) FROM freelancing_bids").fetchone()
        assert rows == (2,)  # PostgreSQL cannot stop this: the audit must see it
        assert about(audit(pg), "tenant_coverage", "freelancing_schema.freelancing_bids")
        with pg.connect(pg.uri("freelancing", "migrator")) as conn:
            enable_tenant_isolation(conn, "freelancing", "freelancing_bids")
        assert about(audit(pg), "tenant_coverage", "freelancing_schema.freelancing_bids") == []
    finally:
        with pg.connect(pg.uri("freelancing", "migrator")) as conn:
            conn.execute("DROP TABLE freelancing_bids")


# -- 5. SET ROLE NONE, objects owned by someone else -----------------------------------------------------
def test_5_after_set_role_none_a_migrator_cannot_create_objects_of_its_own(pg: Postgres) -> None:
    with pg.connect(pg.uri("jobs_portal", "migrator")) as conn:
        conn.execute("SET ROLE NONE")
        assert conn.execute("SELECT current_user").fetchone() == ("jobs_portal_migrator",)
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for schema jobs_portal_schema"):
            conn.execute("CREATE TABLE jobs_portal_schema.jobs_portal_mine (id int)")


def test_5_local_up_survives_a_foreign_owned_object_names_it_and_still_repairs_the_rest(pg: Postgres) -> None:
    with pg.superuser() as su:
        su.execute("CREATE TABLE jobs_portal_schema.jobs_portal_stray (id int); "
                   "ALTER TABLE jobs_portal_schema.jobs_portal_stray OWNER TO jobs_portal_app")
        su.execute("GRANT pg_read_all_data TO courses_platform_readonly")
        try:
            report = local_up(pg)
            assert about(report.findings, "ownership", "jobs_portal_schema.jobs_portal_stray") == [
                "table jobs_portal_schema.jobs_portal_stray: owned by jobs_portal_app, not jobs_portal_owner: "
                "the platform cannot grant on it and skips it"]
            assert scalar(pg, "SELECT pg_has_role('courses_platform_readonly', 'pg_read_all_data', 'MEMBER')") \
                is False
        finally:
            su.execute("DROP TABLE jobs_portal_schema.jobs_portal_stray")


# -- 6. what every role shares -------------------------------------------------------------------------------
def test_6_a_large_object_is_reported_with_its_service(pg: Postgres) -> None:
    with pg.connect(pg.uri("community_rooms", "app")) as conn:
        row = conn.execute("SELECT lo_from_bytea(0, 'outside every schema')").fetchone()
        assert row is not None
        oid = row[0]
        try:
            found = [f for f in audit(pg).findings if f.rule == "large_object" and f.object == f"large object {oid}"]
            assert [(f.service, f.object) for f in found] == [("community_rooms", f"large object {oid}")]
        finally:
            conn.execute("SELECT lo_unlink(%s)", [oid])


def test_6_notify_crosses_services_which_postgresql_cannot_close(pg: Postgres) -> None:
    """Documented limit (docs/tenancy.md): channels have no privileges; payloads must carry no data."""
    with pg.connect(pg.uri("statistics", "app")) as listener, pg.connect(pg.uri("feedback", "app")) as sender:
        listener.execute("LISTEN feedback_events")
        sender.execute("NOTIFY feedback_events, 'id-only'")
        received = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert received == ["id-only"]


def test_6_catalog_metadata_of_another_service_is_readable_which_postgresql_cannot_close(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.connect(pg.uri("statistics", "readonly")) as conn:
        source = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = %s", [probes["feedback"]["function"]]).fetchone()
    assert source == ("SELECT 1",)


# -- 7. a role changes its own password ----------------------------------------------------------------------
def test_7_a_password_a_role_changed_itself_is_noticed_and_reset_by_local_up(pg: Postgres) -> None:
    uri = pg.uri("news_system", "readonly")
    with pg.connect(uri) as conn:
        conn.execute("ALTER ROLE news_system_readonly PASSWORD 'chosen-by-the-role'")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(uri).close()
    report = local_up(pg)
    assert any("news_system_readonly" in w and "changed outside the platform" in w for w in report.warnings)
    with pg.connect(uri) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("news_system_readonly",)
