"""`edumatrix-db metrics collect`: per-service figures from a PostgreSQL (`edumatrix_db.ops.metrics`), shown or
published to CloudWatch."""

from __future__ import annotations

import argparse
import json
import sys
import time

import psycopg

from config.access import model_for_settings
from config.loader import load_stack
from edumatrix_db.database import localpg
from edumatrix_db.ops import metrics


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("metrics", help="per-service database metrics (the collector of the alarms)")
    sub = parser.add_subparsers(dest="metrics_command", required=True)
    collect = sub.add_parser(
        "collect", help="sample pg_stat_activity, pg_stat_statements and schema sizes per service",
        description="Take a sample (two, --interval apart, for rates and average query time) and print it "
                    "or publish it to CloudWatch (namespace EduMatrix/Database, dimensions Environment, Service).")
    collect.add_argument("target", nargs="?", choices=["local"],
                         help="the local server (its admin URI from .local/connections.json)")
    collect.add_argument("--uri", help="connection URI of a login with pg_monitor (on AWS: edumatrix_ops)")
    collect.add_argument("--root", default=None, help="project root holding .local/ (with `local`)")
    collect.add_argument("--stack", default="local", help="stack whose catalog names the services (default: local)")
    collect.add_argument("--interval", type=float, default=0.0,
                         help="seconds between two samples; 0 (default): one sample, no rates")
    collect.add_argument("--publish", action="store_true", help="PutMetricData to CloudWatch (boto3 credentials)")
    collect.add_argument("--environment", default=None, help="Environment dimension (default: the stack's)")
    collect.add_argument("--format", choices=["table", "json"], default="table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if (args.target is None) == (args.uri is None):
        print("name exactly one of `local` or --uri URI", file=sys.stderr)
        return 2
    settings = load_stack(args.stack)
    model = model_for_settings(settings)
    uri = args.uri
    if uri is None:
        from pathlib import Path

        server = localpg.LocalServer(Path(args.root) if args.root else None, database=model.database,
                                     admin=settings.instance.master_username)
        if not server.connections_file.exists():
            print(f"{server.connections_file} not found: run `edumatrix-db local up`", file=sys.stderr)
            return 2
        uri = json.loads(server.connections_file.read_text())["admin"]
    try:
        with psycopg.connect(uri, autocommit=True) as conn:
            sample = metrics.collect(conn, None, model=model)
            if args.interval > 0:
                time.sleep(args.interval)
                sample = metrics.collect(conn, sample, model=model)
    except (psycopg.Error, metrics.CollectorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(sample.to_json(), indent=2, default=str))
    else:
        _print_table(sample)
    if args.publish:
        import boto3

        sent = metrics.publish(boto3.client("cloudwatch"), sample,
                               environment=args.environment or settings.environment.value)
        print(f"published {sent} datums to CloudWatch ({metrics.NAMESPACE})", file=sys.stderr)
    return 0


def _print_table(sample: metrics.Sample) -> None:
    from rich.console import Console
    from rich.table import Table

    per = f" per {sample.interval_seconds:.0f} s" if sample.interval_seconds else " (one sample: no rates)"
    table = Table("service", "connections", "active", "idle in tx", "lock waits", "app pool used",
                  f"statements{per}", "avg query ms", "schema bytes",
                  title=f"{sample.database} at {sample.taken_at:%Y-%m-%d %H:%M:%S %Z}")
    for row in metrics.rows(sample):
        table.add_row(*row)
    console = Console(width=160)
    console.print(table)
    hit = "-" if sample.cache_hit_percent is None else f"{sample.cache_hit_percent:.1f}%"
    console.print(f"database {sample.database_size_bytes:,} bytes; client connections {sample.connections_total} of "
                  f"max_connections {sample.max_connections}; lock waits {sample.lock_waits_total}; "
                  f"buffer cache hits {hit}; sample cost {sample.rows_read} rows, {sample.duration_ms:.1f} ms")
    for warning in sample.warnings:
        console.print(f"warning: {warning}")
