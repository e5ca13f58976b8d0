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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from config.access import (
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

    @property
    def changed(self) -> bool:
        return bool(self.changes or self.dropped)


def grantee(role: str) -> str:
    """A grantee in SQL: PUBLIC is a keyword, everything else a quoted identifier."""
    return "PUBLIC" if role == PUBLIC else quote_ident(role)


def qi(name: str) -> str:
    """`quote_ident`, plus the one built-in schema the model names: `public` (a reserved word)."""
    return '"public"' if name == PUBLIC else quote_ident(name)


def literal(value: str) -> str:
    """A string literal; only ever used for values already checked to be identifiers or numbers."""
    return "'" + value.replace("'", "''") + "'"


class _Applier:
    def __init__(self, conn: psycopg.Connection[Any], report: ApplyReport) -> None:
        self.conn = conn
        self.report = report

    def one(self, query: str, params: Iterable[Any] | dict[str, Any] = ()) -> Any:
        row = self.conn.execute(query.encode(), params).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]

    def run(self, *statements: str) -> None:
        for stmt in statements:
            self.conn.execute(stmt.encode())
            self.report.changes.append(stmt)

    # -- roles -----------------------------------------------------------------------------------------
    def role(self, r: RoleSpec) -> None:
        q = quote_ident(r.name)
        attrs = " ".join(
            [
                "LOGIN" if r.login else "NOLOGIN",
                "NOSUPERUSER",
                "NOCREATEDB",
                "NOCREATEROLE",
                "NOBYPASSRLS",
                "NOREPLICATION",
                "INHERIT",
                f"CONNECTION LIMIT {int(r.connection_limit)}",
            ]
        )
        state = self.conn.execute(
            "SELECT rolcanlogin, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
            "rolreplication, rolinherit FROM pg_roles WHERE rolname = %s",
            [r.name],
        ).fetchone()
        want = (
            r.login,
            r.connection_limit,
            r.superuser,
            r.create_database,
            r.create_role,
            r.bypass_row_level_security,
            r.replication,
            True,
        )
        if state is None:
            self.run(f"CREATE ROLE {q} {attrs}")
        elif tuple(state) != want:
            self.run(f"ALTER ROLE {q} {attrs}")
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

    def membership(self, m: Membership) -> None:
        if not self.is_member(m.member, m.group):
            self.run(f"GRANT {quote_ident(m.group)} TO {quote_ident(m.member)}")

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
        want = sorted(g.privileges)
        gid = "0" if g.role == PUBLIC else "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)"
        params = {"role": g.role, "name": g.schema or g.database, "want": want}
        agg = "coalesce(array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type), '{}')"
        if g.object_type is ObjectType.DATABASE:
            target = f"DATABASE {quote_ident(g.database)}"
            have = self.one(
                f"SELECT {agg} FROM pg_database d, "
                "aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a "
                f"WHERE d.datname = %(name)s AND a.grantee = {gid}",
                params,
            )
            ok = list(have) == want
        elif g.object_type is ObjectType.SCHEMA:
            assert g.schema is not None
            target = f"SCHEMA {qi(g.schema)}"
            have = self.one(
                f"SELECT {agg} FROM pg_namespace n, "
                "aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
                f"WHERE n.nspname = %(name)s AND a.grantee = {gid}",
                params,
            )
            ok = list(have) == want
        else:
            assert g.schema is not None
            target = f"ALL {_PLURAL[g.object_type]} IN SCHEMA {quote_ident(g.schema)}"
            letter = _ACL_LETTER[g.object_type]
            if g.object_type is ObjectType.FUNCTION:
                objects = (
                    "SELECT p.proacl AS acl, p.proowner AS owner FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = %(name)s AND p.prokind IN ('f', 'a', 'w')"
                )
            else:
                objects = (
                    "SELECT c.relacl AS acl, c.relowner AS owner FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %(name)s AND c.relkind = ANY(%(kinds)s)"
                )
                params["kinds"] = _RELKINDS[g.object_type]
            bad = self.one(
                f"SELECT count(*) FROM ({objects}) o WHERE (SELECT {agg} FROM "
                f"aclexplode(coalesce(o.acl, acldefault('{letter}', o.owner))) a WHERE a.grantee = {gid}) "
                f"<> %(want)s::text[]",
                params,
            )
            ok = bad == 0
        if not ok:
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


def apply(conn: psycopg.Connection[Any], model: AccessModel, *, destructive: bool = False) -> ApplyReport:
    """Bring the database the connection points at in line with the model, in one transaction."""
    current_db = conn.execute("SELECT current_database()").fetchone()
    if current_db is None or current_db[0] != model.database:
        raise ValueError(
            f"connected to {current_db and current_db[0]!r}, the model is for {model.database!r}"
        )
    report = ApplyReport()
    a = _Applier(conn, report)
    with conn.transaction():
        for s in model.services:
            for r in s.roles:
                a.role(r)
            for m in s.memberships:
                a.membership(m)
            a.admin_can_act_as(s.owner)
        a.schema(model.extensions_schema, None)
        for ext in model.extensions:
            a.extension(ext.name, ext.schema)
        for g in model.database_grants:
            a.grant(g)
        for s in model.services:
            a.schema(s.schema, s.owner)
            for d in s.default_privileges:
                a.default_privilege(d)
            for g in s.grants:
                a.grant(g)
        a.orphans(model, destructive)
    return report


def set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    """Set a login role's password as a SCRAM verifier (the clear text never reaches the server)."""
    conn.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD {literal(scram_verifier(password))}".encode())


def new_password() -> str:
    return secrets.token_urlsafe(24)
