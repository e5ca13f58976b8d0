"""The exact words of a refused service catalog (config/catalog.py parse_catalog): the entry and field named, what
is wrong, and the one fix, for each rule of config/services.yaml; and what the catalog derives for each service."""

from __future__ import annotations

from typing import Any

import pytest

from config.catalog import GDPR_CONNECTIONS, MIGRATOR_CONNECTIONS, load_catalog, parse_catalog
from config.errors import ConfigError
from config.naming import RoleKind

FIX = "edit the catalog entry (see the field list at the top of config/services.yaml)"
PLAIN = ("is not a plain PostgreSQL identifier: use lower-case letters, digits and underscores, starting with a "
         "letter or underscore (no quotes, spaces, semicolons or capitals)")


def entry(**overrides: Any) -> dict[str, Any]:
    return {"name": "feedback", "title": "User Feedback", "pool_size": 10, "readonly_pool_size": 3,
            "statement_timeout_ms": 5000, "owner_team": "content-team", "data_classification": "internal",
            "recovery_priority": 1, **overrides}


def event(**overrides: Any) -> dict[str, Any]:
    return {"aggregate": "feedback", "type": "feedback_submitted", "payload": {"feedback_id": "string"}, **overrides}


@pytest.mark.parametrize(("data", "expected"), [
    pytest.param({"services": [entry(), entry()]}, [("services", "service names must be unique; repeated: feedback")],
                 id="a-service-listed-twice"),
    pytest.param({"services": []}, [("services", "the catalog lists no service")], id="no-service"),
    pytest.param(["feedback"], [("", "Input should be a valid dictionary or instance of Catalog")],
                 id="a-list-for-the-catalog"),
    pytest.param({"services": ["feedback"]}, [("services.0", "Input should be a valid dictionary or instance of "
                                                             "ServiceSpec")], id="a-name-for-an-entry"),
    pytest.param({"services": [{k: v for k, v in entry().items() if k != "name"}]},
                 [("services[0].name", "Field required")], id="an-entry-without-a-name-is-named-by-its-position"),
    pytest.param({"services": [entry(name="Feed")]}, [("services[Feed].name", f"service name 'Feed' {PLAIN}")],
                 id="a-service-name-that-is-no-identifier"),
    pytest.param({"services": [entry(), entry(name="news", pool_size=0, recovery_priority=2)]},
                 [("services[news].pool_size", "Input should be greater than or equal to 1")],
                 id="the-second-entry-is-named-by-its-name"),
    pytest.param({"services": [entry(personal_tables=["users"])]},
                 [("services[feedback].personal_tables",
                   "personal table 'users' does not follow the convention feedback_<entity>")],
                 id="a-personal-table-of-another-prefix"),
    pytest.param({"services": [entry(personal_tables=["feedback_users", "feedback_users"])]},
                 [("services[feedback].personal_tables", "personal_tables lists a table twice")],
                 id="a-personal-table-listed-twice"),
    pytest.param({"services": [entry(personal_tables=["Feedback_users"])]},
                 [("services[feedback].personal_tables", f"personal table 'Feedback_users' {PLAIN}")],
                 id="a-personal-table-that-is-no-identifier"),
    pytest.param({"services": [entry(events=[event(payload={"Bad": "string"})])]},
                 [("services[feedback].events.0.payload", f"payload member 'Bad' {PLAIN}")],
                 id="a-payload-member-that-is-no-identifier"),
    pytest.param({"services": [entry(events=[event(type="Submitted")])]},
                 [("services[feedback].events.0.type", f"event aggregate or type 'Submitted' {PLAIN}")],
                 id="an-event-type-that-is-no-identifier"),
    pytest.param({"services": [entry(events=[event(), event(aggregate="other"), event(type="b"), event(type="b")])]},
                 [("services[feedback].events", "events lists a type twice: b, feedback_submitted")],
                 id="event-types-listed-twice-are-each-named-once"),
    pytest.param({"services": [entry(), entry(name="news", recovery_priority=None)]},
                 [("services", "recovery_priority must number the services 1 to 2, each once; got 0, 1")],
                 id="a-recovery-priority-missing"),
    pytest.param({"services": [entry(), entry(name="news")]},
                 [("services", "recovery_priority must number the services 1 to 2, each once; got 1, 1")],
                 id="a-recovery-priority-twice"),
])
def test_a_refused_catalog_names_the_entry_and_field_in_these_words(
        data: Any, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_catalog(data, "config/services.yaml")
    assert all(p.source == "config/services.yaml" for p in caught.value.problems)
    assert [(p.key, p.message, p.fix) for p in caught.value.problems] == [(*row, FIX) for row in expected]


def test_a_catalog_numbered_1_to_n_is_accepted() -> None:
    catalog = parse_catalog({"services": [entry(recovery_priority=2), entry(name="news")]}, "config/services.yaml")
    assert catalog.names == ("feedback", "news")


def test_a_service_with_personal_tables_has_the_gdpr_pair_of_roles_and_their_connections() -> None:
    service = parse_catalog({"services": [entry(personal_tables=["feedback_users"])]}, "s.yaml").get("feedback")
    assert service.connection_limits() == {RoleKind.OWNER: 0, RoleKind.MIGRATOR: MIGRATOR_CONNECTIONS,
                                           RoleKind.APP: 10, RoleKind.READONLY: 3, RoleKind.GDPR: GDPR_CONNECTIONS,
                                           RoleKind.GDPR_DEFINER: 0}
    assert service.total_connections() == 10 + 3 + 2 + 2


def test_a_service_without_personal_tables_has_the_four_base_roles_only() -> None:
    service = parse_catalog({"services": [entry()]}, "s.yaml").get("feedback")
    assert (service.holds_personal_data, service.role_kinds) == (
        False, (RoleKind.OWNER, RoleKind.MIGRATOR, RoleKind.APP, RoleKind.READONLY))


def test_a_service_names_its_gdpr_contract_functions() -> None:
    assert load_catalog().get("feedback").contract_functions == ("feedback_fn_erase_subject",
                                                                 "feedback_fn_export_subject")


def test_services_without_a_recovery_priority_are_restored_last_in_catalog_order() -> None:
    catalog = parse_catalog({"services": [entry(recovery_priority=None), entry(name="news", recovery_priority=None)]},
                            "s.yaml")
    assert [s.name for s in catalog.recovery_order()] == ["feedback", "news"]
