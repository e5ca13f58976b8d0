"""The access model: who may do what in the shared database, derived from the service catalog.

Pure data, no Pulumi and no SQL. Two thin renderers turn it into effects:
- `components/service_schema.py` + `components/database_baseline.py` declare pulumi-postgresql resources;
- `edumatrix_db/database/sql.py` applies idempotent SQL to a real PostgreSQL (local environment, tests, drills).
Both reduce to `AccessModel.canonical()`, a set of comparable tuples; a test checks that they agree.

Per service (`feedback` as the example):
- `feedback_owner`   NOLOGIN; owns `feedback_schema` and every object in it.
- `feedback_migrator` LOGIN, NOINHERIT; member of the owner; its login setting `role = feedback_owner` makes
  every session run as the owner (`SET ROLE` at login), so every table, sequence and function a migration
  creates is owned by the owner and covered by the owner's default privileges. NOINHERIT: after
  `SET ROLE NONE` the migrator holds none of the owner's privileges, so it cannot create objects of its
  own (which would escape the owner's default privileges and the platform's repairs).
- `feedback_app`      LOGIN; USAGE on the schema; SELECT/INSERT/UPDATE/DELETE on tables; USAGE/SELECT on
  sequences; EXECUTE on functions. Statement timeout from the catalog (spec: 5 s transaction default).
- `feedback_readonly` LOGIN; USAGE on the schema; SELECT on tables and sequences.
No service role is SUPERUSER, CREATEDB, CREATEROLE, BYPASSRLS or REPLICATION (one exception below); only the
login roles get CONNECT on the database; nobody gets TEMPORARY. PUBLIC holds nothing on the service's schema
and objects.

A service holding personal data (catalog `personal_tables`, docs/gdpr.md) has two more: `feedback_gdpr`
(LOGIN: EXECUTE on the GDPR contract functions, nothing else) and `feedback_gdpr_definer` (NOLOGIN, BYPASSRLS,
owns those SECURITY DEFINER functions; SELECT/UPDATE/DELETE on its own schema's tables only), see `_gdpr_access`.

Platform roles (`PlatformAccess`, docs/platform-roles.md): the platform's own logins, never used by a
service: `edumatrix_ops` (audit and metrics: member of `pg_monitor`, no data access), `edumatrix_data_mover`
(restore, extraction copy: BYPASSRLS, member of `pg_read_all_data` and `pg_write_all_data`), one
replication login per purpose (`edumatrix_extraction_replicator`, `edumatrix_cdc_replicator`; REPLICATION
locally, membership in `rds_replication` on RDS, where the attribute cannot be granted), and pgaudit's
object-audit role `rds_pgaudit` (NOLOGIN; SELECT on the personal tables, granted outside this model's
schema-wide grants and judged by the read-back).

Database level: PUBLIC loses CONNECT and TEMPORARY on the database and everything on schema `public`;
default EXECUTE on functions is revoked from PUBLIC for each owner role. Extensions: `pgcrypto` (column
encryption, installed into the shared schema `extensions`, which every service role may USE) and
`pgaudit` (DDL and role-change audit log).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from config.catalog import Catalog, ServiceSpec
from config.naming import BASE_ROLE_KINDS, RoleKind, check_identifier, outbox_table_name
from config.settings import StackSettings

PUBLIC = "public"  # the pseudo-role PUBLIC, spelled as pulumi-postgresql spells it
EXTENSIONS_SCHEMA = "extensions"
DEFAULT_DATABASE = "edumatrix"
DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000
# Role memberships a service owner must never have: IAM-authenticated logins cannot be object owners
# (pulumi-postgresql's documented trap: an `rds_iam` owner breaks password login for the provider).
FORBIDDEN_OWNER_MEMBERSHIPS = frozenset({"rds_iam", "rds_superuser", "pg_write_all_data", "pg_read_all_data"})
# Roles PostgreSQL (pg_*) or RDS (rds_*) define, which platform roles may be members of. Their names are not
# identifiers the project may create (`pg_` is reserved), so they are quoted from this list only.
PREDEFINED_ROLES = frozenset(
    {"pg_monitor", "pg_read_all_data", "pg_write_all_data", "pg_signal_backend", "rds_replication"}
)
PLATFORM_PREFIX = "edumatrix"


FORBIDDEN_ROLE_ATTRIBUTES = (
    "superuser",
    "create_database",
    "create_role",
    "bypass_row_level_security",
    "replication",
)


class Target(StrEnum):
    """Where the model is applied: what RDS's master user can do differs from a local superuser's."""

    LOCAL = "local"
    RDS = "rds"


class PlatformRoleKind(StrEnum):
    """The platform's own roles (names `edumatrix_<kind>`): see `platform_access`."""

    OPS = "ops"
    DATA_MOVER = "data_mover"
    EXTRACTION_REPLICATOR = "extraction_replicator"
    CDC_REPLICATOR = "cdc_replicator"
    AUDITOR = "auditor"  # NOLOGIN `rds_pgaudit`: pgaudit's object-audit role (AUDIT_ROLE)


# pgaudit's object audit (`pgaudit.role`): a statement touching a table this role holds a privilege on is
# logged. RDS allows exactly this name ("the only allowable value is rds_pgaudit", AWS RDS user guide,
# "Auditing database objects"); the local server uses the same. It holds SELECT on the catalog's personal
# tables only (`AccessModel.audited_tables`), never logs in, and nobody is a member of it.
AUDIT_ROLE = "rds_pgaudit"


# The 21 advisory-lock functions (PostgreSQL 15; research: issue 11 section 1). Each is executable by PUBLIC
# unless a superuser revokes it: any login could exhaust the shared lock table with session locks.
ADVISORY_LOCK_FUNCTIONS = (
    *(
        f"pg_catalog.{name}({args})"
        for args in ("bigint", "integer, integer")
        for name in (
            "pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
            "pg_try_advisory_lock_shared", "pg_advisory_xact_lock", "pg_advisory_xact_lock_shared",
            "pg_try_advisory_xact_lock", "pg_try_advisory_xact_lock_shared", "pg_advisory_unlock",
            "pg_advisory_unlock_shared",
        )
    ),
    "pg_catalog.pg_advisory_unlock_all()",
)


class ObjectType(StrEnum):
    DATABASE = "database"
    SCHEMA = "schema"
    TABLE = "table"
    SEQUENCE = "sequence"
    FUNCTION = "function"


# Every privilege PostgreSQL knows per object type (spelled as aclexplode() spells them).
ALL_PRIVILEGES: dict[ObjectType, frozenset[str]] = {
    ObjectType.DATABASE: frozenset({"CONNECT", "CREATE", "TEMPORARY"}),
    ObjectType.SCHEMA: frozenset({"USAGE", "CREATE"}),
    ObjectType.TABLE: frozenset(
        {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"}
    ),
    ObjectType.SEQUENCE: frozenset({"USAGE", "SELECT", "UPDATE"}),
    ObjectType.FUNCTION: frozenset({"EXECUTE"}),
}

APP_TABLE_PRIVILEGES = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
APP_SEQUENCE_PRIVILEGES = frozenset({"USAGE", "SELECT"})
READONLY_TABLE_PRIVILEGES = frozenset({"SELECT"})
READONLY_SEQUENCE_PRIVILEGES = frozenset({"SELECT"})
# The GDPR definer erases (DELETE, or UPDATE to anonymise) and exports (SELECT) rows of its own schema.
GDPR_DEFINER_TABLE_PRIVILEGES = frozenset({"SELECT", "UPDATE", "DELETE"})
GDPR_STATEMENT_TIMEOUT_MS = 300_000  # one subject's erasure in one service; the app's 5 s is too short
# The one power a service role may hold, by kind: the GDPR definer bypasses RLS so that erase and export reach
# every tenant of a subject (docs/gdpr.md). Its privileges stay confined to its schema.
SERVICE_ALLOWED_ATTRIBUTES: dict[RoleKind, frozenset[str]] = {
    RoleKind.GDPR_DEFINER: frozenset({"bypass_row_level_security"}),
}


@dataclass(frozen=True)
class RoleSpec:
    """One role with its attributes and per-role settings (`ALTER ROLE ... SET`)."""

    name: str
    service: str  # the catalog service, or PLATFORM_PREFIX for a platform role
    kind: RoleKind | PlatformRoleKind
    login: bool
    connection_limit: int
    inherit: bool = True  # NOINHERIT: privileges of granted roles only after SET ROLE
    statement_timeout_ms: int | None = None
    idle_in_transaction_session_timeout_ms: int | None = None
    search_path: tuple[str, ...] = ()
    assume_role: str | None = None  # the login setting `role`: SET ROLE at session start
    # Attributes no service role ever has; kept as fields so both renderers state them explicitly.
    superuser: bool = False
    create_database: bool = False
    create_role: bool = False
    bypass_row_level_security: bool = False
    replication: bool = False

    def settings(self) -> dict[str, str]:
        """Per-role settings as `pg_db_role_setting` stores them (`name=value`)."""
        out: dict[str, str] = {}
        if self.statement_timeout_ms is not None:
            out["statement_timeout"] = str(self.statement_timeout_ms)
        if self.idle_in_transaction_session_timeout_ms is not None:
            out["idle_in_transaction_session_timeout"] = str(self.idle_in_transaction_session_timeout_ms)
        if self.search_path:
            out["search_path"] = ", ".join(self.search_path)
        if self.assume_role is not None:
            out["role"] = self.assume_role
        return out


@dataclass(frozen=True)
class Membership:
    """`GRANT <group> TO <member>`."""

    member: str
    group: str


@dataclass(frozen=True)
class Grant:
    """The exact set of privileges `role` holds on objects of one type.

    For tables, sequences and functions the grant covers every object of the schema that exists when it
    is applied; objects created later are covered by `DefaultPrivilege`. An empty set means "nothing":
    whatever the role holds is revoked (how PUBLIC is stripped).
    """

    role: str
    object_type: ObjectType
    database: str
    privileges: frozenset[str]
    schema: str | None = None

    def __post_init__(self) -> None:
        unknown = self.privileges - ALL_PRIVILEGES[self.object_type]
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not {self.object_type} privileges")
        if (self.object_type is ObjectType.DATABASE) != (self.schema is None):
            raise ValueError("a database grant has no schema; every other grant names one")


@dataclass(frozen=True)
class DefaultPrivilege:
    """`ALTER DEFAULT PRIVILEGES FOR ROLE <owner> [IN SCHEMA <schema>] ...`: what `role` gets on objects
    `owner` creates later. `schema=None` is the database-wide default (used to revoke from PUBLIC)."""

    owner: str
    role: str
    object_type: ObjectType
    database: str
    privileges: frozenset[str]
    schema: str | None = None

    def __post_init__(self) -> None:
        if self.object_type not in (ObjectType.TABLE, ObjectType.SEQUENCE, ObjectType.FUNCTION):
            raise ValueError(f"default privileges for {self.object_type} are not modelled")
        unknown = self.privileges - ALL_PRIVILEGES[self.object_type]
        if unknown:
            raise ValueError(f"{sorted(unknown)} are not {self.object_type} privileges")


@dataclass(frozen=True)
class Extension:
    name: str
    schema: str | None = None


@dataclass(frozen=True)
class ServiceAccess:
    """Everything one service schema needs."""

    service: str
    schema: str
    owner: str
    roles: tuple[RoleSpec, ...]
    memberships: tuple[Membership, ...]
    grants: tuple[Grant, ...]
    default_privileges: tuple[DefaultPrivilege, ...]
    personal_tables: tuple[str, ...] = ()  # audited by pgaudit's object audit (AccessModel.audit_role)
    publishes_events: bool = False  # has an outbox and its publication (docs/events.md)
    event_payloads: tuple[tuple[str, int, tuple[tuple[str, str], ...]], ...] = ()
    """(type, version, payload description) per event type: what the outbox's CHECK admits (docs/events.md)."""

    @property
    def holds_personal_data(self) -> bool:
        return bool(self.personal_tables)

    @property
    def outbox(self) -> str | None:
        """`<service>_outbox` when the service publishes events (the CDC login may SELECT it, nothing else)."""
        return outbox_table_name(self.service) if self.publishes_events else None

    def role(self, kind: RoleKind | str) -> RoleSpec:
        return next(r for r in self.roles if r.kind is RoleKind(kind))

    @property
    def login_roles(self) -> tuple[RoleSpec, ...]:
        return tuple(r for r in self.roles if r.login)


@dataclass(frozen=True)
class PlatformAccess:
    """The platform's own roles: who may use them is in docs/platform-roles.md; never a service."""

    roles: tuple[RoleSpec, ...]
    memberships: tuple[Membership, ...]
    grants: tuple[Grant, ...]

    def role(self, kind: PlatformRoleKind | str) -> RoleSpec:
        return next(r for r in self.roles if r.kind is PlatformRoleKind(kind))


@dataclass(frozen=True)
class AccessModel:
    database: str
    services: tuple[ServiceAccess, ...]
    database_grants: tuple[Grant, ...]
    extensions: tuple[Extension, ...]
    platform: PlatformAccess = field(default_factory=lambda: PlatformAccess((), (), ()))
    target: Target = Target.LOCAL
    admin: str = "edumatrix_admin"  # the platform admin (RDS master user): applies the model
    extensions_schema: str = EXTENSIONS_SCHEMA
    schemas_owned_by_admin: tuple[str, ...] = field(default=(EXTENSIONS_SCHEMA,))

    def service(self, name: str) -> ServiceAccess:
        for s in self.services:
            if s.service == name:
                return s
        raise KeyError(name)

    @property
    def roles(self) -> tuple[RoleSpec, ...]:
        """The services' roles (the platform's are `platform.roles`)."""
        return tuple(r for s in self.services for r in s.roles)

    @property
    def all_roles(self) -> tuple[RoleSpec, ...]:
        return (*self.roles, *self.platform.roles)

    def all_memberships(self) -> tuple[Membership, ...]:
        return (*(m for s in self.services for m in s.memberships), *self.platform.memberships)

    def all_grants(self) -> tuple[Grant, ...]:
        return (*self.database_grants, *(g for s in self.services for g in s.grants), *self.platform.grants,
                *self.cdc_grants())

    def cdc_grants(self) -> tuple[Grant, ...]:
        """USAGE on each publishing service's schema for the CDC login (its SELECT on the outbox is granted with
        the outbox: docs/events.md). Derived from the services, so a service that leaves the instance takes it
        along."""
        return tuple(Grant(self.cdc_role, ObjectType.SCHEMA, self.database, frozenset({"USAGE"}), s.schema)
                     for s in self.services if s.publishes_events)

    @property
    def audit_role(self) -> str:
        return AUDIT_ROLE

    def audited_tables(self) -> dict[str, frozenset[str]]:
        """Schema -> the personal tables in it, on which `audit_role` holds SELECT (pgaudit object audit)."""
        return {s.schema: frozenset(s.personal_tables) for s in self.services if s.personal_tables}

    @property
    def cdc_role(self) -> str:
        """The CDC connector's replication login: USAGE on each publishing schema, SELECT on its outbox only."""
        return platform_role_name(PlatformRoleKind.CDC_REPLICATOR)

    def outbox_tables(self) -> dict[str, str]:
        """Schema -> the outbox in it, for each service that publishes events (docs/events.md)."""
        return {s.schema: s.outbox for s in self.services if s.outbox}

    def service_of_role(self, role: str) -> ServiceAccess | None:
        return next((s for s in self.services if any(r.name == role for r in s.roles)), None)

    @property
    def advisory_lock_roles(self) -> tuple[str, ...]:
        """Who keeps EXECUTE on the advisory-lock functions where a superuser can revoke them from PUBLIC:
        the owners, as migrations run as the owner (migration tools serialise themselves with these locks)."""
        return tuple(s.owner for s in self.services)

    def all_default_privileges(self) -> tuple[DefaultPrivilege, ...]:
        return tuple(d for s in self.services for d in s.default_privileges)

    def canonical(self) -> frozenset[tuple[object, ...]]:
        """The comparable form both renderers reduce to (see `canonical_*` helpers)."""
        out: set[tuple[object, ...]] = set()
        for r in self.all_roles:
            out |= canonical_role(r)
        for s in self.services:
            out.add(("schema", s.schema, s.owner))
        out |= {("member", m.member, m.group) for m in self.all_memberships()}
        out |= {canonical_grant(g) for g in self.all_grants()}
        out |= {canonical_default(d) for d in self.all_default_privileges()}
        out |= {("extension", e.name, e.schema or "") for e in self.extensions}
        return frozenset(out)


def canonical_role(r: RoleSpec) -> set[tuple[object, ...]]:
    """A role as tuples: one for its attributes, one per setting."""
    attrs = (
        "role",
        r.name,
        ("login", r.login),
        ("inherit", r.inherit),
        ("connection_limit", r.connection_limit),
        ("superuser", r.superuser),
        ("create_database", r.create_database),
        ("create_role", r.create_role),
        ("bypass_row_level_security", r.bypass_row_level_security),
        ("replication", r.replication),
    )
    return {attrs, *(("setting", r.name, k, v) for k, v in r.settings().items())}


def canonical_grant(g: Grant) -> tuple[object, ...]:
    return ("grant", g.role, g.object_type.value, g.database, g.schema or "", tuple(sorted(g.privileges)))


def canonical_default(d: DefaultPrivilege) -> tuple[object, ...]:
    return (
        "default",
        d.owner,
        d.role,
        d.object_type.value,
        d.database,
        d.schema or "",
        tuple(sorted(d.privileges)),
    )


def service_access(
    spec: ServiceSpec,
    database: str,
    *,
    idle_in_transaction_ms: int = DEFAULT_IDLE_IN_TRANSACTION_MS,
    extensions_schema: str = EXTENSIONS_SCHEMA,
) -> ServiceAccess:
    """The roles, memberships, grants and default privileges of one service."""
    check_identifier(spec.name, "service name")
    schema = spec.schema_name
    limits = spec.connection_limits()
    name = {kind: spec.role(kind) for kind in spec.role_kinds}
    owner, migrator, app, readonly = (name[k] for k in BASE_ROLE_KINDS)
    roles: tuple[RoleSpec, ...] = (
        RoleSpec(owner, spec.name, RoleKind.OWNER, login=False, connection_limit=limits[RoleKind.OWNER]),
        RoleSpec(
            migrator,
            spec.name,
            RoleKind.MIGRATOR,
            login=True,
            connection_limit=limits[RoleKind.MIGRATOR],
            inherit=False,
            idle_in_transaction_session_timeout_ms=idle_in_transaction_ms,
            search_path=(schema, extensions_schema),
            assume_role=owner,
        ),
        RoleSpec(
            app,
            spec.name,
            RoleKind.APP,
            login=True,
            connection_limit=limits[RoleKind.APP],
            statement_timeout_ms=spec.statement_timeout_ms,
            idle_in_transaction_session_timeout_ms=idle_in_transaction_ms,
            search_path=(schema, extensions_schema),
        ),
        RoleSpec(
            readonly,
            spec.name,
            RoleKind.READONLY,
            login=True,
            connection_limit=limits[RoleKind.READONLY],
            statement_timeout_ms=spec.statement_timeout_ms,
            idle_in_transaction_session_timeout_ms=idle_in_transaction_ms,
            search_path=(schema, extensions_schema),
        ),
    )

    def grant(
        role: str, object_type: ObjectType, privileges: Iterable[str], on: str | None = schema
    ) -> Grant:
        return Grant(role, object_type, database, frozenset(privileges), on)

    grants = (
        *(grant(r, ObjectType.DATABASE, {"CONNECT"}, None) for r in (migrator, app, readonly)),
        grant(app, ObjectType.SCHEMA, {"USAGE"}),
        grant(readonly, ObjectType.SCHEMA, {"USAGE"}),
        grant(app, ObjectType.TABLE, APP_TABLE_PRIVILEGES),
        grant(readonly, ObjectType.TABLE, READONLY_TABLE_PRIVILEGES),
        grant(app, ObjectType.SEQUENCE, APP_SEQUENCE_PRIVILEGES),
        grant(readonly, ObjectType.SEQUENCE, READONLY_SEQUENCE_PRIVILEGES),
        grant(app, ObjectType.FUNCTION, {"EXECUTE"}),
        # PUBLIC holds nothing on the schema or anything in it (a GRANT ... TO PUBLIC is drift, repaired).
        *(grant(PUBLIC, t, ()) for t in (ObjectType.SCHEMA, ObjectType.TABLE, ObjectType.SEQUENCE,
                                         ObjectType.FUNCTION)),
        *(grant(r, ObjectType.SCHEMA, {"USAGE"}, extensions_schema) for r in (owner, app, readonly)),
    )

    def default(
        role: str, object_type: ObjectType, privileges: Iterable[str], on: str | None = schema
    ) -> DefaultPrivilege:
        return DefaultPrivilege(owner, role, object_type, database, frozenset(privileges), on)

    defaults: tuple[DefaultPrivilege, ...] = (
        default(app, ObjectType.TABLE, APP_TABLE_PRIVILEGES),
        default(readonly, ObjectType.TABLE, READONLY_TABLE_PRIVILEGES),
        default(app, ObjectType.SEQUENCE, APP_SEQUENCE_PRIVILEGES),
        default(readonly, ObjectType.SEQUENCE, READONLY_SEQUENCE_PRIVILEGES),
        default(app, ObjectType.FUNCTION, {"EXECUTE"}),
        # Functions are executable by PUBLIC unless the creating role's default says otherwise.
        default(PUBLIC, ObjectType.FUNCTION, (), None),
    )
    memberships: tuple[Membership, ...] = (Membership(migrator, owner),)
    if spec.holds_personal_data:
        gdpr_roles, gdpr_memberships, gdpr_grants, gdpr_defaults = _gdpr_access(
            spec, database, name, idle_in_transaction_ms
        )
        roles += gdpr_roles
        memberships += gdpr_memberships
        grants += gdpr_grants
        defaults += gdpr_defaults
    access = ServiceAccess(
        service=spec.name,
        schema=schema,
        owner=owner,
        roles=roles,
        memberships=memberships,
        grants=grants,
        default_privileges=defaults,
        personal_tables=spec.personal_tables,
        publishes_events=bool(spec.events),
        event_payloads=tuple((e.type, e.version, e.payload) for e in spec.events),
    )
    check_service_access(access)
    return access


def _gdpr_access(
    spec: ServiceSpec, database: str, name: dict[RoleKind, str], idle_in_transaction_ms: int
) -> tuple[tuple[RoleSpec, ...], tuple[Membership, ...], tuple[Grant, ...], tuple[DefaultPrivilege, ...]]:
    """The GDPR pair of a service holding personal data (docs/gdpr.md, "Roles").

    - `<service>_gdpr_definer` NOLOGIN, BYPASSRLS: owns the contract functions, which are SECURITY DEFINER,
      so erase and export reach the subject's rows in every tenant (forced RLS binds the schema owner, and
      a person may belong to several institutions). It may read, change and delete rows of its own schema's
      tables, nothing else; CREATE on the schema lets a migration create the functions as it
      (`SET ROLE <service>_gdpr_definer`), the owner being a member of it.
    - `<service>_gdpr` LOGIN: the orchestrator's login. USAGE on the schema and EXECUTE on the functions
      the definer creates (its default privileges), which are only the two contract functions: the audit
      reports anything else the definer owns. No table privilege.
    """
    schema = spec.schema_name
    owner, gdpr, definer = name[RoleKind.OWNER], name[RoleKind.GDPR], name[RoleKind.GDPR_DEFINER]
    limits = spec.connection_limits()
    roles = (
        RoleSpec(gdpr, spec.name, RoleKind.GDPR, login=True, connection_limit=limits[RoleKind.GDPR],
                 statement_timeout_ms=GDPR_STATEMENT_TIMEOUT_MS,
                 idle_in_transaction_session_timeout_ms=idle_in_transaction_ms, search_path=(schema,)),
        RoleSpec(definer, spec.name, RoleKind.GDPR_DEFINER, login=False,
                 connection_limit=limits[RoleKind.GDPR_DEFINER], bypass_row_level_security=True),
    )
    grants = (
        Grant(gdpr, ObjectType.DATABASE, database, frozenset({"CONNECT"})),
        Grant(gdpr, ObjectType.SCHEMA, database, frozenset({"USAGE"}), schema),
        Grant(definer, ObjectType.SCHEMA, database, frozenset({"USAGE", "CREATE"}), schema),
        Grant(definer, ObjectType.TABLE, database, GDPR_DEFINER_TABLE_PRIVILEGES, schema),
    )
    defaults = (
        DefaultPrivilege(owner, definer, ObjectType.TABLE, database, GDPR_DEFINER_TABLE_PRIVILEGES, schema),
        DefaultPrivilege(definer, gdpr, ObjectType.FUNCTION, database, frozenset({"EXECUTE"}), schema),
        DefaultPrivilege(definer, PUBLIC, ObjectType.FUNCTION, database, frozenset(), None),
    )
    return roles, (Membership(owner, definer),), grants, defaults


def check_service_access(access: ServiceAccess) -> None:
    """Invariants that no change to the model may break (raise ValueError naming the offender)."""
    for r in access.roles:
        check_identifier(r.name, "role name")
        for attr in FORBIDDEN_ROLE_ATTRIBUTES:
            if getattr(r, attr) and attr not in SERVICE_ALLOWED_ATTRIBUTES.get(RoleKind(r.kind), frozenset()):
                raise ValueError(f"service role {r.name} must not have {attr}")
    for m in access.memberships:
        if m.member == access.owner and m.group in FORBIDDEN_OWNER_MEMBERSHIPS:
            raise ValueError(f"owner role {access.owner} must not be a member of {m.group}")
    owner = access.role(RoleKind.OWNER)
    if owner.login:
        raise ValueError(f"owner role {owner.name} must be NOLOGIN")


# Connection limits of the platform logins: they come out of the instance's reserved connections.
PLATFORM_CONNECTION_LIMITS = {
    PlatformRoleKind.OPS: 3,
    PlatformRoleKind.DATA_MOVER: 4,
    PlatformRoleKind.EXTRACTION_REPLICATOR: 2,
    PlatformRoleKind.CDC_REPLICATOR: 2,  # the floor: cdc_connection_limit() sizes it for the connectors
    PlatformRoleKind.AUDITOR: 0,
}
CDC_CONNECTIONS_PER_CONNECTOR = 3
"""What one Debezium PostgreSQL connector holds as the CDC login (Debezium 3.6 `PostgresConnectorTask`: its main
JDBC connection, the replication connection, and a short-lived one for the charset and type registry at each
(re)start; tests/pg/test_events_debezium.py counts them on the real server). With 2 for the whole platform the
real connector failed to start ("too many connections for role"), and every publishing service has one."""
CDC_SPARE_CONNECTIONS = 1
"""An operator's `pg_recvlogical` or the local relay beside the connectors."""


def cdc_connection_limit(publishers: int) -> int:
    """The CDC login's CONNECTION LIMIT: every publishing service's connector, plus a spare."""
    return max(PLATFORM_CONNECTION_LIMITS[PlatformRoleKind.CDC_REPLICATOR],
               publishers * CDC_CONNECTIONS_PER_CONNECTOR + CDC_SPARE_CONNECTIONS)
SUPERUSER_RESERVED_CONNECTIONS = 3
"""PostgreSQL's `superuser_reserved_connections` default (PostgreSQL 15 docs, "Connections and Authentication"):
slots only a superuser may take, also out of the reserved connections (the parameter group does not change it)."""


def platform_connection_limits(publishers: int) -> dict[PlatformRoleKind, int]:
    """Each platform role's CONNECTION LIMIT, the CDC login's sized for `publishers` outbox connectors."""
    return {**PLATFORM_CONNECTION_LIMITS, PlatformRoleKind.CDC_REPLICATOR: cdc_connection_limit(publishers)}


def platform_connection_demand(publishers: int) -> int:
    """What the reserved connections must hold: every platform login's CONNECTION LIMIT plus the superuser's
    reserved slots."""
    return sum(platform_connection_limits(publishers).values()) + SUPERUSER_RESERVED_CONNECTIONS


OPS_STATEMENT_TIMEOUT_MS = 60_000
# The only powers a platform role may hold, by purpose (policy/access.py checks the same table).
PLATFORM_ALLOWED_ATTRIBUTES: dict[PlatformRoleKind, frozenset[str]] = {
    PlatformRoleKind.OPS: frozenset(),
    PlatformRoleKind.DATA_MOVER: frozenset({"bypass_row_level_security"}),
    # The initial copy of an extraction reads every row of the service's tables through this login; under
    # forced RLS only a BYPASSRLS reader sees them all (PG15 refuses or filters otherwise). Its REPLICATION
    # already lets it decode every row of the database, so this adds no read power (docs/extraction-runbook.md).
    PlatformRoleKind.EXTRACTION_REPLICATOR: frozenset({"replication", "bypass_row_level_security"}),
    PlatformRoleKind.CDC_REPLICATOR: frozenset({"replication"}),
    PlatformRoleKind.AUDITOR: frozenset(),
}


def platform_roles_by_name() -> dict[str, tuple[PlatformRoleKind, frozenset[str]]]:
    """Platform role name -> (kind, the predefined roles it may join on any target)."""
    memberships = {m for t in Target for m in platform_access(DEFAULT_DATABASE, t).memberships}
    return {
        platform_role_name(k): (k, frozenset(m.group for m in memberships if m.member == platform_role_name(k)))
        for k in PlatformRoleKind
    }


def platform_role_name(kind: PlatformRoleKind | str) -> str:
    if PlatformRoleKind(kind) is PlatformRoleKind.AUDITOR:
        return AUDIT_ROLE
    return check_identifier(f"{PLATFORM_PREFIX}_{PlatformRoleKind(kind).value}", "platform role name")


def platform_access(
    database: str, target: Target, *, idle_in_transaction_ms: int = DEFAULT_IDLE_IN_TRANSACTION_MS,
    publishers: int = 0,
) -> PlatformAccess:
    """The platform's roles. REPLICATION is an attribute locally; on RDS only membership in
    `rds_replication` gives it (the master user cannot grant the attribute). `publishers`: the services with
    events, one outbox connector each, which the CDC login's connection limit must hold."""
    limits = platform_connection_limits(publishers)
    ops, mover, extraction, cdc, auditor = (platform_role_name(k) for k in PlatformRoleKind)
    replication_attribute = target is Target.LOCAL

    def login(
        name: str, kind: PlatformRoleKind, *, timeout_ms: int | None = None, bypass: bool = False,
        replication: bool = False,
    ) -> RoleSpec:
        return RoleSpec(
            name, PLATFORM_PREFIX, kind, login=True, connection_limit=limits[kind], statement_timeout_ms=timeout_ms,
            idle_in_transaction_session_timeout_ms=idle_in_transaction_ms, bypass_row_level_security=bypass,
            replication=replication,
        )

    roles = (
        login(ops, PlatformRoleKind.OPS, timeout_ms=OPS_STATEMENT_TIMEOUT_MS),
        login(mover, PlatformRoleKind.DATA_MOVER, bypass=True),
        login(extraction, PlatformRoleKind.EXTRACTION_REPLICATOR, replication=replication_attribute, bypass=True),
        login(cdc, PlatformRoleKind.CDC_REPLICATOR, replication=replication_attribute),
        RoleSpec(auditor, PLATFORM_PREFIX, PlatformRoleKind.AUDITOR, login=False,
                 connection_limit=limits[PlatformRoleKind.AUDITOR]),
    )
    memberships = [
        Membership(ops, "pg_monitor"),
        Membership(mover, "pg_read_all_data"),
        Membership(mover, "pg_write_all_data"),
        Membership(extraction, "pg_read_all_data"),  # the initial copy of an extraction (SELECT on its tables)
    ]
    if not replication_attribute:
        memberships += [Membership(extraction, "rds_replication"), Membership(cdc, "rds_replication")]
    grants = (
        *(Grant(r.name, ObjectType.DATABASE, database, frozenset({"CONNECT"})) for r in roles if r.login),
        # The metrics job reads pg_stat_statements, which lives in the shared `extensions` schema.
        Grant(ops, ObjectType.SCHEMA, database, frozenset({"USAGE"}), EXTENSIONS_SCHEMA),
    )
    access = PlatformAccess(roles=roles, memberships=tuple(memberships), grants=grants)
    check_platform_access(access)
    return access


def check_platform_access(access: PlatformAccess) -> None:
    """Each platform role holds only the power its purpose needs (raise ValueError naming the offender)."""
    for r in access.roles:
        held = {a for a in FORBIDDEN_ROLE_ATTRIBUTES if getattr(r, a)}
        extra = held - PLATFORM_ALLOWED_ATTRIBUTES[PlatformRoleKind(r.kind)]
        if extra:
            raise ValueError(f"platform role {r.name} must not have {', '.join(sorted(extra))}")
    for m in access.memberships:
        if m.group not in PREDEFINED_ROLES:
            raise ValueError(f"platform role {m.member} may only join predefined roles, not {m.group}")


def build_access_model(
    catalog: Catalog,
    *,
    database: str = DEFAULT_DATABASE,
    idle_in_transaction_ms: int = DEFAULT_IDLE_IN_TRANSACTION_MS,
    target: Target = Target.LOCAL,
    admin: str = "edumatrix_admin",
) -> AccessModel:
    """The whole access model for a (possibly stack-overridden) catalog."""
    check_identifier(database, "database name")
    check_identifier(admin, "admin role name")
    services = tuple(
        service_access(s, database, idle_in_transaction_ms=idle_in_transaction_ms) for s in catalog
    )
    database_grants = (
        Grant(PUBLIC, ObjectType.DATABASE, database, frozenset()),
        Grant(PUBLIC, ObjectType.SCHEMA, database, frozenset(), "public"),
    )
    # pg_stat_statements: per-service query time and statement rates for the metrics collector (ops/metrics.py).
    extensions = (Extension("pgcrypto", EXTENSIONS_SCHEMA), Extension("pgaudit"),
                  Extension("pg_stat_statements", EXTENSIONS_SCHEMA))
    return AccessModel(
        database=database,
        services=services,
        database_grants=database_grants,
        extensions=extensions,
        platform=platform_access(database, target, idle_in_transaction_ms=idle_in_transaction_ms,
                                 publishers=sum(1 for s in catalog if s.events)),
        target=target,
        admin=admin,
    )


def model_for_settings(settings: StackSettings) -> AccessModel:
    """The access model of a stack's (shared) instance: its catalog (with overrides), database name, timeouts and
    target, with each service being extracted as its phase leaves it there (config/extraction_plan.py)."""
    from config.extraction_plan import phases, source_model  # it builds on this module

    return source_model(full_model_for_settings(settings), phases(settings))


def full_model_for_settings(settings: StackSettings) -> AccessModel:
    """The access model of a stack with no extraction applied (what an extraction target starts from)."""
    return build_access_model(
        settings.catalog(),
        database=settings.instance.database_name,
        idle_in_transaction_ms=settings.instance.idle_in_transaction_session_timeout_ms,
        target=Target.LOCAL if settings.is_local else Target.RDS,
        admin=settings.instance.master_username,
    )
