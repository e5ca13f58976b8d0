"""The local PgBouncer (transaction mode, TLS both sides, one pool per service) and what the tenancy docs
claim about it: `set_config(..., true)` never leaks a tenant to the next client of a server connection, a
session `SET` does. Also: the roles' connection limits and the pools' caps hold on the real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import psycopg
import pytest

from config.naming import RoleKind
from edumatrix_db.database.pooler import Pooler, alias
from edumatrix_db.database.tenancy import TENANT_SETTING, enable_tenant_isolation, scoped_execute
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

TABLE = "feedback_ticket"
A = uuid.UUID(int=0xA)
B = uuid.UUID(int=0xB)


def pooled(pg: Postgres, service: str, kind: str = "app") -> str:
    return str(pg.connections["services"][service]["pooled"][kind])


def connect_pooled(pg: Postgres, service: str, kind: str = "app") -> psycopg.Connection[Any]:
    return psycopg.connect(pooled(pg, service, kind), autocommit=True, prepare_threshold=None)


def backend(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def tickets(pg: Postgres) -> Postgres:
    """feedback's migrator creates a tenant-isolated table with one row for tenant A and one for B."""
    with pg.connect(pg.uri("feedback", "migrator")) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, body text)")
        enable_tenant_isolation(conn, "feedback", TABLE)
        for tenant in (A, B):
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, str(tenant)])
                conn.execute(f"INSERT INTO {TABLE} (institution_id, body) VALUES (%s, 'x')", [tenant])
    return pg


def test_connections_json_keeps_its_keys_and_adds_pooled_uris(pg: Postgres) -> None:
    data = pg.connections
    assert {"admin", "database", "services", "pooler"} <= set(data)
    feedback = data["services"]["feedback"]
    assert set(feedback["roles"]) == {"migrator", "app", "readonly", "gdpr"}  # feedback holds personal data
    assert set(feedback["pooled"]) == {"app", "readonly"}
    assert data["pooler"]["poolMode"] == "transaction"
    assert data["pooler"]["prepareThreshold"] is None
    assert "sslmode=verify-full" in feedback["pooled"]["app"]
    assert f":{data['pooler']['port']}/feedback?" in feedback["pooled"]["app"]
    assert f":{data['pooler']['port']}/feedback_readonly?" in feedback["pooled"]["readonly"]


def test_clients_reach_the_server_through_pgbouncer_over_tls_on_both_sides(pg: Postgres) -> None:
    with connect_pooled(pg, "feedback") as conn:
        assert conn.info.pgconn.ssl_in_use  # client -> PgBouncer, verified against the local CA
        row = conn.execute("SELECT current_user, current_database(), ssl, version "
                           "FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row is not None
    assert row[:3] == ("feedback_app", pg.model.database, True)  # PgBouncer -> server
    assert row[3] == "TLSv1.3"


def test_each_service_has_a_pool_sized_from_the_catalog(pg: Postgres) -> None:
    text = (pg.server.base / "pgbouncer" / "pgbouncer.ini").read_text()
    for access in pg.model.services:
        for kind in (RoleKind.APP, RoleKind.READONLY):
            size = access.role(kind).connection_limit
            assert f"\n{alias(access, kind)} = " in text
            assert f"pool_size={size} max_db_connections={size}\n" in text.split(f"\n{alias(access, kind)} = ")[1]
    assert "pool_mode = transaction" in text
    assert "query_wait_timeout = 30\n" in text


def test_a_session_set_leaks_the_tenant_to_the_next_client_of_the_server_connection(tickets: Postgres) -> None:
    with connect_pooled(tickets, "feedback") as first:
        first.execute(f"SET {TENANT_SETTING} = '{A}'")  # session level: what the docs forbid
        pid = backend(first)
    with connect_pooled(tickets, "feedback") as second:
        assert backend(second) == pid  # the same server connection, handed to the next client
        leaked = second.execute("SELECT current_setting(%s, true)", [TENANT_SETTING]).fetchone()
        rows = second.execute(f"SELECT institution_id FROM {TABLE}").fetchall()
        second.execute(f"RESET {TENANT_SETTING}")
    assert leaked == (str(A),)
    assert rows == [(A,)]  # another client reads tenant A's rows without ever naming A


def test_set_config_local_in_the_documented_pipeline_never_leaks(tickets: Postgres) -> None:
    with connect_pooled(tickets, "feedback") as first:
        assert scoped_execute(first, B, f"SELECT institution_id FROM {TABLE}") == [(B,)]
        assert scoped_execute(first, B, f"SELECT count(*) FROM {TABLE}") == [(1,)]  # again: nothing prepared
        pid = backend(first)
    with connect_pooled(tickets, "feedback") as second:
        assert backend(second) == pid
        setting = second.execute("SELECT current_setting(%s, true)", [TENANT_SETTING]).fetchone()
        rows = second.execute(f"SELECT institution_id FROM {TABLE}").fetchall()
    assert setting in [("",), (None,)]
    assert rows == []  # fail closed: no tenant, no rows


def test_each_login_role_is_capped_at_its_connection_limit_on_the_server(pg: Postgres) -> None:
    limit = pg.model.service("feedback").role(RoleKind.READONLY).connection_limit
    with ExitStack() as stack:
        for _ in range(limit):
            stack.enter_context(pg.connect(pg.uri("feedback", "readonly")))
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            pg.connect(pg.uri("feedback", "readonly"))


@pytest.fixture(scope="module")
def impatient(pg: Postgres) -> Iterator[Pooler]:
    """A second PgBouncer on the same server with a 2 s query_wait_timeout (the real one waits 30 s)."""
    pooler = Pooler(pg.server, directory=pg.server.base / "pgbouncer-impatient", query_wait_timeout=2)
    pooler.start(pg.model, preferred_port=0)
    yield pooler
    pooler.stop()


def test_the_pool_caps_a_service_and_times_out_waiting_clients(pg: Postgres, impatient: Pooler) -> None:
    access = pg.model.service("feedback")
    role = access.role(RoleKind.READONLY)
    size = role.connection_limit
    uri = impatient.uri(role.name, pg.server.passwords()[role.name], alias(access, RoleKind.READONLY))
    with ExitStack() as stack:
        holders = [stack.enter_context(psycopg.connect(uri, prepare_threshold=None)) for _ in range(size)]
        for conn in holders:
            conn.execute("SELECT 1")  # each holds a server connection in an open transaction
        with pg.admin() as admin:
            held = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s", [role.name]).fetchone()
        assert held == (size,)
        started = time.monotonic()
        with (pytest.raises(psycopg.OperationalError, match="query_wait_timeout"),
              psycopg.connect(uri, autocommit=True, prepare_threshold=None) as late):
            late.execute("SELECT 1")
        waited = time.monotonic() - started
    assert waited >= 2  # it waited for a free server connection before giving up


def test_local_status_shows_the_pools(pg: Postgres, capsys: pytest.CaptureFixture[str]) -> None:
    from edumatrix_db.cli import main

    with connect_pooled(pg, "statistics") as conn:
        conn.execute("SELECT 1")
    code = main(["local", "status", "--root", str(pg.server.root)])
    out = capsys.readouterr().out
    assert code == 0
    assert "PgBouncer" in out
    assert "statistics" in out
    assert json.dumps(pg.connections["pooler"]["port"]) in out
