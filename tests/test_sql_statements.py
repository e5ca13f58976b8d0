"""What the SQL renderer (edumatrix_db/database/sql.py) runs, statement by statement, for a small access model,
without a server: against an empty database, against one already in line with the model (nothing), and against
each kind of drift (only the repair). The catalog is a stand-in that answers the renderer's read-back questions
(tests/sql_stand_in.py); tests/pg proves on a real PostgreSQL 15 that these statements do what they say."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
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
)
from config.naming import InvalidIdentifier, RoleKind
from config.scram import verifier_matches
from edumatrix_db.database import drift, sql
from tests.sql_stand_in import PLAIN_NOLOGIN, Attributes, CatalogState, StandInConnection

DB = "edumatrix"
TABLE_APP = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})

OWNER = RoleSpec("quiz_owner", "quiz", RoleKind.OWNER, login=False, connection_limit=0)
MIGRATOR = RoleSpec("quiz_migrator", "quiz", RoleKind.MIGRATOR, login=True, connection_limit=2, inherit=False,
                    idle_in_transaction_session_timeout_ms=60_000, search_path=("quiz_schema", "extensions"),
                    assume_role="quiz_owner")
APP = RoleSpec("quiz_app", "quiz", RoleKind.APP, login=True, connection_limit=10, statement_timeout_ms=5000,
               idle_in_transaction_session_timeout_ms=60_000, search_path=("quiz_schema", "extensions"))
DEFINER = RoleSpec("quiz_gdpr_definer", "quiz", RoleKind.GDPR_DEFINER, login=False, connection_limit=0,
                   bypass_row_level_security=True)
OPS = RoleSpec("edumatrix_ops", "edumatrix", PlatformRoleKind.OPS, login=True, connection_limit=3,
               statement_timeout_ms=60_000)
CDC = RoleSpec("edumatrix_cdc_replicator", "edumatrix", PlatformRoleKind.CDC_REPLICATOR, login=True,
               connection_limit=25, idle_in_transaction_session_timeout_ms=60_000, replication=True)
AUDITOR = RoleSpec("rds_pgaudit", "edumatrix", PlatformRoleKind.AUDITOR, login=False, connection_limit=0)

QUIZ = ServiceAccess(
    service="quiz", schema="quiz_schema", owner="quiz_owner", roles=(OWNER, MIGRATOR, APP, DEFINER),
    memberships=(Membership("quiz_migrator", "quiz_owner"), Membership("quiz_owner", "quiz_gdpr_definer")),
    grants=(
        Grant("quiz_app", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),
        Grant("quiz_app", ObjectType.SCHEMA, DB, frozenset({"USAGE"}), "quiz_schema"),
        Grant("quiz_app", ObjectType.TABLE, DB, TABLE_APP, "quiz_schema"),  # object by object: the drift repair's
        Grant("quiz_gdpr_definer", ObjectType.SCHEMA, DB, frozenset({"USAGE", "CREATE"}), "quiz_schema"),
        Grant(PUBLIC, ObjectType.SCHEMA, DB, frozenset(), "quiz_schema"),
    ),
    default_privileges=(
        DefaultPrivilege("quiz_owner", "quiz_app", ObjectType.TABLE, DB, TABLE_APP, "quiz_schema"),
        DefaultPrivilege("quiz_owner", "quiz_app", ObjectType.SEQUENCE, DB, frozenset({"USAGE", "SELECT"}),
                         "quiz_schema"),
        DefaultPrivilege("quiz_owner", PUBLIC, ObjectType.FUNCTION, DB, frozenset()),
    ),
    personal_tables=("quiz_answers",),
    publishes_events=True,
)
MODEL = AccessModel(
    database=DB,
    services=(QUIZ,),
    database_grants=(Grant(PUBLIC, ObjectType.DATABASE, DB, frozenset()),
                     Grant(PUBLIC, ObjectType.SCHEMA, DB, frozenset(), "public")),
    extensions=(Extension("pgcrypto", "extensions"), Extension("pgaudit")),
    platform=PlatformAccess(
        roles=(OPS, CDC, AUDITOR),
        memberships=(Membership("edumatrix_ops", "pg_monitor"),),
        grants=(Grant("edumatrix_cdc_replicator", ObjectType.DATABASE, DB, frozenset({"CONNECT"})),),
    ),
)


def empty_database() -> CatalogState:
    """A new database: PostgreSQL's built-in privileges only (PUBLIC may connect, use `public`, execute)."""
    return CatalogState(
        schemas={"public": "pg_database_owner"},
        privileges={("database", DB, PUBLIC): ["CONNECT", "TEMPORARY"], ("schema", "public", PUBLIC): ["USAGE"]},
        default_privileges={("quiz_owner", None, "f", PUBLIC): ["EXECUTE"]},
    )


def in_line() -> CatalogState:
    """A database that already holds exactly what MODEL says."""
    return CatalogState(
        roles={
            "quiz_owner": (False, True, 0, False, False, False, False, False),
            "quiz_migrator": (True, False, 2, False, False, False, False, False),
            "quiz_app": (True, True, 10, False, False, False, False, False),
            "quiz_gdpr_definer": (False, True, 0, False, False, False, True, False),
            "edumatrix_ops": (True, True, 3, False, False, False, False, False),
            "edumatrix_cdc_replicator": (True, True, 25, False, False, False, False, True),
            "rds_pgaudit": (False, True, 0, False, False, False, False, False),
        },
        settings={
            "quiz_migrator": ["idle_in_transaction_session_timeout=60000", "search_path=quiz_schema, extensions",
                              "role=quiz_owner"],
            "quiz_app": ["statement_timeout=5000", "idle_in_transaction_session_timeout=60000",
                         "search_path=quiz_schema, extensions"],
            "edumatrix_ops": ["statement_timeout=60000"],
            "edumatrix_cdc_replicator": ["idle_in_transaction_session_timeout=60000"],
        },
        memberships={("quiz_migrator", "quiz_owner"), ("quiz_owner", "quiz_gdpr_definer"),
                     ("edumatrix_ops", "pg_monitor")},
        acts_as={"quiz_owner"},
        schemas={"public": "pg_database_owner", "extensions": "edumatrix_admin", "quiz_schema": "quiz_owner"},
        extensions={"pgcrypto", "pgaudit"},
        privileges={
            ("database", DB, "quiz_app"): ["CONNECT"],
            ("database", DB, "edumatrix_cdc_replicator"): ["CONNECT"],
            ("schema", "quiz_schema", "quiz_app"): ["USAGE"],
            ("schema", "quiz_schema", "quiz_gdpr_definer"): ["CREATE", "USAGE"],
            ("schema", "quiz_schema", "edumatrix_cdc_replicator"): ["USAGE"],
        },
        default_privileges={
            ("quiz_owner", "quiz_schema", "r", "quiz_app"): ["DELETE", "INSERT", "SELECT", "UPDATE"],
            ("quiz_owner", "quiz_schema", "S", "quiz_app"): ["SELECT", "USAGE"],
        },
    )


def drifted(change: Callable[[CatalogState], object]) -> CatalogState:
    state = in_line()
    change(state)
    return state


@dataclass
class ReadBack:
    """The catalog read-backs `apply` makes (before its repairs and after) and the drift each one shows."""

    rounds: list[list[drift.Drift]] = field(default_factory=lambda: [[], []])
    reads: list[tuple[Any, AccessModel]] = field(default_factory=list)
    judged: list[tuple[object, AccessModel]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def read_back(monkeypatch: pytest.MonkeyPatch) -> ReadBack:
    """drift.py judges a snapshot of the whole catalog (proven on a real server by tests/pg/test_findings.py);
    here each read-back is a token and the drift it shows is what the test says."""
    script = ReadBack()

    def read_catalog(conn: Any, model: AccessModel) -> object:
        script.reads.append((conn, model))
        return f"snapshot {len(script.reads)}"

    def evaluate(snapshot: object, model: AccessModel) -> list[drift.Drift]:
        script.judged.append((snapshot, model))
        return list(script.rounds[len(script.judged) - 1])

    monkeypatch.setattr(sql, "read_catalog", read_catalog)
    monkeypatch.setattr(drift, "evaluate", evaluate)
    return script


def apply(state: CatalogState, model: AccessModel = MODEL, **options: Any) -> tuple[sql.ApplyReport, StandInConnection]:
    conn = StandInConnection(state)
    return sql.apply(conn, model, **options), conn  # type: ignore[arg-type]


# -- a new database: every statement, in order -----------------------------------------------------------------
EMPTY_DATABASE_STATEMENTS = [
    'CREATE ROLE "quiz_owner" CONNECTION LIMIT 0',
    'CREATE ROLE "quiz_migrator" LOGIN NOINHERIT CONNECTION LIMIT 2',
    "ALTER ROLE \"quiz_migrator\" SET \"idle_in_transaction_session_timeout\" TO '60000'",
    'ALTER ROLE "quiz_migrator" SET "search_path" TO "quiz_schema", "extensions"',
    "ALTER ROLE \"quiz_migrator\" SET \"role\" TO 'quiz_owner'",
    'CREATE ROLE "quiz_app" LOGIN CONNECTION LIMIT 10',
    "ALTER ROLE \"quiz_app\" SET \"statement_timeout\" TO '5000'",
    "ALTER ROLE \"quiz_app\" SET \"idle_in_transaction_session_timeout\" TO '60000'",
    'ALTER ROLE "quiz_app" SET "search_path" TO "quiz_schema", "extensions"',
    'CREATE ROLE "quiz_gdpr_definer" CONNECTION LIMIT 0 BYPASSRLS',
    'CREATE ROLE "edumatrix_ops" LOGIN CONNECTION LIMIT 3',
    "ALTER ROLE \"edumatrix_ops\" SET \"statement_timeout\" TO '60000'",
    'CREATE ROLE "edumatrix_cdc_replicator" LOGIN CONNECTION LIMIT 25 REPLICATION',
    "ALTER ROLE \"edumatrix_cdc_replicator\" SET \"idle_in_transaction_session_timeout\" TO '60000'",
    'CREATE ROLE "rds_pgaudit" CONNECTION LIMIT 0',
    'GRANT "quiz_owner" TO "quiz_migrator"',
    'GRANT "quiz_gdpr_definer" TO "quiz_owner"',
    'GRANT "pg_monitor" TO "edumatrix_ops"',
    'GRANT "quiz_owner" TO "edumatrix_admin"',
    'CREATE SCHEMA "extensions"',
    'CREATE EXTENSION IF NOT EXISTS "pgcrypto" SCHEMA "extensions"',
    'CREATE EXTENSION IF NOT EXISTS "pgaudit"',
    'REVOKE ALL ON DATABASE "edumatrix" FROM PUBLIC',
    'REVOKE ALL ON SCHEMA "public" FROM PUBLIC',
    'REVOKE ALL ON DATABASE "edumatrix" FROM "edumatrix_cdc_replicator"',
    'GRANT CONNECT ON DATABASE "edumatrix" TO "edumatrix_cdc_replicator"',
    'CREATE SCHEMA "quiz_schema" AUTHORIZATION "quiz_owner"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" REVOKE ALL ON TABLES FROM "quiz_app"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" GRANT DELETE, INSERT, SELECT, UPDATE '
    'ON TABLES TO "quiz_app"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" REVOKE ALL ON SEQUENCES FROM "quiz_app"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" GRANT SELECT, USAGE ON SEQUENCES '
    'TO "quiz_app"',
    'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" REVOKE ALL ON FUNCTIONS FROM PUBLIC',
    'REVOKE ALL ON DATABASE "edumatrix" FROM "quiz_app"',
    'GRANT CONNECT ON DATABASE "edumatrix" TO "quiz_app"',
    'REVOKE ALL ON SCHEMA "quiz_schema" FROM "quiz_app"',
    'GRANT USAGE ON SCHEMA "quiz_schema" TO "quiz_app"',
    'REVOKE ALL ON SCHEMA "quiz_schema" FROM "quiz_gdpr_definer"',
    'GRANT CREATE, USAGE ON SCHEMA "quiz_schema" TO "quiz_gdpr_definer"',
    'REVOKE ALL ON SCHEMA "quiz_schema" FROM "edumatrix_cdc_replicator"',
    'GRANT USAGE ON SCHEMA "quiz_schema" TO "edumatrix_cdc_replicator"',
]
RESERVED_TO_SUPERUSERS = [
    'CREATE ROLE "quiz_gdpr_definer" CONNECTION LIMIT 0 BYPASSRLS',
    'CREATE ROLE "edumatrix_cdc_replicator" LOGIN CONNECTION LIMIT 25 REPLICATION',
]


def test_a_new_database_gets_the_whole_model_in_order_roles_memberships_schemas_extensions_grants() -> None:
    report, _ = apply(empty_database())
    assert report.changes == EMPTY_DATABASE_STATEMENTS


def test_every_statement_for_a_new_database_runs_on_the_applying_connection_without_a_superuser_one() -> None:
    _, conn = apply(empty_database())
    assert conn.statements == EMPTY_DATABASE_STATEMENTS


def test_roles_with_attributes_reserved_to_superusers_are_created_through_the_privileged_connection() -> None:
    privileged = StandInConnection()
    report, conn = apply(empty_database(), privileged=privileged)
    assert privileged.statements == RESERVED_TO_SUPERUSERS
    assert conn.statements == [s for s in EMPTY_DATABASE_STATEMENTS if s not in RESERVED_TO_SUPERUSERS]
    assert report.changes == EMPTY_DATABASE_STATEMENTS


def test_every_role_exists_before_the_first_grant_and_each_schema_before_its_privileges() -> None:
    report, _ = apply(empty_database())
    first = {kind: next(i for i, s in enumerate(report.changes) if s.startswith(kind))
             for kind in ("GRANT", "ALTER DEFAULT PRIVILEGES", "CREATE EXTENSION")}
    last_role = max(i for i, s in enumerate(report.changes) if s.startswith("CREATE ROLE"))
    assert last_role < first["GRANT"]
    assert report.changes.index('CREATE SCHEMA "extensions"') < first["CREATE EXTENSION"]
    assert report.changes.index('CREATE SCHEMA "quiz_schema" AUTHORIZATION "quiz_owner"') < first[
        "ALTER DEFAULT PRIVILEGES"]


def test_a_new_database_leaves_nothing_to_report_but_changes() -> None:
    report, _ = apply(empty_database())
    assert (report.orphans, report.dropped, report.warnings, report.findings) == ([], [], [], [])
    assert report.changed


# -- a database in line with the model: nothing ----------------------------------------------------------------
def test_a_database_in_line_with_the_model_gets_no_statement() -> None:
    report, conn = apply(in_line())
    assert conn.statements == []
    assert report.changes == []
    assert not report.changed


def test_apply_refuses_a_connection_to_another_database_before_any_statement() -> None:
    conn = StandInConnection(replace(in_line(), database="postgres"))
    with pytest.raises(ValueError, match=r"^connected to 'postgres', the model is for 'edumatrix'$"):
        sql.apply(conn, MODEL)  # type: ignore[arg-type]
    assert conn.statements == []


# -- roles: only what drifted ------------------------------------------------------------------------------------
def _set_role(name: str, attributes: Attributes) -> Callable[[CatalogState], None]:
    return lambda state: state.roles.__setitem__(name, attributes)


@pytest.mark.parametrize(("attributes", "statement"), [
    pytest.param((False, False, 99, False, True, True, False, False),
                 'ALTER ROLE "quiz_app" LOGIN INHERIT CONNECTION LIMIT 10 NOCREATEDB NOCREATEROLE',
                 id="login-inherit-limit-createdb-createrole"),
    pytest.param((True, True, -1, False, False, False, False, False),
                 'ALTER ROLE "quiz_app" CONNECTION LIMIT 10', id="connection-limit-only"),
])
def test_a_drifted_role_is_altered_in_only_the_attributes_that_differ(attributes: Attributes,
                                                                      statement: str) -> None:
    report, _ = apply(drifted(_set_role("quiz_app", attributes)))
    assert report.changes == [statement]


@pytest.mark.parametrize(("role", "attributes", "statement"), [
    pytest.param("quiz_app", (True, True, 10, True, False, False, False, False),
                 'ALTER ROLE "quiz_app" NOSUPERUSER', id="has-superuser"),
    pytest.param("quiz_app", (True, True, 10, False, False, False, True, False),
                 'ALTER ROLE "quiz_app" NOBYPASSRLS', id="has-bypassrls"),
    pytest.param("quiz_app", (True, True, 10, False, False, False, False, True),
                 'ALTER ROLE "quiz_app" NOREPLICATION', id="has-replication"),
    pytest.param("quiz_gdpr_definer", (False, True, 0, False, False, False, False, False),
                 'ALTER ROLE "quiz_gdpr_definer" BYPASSRLS', id="lacks-bypassrls"),
    pytest.param("edumatrix_cdc_replicator", (True, True, 25, False, False, False, False, False),
                 'ALTER ROLE "edumatrix_cdc_replicator" REPLICATION', id="lacks-replication"),
])
def test_a_role_that_has_or_needs_a_superuser_attribute_is_altered_through_the_privileged_connection(
        role: str, attributes: Attributes, statement: str) -> None:
    privileged = StandInConnection()
    report, conn = apply(drifted(_set_role(role, attributes)), privileged=privileged)
    assert (privileged.statements, conn.statements, report.changes) == ([statement], [], [statement])


def test_without_a_privileged_connection_a_refused_superuser_attribute_is_a_warning_naming_the_statement() -> None:
    statement = 'ALTER ROLE "quiz_app" NOSUPERUSER'
    conn = StandInConnection(drifted(_set_role("quiz_app", (True, True, 10, True, False, False, False, False))),
                             refuse={statement: psycopg.errors.InsufficientPrivilege("permission denied")})
    report = sql.apply(conn, MODEL)  # type: ignore[arg-type]
    assert report.warnings == [f"quiz_app: permission denied (a superuser must run: {statement})"]
    assert (report.changes, conn.statements) == ([], [])


def test_a_refused_change_of_an_ordinary_attribute_fails_the_apply() -> None:
    statement = 'ALTER ROLE "quiz_app" CONNECTION LIMIT 10'
    conn = StandInConnection(drifted(_set_role("quiz_app", (True, True, 99, False, False, False, False, False))),
                             refuse={statement: psycopg.errors.InsufficientPrivilege("permission denied")})
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        sql.apply(conn, MODEL)  # type: ignore[arg-type]


def test_a_role_modelled_with_every_attribute_is_created_with_each_through_the_privileged_connection() -> None:
    powerful = replace(AUDITOR, login=True, connection_limit=1, inherit=False, superuser=True, create_database=True,
                       create_role=True, bypass_row_level_security=True, replication=True)
    model = replace(MODEL, platform=replace(MODEL.platform, roles=(OPS, CDC, powerful)))
    privileged = StandInConnection()
    apply(drifted(lambda state: state.roles.pop("rds_pgaudit")), model, privileged=privileged)
    assert privileged.statements == ['CREATE ROLE "rds_pgaudit" LOGIN NOINHERIT CONNECTION LIMIT 1 SUPERUSER CREATEDB '
                                     'CREATEROLE BYPASSRLS REPLICATION']


def test_a_role_that_may_no_longer_log_in_is_altered_nologin() -> None:
    report, _ = apply(drifted(_set_role("quiz_owner", (True, True, 0, False, False, False, False, False))))
    assert report.changes == ['ALTER ROLE "quiz_owner" NOLOGIN']


def test_a_missing_role_without_modelled_attributes_is_created_nologin() -> None:
    bare = replace(AUDITOR, connection_limit=-1)
    model = replace(MODEL, platform=replace(MODEL.platform, roles=(OPS, CDC, bare)))
    report, _ = apply(drifted(lambda state: state.roles.pop("rds_pgaudit")), model)
    assert report.changes == ['CREATE ROLE "rds_pgaudit" NOLOGIN']


def _set_settings(role: str, settings: list[str]) -> Callable[[CatalogState], None]:
    return lambda state: state.settings.__setitem__(role, settings)


@pytest.mark.parametrize(("settings", "statements"), [
    pytest.param(["statement_timeout=60000", "idle_in_transaction_session_timeout=60000",
                  "search_path=quiz_schema, extensions"],
                 ["ALTER ROLE \"quiz_app\" SET \"statement_timeout\" TO '5000'"], id="changed-value"),
    pytest.param(["statement_timeout=5000", "idle_in_transaction_session_timeout=60000"],
                 ['ALTER ROLE "quiz_app" SET "search_path" TO "quiz_schema", "extensions"'], id="missing"),
    pytest.param(["work_mem=64MB", "statement_timeout=5000", "application_name=quiz=drifted", "lock_timeout=100",
                  "idle_in_transaction_session_timeout=60000", "search_path=quiz_schema, extensions"],
                 ['ALTER ROLE "quiz_app" RESET "application_name"', 'ALTER ROLE "quiz_app" RESET "lock_timeout"',
                  'ALTER ROLE "quiz_app" RESET "work_mem"'],
                 id="extra-settings-reset-by-name-in-order"),
    pytest.param([], ["ALTER ROLE \"quiz_app\" SET \"statement_timeout\" TO '5000'",
                      "ALTER ROLE \"quiz_app\" SET \"idle_in_transaction_session_timeout\" TO '60000'",
                      'ALTER ROLE "quiz_app" SET "search_path" TO "quiz_schema", "extensions"'], id="none-set"),
])
def test_drifted_role_settings_are_set_or_reset_one_by_one(settings: list[str], statements: list[str]) -> None:
    report, _ = apply(drifted(_set_settings("quiz_app", settings)))
    assert report.changes == statements


def test_a_drifted_login_role_setting_is_set_back_to_the_role_name() -> None:
    report, _ = apply(drifted(_set_settings("quiz_migrator", [
        "idle_in_transaction_session_timeout=60000", "search_path=quiz_schema, extensions", "role=quiz_app"])))
    assert report.changes == ["ALTER ROLE \"quiz_migrator\" SET \"role\" TO 'quiz_owner'"]


def _with_app(app: RoleSpec) -> AccessModel:
    return replace(MODEL, services=(replace(QUIZ, roles=(OWNER, MIGRATOR, app, DEFINER)),))


def test_a_setting_value_that_is_not_a_number_is_refused_before_it_is_rendered() -> None:
    conn = StandInConnection(in_line())
    with pytest.raises(ValueError, match=r"^unexpected value '-1' for statement_timeout$"):
        sql.apply(conn, _with_app(replace(APP, statement_timeout_ms=-1)))  # type: ignore[arg-type]
    assert conn.statements == []


def test_a_login_role_setting_that_is_not_an_identifier_is_refused_before_it_is_rendered() -> None:
    conn = StandInConnection(in_line())
    hostile = "quiz_owner'; DROP ROLE quiz_app; --"
    with pytest.raises(InvalidIdentifier, match=re.escape(f"role setting {hostile!r} is not a plain")):
        sql.apply(conn, _with_app(replace(APP, assume_role=hostile)))  # type: ignore[arg-type]
    assert conn.statements == []


def test_a_search_path_entry_that_is_not_an_identifier_is_refused_before_it_is_rendered() -> None:
    conn = StandInConnection(in_line())
    with pytest.raises(InvalidIdentifier):
        sql.apply(conn, _with_app(replace(APP, search_path=('quiz_schema", "pg_temp',))))  # type: ignore[arg-type]
    assert conn.statements == []


# -- the admin acts as each service owner ------------------------------------------------------------------------
def test_the_admin_joins_a_service_owner_it_cannot_act_as_under_its_own_name() -> None:
    state = replace(in_line(), acts_as=set(), current_user="rds_master")
    report, _ = apply(state)
    assert report.changes == ['GRANT "quiz_owner" TO "rds_master"']


def test_a_superuser_admin_joins_no_owner_role() -> None:
    report, _ = apply(replace(in_line(), acts_as=set(), superuser=True))
    assert report.changes == []


# -- schemas -----------------------------------------------------------------------------------------------------
def test_a_service_schema_owned_by_another_role_is_given_back_to_its_owner() -> None:
    report, _ = apply(drifted(lambda state: state.schemas.__setitem__("quiz_schema", "quiz_app")))
    assert report.changes == ['ALTER SCHEMA "quiz_schema" OWNER TO "quiz_owner"']


def test_the_extensions_schema_keeps_whatever_owner_it_has() -> None:
    report, _ = apply(drifted(lambda state: state.schemas.__setitem__("extensions", "someone_else")))
    assert report.changes == []


# -- extensions --------------------------------------------------------------------------------------------------
def test_an_extension_the_server_does_not_ship_is_a_warning_not_a_statement() -> None:
    def without_pgaudit(state: CatalogState) -> None:
        state.extensions.discard("pgaudit")
        state.available.discard("pgaudit")

    report, conn = apply(drifted(without_pgaudit))
    assert report.warnings == ["extension pgaudit is not available on this server: not installed"]
    assert conn.statements == []


def test_a_missing_extension_is_created_in_its_schema() -> None:
    report, _ = apply(drifted(lambda state: state.extensions.discard("pgcrypto")))
    assert report.changes == ['CREATE EXTENSION IF NOT EXISTS "pgcrypto" SCHEMA "extensions"']


# -- grants and default privileges -------------------------------------------------------------------------------
def _set_privileges(key: tuple[str, str, str], privileges: list[str]) -> Callable[[CatalogState], None]:
    return lambda state: state.privileges.__setitem__(key, privileges)


@pytest.mark.parametrize(("key", "privileges", "statements"), [
    pytest.param(("schema", "quiz_schema", "quiz_app"), ["CREATE", "USAGE"],
                 ['REVOKE ALL ON SCHEMA "quiz_schema" FROM "quiz_app"',
                  'GRANT USAGE ON SCHEMA "quiz_schema" TO "quiz_app"'], id="schema-privilege-beyond-the-model"),
    pytest.param(("schema", "quiz_schema", PUBLIC), ["USAGE"],
                 ['REVOKE ALL ON SCHEMA "quiz_schema" FROM PUBLIC'], id="public-given-what-the-model-denies"),
    pytest.param(("database", DB, PUBLIC), ["CONNECT"],
                 ['REVOKE ALL ON DATABASE "edumatrix" FROM PUBLIC'], id="public-connect-back"),
    pytest.param(("database", DB, "quiz_app"), [],
                 ['REVOKE ALL ON DATABASE "edumatrix" FROM "quiz_app"',
                  'GRANT CONNECT ON DATABASE "edumatrix" TO "quiz_app"'], id="connect-revoked-by-hand"),
    pytest.param(("schema", "public", PUBLIC), ["CREATE", "USAGE"],
                 ['REVOKE ALL ON SCHEMA "public" FROM PUBLIC'], id="public-schema-opened"),
])
def test_a_drifted_grant_is_revoked_and_granted_again_as_modelled(
        key: tuple[str, str, str], privileges: list[str], statements: list[str]) -> None:
    report, _ = apply(drifted(_set_privileges(key, privileges)))
    assert report.changes == statements


def _set_defaults(key: tuple[str, str | None, str, str], privileges: list[str]) -> Callable[[CatalogState], None]:
    return lambda state: state.default_privileges.__setitem__(key, privileges)


@pytest.mark.parametrize(("key", "privileges", "statements"), [
    pytest.param(("quiz_owner", "quiz_schema", "r", "quiz_app"), ["SELECT", "TRUNCATE"], [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" REVOKE ALL ON TABLES FROM "quiz_app"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" GRANT DELETE, INSERT, SELECT, '
        'UPDATE ON TABLES TO "quiz_app"'], id="tables"),
    pytest.param(("quiz_owner", "quiz_schema", "S", "quiz_app"), ["SELECT"], [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" REVOKE ALL ON SEQUENCES FROM '
        '"quiz_app"',
        'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" IN SCHEMA "quiz_schema" GRANT SELECT, USAGE ON SEQUENCES '
        'TO "quiz_app"'], id="sequences"),
    pytest.param(("quiz_owner", None, "f", PUBLIC), ["EXECUTE"], [
        'ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_owner" REVOKE ALL ON FUNCTIONS FROM PUBLIC'],
        id="functions-database-wide"),
])
def test_drifted_default_privileges_are_revoked_and_granted_again_as_modelled(
        key: tuple[str, str | None, str, str], privileges: list[str], statements: list[str]) -> None:
    report, _ = apply(drifted(_set_defaults(key, privileges)))
    assert report.changes == statements


def test_grants_on_the_objects_inside_a_schema_are_left_to_the_drift_repair() -> None:
    table_grants_only = replace(QUIZ, grants=tuple(g for g in QUIZ.grants if g.object_type is ObjectType.TABLE))
    report, _ = apply(in_line(), replace(MODEL, services=(table_grants_only,)))
    assert report.changes == []


# -- hostile names never reach the database ----------------------------------------------------------------------
@pytest.mark.parametrize("model", [
    pytest.param(replace(MODEL, services=(replace(QUIZ, schema='quiz_schema"; DROP SCHEMA x; --'),)), id="schema"),
    pytest.param(replace(MODEL, extensions=(Extension("pgcrypto", "ext ensions"),)), id="extension-schema"),
    pytest.param(replace(MODEL, extensions=(Extension("Pgcrypto"),)), id="extension"),
    pytest.param(replace(MODEL, services=(replace(QUIZ, memberships=(Membership("quiz_app", "pg_read_server_files"),
                                                                     )),)), id="membership-group"),
])
def test_a_hostile_name_in_the_model_is_refused_before_its_statement_runs(model: AccessModel) -> None:
    conn = StandInConnection(replace(empty_database(), available={"Pgcrypto", "pgcrypto"}))
    with pytest.raises(InvalidIdentifier):
        sql.apply(conn, model)  # type: ignore[arg-type]
    assert not any("DROP" in s or "ext ensions" in s or "Pgcrypto" in s or "pg_read_server_files" in s
                   for s in conn.statements)


# -- services that left the catalog ------------------------------------------------------------------------------
def with_orphan(state: CatalogState) -> None:
    """`survey` left the catalog; `shared_schema` looks like a service schema but is not owned by `shared_owner`
    (both come after `quiz_schema`, which is the model's)."""
    state.schemas.update({"survey_schema": "survey_owner", "shared_schema": "edumatrix_admin"})
    state.roles.update({f"survey_{kind}": PLAIN_NOLOGIN for kind in ("owner", "app", "readonly")})
    state.roles["surveyor"] = PLAIN_NOLOGIN


def test_a_service_that_left_the_catalog_is_reported_with_its_roles_and_left_alone() -> None:
    report, conn = apply(drifted(with_orphan))
    assert report.orphans == ["schema survey_schema (roles: survey_app, survey_owner, survey_readonly)"]
    assert (report.dropped, conn.statements) == ([], [])


def test_destructive_apply_drops_the_schema_then_what_its_roles_own_then_the_roles() -> None:
    report, conn = apply(drifted(with_orphan), destructive=True)
    assert report.dropped == [
        'DROP SCHEMA "survey_schema" CASCADE',
        'DROP OWNED BY "survey_app"', 'DROP OWNED BY "survey_owner"', 'DROP OWNED BY "survey_readonly"',
        'DROP ROLE "survey_app"', 'DROP ROLE "survey_owner"', 'DROP ROLE "survey_readonly"',
    ]
    assert report.changes == ['GRANT "survey_app" TO "edumatrix_admin"', 'GRANT "survey_owner" TO "edumatrix_admin"',
                              'GRANT "survey_readonly" TO "edumatrix_admin"']
    assert conn.statements == report.changes + report.dropped
    assert report.changed


# -- drift repair ----------------------------------------------------------------------------------------------
CREATE_ON_SCHEMA = drift.Drift(
    rule="grant", service="quiz", object="schema quiz_schema", message="quiz_app holds CREATE", fix="revoke it",
    repair=('REVOKE CREATE ON SCHEMA "quiz_schema" FROM "quiz_app"',))
FOREIGN = drift.Drift(rule="grant", service="quiz", object="table quiz_schema.answers",
                      message="survey_app holds SELECT", fix="revoke it", foreign=True,
                      repair=('REVOKE SELECT ON TABLE "quiz_schema"."answers" FROM "survey_app"',))
DEFAULTS = drift.Drift(rule="default", service="quiz", object="default privileges of quiz_owner",
                       message="quiz_readonly gets TRUNCATE", fix="revoke it", act_as="quiz_gdpr_definer",
                       repair=('ALTER DEFAULT PRIVILEGES FOR ROLE "quiz_gdpr_definer" REVOKE TRUNCATE ON TABLES '
                               'FROM "quiz_readonly"',))
NAMING = drift.Drift(rule="naming", service="quiz", object="table quiz_schema.Answers", message="not plain",
                     fix="rename it")


def test_drift_is_repaired_with_its_statements_and_what_remains_is_the_second_read_back(read_back: ReadBack) -> None:
    read_back.rounds = [[NAMING, CREATE_ON_SCHEMA], [NAMING]]
    report, conn = apply(in_line())
    assert conn.statements == report.changes == ['REVOKE CREATE ON SCHEMA "quiz_schema" FROM "quiz_app"']
    assert report.findings == [NAMING]
    assert read_back.reads == [(conn, MODEL), (conn, MODEL)]
    assert read_back.judged == [("snapshot 1", MODEL), ("snapshot 2", MODEL)]


def test_a_foreign_grant_is_left_in_place_and_reported_unless_told_to_revoke(read_back: ReadBack) -> None:
    read_back.rounds = [[FOREIGN], [FOREIGN]]
    report, conn = apply(in_line())
    assert conn.statements == []
    assert report.skipped_foreign == [FOREIGN]


def test_a_foreign_grant_is_revoked_when_told_to(read_back: ReadBack) -> None:
    read_back.rounds = [[FOREIGN], []]
    report, conn = apply(in_line(), revoke_foreign=True)
    assert conn.statements == report.changes == list(FOREIGN.repair)
    assert report.skipped_foreign == []


def test_a_repair_that_needs_a_role_runs_between_joining_and_leaving_it(read_back: ReadBack) -> None:
    read_back.rounds = [[DEFAULTS], []]
    report, conn = apply(in_line())
    assert conn.statements == ['GRANT "quiz_gdpr_definer" TO "edumatrix_admin"', *DEFAULTS.repair,
                               'REVOKE "quiz_gdpr_definer" FROM "edumatrix_admin"']
    assert report.changes == list(DEFAULTS.repair)


@pytest.mark.parametrize("admin", [
    pytest.param(lambda state: state.acts_as.add("quiz_gdpr_definer"), id="already-a-member"),
    pytest.param(lambda state: setattr(state, "superuser", True), id="superuser"),
])
def test_a_repair_that_needs_a_role_the_admin_can_already_act_as_joins_nothing(
        read_back: ReadBack, admin: Callable[[CatalogState], None]) -> None:
    read_back.rounds = [[DEFAULTS], []]
    _, conn = apply(drifted(admin))
    assert conn.statements == list(DEFAULTS.repair)


def test_a_failed_repair_is_rolled_back_and_warned_about_and_the_others_still_run(read_back: ReadBack) -> None:
    failing = replace(CREATE_ON_SCHEMA, repair=('REVOKE USAGE ON SCHEMA "quiz_schema" FROM "quiz_app"',
                                                'REVOKE CREATE ON SCHEMA "quiz_schema" FROM "quiz_app"'))
    read_back.rounds = [[failing, FOREIGN], [failing]]
    conn = StandInConnection(in_line(), refuse={failing.repair[1]: psycopg.errors.InsufficientPrivilege(
        "permission denied for schema quiz_schema")})
    report = sql.apply(conn, MODEL, revoke_foreign=True)  # type: ignore[arg-type]
    assert report.warnings == ["could not repair schema quiz_schema (quiz_app holds CREATE): permission denied for "
                               "schema quiz_schema"]
    assert conn.statements == report.changes == list(FOREIGN.repair)


def test_a_failed_repair_that_needed_a_role_warns_with_its_own_error_and_leaves_the_role(read_back: ReadBack) -> None:
    read_back.rounds = [[DEFAULTS], [DEFAULTS]]
    conn = StandInConnection(in_line(), refuse={DEFAULTS.repair[0]: psycopg.errors.UndefinedObject(
        'role "quiz_readonly" does not exist')})
    report = sql.apply(conn, MODEL)  # type: ignore[arg-type]
    assert report.warnings == ["could not repair default privileges of quiz_owner (quiz_readonly gets TRUNCATE): "
                               'role "quiz_readonly" does not exist']
    assert conn.statements == report.changes == []


# -- passwords -------------------------------------------------------------------------------------------------
def test_a_password_is_set_as_a_scram_verifier_of_it_and_never_in_clear() -> None:
    conn = StandInConnection()
    sql.set_password(conn, "quiz_app", "correct horse battery staple")  # type: ignore[arg-type]
    [statement] = conn.statements
    found = re.fullmatch(r"ALTER ROLE \"quiz_app\" PASSWORD '(SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+"
                         r":[A-Za-z0-9+/=]+)'", statement)
    assert found is not None, statement
    assert verifier_matches(found[1], "correct horse battery staple")
    assert "horse" not in statement


def test_a_password_for_a_hostile_role_name_is_refused_before_it_is_sent() -> None:
    conn = StandInConnection()
    with pytest.raises(InvalidIdentifier):
        sql.set_password(conn, 'quiz_app" SUPERUSER; --', "pw")  # type: ignore[arg-type]
    assert conn.statements == []
