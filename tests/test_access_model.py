"""The access model, as pure data: what each role kind may do, derived from the catalog."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.access import (
    ADVISORY_LOCK_FUNCTIONS,
    CDC_CONNECTIONS_PER_CONNECTOR,
    CDC_SPARE_CONNECTIONS,
    PUBLIC,
    AccessModel,
    Grant,
    Membership,
    ObjectType,
    Target,
    build_access_model,
    cdc_connection_limit,
    check_platform_access,
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
def model() -> AccessModel:
    return build_access_model(load_catalog())


def test_every_service_gets_owner_migrator_app_and_readonly_roles_and_gdpr_ones_with_personal_data(
        model: AccessModel) -> None:
    for s in model.services:
        gdpr = ("gdpr", "gdpr_definer") if s.personal_tables else ()
        assert [r.name for r in s.roles] == [
            f"{s.service}_{k}" for k in ("owner", "migrator", "app", "readonly", *gdpr)
        ]
        assert s.schema == f"{s.service}_schema"
        assert s.owner == f"{s.service}_owner"


def test_only_the_owner_and_the_gdpr_definer_cannot_log_in(model: AccessModel) -> None:
    for r in model.roles:
        assert r.login is (r.kind not in (RoleKind.OWNER, RoleKind.GDPR_DEFINER))


def test_the_migrator_becomes_the_owner_at_login_and_is_its_member(model: AccessModel) -> None:
    for s in model.services:
        migrator = s.role("migrator")
        assert migrator.assume_role == s.owner
        assert Membership(migrator.name, s.owner) in s.memberships


def test_the_app_role_gets_the_catalogs_statement_timeout_and_pool_size(model: AccessModel) -> None:
    for spec in load_catalog():
        app = model.service(spec.name).role("app")
        assert app.statement_timeout_ms == spec.statement_timeout_ms == 5000
        assert app.connection_limit == spec.pool_size
        assert app.settings()["search_path"] == f"{spec.schema_name}, extensions"


def test_stack_overrides_change_the_roles_connection_limits() -> None:
    dev = model_for_settings(load_stack("dev"))
    assert dev.service("students_platform").role("app").connection_limit == 10


def test_public_loses_the_database_and_schema_public_and_default_execute(model: AccessModel) -> None:
    assert Grant(PUBLIC, ObjectType.DATABASE, "edumatrix", frozenset()) in model.database_grants
    assert Grant(PUBLIC, ObjectType.SCHEMA, "edumatrix", frozenset(), "public") in model.database_grants
    for s in model.services:
        revokes = [d for d in s.default_privileges if d.role == PUBLIC]
        creators = [s.owner, *([f"{s.service}_gdpr_definer"] if s.personal_tables else [])]
        assert [(d.owner, d.object_type, d.privileges, d.schema) for d in revokes] == [
            (creator, ObjectType.FUNCTION, frozenset(), None) for creator in creators
        ]


def test_pgcrypto_pgaudit_and_pg_stat_statements_are_installed(model: AccessModel) -> None:
    assert {e.name for e in model.extensions} == {"pgcrypto", "pgaudit", "pg_stat_statements"}


def test_grant_rejects_privileges_that_do_not_exist_for_the_object_type() -> None:
    with pytest.raises(ValueError, match="not table privileges"):
        Grant("x_app", ObjectType.TABLE, "db", frozenset({"EXECUTE"}), "x_schema")


def test_an_owner_in_rds_iam_is_refused(model: AccessModel) -> None:
    s = model.service("feedback")
    bad = dataclasses.replace(s, memberships=(*s.memberships, Membership(s.owner, "rds_iam")))
    with pytest.raises(ValueError, match="must not be a member of rds_iam"):
        check_service_access(bad)


def test_a_superuser_service_role_is_refused(model: AccessModel) -> None:
    s = model.service("feedback")
    roles = tuple(dataclasses.replace(r, superuser=True) if r.kind is RoleKind.APP else r for r in s.roles)
    with pytest.raises(ValueError, match="must not have superuser"):
        check_service_access(dataclasses.replace(s, roles=roles))


@settings(max_examples=min(50, settings().max_examples), deadline=None)  # fewer under mutation
@given(catalogs)
def test_no_role_is_granted_anything_in_another_services_schema(catalog: Catalog) -> None:
    model = build_access_model(catalog)
    for s in model.services:
        for g in s.grants:
            assert g.schema in (None, s.schema, model.extensions_schema)
            assert g.role in {r.name for r in s.roles} or (g.role == PUBLIC and not g.privileges)
        for d in s.default_privileges:
            assert d.owner == s.owner
            assert d.schema in (None, s.schema)


@settings(max_examples=min(50, settings().max_examples), deadline=None)  # fewer under mutation
@given(catalogs)
def test_every_grant_on_existing_objects_has_an_identical_default_for_future_objects(
    catalog: Catalog,
) -> None:
    model = build_access_model(catalog)
    for s in model.services:
        grants = {
            (g.role, g.object_type, g.privileges)
            for g in s.grants
            if g.object_type in (ObjectType.TABLE, ObjectType.SEQUENCE, ObjectType.FUNCTION) and g.role != PUBLIC
        }
        defaults = {(d.role, d.object_type, d.privileges) for d in s.default_privileges if d.role != PUBLIC}
        assert grants == defaults


@settings(max_examples=min(50, settings().max_examples), deadline=None)  # fewer under mutation
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


@settings(max_examples=min(50, settings().max_examples), deadline=None)  # fewer under mutation
@given(specs)
def test_connection_limits_come_from_the_catalog(spec: ServiceSpec) -> None:
    access = service_access(spec, "edumatrix")
    assert {r.kind: r.connection_limit for r in access.roles} == spec.connection_limits()


def test_only_login_roles_get_connect_and_nobody_gets_temporary(model: AccessModel) -> None:
    connect = {g.role for g in model.all_grants() if g.object_type is ObjectType.DATABASE and g.privileges}
    assert connect == {r.name for r in model.all_roles if r.login}
    assert all("TEMPORARY" not in g.privileges for g in model.all_grants())


def test_the_migrator_does_not_inherit_the_owners_privileges_it_becomes_the_owner_instead(model: AccessModel) -> None:
    for s in model.services:
        assert s.role("migrator").inherit is False
        assert all(r.inherit for r in s.roles if r.kind is not RoleKind.MIGRATOR)


def test_public_holds_nothing_on_each_service_schema_and_its_objects(model: AccessModel) -> None:
    for s in model.services:
        public = {g.object_type: g.privileges for g in s.grants if g.role == PUBLIC}
        assert public == {t: frozenset() for t in (ObjectType.SCHEMA, ObjectType.TABLE, ObjectType.SEQUENCE,
                                                   ObjectType.FUNCTION)}


def test_the_platform_has_an_ops_login_a_data_mover_and_a_replication_login_per_purpose(model: AccessModel) -> None:
    assert {r.name: r.kind.value for r in model.platform.roles} == {
        "edumatrix_ops": "ops",
        "edumatrix_data_mover": "data_mover",
        "edumatrix_extraction_replicator": "extraction_replicator",
        "edumatrix_cdc_replicator": "cdc_replicator",
        "rds_pgaudit": "auditor",
    }
    logins = [r for r in model.platform.roles if r.kind.value not in ("auditor", "cdc_replicator")]
    assert all(r.login and 0 < r.connection_limit <= 4 for r in logins)


def test_the_cdc_login_holds_every_publishing_services_connector_and_a_spare(model: AccessModel) -> None:
    publishers = [s for s in load_catalog() if s.events]
    cdc = model.platform.role("cdc_replicator")
    assert cdc.login
    assert cdc.connection_limit == len(publishers) * CDC_CONNECTIONS_PER_CONNECTOR + CDC_SPARE_CONNECTIONS


def test_without_publishers_the_cdc_login_keeps_its_floor_of_two_connections() -> None:
    assert cdc_connection_limit(0) == 2


def test_the_object_audit_role_never_logs_in_and_holds_no_power(model: AccessModel) -> None:
    auditor = model.platform.role("auditor")
    assert (auditor.name, auditor.login, auditor.connection_limit) == ("rds_pgaudit", False, 0)
    assert [m for m in model.all_memberships() if auditor.name in (m.member, m.group)] == []
    assert [g for g in model.all_grants() if g.role == auditor.name] == []


def test_the_ops_login_monitors_and_holds_no_power_over_data(model: AccessModel) -> None:
    ops = model.platform.role("ops")
    assert {m.group for m in model.platform.memberships if m.member == ops.name} == {"pg_monitor"}
    assert (ops.bypass_row_level_security, ops.replication, ops.superuser, ops.create_role) == (False,) * 4
    # beyond CONNECT: only USAGE on `extensions`, where pg_stat_statements' view lives (the metrics job)
    beyond_connect = [(g.object_type, g.schema, g.privileges) for g in model.all_grants()
                      if g.role == ops.name and g.object_type is not ObjectType.DATABASE]
    assert beyond_connect == [(ObjectType.SCHEMA, "extensions", frozenset({"USAGE"}))]


def test_only_the_data_mover_the_extraction_copy_and_gdpr_definers_bypass_rls_and_only_replicators_replicate(
        model: AccessModel) -> None:
    """The extraction replicator's initial copy reads every tenant's rows (docs/extraction-runbook.md); a gdpr
    definer reaches every tenant of its own schema only (docs/gdpr.md)."""
    definers = {f"{s.service}_gdpr_definer" for s in model.services if s.personal_tables}
    assert {r.name for r in model.all_roles if r.bypass_row_level_security} == {
        "edumatrix_data_mover", "edumatrix_extraction_replicator", *definers}
    assert {r.name for r in model.all_roles if r.replication} == {
        "edumatrix_extraction_replicator", "edumatrix_cdc_replicator"}
    mover = {m.group for m in model.platform.memberships if m.member == "edumatrix_data_mover"}
    assert mover == {"pg_read_all_data", "pg_write_all_data"}
    copier = {m.group for m in model.platform.memberships if m.member == "edumatrix_extraction_replicator"}
    assert copier == {"pg_read_all_data"}


def test_on_rds_replication_is_membership_in_rds_replication_not_the_attribute() -> None:
    prod = model_for_settings(load_stack("prod"))
    assert prod.target is Target.RDS
    assert not any(r.replication for r in prod.all_roles)
    assert {m.member for m in prod.platform.memberships if m.group == "rds_replication"} == {
        "edumatrix_extraction_replicator", "edumatrix_cdc_replicator"}


def test_a_platform_role_with_more_power_than_its_purpose_is_refused(model: AccessModel) -> None:
    ops = dataclasses.replace(model.platform.role("ops"), bypass_row_level_security=True)
    roles = tuple(ops if r.name == ops.name else r for r in model.platform.roles)
    with pytest.raises(ValueError, match="edumatrix_ops must not have bypass_row_level_security"):
        check_platform_access(dataclasses.replace(model.platform, roles=roles))


def test_advisory_locks_are_kept_for_the_owners_the_role_migrations_run_as(model: AccessModel) -> None:
    assert len(ADVISORY_LOCK_FUNCTIONS) == 21
    assert set(model.advisory_lock_roles) == {s.owner for s in model.services}


def test_each_login_role_carries_exactly_its_session_settings(model: AccessModel) -> None:
    feedback = model.service("feedback")
    paths = "feedback_schema, extensions"
    assert {r.kind.value: r.settings() for r in feedback.roles} == {
        "owner": {},
        "migrator": {"idle_in_transaction_session_timeout": "60000", "search_path": paths, "role": "feedback_owner"},
        "app": {"statement_timeout": "5000", "idle_in_transaction_session_timeout": "60000", "search_path": paths},
        "readonly": {"statement_timeout": "5000", "idle_in_transaction_session_timeout": "60000",
                     "search_path": paths},
        "gdpr": {"statement_timeout": "300000", "idle_in_transaction_session_timeout": "60000",
                 "search_path": "feedback_schema"},
        "gdpr_definer": {},
    }


def test_a_stacks_database_and_idle_timeout_reach_the_model() -> None:
    settings = load_stack("dev")
    instance = settings.instance.model_copy(update={"database_name": "otherdb",
                                                    "idle_in_transaction_session_timeout_ms": 30_000})
    model = model_for_settings(settings.model_copy(update={"instance": instance}))
    assert model.database == "otherdb"
    assert {r.settings().get("idle_in_transaction_session_timeout") for r in model.roles if r.login} == {"30000"}


def test_a_gdpr_login_may_connect_and_use_its_schema_and_holds_no_table_privilege(model: AccessModel) -> None:
    for s in model.services:
        if not s.personal_tables:
            continue
        gdpr = f"{s.service}_gdpr"
        assert {(g.object_type, g.schema, g.privileges) for g in s.grants if g.role == gdpr} == {
            (ObjectType.DATABASE, None, frozenset({"CONNECT"})), (ObjectType.SCHEMA, s.schema, frozenset({"USAGE"}))}
        assert {(d.owner, d.object_type, d.privileges) for d in s.default_privileges if d.role == gdpr} == {
            (f"{s.service}_gdpr_definer", ObjectType.FUNCTION, frozenset({"EXECUTE"}))}


def test_a_gdpr_definer_reaches_only_its_own_schema(model: AccessModel) -> None:
    for s in model.services:
        definer = f"{s.service}_gdpr_definer"
        grants = [g for g in model.all_grants() if g.role == definer]
        assert all(g.schema == s.schema for g in grants)
        assert [m.group for m in model.all_memberships() if m.member == definer] == []
        assert [m.member for m in model.all_memberships() if m.group == definer] == (
            [s.owner] if s.personal_tables else [])
