"""What rotation and log hygiene rely on inside PostgreSQL, proven on the local server (provisioned like RDS):
which logins can change their own password, what the log keeps of statements and their parameters, and that
no service role can lift the instance-wide limits."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest

from config.scram import scram_verifier
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def _log_after(pg: Postgres, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = pg.server.log_file.read_text(errors="replace")
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_the_migrator_cannot_change_its_own_password_so_single_user_rotation_skips_it(pg: Postgres) -> None:
    """The migrator logs in with `role` set to its owner: `ALTER USER <migrator>` then runs as the owner, which
    may not change another role's password. AWS's single-user rotation function does exactly that statement."""
    migrator = next(r.name for r in pg.model.roles if r.name.startswith("jobs_portal_") and r.kind.value == "migrator")
    with pg.connect(pg.uri("jobs_portal", "migrator")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"ALTER USER {migrator} WITH PASSWORD {psycopg.sql.Literal(scram_verifier('x')).as_string()}")


def test_an_app_login_can_change_its_own_password_locally(pg: Postgres) -> None:
    """PostgreSQL has no rds.restrict_password_commands: locally any login may change its own password (on RDS
    only members of rds_password may; the rotated app and readonly logins are). Set to the same password again."""
    role = "jobs_portal_app"
    same = scram_verifier(pg.server.passwords()[role])
    with pg.connect(pg.uri("jobs_portal", "app")) as conn:
        conn.execute(f"ALTER USER {role} WITH PASSWORD {psycopg.sql.Literal(same).as_string()}")
    with pg.connect(pg.uri("jobs_portal", "app")) as conn:  # the password still works
        assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_a_slow_statement_is_logged_without_its_bind_parameters(pg: Postgres) -> None:
    """log_parameter_max_length=0: the duration line keeps the statement, never the values bound to it."""
    value = f"personal-{uuid.uuid4().hex}"
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    with pg.connect(pg.uri("jobs_portal", "readonly")) as conn:
        conn.execute(f"SELECT pg_sleep(0.15), %s::text AS {marker}", [value])
    text = _log_after(pg, marker)
    assert marker in text  # the statement was logged for its duration
    assert value not in text


@pytest.mark.parametrize("parameter", ["log_parameter_max_length", "temp_file_limit", "log_min_error_statement"])
def test_a_service_role_cannot_lift_an_instance_wide_limit(pg: Postgres, parameter: str) -> None:
    with pg.connect(pg.uri("jobs_portal", "readonly")) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(f"SET {parameter} = DEFAULT")  # even resetting is refused: only superusers may set it


def test_the_local_server_caps_temporary_files_like_the_rds_parameter_group(pg: Postgres) -> None:
    with pg.connect(pg.uri("jobs_portal", "readonly")) as conn:
        assert conn.execute("SHOW temp_file_limit").fetchone() == ("1GB",)


def test_a_session_over_its_temp_file_limit_is_stopped(pg: Postgres) -> None:
    """The mechanism, shown with a small limit (a superuser session may lower it for itself)."""
    with pg.superuser() as conn:
        conn.execute("SET work_mem = '64kB'")
        conn.execute("SET temp_file_limit = '1MB'")
        with pytest.raises(psycopg.errors.ConfigurationLimitExceeded):
            conn.execute("SELECT g FROM generate_series(1, 500000) g ORDER BY g DESC")
