"""A stand-in for the psycopg connection the SQL renderer (edumatrix_db/database/sql.py) applies through, for the
fast tests of what it renders (tests/test_sql_statements.py).

It is not a database: it answers only the catalog questions the renderer asks, each written out below as the exact
query text, from a catalog state the test describes (`CatalogState`), and records every other statement. A
question it does not know fails the test, so a query the renderer garbles cannot pass unseen. Whether the
questions and statements are right for PostgreSQL 15 is proven against a real server by tests/pg
(test_sql_renderer.py, test_access_matrix.py, ...); these tests pin what is rendered for a given catalog.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

# (rolcanlogin, rolinherit, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, rolreplication)
Attributes = tuple[bool, bool, int, bool, bool, bool, bool, bool]
PLAIN_NOLOGIN: Attributes = (False, True, -1, False, False, False, False, False)  # CREATE ROLE's defaults

_AGG = "SELECT coalesce(array_agg(DISTINCT a.privilege_type ORDER BY a.privilege_type), '{}') FROM "
_ROLE_OID = "(SELECT oid FROM pg_roles WHERE rolname = %(role)s)"
_OWNER_OID = "(SELECT oid FROM pg_roles WHERE rolname = %(owner)s)"
_SCHEMA_OID = "(SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)"
_ON_DATABASE = ("pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a WHERE d.datname = "
                "%(name)s AND a.grantee = ")
_ON_SCHEMA = ("pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE n.nspname = "
              "%(name)s AND a.grantee = ")
# acldefault() letters by pg_default_acl's defaclobjtype (a database-wide default falls back to the built-in ACL)
_ACLDEFAULT = {"r": "r", "S": "s", "f": "f"}


def _default_acl_query(letter: str | None, grantee: str) -> str:
    """The question for one default ACL: `letter` is None for a schema's, else the database-wide fallback's."""
    namespace = _SCHEMA_OID if letter is None else "0"
    fallback = "NULL" if letter is None else f"acldefault('{letter}', {_OWNER_OID})"
    return (_AGG + f"aclexplode(coalesce((SELECT defaclacl FROM pg_default_acl WHERE defaclrole = {_OWNER_OID} "
            f"AND defaclnamespace = {namespace} AND defaclobjtype = %(t)s), {fallback})) a WHERE a.grantee = "
            f"{grantee}")


@dataclass
class CatalogState:
    """What the database holds, as far as the renderer asks. Keys are role, schema and extension names;
    `privileges` is keyed by ("database" | "schema", object name, grantee) with "public" for PUBLIC, and
    `default_privileges` by (owner, schema or None, defaclobjtype letter, grantee)."""

    database: str = "edumatrix"
    current_user: str = "edumatrix_admin"
    superuser: bool = False
    roles: dict[str, Attributes] = field(default_factory=dict)
    settings: dict[str, list[str]] = field(default_factory=dict)  # pg_db_role_setting.setconfig
    memberships: set[tuple[str, str]] = field(default_factory=set)  # (member, group)
    acts_as: set[str] = field(default_factory=set)  # roles whose privileges the current user has
    schemas: dict[str, str] = field(default_factory=dict)  # schema -> owner
    privileges: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    default_privileges: dict[tuple[str, str | None, str, str], list[str]] = field(default_factory=dict)
    extensions: set[str] = field(default_factory=set)
    available: set[str] = field(default_factory=lambda: {"pgcrypto", "pgaudit", "pg_stat_statements"})


def _questions(state: CatalogState) -> dict[str, Callable[[Any], Any]]:
    """Each question the renderer may ask, by its exact text: a function of the query's parameters giving
    the row (fetchone) or the rows (fetchall)."""

    # Grantee 0 is PUBLIC, whatever the `role` parameter says; a grantee by name is a role the catalog holds
    # (pg_roles has no row `public`: asked by name, PUBLIC holds nothing).
    def holder(public: bool, p: dict[str, Any]) -> str | None:
        return "public" if public else p["role"] if p["role"] in state.roles else None

    def acl(kind: str, public: bool) -> Callable[[Any], Any]:
        return lambda p: (state.privileges.get((kind, p["name"], holder(public, p)), []),)  # type: ignore[arg-type]

    def default_acl(public: bool) -> Callable[[Any], Any]:
        return lambda p: (state.default_privileges.get(
            (p["owner"], p["schema"], p["t"], holder(public, p)), []),)  # type: ignore[arg-type]

    questions: dict[str, Callable[[Any], Any]] = {
        "SELECT current_database()": lambda p: (state.database,),
        "SELECT current_user": lambda p: (state.current_user,),
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user": lambda p: (state.superuser,),
        "SELECT rolcanlogin, rolinherit, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls, "
        "rolreplication FROM pg_roles WHERE rolname = %s": lambda p: state.roles.get(p[0]),
        "SELECT coalesce((SELECT setconfig FROM pg_db_role_setting s WHERE s.setdatabase = 0 AND "
        "s.setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)), '{}')": lambda p: (state.settings.get(p[0], []),),
        "SELECT EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = %s AND u.rolname = %s)":
            lambda p: ((p[1], p[0]) in state.memberships,),
        "SELECT pg_has_role(current_user, %s, 'USAGE')": lambda p: (p[0] in state.acts_as,),
        "SELECT pg_has_role(current_user, %s, 'MEMBER')": lambda p: (p[0] in state.acts_as,),
        "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s":
            lambda p: (state.schemas[p[0]],) if p[0] in state.schemas else None,
        "SELECT 1 FROM pg_extension WHERE extname = %s": lambda p: (1,) if p[0] in state.extensions else None,
        "SELECT 1 FROM pg_available_extensions WHERE name = %s": lambda p: (1,) if p[0] in state.available else None,
        "SELECT n.nspname, r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner "
        "WHERE n.nspname LIKE '%\\_schema' ORDER BY 1":
            lambda p: sorted((s, o) for s, o in state.schemas.items() if s.endswith("_schema")),
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1":
            lambda p: [(r,) for r in sorted(state.roles) if r in p[0]],
        _AGG + _ON_DATABASE + "0": acl("database", public=True),
        _AGG + _ON_DATABASE + _ROLE_OID: acl("database", public=False),
        _AGG + _ON_SCHEMA + "0": acl("schema", public=True),
        _AGG + _ON_SCHEMA + _ROLE_OID: acl("schema", public=False),
    }
    for grantee, public in (("0", True), (_ROLE_OID, False)):
        questions[_default_acl_query(None, grantee)] = default_acl(public)
        for letter in _ACLDEFAULT.values():
            questions[_default_acl_query(letter, grantee)] = default_acl(public)
    return questions


class _Rows:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def fetchone(self) -> Any:
        return self.answer

    def fetchall(self) -> Any:
        return self.answer


class StandInConnection:
    """Answers the renderer's questions from `state`; records every other statement in `statements` (a
    statement in `refuse` raises the exception given for it instead). As in PostgreSQL, after a failed
    statement every other one fails until the transaction block (savepoint) around it ends, and leaving a block
    by an exception takes back the statements run inside it."""

    def __init__(self, state: CatalogState | None = None, refuse: dict[str, Exception] | None = None) -> None:
        self.state = state or CatalogState()
        self.questions = _questions(self.state)
        self.refuse = refuse or {}
        self.statements: list[str] = []
        self.aborted = False

    def execute(self, query: str | bytes, params: Any = ()) -> _Rows:
        text = query.decode() if isinstance(query, bytes) else query
        if self.aborted:
            raise psycopg.errors.InFailedSqlTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        if text.startswith("SELECT"):
            assert text in self.questions, f"the renderer asked a question the stand-in does not know: {text}"
            return _Rows(self.questions[text](params))
        if text in self.refuse:
            self.aborted = True
            raise self.refuse[text]
        self.statements.append(text)
        return _Rows(None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        kept = len(self.statements)
        try:
            yield
        except Exception:
            del self.statements[kept:]
            self.aborted = False
            raise
