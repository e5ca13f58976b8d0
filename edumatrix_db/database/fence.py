"""An extraction's fence on one side (edumatrix_db/ops/extract.py): what it takes, how to see it, and the access
model that keeps it.

`set_fence(conn, access, fenced=True)` revokes every write privilege the service's roles hold on its schema's
tables and sequences (SELECT stays: reads of the old side keep working) and makes its migrator NOLOGIN (DDL is
not replicated, so no migration may run on a fenced side). A cutover fences the source; rollback and
`unfence-target` lift it.

`set_fence` also marks the fence on the migrator role (`COMMENT ON ROLE`, `FENCE_MARK`; cleared when lifted), so
that it can be told from drift without reading privileges: a table created in the fenced schema later gets the
app role's writes from the default privileges, which `set_fence` leaves alone.

`local up` re-applies the access model to the local server. After an extraction drill cut a service over from
that server, applying the full model would hand the service's roles their write privileges back on the old side
while its traffic runs on the target: `fenced_services` finds such a service (its migrator cannot log in, and it
carries the mark, or, for a fence set before the mark existed, its app role may INSERT into none of its tables),
`keep_fences` gives the model the fence as `set_fence` left it, so the apply keeps it, and `local up` fences the
schema again once it has created what it creates (an outbox, an inbox).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import psycopg
from psycopg import sql

from config.access import AccessModel, ObjectType, ServiceAccess
from config.naming import RoleKind

WRITE_PRIVILEGES = {ObjectType.TABLE: frozenset({"INSERT", "UPDATE", "DELETE", "TRUNCATE"}),
                    ObjectType.SEQUENCE: frozenset({"USAGE", "UPDATE"})}
"""What the fence takes from the service's roles (SELECT stays: reads of the old side keep working)."""
FENCE_MARK = "edumatrix: fenced by an extraction (edumatrix_db/database/fence.py)"
"""The comment `set_fence` puts on the fenced service's migrator role."""


def set_fence(conn: psycopg.Connection[Any], access: ServiceAccess, *, fenced: bool) -> None:
    """Revoke (or give back) the service roles' write privileges on their schema, and the migrator's login."""
    schema = sql.Identifier(access.schema)
    with conn.transaction():
        for grant in access.grants:
            writes = grant.privileges & WRITE_PRIVILEGES.get(grant.object_type, frozenset())
            if not writes:
                continue
            kind = sql.SQL("TABLES" if grant.object_type is ObjectType.TABLE else "SEQUENCES")
            template = "REVOKE {} ON ALL {} IN SCHEMA {} FROM {}" if fenced else "GRANT {} ON ALL {} IN SCHEMA {} TO {}"
            conn.execute(sql.SQL(template).format(sql.SQL(", ").join(sql.SQL(p) for p in sorted(writes)), kind,
                                                  schema, sql.Identifier(grant.role)))
        migrator = sql.Identifier(access.role(RoleKind.MIGRATOR).name)
        conn.execute(sql.SQL("ALTER ROLE {} {}").format(migrator, sql.SQL("NOLOGIN" if fenced else "LOGIN")))
        conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(
            migrator, sql.Literal(FENCE_MARK) if fenced else sql.SQL("NULL")))


def fenced(conn: psycopg.Connection[Any], access: ServiceAccess) -> bool:
    """Whether the service's app role has lost its write privileges on the schema's tables."""
    app = access.role(RoleKind.APP).name
    row = conn.execute(
        "SELECT bool_or(has_table_privilege(%s, c.oid, 'INSERT')), count(*) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %s)", (app, access.schema, app)).fetchone()
    return bool(row and row[1] and not row[0])


def carries_fence(conn: psycopg.Connection[Any], access: ServiceAccess) -> bool:
    """Whether `set_fence` fenced the service here: its migrator cannot log in and carries `FENCE_MARK` (or, for a
    fence set before the mark existed, the app role writes none of the schema's tables). A migrator made NOLOGIN by
    hand, or app grants missing while the migrator logs in, are drift, which the apply repairs."""
    row = conn.execute("SELECT NOT rolcanlogin, shobj_description(oid, 'pg_authid') FROM pg_roles "
                       "WHERE rolname = %s", (access.role(RoleKind.MIGRATOR).name,)).fetchone()
    if not (row and row[0]):
        return False
    return row[1] == FENCE_MARK or fenced(conn, access)


def fenced_services(conn: psycopg.Connection[Any], model: AccessModel) -> tuple[str, ...]:
    """The services of `model` whose schema on this connection's database carries an extraction's fence."""
    return tuple(access.service for access in model.services if carries_fence(conn, access))


def fenced_access(access: ServiceAccess) -> ServiceAccess:
    """The service's access as `set_fence(fenced=True)` leaves it: no write privilege on the schema's existing
    tables and sequences for any of its roles, the migrator NOLOGIN. Default privileges are left as they are
    (`set_fence` does not touch them, and with the migrator locked out nothing new is created)."""
    grants = tuple(dataclasses.replace(g, privileges=g.privileges - WRITE_PRIVILEGES.get(g.object_type, frozenset()))
                   for g in access.grants)
    migrator = access.role(RoleKind.MIGRATOR).name
    roles = tuple(dataclasses.replace(r, login=False) if r.name == migrator else r for r in access.roles)
    return dataclasses.replace(access, grants=grants, roles=roles)


def keep_fences(model: AccessModel, services: Collection[str]) -> AccessModel:
    """`model` with each of `services` fenced as `fenced_access` says."""
    return dataclasses.replace(model, services=tuple(fenced_access(a) if a.service in services else a
                                                     for a in model.services))
