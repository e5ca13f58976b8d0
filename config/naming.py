"""Naming rules of the spec (section 5.A), enforced in code.

Every name the project creates inside PostgreSQL goes through these functions, so the conventions
(`<service>_schema`, `<service>_<entity>`, `<service>_fn_<action>`, `<service>_trg_<event>`, role names)
are written once. Identifiers are restricted to lower-case ASCII letters, digits and underscores and to
PostgreSQL's 63-byte limit: a name that would need quoting, or that PostgreSQL would silently truncate, is
rejected before any SQL is rendered.
"""

from __future__ import annotations

import re
from enum import StrEnum

MAX_IDENTIFIER_BYTES = 63
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")  # fullmatch: `$` would accept a trailing newline

# PostgreSQL 15's keywords that are not plain identifiers everywhere, by `pg_get_keywords()` category
# (tests/pg/test_reserved_words.py compares these with the server's own list, so they cannot drift):
# R "reserved": no name at all; T "reserved (can be function or type name)": no schema or table name;
# C "unreserved (cannot be function or type name)": no function or type name, and role names only
# partly. Every name the project derives must work unquoted as a schema, role, table and function name,
# so all three categories are refused; only the "unreserved" keywords (category U) are accepted.
RESERVED_KEYWORDS = frozenset(
    {
        "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "both", "case",
        "cast", "check", "collate", "column", "constraint", "create", "current_catalog", "current_date",
        "current_role", "current_time", "current_timestamp", "current_user", "default", "deferrable",
        "desc", "distinct", "do", "else", "end", "except", "false", "fetch", "for", "foreign", "from",
        "grant", "group", "having", "in", "initially", "intersect", "into", "lateral", "leading", "limit",
        "localtime", "localtimestamp", "not", "null", "offset", "on", "only", "or", "order", "placing",
        "primary", "references", "returning", "select", "session_user", "some", "symmetric", "table",
        "then", "to", "trailing", "true", "union", "unique", "user", "using", "variadic", "when", "where",
        "window", "with",
    }
)
TYPE_FUNCTION_KEYWORDS = frozenset(
    {
        "authorization", "binary", "collation", "concurrently", "cross", "current_schema", "freeze", "full",
        "ilike", "inner", "is", "isnull", "join", "left", "like", "natural", "notnull", "outer", "overlaps",
        "right", "similar", "tablesample", "verbose",
    }
)
COLUMN_NAME_KEYWORDS = frozenset(
    {
        "between", "bigint", "bit", "boolean", "char", "character", "coalesce", "dec", "decimal", "exists",
        "extract", "float", "greatest", "grouping", "inout", "int", "integer", "interval", "least",
        "national", "nchar", "none", "normalize", "nullif", "numeric", "out", "overlay", "position",
        "precision", "real", "row", "setof", "smallint", "substring", "time", "timestamp", "treat", "trim",
        "values", "varchar", "xmlattributes", "xmlconcat", "xmlelement", "xmlexists", "xmlforest",
        "xmlnamespaces", "xmlparse", "xmlpi", "xmlroot", "xmlserialize", "xmltable",
    }
)
# Role names PostgreSQL refuses although they are no keyword ("role name "public" is reserved").
RESERVED_ROLE_NAMES = frozenset({"public", "none"})
RESERVED_WORDS = RESERVED_KEYWORDS | TYPE_FUNCTION_KEYWORDS | COLUMN_NAME_KEYWORDS | RESERVED_ROLE_NAMES


class InvalidIdentifier(ValueError):
    """A name that is not a safe, unquoted PostgreSQL identifier."""


class RoleKind(StrEnum):
    """The roles of a service schema (see config.access for what each may do): four for every service, two
    more for a service holding personal data (GDPR, docs/gdpr.md)."""

    OWNER = "owner"
    MIGRATOR = "migrator"
    APP = "app"
    READONLY = "readonly"
    GDPR = "gdpr"  # LOGIN: EXECUTE on the service's two GDPR contract functions, nothing else
    GDPR_DEFINER = "gdpr_definer"  # NOLOGIN, BYPASSRLS: owns the contract functions (SECURITY DEFINER)


BASE_ROLE_KINDS = (RoleKind.OWNER, RoleKind.MIGRATOR, RoleKind.APP, RoleKind.READONLY)
GDPR_ROLE_KINDS = (RoleKind.GDPR, RoleKind.GDPR_DEFINER)
# The GDPR contract (spec 4.A compliance.gdpr): `<service>_fn_<action>(subject_id)` in the service's schema.
ERASE_ACTION = "erase_subject"
EXPORT_ACTION = "export_subject"


def check_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a safe PostgreSQL identifier, else raise InvalidIdentifier saying why."""
    if not isinstance(name, str) or not name:
        raise InvalidIdentifier(f"{what} must be a non-empty string")
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise InvalidIdentifier(
            f"{what} {name!r} is {len(name.encode('utf-8'))} bytes; PostgreSQL identifiers are at most "
            f"{MAX_IDENTIFIER_BYTES} bytes (longer names are silently truncated)"
        )
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidIdentifier(
            f"{what} {name!r} is not a plain PostgreSQL identifier: use lower-case letters, digits and "
            "underscores, starting with a letter or underscore (no quotes, spaces, semicolons or capitals)"
        )
    if name in RESERVED_WORDS:
        raise InvalidIdentifier(f"{what} {name!r} is a reserved word in PostgreSQL (it would need quoting)")
    if name.startswith("pg_"):
        raise InvalidIdentifier(f"{what} {name!r} starts with 'pg_', which PostgreSQL reserves for itself")
    return name


def schema_name(service: str) -> str:
    """`<service>_schema` (spec section 1)."""
    return check_identifier(f"{service}_schema", "schema name")


def version_table_name(service: str) -> str:
    """`<service>_schema_version`: the table in the service's schema where its migrations (Alembic) record the
    applied revision. Platform bookkeeping, not tenant data: the audit exempts it from tenant isolation."""
    return check_identifier(f"{service}_schema_version", "version table")


def role_name(service: str, kind: RoleKind | str) -> str:
    """`<service>_<kind>`, e.g. `feedback_app`."""
    return check_identifier(f"{service}_{RoleKind(kind).value}", "role name")


def table_name(service: str, entity: str) -> str:
    """`${service}_${entity}` (spec 5.A)."""
    return check_identifier(f"{service}_{check_identifier(entity, 'entity')}", "table name")


def function_name(service: str, action: str) -> str:
    """`${service}_fn_${action}` (spec 5.A)."""
    return check_identifier(f"{service}_fn_{check_identifier(action, 'action')}", "function name")


def contract_functions(service: str) -> tuple[str, str]:
    """The GDPR contract's two functions of a service: (`<service>_fn_erase_subject`,
    `<service>_fn_export_subject`)."""
    return function_name(service, ERASE_ACTION), function_name(service, EXPORT_ACTION)


def trigger_name(service: str, event: str) -> str:
    """`${service}_trg_${event}` (spec 5.A)."""
    return check_identifier(f"{service}_trg_{check_identifier(event, 'event')}", "trigger name")


# Events (spec 2.B, docs/events.md): the path from a service's committed transaction to Kafka. Each name derives
# from the service and the catalog's `events` entries; nothing else spells them.
OUTBOX_ENTITY = "outbox"
INBOX_ENTITY = "inbox"
EVENT_TOPIC_PREFIX = "edumatrix"


def outbox_table_name(service: str) -> str:
    """`<service>_outbox`: the service's transactional outbox (Debezium outbox event router columns)."""
    return table_name(service, OUTBOX_ENTITY)


def inbox_table_name(service: str) -> str:
    """`<service>_inbox`: the events a service has applied, keyed by event id (idempotent handlers)."""
    return table_name(service, INBOX_ENTITY)


def outbox_publication_name(service: str) -> str:
    """`<service>_outbox_pub`: the publication of the service's outbox, and of nothing else."""
    return check_identifier(f"{outbox_table_name(service)}_pub", "publication name")


def outbox_slot_name(service: str) -> str:
    """`<service>_outbox_slot`: the logical replication slot the service's CDC connector decodes."""
    return check_identifier(f"{outbox_table_name(service)}_slot", "replication slot name")


def event_topic_name(service: str, aggregate: str) -> str:
    """`edumatrix.<service>.<aggregate>`: the Kafka topic of one aggregate type's events (the Debezium outbox
    router routes by `aggregatetype`)."""
    check_identifier(aggregate, "aggregate type")
    return f"{EVENT_TOPIC_PREFIX}.{check_identifier(service, 'service name')}.{aggregate}"


def event_schema_name(service: str, aggregate: str, event_type: str) -> str:
    """`<service>.<aggregate>.<event_type>`: the schema registry's name for one event type's payload."""
    check_identifier(event_type, "event type")
    return f"{event_topic_name(service, aggregate).removeprefix(EVENT_TOPIC_PREFIX + '.')}.{event_type}"


def belongs_to(service: str, object_name: str) -> bool:
    """True when `object_name` follows the service's prefix convention."""
    return object_name.startswith(f"{service}_")


def quote_ident(name: str) -> str:
    """Quote an identifier for SQL, after checking it; quoting is belt and braces on top of the check."""
    check_identifier(name)
    return '"' + name.replace('"', '""') + '"'
