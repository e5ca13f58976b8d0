"""The catalog read-back: what a real PostgreSQL holds of the access model (roles, settings, memberships,
schema owners, grants, default privileges, extensions), in the canonical form of
`config.access.AccessModel.canonical()`, so it compares with the model that `sql.apply` applied.
"""

from __future__ import annotations

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
    names = [r.name for r in model.roles]
    for row in conn.execute(
        "SELECT rolname, rolcanlogin, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
        "rolreplication, coalesce((SELECT setconfig FROM pg_db_role_setting s WHERE s.setrole = r.oid "
        "AND s.setdatabase = 0), '{}') FROM pg_roles r WHERE rolname = ANY(%s)",
        [names],
    ).fetchall():
        name, login, limit, sup, cdb, crole, bypass, repl, settings = row
        out.add(
            (
                "role",
                name,
                ("login", login),
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
            "WHERE n.nspname = ANY(%s) AND p.prokind IN ('f','a','w')",
        ),
    ):
        for (scope, who), objs in acl_rows(query.format(g=grantee_sql), [schemas]).items():
            if len({p for _, p in objs}) == 1:
                out.add(("grant", who, object_type, db, scope, next(iter(objs))[1]))
            else:
                out.add(("grant-inconsistent", who, object_type, db, scope, tuple(sorted(objs))))
    letters = {"r": "table", "S": "sequence", "f": "function"}
    owners = [s.owner for s in model.services]
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
