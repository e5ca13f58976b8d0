"""Benchmark: the verification core against plain scans of both sides, same data, same run (not a test).

    python bench/verify_bench.py [--rows 1000000] [--rounds 3]

Starts its own scratch PostgreSQL (like the tests: `edumatrix_db.database.localpg`), creates two databases
with the same table of `--rows` rows (about 190 bytes a row, like the extraction issue's 1M rows / 189 MB),
and times, in every round, back to back:

- count:   `SELECT count(*)` on the source, then on the target (the issue's baseline: two sequential scans);
- read:    `SELECT count(*), sum(length(t::text))` on each side, one after the other: every row read and
           printed as text, which is the least any content comparison must do;
- hash:    the first pass of verify alone: `count(*)` and the xor of the row hashes on each side, one after
           the other (what hashing costs, without verify's catalog reads, threads and sequences);
- verify:  `edumatrix_db.ops.verify.verify_schema` (both sides hashed in the database at the same time).

Prints the median of each, the ratios verify/count, verify/read and hash/count, the UTC time and the load
average before and after. The extraction issue's goal is verify within 1.5x of two sequential scans.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.access import build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg
from edumatrix_db.ops.verify import row_hash, table_shapes, verify_schema

SCHEMA = "feedback_schema"
DDL = ("CREATE TABLE feedback_schema.feedback_bench_rows (id bigint PRIMARY KEY, institution_id uuid NOT NULL, "
       "body text NOT NULL, score numeric(6,2), created_at timestamptz NOT NULL)")
FILL = ("INSERT INTO feedback_schema.feedback_bench_rows SELECT g, md5((g %% 97)::text)::uuid, "
        "repeat(md5(g::text), 4), g %% 1000 / 7.0, timestamptz '2026-01-01' + g * interval '1 s' "
        "FROM generate_series(1, %s) g")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="edumatrix-verify-bench-"))
    root.chmod(0o755)
    server = None
    try:
        server, state, _ = localpg.up(root, build_access_model(load_catalog()), preferred_port=free_port())
        print(f"PostgreSQL {state.version} on port {state.port}; {args.rows:,} rows per side")
        conns = {}
        with psycopg.connect(server.bootstrap_conninfo("postgres"), autocommit=True) as su:
            for name in ("bench_source", "bench_target"):
                su.execute(f"DROP DATABASE IF EXISTS {name}")
                su.execute(f"CREATE DATABASE {name}")
        for name in ("bench_source", "bench_target"):
            conn = psycopg.connect(server.bootstrap_conninfo(name), autocommit=True)
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
            conn.execute(DDL)
            conn.execute(FILL, (args.rows,))
            conn.execute("VACUUM ANALYZE")
            conns[name] = conn
        source, target = conns["bench_source"], conns["bench_target"]
        size = source.execute("SELECT pg_size_pretty(pg_total_relation_size('feedback_schema.feedback_bench_rows'))"
                              ).fetchone()
        print(f"table size per side: {size[0] if size else '?'}")
        table = "feedback_schema.feedback_bench_rows"
        shape = table_shapes(source, SCHEMA)["feedback_bench_rows"]
        hash_query = f"SELECT count(*), bit_xor({row_hash('t', shape).as_string(source)}) FROM {table} t"
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}")
        results: dict[str, list[float]] = {"count": [], "read": [], "hash": [], "verify": []}
        for _ in range(args.rounds):
            results["count"].append(timed(lambda: [c.execute(f"SELECT count(*) FROM {table}").fetchone()
                                                   for c in (source, target)]))
            results["read"].append(timed(lambda: [c.execute(f"SELECT count(*), sum(length(t::text)) FROM {table} t"
                                                            ).fetchone() for c in (source, target)]))
            results["hash"].append(timed(lambda: [c.execute(hash_query).fetchone() for c in (source, target)]))
            report = None

            def run() -> None:
                nonlocal report
                report = verify_schema(source, target, SCHEMA, console=Console(file=io.StringIO()))

            results["verify"].append(timed(run))
            if report is None or not report.ok:
                raise SystemExit("the two sides must verify equal")
        med = {k: statistics.median(v) for k, v in results.items()}
        for k, v in med.items():
            print(f"{k:>7}: median {v:.3f} s over {args.rounds} rounds ({', '.join(f'{x:.3f}' for x in results[k])})")
        print(f"ratio verify/count (goal <= 1.5): {med['verify'] / med['count']:.2f}x")
        print(f"ratio verify/read: {med['verify'] / med['read']:.2f}x")
        print(f"ratio hash/count (both sides one after the other): {med['hash'] / med['count']:.2f}x")
        print(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}")
        print(f"verify throughput: {args.rows / med['verify']:,.0f} rows/s per side")
        for conn in conns.values():
            conn.close()
        return 0
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
