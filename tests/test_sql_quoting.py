"""The SQL renderer's quoting and generated passwords (edumatrix_db/database/sql.py), without a server: what
reaches PostgreSQL is a checked identifier, a predefined role by name, or an escaped literal."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config.naming import InvalidIdentifier
from edumatrix_db.database.sql import grantee, literal, new_password, qi, quote_role


def test_a_literal_doubles_its_single_quotes() -> None:
    assert literal("it's o'clock") == "'it''s o''clock'"


def test_a_literal_without_quotes_is_only_enclosed() -> None:
    assert literal("5000") == "'5000'"


def test_a_predefined_role_is_quoted_by_name_though_it_starts_with_pg() -> None:
    assert quote_role("pg_monitor") == '"pg_monitor"'


def test_a_service_role_goes_through_the_identifier_check() -> None:
    assert quote_role("feedback_app") == '"feedback_app"'


def test_a_role_name_that_is_not_an_identifier_is_refused() -> None:
    with pytest.raises(InvalidIdentifier):
        quote_role('x"; DROP ROLE postgres; --')


def test_a_generated_password_is_32_url_safe_characters_of_192_random_bits() -> None:
    password = new_password()
    assert len(password) == 32
    assert set(password) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_generated_passwords_differ() -> None:
    assert len({new_password() for _ in range(20)}) == 20



# PUBLIC as a grantee is the keyword; `public` as a schema is a reserved word, quoted by name.
PUBLIC_SPELLED = [pytest.param(grantee, "PUBLIC", id="grantee"), pytest.param(qi, '"public"', id="schema")]


@pytest.mark.parametrize(("render", "spelled"), PUBLIC_SPELLED)
def test_public_is_rendered_as_postgresql_spells_it(render: Callable[[str], str], spelled: str) -> None:
    assert render("public") == spelled


@pytest.mark.parametrize("render", [grantee, qi], ids=["grantee", "schema"])
def test_any_other_grantee_or_schema_is_a_checked_quoted_identifier(render: Callable[[str], str]) -> None:
    assert render("quiz_app") == '"quiz_app"'
    with pytest.raises(InvalidIdentifier):
        render('PUBLIC"; DROP SCHEMA quiz_schema; --')
