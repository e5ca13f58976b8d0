"""`edumatrix-db gdpr erase|export|replay|ledger`: GDPR across the service schemas (`edumatrix_db.ops.gdpr`).

    edumatrix-db gdpr erase SUBJECT [--services a,b] local            the local server, its file ledger
    edumatrix-db gdpr export SUBJECT [--output FILE] --stack prod     any environment: the gdpr logins'
                                                                      secrets and the DynamoDB ledger
    edumatrix-db gdpr replay SERVICE --uri URI --stack prod           after a restore (docs/gdpr.md)
    edumatrix-db gdpr ledger local                                    the ledger's requests

Exit codes: 0 done, 1 a service failed (erase: run it again to resume), 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from config.access import AccessModel, model_for_settings
from config.loader import PROJECT_ROOT, load_stack
from config.settings import StackSettings
from edumatrix_db.cli.exits import EXIT_CONFIG, EXIT_OK, EXIT_VIOLATIONS
from edumatrix_db.cli.progress import counting
from edumatrix_db.ops import gdpr
from edumatrix_db.ops.ledger import DynamoLedger, FileLedger, Ledger, requests

LOCAL_LEDGER = Path(".local") / "gdpr-ledger.sqlite"


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("where", nargs="?", choices=["local"], help="the local server (`local up`)")
    p.add_argument("--stack", help="an AWS stack: credentials from its secrets, its DynamoDB ledger")
    p.add_argument("--root", type=Path, default=PROJECT_ROOT, help="project root holding .local/")
    p.add_argument("--ledger", type=Path, help=f"a ledger file instead of the target's ({LOCAL_LEDGER})")


def add_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("gdpr", help="erase or export a person across the services (docs/gdpr.md)")
    sub = parser.add_subparsers(dest="gdpr_command", required=True)
    for action, text in (("erase", "erase the subject in every service holding personal data (resumes an "
                                   "unfinished erasure)"),
                         ("export", "one JSON document with the subject's data, a section per service")):
        p = sub.add_parser(action, help=text)
        p.add_argument("subject", help="the person's platform-wide id (a UUID)")
        _add_target(p)
        p.add_argument("--services", help="comma-separated subset of the services holding personal data")
        p.add_argument("--requested-by", default=None, help="who asked (recorded in the ledger; default: $USER)")
        p.add_argument("--format", choices=["table", "json"], default="table")
        if action == "export":
            p.add_argument("--output", type=Path, help="write the document here (default: stdout)")
    replay = sub.add_parser("replay", help="after a restore: run every recorded erasure of SERVICE again (as its "
                                           "gdpr login)")
    replay.add_argument("service")
    _add_target(replay)
    replay.add_argument("--uri", help="the restored database (default: the target's gdpr login of SERVICE)")
    _add_target(sub.add_parser("ledger", help="the ledger's requests as JSON"))
    parser.set_defaults(handler=run_gdpr_command)


class _Usage(Exception):
    pass


def _settings(args: argparse.Namespace) -> StackSettings:
    if (args.where is None) == (args.stack is None):
        raise _Usage("name exactly one target: `local` or --stack STACK")
    return load_stack(args.stack or "local")


def _ledger(args: argparse.Namespace, settings: StackSettings) -> Ledger:
    return ledger_for(settings, args.ledger, args.root)


def ledger_for(settings: StackSettings, path: Path | None, root: Path = PROJECT_ROOT) -> Ledger:
    """The erasure ledger: the file `path` if given, else the stack's (local: `.local/gdpr-ledger.sqlite`
    under `root`; an AWS stack: its DynamoDB table, in the stack's region)."""
    if path is not None:
        return FileLedger(path)
    if settings.is_local:
        return FileLedger(root / LOCAL_LEDGER)
    import boto3

    return DynamoLedger(settings.erasure_ledger_table, boto3.client("dynamodb", region_name=settings.aws_region))


def _targets(args: argparse.Namespace, settings: StackSettings, services: tuple[str, ...]) -> dict[str, str]:
    if settings.is_local:
        path = args.root / ".local" / "connections.json"
        if not path.is_file():
            raise _Usage(f"{path} not found: run `edumatrix-db local up` first")
        return gdpr.local_targets(json.loads(path.read_text()))
    import boto3

    client = boto3.client("secretsmanager", region_name=settings.aws_region)
    ca = str(PROJECT_ROOT / settings.instance.ca_bundle_path)
    return gdpr.stack_targets(settings.credentials_prefix, services, client, ca)


def run_gdpr_command(args: argparse.Namespace) -> int:
    err = Console(stderr=True)
    try:
        settings = _settings(args)
        model = model_for_settings(settings)
        ledger = _ledger(args, settings)
        if args.gdpr_command == "ledger":
            print(json.dumps([r.__dict__ for r in requests(ledger)], indent=2, default=list))
            return EXIT_OK
        if args.gdpr_command == "replay":
            return _replay(args, settings, model, ledger, err)
        subject = gdpr.check_subject(args.subject)
        wanted = [s.strip() for s in args.services.split(",")] if args.services else None
        services = gdpr.personal_services(model, wanted)
        targets = _targets(args, settings, services)
    except (_Usage, gdpr.GdprError) as exc:
        print(f"edumatrix-db gdpr: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    requested_by = args.requested_by or getpass.getuser()
    run = gdpr.erase if args.gdpr_command == "erase" else gdpr.export
    with counting(f"gdpr {args.gdpr_command}", len(services)) as advance:
        report = run(subject, gdpr.Orchestration(model, targets, ledger, wanted, requested_by, advance))
    out = Console()
    if args.gdpr_command == "export":  # the document on stdout or in --output; the report then on stderr
        document = json.dumps(report.document(), indent=2, sort_keys=True) + "\n"
        if args.output is not None:
            args.output.touch(mode=0o600)
            args.output.write_text(document)
        else:
            sys.stdout.write(document)
            out = err
    if args.format == "json":
        out.print_json(json.dumps(report.as_json()))
    else:
        _print_report(report, out)
    return EXIT_OK if report.ok else EXIT_VIOLATIONS


def _print_report(report: gdpr.GdprReport, console: Console) -> None:
    table = Table(title=f"gdpr {report.action} {report.subject}" + (" (resumed)" if report.resumed else ""))
    for column in ("service", "status", "result", "seconds"):
        table.add_column(column)
    for step in report.steps:
        shown: Any = step.error if step.status == "failed" else step.result
        if report.action == "export" and step.status == "done":
            shown = gdpr.section_sizes(step.result)
        table.add_row(step.service, step.status, json.dumps(shown, sort_keys=True) if shown is not None else "",
                      f"{step.seconds:.2f}")
    console.print(table)
    failed = [s.service for s in report.steps if s.status == "failed"]
    summary = (f"request {report.request_id}: {len(report.steps) - len(failed)} of {len(report.steps)} services "
               "done")
    if failed:
        summary += f"; failed: {', '.join(failed)}" + (" (run the same command again to resume)"
                                                      if report.action == "erase" else "")
    console.print(summary)


def _replay(args: argparse.Namespace, settings: StackSettings, model: AccessModel, ledger: Ledger,
            err: Console) -> int:
    service = args.service
    gdpr.personal_services(model, [service])
    uri = args.uri or _targets(args, settings, (service,)).get(service)
    if uri is None:
        raise _Usage(f"no gdpr login of {service} in connections.json: pass --uri")
    replayed = gdpr.replay_erasures(ledger, uri, service)
    err.print(f"{service}: {len(replayed)} erasure(s) replayed")
    return EXIT_OK
