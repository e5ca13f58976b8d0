"""`edumatrix-db migrate SERVICE new|up|down|status|check`, `edumatrix-db docs SERVICE` and
`edumatrix-db health [SERVICE]`: a service's schema over its life (edumatrix_db.ops.migrate, .schemadoc,
.health)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import os
import sys
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from config.access import AccessModel, model_for_settings
from config.catalog import load_catalog
from config.loader import load_stack
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.database import localpg
from edumatrix_db.ops import health, migrate, schemadoc
from edumatrix_db.ops.findings import Finding, counts_by_rule

MIGRATOR_URL_ENV = "EDUMATRIX_MIGRATOR_URL"
MONITOR_URL_ENV = "EDUMATRIX_MONITOR_URL"


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _add_migrate_parser(subparsers)
    _add_docs_and_health_parsers(subparsers)


def _local_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", type=Path, default=localpg.PROJECT_ROOT,
                        help="project root holding .local/ (the local server; default: the checkout)")
    common.add_argument("--stack", default="local", help="stack file of the local server (default: local)")
    return common


def _add_migrate_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate", parents=[_local_options()],
        help="numbered migrations of one service's schema (Alembic), run as its migrator",
        description="Migrations live in DIR/<service>/versions/NNNN_<slug>.py (docs/migrations.md). up/down/"
                    "status connect as the service's migrator: --url, else $EDUMATRIX_MIGRATOR_URL, else the "
                    "local server's .local/connections.json.")
    parser.add_argument("service")
    parser.add_argument("--dir", type=Path, default=migrate.MIGRATIONS_ROOT,
                        help="migrations root holding <service>/versions (default: this repository's migrations/)")
    parser.add_argument("--url", help=f"the migrator's connection URI (default: ${MIGRATOR_URL_ENV}, then local)")
    parser.add_argument("--lock-timeout", default=migrate.DEFAULT_LOCK_TIMEOUT,
                        help="give up on a lock after this long (default: %(default)s)")
    sub = parser.add_subparsers(dest="action", required=True)
    new = sub.add_parser("new", help="write the next numbered revision")
    new.add_argument("message")
    up = sub.add_parser("up", help="upgrade (default: to head)")
    up.add_argument("target", nargs="?", default="head")
    down = sub.add_parser("down", help="downgrade (default: one revision)")
    down.add_argument("target", nargs="?", default="-1")
    sub.add_parser("status", help="current revision and what is applied")
    sub.add_parser("check", help="scratch database: apply all, audit, down to base, up again, compare catalogs")
    parser.set_defaults(handler=run_migrate)


def unknown_service(service: str) -> str | None:
    """None for a catalog service, else the message (with a suggestion) for exit 2."""
    names = load_catalog().names
    if service in names:
        return None
    hint = difflib.get_close_matches(service, names, n=1)
    return (f"unknown service {service!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f"; services: {', '.join(names)}")


def _local(args: argparse.Namespace) -> tuple[localpg.LocalServer, AccessModel]:
    settings = load_stack(args.stack)
    model = model_for_settings(settings)
    server = localpg.LocalServer(args.root, database=model.database, admin=settings.instance.master_username)
    return server, model


def migrator_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get(MIGRATOR_URL_ENV)
    if url:
        return str(url)
    server, _ = _local(args)
    if not server.connections_file.exists():
        raise migrate.MigrationError(f"no --url, no ${MIGRATOR_URL_ENV} and no {server.connections_file}: run "
                                     "`edumatrix-db local up` or pass the migrator's URI")
    connections: dict[str, Any] = json.loads(server.connections_file.read_text())
    return str(connections["services"][args.service]["roles"]["migrator"])


def run_migrate(args: argparse.Namespace) -> int:
    console = Console()
    problem = unknown_service(args.service)
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.action == "new":
            path = migrate.new_revision(args.service, args.message, args.dir)
            console.print(f"wrote {path}")
            return EXIT_OK
        if args.action == "check":
            return _check(args, console)
        url = migrator_url(args)
        if args.action == "status":
            return _status(migrate.status(args.service, url, root=args.dir), console)
        step = migrate.upgrade if args.action == "up" else migrate.downgrade
        with console.status(f"{args.action} {args.service} to {args.target} ..."):
            step(args.service, url, args.target, root=args.dir, lock_timeout=args.lock_timeout)
        return _status(migrate.status(args.service, url, root=args.dir), console)
    except migrate.MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except localpg.LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except Exception as exc:  # a revision failed: show the database's message, not a traceback
        detail = str(getattr(exc, "orig", None) or exc).strip()
        print(f"migration failed (rolled back to the last complete revision): {detail}", file=sys.stderr)
        return EXIT_VIOLATIONS


def _status(status: migrate.Status, console: Console) -> int:
    table = Table(title=f"{status.service}: at {status.current or 'base (nothing applied)'}")
    for column in ("revision", "applied", "message"):
        table.add_column(column)
    for rev, message, applied in status.revisions:
        table.add_row(rev, "yes" if applied else "no", message)
    console.print(table)
    return EXIT_OK


def _check(args: argparse.Namespace, console: Console) -> int:
    server, model = _local(args)
    if not server.is_running():
        raise migrate.MigrationError("`migrate check` uses a scratch database on the local server: run "
                                     "`edumatrix-db local up` first")
    with console.status("checking ...") as spinner:
        report = migrate.check(args.service, server, model, root=args.dir,
                               progress=lambda step: spinner.update(f"{args.service}: {step}"))
    steps = Table(title=f"migrate check {args.service}: {len(report.revisions)} revision(s)")
    steps.add_column("step")
    steps.add_column("outcome")
    for name, outcome in report.steps:
        steps.add_row(name, outcome)
    console.print(steps)
    if report.passed:
        console.print(f"[green]passed[/green]: {args.service}'s migrations apply, pass the audit rules, roll back "
                      "to base and re-apply to an identical catalog")
        return EXIT_OK
    _print_findings(console, report.findings, title="findings")
    console.print("[red]failed[/red]")
    return EXIT_VIOLATIONS


def _add_docs_and_health_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    url_help = (f"a login with pg_monitor (default: ${MONITOR_URL_ENV}, then the local admin from "
                ".local/connections.json)")
    docs = subparsers.add_parser(
        "docs", parents=[_local_options()], help="document a service's schema from the live catalog",
        description="Mermaid ER diagram, keys, indexes and what they serve, partitions, sizes, row estimates, "
                    "tenant isolation, pg_cron jobs, growth, top statements (docs/schema-docs.md).")
    docs.add_argument("service")
    docs.add_argument("--format", choices=("markdown", "json"), default="markdown")
    docs.add_argument("--url", help=url_help)
    docs.set_defaults(handler=run_docs)
    check = subparsers.add_parser(
        "health", parents=[_local_options()], help="maintenance findings with fixes (all services or one)",
        description="Dead tuples, table and index bloat, unused and duplicate indexes, tables never vacuumed "
                    "or analyzed, transaction ID age. Exit 1 when there are findings (docs/maintenance.md).")
    check.add_argument("service", nargs="?")
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument("--url", help=url_help)
    check.set_defaults(handler=run_health)


def monitor_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get(MONITOR_URL_ENV)
    if url:
        return str(url)
    server, _ = _local(args)
    if not server.connections_file.exists():
        raise migrate.MigrationError(f"no --url, no ${MONITOR_URL_ENV} and no {server.connections_file}: run "
                                     "`edumatrix-db local up` or pass a pg_monitor login's URI")
    return str(json.loads(server.connections_file.read_text())["admin"])


def _connect(args: argparse.Namespace) -> tuple[psycopg.Connection[Any], AccessModel] | int:
    """The monitoring connection and the model, or the exit code after saying what is wrong."""
    problem = unknown_service(args.service) if args.service else None
    if problem:
        print(problem, file=sys.stderr)
        return EXIT_CONFIG
    try:
        _, model = _local(args)
        return psycopg.connect(monitor_url(args), autocommit=True), model
    except (migrate.MigrationError, localpg.LocalServerError, psycopg.OperationalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def run_docs(args: argparse.Namespace) -> int:
    opened = _connect(args)
    if isinstance(opened, int):
        return opened
    conn, model = opened
    migrator = None
    with contextlib.suppress(migrate.MigrationError, psycopg.OperationalError, KeyError):
        migrator = psycopg.connect(migrator_url(args), autocommit=True)  # else: jobs reported as not visible
    with conn:
        doc = schemadoc.collect(conn, model, args.service, migrator)
    if migrator is not None:
        migrator.close()
    print(json.dumps(doc, indent=2, default=str) if args.format == "json" else schemadoc.markdown(doc), end="")
    return EXIT_OK


def run_health(args: argparse.Namespace) -> int:
    opened = _connect(args)
    if isinstance(opened, int):
        return opened
    conn, model = opened
    with conn:
        findings = health.check(conn, model, [args.service] if args.service else None)
    if args.format == "json":
        print(json.dumps({"findings": [dataclasses.asdict(f) for f in findings],
                          "counts": counts_by_rule(findings)}, indent=2))
    else:
        _print_findings(Console(), findings, title=f"health {args.service or 'all services'}")
    return EXIT_VIOLATIONS if findings else EXIT_OK


def _print_findings(console: Console, findings: list[Finding], *, title: str) -> None:
    if not findings:
        console.print(f"{title}: no findings")
        return
    table = Table(title=title)
    for column in ("rule", "service", "object", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f.rule, f.service, f.object, f.message, f.fix)
    console.print(table)
    counts = ", ".join(f"{rule}: {n}" for rule, n in sorted(counts_by_rule(findings).items()))
    console.print(f"{len(findings)} finding(s): {counts}")
