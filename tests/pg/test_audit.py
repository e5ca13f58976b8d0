"""pgaudit logs DDL and role changes (read from the server log). Needs pgaudit installed
(Debian: postgresql-15-pgaudit); without it these tests fail, they do not skip."""

from __future__ import annotations

import re
import time
import uuid

import psycopg
import pytest

from config.scram import verifier_matches
from edumatrix_db.database import sql
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def log_text(pg: Postgres) -> str:
    return pg.server.log_file.read_text(errors="replace")


def wait_for(pg: Postgres, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = log_text(pg)
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_pgaudit_is_loaded_and_installed(pg: Postgres) -> None:
    assert pg.state.pgaudit, "pgaudit.so not found next to the server: install postgresql-15-pgaudit"
    with pg.superuser() as conn:
        libs = conn.execute("SHOW shared_preload_libraries").fetchone()
        ext = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pgaudit'").fetchone()
        classes = conn.execute("SHOW pgaudit.log").fetchone()
    assert libs is not None
    assert "pgaudit" in libs[0]
    assert ext == (1,)
    assert classes == ("ddl,role",)


def test_ddl_by_a_migrator_is_audited(pg: Postgres) -> None:
    table = f"jobs_portal_audit_{uuid.uuid4().hex[:8]}"
    with pg.connect(pg.uri("jobs_portal", "migrator")) as conn:
        conn.execute(f"CREATE TABLE {table} (id int)")
    text = wait_for(pg, table)
    lines = [line for line in text.splitlines() if "AUDIT:" in line and table in line]
    assert any(",DDL,CREATE TABLE," in line for line in lines), lines


def test_role_changes_are_audited(pg: Postgres) -> None:
    role = f"audit_probe_{uuid.uuid4().hex[:8]}"
    with pg.admin() as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        conn.execute(f"GRANT jobs_portal_readonly TO {role}")
        conn.execute(f"DROP ROLE {role}")
    text = wait_for(pg, f"DROP ROLE {role}")
    lines = [line for line in text.splitlines() if "AUDIT:" in line and role in line]
    assert any(",ROLE,CREATE ROLE," in line for line in lines), lines
    assert any(",ROLE,GRANT" in line for line in lines), lines


def test_a_clear_text_password_in_role_ddl_is_redacted_by_pgaudit(pg: Postgres) -> None:
    """Why the platform never sends clear text: pgaudit redacts its own line, but see the next test."""
    role = f"audit_pw_{uuid.uuid4().hex[:8]}"
    secret = f"pw-{uuid.uuid4().hex}"
    with pg.admin() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute(f"DROP ROLE {role}")
    text = wait_for(pg, f"DROP ROLE {role}")
    audit = [line for line in text.splitlines() if "AUDIT:" in line and role in line and "CREATE ROLE" in line]
    assert audit, "the CREATE ROLE was not audited"
    assert all(secret not in line for line in audit)
    assert any("<REDACTED>" in line for line in audit), audit


def test_a_failing_role_statement_is_logged_without_its_text(pg: Postgres) -> None:
    """PostgreSQL logs the text of a failing statement at log_min_error_statement (default `error`); AWS's
    rotation function sends clear-text passwords, so the platform sets it to `panic` (config/parameters.py):
    the error is logged, the statement and its password are not. The renderers send SCRAM verifiers anyway."""
    secret = f"pw-{uuid.uuid4().hex}"
    with pg.admin() as conn, pytest.raises(psycopg.errors.DuplicateObject):
        conn.execute(f"CREATE ROLE jobs_portal_app LOGIN PASSWORD '{secret}'")
    text = wait_for(pg, 'role "jobs_portal_app" already exists')
    assert 'role "jobs_portal_app" already exists' in text
    assert secret not in text


def test_service_passwords_never_reach_the_server_log(pg: Postgres) -> None:
    text = log_text(pg)
    leaked = [name for name, pw in pg.server.passwords().items() if pw in text]
    assert leaked == []


def test_provisioning_stored_verifiers_of_the_passwords(pg: Postgres) -> None:
    """The server keeps a SCRAM verifier of each password (salted at random by the renderer, config/scram.py);
    that the renderer, not the server, computed it is shown by the next test (the statement it sent)."""
    passwords = pg.server.passwords()
    with pg.superuser() as conn:
        stored = dict(conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                                   [list(passwords)]).fetchall())
    assert set(stored) == set(passwords)
    assert [role for role, pw in passwords.items() if not verifier_matches(stored[role], pw)] == []


def test_the_sql_renderer_sends_the_verifier_never_the_password(pg: Postgres) -> None:
    """With every statement logged verbatim (log_statement=all, which pgaudit's redaction does not touch),
    the log shows what `sql.set_password` sent."""
    role = f"scram_probe_{uuid.uuid4().hex[:8]}"
    secret = f"pw-{uuid.uuid4().hex}"
    with pg.superuser() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute("SET log_statement = 'all'")
        sql.set_password(conn, role, secret)
        conn.execute("RESET log_statement")
        conn.execute(f"DROP ROLE {role}")
    text = wait_for(pg, f"DROP ROLE {role}")
    sent = [line for line in text.splitlines() if "statement: ALTER ROLE" in line and role in line]
    assert sent, "the ALTER ROLE was not logged"
    verifiers = [re.search(r"SCRAM-SHA-256\$[^' ]+", line) for line in sent]
    assert all(v is not None and verifier_matches(v.group(0), secret) for v in verifiers), sent
    assert secret not in text
