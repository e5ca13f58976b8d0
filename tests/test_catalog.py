"""The service catalog is the one source of the nine services, and it is validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.catalog import load_catalog, parse_catalog
from config.errors import ConfigError
from config.naming import RoleKind

SPEC_SCHEMAS = [  # section 1 of the spec, in its order
    "students_platform_schema", "edu_matrix_hub_schema", "courses_platform_schema", "freelancing_schema",
    "jobs_portal_schema", "news_system_schema", "community_rooms_schema", "statistics_schema", "feedback_schema",
]


def _entry(**overrides: object) -> dict[str, object]:
    entry = {"name": "feedback", "title": "User Feedback", "pool_size": 10, "readonly_pool_size": 3,
             "statement_timeout_ms": 5000, "owner_team": "content-team", "data_classification": "internal",
             "recovery_priority": 1}
    return {**entry, **overrides}


def test_catalog_lists_the_nine_schemas_of_the_spec_in_order() -> None:
    assert [s.schema_name for s in load_catalog()] == SPEC_SCHEMAS


def test_app_statement_timeouts_never_exceed_the_spec_five_seconds() -> None:
    assert all(s.statement_timeout_ms <= 5000 for s in load_catalog())


def test_connection_limits_derive_from_pool_sizes_and_the_owner_never_logs_in() -> None:
    service = load_catalog().get("students_platform")
    limits = service.connection_limits()
    assert limits[RoleKind.OWNER] == 0
    assert limits[RoleKind.APP] == service.pool_size
    assert limits[RoleKind.READONLY] == service.readonly_pool_size
    assert service.total_connections() == sum(limits.values())


def test_duplicate_service_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="repeated: feedback"):
        parse_catalog({"services": [_entry(), _entry()]}, "services.yaml")


@pytest.mark.parametrize("name", ['feed"back', "feedback; drop table x", "f" * 60])
def test_hostile_service_names_are_rejected_with_the_entry_named(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_catalog({"services": [_entry(name=name)]}, "services.yaml")
    assert "services.yaml: services[" in str(error.value)


def test_unknown_catalog_fields_are_rejected() -> None:
    with pytest.raises(ConfigError, match="pool_sise"):
        parse_catalog({"services": [_entry(pool_sise=3)]}, "services.yaml")


def test_overrides_resize_one_service_and_leave_the_rest() -> None:
    catalog = load_catalog().with_overrides({"feedback": {"pool_size": 2}})
    assert catalog.get("feedback").pool_size == 2
    assert catalog.get("statistics") == load_catalog().get("statistics")
    assert load_catalog().get("feedback").pool_size != 2  # the loaded catalog itself is unchanged


@pytest.mark.parametrize("patch", [{"pool_size": 0}, {"statement_timeout_ms": 5001}, {"pool_sise": 3}])
def test_overrides_are_validated_like_the_catalog_itself(patch: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        load_catalog().with_overrides({"feedback": patch})


def test_full_recovery_starts_with_the_institutions_and_ends_with_the_derived_analytics() -> None:
    order = [s.name for s in load_catalog().recovery_order()]
    assert order[0] == "edu_matrix_hub"  # every other service's rows belong to an institution
    assert order[-1] == "statistics"  # derived from the others: recomputed last
    assert sorted(s.recovery_priority or 0 for s in load_catalog()) == list(range(1, 10))


def test_recovery_priorities_must_number_the_services_once_each() -> None:
    with pytest.raises(ConfigError, match="recovery_priority must number the services 1 to 2, each once; got 0, 1"):
        parse_catalog({"services": [_entry(), _entry(name="news_system", recovery_priority=None)]}, "services.yaml")


def test_every_publishing_service_names_its_aggregates_once_each_in_catalog_order() -> None:
    hub = load_catalog().get("edu_matrix_hub")
    assert hub.aggregates == ("institution", "member")


def test_an_event_type_listed_twice_is_rejected_with_the_entry_named() -> None:
    events = [{"aggregate": "feedback", "type": "feedback_submitted", "payload": {"feedback_id": "string"}}] * 2
    with pytest.raises(ConfigError, match=r"services\[feedback\]\.events: events lists a type twice: "
                                          r"feedback_submitted"):
        parse_catalog({"services": [_entry(events=events)]}, "services.yaml")


@pytest.mark.parametrize("field", ["aggregate", "type"])
def test_event_names_must_be_safe_identifiers(field: str) -> None:
    event = {"aggregate": "feedback", "type": "feedback_submitted", field: "Feedback-Submitted"}
    with pytest.raises(ConfigError, match=rf"events\.0\.{field}"):
        parse_catalog({"services": [_entry(events=[event])]}, "services.yaml")


def test_an_event_version_starts_at_one() -> None:
    event = {"aggregate": "feedback", "type": "feedback_submitted", "version": 0}
    with pytest.raises(ConfigError, match=r"events\.0\.version"):
        parse_catalog({"services": [_entry(events=[event])]}, "services.yaml")


def test_an_extraction_targets_catalog_keeps_only_its_services_renumbered_in_recovery_order() -> None:
    only = load_catalog().only("feedback", "edu_matrix_hub")
    assert [(s.name, s.recovery_priority) for s in only] == [("edu_matrix_hub", 1), ("feedback", 2)]


def test_a_catalog_built_without_priorities_keeps_none_when_narrowed() -> None:
    catalog = parse_catalog({"services": [_entry(recovery_priority=None), _entry(name="news", recovery_priority=None)]},
                            "services.yaml")
    assert [(s.name, s.recovery_priority) for s in catalog.only("news")] == [("news", None)]


def test_asking_the_catalog_for_an_unknown_service_names_it() -> None:
    with pytest.raises(KeyError, match="nosuch"):
        load_catalog().get("nosuch")
