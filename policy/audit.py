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

POLICIES: list[PackPolicy] = [pgaudit, query_logging]
