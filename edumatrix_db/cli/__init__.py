"""The `edumatrix-db` command: argument parsing and wiring only; the work is done in `edumatrix_db.offline`
(plan, check, policy-config), `edumatrix_db.database` (local, tenancy, guard) and `edumatrix_db.ops`
(audit).

Each command module registers its subcommands with `add_parsers(subparsers)` and sets `handler` on each,
which takes the parsed args and returns the exit code.

Exit codes: 0 success, 1 a check found violations, 2 configuration or usage error, 3 `diff` found a
dangerous change.

Importing the command modules (the Pulumi SDKs come with them) and running an offline command (one that
sets `offline=True`) happen with Python's cyclic garbage collector paused: they allocate about a million
long-lived objects, and collecting while they are created is about a fifth of a `plan` (measured: 3.3 s
instead of 4.1 s of CPU for `plan prod`, same peak memory). Other commands run with it on.

When `main()` is the process's own command (called without arguments: the `edumatrix-db` script, `python -m
edumatrix_db.cli`), an offline command ends by freezing what it allocated (`gc.freeze()`) instead of handing
it back to the collector: the process is about to exit, and collecting the plan's objects then (when the
collector resumes, and again at interpreter shutdown) cost about 1.2 s of CPU of a `plan prod` process
(measured: 4.6-5.7 s with, 3.4-3.6 s without). A caller passing `argv` (the tests) gets the collector back
with nothing frozen.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from config.errors import ConfigError
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_DANGER, EXIT_OK, EXIT_VIOLATIONS

__all__ = ["EXIT_CONFIG", "EXIT_DANGER", "EXIT_OK", "EXIT_VIOLATIONS", "build_parser", "main"]


# The offline commands and the modules that declare them: `edumatrix-db plan|check|policy-config|diff` parse
# with only these, so they do not import what the database commands need (psycopg, Alembic, Rich: about 2 s
# of CPU). Any other first argument (another command, --help) builds the whole parser.
OFFLINE_COMMANDS = {"plan": "plan", "check": "plan", "policy-config": "plan", "diff": "diff"}
COMMAND_MODULES = ("plan", "diff", "local", "lifecycle", "audit", "metrics", "restore", "extract", "gdpr",
                   "events")


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edumatrix-db",
        description="The PostgreSQL platform of EDU Matrix Interlinked: offline plans, policy checks, "
                    "and the local database.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in modules:
        importlib.import_module(f"edumatrix_db.cli.{name}").add_parsers(sub)
    return parser


def _modules_for(argv: Sequence[str]) -> Sequence[str]:
    module = OFFLINE_COMMANDS.get(argv[0]) if argv else None
    return (module,) if module else COMMAND_MODULES


@contextmanager
def _collector_paused(paused: bool = True, *, exiting: bool = False) -> Iterator[None]:
    """Pause the cyclic collector (if `paused`); `exiting`: the process ends next, so what was allocated meanwhile
    is frozen rather than collected."""
    collecting = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused and exiting:
            gc.freeze()
        if collecting:
            gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; `argv=None`: this process's command line, and the process ends afterwards."""
    exiting = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    with _collector_paused():
        parser = build_parser(_modules_for(argv))
    args = parser.parse_args(argv)
    try:
        with _collector_paused(getattr(args, "offline", False), exiting=exiting):
            return int(args.handler(args))
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return EXIT_CONFIG
