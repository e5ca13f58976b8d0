"""What one schema holds, read from the catalog in a comparable form: the `migrate check` comparison of
the catalog after a first and a second upgrade, and the structure `docs` renders.

Everything is keyed by name and rendered by PostgreSQL's own deparsers (`format_type`,
`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_triggerdef`, `pg_get_functiondef`, `pg_get_viewdef`,
`pg_get_expr`), never by OID, so two databases built by the same migrations compare equal.
"""

from __future__ import annotations

from typing import Any

import psycopg

Snapshot = dict[str, dict[str, Any]]
_ROUTINE_ACL = "coalesce(p.proacl, acldefault('f', p.proowner))"  # NULL proacl: the implicit default


def _acl(column: str) -> str:
    return (f"ARRAY(SELECT (CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END) || '=' "
            f"|| a.privilege_type FROM aclexplode({column}) a ORDER BY 1)")


def schema_snapshot(conn: psycopg.Connection[Any], schema: str) -> Snapshot:
    """Relations, columns, constraints, indexes, triggers, policies, routines, types and sequences."""
    out: Snapshot = {k: {} for k in ("relations", "columns", "constraints", "indexes", "triggers", "policies",
                                     "functions", "types", "sequences")}
    ns = "%(schema)s::regnamespace"
    params = {"schema": schema}

    def rows(query: str) -> list[tuple[Any, ...]]:
        return conn.execute(query.encode(), params).fetchall()

    for name, kind, owner, persistence, options, rls, force, bound, parent, acl, comment, viewdef in rows(
        "SELECT c.relname, c.relkind::text, c.relowner::regrole::text, c.relpersistence::text, c.reloptions, "
        "c.relrowsecurity, c.relforcerowsecurity, pg_get_expr(c.relpartbound, c.oid), "
        "(SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid), "
        f"{_acl('c.relacl')}, obj_description(c.oid, 'pg_class'), "
        "CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END "
        f"FROM pg_class c WHERE c.relnamespace = {ns} AND c.relkind IN ('r','p','v','m','f','S','c') "
        "ORDER BY 1"
    ):
        out["relations"][name] = {
            "kind": kind, "owner": owner, "persistence": persistence, "options": sorted(options or []),
            "rls": rls, "force_rls": force, "partition_bound": bound, "parent": parent, "acl": acl,
            "comment": comment, "definition": viewdef,
        }
    for table, column, position, typ, notnull, default, identity, generated, comment in rows(
        "SELECT c.relname, a.attname, a.attnum, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid), a.attidentity::text, a.attgenerated::text, "
        "col_description(c.oid, a.attnum) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        f"WHERE c.relnamespace = {ns} AND c.relkind IN ('r','p','v','m','f','c') AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY 1, 3"
    ):
        out["columns"][f"{table}.{column}"] = {
            "table": table, "column": column, "position": position, "type": typ, "not_null": notnull,
            "default": default, "identity": identity, "generated": generated, "comment": comment,
        }
    for table, name, kind, definition, references in rows(
        "SELECT c.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid), "
        "NULLIF(con.confrelid, 0)::regclass::text FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        f"WHERE c.relnamespace = {ns} ORDER BY 1, 2"
    ):
        out["constraints"][f"{table}.{name}"] = {"table": table, "name": name, "kind": kind,
                                                 "definition": definition, "references": references}
    for table, name, definition, unique, primary, options in rows(
        "SELECT t.relname, i.relname, pg_get_indexdef(i.oid), x.indisunique, x.indisprimary, i.reloptions "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
        f"WHERE t.relnamespace = {ns} ORDER BY 2"
    ):
        out["indexes"][name] = {"table": table, "definition": definition, "unique": unique, "primary": primary,
                                "options": sorted(options or [])}
    for table, name, definition, enabled in rows(
        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled::text FROM pg_trigger t "
        f"JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = {ns} AND NOT t.tgisinternal ORDER BY 1, 2"
    ):
        out["triggers"][f"{table}.{name}"] = {"table": table, "definition": definition, "enabled": enabled}
    for table, name, command, permissive, roles, using, check in rows(
        "SELECT c.relname, p.polname, p.polcmd::text, p.polpermissive, "
        "ARRAY(SELECT CASE r WHEN 0 THEN 'PUBLIC' ELSE r::regrole::text END FROM unnest(p.polroles) r ORDER BY 1), "
        "pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p "
        f"JOIN pg_class c ON c.oid = p.polrelid WHERE c.relnamespace = {ns} ORDER BY 1, 2"
    ):
        out["policies"][f"{table}.{name}"] = {"table": table, "command": command, "permissive": permissive,
                                              "roles": roles, "using": using, "check": check}
    for signature, owner, kind, definition, acl, config in rows(
        "SELECT p.oid::regprocedure::text, p.proowner::regrole::text, p.prokind::text, "
        "CASE WHEN p.prokind IN ('f', 'p', 'w') THEN pg_get_functiondef(p.oid) END, "
        f"{_acl(_ROUTINE_ACL)}, p.proconfig "
        f"FROM pg_proc p WHERE p.pronamespace = {ns} ORDER BY 1"
    ):
        out["functions"][signature] = {"owner": owner, "kind": kind, "definition": definition, "acl": acl,
                                       "config": config}
    for name, kind, owner, labels in rows(
        "SELECT t.typname, t.typtype::text, t.typowner::regrole::text, "
        "ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) "
        "FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid "
        f"WHERE t.typnamespace = {ns} AND t.typcategory <> 'A' "
        "AND (t.typtype IN ('e', 'd', 'r', 'm') OR (t.typtype = 'c' AND c.relkind = 'c')) ORDER BY 1"
    ):
        out["types"][name] = {"kind": kind, "owner": owner, "labels": labels}
    for name, typ, start, increment, minimum, maximum, cycle, owned_by in rows(
        "SELECT c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, "
        "s.seqcycle, (SELECT d.refobjid::regclass::text || '.' || a.attname FROM pg_depend d JOIN pg_attribute a "
        "ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') "
        "AND d.classid = 'pg_class'::regclass LIMIT 1) FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid "
        f"WHERE c.relnamespace = {ns} ORDER BY 1"
    ):
        out["sequences"][name] = {"type": typ, "start": start, "increment": increment, "min": minimum,
                                  "max": maximum, "cycle": cycle, "owned_by": owned_by}
    return out


def diff_snapshots(first: Snapshot, second: Snapshot) -> list[tuple[str, str]]:
    """(object, what differs) for everything that is not the same in both snapshots."""
    out: list[tuple[str, str]] = []
    for category in sorted(set(first) | set(second)):
        a, b = first.get(category, {}), second.get(category, {})
        for key in sorted(set(a) - set(b)):
            out.append((f"{category}: {key}", "present after the first upgrade, missing after the second"))
        for key in sorted(set(b) - set(a)):
            out.append((f"{category}: {key}", "missing after the first upgrade, present after the second"))
        for key in sorted(set(a) & set(b)):
            if a[key] != b[key]:
                fields = sorted(f for f in set(a[key]) | set(b[key]) if a[key].get(f) != b[key].get(f))
                detail = "; ".join(f"{f}: {a[key].get(f)!r} then {b[key].get(f)!r}" for f in fields)
                out.append((f"{category}: {key}", detail))
    return out
