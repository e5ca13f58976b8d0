"""The declared side of extraction against a real PostgreSQL 15 (issue 12): the publication the program declares
(components/publication.py), and what a phase does to the service's roles on the shared instance (the access
model of config/extraction_plan.py applied by the SQL renderer, which a test compares with the Pulumi one)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
import pytest

from components.publication import SchemaPublicationProvider, drop_publication, publication_sql
from config.extraction import FACTS, Phase, publication_name
from config.extraction_plan import source_model
from edumatrix_db.database import sql
from tests.pg.conftest import Postgres

SERVICE, SCHEMA = "feedback", "feedback_schema"
PUBLICATION = publication_name(SERVICE)


@pytest.fixture
def tables(pg: Postgres) -> Iterator[None]:
    """Two tables of the feedback schema, created by its migrator (so owned by its owner), dropped after."""
    with pg.connect(pg.uri(SERVICE, "migrator")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS feedback_schema.extract_a (id bigint PRIMARY KEY, body text)")
        conn.execute("CREATE TABLE IF NOT EXISTS feedback_schema.extract_b (id bigint PRIMARY KEY)")
    yield
    with pg.superuser() as conn:
        drop_publication(conn, PUBLICATION)
        conn.execute("DROP TABLE IF EXISTS feedback_schema.extract_a, feedback_schema.extract_b, "
                     "feedback_schema.extract_late, feedback_schema.extract_nokey")


def _published(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", (PUBLICATION,)).fetchall()
    return {r[0] for r in rows}


def _props(pg: Postgres) -> dict[str, Any]:
    """The provider's inputs for the admin login (the master user's stand-in), over TCP with TLS verified."""
    uri = urlsplit(pg.admin_uri)
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    return {"publication": PUBLICATION, "schema": SCHEMA, "database": uri.path.lstrip("/"), "host": uri.hostname,
            "port": uri.port, "username": unquote(uri.username or ""), "password": unquote(uri.password or ""),
            "sslmode": "verify-full", "sslrootcert": query.get("sslrootcert")}


def test_as_a_superuser_the_publication_covers_the_whole_schema_including_later_tables(
        pg: Postgres, tables: None) -> None:
    with pg.superuser() as conn:
        assert publication_sql(conn, PUBLICATION, SCHEMA)[0] == "schema"
    with pg.connect(pg.uri(SERVICE, "migrator")) as conn:
        conn.execute("CREATE TABLE feedback_schema.extract_late (id bigint PRIMARY KEY)")
    with pg.admin() as conn:
        assert {"extract_a", "extract_b", "extract_late"} <= _published(conn)


def test_as_the_master_user_it_lists_the_tables_and_misses_later_ones(pg: Postgres, tables: None) -> None:
    """PostgreSQL 15 keeps FOR TABLES IN SCHEMA to superusers; the admin (like RDS's master) gets the list.
    A table created afterwards is not replicated: why migrations are frozen while a service replicates."""
    with pg.admin() as conn:
        scope, covered = publication_sql(conn, PUBLICATION, SCHEMA)
        assert scope == "tables"
        assert {"extract_a", "extract_b"} <= set(covered.split(", "))
    with pg.connect(pg.uri(SERVICE, "migrator")) as conn:
        conn.execute("CREATE TABLE feedback_schema.extract_late (id bigint PRIMARY KEY)")
    with pg.admin() as conn:
        assert "extract_late" not in _published(conn)


def test_a_table_without_a_key_is_refused_before_anything_is_created(pg: Postgres, tables: None) -> None:
    with pg.connect(pg.uri(SERVICE, "migrator")) as conn:
        conn.execute("CREATE TABLE feedback_schema.extract_nokey (body text)")
    with pg.admin() as conn, pytest.raises(ValueError, match="extract_nokey"):
        publication_sql(conn, PUBLICATION, SCHEMA)
    with pg.admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)).fetchone() is None


def test_the_provider_creates_idempotently_and_deletes_over_verified_tls(pg: Postgres, tables: None) -> None:
    provider, props = SchemaPublicationProvider(), _props(pg)
    created = provider.create(props)
    assert created.outs is not None
    assert created.outs["scope"] == "tables"
    assert provider.create(props).id == created.id  # a retried create finds it
    with pg.admin() as conn:
        assert {"extract_a", "extract_b"} <= _published(conn)
    provider.delete(created.id, props)
    provider.delete(created.id, props)  # already gone: still fine
    with pg.admin() as conn:
        assert conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (PUBLICATION,)).fetchone() is None


def test_a_changed_schema_or_name_replaces_the_publication() -> None:
    provider = SchemaPublicationProvider()
    old = {"publication": "p", "schema": "a", "database": "d", "host": "h", "port": 5432}
    assert provider.diff("d/p", old, {**old, "schema": "b"}).replaces == ["schema"]
    assert provider.diff("d/p", old, {**old, "port": 5433}).replaces == []


@pytest.fixture
def cutover_applied(pg: Postgres, tables: None) -> Iterator[None]:
    """The shared instance as the cutover phase leaves it (renderer 2), restored to the full model after."""
    with pg.admin() as conn:
        sql.apply(conn, source_model(pg.model, {SERVICE: Phase.CUTOVER}), privileged=pg.superuser())
    try:
        yield
    finally:
        with pg.admin() as conn:
            sql.apply(conn, pg.model, privileged=pg.superuser())


def test_after_cutover_the_app_role_reads_but_cannot_write_on_the_shared_instance(
        pg: Postgres, cutover_applied: None) -> None:
    assert not FACTS[Phase.CUTOVER].source_writable
    with pg.connect(pg.uri(SERVICE, "app")) as conn:
        conn.execute("SELECT count(*) FROM feedback_schema.extract_a")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO feedback_schema.extract_a VALUES (1, 'late write')")


def test_while_migrations_are_frozen_the_migrator_cannot_log_in(pg: Postgres, cutover_applied: None) -> None:
    assert FACTS[Phase.CUTOVER].migrations_frozen
    with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
        pg.connect(pg.uri(SERVICE, "migrator"))


def test_other_services_keep_their_access_during_an_extraction(pg: Postgres, cutover_applied: None) -> None:
    with pg.connect(pg.uri("statistics", "migrator")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
