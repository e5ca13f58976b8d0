"""`docs` on the example service with a real workload: every table, key and index is documented, index use
and top statements come from the server's statistics, pg_cron jobs are listed, growth says it has no history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, TypeAlias

import psycopg
import pytest

from edumatrix_db.database.tenancy import tenant_transaction
from edumatrix_db.ops import migrate, schemadoc
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

# The `documented` fixture: the collected documentation (JSON) and its markdown.
Documented: TypeAlias = tuple[dict[str, Any], str]


@pytest.fixture(scope="module")
def documented(pg: Postgres) -> Iterator[Documented]:
    """The example migrations applied, a workload run as feedback_app, then the documentation collected."""
    migrator = pg.uri("feedback", "migrator")
    migrate.upgrade("feedback", migrator)
    try:
        with psycopg.connect(pg.uri("feedback", "app")) as app:
            for tenant in range(1, 4):
                with tenant_transaction(app, uuid.UUID(int=tenant)):
                    for i in range(100):
                        app.execute("INSERT INTO feedback_entry (institution_id, author_id, subject, rating) "
                                    "VALUES (%s, %s, %s, %s)", [uuid.UUID(int=tenant), uuid.UUID(int=i % 10),
                                                                f"subject {i}", 1 + i % 5])
                    for i in range(20):
                        app.execute("SELECT * FROM feedback_entry WHERE institution_id = %s AND author_id = %s",
                                    [uuid.UUID(int=tenant), uuid.UUID(int=i % 10)])
        with pg.admin() as admin, psycopg.connect(migrator, autocommit=True) as jobs:
            doc = schemadoc.collect(admin, pg.model, "feedback", jobs)
        yield doc, schemadoc.markdown(doc)
    finally:
        migrate.downgrade("feedback", migrator, "base")


def test_docs_name_every_table_key_and_index_of_the_schema(pg: Postgres, documented: Documented) -> None:
    _doc, text = documented
    with pg.superuser() as su:
        names = [r[0] for r in su.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'feedback_schema'::regnamespace "
            "AND relkind IN ('r', 'i') AND relname NOT LIKE 'feedback_probe%' UNION ALL SELECT conname "
            "FROM pg_constraint WHERE connamespace = 'feedback_schema'::regnamespace "
            "AND conname NOT LIKE 'feedback_probe%'").fetchall()]
    assert len(names) >= 15
    assert [n for n in names if n not in text] == []


def test_the_er_diagram_draws_each_foreign_key_as_an_edge(documented: Documented) -> None:
    _doc, text = documented
    assert 'feedback_entry ||--o{ feedback_response : "feedback_response_entry_fkey"' in text
    assert 'feedback_entry ||--o{ feedback_entry_tag : "feedback_entry_tag_entry_fkey"' in text


def test_index_use_comes_from_the_workload(documented: Documented) -> None:
    doc, _text = documented
    scans = {i["name"]: i["scans"] for i in doc["indexes"]}
    assert scans["feedback_entry_author_idx"] >= 60
    assert scans["feedback_response_entry_idx"] == 0


def test_tenant_isolation_status_and_row_counts_are_reported(documented: Documented) -> None:
    doc, _text = documented
    entry = next(t for t in doc["tables"] if t["name"] == "feedback_entry")
    assert entry["tenant_isolation"] == {"column": True, "rls": True, "forced": True,
                                         "policies": ["feedback_pol_tenant_isolation"]}
    assert entry["total_bytes"] > 0


def test_the_performance_baseline_lists_the_services_statements(documented: Documented) -> None:
    doc, _text = documented
    queries = [s["query"] for s in doc["top_statements"] if s["role"] == "feedback_app"]
    assert any(q.startswith("INSERT INTO feedback_entry") for q in queries)


def test_the_services_pg_cron_jobs_are_listed_as_run_by_its_migrator(documented: Documented) -> None:
    doc, _text = documented
    assert {(j["name"], j["username"]) for j in doc["jobs"]} == {
        ("feedback_job_analyze_entries", "feedback_migrator"),
        ("feedback_job_reindex_entry_created", "feedback_migrator")}


def test_growth_says_there_is_no_history_yet(documented: Documented) -> None:
    _doc, text = documented
    assert "no history yet" in text
