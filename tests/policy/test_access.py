"""policy/access.py: roles confined to their schema, no PUBLIC grants, no cluster-wide power, app
statement timeouts, the connection budget."""

import pytest

from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import evaluate
from policy import access
from tests.policy.fixtures import (
    REGION,
    STACK_URN,
    all_services_access,
    by_policy,
    grant,
    parameter_group,
    resource,
    role,
    run,
    service_access,
)

DEFAULT_PRIVILEGES = "postgresql:index/defaultPrivileges:DefaultPrivileges"


def test_every_catalog_service_with_its_own_schema_passes() -> None:
    assert run([*all_services_access(), parameter_group()], policies=access.POLICIES) == []


@pytest.mark.parametrize("bad", [
    grant("feedback-reads-statistics", "feedback_app", "statistics_schema", ["USAGE"]),
    grant("feedback-tables-in-statistics", "feedback_readonly", "statistics_schema", ["SELECT"], "table"),
    grant("public-usage", "public", "feedback_schema", ["USAGE"]),
    grant("public-usage-upper", "PUBLIC", "feedback_schema", ["USAGE"]),
    grant("feedback-in-public-schema", "feedback_app", "public", ["CREATE"]),
    grant("feedback-creates-in-extensions", "feedback_migrator", "extensions", ["CREATE", "USAGE"]),
    grant("feedback-functions-in-extensions", "feedback_app", "extensions", ["EXECUTE"], "function"),
    grant("feedback-create-db", "feedback_app", None, ["CONNECT", "CREATE"], "database"),
    resource(DEFAULT_PRIVILEGES, "statistics-future-tables-to-feedback", {
        "owner": "statistics_owner", "role": "feedback_app", "schema": "statistics_schema",
        "objectType": "table", "privileges": ["SELECT"]}),
    resource(DEFAULT_PRIVILEGES, "public-future-tables", {
        "owner": "feedback_owner", "role": "public", "schema": "feedback_schema", "objectType": "table",
        "privileges": ["SELECT"]}),
    resource("postgresql:index/grantRole:GrantRole", "feedback-member-of-statistics", {
        "role": "feedback_app", "grantRole": "statistics_readonly"}),
    resource("postgresql:index/schema:Schema", "feedback_schema_owned_by_app", {
        "name": "feedback_schema", "owner": "feedback_app"}),
], ids=lambda r: r.name)
def test_crossing_grant_is_reported_with_its_urn_saying_what_crosses(bad: RecordedResource) -> None:
    resources = [*service_access("feedback"), *service_access("statistics"), bad]
    violations = run(resources, policies=access.POLICIES)
    assert by_policy(violations) == {"service-grants-confined": [bad.urn]}
    assert [v.message for v in violations] == [CROSSING[bad.name]]


CROSSING = {
    "feedback-reads-statistics": "grant gives feedback_app USAGE on statistics's schema statistics_schema",
    "feedback-tables-in-statistics": "grant gives feedback_readonly SELECT on statistics's schema statistics_schema",
    "public-usage": "grant gives USAGE to PUBLIC",
    "public-usage-upper": "grant gives USAGE to PUBLIC",
    "feedback-in-public-schema": "grant gives service role feedback_app CREATE on schema public, outside its own "
                                 "feedback_schema",
    "feedback-creates-in-extensions": "grant gives service role feedback_migrator CREATE, USAGE on schema "
                                      "extensions, outside its own feedback_schema",
    "feedback-functions-in-extensions": "grant gives service role feedback_app EXECUTE on schema extensions, outside "
                                        "its own feedback_schema",
    "feedback-create-db": "grant gives feedback_app CREATE on the database (only CONNECT/TEMPORARY)",
    "statistics-future-tables-to-feedback": "default privileges gives feedback_app SELECT on statistics's schema "
                                            "statistics_schema; default privileges makes statistics_owner's future "
                                            "objects available to feedback_app of another service",
    "public-future-tables": "default privileges gives SELECT to PUBLIC",
    "feedback-member-of-statistics": "feedback_app is made a member of statistics_readonly, a role of another service",
    "feedback_schema_owned_by_app": "schema feedback_schema is owned by feedback_app, not feedback_owner",
}


def test_usage_of_the_shared_extensions_schema_is_allowed() -> None:
    usage = grant("feedback-app-uses-extensions", "feedback_app", "extensions", ["USAGE"])
    assert run([*service_access("feedback"), usage], policies=access.POLICIES) == []


def test_the_cdc_login_may_use_the_schema_of_a_service_that_publishes_events() -> None:
    usage = grant("cdc-uses-feedback", "edumatrix_cdc_replicator", "feedback_schema", ["USAGE"])
    assert run([*service_access("feedback"), usage], policies=access.POLICIES) == []


@pytest.mark.parametrize(("schema", "privileges", "object_type"), [
    ("statistics_schema", ["USAGE"], "schema"),  # statistics publishes no events
    ("feedback_schema", ["CREATE", "USAGE"], "schema"),
    ("feedback_schema", ["SELECT"], "table"),  # every table of the schema: only the outbox, granted in SQL
], ids=["non-publishing-schema", "create", "all-tables"])
def test_the_cdc_login_gets_nothing_else_on_service_schemas(schema: str, privileges: list[str],
                                                            object_type: str) -> None:
    bad = grant("cdc-beyond-outbox", "edumatrix_cdc_replicator", schema, privileges, object_type)
    assert by_policy(run([*service_access("feedback"), bad], policies=access.POLICIES)) == {
        "service-grants-confined": [bad.urn]}


def test_a_migrator_may_use_schema_cron_to_schedule_its_own_jobs() -> None:
    usage = grant("feedback-migrator-cron", "feedback_migrator", "cron", ["USAGE"])
    assert run([*service_access("feedback"), usage], policies=access.POLICIES) == []


def test_a_database_grant_beyond_connect_and_temporary_names_each_extra_privilege() -> None:
    bad = grant("feedback-create-db", "feedback_app", None, ["CONNECT", "CREATE", "ALL"], "database")
    assert [v.message for v in run([*service_access("feedback"), bad], policies=access.POLICIES)] == [
        "grant gives feedback_app ALL, CREATE on the database (only CONNECT/TEMPORARY)"]


def test_an_app_role_may_not_use_schema_cron() -> None:
    usage = grant("feedback-app-cron", "feedback_app", "cron", ["USAGE"])
    assert by_policy(run([*service_access("feedback"), usage], policies=access.POLICIES)) == {
        "service-grants-confined": [usage.urn]}


def test_revoking_from_public_is_allowed() -> None:
    revoke = grant("revoke-public-create", "public", "public", [], "schema")
    assert run([*service_access("feedback"), revoke], policies=access.POLICIES) == []


@pytest.mark.parametrize("attribute", ["superuser", "createRole", "createDatabase", "bypassRowLevelSecurity",
                                       "replication"])
def test_service_role_with_cluster_power_is_reported(attribute: str) -> None:
    bad = role("feedback_migrator", connectionLimit=2, **{attribute: True})
    assert by_policy(run([bad], policies=access.POLICIES)) == {"service-role-attributes": [bad.urn]}


@pytest.mark.parametrize(("name", "attribute"), [("edumatrix_extraction_replicator", "replication"),
                                                  ("edumatrix_cdc_replicator", "replication"),
                                                  ("edumatrix_data_mover", "bypassRowLevelSecurity")])
def test_a_platform_role_may_hold_the_one_power_its_purpose_needs(name: str, attribute: str) -> None:
    assert run([role(name, connectionLimit=2, **{attribute: True})], policies=access.POLICIES) == []


@pytest.mark.parametrize(("name", "attribute"), [("edumatrix_ops", "bypassRowLevelSecurity"),
                                                  ("edumatrix_ops", "replication"),
                                                  ("edumatrix_data_mover", "replication"),
                                                  ("edumatrix_cdc_replicator", "superuser")])
def test_a_platform_role_with_a_power_beyond_its_purpose_is_reported(name: str, attribute: str) -> None:
    bad = role(name, connectionLimit=2, **{attribute: True})
    assert by_policy(run([bad], policies=access.POLICIES)) == {"service-role-attributes": [bad.urn]}


def test_a_service_role_with_several_powers_is_told_each_of_them() -> None:
    bad = role("feedback_migrator", connectionLimit=2, superuser=True, createRole=True)
    assert [v.message for v in run([bad], policies=access.POLICIES)] == [
        "service role feedback_migrator has CREATEROLE, SUPERUSER"]


def test_a_platform_role_with_several_powers_beyond_its_purpose_is_told_each_of_them() -> None:
    bad = role("edumatrix_ops", connectionLimit=2, bypassRowLevelSecurity=True, replication=True)
    assert [v.message for v in run([bad], policies=access.POLICIES)] == [
        "platform role edumatrix_ops has BYPASSRLS, REPLICATION, beyond what its purpose (ops) needs"]


def test_a_role_outside_the_access_model_is_reported_even_without_powers() -> None:
    stray = role("extraction_replicator", replication=True)
    assert by_policy(run([stray], policies=access.POLICIES)) == {"service-role-attributes": [stray.urn]}


@pytest.mark.parametrize(("member", "group"), [("feedback_app", "pg_read_all_data"),
                                               ("feedback_readonly", "pg_signal_backend"),
                                               ("edumatrix_ops", "pg_read_all_data"),
                                               ("edumatrix_ops", "feedback_owner")])
def test_a_membership_the_access_model_does_not_give_is_reported(member: str, group: str) -> None:
    bad = resource("postgresql:index/grantRole:GrantRole", f"{member}-in-{group}", {"role": member,
                                                                                    "grantRole": group})
    assert by_policy(run([bad], policies=access.POLICIES)) == {"service-grants-confined": [bad.urn]}


def test_a_platform_roles_membership_beyond_the_access_model_says_the_model_does_not_give_it() -> None:
    bad = resource("postgresql:index/grantRole:GrantRole", "ops-in-read-all", {"role": "edumatrix_ops",
                                                                               "grantRole": "pg_read_all_data"})
    assert [v.message for v in run([bad], policies=access.POLICIES)] == [
        "platform role edumatrix_ops is made a member of pg_read_all_data, which the access model does not give it"]


def test_the_platform_roles_memberships_pass() -> None:
    grants = [resource("postgresql:index/grantRole:GrantRole", f"{m}-in-{g}", {"role": m, "grantRole": g})
              for m, g in (("edumatrix_ops", "pg_monitor"), ("edumatrix_data_mover", "pg_read_all_data"),
                           ("edumatrix_cdc_replicator", "rds_replication"))]
    assert run(grants, policies=access.POLICIES) == []


@pytest.mark.parametrize("timeout", [None, 0, 5001, 30000])
def test_app_role_without_a_five_second_statement_timeout_is_reported(timeout: int | None) -> None:
    app = role("feedback_app", statementTimeout=timeout)
    assert by_policy(run([app], policies=access.POLICIES)) == {"app-role-statement-timeout": [app.urn]}


def test_readonly_role_may_run_longer_statements() -> None:
    assert run([role("feedback_readonly", statementTimeout=30000)], policies=access.POLICIES) == []


def test_connection_limits_over_max_connections_are_reported_against_the_stack() -> None:
    roles = [role("feedback_app", statementTimeout=5000, connectionLimit=600),
             role("statistics_app", statementTimeout=5000, connectionLimit=400)]
    violations = run([*roles, parameter_group(max_connections="1000")], policies=access.POLICIES)
    assert [(v.policy, "pulumi:pulumi:Stack" in v.urn) for v in violations] == [("connection-budget", True)]
    assert "add up to 1000, over the budget of 950" in violations[0].message


def test_connection_limits_within_budget_pass() -> None:
    roles = [role("feedback_app", statementTimeout=5000, connectionLimit=500),
             role("statistics_app", statementTimeout=5000, connectionLimit=450)]
    assert run([*roles, parameter_group(max_connections="1000")], policies=access.POLICIES) == []


def test_budget_uses_configured_max_connections_without_a_parameter_group() -> None:
    roles = [role("feedback_app", statementTimeout=5000, connectionLimit=480)]
    config = {"connection-budget": {"maxConnections": 500, "reservedConnections": 20}}
    assert run(roles, config=config, policies=access.POLICIES) == []
    config = {"connection-budget": {"maxConnections": 500, "reservedConnections": 50}}
    assert by_policy(run(roles, config=config, policies=access.POLICIES)) == {"connection-budget": [
        "urn:pulumi:test::edumatrix-db::pulumi:pulumi:Stack::edumatrix-db-test"]}


def test_login_role_without_connection_limit_is_reported() -> None:
    unlimited = role("feedback_readonly", connectionLimit=-1)
    violations = run([unlimited, parameter_group()], policies=access.POLICIES)
    assert by_policy(violations) == {"connection-budget": [unlimited.urn]}


def test_readonly_and_migrator_connection_limits_count_against_the_budget() -> None:
    app = role("feedback_app", statementTimeout=5000, connectionLimit=900)
    others = [role("feedback_readonly", connectionLimit=30), role("feedback_migrator", connectionLimit=30),
              role("feedback_owner", login=False, connectionLimit=0)]
    assert run([app, parameter_group(max_connections="1000")], policies=access.POLICIES) == []
    violations = run([app, *others, parameter_group(max_connections="1000")], policies=access.POLICIES)
    assert [v.message for v in violations] == [
        "service roles' connection limits add up to 960, over the budget of 950 "
        "(max_connections of parameter group 1000 - 50 reserved)"]


def test_roles_of_no_service_do_not_count_against_the_budget() -> None:
    roles = [role("feedback_app", statementTimeout=5000, connectionLimit=900),
             role("extraction_replicator", replication=True, connectionLimit=500)]
    violations = run([*roles, parameter_group(max_connections="1000")], policies=access.POLICIES)
    assert [v.policy for v in violations if v.policy == "connection-budget"] == []


def test_the_smallest_max_connections_among_the_parameter_groups_is_the_budget() -> None:
    roles = [role("feedback_app", statementTimeout=5000, connectionLimit=500)]
    large, small = parameter_group("large", max_connections="1000"), parameter_group("small", max_connections="500")
    assert run([*roles, large], policies=access.POLICIES) == []
    for groups in ([large, small], [small, large]):
        assert [v.policy for v in run([*roles, *groups], policies=access.POLICIES)] == ["connection-budget"]


# -- membership of rds_password: the logins whose passwords the ops runner rotates -------------------------

def _membership(member: str, granted: str) -> list[str]:
    grant_role = resource("postgresql:index/grantRole:GrantRole", f"{member}-in-{granted}",
                          {"role": member, "grantRole": granted})
    return [v.message for v in run([grant_role], policies=[access.service_grants_confined])]


@pytest.mark.parametrize("member", ["feedback_app", "feedback_readonly", "feedback_gdpr"])
def test_a_rotated_service_login_may_join_rds_password(member: str) -> None:
    assert _membership(member, "rds_password") == []


@pytest.mark.parametrize("member", ["feedback_owner", "feedback_migrator"])
def test_a_service_role_whose_password_is_not_rotated_may_not_join_rds_password(member: str) -> None:
    assert _membership(member, "rds_password") == [
        f"service role {member} is made a member of rds_password, a role outside its service"]


def test_a_rotated_login_may_not_join_another_role_outside_its_service() -> None:
    assert _membership("feedback_app", "rds_superuser") == [
        "service role feedback_app is made a member of rds_superuser, a role outside its service"]


# -- connection budget, message by message ------------------------------------------------------------------

def _budget(resources: list, config: dict | None = None) -> tuple[list[str], dict[str, str]]:
    violations, idle = evaluate(list(resources), {"connection-budget": config or {}}, region=REGION,
                                stack_urn=STACK_URN, policies=[access.connection_budget])
    return [v.message for v in violations], idle


def test_the_budget_policy_has_nothing_to_check_without_service_roles() -> None:
    assert _budget([parameter_group()]) == ([], {"connection-budget": "no service roles in this stack"})


def test_the_budget_policy_says_so_without_max_connections_from_a_group_or_the_config() -> None:
    assert _budget([role("feedback_app", connectionLimit=10)]) == (
        [], {"connection-budget": "no max_connections parameter and no maxConnections config"})


def test_without_a_parameter_group_the_budget_comes_from_the_policy_config() -> None:
    messages, _ = _budget([role("feedback_app", connectionLimit=60)], {"maxConnections": 100})
    assert messages == ["service roles' connection limits add up to 60, over the budget of 50 (maxConnections of "
                        "the policy config 100 - 50 reserved)"]


def test_a_login_role_without_a_limit_is_refused_by_name() -> None:
    messages, _ = _budget([role("feedback_app", connectionLimit=-1)], {"maxConnections": 100})
    assert messages == ["login role feedback_app has no connection limit (-1)"]


def test_a_login_role_whose_limit_is_not_set_at_all_is_refused() -> None:
    unlimited = role("feedback_app")
    del unlimited.props["connectionLimit"]
    assert _budget([unlimited], {"maxConnections": 100})[0] == ["login role feedback_app has no connection limit (-1)"]


def test_a_login_role_limited_to_zero_connections_is_not_unlimited() -> None:
    assert _budget([role("feedback_app", connectionLimit=0)], {"maxConnections": 100})[0] == []


def test_a_limit_of_one_counts_against_the_budget() -> None:
    roles = [role("feedback_app", connectionLimit=50), role("feedback_readonly", connectionLimit=1)]
    assert _budget(roles, {"maxConnections": 100})[0] == [
        "service roles' connection limits add up to 51, over the budget of 50 (maxConnections of the policy config "
        "100 - 50 reserved)"]


def test_the_reserved_connections_come_from_the_policy_config() -> None:
    assert _budget([role("feedback_app", connectionLimit=60)], {"maxConnections": 100,
                                                               "reservedConnections": 40})[0] == []


# -- the app role's statement timeout ---------------------------------------------------------------------------

def _timeout(timeout: object, config: dict | None = None, name: str = "feedback_app") -> list[str]:
    props = {} if timeout is None else {"statementTimeout": timeout}
    found = run([role(name, **props)], config={"app-role-statement-timeout": config or {}},
                policies=[access.app_statement_timeout])
    return [v.message for v in found]


@pytest.mark.parametrize("timeout", [1, 5000])
def test_an_app_timeout_within_one_to_five_seconds_passes(timeout: int) -> None:
    assert _timeout(timeout) == []


def test_an_app_timeout_over_five_seconds_is_refused() -> None:
    assert _timeout(5001) == ["statementTimeout of feedback_app is 5001 ms; must be 1-5000"]


def test_an_app_role_without_a_timeout_is_refused() -> None:
    assert _timeout(None) == ["statementTimeout of feedback_app is unset ms; must be 1-5000"]


def test_the_stack_may_lower_the_app_timeouts_ceiling() -> None:
    assert _timeout(3000, {"maxMs": 2000}) == ["statementTimeout of feedback_app is 3000 ms; must be 1-2000"]


def test_a_readonly_role_is_not_held_to_the_app_timeout() -> None:
    assert _timeout(30000, name="feedback_readonly") == []


def test_a_role_of_no_service_is_not_held_to_it() -> None:
    assert _timeout(30000, name="edumatrix_admin") == []


# -- grants, message by message ------------------------------------------------------------------------------

def _grant_messages(*grants: RecordedResource) -> list[str]:
    return [v.message for v in run(list(grants), policies=[access.service_grants_confined])]


def test_privileges_given_to_public_are_listed() -> None:
    assert _grant_messages(grant("g", "public", "feedback_schema", ["USAGE", "CREATE"])) == [
        "grant gives USAGE, CREATE to PUBLIC"]


def test_privileges_on_another_services_schema_are_listed_with_its_owner() -> None:
    assert _grant_messages(grant("g", "feedback_app", "news_system_schema", ["USAGE", "CREATE"])) == [
        "grant gives feedback_app USAGE, CREATE on news_system's schema news_system_schema"]


def test_database_privileges_beyond_connect_and_temporary_are_listed() -> None:
    assert _grant_messages(grant("g", "feedback_app", None, ["CONNECT", "CREATE", "TEMPORARY"], "database")) == [
        "grant gives feedback_app CREATE on the database (only CONNECT/TEMPORARY)"]


def test_connect_and_temporary_on_the_database_pass() -> None:
    assert _grant_messages(grant("g", "feedback_app", None, ["CONNECT", "TEMPORARY"], "database")) == []


def test_schema_wide_privileges_without_a_schema_are_not_taken_for_database_ones() -> None:
    assert _grant_messages(grant("g", "feedback_app", None, ["CREATE"], "table")) == []


def test_a_role_of_no_service_on_the_database_is_not_judged_here() -> None:
    assert _grant_messages(grant("g", "edumatrix_admin", None, ["CREATE"], "database")) == []


def test_public_made_member_of_a_role_is_reported_on_the_membership() -> None:
    membership = resource("postgresql:index/grantRole:GrantRole", "m", {"role": "public", "grantRole": "feedback_app"})
    violations = run([membership], policies=[access.service_grants_confined])
    assert [(v.message, v.urn) for v in violations] == [("membership in feedback_app is granted to PUBLIC",
                                                         membership.urn)]


def test_a_group_role_without_a_limit_adds_nothing_to_the_budget() -> None:
    roles = [role("feedback_app", connectionLimit=60), role("feedback_owner", login=False, connectionLimit=-1)]
    assert _budget(roles, {"maxConnections": 100})[0] == [
        "service roles' connection limits add up to 60, over the budget of 50 (maxConnections of the policy config "
        "100 - 50 reserved)"]
