"""Each service's schema over its life: numbered Alembic migrations with mandatory rollback (spec 2
"migrations: independent per schema", 5.A "sequential numbering, rollback always included, automated
validation").

Why Alembic: a maintained migration tool with a Python API (`alembic.command`), a version table whose
name and schema are options (here `<service>_schema.<service>_schema_version`, so each schema carries its
own history and can move with it on extraction), caller-chosen revision ids (we use `0001`, `0002`, ...),
a `downgrade()` in every revision, and one transaction per migration (`transaction_per_migration`).

Layout (documented in docs/migrations.md): `<root>/<service>/versions/NNNN_<slug>.py`. In this repository
`migrations/feedback/` holds the examples the tests run; a service keeps the same layout in its own
repository and passes `--dir`. The Alembic environment (`migration_env/env.py`, the revision template)
ships with this package, so a service's repository holds revisions only.

How a migration runs (`up`, `down`): as `<service>_migrator` only (a session whose `session_user` is not
the migrator, or whose `current_user` is not `<service>_owner`, is refused: never an admin), directly
against the instance (an RDS Proxy endpoint is refused: DDL pins proxy sessions and a migration must not
queue behind pooled traffic), one transaction per revision, `lock_timeout` set for the session so a
migration that waits for a lock gives up instead of blocking traffic queued behind it.

`check` (what a service's CI runs): static checks (revision ids 0001.. in one line, `downgrade()` present
and not empty), then on a scratch database of the local server provisioned like the real one (the access
model applied by the platform's renderer): upgrade to head, the audit rules (naming, tenant coverage,
ownership), downgrade to base (which must leave the schema empty), upgrade again, and the schema's catalog
after the first and second upgrade compared: identical or it fails.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from config.access import AccessModel
from config.loader import PROJECT_ROOT
from config.naming import (
    RoleKind,
    check_identifier,
    inbox_table_name,
    outbox_table_name,
    quote_ident,
    schema_name,
    version_table_name,
)
from edumatrix_db.database import events
from edumatrix_db.database.catalog_snapshot import diff_snapshots, schema_snapshot
from edumatrix_db.database.localpg import LocalServer
from edumatrix_db.ops.findings import Finding, counts_by_rule
from edumatrix_db.ops.maintenance import SCRATCH_SETTING

MIGRATIONS_ROOT = PROJECT_ROOT / "migrations"
ENV_DIR = Path(__file__).resolve().parent / "migration_env"
REVISION_ID = re.compile(r"^\d{4}$")
LOCK_TIMEOUT = re.compile(r"^\d+(ms|s|min)?$")
DEFAULT_LOCK_TIMEOUT = "5s"
# RDS Proxy endpoints are <name>.proxy-<id>.<region>.rds.amazonaws.com
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-endpoints.html).
_PROXY_HOST = re.compile(r"\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com$")


class MigrationError(RuntimeError):
    """A migration cannot run as asked (wrong role, proxy endpoint, missing directory); the message says why."""


@dataclass
class CheckReport:
    service: str
    revisions: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (step, outcome)

    @property
    def passed(self) -> bool:
        return not self.findings

    def counts_by_rule(self) -> dict[str, int]:
        return counts_by_rule(self.findings)


# -- where revisions live ----------------------------------------------------------------------------------
def versions_dir(service: str, root: Path | None = None) -> Path:
    check_identifier(service, "service name")
    return (root or MIGRATIONS_ROOT) / service / "versions"


def version_table(service: str) -> str:
    """`<service>_schema_version`, in the service's schema (config/naming.py, the spec's `<service>_<entity>`)."""
    return version_table_name(service)


def alembic_config(service: str, root: Path | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(ENV_DIR))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(versions_dir(service, root)))
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["service"] = service
    return cfg


def script_directory(service: str, root: Path | None = None) -> ScriptDirectory:
    directory = versions_dir(service, root)
    if not directory.is_dir():
        raise MigrationError(
            f"no migrations for {service}: {directory} does not exist; create the first with "
            f"`edumatrix-db migrate {service} new \"create tables\"`"
        )
    return ScriptDirectory.from_config(alembic_config(service, root))


# -- new ---------------------------------------------------------------------------------------------------
def new_revision(service: str, message: str, root: Path | None = None) -> Path:
    """Write the next numbered revision (`NNNN_<slug>.py`) after the current head."""
    directory = versions_dir(service, root)
    directory.mkdir(parents=True, exist_ok=True)
    script = ScriptDirectory.from_config(alembic_config(service, root))
    ids = [r.revision for r in script.walk_revisions()]
    bad = [i for i in ids if not REVISION_ID.match(i)]
    if bad:
        raise MigrationError(f"revision ids {bad} are not 4-digit numbers; renumber them before adding one")
    next_id = f"{max((int(i) for i in ids), default=0) + 1:04d}"
    created = script.generate_revision(next_id, message, head="head" if ids else "base", service=service)
    if created is None:
        raise MigrationError("alembic did not write a revision")
    return Path(created.path)


# -- static checks -----------------------------------------------------------------------------------------
def _is_empty_body(body: list[ast.stmt]) -> bool:
    """A body that does nothing: only `pass`, `...`, docstrings, or `raise NotImplementedError`."""
    for stmt in body:
        if isinstance(stmt, ast.Pass):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                continue
        return False
    return True


def _assigned(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return ast.literal_eval(value)
            except ValueError:
                return "<not a literal>"
    return "<missing>"


def lint_revisions(service: str, root: Path | None = None) -> tuple[list[str], list[Finding]]:
    """Revision ids in order and the static findings: rules `sequence` and `rollback`."""
    directory = versions_dir(service, root)
    if not directory.is_dir():
        raise MigrationError(f"no migrations for {service}: {directory} does not exist")
    findings: list[Finding] = []
    chain: dict[str, object] = {}
    for path in sorted(directory.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        rev = _assigned(tree, "revision")
        down = _assigned(tree, "down_revision")
        where = path.name
        if not isinstance(rev, str) or not REVISION_ID.match(rev) or not path.name.startswith(f"{rev}_"):
            findings.append(Finding("sequence", service, where, f"revision id {rev!r} is not the 4-digit number "
                                    "its file name starts with", "name revisions NNNN_<slug>.py with "
                                    "revision = 'NNNN' (`migrate SERVICE new` does)"))
            continue
        chain[rev] = down
        functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        downgrade = functions.get("downgrade")
        if downgrade is None:
            findings.append(Finding("rollback", service, where, "no downgrade(): rollback is always included "
                                    "(spec 5.A)", "add downgrade() undoing exactly what upgrade() does"))
        elif _is_empty_body(downgrade.body):
            findings.append(Finding("rollback", service, where, "downgrade() is empty: it would record a "
                                    "rollback that changes nothing", "write the exact undo of upgrade()"))
        if "upgrade" not in functions:
            findings.append(Finding("sequence", service, where, "no upgrade()", "add upgrade()"))
    ids = sorted(chain)
    for position, rev in enumerate(ids, start=1):
        expected_prev = None if position == 1 else ids[position - 2]
        if int(rev) != position:
            findings.append(Finding("sequence", service, rev, f"revision {rev} should be {position:04d}: "
                                    "numbers run 0001, 0002, ... without gaps", "renumber the revisions"))
        elif chain[rev] != expected_prev:
            findings.append(Finding("sequence", service, rev, f"down_revision is {chain[rev]!r}, expected "
                                    f"{expected_prev!r}: migrations form one line", "point down_revision at "
                                    "the previous number"))
    return ids, findings


# -- running as the migrator -------------------------------------------------------------------------------
def refuse_proxy(uri: str) -> None:
    host = urlsplit(uri).hostname or ""
    if _PROXY_HOST.search(host):
        raise MigrationError(f"{host} is an RDS Proxy endpoint: run migrations directly against the instance "
                             "address (DDL pins proxy sessions; lock waits would queue pooled traffic)")


@contextmanager
def migrator_connection(
    uri: str, service: str, *, lock_timeout: str = DEFAULT_LOCK_TIMEOUT, scratch: bool = False
) -> Iterator[Connection]:
    """A SQLAlchemy connection as `<service>_migrator` acting as `<service>_owner`, lock_timeout set."""
    refuse_proxy(uri)
    if not LOCK_TIMEOUT.match(lock_timeout):
        raise MigrationError(f"lock timeout {lock_timeout!r}: write it like 5s, 500ms or 1min")
    migrator, owner = (f"{service}_{RoleKind.MIGRATOR.value}", f"{service}_{RoleKind.OWNER.value}")
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(uri), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            who = tuple(conn.exec_driver_sql("SELECT session_user::text, current_user::text").one())
            if who != (migrator, owner):
                raise MigrationError(
                    f"migrations of {service} run as {migrator} acting as {owner}; this connection is "
                    f"session_user={who[0]}, current_user={who[1]} (use the migrator's credentials, never an "
                    "admin's)")
            conn.exec_driver_sql(f"SET lock_timeout = '{lock_timeout}'")
            if scratch:  # the maintenance helpers schedule no pg_cron job on a scratch database
                conn.exec_driver_sql(f"SET {SCRATCH_SETTING} = on")
            conn.commit()
            yield conn
    finally:
        engine.dispose()


def run_migrations(context: Any) -> None:
    """Called by migration_env/env.py inside `alembic.command`: one transaction per revision."""
    cfg = context.config
    conn = cfg.attributes.get("connection")
    if conn is None:
        raise MigrationError("run migrations through `edumatrix-db migrate SERVICE up|down`, not `alembic`")
    service = cfg.attributes["service"]
    context.configure(
        connection=conn,
        version_table=version_table(service),
        version_table_schema=schema_name(service),
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(service: str, uri: str, action: Callable[[Config], None], *, root: Path | None, lock_timeout: str,
         scratch: bool = False) -> None:
    script_directory(service, root)  # a clear error when the directory is missing
    with migrator_connection(uri, service, lock_timeout=lock_timeout, scratch=scratch) as conn:
        cfg = alembic_config(service, root)
        cfg.attributes["connection"] = conn
        action(cfg)


def upgrade(service: str, uri: str, target: str = "head", *, root: Path | None = None,
            lock_timeout: str = DEFAULT_LOCK_TIMEOUT, scratch: bool = False) -> None:
    _run(service, uri, lambda cfg: command.upgrade(cfg, target), root=root, lock_timeout=lock_timeout,
         scratch=scratch)


def downgrade(service: str, uri: str, target: str = "-1", *, root: Path | None = None,
              lock_timeout: str = DEFAULT_LOCK_TIMEOUT, scratch: bool = False) -> None:
    _run(service, uri, lambda cfg: command.downgrade(cfg, target), root=root, lock_timeout=lock_timeout,
         scratch=scratch)


@dataclass(frozen=True)
class Status:
    service: str
    current: str | None
    revisions: list[tuple[str, str, bool]]  # (id, message, applied)


def status(service: str, uri: str, *, root: Path | None = None) -> Status:
    script = script_directory(service, root)
    with migrator_connection(uri, service) as conn:
        ctx = MigrationContext.configure(
            conn, opts={"version_table": version_table(service), "version_table_schema": schema_name(service)})
        current = ctx.get_current_revision()
    ordered = list(reversed(list(script.walk_revisions())))
    applied_ids: set[str] = set()
    if current is not None:
        applied_ids = {r.revision for r in script.iterate_revisions(current, "base")}
    return Status(service, current, [(r.revision, r.doc or "", r.revision in applied_ids) for r in ordered])


# -- the audit rules ---------------------------------------------------------------------------------------
def audit_service(conn: psycopg.Connection[Any], model: AccessModel, service: str) -> list[Finding]:
    """The guard's audit (edumatrix_db/ops/audit.py: naming, tenant coverage, ownership, isolation, ...) on
    the database, keeping the findings about this service."""
    from edumatrix_db.ops.audit import run_audit

    return [Finding(f.rule, service, f.object, f.message, f.fix)
            for f in run_audit(conn, model).findings if f.service == service]


# -- check -------------------------------------------------------------------------------------------------
def scratch_model(model: AccessModel, database: str) -> AccessModel:
    """The same access model for another database of the same server (roles are cluster-wide)."""

    def moved(item: Any) -> Any:
        return dataclasses.replace(item, database=database)

    services = tuple(
        dataclasses.replace(s, grants=tuple(map(moved, s.grants)),
                            default_privileges=tuple(map(moved, s.default_privileges)))
        for s in model.services
    )
    return dataclasses.replace(model, database=database, services=services,
                               database_grants=tuple(map(moved, model.database_grants)))


@contextmanager
def scratch_database(
    server: LocalServer, model: AccessModel, service: str
) -> Iterator[tuple[LocalServer, AccessModel]]:
    """A database on the local server provisioned like the real one (bootstrap + the access model applied
    by the platform's SQL renderer), dropped afterwards."""
    name = check_identifier(f"{model.database}_check_{service}"[:63], "scratch database")
    _drop_database(server, name)
    scratch = LocalServer(server.root, database=name, admin=server.admin)
    try:
        scratch.bootstrap()
        smodel = scratch_model(model, name)
        scratch.apply(smodel)
        with psycopg.connect(scratch.admin_uri(), autocommit=True) as admin:  # outbox, inbox: docs/events.md
            events.apply_events(admin, smodel)
        yield scratch, smodel
    finally:
        _drop_database(server, name)


def _drop_database(server: LocalServer, name: str) -> None:
    with psycopg.connect(server.bootstrap_conninfo(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)".encode())


def check(service: str, server: LocalServer, model: AccessModel, *, root: Path | None = None,
          progress: Callable[[str], None] = lambda _step: None) -> CheckReport:
    """Apply all, audit, downgrade to base, upgrade again, compare: the report lists every finding."""
    report = CheckReport(service)
    model.service(service)  # KeyError for an unknown service
    progress("static checks: numbering and downgrade()")
    report.revisions, static = lint_revisions(service, root)
    report.findings += static
    report.steps.append(("static checks", f"{len(report.revisions)} revision(s), {len(static)} finding(s)"))
    if static:
        return report
    migrator = f"{service}_{RoleKind.MIGRATOR.value}"
    with scratch_database(server, model, service) as (scratch, smodel):
        uri = scratch.uri(migrator, scratch.passwords()[migrator])
        report.steps.append(("scratch database", f"{scratch.database} provisioned like {model.database}"))
        schema = schema_name(service)
        with psycopg.connect(scratch.admin_uri(), autocommit=True) as admin:
            progress("upgrade to head (first time)")
            if not _step(report, "upgrade head", lambda: upgrade(service, uri, root=root, scratch=True), "apply"):
                return report
            first = schema_snapshot(admin, schema)
            progress("audit rules: naming, tenant coverage, ownership")
            audit = audit_service(admin, smodel, service)
            report.findings += audit
            report.steps.append(("audit", f"{len(audit)} finding(s)"))
            progress("downgrade to base")
            to_base = lambda: downgrade(service, uri, "base", root=root, scratch=True)  # noqa: E731
            if not _step(report, "downgrade base", to_base, "rollback"):
                return report
            platform_tables = {version_table(service), inbox_table_name(service), outbox_table_name(service)}
            # the outbox's payload check (components/service_events.py creates it, not a migration)
            platform_functions = {events.payload_function_name(service)}
            left = [k for k in schema_snapshot(admin, schema)["relations"] if k not in platform_tables]
            left += [k for k in schema_snapshot(admin, schema)["functions"]
                     if k.split("(", 1)[0].rsplit(".", 1)[-1] not in platform_functions]
            left += list(schema_snapshot(admin, schema)["types"])
            if left:
                report.findings.append(Finding("rollback", service, ", ".join(sorted(left)),
                                               "downgrade to base left these objects behind",
                                               "drop them in the downgrade() of the revision that creates them"))
            progress("upgrade to head (second time)")
            if not _step(report, "upgrade head again", lambda: upgrade(service, uri, root=root, scratch=True), "apply"):
                return report
            second = schema_snapshot(admin, schema)
            differences = diff_snapshots(first, second)
            report.steps.append(("compare catalogs", "identical" if not differences
                                 else f"{len(differences)} difference(s)"))
            report.findings += [Finding("repeatable", service, what, detail, "make downgrade() the exact "
                                        "inverse of upgrade()") for what, detail in differences]
    return report


def _step(report: CheckReport, name: str, action: Callable[[], None], rule: str) -> bool:
    try:
        action()
    except Exception as exc:  # a failing migration is a finding, not a crash of the check
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        report.steps.append((name, f"FAILED: {detail}"))
        report.findings.append(Finding(rule, report.service, name, detail,
                                       "fix the revision so it runs as the migrator within its own schema"))
        return False
    report.steps.append((name, "ok"))
    return True
