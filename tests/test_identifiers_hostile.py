"""Hostile identifiers (quotes, semicolons, over-long names) are rejected before any SQL is rendered."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from config.access import build_access_model
from config.catalog import Catalog, ServiceSpec, load_catalog, parse_catalog
from config.errors import ConfigError
from config.naming import MAX_IDENTIFIER_BYTES, RESERVED_WORDS, InvalidIdentifier, quote_ident
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


# Near misses of plain identifiers: plain-looking names up to 72 bytes (so on both sides of 63), the same with
# one capital, quote, space, semicolon, dash, dot, accent or newline inserted, a leading digit, a reserved word
# or the pg_ prefix. About 40 % are plain (see --hypothesis-show-statistics).
_LOOKS_PLAIN = st.from_regex(r"[a-z_][a-z0-9_]{0,71}", fullmatch=True)
_ONE_BAD_CHARACTER = st.tuples(_LOOKS_PLAIN, st.integers(0, 72), st.sampled_from('A"\'; -.é\n')).map(
    lambda t: t[0][:t[1]] + t[2] + t[0][t[1]:])
near_misses = st.one_of(_LOOKS_PLAIN, _LOOKS_PLAIN, _ONE_BAD_CHARACTER, _LOOKS_PLAIN.map(lambda s: "1" + s),
                        st.sampled_from(sorted(RESERVED_WORDS)), _LOOKS_PLAIN.map(lambda s: "pg_" + s))


def plain(name: str) -> bool:
    """The rule, written independently of config.naming."""
    return (re.fullmatch(r"[a-z_][a-z0-9_]*", name) is not None and len(name.encode()) <= MAX_IDENTIFIER_BYTES
            and name not in RESERVED_WORDS and not name.startswith("pg_"))


@given(near_misses)
def test_quote_ident_quotes_exactly_the_plain_short_identifiers(name: str) -> None:
    event("plain" if plain(name) else "refused")
    if plain(name):
        assert quote_ident(name) == f'"{name}"'
    else:
        with pytest.raises(InvalidIdentifier):
            quote_ident(name)
