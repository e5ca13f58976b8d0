"""The guard's judgement: a catalog read-back (`catalog.Snapshot`) against the access model.

`evaluate(snapshot, model)` lists every difference as a `Drift`: its rule, service, object, what is wrong
and how to fix it. Where the model owns the thing (a service role's memberships, settings and grants, PUBLIC's
rights, the grants on a service's objects to that service's own roles) the drift carries the SQL that restores
the model (`repair`), which `sql.apply` runs. A grant to a role outside the service is `foreign`: it is
repaired only when asked (`local up --revoke-foreign`), because a running service may depend on it. What the
platform must not change on its own (objects owned by someone else, tables outside tenant isolation, names,
roles that are not in the model, large objects) is reported only.

Rules (the audit publishes one count per rule):
- isolation: every grant, membership, default privilege, role attribute and setting as the model says;
  nothing to PUBLIC; SECURITY DEFINER functions pin their search_path; the grant guard is installed.
- tenant_coverage: every table and partition of a service schema has `institution_id NOT NULL`, RLS enabled
  and forced with exactly the service's tenant policy; keys and foreign keys include `institution_id`;
  views are `security_invoker`; materialized views and foreign tables (no RLS possible) are flagged. The one
  table exempt is the migrations' version table `<service>_schema_version` (config/naming.py), which holds
  Alembic's revision id, not tenant data (by name only: a team that stores data in it defeats the rule).
- naming: spec 5.A: `<service>_<entity>`, `<service>_fn_<action>`, `<service>_trg_<event>`.
- ownership: the schema and everything in it belong to `<service>_owner`.
- unknown_role: roles the model does not know (PostgreSQL's and RDS's own roles excepted).
- large_object: large objects live outside every schema, beyond RLS and schema privileges.
- gdpr: a service holding personal data (`personal_tables` in config/services.yaml) implements the contract
  once it has tables: `<service>_fn_erase_subject` and `<service>_fn_export_subject`, one each, SECURITY
  DEFINER, owned by `<service>_gdpr_definer`, executable by `<service>_gdpr` (docs/gdpr.md); the object-audit
  role (`rds_pgaudit`) holds SELECT on exactly the catalog's personal tables (isolation rule, repaired).
- events (docs/events.md): a publication reaches every row of what it covers through any slot, whatever the
  reader's grants. A publication covering a service's tables is one of: the service's outbox publication
  `<service>_outbox_pub` (its outbox only, inserts only) or its extraction's (`edumatrix_extract_<service>`,
  the whole schema). Anything else, and FOR ALL TABLES, is reported; so is a publishing service (catalog
  `events`) whose outbox publication is missing. The CDC login's SELECT on the outbox (and nothing else) is
  judged by the isolation rule. Outbox and inbox do not count as the tables that make a service owe the GDPR
  contract (they are the platform's, created with the schema).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from config.access import PUBLIC, AccessModel, ObjectType, Target
from config.extraction import publication_name as extraction_publication_name
from config.naming import (
    InvalidIdentifier,
    RoleKind,
    check_identifier,
    contract_functions,
    inbox_table_name,
    outbox_publication_name,
    version_table_name,
)
from edumatrix_db.database.catalog import SHARED_SCHEMAS, Snapshot
from edumatrix_db.database.tenancy import TENANT_COLUMN, expected_policy_expression, policy_name

RULES = ("isolation", "tenant_coverage", "naming", "ownership", "unknown_role", "large_object", "gdpr", "events")
GUARD_TRIGGER = "edumatrix_refuse_foreign_grants"
BOOTSTRAP_SUPERUSER_OID = 10  # initdb's superuser (`postgres` locally, `rdsadmin` on RDS)
# RDS's own roles (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Appendix.PostgreSQL.CommonDBATasks.Roles.html)
RDS_INTERNAL_ROLES = frozenset({"rdsadmin", "rdsrepladmin", "rdstopmgr", "rdswriteforwarduser", "rdsproxyadmin"})
_TABLE_KINDS = {"r", "p", "v", "m", "f"}
_ROUTINE_KINDS = {"function", "procedure", "aggregate", "window function"}
_SQL_KIND = {"table": "TABLE", "sequence": "SEQUENCE", "function": "ROUTINE", "schema": "SCHEMA",
             "database": "DATABASE", "type": "TYPE", "large object": "LARGE OBJECT"}
_DEFACL_PLURAL = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}
_DEFACL_TYPE = {"r": ObjectType.TABLE, "S": ObjectType.SEQUENCE, "f": ObjectType.FUNCTION}
_TRUE = {"true", "on", "yes", "1"}


@dataclass(frozen=True)
class Drift:
    rule: str
    service: str | None
    object: str
    message: str
    fix: str
    repair: tuple[str, ...] = ()  # statements that restore the model (run by the platform admin)
    foreign: bool = False  # revokes from a role outside the service: only with --revoke-foreign
    act_as: str | None = None  # the admin needs membership in this role to run `repair`


def ident(name: str) -> str:
    """Quote any name read from the catalog (it may need quoting: it was not created by the platform)."""
    return '"' + name.replace('"', '""') + '"'


def grantee_sql(name: str) -> str:
    return "PUBLIC" if name in (PUBLIC, "PUBLIC") else ident(name)


def _privs(privs: Iterable[str]) -> str:
    return ", ".join(sorted(privs)) or "nothing"


class _Judge:
    def __init__(self, snap: Snapshot, model: AccessModel) -> None:
        self.snap = snap
        self.model = model
        self.by_schema = {s.schema: s for s in model.services}
        self.role_service = {r.name: s for s in model.services for r in s.roles}
        self.model_roles = {r.name for r in model.all_roles}
        self.declared: dict[tuple[str, str | None], dict[str, frozenset[str]]] = defaultdict(dict)
        for g in model.all_grants():  # (object kind, schema or None) -> grantee -> privileges
            grantee = "PUBLIC" if g.role == PUBLIC else g.role
            self.declared[(g.object_type.value, g.schema or None)][grantee] = g.privileges
        self.audited = model.audited_tables()  # schema -> personal tables: rds_pgaudit holds SELECT on them
        self.outboxes = model.outbox_tables()  # schema -> outbox: the CDC login holds SELECT on it, nothing else
        # contract function identity -> the service's GDPR login, for functions owned by the service's definer
        self.contract: dict[str, str] = {}
        for s in model.services:
            if not s.holds_personal_data:
                continue
            names = set(contract_functions(s.service))
            definer, gdpr = s.role(RoleKind.GDPR_DEFINER).name, s.role(RoleKind.GDPR).name
            self.contract.update({o.identity: gdpr for o in snap.objects if o.schema == s.schema
                                  and o.name in names and o.owner == definer and o.kind in _ROUTINE_KINDS})

    # -- helpers ---------------------------------------------------------------------------------------
    def service_name(self, schema: str | None) -> str | None:
        s = self.by_schema.get(schema or "")
        return s.service if s else None

    def service_of_role(self, role: str) -> str | None:
        s = self.role_service.get(role)
        return s.service if s else None

    def is_own(self, grantee: str, schema: str | None) -> bool:
        """PUBLIC or a role of the service that owns `schema`: the model declares their rights there."""
        s = self.by_schema.get(schema or "")
        return grantee == "PUBLIC" or (s is not None and self.role_service.get(grantee) is s)

    # -- roles -----------------------------------------------------------------------------------------
    def roles(self) -> Iterator[Drift]:
        model, roles = self.model, self.snap.roles
        for r in model.all_roles:
            service = self.role_service[r.name].service if r.name in self.role_service else None
            row = roles.get(r.name)
            if row is None:
                yield Drift("isolation", service, f"role {r.name}", "role is missing",
                            "run `edumatrix-db local up` (local) or `pulumi up` (AWS)")
                continue
            want = {"login": r.login, "inherit": r.inherit, "connection limit": r.connection_limit,
                    "superuser": r.superuser, "createdb": r.create_database, "createrole": r.create_role,
                    "bypassrls": r.bypass_row_level_security, "replication": r.replication}
            have = {"login": row.login, "inherit": row.inherit, "connection limit": row.connection_limit,
                    "superuser": row.superuser, "createdb": row.create_database, "createrole": row.create_role,
                    "bypassrls": row.bypass_row_level_security, "replication": row.replication}
            wrong = [f"{k} {have[k]} (model: {v})" for k, v in want.items() if have[k] != v]
            if wrong:
                yield Drift("isolation", service, f"role {r.name}", "attributes differ: " + ", ".join(wrong),
                            "run `edumatrix-db local up` / `pulumi up` (a superuser must remove SUPERUSER, "
                            "BYPASSRLS or REPLICATION)")
            if row.settings != r.settings():
                yield Drift("isolation", service, f"role {r.name}",
                            f"settings {row.settings} differ from the model's {r.settings()}",
                            "run `edumatrix-db local up` / `pulumi up`")
            if row.settings_in_database:
                stmt = f"ALTER ROLE {ident(r.name)} IN DATABASE {ident(self.snap.database)} RESET ALL"
                yield Drift("isolation", service, f"role {r.name}",
                            f"settings IN DATABASE {self.snap.database} override the model: "
                            f"{row.settings_in_database}", stmt, repair=(stmt,))
        if self.snap.database_settings:
            stmt = f"ALTER DATABASE {ident(self.snap.database)} RESET ALL"
            yield Drift("isolation", None, f"database {self.snap.database}",
                        f"database-wide settings apply to every role: {list(self.snap.database_settings)}",
                        stmt, repair=(stmt,))
        for name, row in sorted(roles.items()):
            if name in self.model_roles or name == model.admin or name.startswith("pg_"):
                continue
            if row.oid == BOOTSTRAP_SUPERUSER_OID:
                continue
            if model.target is Target.RDS and (name in RDS_INTERNAL_ROLES or name.startswith("rds_")):
                continue
            powers = [label for label, held in (("SUPERUSER", row.superuser), ("BYPASSRLS",
                      row.bypass_row_level_security), ("REPLICATION", row.replication), ("CREATEROLE",
                      row.create_role), ("CREATEDB", row.create_database), ("LOGIN", row.login)) if held]
            yield Drift("unknown_role", None, f"role {name}",
                        f"role is not in the access model ({', '.join(powers) or 'NOLOGIN'})",
                        f"declare it in config/access.py, or drop it: DROP OWNED BY {ident(name)}; "
                        f"DROP ROLE {ident(name)}")

    # -- memberships -----------------------------------------------------------------------------------
    def memberships(self) -> Iterator[Drift]:
        model = self.model
        declared = {(m.member, m.group) for m in model.all_memberships()}
        declared |= {(model.admin, s.owner) for s in model.services}
        held = {(m.member, m.group) for m in self.snap.memberships}
        for member, group in sorted(held - declared):
            stmt = f"REVOKE {ident(group)} FROM {ident(member)}"
            if member in self.model_roles:
                service = self.role_service.get(member)
                yield Drift("isolation", service.service if service else None, f"role {member}",
                            f"is a member of {group}, which the model does not declare", stmt, repair=(stmt,))
            elif group in self.model_roles:
                service = self.role_service.get(group)
                yield Drift("isolation", service.service if service else None, f"role {group}",
                            f"{member}, a role outside the model, is a member of it",
                            f"{stmt} (`local up --revoke-foreign`)", repair=(stmt,), foreign=True)
        for member, group in sorted(declared - held):
            if member == model.admin:
                continue  # the admin joins owners while it applies (pulumi-postgresql does it on the fly)
            service = self.role_service.get(member)
            yield Drift("isolation", service.service if service else None, f"role {member}",
                        f"is not a member of {group} as the model declares",
                        "run `edumatrix-db local up` / `pulumi up`")

    # -- grants ----------------------------------------------------------------------------------------
    def expected(self, kind: str, schema: str | None) -> dict[str, frozenset[str]]:
        """grantee -> privileges the model declares on one object of `kind` in `schema` (None: database)."""
        return self.declared.get((kind, schema), {})

    def grants(self) -> Iterator[Drift]:
        snap = self.snap
        owners = {s.schema: s.owner for s in self.model.services}
        foreign_owned = {r.identity for r in snap.relations if r.owner != owners[r.schema]}
        foreign_owned |= {o.identity for o in snap.objects if o.schema in owners and o.owner is not None
                          and o.owner != owners[o.schema] and o.identity not in self.contract}
        table_names = {r.identity: r.name for r in snap.relations}
        held: dict[tuple[str, str, str | None, str], set[str]] = defaultdict(set)
        grantees_of: dict[tuple[str, str], set[str]] = defaultdict(set)
        grantable: set[tuple[str, str, str | None, str]] = set()
        for a in snap.acl:
            if a.grantee == a.owner:
                continue
            privileges = set(a.privileges) - ({"USAGE"} if a.kind == "type" and a.grantee == "PUBLIC" else set())
            if not privileges:
                continue  # PUBLIC's USAGE on a type is PostgreSQL's default
            key = (a.kind, a.object, a.schema, a.grantee)
            held[key] |= privileges
            grantees_of[(a.kind, a.object)].add(a.grantee)
            if a.grantable:
                grantable.add(key)
        objects: dict[tuple[str, str, str | None], None] = {}
        for r in snap.relations:
            if r.kind in _TABLE_KINDS | {"S"}:
                objects[("sequence" if r.kind == "S" else "table", r.identity, r.schema)] = None
        for o in snap.objects:
            if o.kind in _ROUTINE_KINDS and o.schema in owners:
                objects[("function", o.identity, o.schema)] = None
        for a in snap.acl:  # the database and schemas always list their owner, so each appears here
            if a.kind in ("schema", "database"):
                objects[(a.kind, a.object, a.schema)] = None
        for kind, obj, schema in objects:
            if obj in foreign_owned:
                continue
            expected = self.expected(kind, None if kind == "database" else schema)
            if obj in self.contract:  # the GDPR contract: its login may execute it, nobody else
                expected = {self.contract[obj]: frozenset({"EXECUTE"})}
            elif kind == "table" and table_names.get(obj) in self.audited.get(schema or "", ()):
                expected = {**expected, self.model.audit_role: frozenset({"SELECT"})}
            if kind == "table" and table_names.get(obj) == self.outboxes.get(schema or ""):
                expected = {**expected, self.model.cdc_role: frozenset({"SELECT"})}
            grantees = grantees_of[(kind, obj)] | set(expected)
            for grantee in sorted(grantees):
                have = frozenset(held.get((kind, obj, schema, grantee), set()))
                want = expected.get(grantee, frozenset())
                if have == want and (kind, obj, schema, grantee) not in grantable:
                    continue
                yield self.grant_drift(kind, obj, schema, grantee, have, want)
        for (kind, obj, schema, grantee), privs in sorted(held.items()):
            if (kind, obj, schema) in objects or obj in foreign_owned:
                continue
            if kind == "column":
                yield self.column_drift(obj, schema, grantee, privs)
            elif kind == "large object" and grantee in self.model_roles | {"PUBLIC"}:
                owner = next(a.owner for a in snap.acl if a.kind == kind and a.object == obj)
                service = self.role_service.get(owner)
                yield self.grant_drift(kind, obj, service.schema if service else None, grantee,
                                       frozenset(privs), frozenset())
            elif kind in ("table", "sequence", "function", "type") and schema in (*owners, *SHARED_SCHEMAS) and (
                grantee in self.model_roles or grantee == "PUBLIC"
            ):
                yield self.grant_drift(kind, obj, schema, grantee, frozenset(privs), frozenset())

    def grant_drift(self, kind: str, obj: str, schema: str | None, grantee: str, have: frozenset[str],
                    want: frozenset[str]) -> Drift:
        target = f"{_SQL_KIND[kind]} {obj}"
        stmts = [f"REVOKE ALL ON {target} FROM {grantee_sql(grantee)} CASCADE"]
        if want:
            stmts.append(f"GRANT {', '.join(sorted(want))} ON {target} TO {grantee_sql(grantee)}")
        if kind == "database" or schema in SHARED_SCHEMAS:
            own = grantee in self.model_roles or grantee == "PUBLIC"
        else:  # the object-audit role's grants are the platform's: repaired like the service's own
            own = (self.is_own(grantee, schema) or (kind == "table" and grantee == self.model.audit_role)
                   or (kind in ("table", "schema") and grantee == self.model.cdc_role))
        what = f"{grantee} holds {_privs(have)}, the model says {_privs(want)}"
        service = self.service_name(schema)
        if not own:
            service = service or (self.role_service[grantee].service if grantee in self.role_service else None)
            return Drift("isolation", service, f"{kind} {obj}", f"foreign grant: {what}",
                         f"{stmts[0]} (`local up --revoke-foreign`); a service shares data through events, "
                         "not grants", repair=tuple(stmts), foreign=True)
        return Drift("isolation", service, f"{kind} {obj}", what, "; ".join(stmts), repair=tuple(stmts))

    def column_drift(self, obj: str, schema: str | None, grantee: str, privs: set[str]) -> Drift:
        table, _, column = obj.partition(" (")
        stmt = f"REVOKE ALL ({column.rstrip(')')}) ON TABLE {table} FROM {grantee_sql(grantee)} CASCADE"
        own = self.is_own(grantee, schema) or (schema in SHARED_SCHEMAS and grantee in self.model_roles)
        return Drift("isolation", self.service_name(schema), f"column {obj}",
                     f"{'foreign ' if not own else ''}column grant: {grantee} holds {_privs(privs)}; the model "
                     "grants whole tables only", stmt, repair=(stmt,), foreign=not own)

    # -- default privileges ----------------------------------------------------------------------------
    def default_privileges(self) -> Iterator[Drift]:
        declared: dict[tuple[str, str | None, str], dict[str, frozenset[str]]] = defaultdict(dict)
        letters = {v: k for k, v in _DEFACL_TYPE.items()}
        for d in self.model.all_default_privileges():
            key = (d.owner, d.schema, letters[d.object_type])
            declared[key]["PUBLIC" if d.role == PUBLIC else d.role] = d.privileges
        held: dict[tuple[str, str | None, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for row in self.snap.default_acl:
            held[(row.role, row.schema, row.object_type)][row.grantee].add(row.privilege)
        for key in sorted(set(declared) | set(held), key=str):
            role, schema, letter = key
            entries = {g: frozenset(p) for g, p in held.get(key, {}).items() if g != role}
            if schema is None and key not in held:
                # no global row: PostgreSQL's defaults apply (PUBLIC may EXECUTE functions, USAGE types)
                entries = {"PUBLIC": frozenset({"EXECUTE"})} if letter == "f" else {}
            want = declared.get(key, {})
            grantees = set(entries) | set(want)
            if role not in self.model_roles:  # another role's defaults: only what they give the model's roles
                grantees &= self.model_roles
            for grantee in sorted(grantees):
                have_p, want_p = entries.get(grantee, frozenset()), want.get(grantee, frozenset())
                if have_p != want_p:
                    yield self.default_drift(role, schema, letter, grantee, have_p, want_p)

    def default_drift(self, role: str, schema: str | None, letter: str, grantee: str, have: frozenset[str],
                      want: frozenset[str]) -> Drift:
        scope = f"FOR ROLE {ident(role)}" + (f" IN SCHEMA {ident(schema)}" if schema else "")
        plural = _DEFACL_PLURAL.get(letter, "TABLES")
        stmts = [f"ALTER DEFAULT PRIVILEGES {scope} REVOKE ALL ON {plural} FROM {grantee_sql(grantee)}"]
        if want:
            stmts.append(f"ALTER DEFAULT PRIVILEGES {scope} GRANT {', '.join(sorted(want))} ON {plural} "
                         f"TO {grantee_sql(grantee)}")
        where = f"in schema {schema}" if schema else "in every schema"
        obj = f"default privileges of {role} on {plural.lower()} {where}"
        what = f"{grantee} gets {_privs(have)} on new objects, the model says {_privs(want)}"
        owner_service = self.role_service.get(role)
        own = owner_service is not None and (grantee == "PUBLIC" or self.role_service.get(grantee) is owner_service)
        service = self.service_of_role(role) or self.service_of_role(grantee)
        if own or (role in self.model_roles and owner_service is None):  # a platform role's own defaults
            return Drift("isolation", service, obj, what, "; ".join(stmts), repair=tuple(stmts), act_as=role)
        return Drift("isolation", service, obj, f"foreign default: {what}",
                     f"{stmts[0]} (`local up --revoke-foreign`)", repair=tuple(stmts), foreign=True, act_as=role)

    # -- ownership, routines, the guard ----------------------------------------------------------------
    def ownership(self) -> Iterator[Drift]:
        for s in self.model.services:
            owner = self.snap.schema_owners.get(s.schema)
            if owner is None:
                yield Drift("ownership", s.service, f"schema {s.schema}", "schema is missing",
                            "run `edumatrix-db local up` / `pulumi up`")
            elif owner != s.owner:
                yield Drift("ownership", s.service, f"schema {s.schema}", f"owned by {owner}, not {s.owner}",
                            f"ALTER SCHEMA {ident(s.schema)} OWNER TO {ident(s.owner)}")
        owned = [(r.schema, f"{_relkind_name(r.kind)} {r.identity}", r.owner) for r in self.snap.relations]
        owned += [(o.schema, f"{o.kind} {o.identity}", o.owner) for o in self.snap.objects
                  if o.schema is not None and o.owner is not None]
        for schema, obj, owner in owned:
            s = self.by_schema[schema]
            if owner != s.owner and obj.partition(" ")[2] not in self.contract:
                yield Drift("ownership", s.service, obj,
                            f"owned by {owner}, not {s.owner}: the platform cannot grant on it and skips it",
                            f"ALTER ... OWNER TO {ident(s.owner)} (as a superuser), or drop it")

    def routines(self) -> Iterator[Drift]:
        for o in self.snap.objects:
            if o.kind in _ROUTINE_KINDS and o.schema in self.by_schema and o.security_definer and not any(
                c.startswith("search_path=") for c in o.config
            ):
                yield Drift("isolation", self.service_name(o.schema), f"{o.kind} {o.identity}",
                            "SECURITY DEFINER without a pinned search_path: a caller's objects can take over",
                            f"ALTER FUNCTION {o.identity} SET search_path = pg_catalog, pg_temp")

    def guard(self) -> Iterator[Drift]:
        state = self.snap.event_triggers.get(GUARD_TRIGGER)
        if state not in ("O", "A"):
            yield Drift("isolation", None, f"event trigger {GUARD_TRIGGER}",
                        "the grant guard is missing" if state is None else f"the grant guard is disabled ({state})",
                        "`edumatrix-db local up` (local) or `edumatrix-db guard install --uri URI` as the master "
                        "user (RDS; docs/platform-roles.md)")

    # -- tenant coverage and naming --------------------------------------------------------------------
    def tenant_coverage(self) -> Iterator[Drift]:
        policies = defaultdict(list)
        for p in self.snap.policies:
            policies[p.table].append(p)
        for r in self.snap.relations:
            s = self.by_schema[r.schema]
            obj = f"{_relkind_name(r.kind)} {r.identity}"
            helper = f"`edumatrix-db tenancy sql {s.service} {r.name}` (docs/tenancy.md)"
            if r.kind == "r" and r.name == version_table_name(s.service):
                continue  # the migrations' version table (`migrate`): platform bookkeeping, no tenant data
            if r.kind == "v":
                if not any(o.split("=", 1)[0] == "security_invoker" and o.split("=", 1)[1].lower() in _TRUE
                           for o in r.options):
                    yield Drift("tenant_coverage", s.service, obj,
                                "view runs with its owner's rights (no security_invoker): RLS of the tables it "
                                "reads is checked against the owner", f"ALTER VIEW {r.identity} SET "
                                "(security_invoker = true)")
                continue
            if r.kind == "m":
                yield Drift("tenant_coverage", s.service, obj,
                            "materialized view: no row-level security applies, every reader sees every tenant",
                            "replace it with a table under tenant isolation (or a security_invoker view)")
                continue
            if r.kind == "f":
                yield Drift("tenant_coverage", s.service, obj, "foreign table: row-level security cannot apply",
                            "keep tenant data in tables of the service schema")
                continue
            if r.kind not in ("r", "p"):
                continue
            if not r.has_tenant_column:
                yield Drift("tenant_coverage", s.service, obj, f"has no {TENANT_COLUMN} column",
                            f"add {TENANT_COLUMN} NOT NULL, then {helper}")
                continue
            if not r.tenant_not_null:
                yield Drift("tenant_coverage", s.service, obj, f"{TENANT_COLUMN} allows NULL",
                            f"ALTER TABLE {r.identity} ALTER COLUMN {TENANT_COLUMN} SET NOT NULL")
            if not (r.rls and r.force_rls):
                state = "disabled" if not r.rls else "not forced (the owner is not bound)"
                yield Drift("tenant_coverage", s.service, obj, f"row-level security {state}", helper)
            expected = expected_policy_expression(r.tenant_type or "uuid")
            mine = policies.get(r.identity, [])
            good = [p for p in mine if p.name == policy_name(s.service) and p.command == "*" and p.permissive
                    and p.roles == ("PUBLIC",) and p.using == expected and p.with_check == expected]
            if not good or len(mine) != 1:
                names = ", ".join(p.name for p in mine) or "none"
                yield Drift("tenant_coverage", s.service, obj,
                            f"policies ({names}) are not exactly the tenant policy {policy_name(s.service)}",
                            helper)
        kinds = {"p": "primary key", "u": "unique constraint", "x": "exclusion constraint", "f": "foreign key",
                 "i": "unique index"}
        for k in self.snap.keys:
            s = self.by_schema[k.schema]
            if k.kind == "f":
                message, fix = (f"foreign key {k.name} does not match {TENANT_COLUMN} on both sides: a row may "
                                "point at another tenant's row",
                                f"FOREIGN KEY ({TENANT_COLUMN}, ...) REFERENCES ... ({TENANT_COLUMN}, ...)")
            else:
                message, fix = (f"{kinds[k.kind]} {k.name} does not include {TENANT_COLUMN}: a conflict tells one "
                                "tenant that another tenant's row exists", f"make it ({TENANT_COLUMN}, ...)")
            yield Drift("tenant_coverage", s.service, f"table {k.table}", message, fix)

    def naming(self) -> Iterator[Drift]:
        checks: list[tuple[str, str, str, str, str]] = []
        for r in self.snap.relations:
            if r.kind in _TABLE_KINDS:
                checks.append((r.schema, f"{_relkind_name(r.kind)} {r.identity}", r.name, "", "<entity>"))
        for o in self.snap.objects:
            if o.schema in self.by_schema and o.kind in _ROUTINE_KINDS:
                checks.append((o.schema, f"{o.kind} {o.identity}", o.name, "fn_", "<action>"))
            elif o.schema in self.by_schema and o.kind == "trigger":
                checks.append((o.schema, f"trigger {o.identity}", o.name, "trg_", "<event>"))
        for schema, obj, name, infix, tail in checks:
            service = self.by_schema[schema].service
            prefix = f"{service}_{infix}"
            try:
                check_identifier(name)
                plain = True
            except InvalidIdentifier:
                plain = False
            if not (plain and name.startswith(prefix) and len(name) > len(prefix)):
                yield Drift("naming", service, obj, f"name {name!r} does not follow {prefix}{tail} (spec 5.A)",
                            f"rename it to {prefix}{tail} (lower case, no quotes)")

    def gdpr_contract(self) -> Iterator[Drift]:
        """A service holding personal data implements the contract once its schema has tables."""
        event_tables = {(s.schema, t) for s in self.model.services for t in (s.outbox, inbox_table_name(s.service))}
        with_tables = {r.schema for r in self.snap.relations if r.kind in ("r", "p")
                       and (r.schema, r.name) not in event_tables}
        for s in self.model.services:
            if not s.holds_personal_data or s.schema not in with_tables:
                continue
            definer = s.role(RoleKind.GDPR_DEFINER).name
            for name in contract_functions(s.service):
                found = [o for o in self.snap.objects if o.schema == s.schema and o.name == name
                         and o.kind in _ROUTINE_KINDS]
                where = f"function {s.schema}.{name}"
                if not found:
                    yield Drift("gdpr", s.service, where,
                                "missing: the service holds personal data (config/services.yaml personal_tables) "
                                "and must implement the GDPR contract",
                                f"create {name}(subject_id) in a migration, as {definer} (docs/gdpr.md)")
                    continue
                if len(found) > 1:
                    yield Drift("gdpr", s.service, where,
                                f"{len(found)} overloads: the orchestrator calls exactly one",
                                "drop all but the one taking the subject id")
                for o in found:
                    problems = []
                    if o.owner != definer:
                        problems.append(f"owned by {o.owner}, not {definer}")
                    if not o.security_definer:
                        problems.append("not SECURITY DEFINER (under forced RLS it would see one tenant only)")
                    if problems:
                        yield Drift("gdpr", s.service, f"{o.kind} {o.identity}", "; ".join(problems),
                                    f"recreate it as {definer} with SECURITY DEFINER SET search_path = "
                                    f"{s.schema}, pg_temp (docs/gdpr.md)")

    def large_objects(self) -> Iterator[Drift]:
        for o in self.snap.objects:
            if o.kind == "large object":
                service = self.role_service.get(o.owner or "")
                yield Drift("large_object", service.service if service else None, f"large object {o.identity}",
                            f"owned by {o.owner}: large objects sit outside every schema, beyond RLS and schema "
                            "privileges", f"store the bytes in a bytea column of a tenant table; then, as "
                            f"{o.owner}: SELECT lo_unlink({o.identity})")

    def events(self) -> Iterator[Drift]:
        """Publications of service tables: the outbox's or the extraction's only; each outbox published."""
        fix = "DROP PUBLICATION {name}; a service's changes leave through its outbox (docs/events.md)"
        for p in self.snap.publications:
            if p.all_tables:
                yield Drift("events", None, f"publication {p.name}", "FOR ALL TABLES publishes every service's "
                            "tables to whoever reads a slot of it", fix.format(name=ident(p.name)))
                continue
            for schema in p.schemas:
                s = self.by_schema.get(schema)
                if s is not None and p.name != extraction_publication_name(s.service):
                    yield Drift("events", s.service, f"publication {p.name}", f"covers the whole schema {schema}; "
                                "only the service's extraction may publish it", fix.format(name=ident(p.name)))
            for table in p.tables:
                s = self.by_schema.get(table.split(".", 1)[0])
                if s is None or p.name == extraction_publication_name(s.service):
                    continue
                if p.name == outbox_publication_name(s.service) and s.outbox and table == f"{s.schema}.{s.outbox}":
                    continue
                yield Drift("events", s.service, f"publication {p.name}", f"publishes {table}, which is not "
                            f"{s.service}'s outbox", fix.format(name=ident(p.name)) + "; `edumatrix-db local up` "
                            "recreates the outbox publication")
        present = {p.name: p for p in self.snap.publications}
        for s in self.model.services:
            if not s.outbox or s.schema not in self.snap.schema_owners:
                continue
            name = outbox_publication_name(s.service)
            if name not in present:
                yield Drift("events", s.service, f"publication {name}", "missing: the service publishes events "
                            "(config/services.yaml) but its outbox is not published, so they never leave",
                            f"run `edumatrix-db events sql {s.service}` as the platform admin (or `local up`)")
            elif f"{s.schema}.{s.outbox}" not in present[name].tables:
                yield Drift("events", s.service, f"publication {name}", f"does not cover {s.schema}.{s.outbox} (a "
                            "restored or recreated outbox leaves the publication behind): no event leaves",
                            f"ALTER PUBLICATION {ident(name)} SET TABLE {ident(s.schema)}.{ident(s.outbox)}")
            elif present[name].beyond_inserts:
                yield Drift("events", s.service, f"publication {name}", "publishes more than inserts: a cleanup "
                            "DELETE of the outbox would become an event", f"ALTER PUBLICATION {ident(name)} SET "
                            "(publish = 'insert')")


def _relkind_name(kind: str) -> str:
    return {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table",
            "S": "sequence", "c": "type"}.get(kind, "relation")


def evaluate(snapshot: Snapshot, model: AccessModel) -> list[Drift]:
    """Every difference between the catalog and the model, sorted by rule, service and object."""
    judge = _Judge(snapshot, model)
    found = [
        *judge.roles(), *judge.memberships(), *judge.grants(), *judge.default_privileges(), *judge.ownership(),
        *judge.routines(), *judge.guard(), *judge.tenant_coverage(), *judge.naming(), *judge.large_objects(),
        *judge.gdpr_contract(), *judge.events(),
    ]
    return sorted(found, key=lambda d: (RULES.index(d.rule), d.service or "", d.object, d.message))
