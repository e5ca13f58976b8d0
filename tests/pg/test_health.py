"""`health` on a real PostgreSQL: a planted bloated index, an unused index and a duplicate are reported, each
with its fix."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edumatrix_db.ops import health
from edumatrix_db.ops.findings import Finding
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

TABLE = "feedback_schema.feedback_bloat"


@pytest.fixture(scope="module")
def planted(pg: Postgres) -> Iterator[list[Finding]]:
    """feedback's migrator builds a table whose note index is left 10 % full (9 rows in 10 deleted, then
    vacuumed), an index nothing scans, and a duplicate of the note index."""
    with pg.connect(pg.uri("feedback", "migrator")) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (institution_id uuid, id int PRIMARY KEY, note text)")
        conn.execute(f"INSERT INTO {TABLE} SELECT NULL, n, 'note number ' || n FROM generate_series(1, 50000) n")
        conn.execute(f"CREATE INDEX feedback_bloat_note_idx ON {TABLE} (note)")
        conn.execute(f"CREATE INDEX feedback_bloat_note_again_idx ON {TABLE} (note)")
        conn.execute(f"CREATE INDEX feedback_bloat_id_idx ON {TABLE} (id, institution_id)")
        conn.execute(f"DELETE FROM {TABLE} WHERE id % 10 <> 0")
    try:
        with pg.superuser() as su:
            su.execute(f"VACUUM (ANALYZE) {TABLE}")
        with pg.connect(pg.uri("feedback", "migrator")) as conn:
            conn.execute(f"CREATE INDEX feedback_bloat_late_idx ON {TABLE} (id, note)")  # built after the purge
        with pg.admin() as admin:
            yield health.check(admin, pg.model, ["feedback"])
    finally:
        with pg.connect(pg.uri("feedback", "migrator")) as conn:
            conn.execute(f"DROP TABLE {TABLE}")


def found(findings: list[Finding], rule: str) -> set[str]:
    return {f.object for f in findings if f.rule == rule}


def test_a_bloated_index_is_reported_with_reindex_concurrently_as_the_fix(planted: list[Finding]) -> None:
    assert "feedback_schema.feedback_bloat_note_idx" in found(planted, "index-bloat")
    fix = next(f.fix for f in planted if f.object == "feedback_schema.feedback_bloat_note_idx"
               and f.rule == "index-bloat")
    assert fix.startswith('REINDEX INDEX CONCURRENTLY "feedback_schema"."feedback_bloat_note_idx"')


def test_an_unused_index_is_reported(planted: list[Finding]) -> None:
    assert "feedback_schema.feedback_bloat_id_idx" in found(planted, "unused-index")


def test_an_index_backing_a_primary_key_is_never_called_unused(planted: list[Finding]) -> None:
    assert "feedback_schema.feedback_bloat_pkey" not in found(planted, "unused-index")


def test_a_duplicate_index_is_reported(planted: list[Finding]) -> None:
    assert found(planted, "duplicate-index") == {"feedback_schema.feedback_bloat_note_again_idx"}


def test_a_freshly_built_index_is_not_called_bloated(planted: list[Finding]) -> None:
    assert "feedback_schema.feedback_bloat_late_idx" not in found(planted, "index-bloat")


def test_findings_are_confined_to_the_service_asked_for(planted: list[Finding]) -> None:
    assert {f.service for f in planted} == {"feedback"}
