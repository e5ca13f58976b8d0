"""The identifier checker's reserved words are PostgreSQL's own: compared with the server's `pg_get_keywords()`,
so the list in config/naming.py can never drift from what the server parses."""

from __future__ import annotations

import psycopg
import pytest

from config.naming import (
    COLUMN_NAME_KEYWORDS,
    RESERVED_KEYWORDS,
    RESERVED_ROLE_NAMES,
    RESERVED_WORDS,
    TYPE_FUNCTION_KEYWORDS,
    InvalidIdentifier,
    check_identifier,
)
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def keywords(pg: Postgres, category: str) -> set[str]:
    with pg.admin() as conn:
        return {word for (word,) in conn.execute("SELECT word FROM pg_get_keywords() WHERE catcode = %s",
                                                 [category]).fetchall()}


def test_the_server_is_the_postgresql_15_the_list_was_taken_from(pg: Postgres) -> None:
    with pg.admin() as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    assert row[0].startswith("15")


@pytest.mark.parametrize(("category", "listed"), [
    ("R", RESERVED_KEYWORDS), ("T", TYPE_FUNCTION_KEYWORDS), ("C", COLUMN_NAME_KEYWORDS),
], ids=["reserved", "reserved-can-be-function-or-type", "unreserved-cannot-be-function-or-type"])
def test_each_keyword_category_matches_the_servers(pg: Postgres, category: str, listed: frozenset[str]) -> None:
    server = keywords(pg, category)
    assert set(listed) == server, f"missing: {sorted(server - listed)}, not a {category} keyword: " \
                                  f"{sorted(listed - server)}"


def test_the_checker_accepts_exactly_the_unreserved_keywords(pg: Postgres) -> None:
    refused = set()
    for word in keywords(pg, "U"):
        try:
            check_identifier(word)
        except InvalidIdentifier:
            refused.add(word)
    assert refused == set()


@pytest.mark.parametrize("name", sorted(RESERVED_ROLE_NAMES))
def test_the_role_names_postgresql_reserves_are_refused_by_the_server_too(pg: Postgres, name: str) -> None:
    with pg.superuser() as conn, pytest.raises(psycopg.errors.ReservedName, match="is reserved"):
        conn.execute(f"CREATE ROLE {name}")
    assert name in RESERVED_WORDS
