"""The `edumatrix-db` command: offline plans of stacks and the policy gate (more subcommands register here).

Exit codes: 0 success, 1 a check found violations, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from config.errors import ConfigError
from config.loader import STACKS_DIR, available_stacks, load_stack
from edumatrix_db import gate, localcmd
from edumatrix_db.engine import Planner
from edumatrix_db.render import render_json, render_mermaid, render_tree

EXIT_OK, EXIT_VIOLATIONS, EXIT_CONFIG = 0, 1, 2


def _print_warnings(planner: Planner) -> None:
    for stack, messages in planner.warnings().items():
        for message in messages:
            print(f"warning: {stack}: {message}", file=sys.stderr)


def _plan(args: argparse.Namespace) -> int:
    planner = Planner()
    recording = planner.plan(args.stack)
    _print_warnings(planner)
    if args.format == "json":
        violations = [v.to_json() for v in gate.check_recording(recording).violations]
        print(render_json(recording, {"violations": violations}))
    elif args.format == "mermaid":
        print(render_mermaid(recording))
    else:
        print(render_tree(recording))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    stacks_dir = Path(args.stacks_dir)
    stacks = args.stacks or available_stacks(stacks_dir)
    if not stacks:
        print(f"{stacks_dir}: no Pulumi.*.yaml stack files", file=sys.stderr)
        return EXIT_CONFIG
    planner = Planner(stacks_dir)
    reports = gate.check_stacks(stacks, planner)
    print(gate.render_json(reports) if args.format == "json" else gate.render_table(reports))
    _print_warnings(planner)
    if any(r.error is not None for r in reports):
        return EXIT_CONFIG
    return EXIT_VIOLATIONS if any(r.failed for r in reports) else EXIT_OK


def _policy_config(args: argparse.Namespace) -> int:
    print(json.dumps(gate.policy_config(load_stack(args.stack)), indent=2))
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
    check = sub.add_parser("check", help="the policy gate: plan stacks under mocks and evaluate the policy pack "
                                         "(exit 1 on a mandatory violation, 2 on a configuration error)")
    check.add_argument("stacks", nargs="*", metavar="STACK", help="stack names (default: every stacks/Pulumi.*.yaml)")
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument("--stacks-dir", default=str(STACKS_DIR), help=argparse.SUPPRESS)
    check.set_defaults(handler=_check)
    pconf = sub.add_parser("policy-config", help="print the policy pack config of a stack "
                                                 "(for pulumi preview --policy-pack-config)")
    pconf.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    pconf.set_defaults(handler=_policy_config)
    localcmd.add_parser(sub)
    localcmd.add_tenancy_parser(sub)
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
