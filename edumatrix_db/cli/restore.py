"""`edumatrix-db restore-schema SERVICE --from URI --to URI [--as NEW_SCHEMA] [--replace] [--verify]`: one
service's schema restored into a running database (`edumatrix_db.ops.restore`; docs/recovery-runbook.md).

--from: the platform's data-movement login (`edumatrix_data_mover`: reads every tenant's rows) on the instance
restored from the snapshot or to the point in time. --to: the admin (the RDS master user) of the database the
service runs on. Exit codes: 0 restored, 1 the restored rows differ from the source (nothing swapped in),
2 refused or failed (the message says why; the target is as it was).

A service holding personal data is restored with the GDPR erasure ledger (--ledger FILE, else the stack's:
`.local/gdpr-ledger.sqlite` locally, the DynamoDB table on AWS): every erasure it holds for the service is run
again inside the swap's transaction. `--skip-erasure-replay REASON` skips that (printed and kept in the result).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from rich.console import Console

from config.access import model_for_settings
from config.loader import load_stack
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.cli.gdpr import ledger_for
from edumatrix_db.ops.restore import RestoreError, RestoreRequest, VerificationFailed, restore_schema


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "restore-schema", help="restore one service's schema from a restored instance into a running database",
        description="Exit 0 restored, 1 verification found differences (nothing swapped in), 2 refused or "
                    "failed (nothing changed).",
    )
    parser.add_argument("service", help="the service (config/services.yaml)")
    parser.add_argument("--from", dest="source", required=True, metavar="URI",
                        help="the restored instance, as the data-movement login")
    parser.add_argument("--to", dest="target", required=True, metavar="URI",
                        help="the running database, as its admin (RDS master user)")
    parser.add_argument("--as", dest="as_schema", metavar="NEW_SCHEMA",
                        help="restore beside the service under this name (inspection, partial repair)")
    parser.add_argument("--replace", action="store_true",
                        help="the target schema exists: restore beside it, then swap in one transaction")
    parser.add_argument("--verify", action="store_true",
                        help="compare every table's rows and the sequences with the source before the swap")
    parser.add_argument("--jobs", "-j", type=int, default=max(2, os.cpu_count() or 2),
                        help="parallel copy streams and index builds (default: CPUs, at least 2)")
    parser.add_argument("--stack", default="local", help="whose access model and erasure ledger (default: local)")
    parser.add_argument("--ledger", type=Path, metavar="FILE",
                        help="the GDPR erasure ledger file to replay (default: the stack's ledger)")
    parser.add_argument("--skip-erasure-replay", metavar="REASON",
                        help="do not replay the GDPR erasures, and why (then run `gdpr replay` before traffic)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run_restore_command)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_restore_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    settings = load_stack(args.stack)
    model = model_for_settings(settings)
    if args.jobs < 1:
        print("restore-schema: --jobs must be at least 1", file=sys.stderr)
        return EXIT_CONFIG
    personal = any(s.service == args.service and s.holds_personal_data for s in model.services)
    ledger = ledger_for(settings, args.ledger) if personal and args.skip_erasure_replay is None else None
    request = RestoreRequest(args.service, args.source, args.target, as_schema=args.as_schema,
                             replace=args.replace, verify=args.verify, jobs=args.jobs, erasures=ledger,
                             skip_erasure_replay=args.skip_erasure_replay)
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM cleans up like Ctrl-C
    try:
        result = restore_schema(request, model, console=console)
    except RestoreError as exc:
        print(f"restore-schema: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except VerificationFailed as exc:
        exc.report.render(console)
        print(f"restore-schema: {exc}", file=sys.stderr)
        return EXIT_VIOLATIONS
    except KeyboardInterrupt:
        print("restore-schema: interrupted; the staging schema was dropped, the target is as it was",
              file=sys.stderr)
        return EXIT_CONFIG
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        result.render(Console())
    return EXIT_OK
