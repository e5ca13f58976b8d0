"""One real PostgreSQL for the whole session, provisioned by `edumatrix-db local up`'s code path.

A missing server fails the tests with the reason; it never skips them.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from config.access import AccessModel, build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg


@dataclass
class Postgres:
    server: localpg.LocalServer
    state: localpg.State
    model: AccessModel
    connections: dict[str, Any]

    @property
    def admin_uri(self) -> str:
        return str(self.connections["admin"])

    def uri(self, service: str, kind: str) -> str:
        return str(self.connections["services"][service]["roles"][kind])

    def connect(self, uri: str, **kwargs: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(uri, autocommit=True, **kwargs)

    def admin(self) -> psycopg.Connection[Any]:
        return self.connect(self.admin_uri)

    def superuser(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.server.bootstrap_conninfo(self.model.database), autocommit=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scratch_root(prefix: str) -> Path:
    """A temporary project root the server's OS user can traverse (pytest's own tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


@contextmanager
def provisioned(prefix: str, model: AccessModel) -> Iterator[tuple[localpg.LocalServer, localpg.State, dict[str, Any]]]:
    """A local server of its own (root under /tmp), provisioned like production; stopped and removed after."""
    root = scratch_root(prefix)
    server = None
    try:
        try:
            server, state, _notes = localpg.up(root, model, preferred_port=free_port())
        except localpg.LocalServerError as exc:
            pytest.fail(f"PostgreSQL tests need a PostgreSQL server and could not start one: {exc}")
        yield server, state, json.loads(server.connections_file.read_text())
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    model = build_access_model(load_catalog())
    with provisioned("edumatrix-pg-", model) as (server, state, connections):
        yield Postgres(server, state, model, connections)


@pytest.fixture(scope="session")
def probes(pg: Postgres) -> dict[str, dict[str, int]]:
    """After provisioning, each service's migrator creates a table (with a sequence) and a function.

    Returns their OIDs per service: {"table": oid, "sequence": oid, "function": oid, "schema": oid}.
    """
    out: dict[str, dict[str, int]] = {}
    for s in pg.model.services:
        with pg.connect(pg.uri(s.service, "migrator")) as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s.service}_probe "
                "(id bigserial PRIMARY KEY, institution_id uuid, note text)"
            )
            conn.execute(
                f"CREATE OR REPLACE FUNCTION {s.service}_fn_probe() RETURNS int LANGUAGE sql AS 'SELECT 1'"
            )
            row = conn.execute(
                "SELECT %(t)s::regclass::oid, pg_get_serial_sequence(%(t)s::text, 'id')::regclass::oid, "
                "%(f)s::regprocedure::oid, %(s)s::regnamespace::oid",
                {
                    "t": f"{s.schema}.{s.service}_probe",
                    "f": f"{s.schema}.{s.service}_fn_probe()",
                    "s": s.schema,
                },
            ).fetchone()
            assert row is not None
            out[s.service] = dict(zip(("table", "sequence", "function", "schema"), row, strict=True))
    return out


@pytest.fixture
def migrated(pg: Postgres) -> Iterator[Postgres]:
    """feedback's real migrations (migrations/feedback) at head for one test, downgraded to base afterwards."""
    from edumatrix_db.ops import migrate

    uri = pg.uri("feedback", "migrator")
    migrate.upgrade("feedback", uri)
    try:
        yield pg
    finally:
        migrate.downgrade("feedback", uri, "base")
