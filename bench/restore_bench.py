"""Benchmark: `restore-schema` against a single-stream `pg_dump | pg_restore` of the same schema, same run.

    python bench/restore_bench.py [--sizes-mb 1024,4096] [--jobs 2] [--prod-cores 8]

Starts two scratch servers provisioned like production (`edumatrix_db.database.localpg`), fills the source's
`feedback_schema` with four tables (about 55/25/15/5 % of `--sizes-mb`, rows of about 200 bytes, a primary key
and a secondary index each, one foreign key), and for each size times, back to back:

- baseline: `pg_dump -Fc -n feedback_schema SOURCE | pg_restore --no-owner --no-acl --role feedback_owner -d
            TARGET_DB` (one stream; the pipe already overlaps the dump with the restore) into a fresh database
            on the target server;
- restore:  `edumatrix_db.ops.restore.restore_schema(..., replace=True, jobs=N)` into the target's running
            database (staging schema, parallel COPY streams, parallel index builds, swap, access model), without
            `--verify` (the baseline verifies nothing either).

Prints seconds and MB/s of each, the ratio baseline/restore (above 1: restore-schema is faster), and what the
spec's 4-hour recovery SLA means in schema size at the measured rate here and on the prod instance class
under the stated assumption.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config.access import build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg
from edumatrix_db.ops.restore import RestoreRequest, restore_schema

SCHEMA = "feedback_schema"
ROW_BYTES = 200
TABLES = (("feedback_entry", 0.55), ("feedback_vote", 0.25), ("feedback_comment", 0.15), ("feedback_tag", 0.05))
SLA_HOURS = 4
# The prod stack's instance class (stacks/Pulumi.prod.yaml): db.r6g.2xlarge, 8 vCPUs; gp3 storage gives
# 125 MiB/s by default (up to 4,000 with provisioned throughput); a restore writes WAL as well as the data.
PROD_CLASS = "db.r6g.2xlarge"
PROD_GP3_MIBPS = 125


def start(prefix: str, model: object) -> tuple[localpg.LocalServer, dict, Path]:
    import json

    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    server, _state, _notes = localpg.up(root, model)  # type: ignore[arg-type]
    return server, json.loads(server.connections_file.read_text()), root


def fill(migrator_uri: str, size_mb: int) -> None:
    with psycopg.connect(migrator_uri, autocommit=True) as conn:
        for name, _ in reversed(TABLES):
            conn.execute(f"DROP TABLE IF EXISTS {name} CASCADE")
        conn.execute("CREATE TABLE feedback_entry (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
                     "body text NOT NULL, score int, created_at timestamptz NOT NULL DEFAULT now())")
        for name, _ in TABLES[1:]:
            conn.execute(f"CREATE TABLE {name} (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
                         "entry_id bigint NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
        for name, share in TABLES:
            rows = int(size_mb * share * 1024 * 1024 / ROW_BYTES)
            columns = "institution_id, body, score" if name == "feedback_entry" else "institution_id, entry_id, body"
            values = ("md5(g::text)::uuid, repeat(md5(g::text), 4), g % 100" if name == "feedback_entry"
                      else "md5((g % 1000)::text)::uuid, g, repeat(md5(g::text), 4)")
            conn.execute(f"INSERT INTO {name} ({columns}) SELECT {values} FROM generate_series(1, {rows}) g")
            conn.execute(f"CREATE INDEX ON {name} (institution_id, created_at)")
        conn.execute("ALTER TABLE feedback_vote ADD FOREIGN KEY (entry_id) REFERENCES feedback_entry(id) NOT VALID")
        conn.execute("ANALYZE")


def schema_mb(admin_uri: str) -> float:
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        row = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relnamespace = "
                           "%s::regnamespace AND c.relkind = 'r'", (SCHEMA,)).fetchone()
    return float(row[0] or 0) / 1024 / 1024 if row else 0.0


def baseline(source_mover: str, target: localpg.LocalServer, target_admin: str) -> float:
    """One stream: pg_dump custom format piped into pg_restore, into a fresh database of the target server."""
    with target.superuser("postgres") as su:
        su.execute("DROP DATABASE IF EXISTS bench_baseline WITH (FORCE)")
        su.execute("CREATE DATABASE bench_baseline")
        su.execute("GRANT CREATE, CONNECT ON DATABASE bench_baseline TO feedback_owner, edumatrix_admin")
    dbname_uri = target_admin.replace("/edumatrix?", "/bench_baseline?")
    bins = localpg.find_binaries()
    started = time.perf_counter()
    dump = subprocess.Popen([bins.exe("pg_dump"), "-Fc", "-Z0", "-n", SCHEMA, "--no-owner", "--no-acl", "-d",
                             source_mover], stdout=subprocess.PIPE)
    restore = subprocess.run([bins.exe("pg_restore"), "--no-owner", "--no-acl", "--role", "feedback_owner",
                              "--exit-on-error", "-d", dbname_uri], stdin=dump.stdout, capture_output=True, text=True,
                             check=False)
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0 or restore.returncode != 0:
        raise SystemExit(f"baseline failed: {restore.stderr}")
    return time.perf_counter() - started


def parallel(source_mover: str, target_admin: str, jobs: int) -> float:
    model = build_access_model(load_catalog())
    started = time.perf_counter()
    result = restore_schema(RestoreRequest(
        "feedback", source_mover, target_admin, replace=True, jobs=jobs,
        skip_erasure_replay="benchmark: generated rows, no person, no ledger"), model,
                            console=Console(file=io.StringIO()))
    elapsed = time.perf_counter() - started
    print("  restore-schema phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="1024,4096", help="schema sizes to generate, comma-separated")
    parser.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2))
    parser.add_argument("--prod-cores", type=int, default=8, help=f"vCPUs of {PROD_CLASS}")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes_mb.split(",")]
    console = Console()
    model = build_access_model(load_catalog())
    source, source_conn, source_root = start("edumatrix-bench-src-", model)
    target, target_conn, target_root = start("edumatrix-bench-dst-", model)
    table = Table(title=f"restore-schema vs pg_dump | pg_restore ({os.cpu_count()} CPUs here, jobs {args.jobs})")
    for column in ("asked MB", "schema MB", "baseline s", "baseline MB/s", "restore s", "restore MB/s", "ratio"):
        table.add_column(column, justify="right")
    rates = []
    try:
        mover = source_conn["platform"]["data_mover"]
        for size in sizes:
            console.print(f"generating about {size} MB ...")
            fill(source_conn["services"]["feedback"]["roles"]["migrator"], size)
            mb = schema_mb(source_conn["admin"])
            base = baseline(mover, target, target_conn["admin"])
            fast = parallel(mover, target_conn["admin"], args.jobs)
            rates.append(mb / fast)
            table.add_row(str(size), f"{mb:,.0f}", f"{base:.1f}", f"{mb / base:.1f}", f"{fast:.1f}",
                          f"{mb / fast:.1f}", f"{base / fast:.2f}x")
            console.print(f"  {mb:,.0f} MB: baseline {base:.1f} s, restore-schema {fast:.1f} s, ratio "
                          f"{base / fast:.2f}x")
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(source_root, ignore_errors=True)
        shutil.rmtree(target_root, ignore_errors=True)
    console.print(table)
    rate = min(rates)
    here_gb = rate * SLA_HOURS * 3600 / 1024
    per_core = rate / min(args.jobs, os.cpu_count() or 1)
    prod_cpu_bound = per_core * args.prod_cores
    prod_rate = min(prod_cpu_bound, PROD_GP3_MIBPS / 2)  # each restored byte is written twice: heap and WAL
    console.print(
        f"4-hour SLA at the slowest measured rate here ({rate:.1f} MB/s): a schema of about {here_gb:,.0f} GB.\n"
        f"On {PROD_CLASS} (assumption: the rate per stream measured here, {per_core:.1f} MB/s, times "
        f"{args.prod_cores} streams = {prod_cpu_bound:.0f} MB/s, capped by gp3's default {PROD_GP3_MIBPS} MiB/s "
        f"written twice, heap and WAL = {PROD_GP3_MIBPS / 2:.0f} MB/s): {prod_rate:.0f} MB/s, a schema of about "
        f"{prod_rate * SLA_HOURS * 3600 / 1024:,.0f} GB in 4 hours, plus the snapshot restore of the instance "
        "itself (not measured here).")


if __name__ == "__main__":
    main()
