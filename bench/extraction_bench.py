"""Benchmark: the client-observed write freeze of `extract cutover` against the naive extraction, at two
sizes, and `verify` against plain scans (not a test).

    python bench/extraction_bench.py [--sizes 1000000 4000000] [--switches 20] [--via agents|ini|both]

Per size, on two fresh local servers (wal_level=logical) with PgBouncer in front (the drills' stage,
tests/pg/extraction_support.py) and the `feedback` service's drill tables filled with ROWS rows:

- naive: the writer stops; `pg_dump --schema` of the service piped into `psql` on the target (a scratch
  database); the freeze is the wall time from the writer stopping to the restore's end;
- cutover: clone-schema and start (the initial copy, timed), then a writer through the pooler and SWITCHES
  cutovers, each followed by a rollback (so the next cutover starts from the source again; both are
  switches of traffic and both are counted separately). The client-observed freeze of one switch is the
  longest write latency the writer saw among the writes that started during it; p50, p99 and max over
  the cutovers, next to the freeze the tool measured itself (PAUSE..RESUME);
- the switch: `agents` (production's way: the PgBouncer's agent applies a backend record, file here,
  edumatrix_db/ops/pooler_agent.py, waited for through SHOW DATABASES), `ini` (the ini rewritten by this
  process, `local up`'s way), or `both`: SWITCHES of each on the same stage, ini first, and the ratio of the
  agents' p50 to the ini's (the agents' cost, against a baseline of the same run);
- verify: `extract verify` on the final state (writer stopped, replication caught up) against two
  `count(*)` scans, one per side.

Goals of the issue: cutover freeze p99 under 1 s at every size, not growing with size; verify within 1.5x of
two sequential scans.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edumatrix_db.database.localpg import find_binaries
from edumatrix_db.ops.extract import Extraction
from tests.pg import extraction_support as drill
from tests.pg.extraction_support import Stage, Writer

console = Console(width=200)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def naive_freeze(stage: Stage) -> float:
    """Writes stopped (no writer runs), the schema dumped and restored into a scratch database."""
    bins = find_binaries(use_pgserver=False)
    with stage.target_conn() as tgt:
        tgt.execute("DROP DATABASE IF EXISTS naive_extraction")
        tgt.execute("CREATE DATABASE naive_extraction")
    target = stage.target.bootstrap_conninfo("naive_extraction")
    started = time.monotonic()
    dump = subprocess.Popen([bins.exe("pg_dump"), f"--schema={drill.SCHEMA}", "--no-owner", "--no-acl",
                             "--dbname", stage.source_master], stdout=subprocess.PIPE)
    restore = subprocess.run([bins.exe("psql"), "-q", "-v", "ON_ERROR_STOP=0", "--dbname", target],
                             stdin=dump.stdout, capture_output=True, check=False)
    dump.wait()
    took = time.monotonic() - started
    if dump.returncode != 0:
        raise SystemExit(f"pg_dump failed ({dump.returncode})")
    with psycopg.connect(target, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {drill.SCHEMA}.{drill.ITEMS}").fetchone()
    if not row or not row[0]:
        raise SystemExit(f"the naive restore copied nothing: {restore.stderr.decode()[-500:]}")
    return took


def observed(writer: Writer, start: float, end: float) -> float:
    """The longest latency of the writes that started during [start, end]."""
    return max((lat for t, lat in zip(writer.started, writer.latencies, strict=False) if start - 0.01 <= t <= end),
               default=0.0)


def run_switches(stage: Stage, ex: Extraction, writer: Writer, switches: int, label: str
                 ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    client: dict[str, list[float]] = {"cutover": [], "rollback": []}
    tool: dict[str, list[float]] = {"cutover": [], "rollback": []}
    for i in range(switches):
        for direction in ("cutover", "rollback"):
            wait_connected(ex)
            start = time.monotonic()
            result = ex.cutover() if direction == "cutover" else ex.rollback()
            end = time.monotonic()
            time.sleep(0.3)
            client[direction].append(observed(writer, start, end))
            tool[direction].append(result.freeze_seconds or 0.0)
        console.print(f"  ({label}) switch {i + 1}/{switches}: cutover freeze seen by the client "
                      f"{client['cutover'][-1] * 1000:.0f} ms, rollback {client['rollback'][-1] * 1000:.0f} ms")
    return client, tool


def run_size(rows: int, switches: int, via: str = "agents") -> dict[str, float | int | str]:
    console.rule(f"{rows:,} rows")
    stage = drill.build_stage()
    try:
        drill.create_service_tables(stage, rows=rows)
        with stage.source_conn() as src:
            src.execute("VACUUM ANALYZE")
            size = src.execute("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
                               "AND c.relkind = 'r'", (drill.SCHEMA,)).fetchone()
        console.print(f"schema size on the source: {size[0] if size else '?'}")
        naive = naive_freeze(stage)
        console.print(f"naive extraction (writes stopped, dump | restore): {naive:.2f} s")
        if via == "agents":
            stage.use_agents()
        ex: Extraction = stage.extraction()
        ex.console = Console(file=io.StringIO())
        ex.clone_schema(pg_dump=find_binaries(use_pgserver=False).exe("pg_dump"))
        stage.target_passwords()
        t0 = time.monotonic()
        ex.start()
        initial_copy = time.monotonic() - t0
        console.print(f"initial copy (no freeze): {initial_copy:.1f} s")
        wait_caught_up(stage)
        writer = stage.writer()
        baseline: float | None = None
        if via == "both":  # the ini first (the baseline), then the same stage's PgBouncer through its agent
            ini_client, _ = run_switches(stage, ex, writer, switches, "ini")
            baseline = statistics.median(ini_client["cutover"])
            stage.use_agents()
            ex.switch = stage.switches()
        client, tool = run_switches(stage, ex, writer, switches, "agents" if via != "ini" else "ini")
        writer.stop()
        if writer.errors:
            raise SystemExit(f"the writer saw errors: {writer.errors[:3]}")
        with stage.source_conn() as src:
            # a hash join with the acknowledged ids (`id = ANY(array)` compares every row with every id)
            found = src.execute(f"SELECT count(DISTINCT t.id), count(*) FROM unnest(%s::bigint[]) AS a(id) "
                                f"JOIN {drill.SCHEMA}.{drill.ITEMS} AS t USING (id)", (writer.acknowledged,)).fetchone()
        if found is None or found[0] != len(writer.acknowledged) or found[1] != len(writer.acknowledged):
            raise SystemExit(f"acknowledged writes missing or duplicated on the source: {found} of "
                             f"{len(writer.acknowledged)}")
        wait_caught_up(stage)
        verify_s = timed(lambda: ex.verify())
        with stage.source_conn() as src, stage.target_conn() as tgt:
            count_s = timed(lambda: [c.execute(f"SELECT count(*) FROM {drill.SCHEMA}.{drill.ITEMS}").fetchone()
                                     for c in (src, tgt)])
        c = client["cutover"]
        return {"rows": rows, "size": size[0] if size else "?", "naive": naive, "copy": initial_copy,
                "p50": statistics.median(c), "p99": percentile(c, 0.99), "max": max(c),
                "rollback_max": max(client["rollback"]), "tool_p50": statistics.median(tool["cutover"]),
                "writes": len(writer.acknowledged), "verify": verify_s, "count": count_s,
                "agents_vs_ini": (statistics.median(c) / baseline) if baseline else "-"}
    finally:
        stage.stop()


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def wait_connected(ex: Extraction, timeout: float = 30) -> None:
    """Until the replication that keeps the other side current has its worker connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ex.sides() as (src, tgt):
            old, new = (src, tgt) if ex.switch and ex.switch.pointing_at() == "source" else (tgt, src)
            sub = ex.n.subscription if new is tgt else ex.n.reverse_subscription
            row = old.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (sub,)).fetchone()
            if row and row[0]:
                return
        time.sleep(0.1)
    raise SystemExit("replication did not reconnect")


def wait_caught_up(stage: Stage, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    with stage.source_conn() as src:
        while time.monotonic() < deadline:
            row = src.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn) "
                              "FROM pg_replication_slots WHERE slot_name = 'edumatrix_extract_feedback'").fetchone()
            if row and row[0] is not None and row[0] < 1 << 20:
                return
            time.sleep(0.2)
    raise SystemExit("replication did not catch up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--switches", type=int, default=20)
    parser.add_argument("--via", choices=["agents", "ini", "both"], default="agents",
                        help="how the PgBouncer is retargeted (both: the ini first, as the same run's baseline)")
    args = parser.parse_args()
    results = [run_size(rows, args.switches, args.via) for rows in args.sizes]
    table = Table(title=f"client-observed write freeze, {args.switches} cutovers per size (each followed by a "
                  f"rollback), switched via {args.via} (p50..max: the {'agents' if args.via != 'ini' else 'ini'})")
    for heading in ("rows", "schema size", "naive freeze", "cutover p50", "cutover p99", "cutover max",
                    "rollback max", "naive / cutover p99", "tool-measured p50", "initial copy", "verify / 2x count",
                    "agents p50 / ini p50"):
        table.add_column(heading, justify="right")
    for r in results:
        table.add_row(f"{r['rows']:,}", str(r["size"]), f"{r['naive']:.2f} s", f"{float(r['p50']) * 1000:.0f} ms",
                      f"{float(r['p99']) * 1000:.0f} ms", f"{float(r['max']) * 1000:.0f} ms",
                      f"{float(r['rollback_max']) * 1000:.0f} ms", f"{float(r['naive']) / float(r['p99']):.1f}x",
                      f"{float(r['tool_p50']) * 1000:.0f} ms", f"{float(r['copy']):.1f} s",
                      f"{float(r['verify']) / float(r['count']):.1f}x",
                      f"{float(r['agents_vs_ini']):.2f}x" if r["agents_vs_ini"] != "-" else "-")
    console.print(table)
    goal = all(float(r["p99"]) < 1.0 for r in results)
    console.print(f"goal freeze p99 < 1 s at every size: {'met' if goal else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
