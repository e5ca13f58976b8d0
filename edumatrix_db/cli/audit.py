"""`edumatrix-db audit` and `edumatrix-db guard install|drop`: the live database against the access model
(`edumatrix_db.ops.audit`, `edumatrix_db.database.guard`).

    edumatrix-db audit local                      the local database (as the platform's ops login)
    edumatrix-db audit --uri URI [--stack prod]   any database, with the model of a stack
    edumatrix-db guard install --uri URI          the grant guard, as the RDS master user
    edumatrix-db guard drop --uri URI             before a major-version upgrade (RDS requires it)

Exit codes: 0 clean, 1 findings, 2 usage or connection error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from config.access import AccessModel, model_for_settings
from config.errors import ConfigError
from config.loader import PROJECT_ROOT, load_stack
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.database import guard
from edumatrix_db.database.localpg import LocalServer
from edumatrix_db.ops.audit import RULES, AuditReport, run_audit


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("where", nargs="?", choices=["local"], help="the local database (`local up`)")
    target.add_argument("--uri", help="a libpq URI (read-only credentials are enough for the audit)")
    target.add_argument("--stack", default=None, help="whose access model (default: local for `local`; "
                                                      "required with --uri)")
    target.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root holding .local/")
    audit = subparsers.add_parser(
        "audit", parents=[target], help="the live database against the access model: isolation, tenant "
        "coverage, naming, ownership, unknown roles, large objects, the GDPR contract",
        description="Exit 0 clean, 1 findings, 2 usage or connection error.",
    )
    audit.add_argument("--format", choices=["table", "json"], default="table")
    audit.set_defaults(handler=run_audit_command)
    guard_parser = subparsers.add_parser(
        "guard", help="install or drop the grant guard (event trigger) as a superuser / the RDS master user"
    )
    sub = guard_parser.add_subparsers(dest="guard_command", required=True)
    sub.add_parser("install", parents=[target], help="refuse grants outside the granting service (idempotent)")
    sub.add_parser("drop", parents=[target], help="drop it (before a major-version upgrade on RDS)")
    guard_parser.set_defaults(handler=run_guard_command)


def _target(args: argparse.Namespace, *, ops: bool) -> tuple[str, AccessModel] | str:
    """(uri, model), or an error message."""
    if (args.where is None) == (args.uri is None):
        return "name exactly one database: `local` or --uri URI"
    if args.uri is not None and args.stack is None:
        return "--uri needs --stack STACK: the stack whose access model the database must follow"
    settings = load_stack(args.stack or "local")
    model = model_for_settings(settings)
    if args.uri is not None:
        return args.uri, model
    server = LocalServer(args.root, database=model.database)
    if not server.connections_file.is_file():
        return f"{server.connections_file} not found: run `edumatrix-db local up` first"
    connections = json.loads(server.connections_file.read_text())
    uri = connections.get("platform", {}).get("ops") if ops else None
    return str(uri or connections["admin"]), model


def _connect(uri: str) -> psycopg.Connection[Any] | str:
    try:
        return psycopg.connect(uri, autocommit=True, connect_timeout=15)
    except psycopg.Error as exc:
        return f"cannot connect: {str(exc).strip()}"


def _open(args: argparse.Namespace, command: str) -> tuple[psycopg.Connection[Any], AccessModel] | None:
    """The connection and model the arguments name, or None after printing why not (exit 2)."""
    try:
        target = _target(args, ops=command == "audit")
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return None
    if isinstance(target, str):
        print(f"{command}: {target}", file=sys.stderr)
        return None
    uri, model = target
    if command == "guard" and args.where == "local":
        return LocalServer(args.root, database=model.database).superuser(), model
    conn = _connect(uri)
    if isinstance(conn, str):
        print(f"{command}: {conn}", file=sys.stderr)
        return None
    return conn, model


def run_audit_command(args: argparse.Namespace) -> int:
    opened = _open(args, "audit")
    if opened is None:
        return EXIT_CONFIG
    conn, model = opened
    with conn:
        report = run_audit(conn, model)
    if args.format == "json":
        print(json.dumps(report.as_json(), indent=2))
    else:
        render_table(report, model)
    return EXIT_OK if report.clean else EXIT_VIOLATIONS


def render_table(report: AuditReport, model: AccessModel, console: Console | None = None) -> None:
    console = console or Console(width=160)
    if report.findings:
        table = Table(title="findings", show_lines=False)
        for column in ("rule", "service", "object", "problem", "fix"):
            table.add_column(column, overflow="fold")
        for f in report.findings:
            table.add_row(f.rule, f.service or "-", f.object, f.message, f.fix)
        console.print(table)
    counts = report.counts_by_rule()
    summary = ", ".join(f"{rule} {counts[rule]}" for rule in RULES)
    console.print(
        f"{model.database}: {len(report.findings)} finding(s) ({summary}); lock table "
        f"{report.lock_table_use:.1%} used; {report.queries} queries"
    )


def run_guard_command(args: argparse.Namespace) -> int:
    opened = _open(args, "guard")
    if opened is None:
        return EXIT_CONFIG
    conn, model = opened
    with conn:
        try:
            notes = guard.install_guard(conn, model) if args.guard_command == "install" else guard.drop_guard(conn)
        except psycopg.Error as exc:
            print(f"guard: {str(exc).strip()} (needs a superuser locally, the master user on RDS)",
                  file=sys.stderr)
            return EXIT_CONFIG
    for note in notes:
        print(note)
    return EXIT_OK
