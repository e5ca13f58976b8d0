"""The catalog read-back: what a real PostgreSQL holds of the access model (roles, settings, memberships,
schema owners, grants, default privileges, extensions), in the canonical form of
`config.access.AccessModel.canonical()`, so it compares with the model that `sql.apply` applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from config.access import PUBLIC, AccessModel


def read_canonical(conn: psycopg.Connection[Any], model: AccessModel) -> frozenset[tuple[object, ...]]:
    """What the database actually holds, in the canonical form of `AccessModel.canonical()`.

    Reads roles, settings, memberships, schema owners, ACLs and default ACLs of everything the model
    names. Grants on tables, sequences and functions are read from the objects that exist (one tuple per
    grantee when all objects of a type in a schema agree), so compare after objects exist in each schema.
    """
    out: set[tuple[object, ...]] = set()
    names = [r.name for r in model.all_roles]
    for row in conn.execute(
        "SELECT rolname, rolcanlogin, rolinherit, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, "
        "rolbypassrls, rolreplication, coalesce((SELECT setconfig FROM pg_db_role_setting s "
        "WHERE s.setrole = r.oid AND s.setdatabase = 0), '{}') FROM pg_roles r WHERE rolname = ANY(%s)",
        [names],
    ).fetchall():
        name, login, inherit, limit, sup, cdb, crole, bypass, repl, settings = row
        out.add(
            (
                "role",
                name,
                ("login", login),
                ("inherit", inherit),
                ("connection_limit", limit),
                ("superuser", sup),
                ("create_database", cdb),
                ("create_role", crole),
                ("bypass_row_level_security", bypass),
                ("replication", repl),
            )
        )
        for setting in settings:
            key, _, value = setting.partition("=")
            out.add(("setting", name, key, value))
    for member, group in conn.execute(
        "SELECT u.rolname, g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = ANY(%s)",
        [names],
    ).fetchall():
        out.add(("member", member, group))
    schemas = [s.schema for s in model.services]
    for schema, owner in conn.execute(
        "SELECT nspname, nspowner::regrole::text FROM pg_namespace WHERE nspname = ANY(%s)", [schemas]
    ).fetchall():
        out.add(("schema", schema, owner))

    def acl_rows(query: str, params: Any) -> dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]]:
        """(scope, grantee) -> {(object, privileges)} from rows (scope, object, owner, grantee, priv)."""
        held: dict[tuple[str, str, str], set[str]] = {}
        objects: dict[str, set[str]] = {}
        for scope, obj, owner, grantee_name, priv in conn.execute(query.encode(), params).fetchall():
            objects.setdefault(scope, set()).add(obj)
            if grantee_name != owner:
                held.setdefault((scope, obj, grantee_name), set()).add(priv)
        per: dict[tuple[str, str], set[tuple[str, tuple[str, ...]]]] = {}
        for (scope, obj, who), privs in held.items():
            per.setdefault((scope, who), set()).add((obj, tuple(sorted(privs))))
        for (scope, _who), objs in per.items():  # grantees missing on some objects hold () there
            missing = objects[scope] - {o for o, _ in objs}
            objs |= {(o, ()) for o in missing}
        return per

    grantee_sql = "CASE WHEN a.grantee = 0 THEN 'public' ELSE a.grantee::regrole::text END"
    db = model.database
    for (_, who), objs in acl_rows(
        f"SELECT '', d.datname, d.datdba::regrole::text, {grantee_sql}, a.privilege_type FROM pg_database d, "
        "aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = %s",
        [db],
    ).items():
        out.add(("grant", who, "database", db, "", next(iter(objs))[1]))
    for (scope, who), objs in acl_rows(
        f"SELECT n.nspname, n.nspname, n.nspowner::regrole::text, {grantee_sql}, a.privilege_type "
        "FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
        "WHERE n.nspname = ANY(%s)",
        [[*schemas, model.extensions_schema, "public"]],
    ).items():
        out.add(("grant", who, "schema", db, scope, next(iter(objs))[1]))
    for object_type, query in (
        (
            "table",
            "SELECT n.nspname, c.relname, c.relowner::regrole::text, {g}, a.privilege_type FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(coalesce(c.relacl, "
            "acldefault('r', c.relowner))) a "
            "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r','p','v','m','f')",
        ),
        (
            "sequence",
            "SELECT n.nspname, c.relname, c.relowner::regrole::text, {g}, a.privilege_type FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(coalesce(c.relacl, "
            "acldefault('s', c.relowner))) a WHERE n.nspname = ANY(%s) AND c.relkind = 'S'",
        ),
        (
            "function",
            "SELECT n.nspname, p.oid::regprocedure::text, p.proowner::regrole::text, {g}, "
            "a.privilege_type FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, "
            "aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
            # the schema owner's routines: the GDPR contract, owned by the service's definer, has its own grant
            "WHERE n.nspname = ANY(%s) AND p.prokind IN ('f','a','w') AND p.proowner = n.nspowner",
        ),
    ):
        for (scope, who), objs in acl_rows(query.format(g=grantee_sql), [schemas]).items():
            if who in (model.audit_role, model.cdc_role):
                continue  # SELECT on the personal tables / the outboxes only: judged by drift.py, not canonical
            if len({p for _, p in objs}) == 1:
                out.add(("grant", who, object_type, db, scope, next(iter(objs))[1]))
            else:
                out.add(("grant-inconsistent", who, object_type, db, scope, tuple(sorted(objs))))
    letters = {"r": "table", "S": "sequence", "f": "function"}
    owners = sorted({d.owner for d in model.all_default_privileges()})  # the owners and the GDPR definers
    rows = conn.execute(
        f"SELECT d.defaclrole::regrole::text, coalesce(n.nspname, ''), d.defaclobjtype::text, {grantee_sql}, "
        "coalesce(array_agg(a.privilege_type ORDER BY a.privilege_type), '{}') FROM pg_default_acl d "
        "LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a "
        "WHERE d.defaclrole = ANY(%s::regrole[]) GROUP BY 1, 2, 3, 4",
        [owners],
    ).fetchall()
    global_entries: dict[tuple[str, str], set[str]] = {}
    for owner, schema, letter, who, privs in rows:
        if schema == "":
            global_entries.setdefault((owner, letter), set()).add(who)
        if who != owner:
            out.add(("default", owner, who, letters[letter], db, schema, tuple(privs)))
    for owner in owners:  # a global entry without PUBLIC is how "revoked from PUBLIC" reads back
        grantees = global_entries.get((owner, "f"))
        if grantees is not None and PUBLIC not in grantees:
            out.add(("default", owner, PUBLIC, "function", db, "", ()))
    for g in model.all_grants():  # "nothing" reads back as the absence of an ACL entry
        prefix = ("grant", g.role, g.object_type.value, db, g.schema or "")
        if not g.privileges and not any(t[:5] == prefix for t in out):
            out.add((*prefix, ()))
    for name, schema in conn.execute(
        "SELECT extname, extnamespace::regnamespace::text FROM pg_extension WHERE extname = ANY(%s)",
        [[e.name for e in model.extensions]],
    ).fetchall():
        out.add(("extension", name, "" if schema == "public" else schema))
    return frozenset(out)


# -- the whole catalog, for the guard (drift.py) and the audit (ops/audit.py) -----------------------------
# Every query covers all service schemas (and the database, `public`, `extensions`) at once: the cost of a
# read-back grows with the number of objects, not with the number of queries (bench/audit_bench.py).

SHARED_SCHEMAS = ("public", "extensions")
# Objects an extension installed are the extension's business (pgcrypto's functions in `extensions`).
_NOT_EXTENSION_MEMBER = (
    "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {cls}::regclass AND e.objid = {oid} "
    "AND e.deptype = 'e')"
)


def _not_member(cls: str, oid: str) -> str:
    return _NOT_EXTENSION_MEMBER.format(cls=f"'{cls}'", oid=oid)


def _shared_not_member(cls: str, oid: str) -> str:
    """Not an extension member, checked only in the shared schemas (n.nspname) where extensions live."""
    return f"(n.nspname <> ALL(%(shared)s) OR {_not_member(cls, oid)})"


@dataclass(frozen=True)
class RoleRow:
    name: str
    oid: int
    superuser: bool
    inherit: bool
    create_role: bool
    create_database: bool
    login: bool
    replication: bool
    bypass_row_level_security: bool
    connection_limit: int
    settings: dict[str, str]  # ALTER ROLE ... SET (all databases)
    settings_in_database: dict[str, str]  # ALTER ROLE ... IN DATABASE <this database> SET


@dataclass(frozen=True)
class MemberRow:
    group: str
    member: str
    admin_option: bool


@dataclass(frozen=True)
class AclRow:
    """The privileges one grantee other than the object's owner holds on it (`PUBLIC` for grantee 0)."""

    kind: str  # database | schema | table | sequence | function | column | type | large object
    schema: str | None
    object: str  # the identity, quoted by the server (`format('%I.%I')`, regprocedure-like for routines)
    owner: str
    grantee: str
    privileges: tuple[str, ...]
    grantable: bool  # any of them WITH GRANT OPTION


@dataclass(frozen=True)
class DefaultAclRow:
    role: str
    schema: str | None  # None: every schema (ALTER DEFAULT PRIVILEGES without IN SCHEMA)
    object_type: str  # pg_default_acl.defaclobjtype: r S f T n
    grantee: str
    privilege: str


@dataclass(frozen=True)
class RelationRow:
    schema: str
    name: str
    identity: str
    kind: str  # relkind: r p v m f S c
    owner: str
    rls: bool
    force_rls: bool
    options: tuple[str, ...]
    is_partition: bool
    parent: str | None
    has_tenant_column: bool
    tenant_not_null: bool
    tenant_type: str | None


@dataclass(frozen=True)
class PolicyRow:
    schema: str
    table: str  # identity
    name: str
    command: str  # polcmd: * r a w d
    permissive: bool
    roles: tuple[str, ...]
    using: str | None
    with_check: str | None


@dataclass(frozen=True)
class KeyRow:
    """A primary key, unique constraint or index, exclusion constraint or foreign key of a table that has
    `institution_id` but does not include it (or, for a foreign key, does not match it on both sides)."""

    schema: str
    table: str
    name: str
    kind: str  # p u x f i(unique index)


@dataclass(frozen=True)
class ObjectRow:
    """Any other object: routines, types, collations, ... (owner, naming), triggers, large objects."""

    schema: str | None
    kind: str  # function procedure aggregate window type domain enum range collation ... trigger, large object
    name: str
    identity: str
    owner: str | None
    security_definer: bool = False
    config: tuple[str, ...] = ()
    table: str | None = None  # triggers: the table


@dataclass(frozen=True)
class PublicationRow:
    """A publication: what it covers and whether it publishes more than inserts."""

    name: str
    all_tables: bool
    beyond_inserts: bool  # publishes UPDATE, DELETE or TRUNCATE
    schemas: tuple[str, ...]  # FOR TABLES IN SCHEMA
    tables: tuple[str, ...]  # FOR TABLE, as schema.table identities


@dataclass(frozen=True)
class Snapshot:
    """What the guard and the audit read, from a handful of queries (`queries` counts them)."""

    database: str
    roles: dict[str, RoleRow]
    memberships: tuple[MemberRow, ...]
    acl: tuple[AclRow, ...]
    default_acl: tuple[DefaultAclRow, ...]
    relations: tuple[RelationRow, ...]
    policies: tuple[PolicyRow, ...]
    keys: tuple[KeyRow, ...]
    objects: tuple[ObjectRow, ...]
    schema_owners: dict[str, str]
    database_settings: tuple[str, ...]  # ALTER DATABASE <this> SET ... (every role)
    event_triggers: dict[str, str]  # name -> evtenabled (O enabled, D disabled, R replica, A always)
    locks_held: int
    lock_capacity: int
    queries: int
    publications: tuple[PublicationRow, ...] = ()

    @property
    def lock_table_use(self) -> float:
        return min(1.0, self.locks_held / self.lock_capacity) if self.lock_capacity else 0.0


def _settings(config: list[str] | None) -> dict[str, str]:
    return dict(s.split("=", 1) for s in config or [])


def read_catalog(conn: psycopg.Connection[Any], model: AccessModel) -> Snapshot:
    """Read everything the guard checks, all service schemas at once, in nine queries. Read-only; the
    catalogs it reads are readable by any role (the platform's `edumatrix_ops` login is enough)."""
    schemas = [s.schema for s in model.services]
    every = [*schemas, *SHARED_SCHEMAS]
    params = {"schemas": schemas, "every": every, "shared": list(SHARED_SCHEMAS)}
    count = 0

    def rows(query: str) -> list[tuple[Any, ...]]:
        nonlocal count
        count += 1
        return conn.execute(query.encode(), params).fetchall()

    roles: dict[str, RoleRow] = {}
    names = {0: "PUBLIC"}
    for (name, oid, sup, inherit, crole, cdb, login, repl, bypass, limit, glob, indb) in rows(
        "SELECT r.rolname, r.oid, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, "
        "r.rolreplication, r.rolbypassrls, r.rolconnlimit, "
        "(SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), "
        "(SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
        " WHERE s.setrole = r.oid AND d.datname = current_database()) FROM pg_roles r"
    ):
        names[oid] = name
        roles[name] = RoleRow(name, oid, sup, inherit, crole, cdb, login, repl, bypass, limit,
                              _settings(glob), _settings(indb))
    memberships = tuple(
        MemberRow(group, member, admin)
        for group, member, admin in rows(
            "SELECT g.rolname, u.rolname, m.admin_option FROM pg_auth_members m "
            "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
        )
    )
    # (kind, schema, identity, owner oid, grantee oid, privileges, grantable), one row per grantee; the
    # owner's own entries are left out except on the database and schemas (whose owner the guard checks
    # too). Only the shared schemas can hold extension members (services cannot create extensions).
    acl_sql = """
    SELECT kind, schema, object, owner, grantee, array_agg(privilege_type ORDER BY privilege_type),
           bool_or(is_grantable)
      FROM (
    SELECT 'database' AS kind, NULL AS schema, quote_ident(d.datname) AS object, d.datdba AS owner, a.grantee,
           a.privilege_type, a.is_grantable
      FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
     WHERE d.datname = current_database()
    UNION ALL
    SELECT 'schema', n.nspname, quote_ident(n.nspname), n.nspowner, a.grantee, a.privilege_type, a.is_grantable
      FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
     WHERE n.nspname = ANY(%(every)s)
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname,
           format('%%I.%%I', n.nspname, c.relname), c.relowner, a.grantee, a.privilege_type, a.is_grantable
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
           aclexplode(c.relacl) a
     WHERE n.nspname = ANY(%(every)s) AND c.relkind IN ('r','p','v','m','f','S') AND a.grantee <> c.relowner
       AND {rel}
    UNION ALL
    SELECT 'column', n.nspname, format('%%I.%%I (%%I)', n.nspname, c.relname, t.attname), c.relowner,
           a.grantee, a.privilege_type, a.is_grantable
      FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace,
           aclexplode(t.attacl) a
     WHERE n.nspname = ANY(%(every)s) AND t.attacl IS NOT NULL AND a.grantee <> c.relowner AND {rel}
    UNION ALL
    SELECT 'function', n.nspname,
           format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), p.proowner,
           a.grantee, a.privilege_type, a.is_grantable
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace,
           aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
     WHERE n.nspname = ANY(%(every)s) AND a.grantee <> p.proowner AND {proc}
    UNION ALL
    SELECT 'type', n.nspname, format('%%I.%%I', n.nspname, t.typname), t.typowner, a.grantee,
           a.privilege_type, a.is_grantable
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace, aclexplode(t.typacl) a
     WHERE n.nspname = ANY(%(every)s) AND a.grantee <> t.typowner AND {typ}
    UNION ALL
    SELECT 'large object', NULL, l.oid::text, l.lomowner, a.grantee, a.privilege_type, a.is_grantable
      FROM pg_largeobject_metadata l, aclexplode(l.lomacl) a WHERE a.grantee <> l.lomowner
      ) acl GROUP BY 1, 2, 3, 4, 5
    """.format(rel=_shared_not_member("pg_class", "c.oid"), proc=_shared_not_member("pg_proc", "p.oid"),
               typ=_shared_not_member("pg_type", "t.oid"))
    acl = tuple(
        AclRow(kind, schema, obj, names.get(owner, str(owner)), names.get(grantee, str(grantee)), tuple(privs),
               grantable)
        for kind, schema, obj, owner, grantee, privs, grantable in rows(acl_sql)
    )
    schema_owners = {r.schema or "": r.owner for r in acl if r.kind == "schema"}
    default_acl = tuple(
        DefaultAclRow(names.get(role, str(role)), schema, objtype, names.get(grantee, str(grantee)), priv)
        for role, schema, objtype, grantee, priv in rows(
            "SELECT d.defaclrole, n.nspname, d.defaclobjtype::text, a.grantee, a.privilege_type "
            "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a"
        )
    )
    relations = tuple(
        RelationRow(schema, name, ident, kind, names.get(owner, str(owner)), rls, force, tuple(options or ()),
                    part, parent, has_tenant, not_null, tenant_type)
        for schema, name, ident, kind, owner, rls, force, options, part, parent, has_tenant, not_null, tenant_type
        in rows(
            "SELECT n.nspname, c.relname, format('%%I.%%I', n.nspname, c.relname), c.relkind::text, c.relowner, "
            "c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relispartition, "
            "(SELECT format('%%I.%%I', pn.nspname, pc.relname) FROM pg_inherits i JOIN pg_class pc ON pc.oid = "
            " i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid LIMIT 1), "
            "t.attnum IS NOT NULL, coalesce(t.attnotnull, false), format_type(t.atttypid, t.atttypmod) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = 'institution_id' AND NOT t.attisdropped "
            "WHERE n.nspname = ANY(%(schemas)s) AND c.relkind IN ('r','p','v','m','f','S','c') AND "
            + _not_member("pg_class", "c.oid")
        )
    )
    policies = tuple(
        PolicyRow(schema, table, name, cmd, permissive, tuple(roles_), using, check)
        for schema, table, name, cmd, permissive, roles_, using, check in rows(
            "SELECT n.nspname, format('%%I.%%I', n.nspname, c.relname), p.polname, p.polcmd::text, p.polpermissive, "
            "ARRAY(SELECT CASE r WHEN 0 THEN 'PUBLIC' ELSE r::regrole::text END FROM unnest(p.polroles) r), "
            "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) "
            "FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = ANY(%(schemas)s)"
        )
    )
    keys = tuple(
        KeyRow(*row)
        for row in rows(
            """
            WITH tenant AS (
              SELECT c.oid, n.nspname, format('%%I.%%I', n.nspname, c.relname) AS ident, t.attnum
                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                JOIN pg_attribute t ON t.attrelid = c.oid AND t.attname = 'institution_id' AND NOT t.attisdropped
               WHERE n.nspname = ANY(%(schemas)s))
            SELECT t.nspname, t.ident, con.conname, con.contype::text
              FROM pg_constraint con JOIN tenant t ON t.oid = con.conrelid
             WHERE con.contype IN ('p','u','f','x')
               AND NOT (t.attnum = ANY(con.conkey) AND (con.contype <> 'f' OR
                        con.confkey[array_position(con.conkey, t.attnum)] =
                        (SELECT r.attnum FROM pg_attribute r WHERE r.attrelid = con.confrelid
                            AND r.attname = 'institution_id' AND NOT r.attisdropped)))
            UNION ALL
            SELECT t.nspname, t.ident, i.relname, 'i'
              FROM pg_index x JOIN tenant t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
             WHERE x.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = x.indexrelid
                                                   AND con.conrelid = x.indrelid)
               AND NOT (t.attnum = ANY(x.indkey::int2[]))
            """
        )
    )
    objects_sql = """
    SELECT n.nspname, CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                                     WHEN 'w' THEN 'window function' ELSE 'function' END,
           p.proname, format('%%I.%%I(%%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
           p.proowner, p.prosecdef, p.proconfig, NULL
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY(%(schemas)s) AND {proc}
    UNION ALL
    SELECT n.nspname, CASE t.typtype WHEN 'd' THEN 'domain' WHEN 'e' THEN 'enum' WHEN 'r' THEN 'range'
                                     ELSE 'type' END,
           t.typname, format('%%I.%%I', n.nspname, t.typname), t.typowner, false, NULL, NULL
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = ANY(%(schemas)s) AND t.typtype IN ('b','d','e','r') AND t.typrelid = 0
       AND NOT EXISTS (SELECT 1 FROM pg_type a WHERE a.typarray = t.oid) AND {typ}
    UNION ALL
    SELECT n.nspname, 'collation', o.collname, format('%%I.%%I', n.nspname, o.collname), o.collowner, false,
           NULL, NULL FROM pg_collation o JOIN pg_namespace n ON n.oid = o.collnamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'operator', o.oprname, o.oid::regoperator::text, o.oprowner, false, NULL, NULL
      FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'conversion', o.conname, format('%%I.%%I', n.nspname, o.conname), o.conowner, false,
           NULL, NULL FROM pg_conversion o JOIN pg_namespace n ON n.oid = o.connamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'statistics', o.stxname, format('%%I.%%I', n.nspname, o.stxname), o.stxowner, false,
           NULL, NULL FROM pg_statistic_ext o JOIN pg_namespace n ON n.oid = o.stxnamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'text search configuration', o.cfgname, format('%%I.%%I', n.nspname, o.cfgname),
           o.cfgowner, false, NULL, NULL FROM pg_ts_config o JOIN pg_namespace n ON n.oid = o.cfgnamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'text search dictionary', o.dictname, format('%%I.%%I', n.nspname, o.dictname),
           o.dictowner, false, NULL, NULL FROM pg_ts_dict o JOIN pg_namespace n ON n.oid = o.dictnamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'operator family', o.opfname, format('%%I.%%I', n.nspname, o.opfname), o.opfowner,
           false, NULL, NULL FROM pg_opfamily o JOIN pg_namespace n ON n.oid = o.opfnamespace
     WHERE n.nspname = ANY(%(schemas)s)
    UNION ALL
    SELECT n.nspname, 'trigger', t.tgname, format('%%I ON %%I.%%I', t.tgname, n.nspname, c.relname), NULL,
           false, NULL, format('%%I.%%I', n.nspname, c.relname)
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY(%(schemas)s) AND NOT t.tgisinternal
    UNION ALL
    SELECT NULL, 'large object', l.oid::text, l.oid::text, l.lomowner, false, NULL, NULL
      FROM pg_largeobject_metadata l
    """.format(proc=_not_member("pg_proc", "p.oid"), typ=_not_member("pg_type", "t.oid"))
    objects = tuple(
        ObjectRow(schema, kind, name, ident, None if owner is None else names.get(owner, str(owner)), secdef,
                  tuple(config or ()), table)
        for schema, kind, name, ident, owner, secdef, config, table in rows(objects_sql)
    )
    ((db, db_settings, triggers, held, capacity, pubs),) = rows(
        "SELECT current_database(), "
        "(SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
        " WHERE s.setrole = 0 AND d.datname = current_database()), "
        "(SELECT coalesce(jsonb_object_agg(evtname, evtenabled), '{}') FROM pg_event_trigger), "
        "(SELECT count(*) FROM pg_locks WHERE NOT fastpath), "
        "current_setting('max_locks_per_transaction')::int * (current_setting('max_connections')::int "
        " + current_setting('max_prepared_transactions')::int), "
        "(SELECT coalesce(jsonb_agg(jsonb_build_array(p.pubname, p.puballtables, "
        " p.pubupdate OR p.pubdelete OR p.pubtruncate, "
        " array(SELECT n.nspname FROM pg_publication_namespace pn JOIN pg_namespace n ON n.oid = pn.pnnspid "
        "  WHERE pn.pnpubid = p.oid ORDER BY 1), "
        " array(SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_publication_rel pr "
        "  JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "  WHERE pr.prpubid = p.oid ORDER BY 1))), '[]') FROM pg_publication p)"
    )
    return Snapshot(
        database=db,
        roles=roles,
        memberships=memberships,
        acl=acl,
        default_acl=default_acl,
        relations=relations,
        policies=policies,
        keys=keys,
        objects=objects,
        schema_owners=schema_owners,
        database_settings=tuple(db_settings or ()),
        event_triggers=dict(triggers),
        locks_held=int(held),
        lock_capacity=int(capacity),
        queries=count,
        publications=tuple(PublicationRow(name, everything, beyond, tuple(schemas_), tuple(tables))
                           for name, everything, beyond, schemas_, tables in pubs),
    )
