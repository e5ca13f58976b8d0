"""Tenant isolation: every table carries `institution_id`; row-level security keeps tenants apart.

The convention (docs/tenancy.md; `edumatrix-db audit` checks every table against it):
- a service migration puts each table (and each partition) under isolation with
  `enable_tenant_isolation_sql(service, table)` (or copies the SQL it prints: `edumatrix-db tenancy sql
  <service> <table>`): `institution_id NOT NULL`, RLS enabled AND forced (the owner is bound too), one policy
  `<service>_pol_tenant_isolation` comparing `institution_id` with the transaction-local setting
  `app.institution_id`;
- keys carry the tenant: `PRIMARY KEY (institution_id, id)`, `UNIQUE (institution_id, ...)`, foreign keys on
  `(institution_id, ...)` to the parent's `(institution_id, ...)`; a key without it answers "does this value
  exist for another tenant?" through its conflict error;
- views are `security_invoker` (`secure_view_sql`), so the tables' policies apply to the reader; no
  materialized views (no RLS applies to them); NOTIFY payloads carry identifiers only, never data (any role
  may LISTEN on any channel);
- the application sets the tenant per transaction, never per session: `set_config(..., true)` /
  `SET LOCAL`. A session-level `SET` would leak the tenant to the next client of a pooled connection
  (RDS Proxy, PgBouncer in transaction mode);
- fail closed: with no tenant set the setting is NULL or '' and the policy matches no row, so a session
  reads nothing and every write fails the policy's WITH CHECK.

The fast pattern (one round trip per scoped read): `scoped_execute` sends `set_config(..., true)` and the
query as one pipeline ended by one Sync (psycopg pipeline mode, pgx `SendBatch`, pgbench
`\\startpipeline`): one implicit transaction, one network wait, instead of the textbook four
(BEGIN; set_config; query; COMMIT). Drivers that cannot pipeline send
`BEGIN; SELECT set_config(...); <query>; COMMIT` as one simple-query string instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # psycopg is imported where a connection is used: `tenancy sql` and plans do not load it
    import psycopg

from config.naming import belongs_to, check_identifier, quote_ident, schema_name

TENANT_SETTING = "app.institution_id"
TENANT_COLUMN = "institution_id"
ID_TYPES = ("uuid", "bigint", "integer", "text")
# The tenant of the current transaction, typed; NULL (no row matches) when unset or reset to ''.
_CURRENT = "NULLIF(current_setting('{setting}', true), '')::{type}"


class TenantNotSet(RuntimeError):
    """A tenant-scoped call was made outside a transaction (the setting would not survive)."""


def policy_name(service: str) -> str:
    """`<service>_pol_tenant_isolation`: one policy per table, named by the service's prefix."""
    return check_identifier(f"{service}_pol_tenant_isolation", "policy name")


def current_tenant_expression(id_type: str = "uuid") -> str:
    if id_type not in ID_TYPES:
        raise ValueError(
            f"institution_id type {id_type!r} is not supported; use one of {', '.join(ID_TYPES)}"
        )
    return _CURRENT.format(setting=TENANT_SETTING, type=id_type)


def expected_policy_expression(id_type: str = "uuid") -> str:
    """The tenant policy's USING / WITH CHECK expression as PostgreSQL prints it back (`pg_get_expr`): what
    the audit compares every policy with."""
    current = f"NULLIF(current_setting('{TENANT_SETTING}'::text, true), ''::text)"
    if id_type != "text":
        current = f"({current})::{id_type}"
    return f"({TENANT_COLUMN} = {current})"


def enable_tenant_isolation_sql(service: str, table: str, *, id_type: str = "uuid") -> list[str]:
    """The statements a migration runs to put `<service>_schema.<table>` under tenant isolation.

    Idempotent (the policy is replaced). The table must follow the naming convention `<service>_<entity>`
    and have an `institution_id` column of `id_type`.
    """
    check_identifier(service, "service name")
    check_identifier(table, "table name")
    if not belongs_to(service, table):
        raise ValueError(f"table {table!r} does not follow the convention {service}_<entity>")
    qualified = f"{quote_ident(schema_name(service))}.{quote_ident(table)}"
    policy = quote_ident(policy_name(service))
    tenant = current_tenant_expression(id_type)
    column = quote_ident(TENANT_COLUMN)
    return [
        f"ALTER TABLE {qualified} ALTER COLUMN {column} SET NOT NULL",
        f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {qualified} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {policy} ON {qualified}",
        f"CREATE POLICY {policy} ON {qualified} AS PERMISSIVE FOR ALL TO PUBLIC "
        f"USING ({column} = {tenant}) WITH CHECK ({column} = {tenant})",
    ]


def secure_view_sql(service: str, view: str) -> str:
    """A view of `<service>_schema` that checks the tables' policies against the reader, not its owner."""
    check_identifier(service, "service name")
    check_identifier(view, "view name")
    if not belongs_to(service, view):
        raise ValueError(f"view {view!r} does not follow the convention {service}_<entity>")
    return f"ALTER VIEW {quote_ident(schema_name(service))}.{quote_ident(view)} SET (security_invoker = true)"


def enable_tenant_isolation(
    conn: psycopg.Connection[Any], service: str, table: str, *, id_type: str = "uuid"
) -> None:
    """Run `enable_tenant_isolation_sql` in one transaction (call it from a migration, as the migrator)."""
    with conn.transaction():
        for stmt in enable_tenant_isolation_sql(service, table, id_type=id_type):
            conn.execute(stmt.encode())


def set_tenant(conn: psycopg.Connection[Any], institution_id: object) -> None:
    """Set the tenant for the current transaction only (`set_config(..., true)`)."""
    from psycopg import pq

    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        raise TenantNotSet("set_tenant outside a transaction would be lost at once; use tenant_transaction()")
    conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, str(institution_id)])


@contextmanager
def tenant_transaction(
    conn: psycopg.Connection[Any], institution_id: object
) -> Iterator[psycopg.Connection[Any]]:
    """A transaction scoped to one tenant: `with tenant_transaction(conn, inst): conn.execute(...)`."""
    with conn.transaction():
        set_tenant(conn, institution_id)
        yield conn


def scoped_execute(
    conn: psycopg.Connection[Any], institution_id: object, query: str, params: Sequence[Any] | None = None
) -> list[tuple[Any, ...]]:
    """One tenant-scoped statement in one round trip (the documented fast pattern).

    `set_config(..., true)` and the query go out as one pipeline closed by a single Sync. The extended
    query protocol runs everything up to a Sync as one implicit transaction, so the tenant holds for the
    query and is gone when it ends: nothing leaks to the next user of a pooled connection. The connection
    must be in autocommit mode and idle (no transaction of its own open).
    """
    from psycopg import pq

    if not conn.autocommit or conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise TenantNotSet("scoped_execute needs an idle autocommit connection (it runs its own transaction)")
    # Prepared as the connection decides (psycopg: after 5 executions; never with prepare_threshold=None, which
    # clients of PgBouncer 1.18 need: a named statement does not follow them to the next server connection).
    with conn.pipeline():
        conn.execute("SELECT set_config(%s, %s, true)", [TENANT_SETTING, str(institution_id)])
        cur = conn.execute(query.encode(), params)
    return cur.fetchall()
