"""A publication covering a whole service schema, on the shared instance (extraction, spec 3.B replicate).

pulumi-postgresql's `Publication` takes a table list or ALL TABLES, not `FOR TABLES IN SCHEMA` (upstream PRs
unmerged), and the tables are created by the services' migrations, so no list is known when the program runs.
So this is a dynamic resource (`pulumi-python:dynamic/edumatrix:SchemaPublication`) whose provider runs SQL
with psycopg as the instance's master user, TLS verified:

- create: `CREATE PUBLICATION <name> FOR TABLES IN SCHEMA <schema>`, which also covers tables created later.
  PostgreSQL 15 requires a superuser for it; where that is refused (whether RDS lets `rds_superuser` do it is
  unverified) it publishes the schema's current tables by name instead: tables created later are then NOT
  published, which is one reason migrations are frozen while a service replicates (config/extraction_plan.py);
- update: a new publication name, schema or database replaces the publication (delete, then create);
- delete: `DROP PUBLICATION IF EXISTS` (the slot belongs to the subscription, which drops it).

Refused before anything is created: a table without a primary key or replica identity (UPDATE and DELETE on
it would fail on the shared instance once it is published). `publication_sql` and `SchemaPublicationProvider`
are tested against a real PostgreSQL 15 (tests/pg/test_schema_publication.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi.dynamic

CONNECT_TIMEOUT_SECONDS = 15
REPLACING_INPUTS = ("publication", "schema", "database", "host")


def connect(props: Mapping[str, Any]) -> Any:
    """A psycopg connection as the props say (imported here: the program itself never loads psycopg)."""
    import psycopg

    return psycopg.connect(host=props["host"], port=int(props["port"]), user=props["username"],
                           password=props["password"], dbname=props["database"], sslmode=props.get("sslmode",
                           "verify-full"), sslrootcert=props.get("sslrootcert") or None,
                           connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)


def tables_without_identity(conn: Any, schema: str) -> list[str]:
    """Ordinary and partitioned tables of `schema` with neither a primary key nor a replica identity index
    (nor REPLICA IDENTITY FULL)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relreplident <> 'f' "
        "AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary OR "
        "(c.relreplident = 'i' AND i.indisreplident))) ORDER BY 1", (schema,)).fetchall()
    return [r[0] for r in rows]


def schema_tables(conn: Any, schema: str) -> list[str]:
    rows = conn.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
                        (schema,)).fetchall()
    return [r[0] for r in rows]


def publication_sql(conn: Any, name: str, schema: str) -> tuple[str, str]:
    """Create the publication; returns (`schema` or `tables`, what it covers). Idempotent."""
    from psycopg import errors, sql

    exists = conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone()
    if exists:
        covered = conn.execute("SELECT count(*) FROM pg_publication_namespace pn JOIN pg_publication p "
                               "ON p.oid = pn.pnpubid WHERE p.pubname = %s", (name,)).fetchone()
        return ("schema" if covered and covered[0] else "tables", schema)
    missing = tables_without_identity(conn, schema)
    if missing:
        raise ValueError(f"tables of {schema} without a primary key or replica identity: {', '.join(missing)}; "
                         "give each a primary key (or ALTER TABLE ... REPLICA IDENTITY) before replicating")
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA {}").format(
                sql.Identifier(name), sql.Identifier(schema)))
        return ("schema", schema)
    except errors.InsufficientPrivilege:
        tables = schema_tables(conn, schema)
        if not tables:
            conn.execute(sql.SQL("CREATE PUBLICATION {}").format(sql.Identifier(name)))
        else:
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
                sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)))
        return ("tables", ", ".join(tables))


def drop_publication(conn: Any, name: str) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(name)))


class SchemaPublicationProvider(pulumi.dynamic.ResourceProvider):
    """Runs the publication's SQL (see the module docstring)."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        with connect(props) as conn:
            scope, covered = publication_sql(conn, props["publication"], props["schema"])
        return pulumi.dynamic.CreateResult(id_=f"{props['database']}/{props['publication']}",
                                           outs={**props, "scope": scope, "covered": covered})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [k for k in REPLACING_INPUTS if olds.get(k) != news.get(k)]
        changed = replaces or [k for k in ("port", "username", "password", "sslrootcert", "sslmode")
                               if olds.get(k) != news.get(k)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(outs={**news, "scope": olds.get("scope"), "covered": olds.get("covered")})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with connect(props) as conn:
            drop_publication(conn, props["publication"])


class SchemaPublication(pulumi.dynamic.Resource, module="edumatrix", name="SchemaPublication"):
    """`pulumi-python:dynamic/edumatrix:SchemaPublication`: a publication of every table of one schema."""

    scope: pulumi.Output[str]

    def __init__(self, name: str, *, publication: str, schema: str, database: str, host: pulumi.Input[str],
                 port: pulumi.Input[int], username: str, password: pulumi.Input[str], sslrootcert: str,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SchemaPublicationProvider(), name, {
            "publication": publication, "schema": schema, "database": database, "host": host, "port": port,
            "username": username, "password": pulumi.Output.secret(password), "sslmode": "verify-full",
            "sslrootcert": sslrootcert, "scope": None, "covered": None,
        }, opts)
