"""config/access.py's canonical form: the tuples both renderers are compared in. The database side
(edumatrix_db/database/catalog.py) and the Pulumi side (components/service_schema.py canonical_from_resources)
build these tuples from what they read, so their shape is a contract: spelled out here literally."""

from __future__ import annotations

import pytest

from config.access import (
    AccessModel,
    DefaultPrivilege,
    Grant,
    ObjectType,
    RoleSpec,
    build_access_model,
    canonical_default,
    canonical_grant,
    canonical_role,
)
from config.catalog import load_catalog
from config.naming import RoleKind

ATTRIBUTES = (("superuser", False), ("create_database", False), ("create_role", False),
              ("bypass_row_level_security", False), ("replication", False))


def test_a_role_is_one_tuple_of_its_attributes_and_one_per_setting() -> None:
    role = RoleSpec(name="feedback_app", service="feedback", kind=RoleKind.APP, login=True, connection_limit=20,
                    statement_timeout_ms=5000, idle_in_transaction_session_timeout_ms=60000,
                    search_path=("feedback_schema", "extensions"), assume_role="feedback_owner")
    assert canonical_role(role) == {
        ("role", "feedback_app", ("login", True), ("inherit", True), ("connection_limit", 20), *ATTRIBUTES),
        ("setting", "feedback_app", "statement_timeout", "5000"),
        ("setting", "feedback_app", "idle_in_transaction_session_timeout", "60000"),
        ("setting", "feedback_app", "search_path", "feedback_schema, extensions"),
        ("setting", "feedback_app", "role", "feedback_owner"),
    }


def test_a_role_without_settings_is_its_attributes_alone() -> None:
    role = RoleSpec(name="feedback_owner", service="feedback", kind=RoleKind.OWNER, login=False, connection_limit=0,
                    inherit=False, replication=True)
    assert canonical_role(role) == {
        ("role", "feedback_owner", ("login", False), ("inherit", False), ("connection_limit", 0),
         ("superuser", False), ("create_database", False), ("create_role", False),
         ("bypass_row_level_security", False), ("replication", True))}


def test_a_grant_is_its_role_type_database_schema_and_sorted_privileges() -> None:
    grant = Grant(role="feedback_app", object_type=ObjectType.TABLE, database="edumatrix",
                  privileges=frozenset({"UPDATE", "SELECT", "DELETE", "INSERT"}), schema="feedback_schema")
    assert canonical_grant(grant) == ("grant", "feedback_app", "table", "edumatrix", "feedback_schema",
                                      ("DELETE", "INSERT", "SELECT", "UPDATE"))


def test_a_grant_without_a_schema_has_an_empty_one() -> None:
    grant = Grant(role="feedback_app", object_type=ObjectType.DATABASE, database="edumatrix",
                  privileges=frozenset({"CONNECT"}))
    assert canonical_grant(grant) == ("grant", "feedback_app", "database", "edumatrix", "", ("CONNECT",))


def test_a_default_privilege_names_the_owner_before_the_grantee() -> None:
    default = DefaultPrivilege(owner="feedback_owner", role="feedback_app", object_type=ObjectType.SEQUENCE,
                               database="edumatrix", privileges=frozenset({"USAGE", "SELECT"}),
                               schema="feedback_schema")
    assert canonical_default(default) == ("default", "feedback_owner", "feedback_app", "sequence", "edumatrix",
                                          "feedback_schema", ("SELECT", "USAGE"))


def test_a_database_wide_default_privilege_has_an_empty_schema() -> None:
    default = DefaultPrivilege(owner="feedback_owner", role="public", object_type=ObjectType.FUNCTION,
                               database="edumatrix", privileges=frozenset())
    assert canonical_default(default) == ("default", "feedback_owner", "public", "function", "edumatrix", "", ())




@pytest.fixture
def model() -> AccessModel:
    # per test, not at import: under `make mutation` the import happens before the mutant is chosen
    return build_access_model(load_catalog())


def test_the_models_canonical_form_holds_each_schema_with_its_owner(model: AccessModel) -> None:
    schemas = {t for t in model.canonical() if t[0] == "schema"}
    assert schemas == {("schema", s.schema, s.owner) for s in model.services}
    assert ("schema", "feedback_schema", "feedback_owner") in schemas


def test_the_models_canonical_form_holds_every_role_membership_grant_default_and_extension(model: AccessModel) -> None:
    canonical = model.canonical()
    assert {t[0] for t in canonical} == {"role", "setting", "schema", "member", "grant", "default", "extension"}
    assert {("member", m.member, m.group) for m in model.all_memberships()} <= canonical
    assert {canonical_grant(g) for g in model.all_grants()} <= canonical
    assert {canonical_default(d) for d in model.all_default_privileges()} <= canonical
    assert {("extension", e.name, e.schema or "") for e in model.extensions} <= canonical
    assert all(canonical_role(r) <= canonical for r in model.all_roles)


def test_the_canonical_form_holds_nothing_else(model: AccessModel) -> None:
    # the canonical form's tuples differ in length and element types: as wide as AccessModel.canonical() says
    expected: set[tuple[object, ...]] = {("schema", s.schema, s.owner) for s in model.services}
    expected |= {("member", m.member, m.group) for m in model.all_memberships()}
    expected |= {canonical_grant(g) for g in model.all_grants()} | {canonical_default(d) for d in
                                                                      model.all_default_privileges()}
    expected |= {("extension", e.name, e.schema or "") for e in model.extensions}
    for role in model.all_roles:
        expected |= canonical_role(role)
    assert model.canonical() == expected


def test_a_role_belongs_to_the_service_that_declares_it(model: AccessModel) -> None:
    owner = model.service_of_role("feedback_app")
    assert owner is not None
    assert owner.service == "feedback"


def test_a_role_no_service_declares_belongs_to_none(model: AccessModel) -> None:
    assert model.service_of_role("edumatrix_admin") is None
