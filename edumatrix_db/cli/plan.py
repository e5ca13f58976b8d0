"""`edumatrix-db plan`, `check` and `policy-config`: offline plans of stacks and the policy gate
(`edumatrix_db.offline`).

The gate (the policy pack, pulumi-policy) and the parallel scheduler are imported by the commands that use
them: `plan --format tree|mermaid` evaluates no policy and does not load them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from config.loader import STACKS_DIR, available_stacks, load_stack
from edumatrix_db.cli import progress
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.offline.engine import Planner
from edumatrix_db.offline.render import render_json, render_mermaid, render_tree


def _print_warnings(warnings: dict[str, tuple[str, ...]]) -> None:
    for stack, messages in warnings.items():
        for message in messages:
            print(f"warning: {stack}: {message}", file=sys.stderr)


def _plan(args: argparse.Namespace) -> int:
    planner = Planner(Path(args.stacks_dir))
    recording = planner.plan(args.stack)
    _print_warnings(planner.warnings())
    if args.format == "json":
        from edumatrix_db.offline import gate

        violations = [v.to_json() for v in gate.check_recording(recording).violations]
        print(render_json(recording, {"violations": violations}))
    elif args.format == "mermaid":
        print(render_mermaid(recording))
    else:
        print(render_tree(recording))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from edumatrix_db.offline import gate, parallel

    stacks_dir = Path(args.stacks_dir)
    stacks = args.stacks or available_stacks(stacks_dir)
    if not stacks:
        print(f"{stacks_dir}: no Pulumi.*.yaml stack files", file=sys.stderr)
        return EXIT_CONFIG
    jobs = min(args.jobs or parallel.available_cpus(), len(stacks))
    start = time.perf_counter()
    with progress.counting(f"checking {len(stacks)} stacks on {jobs} worker(s)", len(stacks)) as advance:
        result = parallel.check_stacks(stacks, stacks_dir, jobs=jobs,
                                       on_done=lambda r: advance(f"{r.stack} ({r.resources} resources)"))
    reports = result.reports
    print(gate.render_json(reports) if args.format == "json" else gate.render_table(reports))
    _print_warnings(result.warnings)
    print(f"checked {len(reports)} stack(s), {sum(r.resources for r in reports)} resources, in "
          f"{time.perf_counter() - start:.1f} s on {jobs} worker(s)", file=sys.stderr)
    if any(r.error is not None for r in reports):
        return EXIT_CONFIG
    return EXIT_VIOLATIONS if any(r.failed for r in reports) else EXIT_OK


def _policy_config(args: argparse.Namespace) -> int:
    from edumatrix_db.offline import gate

    print(json.dumps(gate.policy_config(load_stack(args.stack)), indent=2))
    return EXIT_OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plan = sub.add_parser("plan", help="show what a stack declares (runs the program under mocks; no cloud)")
    plan.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    plan.add_argument("--format", choices=("tree", "json", "mermaid"), default="tree")
    plan.add_argument("--stacks-dir", default=str(STACKS_DIR), help=argparse.SUPPRESS)
    plan.set_defaults(handler=_plan, offline=True)
    check = sub.add_parser("check", help="the policy gate: plan stacks under mocks and evaluate the policy pack "
                                         "(exit 1 on a mandatory violation, 2 on a configuration error)")
    check.add_argument("stacks", nargs="*", metavar="STACK", help="stack names (default: every stacks/Pulumi.*.yaml)")
    check.add_argument("--format", choices=("table", "json"), default="table")
    check.add_argument("--jobs", "-j", type=_positive, default=None, metavar="N",
                       help="worker processes planning stacks at once (default: one per available CPU; "
                            "1 plans them one after another in this process)")
    check.add_argument("--stacks-dir", default=str(STACKS_DIR), help=argparse.SUPPRESS)
    check.set_defaults(handler=_check, offline=True)
    pconf = sub.add_parser("policy-config", help="print the policy pack config of a stack "
                                                 "(for pulumi preview --policy-pack-config)")
    pconf.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    pconf.set_defaults(handler=_policy_config)
