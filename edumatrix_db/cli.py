"""The `edumatrix-db` command: offline plans of stacks (more subcommands register themselves here).

Exit codes: 0 success, 1 a check found violations, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from config.errors import ConfigError
from edumatrix_db.engine import Planner
from edumatrix_db.render import render_json, render_mermaid, render_tree

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2


def _plan(args: argparse.Namespace) -> int:
    recording = Planner().plan(args.stack)
    if args.format == "json":
        print(render_json(recording))
    elif args.format == "mermaid":
        print(render_mermaid(recording))
    else:
        print(render_tree(recording))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edumatrix-db",
        description="The PostgreSQL platform of EDU Matrix Interlinked: offline plans, policy checks, "
                    "and the local database.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="show what a stack declares (runs the program under mocks; no cloud)")
    plan.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    plan.add_argument("--format", choices=("tree", "json", "mermaid"), default="tree")
    plan.set_defaults(handler=_plan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
