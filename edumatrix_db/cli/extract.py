"""`edumatrix-db extract SERVICE clone-schema|start|status|verify|cutover|rollback|finish`: wiring only.

The work is edumatrix_db/ops/extract.py; the order of the commands and what to watch is
docs/extraction-runbook.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from config.extraction import Operation
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.ops import extract, pooler_tasks, traffic
from edumatrix_db.ops.pooler_agent import open_store


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("extract", help="extract a service's schema to its own instance (docs/extraction-runbook.md)")
    p.add_argument("service")
    p.add_argument("operation", choices=[o.value for o in Operation])
    p.add_argument("--source", required=True, help="the shared instance, as its master user (libpq URI)")
    p.add_argument("--target", required=True, help="the service's own instance, as its master user")
    p.add_argument("--replication-uri", default="",
                   help="the source's extraction replication login (edumatrix_extraction_replicator), for start")
    p.add_argument("--target-replication-uri", default="",
                   help="the target's extraction replication login, for the way back (cutover)")
    p.add_argument("--pooler-admin", action="append", default=[],
                   help="PgBouncer's admin console URI (cutover, rollback, status); repeat it, with --pooler-ini, "
                        "for every PgBouncer in front of the service: all are paused, switched and resumed together")
    p.add_argument("--pooler-tasks", default="",
                   help="with --pooler-record: ecs:CLUSTER/SERVICE, the pooler's ECS service; every running task's "
                        "admin console is looked up (refused unless exactly the desired count runs) instead of one "
                        "--pooler-admin per task")
    p.add_argument("--pooler-admin-template", default="",
                   help="with --pooler-tasks: the admin console URI, its host replaced by each task's address")
    p.add_argument("--pooler-ini", type=Path, action="append", default=[],
                   help="PgBouncer's configuration file holding the service's pools (one per --pooler-admin, in order)")
    p.add_argument("--pooler-record", default="",
                   help="the service's backend record that each PgBouncer's agent applies (ssm:/NAME, the "
                        "extractionPoolers.<service>.backendParameter output, or a file): with it, --pooler-admin "
                        "names every task's admin console and no --pooler-ini is given "
                        "(edumatrix_db/ops/pooler_agent.py)")
    p.add_argument("--stack-outputs", type=Path, default=None,
                   help="the stack's outputs (`pulumi stack output --json > FILE`): --pooler-record, --pooler-tasks "
                        "and the ops runner's SSM/ECS endpoints default to the service's values there")
    p.add_argument("--pooler-pool", action="append", default=[],
                   help="a pool of the service in PgBouncer (repeat; default SERVICE and SERVICE_readonly as `local "
                        "up` names them; the ECS image names its one pool like the database)")
    p.add_argument("--ack-timeout", type=float, default=traffic.ACK_TIMEOUT_SECONDS,
                   help="with --pooler-record: how long every PgBouncer may take to run the new record")
    p.add_argument("--source-pool-host", default="",
                   help="HOST:PORT the pooler uses for the source (default: --source's host and port)")
    p.add_argument("--target-pool-host", default="", help="HOST:PORT the pooler uses for the target")
    p.add_argument("--pause-timeout", type=float, default=traffic.PAUSE_TIMEOUT_SECONDS)
    p.add_argument("--catch-up-timeout", type=float, default=extract.CATCH_UP_TIMEOUT_SECONDS)
    p.add_argument("--dry-run", action="store_true", help="cutover/rollback: show the steps and run the checks only")
    p.add_argument("--no-wait", action="store_true", help="start: do not wait for the initial copy")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=run)


def _backend(host_port: str, uri: str) -> traffic.Backend:
    base = traffic.Backend.of(uri)
    if not host_port:
        return base
    host, _, port = host_port.rpartition(":")
    return traffic.Backend(host, int(port), base.dbname)


def _switch(args: argparse.Namespace) -> traffic.TrafficSwitch | None:
    admins, inis = [a for a in args.pooler_admin if a], list(args.pooler_ini)
    aliases = args.pooler_pool or extract.pooled_aliases(args.service)
    ssm_endpoint = os.environ.get(pooler_tasks.SSM_ENDPOINT_VARIABLE) or None
    ecs_endpoint = os.environ.get(pooler_tasks.ECS_ENDPOINT_VARIABLE) or None
    if args.stack_outputs:
        route = pooler_tasks.from_stack_outputs(args.stack_outputs, args.service)
        args.pooler_record = args.pooler_record or route.record
        args.pooler_tasks = args.pooler_tasks or ("" if admins else route.tasks)
        ssm_endpoint, ecs_endpoint = route.ssm_endpoint, route.ecs_endpoint
    if args.pooler_tasks:
        if admins or not args.pooler_admin_template or not args.pooler_record:
            raise extract.ExtractError("--pooler-tasks takes --pooler-record and --pooler-admin-template, and no "
                                       "--pooler-admin (the tasks' addresses come from ECS)")
        admins = pooler_tasks.lookup(args.pooler_tasks, args.pooler_admin_template, endpoint_url=ecs_endpoint)
    elif args.pooler_admin_template:
        raise extract.ExtractError("--pooler-admin-template needs --pooler-tasks")
    if args.pooler_record:
        if not admins or inis:
            raise extract.ExtractError("--pooler-record takes one --pooler-admin per PgBouncer and no --pooler-ini "
                                       "(each PgBouncer's agent writes its own)")
        backends = {"source": _backend(args.source_pool_host, args.source),
                    "target": _backend(args.target_pool_host, args.target)}
        consoles = [traffic.PgBouncerConsole(admin, aliases, backends, pause_timeout=args.pause_timeout)
                    for admin in admins]
        store = open_store(args.pooler_record, endpoint_url=ssm_endpoint)
        discover = None
        if args.pooler_tasks:
            # inside the freeze: the tasks ECS started since (a replacement), taken in before the switch and RESUME
            def discover() -> list[traffic.PgBouncerConsole]:
                return [traffic.PgBouncerConsole(admin, aliases, backends, pause_timeout=args.pause_timeout)
                        for admin in pooler_tasks.lookup(args.pooler_tasks, args.pooler_admin_template,
                                                         settled=False, endpoint_url=ecs_endpoint)]
        return traffic.AgentPoolerSet(consoles, store, ack_timeout=args.ack_timeout, discover=discover)
    if not admins or not inis:
        return None
    if len(admins) != len(inis):
        raise extract.ExtractError(f"{len(admins)} --pooler-admin but {len(inis)} --pooler-ini: give one "
                                   "configuration file per PgBouncer, in the same order")
    backends = {"source": _backend(args.source_pool_host, args.source),
                "target": _backend(args.target_pool_host, args.target)}
    switches = [traffic.PgBouncerSwitch(admin, ini, aliases, backends, pause_timeout=args.pause_timeout)
                for admin, ini in zip(admins, inis, strict=True)]
    return switches[0] if len(switches) == 1 else traffic.PoolerSet(switches)


HALT_VARIABLE = "EDUMATRIX_DB_DRILL_HALT_AT"
"""For the drills of a runner dying inside the freeze (tests/pg/test_extraction_runner_death.py): the name of a
cutover step (extract.CUTOVER_STEPS); the process stops itself (SIGSTOP) as it reaches it, so the drill kills it
there (SIGKILL) at a known point."""


def _halt_at(step_name: str) -> Any:
    if not step_name:
        return None

    def hook(name: str) -> None:
        if name == step_name:
            import signal

            os.kill(os.getpid(), signal.SIGSTOP)

    return hook


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    out = Console()
    try:
        ex = extract.Extraction(args.service, args.source, args.target, replication_uri=args.replication_uri,
                                target_replication_uri=args.target_replication_uri, switch=_switch(args),
                                console=console)
        op = Operation(args.operation)
        if op is Operation.CLONE_SCHEMA:
            from edumatrix_db.database.localpg import find_binaries

            _changes(out, ex.clone_schema(pg_dump=find_binaries(use_pgserver=False).exe("pg_dump")))
        elif op is Operation.START:
            _changes(out, ex.start(wait=not args.no_wait))
        elif op is Operation.STATUS:
            status = ex.status()
            if args.format == "json":
                print(json.dumps(status, indent=2, sort_keys=True, default=str))
            else:
                _status(out, status)
        elif op is Operation.VERIFY:
            report, phase = ex.verify(), ex.live_phase()
            # While replicating, the target's sequences are behind by design: cutover moves them.
            tables_equal = (not report.missing_tables and not report.extra_tables
                            and all(t.equal for t in report.tables))
            ok = report.ok or (tables_equal and phase in ("prepare", "replicate"))
            if args.format == "json":
                print(json.dumps({**report.to_json(), "phase": phase, "ok": ok}, indent=2, sort_keys=True))
            else:
                report.render(out)
                if ok and not report.ok:
                    out.print(f"phase {phase}: sequences behind the source is expected; cutover moves them")
            return EXIT_OK if ok else EXIT_VIOLATIONS
        elif op is Operation.FINISH:
            _changes(out, ex.finish())
        else:
            run_switch = ex.cutover if op is Operation.CUTOVER else ex.rollback
            result = run_switch(dry_run=args.dry_run, catch_up_timeout=args.catch_up_timeout,
                                hook=_halt_at(os.environ.get(HALT_VARIABLE, "")))
            _switch_summary(out, result)
    except (extract.ExtractError, traffic.TrafficError) as exc:
        console.print(f"[red]edumatrix-db extract {args.service} {args.operation}: {exc}[/red]")
        return EXIT_CONFIG
    return EXIT_OK


def _changes(out: Console, changes: list[str]) -> None:
    for line in changes:
        out.print(f"  {line}")
    out.print(f"{len(changes)} change(s)" if changes else "nothing to do")


def _status(out: Console, status: dict[str, Any]) -> None:
    out.print(f"{status['service']} ({status['schema']}): phase {status['phase'] or 'not started'}, traffic on "
              f"{status['traffic'] or 'unknown (no pooler given)'}, source fenced: {status['source_fenced']}")
    table = Table(title="tables")
    table.add_column("table")
    table.add_column("state")
    for name, state in status["tables"].items():
        table.add_row(name, state)
    out.print(table)
    for slot in status["slots"]:
        out.print(f"slot {slot['slot']}: {'active' if slot['active'] else 'INACTIVE'}, wal {slot['wal_status']}, "
                  f"retains {extract._bytes(slot['retained_bytes'])}, replay lag {slot['replay_lag_seconds']} s")
    lag = status["lag"]
    out.print(f"lag: last message {lag['seconds_since_last_message']} s ago, received {lag['received_lsn']}")


def _switch_summary(out: Console, result: extract.SwitchResult) -> None:
    for note in result.notes:
        out.print(note)
    if result.dry_run or result.freeze_seconds is None:
        return
    verdict = "equal" if result.verify and result.verify.ok else "?"
    out.print(f"[green]{result.direction} done[/green]: freeze {result.freeze_seconds * 1000:.0f} ms (pause "
              f"{(result.pause_seconds or 0) * 1000:.0f} ms, catch-up {(result.catch_up_seconds or 0) * 1000:.0f} "
              f"ms); sequences moved: {len(result.sequences)}; verify as of the freeze: {verdict}")
    sys.stdout.flush()
