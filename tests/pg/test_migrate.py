"""Migrations on a real PostgreSQL: `migrate check` passes the example service, refuses bad migrations with
the rule they break, and migrations run as the service's migrator, inside its schema only."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from edumatrix_db.database.catalog_snapshot import schema_snapshot
from edumatrix_db.ops import migrate
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

SERVICE = "feedback"
SCHEMA = "feedback_schema"
ISOLATE = "for s in enable_tenant_isolation_sql('feedback', {table!r}):\n        op.execute(s)"


def revision(rev: str, upgrade: str, downgrade: str | None, *, down_revision: str | None = None) -> str:
    """A revision file; `upgrade`/`downgrade` are function bodies (continuation lines indented 4)."""
    previous = down_revision if down_revision is not None else (None if rev == "0001" else f"{int(rev) - 1:04d}")
    source = (
        f'"""test revision {rev}"""\n'
        "from alembic import op\n\n"
        "from edumatrix_db.database.tenancy import enable_tenant_isolation_sql\n\n"
        f"revision = {rev!r}\ndown_revision = {previous!r}\n\n\n"
        f"def upgrade() -> None:\n    {upgrade}\n"
    )
    if downgrade is not None:
        source += f"\n\ndef downgrade() -> None:\n    {downgrade}\n"
    return source


GOOD_TABLE = (
    f"op.execute('CREATE TABLE {SCHEMA}.feedback_note (institution_id uuid NOT NULL, id bigint, "
    "PRIMARY KEY (institution_id, id))')\n    " + ISOLATE.format(table="feedback_note")
)


DROP_NOTE = f"op.execute('DROP TABLE {SCHEMA}.feedback_note')"


def write(root: Path, revisions: dict[str, str]) -> Path:
    versions = root / SERVICE / "versions"
    versions.mkdir(parents=True)
    for name, source in revisions.items():
        (versions / name).write_text(source)
    return root


def check(pg: Postgres, root: Path) -> migrate.CheckReport:
    return migrate.check(SERVICE, pg.server, pg.model, root=root)


def rules(report: migrate.CheckReport) -> set[str]:
    return {f.rule for f in report.findings}


def test_the_example_migrations_pass_check(pg: Postgres) -> None:
    report = check(pg, migrate.MIGRATIONS_ROOT)
    assert report.findings == []
    assert report.revisions == ["0001", "0002", "0003", "0004", "0005"]
    assert ("compare catalogs", "identical") in report.steps


def test_up_down_up_leaves_an_identical_catalog_on_the_real_database(pg: Postgres) -> None:
    uri = pg.uri(SERVICE, "migrator")
    with pg.superuser() as su:
        try:
            migrate.upgrade(SERVICE, uri)
            first = schema_snapshot(su, SCHEMA)
            migrate.downgrade(SERVICE, uri, "base")
            after_base = schema_snapshot(su, SCHEMA)
            migrate.upgrade(SERVICE, uri)
            assert schema_snapshot(su, SCHEMA) == first
        finally:
            migrate.downgrade(SERVICE, uri, "base")
    assert not any(name.startswith("feedback_entry") for name in after_base["relations"])
    assert "feedback_entry" in first["relations"]


@pytest.mark.parametrize(
    ("case", "revisions", "rule"),
    [
        ("table without the service prefix", {"0001_a.py": revision(
            "0001",
            f"op.execute('CREATE TABLE {SCHEMA}.notes (institution_id uuid, id int)')\n    "
            f"op.execute('ALTER TABLE {SCHEMA}.notes ENABLE ROW LEVEL SECURITY')\n    "
            f"op.execute('ALTER TABLE {SCHEMA}.notes FORCE ROW LEVEL SECURITY')\n    "
            f"op.execute(\"CREATE POLICY p ON {SCHEMA}.notes USING (institution_id IS NOT NULL)\")",
            f"op.execute('DROP TABLE {SCHEMA}.notes')")}, "naming"),
        ("function without _fn_", {"0001_a.py": revision(
            "0001", f"op.execute('CREATE FUNCTION {SCHEMA}.feedback_count() RETURNS int LANGUAGE sql AS $$SELECT 1$$')",
            f"op.execute('DROP FUNCTION {SCHEMA}.feedback_count()')")}, "naming"),
        ("table without tenant isolation", {"0001_a.py": revision(
            "0001", f"op.execute('CREATE TABLE {SCHEMA}.feedback_plain (id int)')",
            f"op.execute('DROP TABLE {SCHEMA}.feedback_plain')")}, "tenant_coverage"),
        ("empty downgrade", {"0001_a.py": revision("0001", GOOD_TABLE, "pass")}, "rollback"),
        ("missing downgrade", {"0001_a.py": revision("0001", GOOD_TABLE, None)}, "rollback"),
        ("downgrade that leaves a table behind", {"0001_a.py": revision(
            "0001", GOOD_TABLE + f"\n    op.execute('CREATE SEQUENCE {SCHEMA}.feedback_counter')",
            f"op.execute('DROP TABLE {SCHEMA}.feedback_note')")}, "rollback"),
        ("gap in the numbering", {"0001_a.py": revision("0001", GOOD_TABLE, DROP_NOTE),
                                  "0003_b.py": revision("0003", "op.execute('SELECT 1')", "op.execute('SELECT 1')",
                                                        down_revision="0001")}, "sequence"),
        ("upgrade that differs the second time", {"0001_a.py": revision(
            "0001", GOOD_TABLE + "\n    op.execute(\"DO $$ BEGIN EXECUTE format('COMMENT ON TABLE "
            f"{SCHEMA}.feedback_note IS %L', clock_timestamp()::text); END $$\")",
            f"op.execute('DROP TABLE {SCHEMA}.feedback_note')")}, "repeatable"),
    ],
)
def test_check_refuses_a_bad_migration_with_its_rule(
    pg: Postgres, tmp_path: Path, case: str, revisions: dict[str, str], rule: str
) -> None:
    report = check(pg, write(tmp_path, revisions))
    assert rule in rules(report), (case, report.findings)


def test_an_object_owned_by_the_migrator_itself_is_refused(pg: Postgres, tmp_path: Path) -> None:
    """After SET ROLE NONE an INHERIT migrator creates objects it owns (rule `ownership`); a NOINHERIT
    migrator (the guard issue) cannot create them at all (the revision fails: rule `apply`)."""
    root = write(tmp_path, {"0001_a.py": revision(
        "0001", "op.execute('SET LOCAL ROLE NONE')\n    " + GOOD_TABLE,
        f"op.execute('DROP TABLE {SCHEMA}.feedback_note')")})
    with pg.admin() as conn:
        inherits = conn.execute("SELECT rolinherit FROM pg_roles WHERE rolname = 'feedback_migrator'").fetchone()
    report = check(pg, root)
    if inherits == (True,):
        assert "ownership" in rules(report)
    else:
        assert any(f.rule == "apply" and "permission denied" in f.message for f in report.findings)


def test_a_migration_cannot_touch_another_services_schema(pg: Postgres, tmp_path: Path) -> None:
    root = write(tmp_path, {"0001_a.py": revision(
        "0001", "op.execute('CREATE TABLE courses_platform_schema.feedback_spy (id int)')",
        "op.execute('DROP TABLE courses_platform_schema.feedback_spy')")})
    report = check(pg, root)
    assert [(f.rule, "permission denied for schema courses_platform_schema" in f.message)
            for f in report.findings] == [("apply", True)]


@pytest.mark.parametrize("kind", ["app", "readonly"])
def test_migrations_refuse_any_login_but_the_migrator(pg: Postgres, kind: str) -> None:
    with pytest.raises(migrate.MigrationError, match="run as feedback_migrator acting as feedback_owner"):
        migrate.upgrade(SERVICE, pg.uri(SERVICE, kind))


def test_migrations_refuse_the_admin(pg: Postgres) -> None:
    with pytest.raises(migrate.MigrationError, match="never an admin"):
        migrate.upgrade(SERVICE, pg.admin_uri)


def test_each_revision_is_its_own_transaction(pg: Postgres, tmp_path: Path) -> None:
    """A failing second revision rolls back alone: the first stays applied, nothing of the second remains."""
    root = write(tmp_path, {
        "0001_a.py": revision("0001", GOOD_TABLE, f"op.execute('DROP TABLE {SCHEMA}.feedback_note')"),
        "0002_b.py": revision(
            "0002", f"op.execute('CREATE TABLE {SCHEMA}.feedback_half (institution_id uuid)')\n    "
            "op.execute('SELECT 1/0')", f"op.execute('DROP TABLE {SCHEMA}.feedback_half')"),
    })
    with migrate.scratch_database(pg.server, pg.model, SERVICE) as (scratch, _model):
        uri = scratch.uri("feedback_migrator", scratch.passwords()["feedback_migrator"])
        with pytest.raises(Exception, match="division by zero"):
            migrate.upgrade(SERVICE, uri, root=root)
        status = migrate.status(SERVICE, uri, root=root)
        with psycopg.connect(scratch.admin_uri()) as admin:
            relations = schema_snapshot(admin, SCHEMA)["relations"]
    assert status.current == "0001"
    assert "feedback_note" in relations
    assert "feedback_half" not in relations


def test_a_migration_waiting_for_a_lock_gives_up_at_the_lock_timeout(pg: Postgres, tmp_path: Path) -> None:
    root = write(tmp_path, {
        "0001_a.py": revision("0001", GOOD_TABLE, f"op.execute('DROP TABLE {SCHEMA}.feedback_note')"),
        "0002_b.py": revision("0002", f"op.execute('ALTER TABLE {SCHEMA}.feedback_note ADD COLUMN body text')",
                              f"op.execute('ALTER TABLE {SCHEMA}.feedback_note DROP COLUMN body')"),
    })
    with migrate.scratch_database(pg.server, pg.model, SERVICE) as (scratch, _model):
        uri = scratch.uri("feedback_migrator", scratch.passwords()["feedback_migrator"])
        migrate.upgrade(SERVICE, uri, "0001", root=root)
        with psycopg.connect(scratch.bootstrap_conninfo(scratch.database)) as traffic:
            traffic.execute(f"LOCK TABLE {SCHEMA}.feedback_note IN ACCESS SHARE MODE")  # a long reader
            with pytest.raises(Exception, match="lock timeout"):
                migrate.upgrade(SERVICE, uri, root=root, lock_timeout="200ms")
        assert migrate.status(SERVICE, uri, root=root).current == "0001"


def test_the_version_table_lives_in_the_service_schema(pg: Postgres) -> None:
    with migrate.scratch_database(pg.server, pg.model, SERVICE) as (scratch, _model):
        uri = scratch.uri("feedback_migrator", scratch.passwords()["feedback_migrator"])
        migrate.upgrade(SERVICE, uri, "0001")
        with psycopg.connect(scratch.admin_uri()) as admin:
            row = admin.execute("SELECT relowner::regrole::text FROM pg_class WHERE oid = "
                                "'feedback_schema.feedback_schema_version'::regclass").fetchone()
    assert row == ("feedback_owner",)
