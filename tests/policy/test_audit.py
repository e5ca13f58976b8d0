"""policy/audit.py: pgaudit preloaded with ddl and role, slow queries and DDL logged."""

import pytest

from policy import audit
from tests.policy.fixtures import MISSING, by_policy, parameter_group, run


def test_platform_parameters_pass_the_audit_policies():
    assert run([parameter_group()], policies=audit.POLICIES) == []


@pytest.mark.parametrize(("policy", "overrides"), [
    ("rds-pgaudit", {"shared_preload_libraries": "pg_stat_statements"}),
    ("rds-pgaudit", {"pgaudit.log": "ddl"}),
    ("rds-query-logging", {"log_min_duration_statement": "-1"}),
    ("rds-query-logging", {"log_min_duration_statement": MISSING}),
    ("rds-query-logging", {"log_min_duration_statement": "5000"}),
], ids=["pgaudit-not-preloaded", "pgaudit-without-role", "duration-off", "duration-unset", "duration-over-max"])
def test_violating_parameter_group_is_reported_by_that_policy_only(policy, overrides):
    group = parameter_group(**overrides)
    assert by_policy(run([group], policies=audit.POLICIES)) == {policy: [group.urn]}


def test_pgaudit_log_all_covers_ddl_and_role():
    assert run([parameter_group(**{"pgaudit.log": "all"})], policies=audit.POLICIES) == []


def test_without_pgaudit_ddl_statements_must_be_logged_by_log_statement():
    unaudited = parameter_group(**{"pgaudit.log": "read"})
    assert "rds-query-logging" in by_policy(run([unaudited], policies=audit.POLICIES))
    with_log_statement = parameter_group(**{"pgaudit.log": "read", "log_statement": "ddl"})
    assert "rds-query-logging" not in by_policy(run([with_log_statement], policies=audit.POLICIES))
