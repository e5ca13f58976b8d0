"""The spec's naming conventions are enforced in code, and unsafe identifiers never reach SQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.naming import (
    RESERVED_WORDS,
    InvalidIdentifier,
    RoleKind,
    belongs_to,
    check_identifier,
    function_name,
    quote_ident,
    role_name,
    schema_name,
    table_name,
    trigger_name,
    version_table_name,
)

# Plain identifiers that are no PostgreSQL keyword (the list is checked against the server's pg_get_keywords()
# in tests/pg/test_reserved_words.py): short ones like `in`, `is`, `do` are generated often.
plain_identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,40}", fullmatch=True).filter(
    lambda s: not s.startswith("pg_") and s not in RESERVED_WORDS
)


def test_schema_names_follow_the_service_schema_convention() -> None:
    assert schema_name("feedback") == "feedback_schema"


def test_role_names_follow_the_service_kind_convention() -> None:
    assert [role_name("news_system", k) for k in RoleKind] == [
        "news_system_owner", "news_system_migrator", "news_system_app", "news_system_readonly",
        "news_system_gdpr", "news_system_gdpr_definer"]


def test_objects_inside_a_schema_follow_the_spec_prefixes() -> None:
    assert table_name("courses_platform", "enrollment") == "courses_platform_enrollment"
    assert function_name("courses_platform", "enroll") == "courses_platform_fn_enroll"
    assert trigger_name("courses_platform", "audit") == "courses_platform_trg_audit"


@pytest.mark.parametrize("hostile", ['a"b', "a;drop role x", "Students", "a b", "a-b", "1abc", "", "é", "feedback\n"])
def test_names_that_would_need_quoting_are_rejected(hostile: str) -> None:
    with pytest.raises(InvalidIdentifier):
        check_identifier(hostile)


def test_names_postgresql_would_truncate_are_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="at most 63 bytes"):
        check_identifier("x" * 64)


def test_a_derived_name_that_overflows_is_rejected_even_if_the_service_name_fits() -> None:
    service = "s" * 60
    check_identifier(service)
    with pytest.raises(InvalidIdentifier, match="63 bytes"):
        role_name(service, RoleKind.READONLY)


@pytest.mark.parametrize("word", sorted(RESERVED_WORDS))
def test_every_word_postgresql_reserves_is_rejected(word: str) -> None:
    with pytest.raises(InvalidIdentifier, match="reserved word"):
        check_identifier(word)


def test_the_pg_prefix_is_rejected() -> None:
    with pytest.raises(InvalidIdentifier, match="pg_"):
        check_identifier("pg_catalog2")


@pytest.mark.parametrize("word", ["name", "role", "schema", "data", "comment", "feedback"])
def test_unreserved_keywords_and_ordinary_words_are_plain_identifiers(word: str) -> None:
    assert check_identifier(word) == word


@given(plain_identifiers)
def test_every_plain_identifier_is_accepted_and_quotes_round_trip(name: str) -> None:
    """This once failed at random: its filter knew seven reserved words and Hypothesis found `in`."""
    assert check_identifier(name) == name
    assert quote_ident(name) == f'"{name}"'


@given(st.text(min_size=1, max_size=30).filter(lambda s: any(c in s for c in "\"'; -.()\\\n")))
def test_text_with_sql_metacharacters_is_never_accepted(name: str) -> None:
    with pytest.raises(InvalidIdentifier):
        check_identifier(name)


def test_event_plumbing_names_derive_from_the_service() -> None:
    from config.naming import (
        event_schema_name,
        event_topic_name,
        inbox_table_name,
        outbox_publication_name,
        outbox_slot_name,
        outbox_table_name,
    )

    assert (outbox_table_name("feedback"), inbox_table_name("feedback")) == ("feedback_outbox", "feedback_inbox")
    assert (outbox_publication_name("feedback"), outbox_slot_name("feedback")) == (
        "feedback_outbox_pub", "feedback_outbox_slot")
    assert event_topic_name("feedback", "feedback") == "edumatrix.feedback.feedback"
    assert event_schema_name("feedback", "feedback", "feedback_submitted") == "feedback.feedback.feedback_submitted"


def test_an_event_topic_refuses_an_aggregate_that_is_not_an_identifier() -> None:
    from config.naming import event_topic_name

    with pytest.raises(InvalidIdentifier):
        event_topic_name("feedback", "Feedback.Submitted")


@pytest.mark.parametrize(("make", "args", "label"), [
    (table_name, ("feedback", "Bad"), "entity 'Bad'"),
    (table_name, ("feedback", "x" * 60), "table name 'feedback_" + "x" * 60 + "'"),
    (trigger_name, ("feedback", "Bad"), "event 'Bad'"),
    (trigger_name, ("feedback", "x" * 55), "trigger name 'feedback_trg_" + "x" * 55 + "'"),
])
def test_a_refused_derived_name_says_which_part_or_name_is_wrong(make: Callable[[str, str], str], args: tuple[str, str],
                                                                label: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        make(*args)
    assert str(caught.value).startswith(f"{label} ")


@pytest.mark.parametrize(("function", "args", "label"), [
    ("outbox_publication_name", ("s" * 53,), "publication name"),
    ("outbox_slot_name", ("s" * 52,), "replication slot name"),
    ("event_topic_name", ("feedback", "Bad"), "aggregate type 'Bad'"),
    ("event_topic_name", ("Feed", "feedback"), "service name 'Feed'"),
    ("event_schema_name", ("feedback", "feedback", "Bad"), "event type 'Bad'"),
])
def test_a_refused_event_name_says_which_name_is_wrong(function: str, args: tuple[str, ...], label: str) -> None:
    import config.naming

    with pytest.raises(InvalidIdentifier) as caught:
        getattr(config.naming, function)(*args)
    assert str(caught.value).startswith(f"{label} ")


PLAIN_RULE = ("is not a plain PostgreSQL identifier: use lower-case letters, digits and underscores, starting with a "
              "letter or underscore (no quotes, spaces, semicolons or capitals)")


def test_a_function_action_that_is_not_an_identifier_is_refused_naming_the_action() -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        function_name("feedback", "Erase")
    assert str(caught.value) == f"action 'Erase' {PLAIN_RULE}"


def test_a_function_name_longer_than_postgresql_keeps_is_refused_naming_the_function() -> None:
    service = "s" * 50
    with pytest.raises(InvalidIdentifier) as caught:
        function_name(service, "erase_subject_x")
    assert str(caught.value) == (f"function name '{service}_fn_erase_subject_x' is 69 bytes; PostgreSQL identifiers "
                                 "are at most 63 bytes (longer names are silently truncated)")


TRUNCATED = "PostgreSQL identifiers are at most 63 bytes (longer names are silently truncated)"


@pytest.mark.parametrize(("make", "args", "message"), [
    pytest.param(check_identifier, ("",), "identifier must be a non-empty string", id="empty"),
    pytest.param(check_identifier, (None,), "identifier must be a non-empty string", id="not-text"),
    pytest.param(check_identifier, ("é" * 32,), f"identifier '{'é' * 32}' is 64 bytes; {TRUNCATED}",
                 id="32-characters-of-64-bytes"),
    pytest.param(check_identifier, ("select",), "identifier 'select' is a reserved word in PostgreSQL (it would "
                 "need quoting)", id="reserved-word"),
    pytest.param(check_identifier, ("pg_x",), "identifier 'pg_x' starts with 'pg_', which PostgreSQL reserves for "
                 "itself", id="pg-prefix"),
    pytest.param(schema_name, ("s" * 57,), f"schema name '{'s' * 57}_schema' is 64 bytes; {TRUNCATED}",
                 id="schema-name"),
    pytest.param(version_table_name, ("s" * 50,), f"version table '{'s' * 50}_schema_version' is 65 bytes; "
                 f"{TRUNCATED}", id="version-table"),
    pytest.param(role_name, ("s" * 60, RoleKind.APP), f"role name '{'s' * 60}_app' is 64 bytes; {TRUNCATED}",
                 id="role-name"),
])
def test_a_refused_name_reads_in_these_words(make: Callable[..., str], args: tuple[object, ...], message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        make(*args)
    assert str(caught.value) == message


def test_an_identifier_of_exactly_63_bytes_is_accepted() -> None:
    assert check_identifier("a" * 63) == "a" * 63


def test_the_version_table_lives_beside_the_schema_name() -> None:
    assert version_table_name("feedback") == "feedback_schema_version"


@pytest.mark.parametrize(("name", "belongs"), [("feedback_x", True), ("feedbackx", False), ("news_feedback_x", False)])
def test_an_object_belongs_to_a_service_by_its_prefix_and_underscore(name: str, belongs: bool) -> None:
    assert belongs_to("feedback", name) is belongs
