"""Audit and query logging in the parameter group (spec 4.A: "Query logging enabled", change tracking)."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policy.base import (
    PARAMETER_GROUP,
    PackPolicy,
    TypedResourcePolicy,
    csv_values,
    is_postgres_family,
    parameters,
    setting,
)

PGAUDIT_CLASSES = ("ddl", "role")
MAX_LOG_DURATION_MS = 1000  # a statement slower than this is always logged


def _pgaudit(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_postgres_family(args.props):
        return
    params = parameters(args.props)
    if "pgaudit" not in csv_values(params.get("shared_preload_libraries")):
        report("shared_preload_libraries does not preload pgaudit", None)
    logged = csv_values(params.get("pgaudit.log"))
    required = setting(args, "logClasses", list(PGAUDIT_CLASSES))
    missing = [c for c in required if c not in logged and "all" not in logged]
    if missing:
        report(f"pgaudit.log ({params.get('pgaudit.log', 'unset')}) lacks {', '.join(missing)}", None)


pgaudit = TypedResourcePolicy(
    "rds-pgaudit",
    "pgaudit is preloaded and logs at least DDL and role changes (privilege escalations, schema changes).",
    types=[PARAMETER_GROUP], validate=_pgaudit, severity=Severity.HIGH,
    controls=["spec 4.A audit", "spec 4.B security alerts"],
    config={"logClasses": {"type": "array", "items": {"type": "string"}, "default": list(PGAUDIT_CLASSES)}},
    remediation="Keep shared_preload_libraries=pg_stat_statements,pgaudit and pgaudit.log=ddl,role "
                "(config/parameters.py).",
)


def _query_logging(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_postgres_family(args.props):
        return
    params = parameters(args.props)
    duration = params.get("log_min_duration_statement")
    try:
        ms = int(duration) if duration is not None else -1
    except ValueError:
        ms = -1
    limit = setting(args, "maxDurationMs", MAX_LOG_DURATION_MS)
    if ms < 0 or ms > limit:
        report(f"log_min_duration_statement is {duration or 'unset'}; set 0-{limit} ms to log slow queries", None)
    # checkov asks for log_statement; pgaudit's ddl class logs the same statements (with more detail),
    # and setting both would log every DDL twice, so either satisfies the policy.
    statement = params.get("log_statement", "none").lower()
    audited = csv_values(params.get("pgaudit.log")) & {"ddl", "all"}
    if statement not in ("ddl", "mod", "all") and not audited:
        report("neither log_statement (ddl/mod/all) nor pgaudit.log (ddl) logs statements", None)


query_logging = TypedResourcePolicy(
    "rds-query-logging",
    "Slow queries and DDL statements are logged (log_min_duration_statement, log_statement or pgaudit ddl).",
    types=[PARAMETER_GROUP], validate=_query_logging, severity=Severity.MEDIUM,
    controls=["CKV2_AWS_30"],
    config={"maxDurationMs": {"type": "integer", "minimum": 0, "default": MAX_LOG_DURATION_MS}},
    remediation="Set logMinDurationStatementMs (default 100) in the stack file; keep pgaudit.log=ddl,role.",
)

# Log hygiene (spec 4.A GDPR): what the logged statements must not carry.
QUIET_ERROR_STATEMENT = ("log", "fatal", "panic")  # above `error`: a failed statement's text is not logged


def _log_hygiene(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not is_postgres_family(args.props):
        return
    params = parameters(args.props)
    if params.get("log_parameter_max_length") != "0":
        report(f"log_parameter_max_length is {params.get('log_parameter_max_length', 'unset (-1: in full)')}; 0 keeps "
               "bind parameters (personal data, pgcrypto keys) out of the statements logged for their duration", None)
    if params.get("log_min_error_statement", "error").lower() not in QUIET_ERROR_STATEMENT:
        report(f"log_min_error_statement is {params.get('log_min_error_statement', 'unset (error)')}: a failed "
               "ALTER ROLE ... PASSWORD is logged in clear; use panic", None)
    limit = params.get("temp_file_limit", "-1")
    if limit.lstrip("-").isdigit() and int(limit) < 0:
        report("temp_file_limit is unlimited: one session may fill the instance's storage with temporary files",
               None)
    if params.get("rds.restrict_password_commands") != "1":
        report("rds.restrict_password_commands is not 1: every login may change its own password", None)


log_hygiene = TypedResourcePolicy(
    "rds-log-hygiene",
    "Logs carry no bind parameters and no failed statement text, temporary files are capped and only "
    "rds_password members set passwords (spec 4.A GDPR; PostgreSQL 15 runtime-config-logging; AWS RDS user guide, "
    "\"Delegating and controlling user password management\").",
    types=[PARAMETER_GROUP], validate=_log_hygiene, severity=Severity.HIGH,
    controls=["spec 4.A gdpr", "issue 10 finding 9"],
    remediation="config/parameters.py sets log_parameter_max_length=0, log_min_error_statement=panic, "
                "temp_file_limit and rds.restrict_password_commands=1.",
)

POLICIES: list[PackPolicy] = [pgaudit, query_logging, log_hygiene]
