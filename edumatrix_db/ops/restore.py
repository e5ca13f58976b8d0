"""`restore-schema`: one service's schema from a source database (an instance restored from a snapshot or to a
point in time) into a running target database, without touching any other service.

How, so that the target is never half-restored:
1. Checks first, nothing written: the service is in the catalog, both databases answer, the source has the
   schema, the source's schema is isolated like the model (every object owned by the service's owner, grants
   only to the service's roles; a foreign grant is reported and the restore refused, never copied), the
   target name is free unless `replace` was asked.
2. Everything is built in a staging schema on the target (`<schema>_rs_<hex>`, marked by a comment), owned by
   the service's owner: the schema's DDL from `pg_dump --schema-only --no-owner --no-acl` (pre-data), the rows
   by parallel binary `COPY` streams from the source to the target (largest tables first, `jobs` at a time,
   every stream in the same exported snapshot of the source, no intermediate files), the sequences' positions,
   then the indexes and constraints in parallel (post-data, foreign keys after the keys they reference), the
   triggers, policies and row-level security last.
3. With `verify`, the staging schema's rows and sequences are compared with the source's by the verification
   core (`edumatrix_db.ops.verify`, the one `extract verify` uses) before anything is made visible, while row
   level security is not yet enabled on it; a difference aborts the restore.
4. One transaction on the target: the existing schema is dropped (only with `replace`), the staging schema is
   renamed to the target name, the GDPR contract functions are given back to the service's GDPR definer, the
   access model's grants and default privileges for that schema are applied (`edumatrix_db.database.sql`),
   and, for a service holding personal data, every erasure the ledger holds for it is run again
   (`edumatrix_db.ops.gdpr`: a schema restored from before an erasure never serves the erased person, not
   even between the swap and a later replay). Nothing else in the database is touched. The ledger records the
   replays once the transaction has committed. Skipping the replay takes a reason (`skip_erasure_replay`);
   a restore beside the service (`as_schema`) must skip it: its contract functions name the service's schema.
On any failure or interruption (Ctrl-C, SIGTERM) before that transaction commits, the staging schema is
dropped; a run killed outright leaves only the marked staging schema, which the next run for that schema drops.

Renaming a schema keeps every reference PostgreSQL holds by OID (tables, defaults, views, policies, triggers).
What it cannot follow are names inside function bodies written as text (`AS $$ ... $$`) and `search_path`
settings: those are restored exactly as the source has them, so they name the service's schema. With
`as_schema` (a restore beside the service, for inspection) they still name the original schema.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from config.access import (
    AUDIT_ROLE,
    AccessModel,
    ObjectType,
    PlatformRoleKind,
    RoleKind,
    ServiceAccess,
    platform_role_name,
)
from config.naming import InvalidIdentifier, check_identifier, contract_functions
from edumatrix_db.database import drift, events
from edumatrix_db.database.catalog import read_catalog
from edumatrix_db.database.localpg import find_binaries
from edumatrix_db.database.sql import ApplyReport, _Applier
from edumatrix_db.ops import gdpr
from edumatrix_db.ops.ledger import Ledger, Request
from edumatrix_db.ops.verify import VerifyError, VerifyReport, verify_schema

STAGING_MARK = "edumatrix restore-schema staging"
"""The comment on a staging schema: what a later run recognises (and drops) as an interrupted restore's."""
COPY_CHUNK = 1 << 20
SESSION_WITHOUT_TIMEOUTS = "SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0"
"""A restore's sessions copy and index whole tables, and hold the source snapshot open while they do: the
per-role timeouts of the access model (statement, idle in transaction) would cut them off on large schemas."""
PHASES = ("checks", "schema", "data", "sequences", "indexes", "verify", "swap")
"""The steps in order; `on_phase` is called at the start of each (tests interrupt a restore there)."""


class RestoreError(RuntimeError):
    """The restore cannot run or was refused; the target is as it was (exit 2)."""


class VerificationFailed(RuntimeError):
    """The restored rows differ from the source's; nothing was swapped in (exit 1)."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(f"the restored {report.target_schema} differs from the source: nothing was swapped in")
        self.report = report


@dataclass(frozen=True)
class RestoreRequest:
    service: str
    source_uri: str
    target_uri: str
    as_schema: str | None = None
    replace: bool = False
    verify: bool = False
    jobs: int = 2
    erasures: Ledger | None = None
    """The GDPR erasure ledger (edumatrix_db.ops.ledger): required for a service holding personal data."""
    skip_erasure_replay: str | None = None
    """Why the erasures are not replayed (recorded in the result); None: they are."""


@dataclass
class TableCopy:
    name: str
    rows: int = 0
    bytes: int = 0


@dataclass
class RestoreResult:
    service: str
    source_schema: str
    target_schema: str
    replaced: bool
    tables: list[TableCopy] = field(default_factory=list)
    sequences: int = 0
    post_data_statements: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    verify: VerifyReport | None = None
    access_changes: list[str] = field(default_factory=list)
    dropped_leftovers: list[str] = field(default_factory=list)
    erasures_replayed: list[Request] = field(default_factory=list)
    erasure_replay_skipped: str | None = None

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service, "sourceSchema": self.source_schema, "targetSchema": self.target_schema,
            "replaced": self.replaced, "rows": self.rows, "bytes": self.bytes,
            "tables": {t.name: t.rows for t in self.tables}, "sequences": self.sequences,
            "postDataStatements": self.post_data_statements,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "verify": self.verify.to_json() if self.verify else None,
            "accessChanges": self.access_changes, "droppedLeftovers": self.dropped_leftovers,
            "erasuresReplayed": [r.request_id for r in self.erasures_replayed],
            "erasureReplaySkipped": self.erasure_replay_skipped,
        }

    def render(self, console: Console) -> None:
        table = Table(title=f"restore-schema {self.service}: {self.source_schema} -> {self.target_schema}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        table.add_column("bytes copied", justify="right")
        for t in self.tables:
            table.add_row(t.name, f"{t.rows:,}", f"{t.bytes:,}")
        console.print(table)
        if self.verify is not None:
            self.verify.render(console)
        phases = ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items())
        console.print(
            f"[bold green]restored[/] {self.target_schema}{' (replaced the existing schema)' if self.replaced else ''}:"
            f" {len(self.tables)} tables, {self.rows:,} rows, {self.sequences} sequences, "
            f"{self.post_data_statements} index/constraint/policy statements; access model: "
            f"{len(self.access_changes)} change(s); {phases}")
        if self.erasure_replay_skipped is not None:
            console.print(f"[bold yellow]GDPR erasures NOT replayed[/]: {self.erasure_replay_skipped}; run "
                          f"`edumatrix-db gdpr replay {self.service}` before the schema serves traffic")
        else:
            console.print(f"GDPR: {len(self.erasures_replayed)} recorded erasure(s) replayed in the swap")


def redact(uri: str) -> str:
    """A URI as it may be shown: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", re.sub(r"password=[^&\s]+", "password=***", uri))


def connect(uri: str, side: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(uri, autocommit=True, connect_timeout=15)
    except psycopg.Error as exc:
        message = str(exc).strip().replace(uri, redact(uri))
        raise RestoreError(f"cannot connect to the {side} ({redact(uri)}): {message}") from exc


def _service(model: AccessModel, name: str) -> ServiceAccess:
    for s in model.services:
        if s.service == name:
            return s
    known = ", ".join(s.service for s in model.services)
    raise RestoreError(f"unknown service {name!r}: the catalog (config/services.yaml) has {known}")


def _schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


ISOLATION_QUERY = """
WITH objects AS (
    SELECT 'schema' AS kind, n.nspname::text AS name, n.nspowner AS owner, n.nspacl AS acl
      FROM pg_namespace n WHERE n.nspname = %(schema)s
    UNION ALL
    SELECT CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                ELSE 'table' END, c.relname, c.relowner, c.relacl
      FROM pg_class c WHERE c.relnamespace = %(schema)s::regnamespace AND c.relkind IN ('r','p','S','v','m','f')
    UNION ALL
    SELECT 'function', p.oid::regprocedure::text, p.proowner, p.proacl
      FROM pg_proc p WHERE p.pronamespace = %(schema)s::regnamespace
    UNION ALL
    SELECT 'type', t.typname, t.typowner, t.typacl
      FROM pg_type t WHERE t.typnamespace = %(schema)s::regnamespace AND t.typtype IN ('e','d','c')
           AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
)
SELECT o.kind, o.name, pg_get_userbyid(o.owner) AS owner,
       coalesce((SELECT array_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END)
                   FROM aclexplode(o.acl) a), '{}') AS grantees
  FROM objects o
"""


DEPENDENTS_QUERY = """
SELECT DISTINCT v.oid::regclass::text || ' (view on ' || t.oid::regclass::text || ')'
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
  JOIN pg_class v ON v.oid = r.ev_class
  JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
 WHERE t.relnamespace = %(schema)s::regnamespace AND v.relnamespace <> t.relnamespace
UNION
SELECT DISTINCT c.conrelid::regclass::text || ' (foreign key ' || c.conname || ' to '
       || c.confrelid::regclass::text || ')'
  FROM pg_constraint c JOIN pg_class t ON t.oid = c.confrelid
 WHERE c.contype = 'f' AND t.relnamespace = %(schema)s::regnamespace
   AND (SELECT relnamespace FROM pg_class WHERE oid = c.conrelid) <> t.relnamespace
"""


def outside_dependents(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """Objects of other schemas that depend on `schema` (views, foreign keys): replacing it would drop them."""
    return sorted(str(r[0]) for r in conn.execute(DEPENDENTS_QUERY, {"schema": schema}).fetchall())


CDC_ROLE = platform_role_name(PlatformRoleKind.CDC_REPLICATOR)


def isolation_problems(conn: psycopg.Connection[Any], access: ServiceAccess, schema: str) -> list[str]:
    """How the source's schema departs from the model's isolation: objects another role owns, grants to
    roles outside the service (or PUBLIC). The restore never copies grants; it refuses such a source."""
    allowed = {r.name for r in access.roles} | {access.owner}
    problems = []
    for kind, name, owner, grantees in conn.execute(ISOLATION_QUERY, {"schema": schema}).fetchall():
        expected = _contract_owner(access, name) if kind == "function" else access.owner
        if owner != expected:
            problems.append(f"{kind} {name} is owned by {owner}, not {expected}")
        # pgaudit's object-audit role reads the personal tables by design (docs/gdpr.md): not a foreign grant
        audit = {AUDIT_ROLE} if kind == "table" and name in access.personal_tables else set()
        # and the CDC login uses a publishing service's schema and reads its outbox (docs/events.md)
        cdc = {CDC_ROLE} if access.outbox and (kind == "schema" or (kind == "table" and name == access.outbox)) \
            else set()
        foreign = sorted(set(grantees) - allowed - audit - cdc)
        if foreign:
            problems.append(f"{kind} {name} is granted to {', '.join(foreign)} (outside {access.service})")
    return problems


def _contract_owner(access: ServiceAccess, function: str) -> str:
    """Who owns `function` (`[schema.]name(args)`) in the model: the GDPR definer owns the contract's two."""
    name = function.split("(", 1)[0].rsplit(".", 1)[-1].strip('"')
    if access.holds_personal_data and name in contract_functions(access.service):
        return access.role(RoleKind.GDPR_DEFINER).name
    return access.owner


# -- the schema's DDL, from pg_dump, moved to the staging schema --------------------------------------------

_ENTRY = re.compile(r"^--\n-- Name: (?P<name>.*?); Type: (?P<type>.*?); Schema: (?P<schema>.*?); Owner: .*\n--\n",
                    re.MULTILINE)
_FUNCTION_TYPES = {"FUNCTION", "PROCEDURE", "AGGREGATE"}
_BODY = re.compile(r"\n    AS |\n    BEGIN ATOMIC\n", re.MULTILINE)
PARALLEL_FIRST = {"INDEX", "CONSTRAINT"}
PARALLEL_SECOND = {"FK CONSTRAINT"}
AT_SWAP = {"ROW SECURITY"}
"""Row-level security is enabled in the swap's transaction: until then the owner reads every row (verify)."""


@dataclass(frozen=True)
class DumpEntry:
    type: str
    name: str
    sql: str


def dump_entries(text: str) -> tuple[str, list[DumpEntry]]:
    """pg_dump's plain output as (its preamble of SET statements, its entries by TOC header)."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))
    matches = list(_ENTRY.finditer(text))
    preamble = text[: matches[0].start()] if matches else text
    entries = []
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        entries.append(DumpEntry(m["type"], m["name"], text[m.end():end].strip()))
    return preamble, entries


def move_to_schema(entry: DumpEntry, schema: str, staging: str) -> DumpEntry:
    """The entry's statement with the schema's name replaced by the staging schema's, except inside a
    function's textual body and its `SET search_path` (those keep naming the service's schema: after the swap
    they are right again)."""
    qualified = re.compile(rf"\b{re.escape(schema)}\b(?=\.)")
    if entry.type in _FUNCTION_TYPES:
        body = _BODY.search(entry.sql)
        head, rest = (entry.sql[: body.start()], entry.sql[body.start():]) if body else (entry.sql, "")
        if body and "BEGIN ATOMIC" in body.group(0):  # a parsed body: its names are bound at creation
            rest = qualified.sub(staging, rest)
        return replace(entry, sql=qualified.sub(staging, head) + rest)
    return replace(entry, sql=re.sub(rf"\b{re.escape(schema)}\b", staging, entry.sql))


_LIBPQ_ENV = {"host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "dbname": "PGDATABASE",
              "user": "PGUSER", "password": "PGPASSWORD", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT",
              "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY", "connect_timeout": "PGCONNECT_TIMEOUT",
              "options": "PGOPTIONS", "application_name": "PGAPPNAME", "target_session_attrs": "PGTARGETSESSIONATTRS"}


def libpq_env(uri: str) -> dict[str, str]:
    """The environment a libpq program (pg_dump, psql) connects with: the URI's parts as PG* variables, so the
    password never appears on a command line (where `ps` shows it)."""
    parts = conninfo_to_dict(uri)
    unknown = sorted(set(parts) - set(_LIBPQ_ENV))
    if unknown:
        raise RestoreError(f"connection parameters {', '.join(unknown)} are not supported here; use a URI with "
                           f"{', '.join(sorted(_LIBPQ_ENV))}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({_LIBPQ_ENV[k]: str(v) for k, v in parts.items() if v is not None})
    return env


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_dump(uri: str, schema: str, section: str, snapshot: str) -> str:
    args = [find_binaries().exe("pg_dump"), "--schema-only", f"--section={section}", "--no-owner", "--no-acl",
            "--no-subscriptions", "--no-publications", f"--snapshot={snapshot}", "-n", schema]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, env=libpq_env(uri))
    if proc.returncode != 0:
        raise RestoreError(f"pg_dump --section={section} of {schema} failed: {proc.stderr.strip()}")
    return proc.stdout


# -- the run ------------------------------------------------------------------------------------------------

class _Restore:
    def __init__(self, request: RestoreRequest, model: AccessModel, console: Console,
                 on_phase: Callable[[str], None] | None) -> None:
        self.request = request
        self.model = model
        self.console = console
        self.on_phase = on_phase or (lambda _phase: None)
        self.access = _service(model, request.service)
        self.schema = self.access.schema
        self.final = request.as_schema or self.schema
        self.staging = f"{self.final[:52]}_rs_{secrets.token_hex(3)}"
        self.result = RestoreResult(request.service, self.schema, self.final, replaced=False)
        self._clock = time.monotonic()
        self._phase = ""
        self.at_swap: list[DumpEntry] = []

    def phase(self, name: str) -> None:
        now = time.monotonic()
        if self._phase:
            self.result.seconds[self._phase] = now - self._clock
        self._phase, self._clock = name, now
        self.on_phase(name)

    @contextmanager
    def owner_session(self) -> Iterator[psycopg.Connection[Any]]:
        conn = self.open_owner_session()
        try:
            yield conn
        finally:
            conn.close()

    def checks(self, source: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> None:
        if self.request.as_schema is not None:
            try:
                check_identifier(self.request.as_schema, "--as schema name")
            except InvalidIdentifier as exc:
                raise RestoreError(str(exc)) from exc
            others = {s.schema: s.service for s in self.model.services if s.service != self.access.service}
            if self.request.as_schema in others:
                raise RestoreError(f"--as {self.request.as_schema}: that is {others[self.request.as_schema]}'s "
                                   "schema; name a schema no service uses")
        self.erasure_checks()
        if not _schema_exists(source, self.schema):
            raise RestoreError(f"the source has no schema {self.schema} (service {self.access.service}): is it "
                               "the instance restored from the backup, and the right database?")
        problems = isolation_problems(source, self.access, self.schema)
        if problems:
            raise RestoreError(
                f"the source's {self.schema} is not isolated like the model; refusing to copy it:\n  - "
                + "\n  - ".join(problems)
                + "\nfix: revoke the foreign grants / give the objects back to the owner on the source, or "
                "restore a backup taken before the drift")
        exists = _schema_exists(target, self.final)
        if exists and not self.request.replace:
            raise RestoreError(f"the target already has schema {self.final}: pass --replace to restore beside it "
                               "and swap it in one transaction, or --as NEW_SCHEMA to restore beside it")
        self.result.replaced = exists
        dependents = outside_dependents(target, self.final) if exists else []
        if dependents:
            raise RestoreError(f"replacing {self.final} on the target would drop objects of other schemas that depend "
                               f"on it: {', '.join(dependents)}; nothing was changed (isolation forbids them: remove "
                               "them first, or restore beside with --as)")
        if target.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.access.owner,)).fetchone() is None:
            raise RestoreError(f"the target has no role {self.access.owner}: apply the access model there first "
                               "(`pulumi up`, or `edumatrix-db local up` locally)")
        member = target.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (self.access.owner,)).fetchone()
        if not (member and member[0]):
            raise RestoreError(f"the target login is not a member of {self.access.owner}: connect as the admin "
                               "(the RDS master user), which the access model makes a member of every owner")

    def erasure_checks(self) -> None:
        """A service holding personal data is restored with the erasure ledger, or with a reason not to."""
        skip = self.request.skip_erasure_replay
        if skip is not None and not skip.strip():
            raise RestoreError("--skip-erasure-replay needs a reason (it is printed and kept in the result)")
        if not self.access.holds_personal_data or skip:
            self.result.erasure_replay_skipped = skip if self.access.holds_personal_data else None
            return
        if self.request.as_schema is not None:
            raise RestoreError(f"--as {self.request.as_schema}: {self.access.service} holds personal data and the "
                               "erasures cannot be replayed into a copy (its contract functions name "
                               f"{self.schema}); pass --skip-erasure-replay REASON and keep the copy from traffic")
        if self.request.erasures is None:
            raise RestoreError(f"{self.access.service} holds personal data: the restore replays the GDPR erasure "
                               "ledger (--ledger FILE, or the stack's ledger) so that no erased person comes back; "
                               "or pass --skip-erasure-replay REASON")

    def drop_leftovers(self, target: psycopg.Connection[Any]) -> None:
        """Staging schemas of this target name left by a restore that was killed outright."""
        rows = target.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s AND obj_description(oid, 'pg_namespace') LIKE %s",
            (f"{self.final[:52]}\\_rs\\_%", f"{STAGING_MARK}%")).fetchall()
        for (name,) in rows:
            target.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
            self.result.dropped_leftovers.append(name)

    def create_staging(self, target: psycopg.Connection[Any], pre_data: list[DumpEntry], preamble: str) -> None:
        target.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
            sql.Identifier(self.staging), sql.Identifier(self.access.owner)))
        target.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
            sql.Identifier(self.staging), sql.Literal(f"{STAGING_MARK} of {self.final}, started {time.time():.0f}")))
        statements = [move_to_schema(e, self.schema, self.staging).sql for e in pre_data
                      if not (e.type == "SCHEMA" or (e.type == "COMMENT" and e.name == f"SCHEMA {self.schema}"))]
        with self.owner_session() as conn, conn.transaction():
            conn.execute(preamble.encode())
            for statement in statements:
                conn.execute(statement.encode())

    def tables(self, source: psycopg.Connection[Any]) -> list[tuple[str, list[str], int]]:
        """(table, copied columns, bytes on disk) of every table holding rows, largest first."""
        rows = source.execute(
            "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum), pg_table_size(c.oid) "
            "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "AND a.attgenerated = '' WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r' "
            "GROUP BY c.oid, c.relname ORDER BY pg_table_size(c.oid) DESC, c.relname", (self.schema,)).fetchall()
        return [(name, list(columns), int(size)) for name, columns, size in rows]

    def copy_table(self, snapshot: str, table: str, columns: Sequence[str], size: int, progress: Progress,
                   task: Any) -> TableCopy:
        """One table's rows: `psql` running `COPY ... TO STDOUT (FORMAT binary)` on the source, in the exported
        snapshot, piped into `psql` running `COPY ... FROM STDIN` on the target as the owner. Two C processes and
        a pipe: the rows never pass through Python (whose lock would serialise the parallel streams)."""
        cols = ", ".join(_ident(c) for c in columns)
        source_sql = [
            SESSION_WITHOUT_TIMEOUTS, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{snapshot}'",
            "SET row_security = off",
            f"COPY {_ident(self.schema)}.{_ident(table)} ({cols}) TO STDOUT (FORMAT binary)", "COMMIT"]
        target_sql = [SESSION_WITHOUT_TIMEOUTS, f"SET ROLE {_ident(self.access.owner)}",
                      f"COPY {_ident(self.staging)}.{_ident(table)} ({cols}) FROM STDIN (FORMAT binary)"]
        psql = find_binaries().exe("psql")

        def command(statements: list[str]) -> list[str]:
            return [psql, "-X", "-v", "ON_ERROR_STOP=1", *(a for st in statements for a in ("-c", st))]

        reader = subprocess.Popen([*command(source_sql), "-q"], env=libpq_env(self.request.source_uri),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert reader.stdout is not None
        try:  # an interruption stops the writer (subprocess.run kills it) and the reader here
            writer = subprocess.run(command(target_sql), env=libpq_env(self.request.target_uri), stdin=reader.stdout,
                                    capture_output=True, text=True, check=False)
        except BaseException:
            reader.kill()
            reader.wait()
            raise
        finally:
            reader.stdout.close()
        if writer.returncode != 0:
            reader.kill()
        reader.wait()
        errors = (reader.stderr.read().decode(errors="replace") if reader.stderr else "").strip()
        if reader.returncode != 0 or writer.returncode != 0:
            raise RestoreError(f"copying {self.schema}.{table} failed: {errors or writer.stderr.strip()}")
        copied = re.findall(r"^COPY (\d+)$", writer.stdout, re.MULTILINE)
        progress.update(task, advance=size)
        return TableCopy(table, rows=int(copied[-1]) if copied else 0, bytes=size)

    def copy_data(self, snapshot: str, tables: list[tuple[str, list[str], int]]) -> None:
        with Progress(TextColumn("[bold]copy[/bold] {task.description}"), BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), TimeElapsedColumn(), console=self.console, transient=True) as progress:
            task = progress.add_task(f"{len(tables)} tables", total=max(1, sum(size for _, _, size in tables)))
            with ThreadPoolExecutor(max_workers=max(1, self.request.jobs)) as pool:
                futures = [pool.submit(self.copy_table, snapshot, name, columns, size, progress, task)
                           for name, columns, size in tables]
                self.result.tables = [f.result() for f in futures]

    def sequences(self, snapshot_conn: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> None:
        rows = snapshot_conn.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'S'",
            (self.schema,)).fetchall()
        for (name,) in rows:
            position = snapshot_conn.execute(sql.SQL("SELECT last_value, is_called FROM {}.{}").format(
                sql.Identifier(self.schema), sql.Identifier(name))).fetchone()
            assert position is not None
            target.execute("SELECT setval(%s::regclass, %s, %s)",
                           (f"{sql.Identifier(self.staging).as_string(target)}."
                            f"{sql.Identifier(name).as_string(target)}", position[0], position[1]))
        self.result.sequences = len(rows)

    def post_data(self, entries: list[DumpEntry], preamble: str) -> None:
        moved = [move_to_schema(e, self.schema, self.staging) for e in entries]
        first = [e for e in moved if e.type in PARALLEL_FIRST]
        second = [e for e in moved if e.type in PARALLEL_SECOND]
        rest = [e for e in moved if e.type not in PARALLEL_FIRST | PARALLEL_SECOND | AT_SWAP]
        self.at_swap = [e for e in moved if e.type in AT_SWAP]
        local = threading.local()
        sessions: list[psycopg.Connection[Any]] = []
        lock = threading.Lock()

        def run(entry: DumpEntry) -> None:
            conn = getattr(local, "conn", None)
            if conn is None:  # one owner session per worker thread, closed below
                conn = local.conn = self.open_owner_session()
                with lock:
                    sessions.append(conn)
                conn.execute(preamble.encode())
            conn.execute(entry.sql.encode())

        with Progress(TextColumn("[bold]indexes and constraints[/bold]"), BarColumn(), TextColumn(
                "{task.completed}/{task.total}"), TimeElapsedColumn(), console=self.console, transient=True) as bar:
            task = bar.add_task("post-data", total=len(moved))
            try:
                with ThreadPoolExecutor(max_workers=max(1, self.request.jobs)) as pool:
                    for group in (first, second):
                        for future in [pool.submit(run, e) for e in group]:
                            future.result()
                            bar.advance(task)
                for e in rest:
                    run(e)
                    bar.advance(task)
            finally:
                for conn in sessions:
                    conn.close()
        self.result.post_data_statements = len(moved)

    def open_owner_session(self) -> psycopg.Connection[Any]:
        """A target session acting as the service's owner (what it creates, the owner owns), search_path
        empty (pg_dump's statements name every schema)."""
        conn = connect(self.request.target_uri, "target")
        try:
            conn.execute(SESSION_WITHOUT_TIMEOUTS)
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.access.owner)))
            conn.execute("SELECT pg_catalog.set_config('search_path', '', false)")
        except BaseException:
            conn.close()
            raise
        return conn

    def verify(self, source: psycopg.Connection[Any]) -> None:
        """The verification core on the staging schema, before row-level security is enabled on it. Each side
        has its schema on the search_path, so user-defined column types print alike (`format_type`)."""
        with self.owner_session() as target:
            source.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (self.schema,))
            target.execute("SELECT pg_catalog.set_config('search_path', %s, false)", (self.staging,))
            try:
                report = verify_schema(source, target, self.schema, target_schema=self.staging, console=self.console)
            except VerifyError as exc:
                raise RestoreError(f"verification could not run: {exc}") from exc
        report.target_schema = self.final
        self.result.verify = report
        if not report.ok:
            raise VerificationFailed(report)

    def swap(self, target: psycopg.Connection[Any]) -> None:
        """One transaction: the old schema out (with `replace`), the staging schema in under the final name,
        the access model's grants and default privileges on it."""
        report = ApplyReport()
        applier = _Applier(target, report)
        ident = sql.Identifier
        with target.transaction():
            target.execute("SET LOCAL lock_timeout = '30s'")
            with self.owner_transaction(target):
                for entry in self.at_swap:
                    target.execute(entry.sql.encode())
            if self.result.replaced:
                target.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(ident(self.final)))
            target.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(ident(self.staging), ident(self.final)))
            comment = sql.NULL if self.final == self.schema else \
                sql.Literal(f"restored copy of {self.schema} ({self.access.service})")
            target.execute(sql.SQL("COMMENT ON SCHEMA {} IS {}").format(ident(self.final), comment))
            self.apply_access(applier, target)
            self.contract_to_definer(target)  # after the grants: the definer needs CREATE on the schema
            replayed = self.replay_erasures(target)
        self.result.access_changes = report.changes
        if replayed and self.request.erasures is not None:
            gdpr.record_replays(self.request.erasures, replayed, self.access.service)
        self.result.erasures_replayed = replayed

    def contract_to_definer(self, target: psycopg.Connection[Any]) -> None:
        """The restore created every object as the owner (`--no-owner`) and `apply_access` granted EXECUTE on
        all the schema's functions to the service's roles; the GDPR contract's functions belong to the service's
        GDPR definer (SECURITY DEFINER with its BYPASSRLS), executable by its gdpr login only (docs/gdpr.md):
        what the definer's default privileges give them when a migration creates them."""
        if not self.access.holds_personal_data:
            return
        definer = self.access.role(RoleKind.GDPR_DEFINER).name
        login = self.access.role(RoleKind.GDPR).name
        rows = target.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = %s::regnamespace "
            "AND p.proname = ANY(%s)", (self.final, list(contract_functions(self.access.service)))).fetchall()
        for (function,) in rows:
            target.execute(f"ALTER FUNCTION {function} OWNER TO {drift.ident(definer)}")
            with self.acting_as(target, definer):  # the grants moved to the definer with the ownership
                others = target.execute(
                    "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid("
                    "a.grantee)) END FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a "
                    "WHERE p.oid = %s::regprocedure AND a.grantee <> ALL(ARRAY[%s, %s]::regrole[])",
                    (function, definer, login)).fetchall()
                if others:
                    target.execute(f"REVOKE ALL ON FUNCTION {function} FROM {', '.join(r[0] for r in others)}")
                target.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {drift.ident(login)}")

    def replay_erasures(self, target: psycopg.Connection[Any]) -> list[Request]:
        """Inside the swap's transaction: every erasure the ledger holds for the service, run again through the
        restored contract as its definer (the admin reaches it through the owner's membership)."""
        if self.result.erasure_replay_skipped is not None or self.request.erasures is None:
            return []
        wanted = gdpr.erasures_to_replay(self.request.erasures, self.access.service)
        if wanted:
            with self.acting_as(target, self.access.role(RoleKind.GDPR_DEFINER).name):
                try:
                    gdpr.erase_again(target, self.access.service, wanted)
                except psycopg.Error as exc:
                    raise RestoreError(f"replaying {len(wanted)} GDPR erasure(s) in the restored {self.final} "
                                       f"failed, nothing was swapped in: {str(exc).strip()}") from exc
        return wanted

    def owner_transaction(self, conn: psycopg.Connection[Any]) -> AbstractContextManager[None]:
        """Inside the caller's transaction: act as the service's owner for the statements inside."""
        return self.acting_as(conn, self.access.owner)

    @contextmanager
    def acting_as(self, conn: psycopg.Connection[Any], role: str) -> Iterator[None]:
        """Inside the caller's transaction: act as `role` for the statements inside."""
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        try:
            yield
        finally:
            conn.execute("RESET ROLE")

    def apply_access(self, applier: _Applier, target: psycopg.Connection[Any]) -> None:
        """The model's grants for the service on the schema now named `final`: the schema grants and default
        privileges as `sql.apply` renders them, and the object grants on everything restored."""
        def moved(schema: str | None) -> str | None:
            return self.final if schema == self.schema else schema

        applier.schema(self.final, self.access.owner)
        for d in self.access.default_privileges:
            with applier.acting_as(d.owner):
                applier.default_privilege(replace(d, schema=moved(d.schema)))
        plural = {ObjectType.TABLE: "TABLES", ObjectType.SEQUENCE: "SEQUENCES", ObjectType.FUNCTION: "FUNCTIONS"}
        for g in self.access.grants:
            g = replace(g, schema=moved(g.schema))
            if g.object_type in plural and g.privileges and g.schema == self.final:
                applier.run(f"GRANT {', '.join(sorted(g.privileges))} ON ALL {plural[g.object_type]} IN SCHEMA "
                            f"{drift.ident(self.final)} TO {drift.ident(g.role)}")
            else:
                applier.grant(g)
        if self.final == self.schema:  # the model's own schema: the guard's read-back repairs the rest
            # the outbox publication lost its table with the old schema: back to the restored outbox
            applier.report.changes += events.apply_service_events(
                target, self.access.service, publishes=self.access.publishes_events, cdc_role=self.model.cdc_role,
                payloads=self.access.event_payloads)
            for finding in drift.evaluate(read_catalog(target, self.model), self.model):
                if finding.service == self.access.service and finding.repair and not finding.foreign:
                    with applier.acting_as(finding.act_as):
                        applier.run(*finding.repair)

    def run(self) -> RestoreResult:
        self.phase("checks")
        source = connect(self.request.source_uri, "source")
        target = connect(self.request.target_uri, "target")
        staged = False
        try:
            self.checks(source, target)
            self.drop_leftovers(target)
            # One snapshot of the source for the DDL, every table's rows and the sequences.
            snap = connect(self.request.source_uri, "source")
            # The exporting transaction stays open, idle, while the tables are copied: the platform roles'
            # idle_in_transaction_session_timeout (60 s) would end it and invalidate the snapshot for the rest.
            snap.execute(SESSION_WITHOUT_TIMEOUTS)
            snap.autocommit = False
            snap.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = snap.execute("SELECT pg_export_snapshot()").fetchone()
            assert row is not None
            snapshot = str(row[0])
            try:
                preamble, pre = dump_entries(pg_dump(self.request.source_uri, self.schema, "pre-data", snapshot))
                _, post = dump_entries(pg_dump(self.request.source_uri, self.schema, "post-data", snapshot))
                tables = self.tables(snap)
                self.phase("schema")
                staged = True
                self.create_staging(target, pre, preamble)
                self.phase("data")
                self.copy_data(snapshot, tables)
                self.phase("sequences")
                self.sequences(snap, target)
            finally:
                snap.close()
            self.phase("indexes")
            self.post_data(post, preamble)
            self.phase("verify")
            if self.request.verify:
                self.verify(source)
            self.phase("swap")
            self.swap(target)
            staged = False
            self.phase("")
            return self.result
        except BaseException:
            if staged:
                self.discard()
            raise
        finally:
            source.close()
            target.close()

    def discard(self) -> None:
        """Drop the staging schema (a fresh session: the run's own may be mid-statement or broken)."""
        with connect(self.request.target_uri, "target") as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.staging)))


def restore_schema(request: RestoreRequest, model: AccessModel, *, console: Console | None = None,
                   on_phase: Callable[[str], None] | None = None) -> RestoreResult:
    """Restore `request.service`'s schema from the source into the target (module docstring). Raises
    RestoreError (refused or failed, target unchanged), VerificationFailed (rows differ, target unchanged)."""
    return _Restore(request, model, console or Console(stderr=True), on_phase).run()
