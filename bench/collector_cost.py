"""Benchmark: what one metrics-collector sample costs the server (not a test).

    python bench/collector_cost.py [--connections .local/connections.json] [--samples 50]

Needs `edumatrix-db local up`. Takes `--samples` samples with `edumatrix_db.ops.metrics.collect` (each
against the previous, as the per-minute job does) as the local admin, and reads the server's own account
of it from pg_stat_statements (execution time and rows of the collector's statements, deltas over the run).
Baseline in the same run: the same number of `SELECT 1` round trips on the same connection.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edumatrix_db.ops import metrics

MARKERS = ("pg_stat_activity", "pg_stat_statements s", "pg_total_relation_size", "pg_stat_database")


def server_side(conn: psycopg.Connection) -> tuple[float, int, int]:
    """(execution ms, rows, calls) of the collector's statements so far, by this login."""
    relation = metrics._statements_relation(conn)
    row = conn.execute(
        f"SELECT coalesce(sum(total_exec_time), 0), coalesce(sum(rows), 0), coalesce(sum(calls), 0) FROM {relation} "
        "WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = current_user) AND ("
        + " OR ".join("query LIKE %s" for _ in MARKERS) + ") AND query NOT LIKE %s",
        [*(f"%{m}%" for m in MARKERS), "%coalesce(sum(total_exec_time)%"]).fetchone()
    assert row is not None
    return float(row[0]), int(row[1]), int(row[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", default=".local/connections.json")
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    uri = json.loads(Path(args.connections).read_text())["admin"]
    with psycopg.connect(uri, autocommit=True) as conn:
        previous = metrics.collect(conn, None)  # warm-up (and the first sample of the chain)
        before = server_side(conn)
        started = time.perf_counter()
        rows_client = 0
        for _ in range(args.samples):
            previous = metrics.collect(conn, previous)
            rows_client += previous.rows_read
        collector_wall = (time.perf_counter() - started) * 1000 / args.samples
        after = server_side(conn)
        started = time.perf_counter()
        for _ in range(args.samples):
            conn.execute("SELECT 1").fetchone()
        baseline_wall = (time.perf_counter() - started) * 1000 / args.samples
    exec_ms = (after[0] - before[0]) / args.samples
    rows = (after[1] - before[1]) / args.samples
    print(f"metrics collector, {args.samples} samples, local server over TLS:")
    print(f"  server execution per sample: {exec_ms:.2f} ms, {rows:.0f} rows returned by its statements "
          f"({(after[2] - before[2]) / args.samples:.0f} statements)")
    print(f"  client wall time per sample: {collector_wall:.2f} ms; rows the client read: "
          f"{rows_client / args.samples:.0f}")
    print(f"  baseline SELECT 1 round trip: {baseline_wall:.2f} ms; sample / round trip: "
          f"{collector_wall / baseline_wall:.1f}x")


if __name__ == "__main__":
    main()
