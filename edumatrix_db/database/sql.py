"""Renderer 2 of the access model: idempotent SQL applied to a real PostgreSQL.

`apply(conn, model)` compares the catalog with the model step by step and runs SQL only where the two
differ, so a second run changes nothing (the returned report lists every statement it ran). Every
identifier goes through `config.naming.quote_ident`, which refuses anything that is not a plain
identifier, before it is quoted.

The applying login is expected to be the platform admin: the database owner with CREATEROLE, not a
superuser (as the RDS master user is). It makes itself a member of each `<service>_owner` role, because
PostgreSQL 15 asks for that membership to create a schema for the owner and to set the owner's default
privileges (pulumi-postgresql does the same behind the scenes). Extensions that need a superuser
(pgaudit) must already exist, or the connection must be a superuser's.

Schemas and data are never dropped: a service that left the catalog is reported in `orphans` and left
alone, unless `destructive=True` is passed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg

from config.access import (
    PREDEFINED_ROLES,
    PUBLIC,
    AccessModel,
    DefaultPrivilege,
    Grant,
    Membership,
    ObjectType,
    RoleSpec,
)
from config.naming import RoleKind, check_identifier, quote_ident
from config.scram import scram_verifier
from edumatrix_db.database import drift
from edumatrix_db.database.catalog import read_catalog

# relkinds and acldefault() letters per object type
_RELKINDS = {ObjectType.TABLE: ["r", "p", "v", "m", "f"], ObjectType.SEQUENCE: ["S"]}
_ACL_LETTER = {ObjectType.TABLE: "r", ObjectType.SEQUENCE: "s", ObjectType.FUNCTION: "f"}
_DEFACL_LETTER = {ObjectType.TABLE: "r", ObjectType.SEQUENCE: "S", ObjectType.FUNCTION: "f"}
_PLURAL = {ObjectType.TABLE: "TABLES", ObjectType.SEQUENCE: "SEQUENCES", ObjectType.FUNCTION: "FUNCTIONS"}
_OURS = re.compile(r"^([a-z_][a-z0-9_]*)_schema$")


@dataclass
class ApplyReport:
    changes: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # schemas/roles of services no longer in the catalog
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. an extension the server does not ship
    findings: list[drift.Drift] = field(default_factory=list)  # what the apply left as it found it

    @property
    def skipped_foreign(self) -> list[drift.Drift]:
        """Foreign grants found and left in place (revoked only with `revoke_foreign`)."""
        return [d for d in self.findings if d.foreign]

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.dropped)


def grantee(role: str) -> str:
    """A grantee in SQL: PUBLIC is a keyword, everything else a quoted identifier."""
    return "PUBLIC" if role == PUBLIC else quote_ident(role)


def quote_role(name: str) -> str:
    """A role name: a checked identifier, or one of the predefined roles (`pg_monitor`, ...) the model names."""
    return f'"{name}"' if name in PREDEFINED_ROLES else quote_ident(name)


def qi(name: str) -> str:
    """`quote_ident`, plus the one built-in schema the model names: `public` (a reserved word)."""
    return '"public"' if name == PUBLIC else quote_ident(name)


def literal(value: str) -> str:
    """A string literal; only ever used for values already checked to be identifiers or numbers."""
    return "'" + value.replace("'", "''") + "'"


class _Applier:
    def __init__(
        self,
        conn: psycopg.Connection[Any],
        report: ApplyReport,
        privileged: psycopg.Connection[Any] | None = None,
    ) -> None:
        self.conn = conn
        self.report = report
        self.privileged = privileged

    def one(self, query: str, params: Iterable[Any] | dict[str, Any] = ()) -> Any:
        row = self.conn.execute(query.encode(), params).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]

    def run(self, *statements: str) -> None:
        for stmt in statements:
            self.conn.execute(stmt.encode())
            self.report.changes.append(stmt)

    # -- roles -----------------------------------------------------------------------------------------
    def role(self, r: RoleSpec) -> None:
        """Create the role, or change only the attributes that differ (naming an attribute PostgreSQL
        reserves for superusers, even to keep it, needs a superuser: see `privileged`)."""
        q = quote_ident(r.name)
        state = self.conn.execute(
            "SELECT rolcanlogin, rolinherit, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
            "rolreplication FROM pg_roles WHERE rolname = %s",
            [r.name],
        ).fetchone()
        want = (r.login, r.inherit, r.connection_limit, r.superuser, r.create_database, r.create_role,
                r.bypass_row_level_security, r.replication)
        words = (
            ("LOGIN", "NOLOGIN"), ("INHERIT", "NOINHERIT"), None, ("SUPERUSER", "NOSUPERUSER"),
            ("CREATEDB", "NOCREATEDB"), ("CREATEROLE", "NOCREATEROLE"), ("BYPASSRLS", "NOBYPASSRLS"),
            ("REPLICATION", "NOREPLICATION"),
        )
        defaults = (False, True, -1, False, False, False, False, False)
        have = defaults if state is None else tuple(state)
        changes = [  # for a new role: whatever differs from CREATE ROLE's defaults
            f"CONNECTION LIMIT {int(value)}" if word is None else word[0 if value else 1]
            for value, current, word in zip(want, have, words, strict=True)
            if value != current
        ]
        if state is None:
            self.run_role(r, f"CREATE ROLE {q} {' '.join(changes) or 'NOLOGIN'}")
        elif changes:
            self.run_role(r, f"ALTER ROLE {q} {' '.join(changes)}", current=have)
        current = dict(
            s.split("=", 1)
            for s in self.one(
                "SELECT coalesce((SELECT setconfig FROM pg_db_role_setting s WHERE s.setdatabase = 0 AND "
                "s.setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)), '{}')",
                [r.name],
            )
        )
        desired = r.settings()
        for key in sorted(set(current) - set(desired)):
            self.run(f"ALTER ROLE {q} RESET {quote_ident(key)}")
        for key, value in desired.items():
            if current.get(key) != value:
                if key == "search_path":
                    rendered = ", ".join(quote_ident(p.strip()) for p in value.split(","))
                else:
                    if key == "role":
                        check_identifier(value, "role setting")
                    elif not value.isdigit():
                        raise ValueError(f"unexpected value {value!r} for {key}")
                    rendered = literal(value)
                self.run(f"ALTER ROLE {q} SET {quote_ident(key)} TO {rendered}")

    def run_role(self, r: RoleSpec, stmt: str, current: tuple[Any, ...] | None = None) -> None:
        """CREATE/ALTER ROLE through the privileged (superuser) connection when PostgreSQL reserves it for
        superusers: a role that has or gets SUPERUSER, BYPASSRLS or REPLICATION."""
        reserved = r.superuser or r.bypass_row_level_security or r.replication
        if current is not None:
            reserved = reserved or bool(current[3] or current[6] or current[7])
        if reserved and self.privileged is not None:
            self.privileged.execute(stmt.encode())
            self.report.changes.append(stmt)
            return
        try:
            with self.conn.transaction():
                self.run(stmt)
        except psycopg.errors.InsufficientPrivilege as exc:
            if not reserved:
                raise
            self.report.warnings.append(f"{r.name}: {exc} (a superuser must run: {stmt})")

    def membership(self, m: Membership) -> None:
        if not self.is_member(m.member, m.group):
            self.run(f"GRANT {quote_role(m.group)} TO {quote_ident(m.member)}")

    def is_member(self, member: str, group: str) -> bool:
        return bool(
            self.one(
                "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = %s AND u.rolname = %s)",
                [group, member],
            )
        )

    def admin_can_act_as(self, owner: str) -> None:
        """The applying admin joins the owner role (PostgreSQL 15 needs it to create schemas for it)."""
        if self.one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            return
        me = self.one("SELECT current_user")
        # pg_has_role(..., 'USAGE'): a membership whose privileges are inherited. PostgreSQL 16 gives a
        # CREATEROLE creator a membership with ADMIN only (no INHERIT, no SET): not enough, grant again.
        if not self.one("SELECT pg_has_role(current_user, %s, 'USAGE')", [owner]):
            self.run(f"GRANT {quote_ident(owner)} TO {quote_ident(me)}")

    # -- schemas ---------------------------------------------------------------------------------------
    def schema(self, name: str, owner: str | None) -> None:
        current = self.one("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s", [name])
        auth = f" AUTHORIZATION {quote_ident(owner)}" if owner else ""
        if current is None:
            self.run(f"CREATE SCHEMA {quote_ident(name)}{auth}")
        elif owner and current != quote_ident(owner).strip('"'):
            self.run(f"ALTER SCHEMA {quote_ident(name)} OWNER TO {quote_ident(owner)}")

    # -- grants ----------------------------------------------------------------------------------------
    def grant(self, g: Grant) -> None:
        """A grant on the database or a schema. Grants on the objects inside a schema are repaired object by
        object from the read-back (`repair`), skipping objects that someone else owns."""
        want = sorted(g.privileges)
        gid = "0" if g.role == PUBLIC else "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)"
        params = {"role": g.role, "name": g.schema or g.database}
        agg = "coalesce(array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type), '{}')"
        if g.object_type is ObjectType.DATABASE:
            target = f"DATABASE {quote_ident(g.database)}"
            source = "pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname"
        elif g.object_type is ObjectType.SCHEMA:
            assert g.schema is not None
            target = f"SCHEMA {qi(g.schema)}"
            source = "pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE n.nspname"
        else:
            return
        have = self.one(f"SELECT {agg} FROM {source} = %(name)s AND a.grantee = {gid}", params)
        if list(have) != want:
            self.run(f"REVOKE ALL ON {target} FROM {grantee(g.role)}")
            if want:
                self.run(f"GRANT {', '.join(want)} ON {target} TO {grantee(g.role)}")

    def default_privilege(self, d: DefaultPrivilege) -> None:
        want = sorted(d.privileges)
        gid = "0" if d.role == PUBLIC else "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)"
        owner_oid = "(SELECT oid FROM pg_roles WHERE rolname = %(owner)s)"
        ns = "0" if d.schema is None else "(SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)"
        fallback = f"acldefault('{_ACL_LETTER[d.object_type]}', {owner_oid})" if d.schema is None else "NULL"
        have = self.one(
            "SELECT coalesce(array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type), '{}') FROM "
            f"aclexplode(coalesce((SELECT defaclacl FROM pg_default_acl WHERE defaclrole = {owner_oid} "
            f"AND defaclnamespace = {ns} AND defaclobjtype = %(t)s), {fallback})) a WHERE a.grantee = {gid}",
            {"role": d.role, "owner": d.owner, "schema": d.schema, "t": _DEFACL_LETTER[d.object_type]},
        )
        if list(have) != want:
            scope = f"FOR ROLE {quote_ident(d.owner)}"
            if d.schema is not None:
                scope += f" IN SCHEMA {quote_ident(d.schema)}"
            plural = _PLURAL[d.object_type]
            self.run(f"ALTER DEFAULT PRIVILEGES {scope} REVOKE ALL ON {plural} FROM {grantee(d.role)}")
            if want:
                self.run(
                    f"ALTER DEFAULT PRIVILEGES {scope} GRANT {', '.join(want)} ON {plural} "
                    f"TO {grantee(d.role)}"
                )

    def extension(self, name: str, schema: str | None) -> None:
        if self.one("SELECT 1 FROM pg_extension WHERE extname = %s", [name]) is not None:
            return
        if self.one("SELECT 1 FROM pg_available_extensions WHERE name = %s", [name]) is None:
            self.report.warnings.append(f"extension {name} is not available on this server: not installed")
        else:
            where = f" SCHEMA {quote_ident(schema)}" if schema else ""
            self.run(f"CREATE EXTENSION IF NOT EXISTS {quote_ident(name)}{where}")

    # -- drift: what the read-back shows beyond the model ------------------------------------------------
    def repair(self, model: AccessModel, revoke_foreign: bool) -> None:
        for d in drift.evaluate(read_catalog(self.conn, model), model):
            if not d.repair or (d.foreign and not revoke_foreign):
                continue
            try:
                with self.conn.transaction(), self.acting_as(d.act_as):  # a savepoint per repair
                    for stmt in d.repair:
                        self.conn.execute(stmt.encode())
            except psycopg.Error as exc:
                self.report.warnings.append(f"could not repair {d.object} ({d.message}): {exc}".strip())
            else:
                self.report.changes.extend(d.repair)
        self.report.findings = drift.evaluate(read_catalog(self.conn, model), model)

    @contextmanager
    def acting_as(self, role: str | None) -> Iterator[None]:
        """Membership in `role` for the statements inside (ALTER DEFAULT PRIVILEGES FOR ROLE needs it).

        Entered inside the repair's savepoint: when a statement fails, rolling the savepoint back takes the
        membership back too (a REVOKE in the aborted savepoint would only fail again and hide the error)."""
        if role is None or self.one("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") or self.one(
            "SELECT pg_has_role(current_user, %s, 'MEMBER')", [role]
        ):
            yield
            return
        me = drift.ident(self.one("SELECT current_user"))
        self.conn.execute(f"GRANT {drift.ident(role)} TO {me}".encode())
        yield
        self.conn.execute(f"REVOKE {drift.ident(role)} FROM {me}".encode())

    # -- services that left the catalog ----------------------------------------------------------------
    def orphans(self, model: AccessModel, destructive: bool) -> None:
        known = {s.service for s in model.services}
        rows = self.conn.execute(
            "SELECT n.nspname, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
            "WHERE n.nspname LIKE '%\\_schema' ORDER BY 1"
        ).fetchall()
        for schema, owner in rows:
            m = _OURS.match(schema)
            if not m or owner != f"{m[1]}_owner" or m[1] in known:
                continue
            service = m[1]
            roles = [
                r
                for (r,) in self.conn.execute(
                    "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1",
                    [[f"{service}_{k.value}" for k in RoleKind]],
                ).fetchall()
            ]
            self.report.orphans.append(f"schema {schema} (roles: {', '.join(roles)})")
            if destructive:
                for r in roles:  # DROP OWNED BY needs membership in the role
                    self.admin_can_act_as(r)
                stmts = [f"DROP SCHEMA {quote_ident(schema)} CASCADE"]
                stmts += [f"DROP OWNED BY {quote_ident(r)}" for r in roles]
                stmts += [f"DROP ROLE {quote_ident(r)}" for r in roles]
                for stmt in stmts:
                    self.conn.execute(stmt.encode())
                    self.report.dropped.append(stmt)


def apply(
    conn: psycopg.Connection[Any],
    model: AccessModel,
    *,
    destructive: bool = False,
    revoke_foreign: bool = False,
    privileged: psycopg.Connection[Any] | None = None,
) -> ApplyReport:
    """Bring the database the connection points at in line with the model, in one transaction.

    Then read the whole catalog back and repair every drift the model owns (`drift.py`); foreign grants
    are revoked only with `revoke_foreign`; what remains is in `report.findings`. A repair that fails is
    rolled back to its savepoint and reported, never the whole apply. `privileged` (an autocommit superuser
    connection) creates and alters the roles PostgreSQL reserves to superusers (BYPASSRLS, REPLICATION).
    """
    current_db = conn.execute("SELECT current_database()").fetchone()
    if current_db is None or current_db[0] != model.database:
        raise ValueError(
            f"connected to {current_db and current_db[0]!r}, the model is for {model.database!r}"
        )
    report = ApplyReport()
    a = _Applier(conn, report, privileged)
    with conn.transaction():
        for r in model.all_roles:
            a.role(r)
        for m in model.all_memberships():
            a.membership(m)
        for s in model.services:
            a.admin_can_act_as(s.owner)
        a.schema(model.extensions_schema, None)
        for ext in model.extensions:
            a.extension(ext.name, ext.schema)
        for g in (*model.database_grants, *model.platform.grants):
            a.grant(g)
        for s in model.services:
            a.schema(s.schema, s.owner)
            for d in s.default_privileges:
                a.default_privilege(d)
            for g in s.grants:
                a.grant(g)
        for g in model.cdc_grants():  # after the schemas they are on
            a.grant(g)
        a.orphans(model, destructive)
        a.repair(model, revoke_foreign)
    return report


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Set a login role's password as a SCRAM verifier (the clear text never reaches the server)."""
    conn.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {literal(scram_verifier(password))}".encode())


def new_password() -> str:
    return secrets.token_urlsafe(24)
