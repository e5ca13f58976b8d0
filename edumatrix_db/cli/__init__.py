"""The `edumatrix-db` command: argument parsing and wiring only; the work is done in `edumatrix_db.offline`
(plan, check, policy-config) and `edumatrix_db.database` (local, tenancy).

Each command module registers its subcommands with `add_parsers(subparsers)` and sets `handler` on each,
which takes the parsed args and returns the exit code.

Exit codes: 0 success, 1 a check found violations, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config.errors import ConfigError
from edumatrix_db.cli import local, metrics, plan
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_VIOLATIONS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edumatrix-db",
        description="The PostgreSQL platform of EDU Matrix Interlinked: offline plans, policy checks, "
                    "and the local database.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan.add_parsers(sub)
    local.add_parsers(sub)
    metrics.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_CONFIG
