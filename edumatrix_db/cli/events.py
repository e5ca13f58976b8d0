"""`edumatrix-db events sql SERVICE`: the outbox, inbox and publication SQL of a catalog service
(`edumatrix_db.database.events`, docs/events.md); `edumatrix-db events relay SERVICE`: the local relay
(`edumatrix_db.ops.relay`) against the local server, for a bounded run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from config.access import PlatformRoleKind, platform_role_name
from config.catalog import load_catalog
from config.loader import PROJECT_ROOT
from edumatrix_db.database import events


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("events", help="outbox and inbox helpers (docs/events.md)")
    sub = parser.add_subparsers(dest="events_command", required=True)
    sql = sub.add_parser("sql", help="print the SQL of a service's outbox, inbox and publication, and the "
                                     "statements a service runs to write and to handle an event")
    sql.add_argument("service")
    relay = sub.add_parser("relay", help="relay a service's committed outbox events from the local server to a "
                                         "Kafka broker (the local stand-in for Debezium), then stop")
    relay.add_argument("service")
    relay.add_argument("where", nargs="?", choices=["local"], default="local", help="the local server (`local up`)")
    relay.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers, host:port[,host:port]")
    relay.add_argument("--max-events", type=int, help="stop after the poll that brings the total to this many")
    relay.add_argument("--until-idle", action="store_true", help="stop after the first poll that relays nothing")
    relay.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    relay.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root holding .local/")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from edumatrix_db.cli.lifecycle import unknown_service

    problem = unknown_service(args.service)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if args.events_command == "relay":
        return run_relay(args)
    spec = load_catalog().get(args.service)
    cdc = platform_role_name(PlatformRoleKind.CDC_REPLICATOR)
    print(f"-- {spec.name}: run by the platform admin (a member of {spec.name}_owner); idempotent")
    if not spec.events:
        print(f"-- {spec.name} publishes no events (config/services.yaml): an inbox only, no outbox, no publication")
    print("BEGIN;")
    payloads = [(e.type, e.version, e.payload) for e in spec.events]
    for stmt in events.event_objects_sql(spec.name, publishes=bool(spec.events), cdc_role=cdc, payloads=payloads):
        print(f"{stmt};")
    print("COMMIT;")
    if spec.events:
        print("\n-- writing an event, in the tenant transaction of the change it announces "
              "(aggregatetype, aggregateid, type, payload, schema_version):")
        print(f"-- {events.write_event_sql(spec.name)};")
        print("-- then, in the same transaction, unless the service keeps its outbox rows as an audit trail (the "
              "INSERT is in the WAL; deletes are not published):")
        print(f"-- {events.forget_event_sql(spec.name)};")
        for e in spec.events:
            print(f"--   {e.type}: aggregatetype {e.aggregate!r}, schema_version {e.version}, payload "
                  f"{json.dumps(e.fields)} (every member, no null, integers of 32 bits: the outbox's CHECK)")
    print("\n-- handling an event, first statement of the handler's tenant transaction "
          "(event id, source service, type, schema_version); no row back = already applied, skip:")
    print(f"-- {events.record_inbox_sql(spec.name)};")
    return 0


def run_relay(args: argparse.Namespace) -> int:
    """Connect as the local CDC login, relay until a bound, print a summary. The slot stays (a later run
    continues where this one stopped; `relay.drop_slot` removes it)."""
    if not load_catalog().get(args.service).events:
        print(f"{args.service} publishes no events (config/services.yaml): it has no outbox to relay",
              file=sys.stderr)
        return 2
    if args.max_events is not None and args.max_events < 1:
        print("--max-events must be at least 1", file=sys.stderr)
        return 2
    path = args.root / ".local" / "connections.json"
    if not path.is_file():
        print(f"{path} not found: run `edumatrix-db local up` first", file=sys.stderr)
        return 2
    cdc_uri = json.loads(path.read_text()).get("platform", {}).get("cdc_replicator")
    if not cdc_uri:
        print(f"{path} has no platform.cdc_replicator: run `edumatrix-db local up` again", file=sys.stderr)
        return 2

    import psycopg
    from confluent_kafka import Producer
    from rich.console import Console
    from rich.table import Table

    from edumatrix_db.ops import relay

    err = Console(stderr=True)
    with psycopg.connect(cdc_uri, autocommit=True) as conn:
        r = relay.Relay(conn, args.service, Producer({"bootstrap.servers": args.bootstrap}))
        bounds = [b for b in (args.until_idle and "until idle",
                              args.max_events and f"up to {args.max_events} event(s)") if b] or ["until Ctrl-C"]
        message = f"relaying {args.service} to {args.bootstrap} ({', '.join(bounds)})"
        if sys.stderr.isatty():
            with err.status(message) as spinner:
                done = relay.run(r, max_events=args.max_events, until_idle=args.until_idle,
                                 interval_s=args.interval,
                                 on_poll=lambda d: spinner.update(f"{message}: {d.events} event(s), {d.polls} poll(s)"))
        else:
            done = relay.run(r, max_events=args.max_events, until_idle=args.until_idle, interval_s=args.interval)
    out = Console()
    if done.by_topic:
        table = Table("topic", "events")
        for topic, count in sorted(done.by_topic.items()):
            table.add_row(topic, str(count))
        out.print(table)
    out.print(f"relayed {done.events} event(s) of {args.service} in {done.polls} poll(s); stopped: {done.stopped}",
              highlight=False, soft_wrap=True)
    return 0
