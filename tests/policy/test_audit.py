"""policy/audit.py: pgaudit preloaded with ddl and role, slow queries and DDL logged."""

from typing import Any

import pytest

from policy import audit
from tests.policy.fixtures import MISSING, by_policy, parameter_group, run


def test_platform_parameters_pass_the_audit_policies() -> None:
    assert run([parameter_group()], policies=audit.POLICIES) == []


@pytest.mark.parametrize(("policy", "overrides"), [
    ("rds-pgaudit", {"shared_preload_libraries": "pg_stat_statements"}),
    ("rds-pgaudit", {"pgaudit.log": "ddl"}),
    ("rds-query-logging", {"log_min_duration_statement": "-1"}),
    ("rds-query-logging", {"log_min_duration_statement": MISSING}),
    ("rds-query-logging", {"log_min_duration_statement": "5000"}),
], ids=["pgaudit-not-preloaded", "pgaudit-without-role", "duration-off", "duration-unset", "duration-over-max"])
def test_violating_parameter_group_is_reported_by_that_policy_only(policy: str, overrides: dict[str, Any]) -> None:
    group = parameter_group(**overrides)
    assert by_policy(run([group], policies=audit.POLICIES)) == {policy: [group.urn]}


def test_pgaudit_log_all_covers_ddl_and_role() -> None:
    assert run([parameter_group(**{"pgaudit.log": "all"})], policies=audit.POLICIES) == []


def test_without_pgaudit_ddl_statements_must_be_logged_by_log_statement() -> None:
    unaudited = parameter_group(**{"pgaudit.log": "read"})
    assert "rds-query-logging" in by_policy(run([unaudited], policies=audit.POLICIES))
    with_log_statement = parameter_group(**{"pgaudit.log": "read", "log_statement": "ddl"})
    assert "rds-query-logging" not in by_policy(run([with_log_statement], policies=audit.POLICIES))


@pytest.mark.parametrize(("overrides", "config", "messages"), [
    ({"pgaudit.log": "ddl"}, {}, ["pgaudit.log (ddl) lacks role"]),
    ({"pgaudit.log": MISSING}, {}, ["pgaudit.log (unset) lacks ddl, role"]),
    ({"pgaudit.log": "ddl"}, {"logClasses": ["ddl"]}, []),
    ({"shared_preload_libraries": "pg_stat_statements"}, {}, ["shared_preload_libraries does not preload pgaudit"]),
], ids=["lacks-role", "unset", "config-asks-ddl-only", "not-preloaded"])
def test_pgaudit_says_what_is_missing_against_the_configured_classes(overrides: dict[str, Any], config: dict[str, Any],
                                                                     messages: list[str]) -> None:
    found = run([parameter_group(**overrides)], config={"rds-pgaudit": config}, policies=[audit.pgaudit])
    assert [v.message for v in found] == messages


@pytest.mark.parametrize(("duration", "config", "messages"), [
    ("0", {}, []),
    ("1000", {}, []),
    ("1001", {}, ["log_min_duration_statement is 1001; set 0-1000 ms to log slow queries"]),
    ("-1", {}, ["log_min_duration_statement is -1; set 0-1000 ms to log slow queries"]),
    (MISSING, {}, ["log_min_duration_statement is unset; set 0-1000 ms to log slow queries"]),
    ("slow", {}, ["log_min_duration_statement is slow; set 0-1000 ms to log slow queries"]),
    ("2000", {"maxDurationMs": 5000}, []),
], ids=["zero", "at-limit", "over", "off", "unset", "not-a-number", "config-raises-limit"])
def test_slow_query_logging_within_the_configured_limit(duration: object, config: dict[str, Any],
                                                        messages: list[str]) -> None:
    found = run([parameter_group(log_min_duration_statement=duration)], config={"rds-query-logging": config},
                policies=[audit.query_logging])
    assert [v.message for v in found] == messages


@pytest.mark.parametrize("log_statement", ["ddl", "mod", "all", "DDL"])
def test_log_statement_ddl_or_more_logs_ddl_without_pgaudit(log_statement: str) -> None:
    group = parameter_group(**{"pgaudit.log": "read", "log_statement": log_statement})
    assert run([group], policies=[audit.query_logging]) == []


def test_without_any_ddl_logging_the_policy_says_so() -> None:
    found = run([parameter_group(**{"pgaudit.log": "read"})], policies=[audit.query_logging])
    assert [v.message for v in found] == ["neither log_statement (ddl/mod/all) nor pgaudit.log (ddl) logs statements"]
