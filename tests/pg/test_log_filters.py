"""The security metric filters (failed logins, pgaudit ROLE lines, pgaudit DDL lines) against real log lines
of the local server, which writes RDS's fixed prefix (`%t:%r:%u@%d:[%p]:`) and pgaudit's CSV as RDS does."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from components.database_alarms import SECURITY_FILTERS
from tests.cloudwatch_patterns import matches
from tests.pg.conftest import Postgres
from tests.pg.test_audit import wait_for

pytestmark = pytest.mark.postgres

RDS_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:127\.0\.0\.1\(\d+\):[a-z_]+@edumatrix:\[\d+\]:")


def lines_with(pg: Postgres, needle: str) -> list[str]:
    return [line for line in wait_for(pg, needle).splitlines() if needle in line]


def which(line: str) -> set[str]:
    return {name for name, (pattern, _) in SECURITY_FILTERS.items() if matches(pattern, line)}


def test_a_failed_login_line_is_counted_as_a_failed_login_only(pg: Postgres) -> None:
    wrong = re.sub(r"news_system_app:[^@]*@", "news_system_app:wrong-password@", pg.uri("news_system", "app"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong)
    (line, *_) = lines_with(pg, 'password authentication failed for user "news_system_app"')
    assert RDS_PREFIX.match(line), line
    assert which(line) == {"FailedLogins"}


def test_a_privilege_change_line_is_counted_as_a_privilege_change_only(pg: Postgres) -> None:
    role = f"filter_probe_{uuid.uuid4().hex[:8]}"
    with pg.admin() as conn:
        conn.execute(f"CREATE ROLE {role} NOLOGIN")
        conn.execute(f"GRANT news_system_readonly TO {role}")
        conn.execute(f"DROP ROLE {role}")
    lines = [line for line in lines_with(pg, f"DROP ROLE {role}") + lines_with(pg, f"TO {role}") if "AUDIT:" in line]
    assert lines
    for line in lines:
        assert RDS_PREFIX.match(line), line
        assert which(line) == {"PrivilegeChanges"}, line


def test_a_schema_change_line_is_counted_as_a_schema_change_only(pg: Postgres) -> None:
    table = f"news_system_filter_{uuid.uuid4().hex[:8]}"
    with pg.connect(pg.uri("news_system", "migrator")) as conn:
        conn.execute(f"CREATE TABLE {table} (id int)")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN note text")
    lines = [line for line in lines_with(pg, table) if "AUDIT:" in line]
    assert len(lines) == 2
    for line in lines:
        assert RDS_PREFIX.match(line), line
        assert which(line) == {"SchemaChanges"}, line


def test_ordinary_lines_are_counted_as_nothing(pg: Postgres) -> None:
    with pg.connect(pg.uri("news_system", "app")) as conn:
        conn.execute("SELECT 1")
    ordinary = [line for line in pg.server.log_file.read_text(errors="replace").splitlines()
                if "connection authorized" in line or "disconnection:" in line]
    assert ordinary
    assert {name for line in ordinary for name in which(line)} == set()
