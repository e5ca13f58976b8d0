"""The access matrix, proven on a real PostgreSQL.

For every pair of services (a, b) and every login role kind of a: what a may do in b's schema, on a table,
sequence and function that b's migrator created *after* provisioning. Allowed exactly on the diagonal as
the role kind permits, denied everywhere else.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

LOGIN_KINDS = ("migrator", "app", "readonly")

# What each role kind may do in its own schema (the migrator acts as the owner: SET ROLE at login).
ALLOWED: dict[str, set[str]] = {
    "migrator": {
        "schema USAGE",
        "schema CREATE",
        "table SELECT",
        "table INSERT",
        "table UPDATE",
        "table DELETE",
        "table TRUNCATE",
        "sequence USAGE",
        "sequence SELECT",
        "sequence UPDATE",
        "function EXECUTE",
    },
    "app": {
        "schema USAGE",
        "table SELECT",
        "table INSERT",
        "table UPDATE",
        "table DELETE",
        "sequence USAGE",
        "sequence SELECT",
        "function EXECUTE",
    },
    "readonly": {"schema USAGE", "table SELECT", "sequence SELECT"},
}
CHECKS = {
    "schema": ("has_schema_privilege", ("USAGE", "CREATE")),
    "table": ("has_table_privilege", ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")),
    "sequence": ("has_sequence_privilege", ("USAGE", "SELECT", "UPDATE")),
    "function": ("has_function_privilege", ("EXECUTE",)),
}


def privileges_seen_by(conn: psycopg.Connection, probes: dict[str, dict[str, int]]) -> dict[str, set[str]]:
    """Per target service: the privileges the connection's current role holds there (by OID)."""
    out: dict[str, set[str]] = {}
    for service, oids in probes.items():
        held: set[str] = set()
        for obj, (fn, privs) in CHECKS.items():
            for priv in privs:
                row = conn.execute(f"SELECT {fn}(%s::oid, %s)", [oids[obj], priv]).fetchone()
                if row and row[0]:
                    held.add(f"{obj} {priv}")
        out[service] = held
    return out


@pytest.mark.parametrize("kind", LOGIN_KINDS)
def test_each_role_kind_holds_exactly_its_privileges_in_its_own_schema_and_none_elsewhere(
    pg: Postgres, probes: dict[str, dict[str, int]], kind: str
) -> None:
    wrong = []
    for a in pg.model.services:
        with pg.connect(pg.uri(a.service, kind)) as conn:
            seen = privileges_seen_by(conn, probes)
        for b, held in seen.items():
            expected = ALLOWED[kind] if a.service == b else set()
            if held != expected:
                wrong.append(
                    f"{a.service}_{kind} on {b}: extra {sorted(held - expected)}, "
                    f"missing {sorted(expected - held)}"
                )
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("kind", LOGIN_KINDS)
def test_no_service_role_may_create_temporary_tables_or_use_schema_public(pg: Postgres, kind: str) -> None:
    for a in pg.model.services:
        with pg.connect(pg.uri(a.service, kind)) as conn:
            row = conn.execute(
                "SELECT has_database_privilege(current_database(), 'TEMPORARY'), "
                "has_database_privilege(current_database(), 'CREATE'), "
                "has_schema_privilege('public', 'USAGE'), has_schema_privilege('public', 'CREATE')"
            ).fetchone()
            assert row == (False, False, False, False), f"{a.service}_{kind}"


def test_app_role_really_is_refused_another_services_table(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.connect(pg.uri("jobs_portal", "app")) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM freelancing_schema.freelancing_probe")


def test_app_role_reads_and_writes_a_table_its_migrator_created_after_provisioning(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.connect(pg.uri("feedback", "app")) as conn:
        conn.execute("INSERT INTO feedback_probe (note) VALUES ('hello')")
        row = conn.execute("SELECT count(*) FROM feedback_probe WHERE note = 'hello'").fetchone()
        assert row is not None
        assert row[0] >= 1
        assert conn.execute("SELECT feedback_fn_probe()").fetchone() == (1,)


def test_readonly_role_cannot_write_its_own_schema(pg: Postgres, probes: dict[str, dict[str, int]]) -> None:
    with pg.connect(pg.uri("feedback", "readonly")) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("INSERT INTO feedback_probe (note) VALUES ('nope')")


def test_objects_created_by_the_migrator_are_owned_by_the_owner_role(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.admin() as conn:
        for service, oids in probes.items():
            row = conn.execute(
                "SELECT relowner::regrole::text FROM pg_class WHERE oid = %s", [oids["table"]]
            ).fetchone()
            assert row == (f"{service}_owner",)


def test_public_holds_nothing_on_the_database_schemas_or_new_functions(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.admin() as conn:
        db = conn.execute(
            "SELECT count(*) FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
            "WHERE d.datname = current_database() AND a.grantee = 0"
        ).fetchone()
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace n, "
            "aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
            "WHERE n.nspname NOT LIKE 'pg\\_%%' AND n.nspname <> 'information_schema' AND a.grantee = 0"
        ).fetchone()
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            "WHERE p.oid = ANY(%s) AND a.grantee = 0",
            [[o["function"] for o in probes.values()]],
        ).fetchone()
    assert (db, schemas, functions) == ((0,), (0,), (0,))


def test_a_fresh_login_role_can_neither_connect_nor_use_anything(
    pg: Postgres, probes: dict[str, dict[str, int]]
) -> None:
    with pg.admin() as conn:
        conn.execute("DROP ROLE IF EXISTS fresh_login")
        conn.execute("CREATE ROLE fresh_login LOGIN PASSWORD 'fresh-login-password'")
        try:
            for oids in probes.values():
                row = conn.execute(
                    "SELECT has_schema_privilege('fresh_login', %s::oid, 'USAGE'), "
                    "has_table_privilege('fresh_login', %s::oid, 'SELECT'), "
                    "has_function_privilege('fresh_login', %s::oid, 'EXECUTE')",
                    [oids["schema"], oids["table"], oids["function"]],
                ).fetchone()
                assert row == (False, False, False)
            row = conn.execute(
                "SELECT has_database_privilege('fresh_login', current_database(), 'CONNECT'), "
                "has_database_privilege('fresh_login', current_database(), 'TEMPORARY'), "
                "has_schema_privilege('fresh_login', 'public', 'USAGE'), "
                "has_schema_privilege('fresh_login', 'extensions', 'USAGE')"
            ).fetchone()
            assert row == (False, False, False, False)
            uri = pg.admin_uri.replace(f"{pg.server.admin}:", "fresh_login:", 1)
            uri = uri.replace(pg.server.passwords()[pg.server.admin], "fresh-login-password", 1)
            with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
                psycopg.connect(uri).close()
        finally:
            conn.execute("DROP ROLE fresh_login")


def test_app_role_statement_timeout_cancels_a_six_second_query(pg: Postgres) -> None:
    with pg.connect(pg.uri("feedback", "app")) as conn:
        # the session runs under the role's own 5 s (not some other limit), and a longer statement is cancelled
        assert conn.execute("SELECT current_setting('statement_timeout')").fetchone() == ("5s",)
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            conn.execute("SELECT pg_sleep(6)")


def test_connection_limit_of_a_role_is_enforced(pg: Postgres) -> None:
    service = pg.model.service("feedback")
    limit = service.role("readonly").connection_limit
    uri = pg.uri("feedback", "readonly")
    held = [pg.connect(uri) for _ in range(limit)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections for role"):
            pg.connect(uri).close()
    finally:
        for conn in held:
            conn.close()


def test_service_roles_have_no_dangerous_attributes_but_the_gdpr_definers_bypassrls(pg: Postgres) -> None:
    names = [r.name for r in pg.model.roles]
    with pg.admin() as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND (rolsuper OR rolcreatedb OR "
            "rolcreaterole OR rolreplication)",
            [names],
        ).fetchall()
        bypass = conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND rolbypassrls ORDER BY 1",
                              [names]).fetchall()
        count = conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)", [names]).fetchone()
    assert rows == []
    assert [r for (r,) in bypass] == sorted(f"{s.service}_gdpr_definer" for s in pg.model.services
                                            if s.holds_personal_data)
    assert count == (len(names),)


def test_plain_tcp_without_tls_is_rejected(pg: Postgres) -> None:
    uri = pg.admin_uri.split("?")[0] + "?sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(uri).close()


def test_app_role_encrypts_and_decrypts_a_column_value_with_pgcrypto(pg: Postgres) -> None:
    """Column encryption (spec 2): pgcrypto, in the shared `extensions` schema on every service's search_path."""
    with pg.connect(pg.uri("feedback", "app")) as conn:
        row = conn.execute(
            "SELECT pgp_sym_decrypt(pgp_sym_encrypt('student@example.org', 'k'), 'k'), "
            "pgp_sym_encrypt('student@example.org', 'k')::text LIKE '%student%'"
        ).fetchone()
    assert row == ("student@example.org", False)


def test_no_service_role_may_create_objects_in_the_shared_extensions_schema(pg: Postgres) -> None:
    with pg.connect(pg.uri("feedback", "migrator")) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("CREATE TABLE extensions.feedback_smuggled (id int)")
