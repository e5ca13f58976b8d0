"""Hostile identifiers (quotes, semicolons, over-long names) are rejected before any SQL is rendered."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.access import build_access_model
from config.catalog import Catalog, ServiceSpec, load_catalog, parse_catalog
from config.errors import ConfigError
from config.naming import MAX_IDENTIFIER_BYTES, InvalidIdentifier, quote_ident
from edumatrix_db.database import sql
from edumatrix_db.database.tenancy import enable_tenant_isolation_sql

HOSTILE = [
    'feed"back',
    "feedback; DROP SCHEMA feedback_schema CASCADE; --",
    "feedback'--",
    "x" * 60,  # fits alone, but x..._readonly exceeds 63 bytes
    "Feedback",
    "feed back",
    "pg_feedback",
    "fééd",
    "",
]


def catalog_with(name: str) -> dict[str, Any]:
    entry = load_catalog().get("feedback").model_dump(mode="json")
    return {"services": [{**entry, "name": name}]}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_service_name_in_the_catalog_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_catalog(catalog_with(name), "config/services.yaml")
    assert "services[" in str(err.value)


class RecordingConnection:
    """Stands in for psycopg: records every statement; the database is called `edumatrix`."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, query: Any, params: Any = None) -> RecordingConnection:
        text = query.decode() if isinstance(query, bytes) else str(query)
        self.statements.append(text)
        self._last = text
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return ("edumatrix",) if "current_database" in self._last else None

    def fetchall(self) -> list[Any]:
        return []

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        yield


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_that_bypassed_validation_never_reaches_the_database(name: str) -> None:
    spec = ServiceSpec.model_construct(**{**load_catalog().get("feedback").model_dump(), "name": name})
    with pytest.raises((InvalidIdentifier, ValueError)):
        build_access_model(Catalog.model_construct(services=(spec,)))


@pytest.mark.parametrize("name", [n for n in HOSTILE if len(n) < 60] + ["x" * 64])
def test_the_sql_renderer_refuses_a_hostile_role_name_before_running_it(name: str) -> None:
    model = build_access_model(load_catalog())
    s = model.services[0]
    hostile_role = dataclasses.replace(s.roles[2], name=name)
    hostile = dataclasses.replace(model, services=(dataclasses.replace(s, roles=(hostile_role,)),))
    conn = RecordingConnection()
    with pytest.raises(InvalidIdentifier):
        sql.apply(conn, hostile)  # type: ignore[arg-type]
    assert not any(name and name in stmt and not stmt.startswith("SELECT") for stmt in conn.statements)


@pytest.mark.parametrize("table", ['feedback_x"; DROP TABLE y; --', "feedback_" + "y" * 60, "other_table"])
def test_the_tenancy_helper_refuses_hostile_or_foreign_table_names(table: str) -> None:
    with pytest.raises(ValueError, match=r"identifier|convention|bytes"):
        enable_tenant_isolation_sql("feedback", table)


@given(st.text(max_size=80))
def test_quote_ident_only_ever_quotes_plain_short_identifiers(name: str) -> None:
    try:
        quoted = quote_ident(name)
    except InvalidIdentifier:
        return
    assert quoted == f'"{name}"'
    assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
    assert all(c.islower() or c.isdigit() or c == "_" for c in name)
    assert name.isascii()
