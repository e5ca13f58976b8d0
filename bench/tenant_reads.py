"""Benchmark: tenant-scoped point reads vs plain point reads on the same table, same run (not a test).

    python bench/tenant_reads.py [--connections .local/connections.json] [--seconds 3] [--rounds 5]

Needs the local database (`edumatrix-db local up`) and `pgbench` (postgresql-client; a C client, so the
numbers measure the server and the network, not Python). As the `feedback` migrator it creates
`feedback_schema.feedback_bench_reads` (10 tenants x 2,000 rows) under tenant isolation
(`edumatrix_db.database.tenancy.enable_tenant_isolation`), then, as `feedback_app` over TLS (verify-full), runs
point reads by primary key with prepared statements, one client:

- plain:      `SELECT ... WHERE id = :id`; the tenant is fixed for the whole session (libpq `options`),
              so the RLS predicate still runs and only the way the tenant is set differs. Unsafe behind a
              pooler; it is the baseline.
- textbook:   BEGIN; SELECT set_config(..., true); SELECT ...; COMMIT  -- four round trips.
- documented: SELECT set_config(..., true); SELECT ...  as one pipeline with one Sync -- one round trip,
              one implicit transaction (what `edumatrix_db.database.tenancy.scoped_execute` sends).

The three run back to back in every round; the ratio is taken per round and the median reported, so load
drift on the machine affects all three alike.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edumatrix_db.database.tenancy import TENANT_SETTING, enable_tenant_isolation

TENANTS = 10
ROWS_PER_TENANT = 2000
TENANT = "00000000-0000-0000-0000-000000000001"  # rows with id % 10 == 0
READ = "SELECT id, payload FROM feedback_bench_reads WHERE id = :id;"
SET = f"SELECT set_config('{TENANT_SETTING}', '{TENANT}', true);"
SCRIPTS = {
    "plain": f"\\set id 10 * random(1, {ROWS_PER_TENANT})\n{READ}\n",
    "textbook": f"\\set id 10 * random(1, {ROWS_PER_TENANT})\nBEGIN;\n{SET}\n{READ}\nCOMMIT;\n",
    "documented": (
        f"\\set id 10 * random(1, {ROWS_PER_TENANT})\n\\startpipeline\n{SET}\n{READ}\n\\endpipeline\n"
    ),
}


def setup(migrator_uri: str) -> None:
    with psycopg.connect(migrator_uri, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS feedback_bench_reads")
        conn.execute(
            "CREATE TABLE feedback_bench_reads (id bigint PRIMARY KEY, institution_id uuid NOT NULL, "
            "payload text NOT NULL)"
        )
        conn.execute(
            "INSERT INTO feedback_bench_reads SELECT g, ('00000000-0000-0000-0000-' || "
            "lpad(to_hex(1 + g %% 10), 12, '0'))::uuid, md5(g::text) FROM generate_series(1, %s) g",
            [TENANTS * ROWS_PER_TENANT],
        )
        enable_tenant_isolation(conn, "feedback", "feedback_bench_reads")
        conn.execute("ANALYZE feedback_bench_reads")


def pgbench_path() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True):
        return str(cand)
    raise SystemExit("pgbench not found: install postgresql-client (Debian: postgresql-client-15)")


def run(pgbench: str, script: Path, uri: str, seconds: float, clients: int, mode: str = "prepared") -> float:
    """pgbench's tps for `script`; `mode` is its -M (query protocol): prepared, extended or simple."""
    out = subprocess.run(
        [
            pgbench,
            "-n",
            "-M",
            mode,
            "-c",
            str(clients),
            "-T",
            str(int(seconds)),
            "-f",
            str(script),
            uri,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    m = re.search(r"^tps = ([\d.]+)", out.stdout, re.M)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    if out.returncode != 0 or not m or (failed and failed[1] != "0"):
        raise SystemExit(f"pgbench failed on {script.name}:\n{out.stdout}{out.stderr}")
    return float(m[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", default=".local/connections.json")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=1)
    args = parser.parse_args()
    roles = json.loads(Path(args.connections).read_text())["services"]["feedback"]["roles"]
    setup(roles["migrator"])
    pgbench = pgbench_path()
    session_tenant = "&options=" + quote(f"-c {TENANT_SETTING}={TENANT}", safe="")
    uris = {"plain": roles["app"] + session_tenant, "textbook": roles["app"], "documented": roles["app"]}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {}
        for name, text in SCRIPTS.items():
            scripts[name] = Path(tmp) / f"{name}.sql"
            scripts[name].write_text(text)
        for name in SCRIPTS:  # warm-up
            run(pgbench, scripts[name], uris[name], 1, args.clients)
        tps: dict[str, list[float]] = {name: [] for name in SCRIPTS}
        names = list(SCRIPTS)
        for i in range(args.rounds):  # rotate the order so no pattern always runs first or last
            for name in names[i % 3 :] + names[: i % 3]:
                tps[name].append(run(pgbench, scripts[name], uris[name], args.seconds, args.clients))
    print(
        f"tenant-scoped point reads, pgbench -M prepared, {args.clients} client(s), TLS, "
        f"{args.rounds} rounds x {args.seconds:.0f}s, same table:"
    )
    for name in SCRIPTS:
        ratios = [t / p for t, p in zip(tps[name], tps["plain"], strict=True)]
        print(
            f"  {name:<11} median {statistics.median(tps[name]):9.0f} reads/s   "
            f"ratio vs plain: median {statistics.median(ratios):.2f}x "
            f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
        )


if __name__ == "__main__":
    main()
