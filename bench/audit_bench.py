"""Benchmark: the audit on 9 schemas x 200 tables, against a naive per-object check, same run (not a test).

    python bench/audit_bench.py [--tables 200] [--rounds 3]

Starts a scratch local server of its own (provisioned by `local up`'s code, stopped and deleted at the end),
and, as each service's migrator, creates `--tables` tables in its schema the documented way (composite
primary key, `enable_tenant_isolation`); every tenth table is left without row-level security, so the audit
has findings to report. Then, as the platform's `edumatrix_ops` login, it times:

- audit: `edumatrix_db.ops.audit.run_audit`: the whole catalog in a fixed handful of queries;
- naive: what a per-object checker does: list the tables, then per table read its RLS flags and owner, its
  policies, its `institution_id` column and its keys (four queries per table).

Rounds alternate the two; the median of each is reported with the ratio naive/audit and the audit's time
per 1,000 tables against the budget of one second.

It also prices the grant guard (the event trigger) for migrations in a schema of that size: `feedback`'s
migrator creates tables the documented way (five DDL statements each) and runs GRANTs with the guard
enabled and disabled, alternating, and the ratio is reported.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.access import build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg
from edumatrix_db.database.tenancy import enable_tenant_isolation_sql
from edumatrix_db.ops.audit import run_audit

BUDGET_PER_1000_TABLES_S = 1.0


def create_tables(server: localpg.LocalServer, model: Any, tables: int, console: Console) -> None:
    connections = server.connections(model)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("creating tables", total=tables * len(model.services))
        for s in model.services:
            with psycopg.connect(connections["services"][s.service]["roles"]["migrator"], autocommit=True) as conn:
                for i in range(tables):
                    name = f"{s.service}_bench_{i:03d}"
                    statements = [
                        f"CREATE TABLE {name} (institution_id uuid NOT NULL, id bigint NOT NULL, "
                        f"note text, PRIMARY KEY (institution_id, id))"
                    ]
                    if i % 10:
                        statements += enable_tenant_isolation_sql(s.service, name)
                    with conn.transaction():
                        conn.execute(";\n".join(statements).encode())
                    progress.advance(task)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def naive_check(conn: psycopg.Connection[Any], schemas: list[str]) -> tuple[int, int]:
    """(problems found, queries run): one round of per-table queries."""
    queries, problems = 1, 0
    tables = conn.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p')",
        [schemas],
    ).fetchall()
    for (oid,) in tables:
        flags = conn.execute(
            "SELECT relrowsecurity AND relforcerowsecurity, relowner::regrole::text, relacl FROM pg_class "
            "WHERE oid = %s", [oid]).fetchone()
        policies = conn.execute(
            "SELECT polname, polcmd, polroles, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) "
            "FROM pg_policy WHERE polrelid = %s", [oid]).fetchall()
        column = conn.execute(
            "SELECT attnotnull FROM pg_attribute WHERE attrelid = %s AND attname = 'institution_id' "
            "AND NOT attisdropped", [oid]).fetchone()
        keys = conn.execute(
            "SELECT conname FROM pg_constraint c WHERE conrelid = %s AND contype IN ('p','u','f','x') AND NOT "
            "(SELECT attnum FROM pg_attribute WHERE attrelid = c.conrelid AND attname = 'institution_id') "
            "= ANY(c.conkey)", [oid]).fetchall()
        queries += 4
        problems += int(not (flags and flags[0])) + int(len(policies) != 1) + int(not (column and column[0]))
        problems += len(keys)
    return problems, queries


def guard_cost(server: localpg.LocalServer, model: Any, rounds: int) -> dict[str, tuple[float, float]]:
    """ms per (table created under isolation, GRANT) with the guard on and off: {"create": (on, off), ...}."""
    migrator = server.connections(model)["services"]["feedback"]["roles"]["migrator"]
    times: dict[str, dict[bool, list[float]]] = {"create": {True: [], False: []}, "grant": {True: [], False: []}}
    with psycopg.connect(migrator, autocommit=True) as conn, server.superuser() as su:
        for r in range(rounds * 2):
            on = r % 2 == 0
            su.execute(f"ALTER EVENT TRIGGER edumatrix_refuse_foreign_grants {'ENABLE' if on else 'DISABLE'}")
            try:
                for i in range(10):
                    name = f"feedback_guard_{r}_{i}"
                    started = time.perf_counter()
                    with conn.transaction():
                        conn.execute(";\n".join([f"CREATE TABLE {name} (institution_id uuid NOT NULL, id bigint "
                                                  "NOT NULL, PRIMARY KEY (institution_id, id))",
                                                  *enable_tenant_isolation_sql("feedback", name)]).encode())
                    times["create"][on].append(time.perf_counter() - started)
                    started = time.perf_counter()
                    conn.execute(f"GRANT SELECT ON {name} TO feedback_readonly".encode())
                    times["grant"][on].append(time.perf_counter() - started)
                    conn.execute(f"DROP TABLE {name}".encode())
            finally:
                su.execute("ALTER EVENT TRIGGER edumatrix_refuse_foreign_grants ENABLE")
    return {k: (statistics.median(v[True]) * 1000, statistics.median(v[False]) * 1000) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=200, help="tables per service schema (default 200)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="edumatrix-audit-bench-"))
    root.chmod(0o755)
    model = build_access_model(load_catalog())
    server = None
    try:
        with console.status("starting a scratch server (local up)"):
            server, _state, _ = localpg.up(root, model, preferred_port=free_port())
        create_tables(server, model, args.tables, console)
        total = args.tables * len(model.services)
        schemas = [s.schema for s in model.services]
        ops_uri = server.connections(model)["platform"]["ops"]
        audit_times: list[float] = []
        naive_times: list[float] = []
        with psycopg.connect(ops_uri, autocommit=True) as conn:
            for _ in range(args.rounds):
                started = time.perf_counter()
                report = run_audit(conn, model)
                audit_times.append(time.perf_counter() - started)
                started = time.perf_counter()
                naive_problems, naive_queries = naive_check(conn, schemas)
                naive_times.append(time.perf_counter() - started)
        audit_s, naive_s = statistics.median(audit_times), statistics.median(naive_times)
        per_1000 = audit_s / total * 1000
        table = Table(title=f"audit of {len(schemas)} schemas x {args.tables} tables = {total} tables "
                            f"(median of {args.rounds} rounds)")
        for column in ("check", "time", "queries", "problems found"):
            table.add_column(column)
        table.add_row("audit (run_audit)", f"{audit_s:.3f} s", str(report.queries), str(len(report.findings)))
        table.add_row("naive, per table", f"{naive_s:.3f} s", str(naive_queries), str(naive_problems))
        console.print(table)
        console.print(f"ratio naive/audit: {naive_s / audit_s:.1f}x; audit per 1,000 tables: {per_1000:.3f} s "
                      f"(budget {BUDGET_PER_1000_TABLES_S:.1f} s): "
                      f"{'within' if per_1000 < BUDGET_PER_1000_TABLES_S else 'OVER'}")
        with console.status("pricing the grant guard"):
            cost = guard_cost(server, model, args.rounds)
        for what, label in (("create", "CREATE TABLE + tenant isolation (5 statements)"), ("grant", "GRANT")):
            on, off = cost[what]
            console.print(f"grant guard, {label} in a schema of {args.tables} tables: {on:.1f} ms with, "
                          f"{off:.1f} ms without ({on / off:.2f}x)")
        return 0 if per_1000 < BUDGET_PER_1000_TABLES_S else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
