"""Events between services (spec 2.B, docs/events.md): the transactional outbox and the idempotent inbox.

A service announces a change by inserting a row into its outbox `<service>_outbox` IN THE SAME TRANSACTION as
the change (`write_event`); the CDC connector (Debezium on AWS, `ops/relay.py` locally) decodes the committed
insert from the service's slot through the publication `<service>_outbox_pub` (the outbox only, inserts only)
and routes it to the topic `edumatrix.<service>.<aggregatetype>`. `write_event` deletes the row again in the
same transaction (the insert stays in the WAL; deletes are not published), so the outbox stays empty unless a
service keeps its rows (`keep_row=True`, pruned per tenant by `delete_kept_events`).
A handler records the event id in its own inbox `<service>_inbox` in the transaction that applies the event
(`apply_once`): a redelivered event is recognised there and applied once.

Both tables live in the service's schema, are owned by `<service>_owner` (so the service's migrations may add
indexes or partitions) and are under tenant isolation like every table (`tenancy.enable_tenant_isolation_sql`):
a service writes and reads its outbox and inbox inside a tenant transaction, and its keys carry the tenant.
The CDC login holds USAGE on the schema and SELECT on the outbox only; RLS is forced and it sets no tenant,
so a SELECT returns no row: the connector never snapshots (Debezium `snapshot.mode=no_data`), it reads the WAL,
where every committed insert is whatever its tenant.

`event_objects_sql(service, ...)` is the SQL both renderers run (locally `apply_events` as the platform admin,
after the access model; `edumatrix-db events sql SERVICE` prints it for a migration or a reviewer).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from config.event_schemas import PayloadMismatch, payload_problems
from config.naming import (
    check_identifier,
    inbox_table_name,
    outbox_publication_name,
    outbox_table_name,
    quote_ident,
    schema_name,
)
from edumatrix_db.database.tenancy import TENANT_COLUMN, TenantNotSet, current_tenant_expression
from edumatrix_db.database.tenancy import enable_tenant_isolation_sql as _isolation

if TYPE_CHECKING:  # psycopg is imported where a connection is used: `events sql` does not load it
    import psycopg

    from config.access import AccessModel
    from config.catalog import ServiceSpec

# Only inserts are published: the outbox is append-only to the connector; a cleanup DELETE is never an event.
PUBLISH = "insert"


def _qualified(service: str, table: str) -> str:
    return f"{quote_ident(schema_name(service))}.{quote_ident(table)}"


# Column definitions after `institution_id` (which defaults to the transaction's tenant), and the key. The outbox
# has the Debezium outbox event router's default columns (id, aggregatetype, aggregateid, type, payload), then ours.
_OUTBOX = ("id uuid NOT NULL DEFAULT gen_random_uuid(), aggregatetype text NOT NULL, aggregateid text NOT NULL, "
           "type text NOT NULL, payload jsonb NOT NULL, schema_version integer NOT NULL CHECK (schema_version >= 1), "
           "occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (institution_id, id)")
_INBOX = ("event_id uuid NOT NULL, source_service text NOT NULL, type text NOT NULL, schema_version integer NOT NULL, "
          "received_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (institution_id, event_id)")


def _tenant_table_ddl(service: str, table: str, columns: str) -> str:
    return (f"CREATE TABLE IF NOT EXISTS {_qualified(service, table)} ("
            f"{TENANT_COLUMN} uuid NOT NULL DEFAULT {current_tenant_expression('uuid')}, {columns})")


def outbox_ddl(service: str) -> str:
    return _tenant_table_ddl(service, outbox_table_name(service), _OUTBOX)


def inbox_ddl(service: str) -> str:
    return _tenant_table_ddl(service, inbox_table_name(service), _INBOX)


def publication_ddl(service: str) -> str:
    return (f"CREATE PUBLICATION {quote_ident(outbox_publication_name(service))} FOR TABLE "
            f"{_qualified(service, outbox_table_name(service))} WITH (publish = '{PUBLISH}')")


Payloads = Sequence[tuple[str, int, Sequence[tuple[str, str]]]]
"""(event type, version, payload description) of each event type the service publishes (the catalog's)."""
_INT32 = "BETWEEN -2147483648 AND 2147483647"


def payload_function_name(service: str) -> str:
    return check_identifier(f"{service}_fn_outbox_payload_ok", "payload check function")


def payload_constraint_name(service: str) -> str:
    return check_identifier(f"{outbox_table_name(service)}_payload_check", "payload check constraint")


def _member_condition(name: str, kind: str) -> str:
    value = f"payload -> '{check_identifier(name, 'payload member')}'"
    if kind == "integer":
        text = f"(payload ->> '{name}')"
        return (f"CASE WHEN jsonb_typeof({value}) = 'number' AND {text} ~ '^-?[0-9]{{1,10}}$' "
                f"THEN {text}::numeric {_INT32} ELSE false END")
    return f"jsonb_typeof({value}) = '{'string' if kind == 'string' else 'boolean'}'"


def payload_function_sql(service: str, payloads: Payloads) -> str:
    """`<schema>.<service>_fn_outbox_payload_ok(type, version, payload)`: whether the payload is an instance of
    its type's catalog description, as `write_event` checks it (config/event_schemas.py `payload_problems`): the
    exact member set, each of its type, integers of at most 32 bits (digits only: jsonb keeps `1.0` as written)."""
    branches = []
    for event_type, version, fields in payloads:
        names = ", ".join(f"'{check_identifier(n, 'payload member')}'" for n, _ in sorted(fields))
        members = " AND ".join(_member_condition(n, k) for n, k in fields)
        branches.append(f"WHEN event_type = '{check_identifier(event_type, 'event type')}' AND version = "
                        f"{int(version)} THEN ARRAY(SELECT k FROM jsonb_object_keys(payload) AS k ORDER BY k "
                        f"COLLATE \"C\") = ARRAY[{names}]::text[] AND {members}")
    return (f"CREATE OR REPLACE FUNCTION {_qualified(service, payload_function_name(service))}(event_type text, "
            "version integer, payload jsonb) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT "
            "CASE WHEN jsonb_typeof(payload) IS DISTINCT FROM 'object' THEN false "
            f"{' '.join(branches)} ELSE false END $fn$")


def payload_constraint_sql(service: str) -> str:
    """The outbox's CHECK calling the function, added once, NOT VALID (rows kept from before are history)."""
    table, name = _qualified(service, outbox_table_name(service)), payload_constraint_name(service)
    return (f"DO $chk$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = '{name}' AND conrelid = "
            f"'{table}'::regclass) THEN ALTER TABLE {table} ADD CONSTRAINT {quote_ident(name)} CHECK ("
            f"{_qualified(service, payload_function_name(service))}(type, schema_version, payload)) NOT VALID; "
            "END IF; END $chk$")


def owner_statements(service: str, *, publishes: bool, cdc_role: str, payloads: Payloads = ()) -> list[str]:
    """What the service's owner runs (`SET ROLE <service>_owner`): the tables, their tenant isolation, the
    CDC login's SELECT on the outbox and the outbox's payload check. Idempotent."""
    statements = [inbox_ddl(service), *_isolation(service, inbox_table_name(service))]
    if publishes:
        outbox = outbox_table_name(service)
        statements += [outbox_ddl(service), *_isolation(service, outbox),
                       f"GRANT SELECT ON {_qualified(service, outbox)} TO {quote_ident(cdc_role)}",
                       payload_function_sql(service, payloads), payload_constraint_sql(service)]
    return statements


def event_objects_sql(service: str, *, publishes: bool, cdc_role: str, payloads: Payloads = ()) -> list[str]:
    """Everything, in order, as the platform admin runs it (a member of the owner role)."""
    owner = quote_ident(f"{check_identifier(service, 'service name')}_owner")
    statements = [f"SET LOCAL ROLE {owner}",
                  *owner_statements(service, publishes=publishes, cdc_role=cdc_role, payloads=payloads), "RESET ROLE"]
    if publishes:
        name = "'" + outbox_publication_name(service) + "'"  # a checked identifier: no quote inside
        statements.append(f"DO $pub$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = {name}) "
                          f"THEN {publication_ddl(service)}; END IF; END $pub$")
    return statements


def write_event_sql(service: str) -> str:
    """The INSERT a service runs in its tenant transaction (placeholders: aggregatetype, aggregateid, type,
    payload, schema_version); `institution_id` comes from the transaction's tenant."""
    return (f"INSERT INTO {_qualified(service, outbox_table_name(service))} "
            "(aggregatetype, aggregateid, type, payload, schema_version) VALUES (%s, %s, %s, %s::jsonb, %s) "
            "RETURNING id")


def forget_event_sql(service: str) -> str:
    """The DELETE that follows `write_event_sql` in the same transaction (placeholder: the id it returned): the
    connector reads the INSERT from the WAL, the publication does not publish deletes, so the event still leaves
    on commit and the outbox never grows (docs/events.md, "Outbox rows")."""
    return f"DELETE FROM {_qualified(service, outbox_table_name(service))} WHERE id = %s"


def record_inbox_sql(service: str) -> str:
    """The handler's first statement: a row when the event is new, none when it was applied before."""
    return (f"INSERT INTO {_qualified(service, inbox_table_name(service))} "
            "(event_id, source_service, type, schema_version) VALUES (%s, %s, %s, %s) "
            f"ON CONFLICT ({TENANT_COLUMN}, event_id) DO NOTHING RETURNING event_id")


# -- the local renderer --------------------------------------------------------------------------------------
def apply_events(conn: psycopg.Connection[Any], model: AccessModel) -> list[str]:
    """Every service's event objects (`apply_service_events`), as the platform admin after `sql.apply`, which
    made it a member of each owner. Returns what it did; a second run does nothing."""
    done: list[str] = []
    for s in model.services:
        done += apply_service_events(conn, s.service, publishes=s.publishes_events, cdc_role=model.cdc_role,
                                     payloads=s.event_payloads)
    return done


def apply_service_events(conn: psycopg.Connection[Any], service: str, *, publishes: bool, cdc_role: str,
                         payloads: Payloads = ()) -> list[str]:
    """Create the service's inbox, and its outbox and publication when it publishes, where missing; a publication
    that covers more than the outbox or publishes more than inserts is put back to the outbox's inserts. The
    connection (autocommit) belongs to a member of `<service>_owner` with CREATE on the database: the platform
    admin locally, the RDS master user on AWS (components/service_events.py)."""
    schema, owner = schema_name(service), f"{check_identifier(service, 'service name')}_owner"
    tables = [inbox_table_name(service), *([outbox_table_name(service)] if publishes else [])]
    missing = [t for t in tables if conn.execute(
        "SELECT to_regclass(%s) IS NULL", [f"{quote_ident(schema)}.{quote_ident(t)}"]).fetchone() == (True,)]
    done: list[str] = []
    with conn.transaction():
        if missing:
            conn.execute(f"SET LOCAL ROLE {quote_ident(owner)}".encode())
            for stmt in owner_statements(service, publishes=publishes, cdc_role=cdc_role, payloads=payloads):
                conn.execute(stmt.encode())
            conn.execute(b"RESET ROLE")
            done.append(f"{schema}: created {', '.join(missing)}")
        elif publishes:
            done += _payload_check(conn, service, owner, payloads)
        if publishes:
            done += _publication(conn, service)
    return done


def _payload_check(conn: psycopg.Connection[Any], service: str, owner: str, payloads: Payloads) -> list[str]:
    """An existing outbox's payload check brought to the catalog's descriptions (in the caller's transaction)."""
    function = payload_function_sql(service, payloads)
    body = function[function.index("$fn$") + 4:function.rindex("$fn$")]
    row = conn.execute("SELECT p.prosrc, EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = %s) FROM pg_proc p "
                       "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.proname = %s",
                       [payload_constraint_name(service), schema_name(service), payload_function_name(service)]
                       ).fetchone()
    if row is not None and row[0] == body and row[1]:
        return []
    conn.execute(f"SET LOCAL ROLE {quote_ident(owner)}".encode())
    conn.execute(function.encode())
    conn.execute(payload_constraint_sql(service).encode())
    conn.execute(b"RESET ROLE")
    return [f"{schema_name(service)}: outbox payload check set to the catalog's descriptions"]


def _publication(conn: psycopg.Connection[Any], service: str) -> list[str]:
    name = outbox_publication_name(service)
    row = conn.execute(
        "SELECT p.pubinsert AND NOT (p.pubupdate OR p.pubdelete OR p.pubtruncate) AND NOT p.puballtables, "
        "array(SELECT format('%%I.%%I', t.schemaname, t.tablename) FROM pg_publication_tables t "
        "WHERE t.pubname = p.pubname ORDER BY 1), "
        "EXISTS (SELECT 1 FROM pg_publication_namespace pn WHERE pn.pnpubid = p.oid) "
        "FROM pg_publication p WHERE p.pubname = %s", [name]).fetchone()
    if row is None:
        conn.execute(publication_ddl(service).encode())
        return [f"created publication {name}"]
    inserts_only, tables, whole_schemas = row
    if inserts_only and list(tables) == [_qualified(service, outbox_table_name(service)).replace('"', "")] \
            and not whole_schemas:
        return []
    conn.execute(f"DROP PUBLICATION {quote_ident(name)}".encode())
    conn.execute(publication_ddl(service).encode())
    return [f"recreated publication {name} (it covered {', '.join(tables) or 'nothing'}; the outbox's inserts only)"]


# -- the service's side --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    """An event as a consumer receives it (the outbox row, routed by the relay or Debezium)."""

    id: uuid.UUID
    source_service: str
    institution_id: uuid.UUID
    aggregatetype: str
    aggregateid: str
    type: str
    payload: dict[str, Any]
    schema_version: int
    occurred_at: str = ""  # as the outbox row has it (text: the relay and Debezium pass it on as a header)


class UnknownEvent(ValueError):
    """An event type the catalog does not list for the service (config/services.yaml `events`)."""


def _require_transaction(conn: psycopg.Connection[Any], what: str) -> None:
    from psycopg import pq

    if conn.info.transaction_status == pq.TransactionStatus.IDLE:
        raise TenantNotSet(f"{what} must run inside the tenant transaction it belongs to "
                           "(tenancy.tenant_transaction)")


def write_event(conn: psycopg.Connection[Any], spec: ServiceSpec, *, event_type: str, aggregate_id: object,
                payload: dict[str, Any], schema_version: int | None = None, keep_row: bool = False) -> uuid.UUID:
    """Insert one event into the service's outbox, in the caller's (tenant) transaction: it is published if and
    only if that transaction commits. The type must be one the catalog lists for the service; the aggregate and
    the version come from there, and the payload must be an instance of the version's catalog description
    (`PayloadMismatch` otherwise: every member, nothing else, no null, 32-bit integers), so the record Debezium
    makes of it has the Connect schema whose Glue definition the stack registered (config/event_schemas.py).

    The row is then deleted in the same transaction (Debezium's outbox pattern: the connector reads the INSERT
    from the WAL, and the publication publishes inserts only), so the outbox stays empty; `keep_row=True` keeps
    it as an audit trail, and the service then deletes its old rows itself (`delete_kept_events`)."""
    spec_event = next((e for e in spec.events if e.type == event_type), None)
    if spec_event is None:
        listed = ", ".join(e.type for e in spec.events) or "none"
        raise UnknownEvent(f"{spec.name} does not publish {event_type!r} (config/services.yaml lists: {listed})")
    version = spec_event.version if schema_version is None else schema_version
    if version != spec_event.version:
        raise UnknownEvent(f"{event_type}: the catalog describes the payload of version {spec_event.version} only, "
                           f"not {version} (config/services.yaml)")
    problems = payload_problems(spec_event.fields, payload)
    if problems:
        raise PayloadMismatch(f"{spec.name} {event_type} v{version}: {'; '.join(problems)} (its payload in "
                              f"config/services.yaml: {spec_event.fields})")
    _require_transaction(conn, "write_event")
    row = conn.execute(write_event_sql(spec.name).encode(),
                       [spec_event.aggregate, str(aggregate_id), event_type, json.dumps(payload), version]).fetchone()
    assert row is not None
    event_id = uuid.UUID(str(row[0]))
    if not keep_row:
        conn.execute(forget_event_sql(spec.name).encode(), [event_id])
    return event_id


def delete_kept_events(conn: psycopg.Connection[Any], service: str, *, older_than: timedelta) -> int:
    """For a service that keeps its outbox rows (`write_event(..., keep_row=True)`): delete the current tenant's
    rows older than `older_than`, in the caller's tenant transaction; returns how many. The outbox is under
    forced RLS, which binds its owner too, so no login sees every tenant's rows (and none is given BYPASSRLS):
    the service's retention job runs this once per institution it serves. Deletes are never published."""
    _require_transaction(conn, "delete_kept_events")
    tenant = conn.execute(f"SELECT {current_tenant_expression('uuid')}").fetchone()
    if tenant is None or tenant[0] is None:
        raise TenantNotSet("delete_kept_events needs the tenant whose rows it deletes (tenancy.tenant_transaction)")
    cur = conn.execute(f"DELETE FROM {_qualified(service, outbox_table_name(service))} "
                       "WHERE occurred_at < clock_timestamp() - %s".encode(), [older_than])
    return cur.rowcount


def apply_once(conn: psycopg.Connection[Any], service: str, event: Event) -> bool:
    """Record `event` in the service's inbox, in the caller's (tenant) transaction; True when it is new (apply
    it now, in the same transaction), False when it was applied before (skip it). A concurrent delivery of
    the same event waits for the first one's transaction and then gets False."""
    _require_transaction(conn, "apply_once")
    row = conn.execute(record_inbox_sql(service).encode(),
                       [event.id, event.source_service, event.type, event.schema_version]).fetchone()
    return row is not None
