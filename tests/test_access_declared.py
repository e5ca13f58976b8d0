"""The access model as the spec declares it, written out whole for a small catalog: every role with its attributes
and session settings, every membership, grant, default privilege and extension (README "Schema-per-service
isolation", docs/platform-roles.md, docs/gdpr.md), and the exact words of the model's own refusals.

tests/test_access_model.py states the rules over the real catalog; tests/pg proves the model on PostgreSQL. Here
each test builds its model itself: a module-scoped fixture would run the model's code inside the first test only,
and the mutation run credits that code to that one test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from config.access import (
    PUBLIC,
    AccessModel,
    DefaultPrivilege,
    Extension,
    Grant,
    Membership,
    ObjectType,
    PlatformAccess,
    PlatformRoleKind,
    RoleSpec,
    ServiceAccess,
    Target,
    build_access_model,
    check_platform_access,
    check_service_access,
    full_model_for_settings,
    platform_access,
    service_access,
)
from config.catalog import Catalog, DataClassification, EventSpec, ServiceSpec
from config.loader import load_stack
from config.naming import InvalidIdentifier, RoleKind

DB = "edumatrix"
IDLE = 60_000
PLAIN = ("is not a plain PostgreSQL identifier: use lower-case letters, digits and underscores, starting with a "
         "letter or underscore (no quotes, spaces, semicolons or capitals)")
SELECT_INSERT_UPDATE_DELETE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
SELECT_UPDATE_DELETE = frozenset({"SELECT", "UPDATE", "DELETE"})
NOTHING: frozenset[str] = frozenset()
A = TypeVar("A", ServiceAccess, PlatformAccess)


def spec(name: str, *, personal_tables: tuple[str, ...] = (), events: tuple[EventSpec, ...] = ()) -> ServiceSpec:
    return ServiceSpec(name=name, title=name, pool_size=20, readonly_pool_size=5, statement_timeout_ms=4000,
                       owner_team="team", data_classification=DataClassification.INTERNAL,
                       personal_tables=personal_tables, events=events)


FEEDBACK = spec("feedback")
PEOPLE = spec("people", personal_tables=("people_profile",),
              events=(EventSpec(aggregate="person", type="person_created", payload=(("person_id", "string"),)),))


def catalog() -> Catalog:
    return Catalog(services=(FEEDBACK, PEOPLE))


def base_roles(service: str, idle: int = IDLE) -> set[RoleSpec]:
    """Owner NOLOGIN; migrator NOINHERIT, becoming the owner at login; app and readonly with the catalog's
    statement timeout and pool sizes; all with the schema then `extensions` on their search path."""
    schema, owner = f"{service}_schema", f"{service}_owner"
    path = (schema, "extensions")
    return {
        RoleSpec(owner, service, RoleKind.OWNER, login=False, connection_limit=0),
        RoleSpec(f"{service}_migrator", service, RoleKind.MIGRATOR, login=True, connection_limit=2, inherit=False,
                 idle_in_transaction_session_timeout_ms=idle, search_path=path, assume_role=owner),
        RoleSpec(f"{service}_app", service, RoleKind.APP, login=True, connection_limit=20, statement_timeout_ms=4000,
                 idle_in_transaction_session_timeout_ms=idle, search_path=path),
        RoleSpec(f"{service}_readonly", service, RoleKind.READONLY, login=True, connection_limit=5,
                 statement_timeout_ms=4000, idle_in_transaction_session_timeout_ms=idle, search_path=path),
    }


def base_grants(service: str) -> set[Grant]:
    schema, owner, app, readonly = (f"{service}_{k}" for k in ("schema", "owner", "app", "readonly"))
    return {
        Grant(f"{service}_migrator", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
        Grant(app, ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
        Grant(readonly, ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
        Grant(app, ObjectType.SCHEMA, DB, frozenset({"USAGE"}), schema),
        Grant(readonly, ObjectType.SCHEMA, DB, frozenset({"USAGE"}), schema),
        Grant(app, ObjectType.TABLE, DB, SELECT_INSERT_UPDATE_DELETE, schema),
        Grant(readonly, ObjectType.TABLE, DB, frozenset({"SELECT"}), schema),
        Grant(app, ObjectType.SEQUENCE, DB, frozenset({"USAGE", "SELECT"}), schema),
        Grant(readonly, ObjectType.SEQUENCE, DB, frozenset({"SELECT"}), schema),
        Grant(app, ObjectType.FUNCTION, DB, frozenset({"EXECUTE"}), schema),
        Grant(PUBLIC, ObjectType.SCHEMA, DB, NOTHING, schema),
        Grant(PUBLIC, ObjectType.TABLE, DB, NOTHING, schema),
        Grant(PUBLIC, ObjectType.SEQUENCE, DB, NOTHING, schema),
        Grant(PUBLIC, ObjectType.FUNCTION, DB, NOTHING, schema),
        Grant(owner, ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "extensions"),
        Grant(app, ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "extensions"),
        Grant(readonly, ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "extensions"),
    }


def base_defaults(service: str) -> set[DefaultPrivilege]:
    schema, owner, app, readonly = (f"{service}_{k}" for k in ("schema", "owner", "app", "readonly"))
    return {
        DefaultPrivilege(owner, app, ObjectType.TABLE, DB, SELECT_INSERT_UPDATE_DELETE, schema),
        DefaultPrivilege(owner, readonly, ObjectType.TABLE, DB, frozenset({"SELECT"}), schema),
        DefaultPrivilege(owner, app, ObjectType.SEQUENCE, DB, frozenset({"USAGE", "SELECT"}), schema),
        DefaultPrivilege(owner, readonly, ObjectType.SEQUENCE, DB, frozenset({"SELECT"}), schema),
        DefaultPrivilege(owner, app, ObjectType.FUNCTION, DB, frozenset({"EXECUTE"}), schema),
        # database-wide (no schema): functions the owner creates are not executable by PUBLIC
        DefaultPrivilege(owner, PUBLIC, ObjectType.FUNCTION, DB, NOTHING, None),
    }


def test_a_service_without_personal_data_gets_its_four_roles_exactly() -> None:
    assert set(service_access(FEEDBACK, DB).roles) == base_roles("feedback")


def test_a_service_without_personal_data_gets_exactly_its_grants() -> None:
    access = service_access(FEEDBACK, DB)
    assert set(access.grants) == base_grants("feedback")
    assert len(access.grants) == len(base_grants("feedback"))


def test_a_service_without_personal_data_gets_exactly_its_default_privileges() -> None:
    assert set(service_access(FEEDBACK, DB).default_privileges) == base_defaults("feedback")


def test_a_service_without_personal_data_has_one_membership_the_migrator_in_its_owner() -> None:
    access = service_access(FEEDBACK, DB)
    assert access.memberships == (Membership("feedback_migrator", "feedback_owner"),)
    assert (access.service, access.schema, access.owner) == ("feedback", "feedback_schema", "feedback_owner")


def test_a_service_without_events_or_personal_tables_publishes_nothing_and_is_not_audited() -> None:
    access = service_access(FEEDBACK, DB)
    assert (access.personal_tables, access.publishes_events, access.event_payloads, access.outbox) == (
        (), False, (), None)


def test_a_service_holding_personal_data_adds_the_gdpr_login_and_its_definer() -> None:
    """docs/gdpr.md "Roles": the login runs the contract functions for up to 5 minutes; the definer never logs
    in and bypasses RLS to reach every tenant of a subject."""
    assert set(service_access(PEOPLE, DB).roles) == base_roles("people") | {
        RoleSpec("people_gdpr", "people", RoleKind.GDPR, login=True, connection_limit=2,
                 statement_timeout_ms=300_000, idle_in_transaction_session_timeout_ms=IDLE,
                 search_path=("people_schema",)),
        RoleSpec("people_gdpr_definer", "people", RoleKind.GDPR_DEFINER, login=False, connection_limit=0,
                 bypass_row_level_security=True),
    }


def test_a_service_holding_personal_data_adds_the_gdpr_grants_to_its_own() -> None:
    assert set(service_access(PEOPLE, DB).grants) == base_grants("people") | {
        Grant("people_gdpr", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
        Grant("people_gdpr", ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "people_schema"),
        Grant("people_gdpr_definer", ObjectType.SCHEMA, DB, frozenset({"USAGE", "CREATE"}), "people_schema"),
        Grant("people_gdpr_definer", ObjectType.TABLE, DB, SELECT_UPDATE_DELETE, "people_schema"),
    }


def test_a_service_holding_personal_data_adds_the_gdpr_default_privileges_to_its_own() -> None:
    assert set(service_access(PEOPLE, DB).default_privileges) == base_defaults("people") | {
        DefaultPrivilege("people_owner", "people_gdpr_definer", ObjectType.TABLE, DB, SELECT_UPDATE_DELETE,
                         "people_schema"),
        DefaultPrivilege("people_gdpr_definer", "people_gdpr", ObjectType.FUNCTION, DB, frozenset({"EXECUTE"}),
                         "people_schema"),
        DefaultPrivilege("people_gdpr_definer", PUBLIC, ObjectType.FUNCTION, DB, NOTHING, None),
    }


def test_the_owner_of_a_service_holding_personal_data_is_a_member_of_its_gdpr_definer() -> None:
    assert set(service_access(PEOPLE, DB).memberships) == {
        Membership("people_migrator", "people_owner"), Membership("people_owner", "people_gdpr_definer")}


def test_a_publishing_service_with_personal_tables_carries_its_outbox_payloads_and_audited_tables() -> None:
    access = service_access(PEOPLE, DB)
    assert (access.personal_tables, access.publishes_events, access.outbox) == (
        ("people_profile",), True, "people_outbox")
    assert access.event_payloads == (("person_created", 1, (("person_id", "string"),)),)


def test_the_stacks_idle_timeout_and_extensions_schema_reach_the_service_roles() -> None:
    access = service_access(FEEDBACK, DB, idle_in_transaction_ms=30_000, extensions_schema="shared_ext")
    migrator = access.role("migrator")
    assert (migrator.idle_in_transaction_session_timeout_ms, migrator.search_path) == (
        30_000, ("feedback_schema", "shared_ext"))
    assert {g.role for g in access.grants if g.schema == "shared_ext"} == {
        "feedback_owner", "feedback_app", "feedback_readonly"}


def platform_roles(*, replication: bool, cdc_limit: int, idle: int = IDLE) -> set[RoleSpec]:
    """docs/platform-roles.md: ops (1-minute statements), the data mover and the extraction copy (BYPASSRLS),
    one replication login per purpose, and pgaudit's NOLOGIN object-audit role."""
    return {
        RoleSpec("edumatrix_ops", "edumatrix", PlatformRoleKind.OPS, login=True, connection_limit=3,
                 statement_timeout_ms=60_000, idle_in_transaction_session_timeout_ms=idle),
        RoleSpec("edumatrix_data_mover", "edumatrix", PlatformRoleKind.DATA_MOVER, login=True, connection_limit=4,
                 idle_in_transaction_session_timeout_ms=idle, bypass_row_level_security=True),
        RoleSpec("edumatrix_extraction_replicator", "edumatrix", PlatformRoleKind.EXTRACTION_REPLICATOR, login=True,
                 connection_limit=2, idle_in_transaction_session_timeout_ms=idle, bypass_row_level_security=True,
                 replication=replication),
        RoleSpec("edumatrix_cdc_replicator", "edumatrix", PlatformRoleKind.CDC_REPLICATOR, login=True,
                 connection_limit=cdc_limit, idle_in_transaction_session_timeout_ms=idle, replication=replication),
        RoleSpec("rds_pgaudit", "edumatrix", PlatformRoleKind.AUDITOR, login=False, connection_limit=0),
    }


PLATFORM_MEMBERSHIPS = {
    Membership("edumatrix_ops", "pg_monitor"),
    Membership("edumatrix_data_mover", "pg_read_all_data"),
    Membership("edumatrix_data_mover", "pg_write_all_data"),
    Membership("edumatrix_extraction_replicator", "pg_read_all_data"),
}
PLATFORM_GRANTS = {
    Grant("edumatrix_ops", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
    Grant("edumatrix_data_mover", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
    Grant("edumatrix_extraction_replicator", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
    Grant("edumatrix_cdc_replicator", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
    Grant("edumatrix_ops", ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "extensions"),
}


def test_locally_the_platform_roles_are_declared_exactly_with_the_replication_attribute() -> None:
    """Without publishers and without a stack's idle timeout: the CDC login's floor of 2, the 60 s default."""
    assert set(platform_access(DB, Target.LOCAL).roles) == platform_roles(replication=True, cdc_limit=2)


def test_locally_the_platform_roles_join_only_the_monitoring_and_data_roles() -> None:
    assert set(platform_access(DB, Target.LOCAL).memberships) == PLATFORM_MEMBERSHIPS


def test_on_rds_the_replication_logins_join_rds_replication_instead_of_holding_the_attribute() -> None:
    access = platform_access(DB, Target.RDS)
    assert set(access.roles) == platform_roles(replication=False, cdc_limit=2)
    assert set(access.memberships) == PLATFORM_MEMBERSHIPS | {
        Membership("edumatrix_extraction_replicator", "rds_replication"),
        Membership("edumatrix_cdc_replicator", "rds_replication")}


def test_the_platform_logins_may_connect_and_ops_may_use_the_extensions_schema() -> None:
    assert set(platform_access(DB, Target.RDS).grants) == PLATFORM_GRANTS


def test_the_whole_model_declares_the_database_grants_and_extensions() -> None:
    """PUBLIC loses CONNECT/TEMPORARY on the database and everything on schema `public`; pgcrypto and
    pg_stat_statements go into the shared `extensions` schema, pgaudit has no schema."""
    model = build_access_model(catalog())
    assert set(model.database_grants) == {Grant(PUBLIC, ObjectType.DATABASE, DB, NOTHING),
                                          Grant(PUBLIC, ObjectType.SCHEMA, DB, NOTHING, "public")}
    assert model.extensions == (Extension("pgcrypto", "extensions"), Extension("pgaudit", None),
                                Extension("pg_stat_statements", "extensions"))


def test_the_whole_model_sizes_the_cdc_login_for_each_publishing_service_and_carries_the_stack_settings() -> None:
    """One publisher (people): 3 connections for its connector and a spare."""
    model = build_access_model(catalog(), database="edumatrix", idle_in_transaction_ms=45_000, target=Target.RDS,
                               admin="platform_admin")
    assert set(model.platform.roles) == platform_roles(replication=False, cdc_limit=4, idle=45_000)
    assert (model.target, model.admin, model.database) == (Target.RDS, "platform_admin", "edumatrix")
    assert [s.service for s in model.services] == ["feedback", "people"]


def test_the_audited_tables_are_the_personal_tables_by_schema() -> None:
    assert build_access_model(catalog()).audited_tables() == {"people_schema": frozenset({"people_profile"})}


def test_asking_the_model_for_a_service_it_does_not_hold_names_it() -> None:
    with pytest.raises(KeyError) as caught:
        build_access_model(catalog()).service("billing")
    assert caught.value.args == ("billing",)


def test_a_stack_model_takes_the_master_user_as_its_admin_and_rds_as_its_target() -> None:
    settings = load_stack("dev")
    instance = settings.instance.model_copy(update={"master_username": "platform_admin"})
    model = full_model_for_settings(settings.model_copy(update={"instance": instance}))
    assert (model.admin, model.target) == ("platform_admin", Target.RDS)


def test_the_local_stack_model_targets_the_local_server() -> None:
    assert full_model_for_settings(load_stack("local")).target is Target.LOCAL


@pytest.mark.parametrize(("call", "message"), [
    pytest.param(lambda: build_access_model(catalog(), database="Edu"), f"database name 'Edu' {PLAIN}",
                 id="database"),
    pytest.param(lambda: build_access_model(catalog(), admin="Admin"), f"admin role name 'Admin' {PLAIN}",
                 id="admin"),
    pytest.param(lambda: service_access(FEEDBACK.model_construct(**{**dict(FEEDBACK), "name": "Feedback"}), DB),
                 f"service name 'Feedback' {PLAIN}", id="service"),
])
def test_a_name_that_is_not_a_plain_identifier_is_refused_saying_which_name(
        call: Callable[[], object], message: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        call()
    assert str(caught.value) == message


def with_role(access: ServiceAccess, kind: RoleKind, **changes: Any) -> ServiceAccess:
    # Any: `changes` are RoleSpec fields of several types; dataclasses.replace refuses unknown names at run time
    roles = tuple(dataclasses.replace(r, **changes) if r.kind is kind else r for r in access.roles)
    return dataclasses.replace(access, roles=roles)


def refusal(check: Callable[[A], None], access: A) -> str:
    with pytest.raises(ValueError) as caught:  # noqa: PT011 (the whole message is compared below)
        check(access)
    return str(caught.value)


def test_a_service_role_that_is_not_a_plain_identifier_is_refused() -> None:
    access = with_role(service_access(FEEDBACK, DB), RoleKind.APP, name="Feedback_app")
    assert refusal(check_service_access, access) == f"role name 'Feedback_app' {PLAIN}"


def test_an_owner_that_can_log_in_is_refused() -> None:
    access = with_role(service_access(FEEDBACK, DB), RoleKind.OWNER, login=True)
    assert refusal(check_service_access, access) == "owner role feedback_owner must be NOLOGIN"


def test_a_platform_role_with_two_powers_too_many_is_refused_naming_both() -> None:
    access = platform_access(DB, Target.LOCAL)
    ops = dataclasses.replace(access.role("ops"), superuser=True, create_role=True)
    access = dataclasses.replace(access, roles=(ops, *(r for r in access.roles if r.name != ops.name)))
    assert refusal(check_platform_access, access) == "platform role edumatrix_ops must not have create_role, superuser"


def test_a_platform_role_joining_a_service_role_is_refused() -> None:
    access = platform_access(DB, Target.LOCAL)
    access = dataclasses.replace(access, memberships=(Membership("edumatrix_ops", "feedback_owner"),))
    assert refusal(check_platform_access, access) == (
        "platform role edumatrix_ops may only join predefined roles, not feedback_owner")


@pytest.mark.parametrize(("make", "message"), [
    pytest.param(lambda: Grant("feedback_app", ObjectType.DATABASE, DB, NOTHING, "feedback_schema"),
                 "a database grant has no schema; every other grant names one", id="database-grant-with-schema"),
    pytest.param(lambda: Grant("feedback_app", ObjectType.TABLE, DB, NOTHING),
                 "a database grant has no schema; every other grant names one", id="table-grant-without-schema"),
    pytest.param(lambda: Grant("feedback_app", ObjectType.TABLE, DB, frozenset({"CONNECT", "USAGE"}), "s"),
                 "['CONNECT', 'USAGE'] are not table privileges", id="grant-of-unknown-privileges"),
    pytest.param(lambda: DefaultPrivilege("o", "r", ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "s"),
                 "default privileges for schema are not modelled", id="default-on-schemas"),
    pytest.param(lambda: DefaultPrivilege("o", "r", ObjectType.SEQUENCE, DB, frozenset({"EXECUTE"}), "s"),
                 "['EXECUTE'] are not sequence privileges", id="default-of-unknown-privileges"),
])
def test_a_grant_or_default_the_model_cannot_state_is_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as caught:  # noqa: PT011 (the whole message is compared below)
        make()
    assert str(caught.value) == message


def test_an_access_model_defaults_to_the_local_target_and_the_edumatrix_admin() -> None:
    model = AccessModel(database=DB, services=(), database_grants=(), extensions=())
    assert (model.target, model.admin, model.extensions_schema, model.schemas_owned_by_admin) == (
        Target.LOCAL, "edumatrix_admin", "extensions", ("extensions",))
