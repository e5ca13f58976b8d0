"""A service's event objects on the shared instance (docs/events.md): renderer 1 of `database/events.py`.

pulumi-postgresql has no Table resource, and a publication of one table (its `Publication` resource) needs the
table to exist first. The outbox and inbox are the platform's, not a team's (their columns are the contract
with the Debezium outbox router and with every consumer), so the platform creates them, with the service
schema, instead of leaving them to each team's first migration: this dynamic resource
(`pulumi-python:dynamic/edumatrix:ServiceEvents`) runs `events.apply_service_events`, the very function
`local up` runs, with psycopg as the instance's master user, TLS verified:

- create / update: the inbox; for a publishing service (catalog `events`) the outbox, the CDC login's SELECT
  on it and the publication `<service>_outbox_pub` (the outbox's inserts only). Idempotent: what exists is kept.
- delete: `DROP PUBLICATION IF EXISTS` only. The tables and their rows stay (the platform never drops data;
  the schema's own lifecycle does).

The master user must be a member of `<service>_owner` (tables are created as the owner, so the owner's default
privileges give the service's logins their rights): the provider grants itself that membership, as
pulumi-postgresql and `sql.apply` do. The SQL is proven on a real PostgreSQL 15 (tests/pg/test_events.py);
whether RDS's master user can do each step is not verifiable here (README, Limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from components.publication import connect

REPLACING_INPUTS = ("service", "database", "host")


def ensure_member_of_owner(conn: Any, owner: str) -> None:
    from psycopg import sql

    if not conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (owner,)).fetchone()[0]:
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(owner)))


class ServiceEventsProvider(pulumi.dynamic.ResourceProvider):
    """Runs `events.apply_service_events` (see the module docstring)."""

    def run_sql(self, props: dict[str, Any]) -> list[str]:
        from edumatrix_db.database.events import apply_service_events

        with connect(props) as conn:
            ensure_member_of_owner(conn, f"{props['service']}_owner")
            payloads = [(t, int(v), [tuple(m) for m in fields]) for t, v, fields in props.get("payloads") or []]
            return apply_service_events(conn, props["service"], publishes=bool(props["publishes"]),
                                        cdc_role=props["cdcRole"], payloads=payloads)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        self.run_sql(props)
        return pulumi.dynamic.CreateResult(id_=f"{props['database']}/{props['service']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        replaces = [k for k in REPLACING_INPUTS if olds.get(k) != news.get(k)]
        changed = replaces or [k for k in news if olds.get(k) != news.get(k)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        if olds.get("publishes") and not news.get("publishes"):
            self.delete(_id, olds)  # the service stopped publishing: its publication goes, its outbox stays
        self.run_sql(news)
        return pulumi.dynamic.UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from components.publication import drop_publication

        if props.get("publication"):
            with connect(props) as conn:
                drop_publication(conn, props["publication"])


class ServiceEvents(pulumi.dynamic.Resource, module="edumatrix", name="ServiceEvents"):
    """`pulumi-python:dynamic/edumatrix:ServiceEvents`: a service's inbox, and outbox and its publication."""

    def __init__(self, name: str, *, service: str, publishes: bool, publication: str | None, cdc_role: str,
                 payloads: Sequence[tuple[str, int, Sequence[tuple[str, str]]]], database: str,
                 host: pulumi.Input[str], port: pulumi.Input[int], username: str,
                 password: pulumi.Input[str], sslrootcert: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(ServiceEventsProvider(), name, {
            "service": service, "publishes": publishes, "publication": publication, "cdcRole": cdc_role,
            # the outbox's payload check (a catalog change re-runs it): [[type, version, [[member, kind]...]]...]
            "payloads": [[t, v, [list(m) for m in fields]] for t, v, fields in payloads],
            "database": database, "host": host, "port": port, "username": username,
            "password": pulumi.Output.secret(password), "sslmode": "verify-full", "sslrootcert": sslrootcert,
        }, opts)
