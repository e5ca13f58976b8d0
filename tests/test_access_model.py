"""The access model, as pure data: what each role kind may do, derived from the catalog."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.access import (
    PUBLIC,
    Grant,
    Membership,
    ObjectType,
    build_access_model,
    check_service_access,
    model_for_settings,
    service_access,
)
from config.catalog import Catalog, DataClassification, ServiceSpec, load_catalog
from config.loader import load_stack
from config.naming import InvalidIdentifier, RoleKind, check_identifier, schema_name

WRITE = {"INSERT", "UPDATE", "DELETE", "TRUNCATE", "CREATE"}

def _valid_service_name(name: str) -> bool:
    try:
        check_identifier(name)
        schema_name(name)
    except InvalidIdentifier:
        return False
    return True


names = st.from_regex(r"[a-z][a-z0-9]{0,8}(_[a-z0-9]{1,8}){0,2}", fullmatch=True).filter(_valid_service_name)
specs = st.builds(
    lambda name, pool, ro, timeout: ServiceSpec(
        name=name,
        title=name,
        pool_size=pool,
        readonly_pool_size=ro,
        statement_timeout_ms=timeout,
        owner_team="team",
        data_classification=DataClassification.INTERNAL,
    ),
    names,
    st.integers(1, 1000),
    st.integers(1, 1000),
    st.integers(100, 5000),
)
catalogs = st.lists(specs, min_size=1, max_size=5, unique_by=lambda s: s.name).map(
    lambda ss: Catalog(services=tuple(ss))
)


@pytest.fixture(scope="module")
def model():
    return build_access_model(load_catalog())


def test_every_service_gets_owner_migrator_app_and_readonly_roles(model) -> None:
    for s in model.services:
        assert [r.name for r in s.roles] == [
            f"{s.service}_{k}" for k in ("owner", "migrator", "app", "readonly")
        ]
        assert s.schema == f"{s.service}_schema"
        assert s.owner == f"{s.service}_owner"


def test_only_the_owner_cannot_log_in(model) -> None:
    for r in model.roles:
        assert r.login is (r.kind is not RoleKind.OWNER)


def test_the_migrator_becomes_the_owner_at_login_and_is_its_member(model) -> None:
    for s in model.services:
        migrator = s.role("migrator")
        assert migrator.assume_role == s.owner
        assert Membership(migrator.name, s.owner) in s.memberships


def test_the_app_role_gets_the_catalogs_statement_timeout_and_pool_size(model) -> None:
    for spec in load_catalog():
        app = model.service(spec.name).role("app")
        assert app.statement_timeout_ms == spec.statement_timeout_ms == 5000
        assert app.connection_limit == spec.pool_size
        assert app.settings()["search_path"] == f"{spec.schema_name}, extensions"


def test_stack_overrides_change_the_roles_connection_limits() -> None:
    dev = model_for_settings(load_stack("dev"))
    assert dev.service("students_platform").role("app").connection_limit == 10


def test_public_loses_the_database_and_schema_public_and_default_execute(model) -> None:
    assert Grant(PUBLIC, ObjectType.DATABASE, "edumatrix", frozenset()) in model.database_grants
    assert Grant(PUBLIC, ObjectType.SCHEMA, "edumatrix", frozenset(), "public") in model.database_grants
    for s in model.services:
        revokes = [d for d in s.default_privileges if d.role == PUBLIC]
        assert [(d.owner, d.object_type, d.privileges, d.schema) for d in revokes] == [
            (s.owner, ObjectType.FUNCTION, frozenset(), None)
        ]


def test_pgcrypto_pgaudit_and_pg_stat_statements_are_installed(model) -> None:
    assert {e.name for e in model.extensions} == {"pgcrypto", "pgaudit", "pg_stat_statements"}


def test_grant_rejects_privileges_that_do_not_exist_for_the_object_type() -> None:
    with pytest.raises(ValueError, match="not table privileges"):
        Grant("x_app", ObjectType.TABLE, "db", frozenset({"EXECUTE"}), "x_schema")


def test_an_owner_in_rds_iam_is_refused(model) -> None:
    s = model.service("feedback")
    bad = dataclasses.replace(s, memberships=(*s.memberships, Membership(s.owner, "rds_iam")))
    with pytest.raises(ValueError, match="must not be a member of rds_iam"):
        check_service_access(bad)


def test_a_superuser_service_role_is_refused(model) -> None:
    s = model.service("feedback")
    roles = tuple(dataclasses.replace(r, superuser=True) if r.kind is RoleKind.APP else r for r in s.roles)
    with pytest.raises(ValueError, match="must not have superuser"):
        check_service_access(dataclasses.replace(s, roles=roles))


@settings(max_examples=50, deadline=None)
@given(catalogs)
def test_no_role_is_granted_anything_in_another_services_schema(catalog: Catalog) -> None:
    model = build_access_model(catalog)
    for s in model.services:
        for g in s.grants:
            assert g.schema in (None, s.schema, model.extensions_schema)
            assert g.role in {r.name for r in s.roles}
        for d in s.default_privileges:
            assert d.owner == s.owner
            assert d.schema in (None, s.schema)


@settings(max_examples=50, deadline=None)
@given(catalogs)
def test_every_grant_on_existing_objects_has_an_identical_default_for_future_objects(
    catalog: Catalog,
) -> None:
    model = build_access_model(catalog)
    for s in model.services:
        grants = {
            (g.role, g.object_type, g.privileges)
            for g in s.grants
            if g.object_type in (ObjectType.TABLE, ObjectType.SEQUENCE, ObjectType.FUNCTION)
        }
        defaults = {(d.role, d.object_type, d.privileges) for d in s.default_privileges if d.role != PUBLIC}
        assert grants == defaults


@settings(max_examples=50, deadline=None)
@given(catalogs)
def test_readonly_roles_never_write_and_no_service_role_has_dangerous_attributes(catalog: Catalog) -> None:
    model = build_access_model(catalog)
    for s in model.services:
        readonly = s.role("readonly").name
        assert all(not (g.privileges & WRITE) for g in s.grants if g.role == readonly)
        assert all(not (d.privileges & WRITE) for d in s.default_privileges if d.role == readonly)
    for r in model.roles:
        assert not (r.superuser)
        assert not (r.create_database)
        assert not (r.create_role)
        assert not (r.bypass_row_level_security)
        assert not (r.replication)


@settings(max_examples=50, deadline=None)
@given(specs)
def test_connection_limits_come_from_the_catalog(spec: ServiceSpec) -> None:
    access = service_access(spec, "edumatrix")
    assert {r.kind: r.connection_limit for r in access.roles} == spec.connection_limits()


def test_only_login_roles_get_connect_and_nobody_gets_temporary(model) -> None:
    connect = {g.role for g in model.all_grants() if g.object_type is ObjectType.DATABASE and g.privileges}
    assert connect == {r.name for r in model.roles if r.login}
    assert all("TEMPORARY" not in g.privileges for g in model.all_grants())
