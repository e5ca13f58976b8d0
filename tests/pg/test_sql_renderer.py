"""Renderer 2 (edumatrix_db.database.sql) on a real PostgreSQL: idempotent, says what the model says, never
drops data unless told to."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from config.access import AccessModel, build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import catalog, drift, sql
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def test_a_second_apply_changes_nothing(pg: Postgres, probes: dict[str, dict[str, int]]) -> None:
    with pg.admin() as conn:
        report = sql.apply(conn, pg.model)
    assert report.changes == []
    assert not report.changed


def test_the_database_holds_exactly_what_the_access_model_says(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.admin() as conn:
        actual = catalog.read_canonical(conn, pg.model)
    expected = pg.model.canonical()
    assert actual == expected, (
        f"only in the database: {sorted(actual - expected, key=str)}\n"
        f"only in the model: {sorted(expected - actual, key=str)}"
    )


def test_apply_repairs_drift_and_reports_the_statements_it_ran(pg: Postgres) -> None:
    with pg.admin() as conn:
        conn.execute('GRANT CREATE ON SCHEMA "news_system_schema" TO "news_system_app"')
        conn.execute('ALTER ROLE "news_system_app" SET statement_timeout = 60000')
        report = sql.apply(conn, pg.model)
        again = sql.apply(conn, pg.model)
    assert any("news_system_app" in c and "SCHEMA" in c for c in report.changes)
    assert any("statement_timeout" in c for c in report.changes)
    assert again.changes == []


def role_attributes(conn: psycopg.Connection[Any], role: str) -> tuple[Any, ...]:
    row = conn.execute("SELECT rolcanlogin, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
                       "rolreplication, rolinherit FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    assert row is not None, f"no role {role}"
    return row


def test_the_admin_repairs_drifted_role_attributes(pg: Postgres) -> None:
    """The admin is no superuser (as on RDS): PostgreSQL 15 refuses it any ALTER ROLE that names SUPERUSER,
    REPLICATION or BYPASSRLS, even to say NO, so the repair must name only what drifted."""
    role = pg.model.service("news_system").role("readonly")
    with pg.admin() as conn:
        before = role_attributes(conn, role.name)
        conn.execute(f'ALTER ROLE "{role.name}" NOLOGIN CREATEDB CREATEROLE NOINHERIT CONNECTION LIMIT 99')
        report = sql.apply(conn, pg.model)
        after = role_attributes(conn, role.name)
    assert before == (True, role.connection_limit, False, False, False, False, False, True)
    assert after == before
    (repair,) = [c for c in report.changes if c.startswith("ALTER ROLE") and "SET" not in c]
    assert repair.startswith(f'ALTER ROLE "{role.name}" ')
    assert set(repair.split()[3:]) == {"LOGIN", "NOCREATEDB", "NOCREATEROLE", "INHERIT", "CONNECTION", "LIMIT",
                                       str(role.connection_limit)}


@pytest.mark.parametrize("power", ["SUPERUSER", "BYPASSRLS", "REPLICATION"])
def test_a_superuser_applying_the_model_takes_superuser_only_powers_away(pg: Postgres, power: str) -> None:
    role = pg.model.service("news_system").role("app")
    with pg.superuser() as conn:
        conn.execute(f'ALTER ROLE "{role.name}" {power}')
        try:
            report = sql.apply(conn, pg.model)
            after = role_attributes(conn, role.name)
        finally:
            conn.execute(f'ALTER ROLE "{role.name}" NO{power}')
    assert after[2:7] == (False, False, False, False, False)
    assert f'ALTER ROLE "{role.name}" NO{power}' in report.changes


def test_a_service_removed_from_the_catalog_is_reported_and_left_alone(pg: Postgres) -> None:
    catalog = load_catalog()
    smaller = catalog.model_copy(update={"services": tuple(s for s in catalog if s.name != "statistics")})
    model = build_access_model(smaller)
    with pg.admin() as conn:
        report = sql.apply(conn, model)
        still_there = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'statistics_schema'"
        ).fetchone()
    assert [o for o in report.orphans if o.startswith("schema statistics_schema")]
    assert report.dropped == []
    assert still_there == (1,)


def test_the_destructive_flag_drops_a_removed_services_schema_and_roles(pg: Postgres) -> None:
    catalog = load_catalog()
    doomed = catalog.get("feedback").model_copy(update={"name": "doomed_service",
                                                        "personal_tables": ("doomed_service_entry",)})
    with_doomed = catalog.model_copy(update={"services": (*catalog.services, doomed)})
    with pg.admin() as conn, pg.superuser() as su:  # the superuser creates its BYPASSRLS GDPR definer
        sql.apply(conn, build_access_model(with_doomed), privileged=su)
        conn.execute('CREATE TABLE "doomed_service_schema"."doomed_service_rows" (id int)')
        report = sql.apply(conn, pg.model, destructive=True)
        left = conn.execute(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'doomed_service_schema'),"
            " (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'doomed\\_service\\_%')"
        ).fetchone()
    assert any("DROP SCHEMA" in d for d in report.dropped)
    assert left == (0, 0)


def test_a_failed_repair_that_needed_a_role_warns_with_its_own_error_and_leaves_the_role(
    pg: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The admin joins the role for the repair inside the repair's savepoint: when the repair fails, the rollback
    takes the membership back and the warning names the failure (not the aborted transaction after it)."""
    failing = drift.Drift("isolation", "feedback", "table feedback_schema.no_such_table", "a repair that fails",
                          "none", repair=('REVOKE SELECT ON TABLE "feedback_schema"."no_such_table" '
                                          'FROM "feedback_app"',), act_as="feedback_readonly")
    judged = []
    real_evaluate = drift.evaluate

    def evaluate(snapshot: catalog.Snapshot, model: AccessModel) -> list[drift.Drift]:
        judged.append(snapshot)
        return [*real_evaluate(snapshot, model), *([failing] if len(judged) == 1 else [])]

    monkeypatch.setattr(drift, "evaluate", evaluate)
    member = "SELECT pg_has_role(current_user, 'feedback_readonly', 'MEMBER')"
    with pg.admin() as conn:
        assert conn.execute(member).fetchone() == (False,)
        report = sql.apply(conn, pg.model)
        assert conn.execute(member).fetchone() == (False,)
    warning = ("could not repair table feedback_schema.no_such_table (a repair that fails): "
               'relation "feedback_schema.no_such_table" does not exist')
    assert warning in report.warnings  # (others may name drift earlier tests of this module left)
