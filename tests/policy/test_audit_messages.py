"""policy/audit.py, message by message: each row is one change of the platform's parameter group (tests/policy/
fixtures.py) and everything the policy then reports, each message written out in full as the user reads it in CI."""

from __future__ import annotations

from typing import Any

import pytest

from policy import audit
from tests.policy.fixtures import MISSING, parameter_group
from tests.policy.reports import reports, rows

GROUP = "edumatrix-test-pg-params"
SLOW_QUERIES = "log_min_duration_statement is {}; set 0-{} ms to log slow queries"
BIND_PARAMETERS = ("log_parameter_max_length is {}; 0 keeps bind parameters (personal data, pgcrypto keys) out of the "
                   "statements logged for their duration")
FAILED_STATEMENTS = ("log_min_error_statement is {}: a failed ALTER ROLE ... PASSWORD is logged in clear; use panic")
TEMP_FILES = "temp_file_limit is unlimited: one session may fill the instance's storage with temporary files"


CASES = rows(
    ("pgaudit-not-preloaded", audit.pgaudit, {"shared_preload_libraries": "pg_stat_statements"},
     [(GROUP, "shared_preload_libraries does not preload pgaudit")]),
    ("pgaudit-without-role-class", audit.pgaudit, {"pgaudit.log": "ddl"}, [(GROUP, "pgaudit.log (ddl) lacks role")]),
    ("pgaudit-log-unset", audit.pgaudit, {"pgaudit.log": MISSING}, [(GROUP, "pgaudit.log (unset) lacks ddl, role")]),
    ("pgaudit-logging-all", audit.pgaudit, {"pgaudit.log": "all"}, []),
    ("slow-queries-unset", audit.query_logging, {"log_min_duration_statement": MISSING},
     [(GROUP, SLOW_QUERIES.format("unset", 1000))]),
    ("slow-queries-off", audit.query_logging, {"log_min_duration_statement": "-1"},
     [(GROUP, SLOW_QUERIES.format("-1", 1000))]),
    ("slow-queries-not-a-number", audit.query_logging, {"log_min_duration_statement": "1s"},
     [(GROUP, SLOW_QUERIES.format("1s", 1000))]),
    ("slow-queries-above-the-limit", audit.query_logging, {"log_min_duration_statement": "1001"},
     [(GROUP, SLOW_QUERIES.format("1001", 1000))]),
    ("slow-queries-at-the-limits", audit.query_logging, {"log_min_duration_statement": "1000"}, []),
    ("every-query-logged", audit.query_logging, {"log_min_duration_statement": "0"}, []),
    ("statements-not-logged", audit.query_logging, {"pgaudit.log": "role"},
     [(GROUP, "neither log_statement (ddl/mod/all) nor pgaudit.log (ddl) logs statements")]),
    ("statements-logged-by-log-statement", audit.query_logging, {"pgaudit.log": "role", "log_statement": "DDL"}, []),
    ("bind-parameters-logged-in-full", audit.log_hygiene, {"log_parameter_max_length": MISSING},
     [(GROUP, BIND_PARAMETERS.format("unset (-1: in full)"))]),
    ("bind-parameters-logged-in-part", audit.log_hygiene, {"log_parameter_max_length": "64"},
     [(GROUP, BIND_PARAMETERS.format("64"))]),
    ("failed-statements-logged-by-default", audit.log_hygiene, {"log_min_error_statement": MISSING},
     [(GROUP, FAILED_STATEMENTS.format("unset (error)"))]),
    ("failed-statements-logged", audit.log_hygiene, {"log_min_error_statement": "ERROR"},
     [(GROUP, FAILED_STATEMENTS.format("ERROR"))]),
    ("failed-statements-quiet-in-capitals", audit.log_hygiene, {"log_min_error_statement": "FATAL"}, []),
    ("temporary-files-unlimited-by-default", audit.log_hygiene, {"temp_file_limit": MISSING}, [(GROUP, TEMP_FILES)]),
    ("temporary-files-unlimited", audit.log_hygiene, {"temp_file_limit": "-1"}, [(GROUP, TEMP_FILES)]),
    ("temporary-files-refused", audit.log_hygiene, {"temp_file_limit": "0"}, []),
    ("passwords-not-restricted", audit.log_hygiene, {"rds.restrict_password_commands": MISSING},
     [(GROUP, "rds.restrict_password_commands is not 1: every login may change its own password")]),
)


@pytest.mark.parametrize(("policy", "parameters", "expected"), CASES)
def test_the_audit_policies_report_exactly(policy: Any, parameters: dict[str, Any],
                                           expected: list[tuple[str, str]]) -> None:
    assert reports(policy, [parameter_group(**parameters)]) == expected


CONFIGURED = rows(
    ("pgaudit-class-the-config-adds", audit.pgaudit, {"logClasses": ["ddl", "role", "write"]}, {},
     [(GROUP, "pgaudit.log (ddl,role) lacks write")]),
    ("slow-queries-above-the-configured-limit", audit.query_logging, {"maxDurationMs": 50}, {},
     [(GROUP, SLOW_QUERIES.format("100", 50))]),
)


@pytest.mark.parametrize(("policy", "config", "parameters", "expected"), CONFIGURED)
def test_the_audit_policies_follow_their_config(policy: Any, config: dict[str, Any], parameters: dict[str, Any],
                                                expected: list[tuple[str, str]]) -> None:
    assert reports(policy, [parameter_group(**parameters)], config=config) == expected
