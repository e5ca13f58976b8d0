"""`edumatrix-db events sql SERVICE`: the outbox, inbox and publication SQL of a catalog service
(`edumatrix_db.database.events`, docs/events.md)."""

from __future__ import annotations

import argparse
import sys

from config.access import PlatformRoleKind, platform_role_name
from config.catalog import load_catalog
from edumatrix_db.database import events


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("events", help="outbox and inbox helpers (docs/events.md)")
    sub = parser.add_subparsers(dest="events_command", required=True)
    sql = sub.add_parser("sql", help="print the SQL of a service's outbox, inbox and publication, and the "
                                     "statements a service runs to write and to handle an event")
    sql.add_argument("service")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edumatrix_db.cli.lifecycle import unknown_service

    problem = unknown_service(args.service)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    spec = load_catalog().get(args.service)
    cdc = platform_role_name(PlatformRoleKind.CDC_REPLICATOR)
    print(f"-- {spec.name}: run by the platform admin (a member of {spec.name}_owner); idempotent")
    if not spec.events:
        print(f"-- {spec.name} publishes no events (config/services.yaml): an inbox only, no outbox, no publication")
    print("BEGIN;")
    for stmt in events.event_objects_sql(spec.name, publishes=bool(spec.events), cdc_role=cdc):
        print(f"{stmt};")
    print("COMMIT;")
    if spec.events:
        print("\n-- writing an event, in the tenant transaction of the change it announces "
              "(aggregatetype, aggregateid, type, payload, schema_version):")
        print(f"-- {events.write_event_sql(spec.name)};")
        for e in spec.events:
            print(f"--   {e.type}: aggregatetype {e.aggregate!r}, schema_version {e.version}")
    print("\n-- handling an event, first statement of the handler's tenant transaction "
          "(event id, source service, type, schema_version); no row back = already applied, skip:")
    print(f"-- {events.record_inbox_sql(spec.name)};")
    return 0
