"""Schema-level RBAC (spec 2, 4.A "Schema-level RBAC"): every service's roles stay inside the service's own
schema, nothing is granted to PUBLIC, service roles hold no cluster-wide power, app roles time out within
the spec's 5 seconds, and the roles' connection limits fit the instance's connection budget."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.access import (
    EXTENSIONS_SCHEMA,
    PLATFORM_ALLOWED_ATTRIBUTES,
    SERVICE_ALLOWED_ATTRIBUTES,
    PlatformRoleKind,
    platform_role_name,
    platform_roles_by_name,
)
from config.catalog import load_catalog
from config.maintenance import CRON_SCHEMA
from config.naming import RoleKind, role_name, schema_name
from policy.base import (
    PARAMETER_GROUP,
    PG_DEFAULT_PRIVILEGES,
    PG_GRANT,
    PG_GRANT_ROLE,
    PG_ROLE,
    PG_SCHEMA,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    of_type,
    parameters,
    setting,
)

# Role attributes no service role may have (pulumi-postgresql Role inputs), with the access model's names.
FORBIDDEN_ATTRIBUTES = {
    "superuser": "SUPERUSER",
    "createRole": "CREATEROLE",
    "createDatabase": "CREATEDB",
    "bypassRowLevelSecurity": "BYPASSRLS",
    "replication": "REPLICATION",
}
_MODEL_ATTRIBUTE = {
    "superuser": "superuser",
    "createRole": "create_role",
    "createDatabase": "create_database",
    "bypassRowLevelSecurity": "bypass_row_level_security",
    "replication": "replication",
}
# What a service role may hold on the database itself (not on a schema).
DATABASE_PRIVILEGES = frozenset({"CONNECT", "TEMPORARY"})
MAX_STATEMENT_TIMEOUT_MS = 5000
RESERVED_CONNECTIONS = 50


@cache
def _role_owners() -> dict[str, tuple[str, RoleKind]]:
    """Role name -> (service, kind) for every role the catalog defines."""
    return {role_name(s.name, kind): (s.name, kind) for s in load_catalog() for kind in s.role_kinds}


@cache
def _schema_owners() -> dict[str, str]:
    return {schema_name(s.name): s.name for s in load_catalog()}


def service_of_role(name: Any) -> str | None:
    found = _role_owners().get(str(name or ""))
    return found[0] if found else None


def _is_public(role: Any) -> bool:
    return str(role or "").lower() == "public"


def _check_grant(props: Mapping[str, Any], kind: str) -> list[str]:
    """Problems of one Grant or DefaultPrivileges (empty privileges = a revoke, always allowed)."""
    role, schema = props.get("role"), props.get("schema")
    privileges = [str(p).upper() for p in props.get("privileges") or []]
    if not privileges:
        return []
    if _is_public(role):
        return [f"{kind} gives {', '.join(privileges)} to PUBLIC"]
    service = service_of_role(role)
    problems = []
    schema_service = _schema_owners().get(str(schema)) if schema else None
    if schema == EXTENSIONS_SCHEMA and service and set(privileges) <= {"USAGE"} and kind == "grant" \
            and props.get("objectType") == "schema":
        pass  # the shared, admin-owned schema of pgcrypto: using its functions is every service's right
    elif schema == CRON_SCHEMA and service and role == role_name(service, RoleKind.MIGRATOR) \
            and set(privileges) <= {"USAGE"} and kind == "grant" and props.get("objectType") == "schema":
        pass  # pg_cron: a migrator schedules its own jobs; pg_cron's row security hides the others' jobs
    elif schema_service and role == platform_role_name(PlatformRoleKind.CDC_REPLICATOR) and kind == "grant" \
            and props.get("objectType") == "schema" and set(privileges) <= {"USAGE"} \
            and load_catalog().get(schema_service).events:
        pass  # the CDC login reaches the outbox of a publishing service (its SELECT comes with the outbox, in SQL)
    elif schema and schema_service and service != schema_service:
        problems.append(f"{kind} gives {role} {', '.join(privileges)} on {schema_service}'s schema {schema}")
    elif schema and service and schema != schema_name(service):
        problems.append(f"{kind} gives service role {role} {', '.join(privileges)} on schema {schema}, outside "
                        f"its own {schema_name(service)}")
    elif not schema and service and props.get("objectType") == "database":
        extra = sorted(set(privileges) - DATABASE_PRIVILEGES)
        if extra:
            problems.append(f"{kind} gives {role} {', '.join(extra)} on the database (only CONNECT/TEMPORARY)")
    owner = props.get("owner")
    if owner and service and service_of_role(owner) not in (None, service):
        problems.append(f"{kind} makes {owner}'s future objects available to {role} of another service")
    return problems


# The one RDS role a service login may join: rds_password lets the app, readonly and gdpr logins set their own password
# (AWS's single-user rotation function does, with rds.restrict_password_commands=1; components/service_schema.py).
ROTATED_LOGIN_GROUP = "rds_password"
ROTATED_KINDS = (RoleKind.APP, RoleKind.READONLY, RoleKind.GDPR)


def _rotation_membership(member: Any, granted: Any) -> bool:
    service = service_of_role(member)
    return granted == ROTATED_LOGIN_GROUP and service is not None and \
        member in {role_name(service, kind) for kind in ROTATED_KINDS}


def _grants_confined(args: StackValidationArgs, report: ReportViolation) -> None:
    for res in of_type(args.resources, PG_GRANT, PG_DEFAULT_PRIVILEGES):
        kind = "grant" if res.resource_type == PG_GRANT else "default privileges"
        problems = _check_grant(res.props, kind)
        if problems:
            report("; ".join(problems), res.urn)
    platform = platform_roles_by_name()
    for res in of_type(args.resources, PG_GRANT_ROLE):
        member, granted = res.props.get("role"), res.props.get("grantRole")
        member_service, granted_service = service_of_role(member), service_of_role(granted)
        if _is_public(member):
            report(f"membership in {granted} is granted to PUBLIC", res.urn)
        elif member_service and granted_service and member_service != granted_service:
            report(f"{member} is made a member of {granted}, a role of another service", res.urn)
        elif member_service and not granted_service and not _rotation_membership(member, granted):
            report(f"service role {member} is made a member of {granted}, a role outside its service", res.urn)
        elif str(member) in platform and str(granted) not in platform[str(member)][1]:
            report(f"platform role {member} is made a member of {granted}, which the access model does not "
                   "give it", res.urn)
    for res in of_type(args.resources, PG_SCHEMA):
        service = _schema_owners().get(str(res.props.get("name")))
        owner = res.props.get("owner")
        if service and owner and owner != role_name(service, RoleKind.OWNER):
            report(f"schema {res.props.get('name')} is owned by {owner}, not {role_name(service, RoleKind.OWNER)}",
                   res.urn)


service_grants_confined = StackPolicy(
    "service-grants-confined",
    "Grants, default privileges and role memberships never cross service schemas; nothing goes to PUBLIC (the app "
    "and readonly logins may join rds_password, which their password rotation needs).",
    types=[PG_GRANT, PG_DEFAULT_PRIVILEGES, PG_GRANT_ROLE, PG_SCHEMA], validate=_grants_confined,
    severity=Severity.CRITICAL, controls=["spec 2.B no cross-schema queries", "spec 4.A schema-level RBAC"],
    remediation="Grant a service's roles only on <service>_schema; cross-service data travels as events.",
)


def _role_attributes(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = str(args.props.get("name") or "")
    granted = {key for key in FORBIDDEN_ATTRIBUTES if args.props.get(key) is True}
    platform = platform_roles_by_name().get(name)
    found = _role_owners().get(name)
    if found is not None:
        allowed = SERVICE_ALLOWED_ATTRIBUTES.get(found[1], frozenset())
        extra = sorted(k for k in granted if _MODEL_ATTRIBUTE[k] not in allowed)
        if extra:
            report(f"service role {name} has {', '.join(FORBIDDEN_ATTRIBUTES[k] for k in extra)}", None)
    elif platform is not None:
        allowed = PLATFORM_ALLOWED_ATTRIBUTES[platform[0]]
        extra = sorted(k for k in granted if _MODEL_ATTRIBUTE[k] not in allowed)
        if extra:
            report(f"platform role {name} has {', '.join(FORBIDDEN_ATTRIBUTES[k] for k in extra)}, beyond what "
                   f"its purpose ({platform[0].value}) needs", None)
    else:
        report(f"role {name} is neither a service role nor a platform role of the access model", None)


service_role_attributes = TypedResourcePolicy(
    "service-role-attributes",
    "No service role is SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS or REPLICATION; a platform role holds only "
    "what its purpose needs (config/access.py); no other role is declared.",
    types=[PG_ROLE], validate=_role_attributes, severity=Severity.CRITICAL,
    controls=["spec 4.A schema-level RBAC", "spec 2 rls"],
    remediation="Leave these Role inputs false on service roles; BYPASSRLS and REPLICATION belong to the platform "
                "roles of config/access.py (docs/platform-roles.md), declared by name there.",
)


def _statement_timeout(args: ResourceValidationArgs, report: ReportViolation) -> None:
    found = _role_owners().get(str(args.props.get("name") or ""))
    if not found or found[1] is not RoleKind.APP:
        return
    limit = setting(args, "maxMs", MAX_STATEMENT_TIMEOUT_MS)
    timeout = args.props.get("statementTimeout") or 0
    if not 0 < timeout <= limit:
        report(f"statementTimeout of {args.props.get('name')} is {timeout or 'unset'} ms; must be 1-{limit}", None)


app_statement_timeout = TypedResourcePolicy(
    "app-role-statement-timeout",
    "Every service's app role has a statement timeout of at most 5 seconds (spec 2.A).",
    types=[PG_ROLE], validate=_statement_timeout, severity=Severity.MEDIUM,
    controls=["spec 2.A transactions.timeout"],
    config={"maxMs": {"type": "integer", "minimum": 100, "default": MAX_STATEMENT_TIMEOUT_MS}},
    remediation="Set statement_timeout_ms <= 5000 for the service (config/services.yaml or stack override).",
)


def _connection_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    roles = [r for r in of_type(args.resources, PG_ROLE) if service_of_role(r.props.get("name"))]
    if not roles:
        args.not_applicable("no service roles in this stack")
        return
    budget_source = "max_connections of parameter group"
    max_connections: int | None = None
    for group in of_type(args.resources, PARAMETER_GROUP):
        value = parameters(group.props).get("max_connections")
        if value and value.isdigit():
            max_connections = int(value) if max_connections is None else min(max_connections, int(value))
    if max_connections is None:
        max_connections = args.get_config().get("maxConnections")
        budget_source = "maxConnections of the policy config"
    if max_connections is None:
        args.not_applicable("no max_connections parameter and no maxConnections config")
        return
    reserved = setting(args, "reservedConnections", RESERVED_CONNECTIONS)
    demand = 0
    # An extracted service's roles exist on the shared instance and on its target, each instance with its own
    # max_connections: a role counts once against the shared instance's budget.
    roles = list({str(r.props.get("name")): r for r in roles}.values())
    for role in roles:
        limit = role.props.get("connectionLimit", -1)
        login = role.props.get("login") is True
        if login and (limit is None or limit < 0):
            report(f"login role {role.props.get('name')} has no connection limit (-1)", role.urn)
        elif limit and limit > 0:
            demand += int(limit)
    budget = int(max_connections) - int(reserved)
    if demand > budget:
        report(f"service roles' connection limits add up to {demand}, over the budget of {budget} "
               f"({budget_source} {max_connections} - {reserved} reserved)", None)


connection_budget = StackPolicy(
    "connection-budget",
    "The sum of the service roles' connection limits fits max_connections minus the reserved connections.",
    types=[PG_ROLE, PARAMETER_GROUP], validate=_connection_budget, severity=Severity.HIGH,
    controls=["spec 2.A pooling", "spec 8.B connection limits"],
    config={
        "reservedConnections": {"type": "integer", "minimum": 0, "default": RESERVED_CONNECTIONS},
        "maxConnections": {"type": "integer", "minimum": 1,
                           "description": "used when the stack declares no parameter group (local stack)"},
    },
    remediation="Shrink poolSize/readonlyPoolSize of the largest services or raise instance.maxConnections.",
)

POLICIES: list[PackPolicy] = [
    service_grants_confined, service_role_attributes, app_statement_timeout, connection_budget,
]
