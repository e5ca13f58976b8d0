"""What only a superuser (locally) or the RDS master user can install: the grant guard and the lock-down of
catalog functions.

- `install_guard(conn, model)`: the event trigger `edumatrix_refuse_foreign_grants` on `ddl_command_end`.
  After every GRANT, ALTER DEFAULT PRIVILEGES and CREATE/ALTER of a relation, routine, type or schema run by a
  service role, it re-checks that service's whole slice of the catalog (ACLs of its schema and of everything
  in it, including columns; default privileges of its roles; large objects its roles own) and raises an
  error, which rolls the statement back, if anything is granted to PUBLIC or to a role outside the service.
  One exception: SELECT on a relation to pgaudit's object-audit role (`rds_pgaudit`), which logs reads and
  gives nobody access (nobody is a member of it): the migration creating a personal table grants it so
  that reads are audited (docs/gdpr.md); the read-back reports it on a table the catalog does not list.
  And, for a service that publishes events, the CDC login's USAGE on the schema and SELECT on the outbox
  (docs/events.md), which the platform grants and the service's later DDL must not trip over.
  (An event trigger cannot see a GRANT's grantee: PostgreSQL hands it an opaque `pg_ddl_command`, research
  issue 11 section 2; so it checks the result instead.) The roles of each service are written into the
  function from the model each time it is installed, so it needs no table and runs with the rights of
  the role that issued the DDL (catalogs are readable by everyone). Roles outside the catalog's services
  (the platform admin, the RDS master user, a superuser) are not checked here: the read-back is.
  Fail-closed: a foreign grant that predates the guard blocks that service's DDL until it is revoked
  (`edumatrix-db local up --revoke-foreign`); the error names it.
  Locally the bootstrap superuser installs it (`local up`); on RDS the master user may create event
  triggers (`edumatrix-db guard install --uri ...`), and must drop them before a major-version upgrade
  (`edumatrix-db guard drop`; docs/platform-roles.md).
- `lock_down_functions(conn, model)` (superuser only: RDS's master user cannot change catalog functions):
  EXECUTE on the 21 advisory-lock functions is revoked from PUBLIC and granted to the service owners (the
  migrators run as the owner; migration tools take these locks), and PUBLIC loses CONNECT on the other
  databases, where the same functions would reach the same shared lock table. Run once per database.
"""

from __future__ import annotations

from typing import Any

import psycopg

from config.access import ADVISORY_LOCK_FUNCTIONS, AUDIT_ROLE, AccessModel
from config.naming import quote_ident
from edumatrix_db.database.drift import GUARD_TRIGGER
from edumatrix_db.database.sql import literal

GUARD_SCHEMA = "edumatrix_guard"
GUARD_FUNCTION = f"{GUARD_SCHEMA}.refuse_foreign_grants()"
GUARD_TAGS = (
    "GRANT", "ALTER DEFAULT PRIVILEGES", "ALTER LARGE OBJECT", "CREATE TABLE", "CREATE TABLE AS", "SELECT INTO",
    "CREATE VIEW", "CREATE MATERIALIZED VIEW", "CREATE SEQUENCE", "CREATE FUNCTION", "CREATE PROCEDURE",
    "CREATE TYPE", "CREATE DOMAIN", "ALTER TABLE", "ALTER VIEW", "ALTER MATERIALIZED VIEW", "ALTER SEQUENCE",
    "ALTER FUNCTION", "ALTER PROCEDURE", "ALTER ROUTINE", "ALTER TYPE", "ALTER DOMAIN", "ALTER SCHEMA",
)

# Every ACL entry of the acting service's slice of the catalog that names PUBLIC or a role outside it. After a
# GRANT or ALTER DEFAULT PRIVILEGES (whose target an event trigger cannot see) the whole slice is checked;
# after a CREATE or ALTER only the objects the command touched (`pg_event_trigger_ddl_commands()`), which
# keeps the guard's cost per migration statement independent of the schema's size.
def _check(whole: bool, cdc_role: str) -> str:
    def only(column: str) -> str:
        return "" if whole else f" AND {column} = ANY(changed)"

    arms = [
        "SELECT 'schema' AS kind, n.nspname::text AS object, (aclexplode(n.nspacl)).* FROM pg_namespace n "
        f"WHERE n.nspname = svc_schema{only('n.oid')}",
        "SELECT 'relation', format('%I.%I', n.nspname, c.relname), (aclexplode(c.relacl)).* FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = svc_schema{only('c.oid')}",
        "SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname), (aclexplode(a.attacl)).* "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = svc_schema AND a.attacl IS NOT NULL{only('c.oid')}",
        "SELECT 'routine', p.oid::regprocedure::text, (aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))).* "
        f"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = svc_schema{only('p.oid')}",
        "SELECT 'type', format('%I.%I', n.nspname, t.typname), (aclexplode(t.typacl)).* FROM pg_type t "
        f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = svc_schema{only('t.oid')}",
    ]
    if whole:
        arms += [
            "SELECT 'default privileges of ' || r.rolname, CASE d.defaclnamespace WHEN 0 THEN '(every schema)' "
            "ELSE d.defaclnamespace::regnamespace::text END, (aclexplode(d.defaclacl)).* FROM pg_default_acl d "
            "JOIN pg_roles r ON r.oid = d.defaclrole WHERE d.defaclrole = ANY(svc_oids)",
            "SELECT 'large object', l.oid::text, (aclexplode(l.lomacl)).* FROM pg_largeobject_metadata l "
            "WHERE l.lomowner = ANY(svc_oids)",
        ]
    union = "\n      UNION ALL ".join(arms)
    return f"""WITH acl AS (
      {union})
    SELECT acl.kind, acl.object, acl.privilege_type,
           CASE WHEN acl.grantee = 0 THEN 'PUBLIC' ELSE coalesce(g.rolname::text, acl.grantee::text) END AS grantee
      INTO bad
      FROM acl LEFT JOIN pg_roles g ON g.oid = acl.grantee
     WHERE (acl.grantee = 0 OR NOT (acl.grantee = ANY(svc_oids)))
       AND NOT (g.rolname = {literal(AUDIT_ROLE)} AND acl.kind = 'relation' AND acl.privilege_type = 'SELECT')
       AND NOT (g.rolname = {literal(cdc_role)} AND svc_outbox IS NOT NULL
                AND ((acl.kind = 'schema' AND acl.privilege_type = 'USAGE')
                     OR (acl.kind = 'relation' AND acl.privilege_type = 'SELECT'
                         AND acl.object = format('%I.%I', svc_schema, svc_outbox))))
     LIMIT 1;"""


def guard_sql(model: AccessModel) -> list[str]:
    """The statements that (re)install the grant guard for the model's services. Idempotent."""
    services = ", ".join(
        "(" + literal(s.schema) + ", ARRAY[" + ", ".join(literal(r.name) for r in s.roles) + "]::name[], "
        + (literal(s.outbox) if s.outbox else "NULL") + "::name)"
        for s in model.services
    )
    body = f"""
DECLARE
  svc_schema name;
  svc_roles name[];
  svc_outbox name;
  svc_oids oid[];
  changed oid[];
  bad record;
BEGIN
  SELECT s.schema_name, s.roles, s.outbox INTO svc_schema, svc_roles, svc_outbox
    FROM (VALUES {services}) s(schema_name, roles, outbox) WHERE current_user = ANY(s.roles);
  IF NOT FOUND THEN
    RETURN;  -- the platform (admin, master user, superuser): checked by the read-back, not here
  END IF;
  svc_oids := ARRAY(SELECT oid FROM pg_roles WHERE rolname = ANY(svc_roles));
  IF tg_tag IN ('GRANT', 'ALTER DEFAULT PRIVILEGES', 'ALTER LARGE OBJECT') THEN
    {_check(True, model.cdc_role)}
  ELSE
    changed := ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands());
    {_check(False, model.cdc_role)}
  END IF;
  IF FOUND THEN
    RAISE EXCEPTION '% refused: % % would give % to %, which is not a role of schema %', tg_tag, bad.kind,
      bad.object, bad.privilege_type, bad.grantee, svc_schema
      USING ERRCODE = 'insufficient_privilege',
            HINT = 'Grant only to the service''s own roles; services share data through events, not grants. '
                   'A grant made before the guard is revoked by `edumatrix-db local up --revoke-foreign`.';
  END IF;
END"""
    function = quote_ident(GUARD_SCHEMA) + ".refuse_foreign_grants()"
    tags = ", ".join(literal(t) for t in GUARD_TAGS)
    return [
        f"CREATE SCHEMA IF NOT EXISTS {quote_ident(GUARD_SCHEMA)}",
        f"REVOKE ALL ON SCHEMA {quote_ident(GUARD_SCHEMA)} FROM PUBLIC",
        f"CREATE OR REPLACE FUNCTION {function} RETURNS event_trigger LANGUAGE plpgsql "
        f"SET search_path = pg_catalog, pg_temp SET jit = off AS $guard${body}\n$guard$",
        f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC",
        f"DROP EVENT TRIGGER IF EXISTS {quote_ident(GUARD_TRIGGER)}",
        f"CREATE EVENT TRIGGER {quote_ident(GUARD_TRIGGER)} ON ddl_command_end WHEN TAG IN ({tags}) "
        f"EXECUTE FUNCTION {function}",
    ]


def drop_guard_sql() -> list[str]:
    """Before a major-version upgrade on RDS (event triggers must not exist then)."""
    return [
        f"DROP EVENT TRIGGER IF EXISTS {quote_ident(GUARD_TRIGGER)}",
        f"DROP SCHEMA IF EXISTS {quote_ident(GUARD_SCHEMA)} CASCADE",
    ]


def install_guard(conn: psycopg.Connection[Any], model: AccessModel) -> list[str]:
    """Install (or refresh) the grant guard in the connection's database, in one transaction."""
    statements = guard_sql(model)
    with conn.transaction():
        for stmt in statements:
            conn.execute(stmt.encode())
    return [f"grant guard installed ({GUARD_TRIGGER})"]


def drop_guard(conn: psycopg.Connection[Any]) -> list[str]:
    with conn.transaction():
        for stmt in drop_guard_sql():
            conn.execute(stmt.encode())
    return [f"grant guard dropped ({GUARD_TRIGGER})"]


def lock_down_functions(conn: psycopg.Connection[Any], model: AccessModel) -> list[str]:
    """As a superuser, in the connection's database: advisory locks only for the service owners.
    Returns what changed (nothing on a second run)."""
    changes: list[str] = []
    owners = set(model.advisory_lock_roles)
    with conn.transaction():
        for signature in ADVISORY_LOCK_FUNCTIONS:
            acl = conn.execute(
                "SELECT array(SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END "
                "FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
                "WHERE p.oid = %s::regprocedure AND a.grantee <> p.proowner)",
                [signature],
            ).fetchone()
            have = set(acl[0]) if acl else set()
            if "PUBLIC" in have:
                conn.execute(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC".encode())
                changes.append(f"REVOKE EXECUTE ON FUNCTION {signature} FROM PUBLIC")
            for owner in sorted(owners - have):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner]).fetchone()
                if exists:
                    conn.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {quote_ident(owner)}".encode())
                    changes.append(f"GRANT EXECUTE ON FUNCTION {signature} TO {owner}")
    return changes


def revoke_public_connect_elsewhere(conn: psycopg.Connection[Any], database: str) -> list[str]:
    """PUBLIC may connect to `postgres` and `template1` by default, where the advisory-lock functions are
    PUBLIC's again and reach the same shared lock table: only superusers connect there locally."""
    changes = []
    for (name,) in conn.execute(
        "SELECT d.datname FROM pg_database d WHERE d.datallowconn AND d.datname <> %s AND EXISTS "
        "(SELECT 1 FROM aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE a.grantee = 0 "
        "AND a.privilege_type IN ('CONNECT', 'TEMPORARY')) ORDER BY 1",
        [database],
    ).fetchall():
        stmt = f'REVOKE CONNECT, TEMPORARY ON DATABASE "{name.replace(chr(34), chr(34) * 2)}" FROM PUBLIC'
        conn.execute(stmt.encode())
        changes.append(stmt)
    return changes
