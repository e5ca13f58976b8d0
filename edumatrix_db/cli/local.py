"""`edumatrix-db local up|down|status` and `edumatrix-db tenancy sql`: the local database commands
(`edumatrix_db.database`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.access import AccessModel, model_for_settings
from config.errors import ConfigError
from config.loader import PROJECT_ROOT, load_stack
from edumatrix_db.database.tenancy import ID_TYPES, enable_tenant_isolation_sql

if TYPE_CHECKING:
    from edumatrix_db.database.localpg import LocalServer

# edumatrix_db.database.localpg (and psycopg) is imported by the commands that use it, not by every
# `edumatrix-db` process: plan and check do not need it.


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_local_parser(subparsers)
    _add_tenancy_parser(subparsers)


def _add_local_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    local = subparsers.add_parser(
        "local",
        help="a local PostgreSQL isolated exactly like production",
        description="Start, provision, inspect and stop the local PostgreSQL (data under <root>/.local/).",
    )
    sub = local.add_subparsers(dest="local_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--root",
        type=Path,
        default=PROJECT_ROOT,
        help="project root holding .local/ (default: the checkout)",
    )
    common.add_argument("--stack", default="local", help="stack file to read (default: local)")
    up = sub.add_parser(
        "up", parents=[common], help="start the server and apply the access model (idempotent)"
    )
    up.add_argument(
        "--server-only",
        action="store_true",
        help="start and bootstrap the server only; leave schemas and roles to `pulumi up --stack local`",
    )
    up.add_argument(
        "--revoke-foreign",
        action="store_true",
        help="also revoke grants that give a service's objects to roles outside the service (reported otherwise)",
    )
    up.add_argument(
        "--destructive",
        action="store_true",
        help="drop schemas and roles of services no longer in the catalog (data is lost)",
    )
    sub.add_parser("down", parents=[common], help="stop the server (data is kept)")
    sub.add_parser("status", parents=[common], help="is the server running, where, which version")
    local.set_defaults(handler=run)
    return local


def _add_tenancy_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    tenancy = subparsers.add_parser("tenancy", help="tenant isolation helpers for service migrations")
    sub = tenancy.add_subparsers(dest="tenancy_command", required=True)
    sql = sub.add_parser("sql", help="print the SQL that puts a table under tenant isolation")
    sql.add_argument("service")
    sql.add_argument("table", help="table name, <service>_<entity>")
    sql.add_argument("--id-type", default="uuid", choices=ID_TYPES, help="type of institution_id")
    tenancy.set_defaults(handler=run_tenancy)
    return tenancy


def run_tenancy(args: argparse.Namespace) -> int:
    from edumatrix_db.cli.lifecycle import unknown_service

    problem = unknown_service(args.service)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        statements = enable_tenant_isolation_sql(args.service, args.table, id_type=args.id_type)
    except ValueError as exc:  # InvalidIdentifier is a ValueError too
        print(str(exc), file=sys.stderr)
        return 2
    for stmt in statements:
        print(f"{stmt};")
    return 0


def run(args: argparse.Namespace) -> int:
    from edumatrix_db.database import localpg, pooler

    try:
        settings = load_stack(args.stack)
    except ConfigError as exc:
        print(exc)
        return 2
    if not settings.is_local:
        print(f"`local` commands need a local stack; {args.stack!r} is {settings.environment.value}")
        return 2
    model = model_for_settings(settings)
    kwargs: dict[str, Any] = {
        "admin": settings.instance.master_username,
        "max_connections": settings.instance.max_connections,
        "preferred_port": settings.local.preferred_port,
        "ssl_min_protocol_version": settings.instance.ssl_min_protocol_version,
        "temp_file_limit_mb": settings.instance.temp_file_limit_mb,
    }
    try:
        if args.local_command == "up":
            return _up(args, model, kwargs)
        server = localpg.LocalServer(args.root, database=model.database, **kwargs)
        if args.local_command == "down":
            print("stopped the local server" if server.stop() else "the local server was not running")
            return 0
        state = server.state()
        if state is None or not server.is_running():
            print(f"not running (data: {server.pgdata})")
            return 3
        print(
            f"running: PostgreSQL {state.version} ({state.source}: {state.bindir}) "
            f"on 127.0.0.1:{state.port}, "
            f"{'TLS only' if state.tls else 'WITHOUT TLS'}, pgaudit {'on' if state.pgaudit else 'OFF'}"
        )
        print(f"connections: {server.connections_file}")
        show_pools(server)
        return 0
    except (localpg.LocalServerError, pooler.PoolerError) as exc:
        print(f"error: {exc}")
        return 1


def show_pools(server: LocalServer) -> None:
    """The pooler's line and one row per pool alias: size from the catalog, clients and server connections."""
    from rich.console import Console
    from rich.table import Table

    from edumatrix_db.database import pooler

    bouncer = pooler.Pooler(server)
    if not bouncer.is_running():
        print("pooler: PgBouncer is not running (`edumatrix-db local up` starts it)")
        return
    print(f"pooler: PgBouncer on 127.0.0.1:{bouncer.port}, transaction mode, TLS, "
          f"query_wait_timeout {bouncer.query_wait_timeout} s")
    live = {p.database: p for p in bouncer.pools()}
    table = Table("pool (database alias)", "size", "clients active", "waiting", "server conns", "max wait s")
    for name, size in bouncer.configured().items():
        pool = live.get(name)
        counts = (pool.active, pool.waiting, pool.server_connections, pool.max_wait_seconds) if pool else (0, 0, 0, 0)
        table.add_row(name, str(size), *map(str, counts))
    Console(width=120).print(table)


def _up(args: argparse.Namespace, model: AccessModel, kwargs: dict[str, Any]) -> int:
    from edumatrix_db.database import localpg

    server, state, notes = localpg.up(
        args.root,
        model,
        apply_model=not args.server_only,
        destructive=args.destructive,
        revoke_foreign=args.revoke_foreign,
        **kwargs,
    )
    print(
        f"server: PostgreSQL {state.version} from {state.source} ({state.bindir}), run as OS user "
        f"{state.server_user}"
    )
    tls = (
        f"TLS only (TLSv1.3, CA {server.ca_cert})" if state.tls else "WITHOUT TLS (server built without SSL)"
    )
    print(f"listening: 127.0.0.1:{state.port}, {tls}, data {server.pgdata}")
    print(
        f"audit: {'pgaudit on (ddl, role)' if state.pgaudit else 'pgaudit NOT available: audit off'}; "
        f"log {server.log_file}"
    )
    for note in notes:
        print(f"  {note}")
    if args.server_only:
        print(
            f"server only: admin {server.admin} can now run `pulumi up --stack local`; "
            f"admin URI in {server.connections_file}"
        )
        server.write_connections(model, {"admin": server.admin_uri(), "database": model.database, "services": {}})
        return 0
    print(
        f"database {model.database}: {len(model.services)} service schemas "
        f"({', '.join(s.schema for s in model.services)})"
    )
    print(f"connections: {server.connections_file}")
    return 0
