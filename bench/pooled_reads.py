"""Benchmark: tenant-scoped reads through the local PgBouncer vs straight to the server, same run (not a test).

    python bench/pooled_reads.py [--connections .local/connections.json] [--seconds 3] [--rounds 5]

Needs `edumatrix-db local up` (server and PgBouncer) and pgbench. Same table and read as
bench/tenant_reads.py (`feedback_bench_reads`, 10 tenants x 2,000 rows, forced RLS), the documented pattern
only: `set_config(..., true)` and the point read as one pipeline with one Sync. pgbench runs `-M extended`
on both paths (PgBouncer 1.18 cannot carry named prepared statements between server connections), over TLS
with verify-full, as `feedback_app`: direct to PostgreSQL, and to PgBouncer's `feedback` pool (transaction
mode, TLS on both legs). Rounds alternate the order; the ratio pooled/direct is taken per round.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tenant_reads import SCRIPTS, pgbench_path, run, setup  # the sibling benchmark's table and script


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--connections", default=".local/connections.json")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    # The pool keeps its server connections (as feedback_app) for 10 minutes and they count against the
    # role's connection limit (10) like direct ones: pooled + direct clients must stay within it.
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    data = json.loads(Path(args.connections).read_text())
    feedback = data["services"]["feedback"]
    if "pooled" not in feedback:
        raise SystemExit("connections.json has no pooled URIs: run `edumatrix-db local up` (it starts PgBouncer)")
    setup(feedback["roles"]["migrator"])
    pgbench = pgbench_path()
    uris = {"direct": feedback["roles"]["app"], "pooled": feedback["pooled"]["app"]}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "documented.sql"
        script.write_text(SCRIPTS["documented"])
        for clients in args.clients:
            for uri in uris.values():  # warm-up
                run(pgbench, script, uri, 1, clients, mode="extended")
            results: dict[str, list[float]] = {name: [] for name in uris}
            for i in range(args.rounds):
                for name in (list(uris) if i % 2 == 0 else list(reversed(uris))):
                    results[name].append(run(pgbench, script, uris[name], args.seconds, clients, mode="extended"))
            ratios = [p / d for p, d in zip(results["pooled"], results["direct"], strict=True)]
            print(f"tenant-scoped reads (documented pipeline), pgbench -M extended, {clients} client(s), TLS, "
                  f"{args.rounds} rounds x {args.seconds:.0f}s:")
            for name in uris:
                print(f"  {name:<7} median {statistics.median(results[name]):9.0f} reads/s")
            print(f"  pooled/direct: median {statistics.median(ratios):.2f}x "
                  f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
