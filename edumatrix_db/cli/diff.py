"""`edumatrix-db diff STACK [--base REV]`: what a change does to a stack, for its reviewer
(`edumatrix_db.offline.diff`); exit 3 when it holds a dangerous change."""

from __future__ import annotations

import argparse
import sys

from config.loader import STACKS_DIR
from edumatrix_db.cli import progress
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_DANGER, EXIT_OK
from edumatrix_db.offline import diff, revision
from edumatrix_db.offline.engine import Planner

RENDER = {"text": diff.render_text, "json": diff.render_json, "markdown": diff.render_markdown}


def _diff(args: argparse.Namespace) -> int:
    try:
        rev = args.base or revision.default_base()
        label = args.base or f"{rev[:12]} (merge base with main)"
        pending = revision.PendingPlan(args.stack, rev)  # plans the base in the background
    except revision.RevisionError as error:
        print(f"diff: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        with progress.status(f"planning {args.stack} in the working tree and at {label}"):
            head = (Planner().plan(args.stack).to_json()
                    if (STACKS_DIR / f"Pulumi.{args.stack}.yaml").is_file() else None)
            base = pending.result()
    except revision.RevisionError as error:
        print(f"diff: {error}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        pending.close()
    if base is None and head is None:
        print(f"diff: no stack file {args.stack!r} at {label} nor in the working tree "
              f"({STACKS_DIR}/Pulumi.{args.stack}.yaml)", file=sys.stderr)
        return EXIT_CONFIG
    result = diff.diff_plans(base, head, stack=args.stack, base_label=label)
    print(RENDER[args.format](result))
    return EXIT_DANGER if result.dangerous else EXIT_OK


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "diff", help="what the working tree changes in a stack against a git revision (exit 3 on a dangerous "
                     "change: a stateful resource replaced or deleted, protection removed)")
    parser.add_argument("stack", help="stack name: stacks/Pulumi.<stack>.yaml")
    parser.add_argument("--base", metavar="REV", help="git revision to compare with (default: the merge base "
                                                      "of HEAD with main)")
    parser.add_argument("--format", choices=tuple(RENDER), default="text")
    parser.set_defaults(handler=_diff, offline=True)
