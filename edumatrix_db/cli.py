"""The `edumatrix-db` command line (minimal; the integrator merges the other commands in)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edumatrix_db import localcmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edumatrix-db", description="The EDU Matrix PostgreSQL platform")
    subparsers = parser.add_subparsers(dest="command", required=True)
    localcmd.add_parser(subparsers)
    localcmd.add_tenancy_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code = int(args.handler(args))
    return code


if __name__ == "__main__":
    sys.exit(main())
