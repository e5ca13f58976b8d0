"""Tenant isolation on a real PostgreSQL: forced RLS on institution_id against a transaction-local tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors

from edumatrix_db.database.tenancy import (
    TENANT_SETTING,
    TenantNotSet,
    enable_tenant_isolation,
    policy_name,
    scoped_execute,
    tenant_transaction,
)
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

A = uuid.UUID(int=0xA)
B = uuid.UUID(int=0xB)
TABLE = "courses_platform_enrolment"


@pytest.fixture(scope="module")
def isolated(pg: Postgres) -> Iterator[Postgres]:
    """courses_platform's migrator creates a table, puts it under isolation and seeds A and B rows."""
    with pg.connect(pg.uri("courses_platform", "migrator")) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(
            f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
            "student text NOT NULL)"
        )
        enable_tenant_isolation(conn, "courses_platform", TABLE)
        for tenant, students in ((A, ("ann", "amy")), (B, ("bob",))):
            with tenant_transaction(conn, tenant):
                for s in students:
                    conn.execute(
                        f"INSERT INTO {TABLE} (institution_id, student) VALUES (%s, %s)", [tenant, s]
                    )
    yield pg
    # The server is shared: a table left behind under this name shadows the GDPR example's own
    # (`CREATE TABLE IF NOT EXISTS` there), which tests/pg/test_gdpr.py then fails to seed.
    with pg.connect(pg.uri("courses_platform", "migrator")) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def app(pg: Postgres) -> psycopg.Connection:
    return pg.connect(pg.uri("courses_platform", "app"))


def test_with_institution_a_set_only_a_rows_are_visible(isolated: Postgres) -> None:
    with app(isolated) as conn, tenant_transaction(conn, A):
        rows = conn.execute(f"SELECT DISTINCT institution_id FROM {TABLE}").fetchall()
    assert rows == [(A,)]


def test_with_institution_a_set_b_rows_cannot_be_written(isolated: Postgres) -> None:
    with app(isolated) as conn:
        with tenant_transaction(conn, A):
            updated = conn.execute(
                f"UPDATE {TABLE} SET student = 'x' WHERE institution_id = %s", [B]
            ).rowcount
            deleted = conn.execute(f"DELETE FROM {TABLE} WHERE institution_id = %s", [B]).rowcount
        assert (updated, deleted) == (0, 0)
        with (
            pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
            tenant_transaction(conn, A),
        ):
            conn.execute(f"INSERT INTO {TABLE} (institution_id, student) VALUES (%s, 'mallory')", [B])
        with (
            pytest.raises(errors.InsufficientPrivilege, match="row-level security"),
            tenant_transaction(conn, A),
        ):
            conn.execute(f"UPDATE {TABLE} SET institution_id = %s WHERE student = 'ann'", [B])


def test_with_no_tenant_set_a_session_sees_nothing_and_writes_nothing(isolated: Postgres) -> None:
    with app(isolated) as conn:
        assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (0,)
        with pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
            conn.execute(f"INSERT INTO {TABLE} (institution_id, student) VALUES (%s, 'x')", [A])


def test_the_tenant_does_not_outlive_its_transaction(isolated: Postgres) -> None:
    with app(isolated) as conn:
        with tenant_transaction(conn, A):
            assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (2,)
        assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (0,)
        assert conn.execute("SELECT current_setting(%s, true)", [TENANT_SETTING]).fetchone() in [
            ("",),
            (None,),
        ]


def test_the_table_owner_is_bound_too(isolated: Postgres) -> None:
    # the migrator runs as courses_platform_owner, the table's owner: FORCE ROW LEVEL SECURITY binds it
    with isolated.connect(isolated.uri("courses_platform", "migrator")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("courses_platform_owner",)
        assert conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone() == (0,)
        with tenant_transaction(conn, B):
            assert conn.execute(f"SELECT student FROM {TABLE}").fetchall() == [("bob",)]


def test_the_policy_and_forced_rls_follow_the_naming_convention(isolated: Postgres) -> None:
    with isolated.admin() as conn:
        row = conn.execute(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, array_agg(p.polname) FROM pg_class c "
            "JOIN pg_policy p ON p.polrelid = c.oid WHERE c.oid = %s::regclass GROUP BY 1, 2",
            [f"courses_platform_schema.{TABLE}"],
        ).fetchone()
    assert row == (True, True, [policy_name("courses_platform")])


def test_scoped_execute_reads_one_tenant_in_one_pipeline_and_leaves_nothing_behind(
    isolated: Postgres,
) -> None:
    with app(isolated) as conn:
        rows = scoped_execute(conn, B, f"SELECT student FROM {TABLE} ORDER BY student")
        after = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert rows == [("bob",)]
    assert after == (0,)


def test_setting_a_tenant_outside_a_transaction_is_refused(isolated: Postgres) -> None:
    from edumatrix_db.database.tenancy import set_tenant

    with app(isolated) as conn, pytest.raises(TenantNotSet):
        set_tenant(conn, A)


def test_enabling_isolation_twice_is_harmless(isolated: Postgres) -> None:
    with isolated.connect(isolated.uri("courses_platform", "migrator")) as conn:
        enable_tenant_isolation(conn, "courses_platform", TABLE)
        policies = conn.execute(
            "SELECT count(*) FROM pg_policy WHERE polrelid = %s::regclass", [TABLE]
        ).fetchone()
    assert policies == (1,)


def test_tables_and_views_written_by_the_convention_pass_the_audits_tenant_rules(pg: Postgres) -> None:
    from edumatrix_db.database.tenancy import secure_view_sql
    from edumatrix_db.ops.audit import run_audit

    with pg.connect(pg.uri("courses_platform", "migrator")) as conn:
        conn.execute(
            "CREATE TABLE courses_platform_course (institution_id uuid NOT NULL, "
            "id bigint GENERATED ALWAYS AS IDENTITY, code text NOT NULL, PRIMARY KEY (institution_id, id), "
            "UNIQUE (institution_id, code))"
        )
        conn.execute(
            "CREATE TABLE courses_platform_seat (institution_id uuid NOT NULL, "
            "id bigint GENERATED ALWAYS AS IDENTITY, course_id bigint NOT NULL, PRIMARY KEY (institution_id, id), "
            "FOREIGN KEY (institution_id, course_id) REFERENCES courses_platform_course (institution_id, id))"
        )
        for table in ("courses_platform_course", "courses_platform_seat"):
            enable_tenant_isolation(conn, "courses_platform", table)
        conn.execute("CREATE VIEW courses_platform_codes AS SELECT institution_id, code FROM courses_platform_course")
        conn.execute(secure_view_sql("courses_platform", "courses_platform_codes").encode())
    try:
        with pg.superuser() as su:
            report = run_audit(su, pg.model)
        mine = [f for f in report.findings
                if any(n in f.object for n in ("courses_platform_course", "courses_platform_seat",
                                               "courses_platform_codes"))]
        assert mine == []
    finally:
        with pg.connect(pg.uri("courses_platform", "migrator")) as conn:
            conn.execute("DROP VIEW courses_platform_codes")
            conn.execute("DROP TABLE courses_platform_seat, courses_platform_course")
