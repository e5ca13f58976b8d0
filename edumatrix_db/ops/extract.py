"""Service extraction, operated (spec 3.B, 7.B): clone, replicate, verify, cut over, roll back, finish.

One service's schema moves from the shared instance (the source) to its own instance (the target) while the
service keeps writing. The phases are config/extraction.py's; the runbook is docs/extraction-runbook.md.

- clone-schema: the service's part of the access model (roles, grants, default privileges) on the target,
  then the schema's DDL from `pg_dump --schema-only` (tables, indexes, constraints, functions, triggers,
  policies, sequences), in one transaction. Idempotent: an equal schema is left alone, a different one is
  refused.
- start: a publication for the schema on the source, a subscription on the target connecting as the
  platform's extraction replication login (its own slot), the initial copy shown with progress.
- cutover: PAUSE the service's pools (bounded), fence the source (the service's write privileges revoked,
  its direct sessions ended), note the source's WAL position, wait until the target has applied it, stop
  forward replication and start reverse replication (target -> source, no copy), move the target's
  sequences past the source's, retarget the pools, lift the fence on the target's side, RESUME. The freeze
  the clients see is PAUSE..RESUME. Then verify the target as it was at the freeze (a snapshot taken inside
  it) against the fenced source; only then success. Any failure before RESUME undoes every step and resumes
  on the source; a failed verify after it runs `rollback` (reverse replication makes it lossless).
- rollback: the same switch in the other direction (reverse replication has kept the source current).
- one switch of a service at a time (`take_switch_lock`); a switch that finds a freeze left by a runner that died
  inside it (pools paused, the record's marker set) completes it, or thaws it when traffic already leads to the
  side asked for (`Extraction._thaw`): docs/extraction-runbook.md, "If the runner dies inside the freeze".
- finish: drops subscriptions, publications and slots of both directions; the source schema stays fenced
  (read-only) until the explicit cleanup phase drops it.

Each command connects as the instance's master user (`--source`, `--target`; locally the bootstrap
superuser): in PostgreSQL 15 a subscription needs a superuser (on RDS `rds_superuser`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from config.access import AccessModel, ServiceAccess, build_access_model
from config.catalog import Catalog, load_catalog
from config.extraction import Phase
from edumatrix_db.database import sql as access_sql
from edumatrix_db.database.fence import fenced, set_fence
from edumatrix_db.ops import verify
from edumatrix_db.ops.traffic import TrafficError, TrafficSwitch

CATCH_UP_TIMEOUT_SECONDS = 5.0
"""How long cutover waits, inside the freeze, for the target to apply the source's last writes."""
MAX_LAG_BYTES_TO_START_CUTOVER = 16 * 1024 * 1024
"""Cutover refuses to freeze while the target is further behind than this (the freeze would be long)."""
WORKER_START_SECONDS = 15.0
"""How long a switch waits for an enabled subscription's worker to connect before it refuses ("try again")."""
SEQUENCE_GAP = 1000
"""Sequences on the side taking over are set this far past the other side's position."""

CUTOVER_STEPS = ("preflight", "pause", "fence", "catch-up", "reverse-replication", "sequences", "switch",
                 "unfence-target", "resume", "verify")
"""The named steps of cutover (and rollback), in order; tests inject a failure at each."""


class ExtractError(RuntimeError):
    """A refusal before anything changed, or a failure after which everything was undone; exit 2."""


@dataclass(frozen=True)
class Names:
    service: str
    schema: str
    publication: str
    subscription: str
    reverse_publication: str
    reverse_subscription: str
    access: ServiceAccess


def names(service: str, catalog: Catalog | None = None) -> Names:
    catalog = catalog or load_catalog()
    known = [s.name for s in catalog]
    if service not in known:
        raise ExtractError(f"unknown service {service!r}; the catalog (config/services.yaml) has: {', '.join(known)}")
    model = build_access_model(catalog.only(service))
    access = model.services[0]
    base = f"edumatrix_extract_{service}"
    return Names(service, access.schema, base, base, f"{base}_back", f"{base}_back", access)


def service_model(service: str, catalog: Catalog | None = None) -> AccessModel:
    """The access model of a target instance holding only this service."""
    catalog = catalog or load_catalog()
    return build_access_model(catalog.only(service))


def connect(uri: str, side: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(uri, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExtractError(f"cannot reach the {side}: {first}") from exc


@dataclass
class Extraction:
    """One service's extraction between two instances (master connections) and, for the switch, its pooler."""

    service: str
    source_uri: str
    target_uri: str
    replication_uri: str = ""
    """How the target's subscription reaches the source: the platform's extraction replication login."""
    target_replication_uri: str = ""
    """How the source reaches the target for reverse replication (the target's extraction replication login)."""
    switch: TrafficSwitch | None = None
    """The PgBouncer in front of the service, or all of them (traffic.PoolerSet): switched together."""
    console: Console = field(default_factory=lambda: Console(stderr=True))
    catalog: Catalog | None = None

    def __post_init__(self) -> None:
        self.n = names(self.service, self.catalog)

    @contextmanager
    def sides(self) -> Iterator[tuple[psycopg.Connection[Any], psycopg.Connection[Any]]]:
        with connect(self.source_uri, "source") as src, connect(self.target_uri, "target") as tgt:
            yield src, tgt

    # -- checks before anything changes ------------------------------------------------------------------
    def preflight(self, src: psycopg.Connection[Any], tgt: psycopg.Connection[Any], *, target_schema: bool) -> None:
        """Refuse, before any change, what would fail later: no schema, tables without a primary key,
        logical replication off, a target whose schema differs."""
        n = self.n
        if src.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (n.schema,)).fetchone() is None:
            raise ExtractError(f"the source has no schema {n.schema}: is --source the shared instance?")
        level = src.execute("SHOW wal_level").fetchone()
        if level is None or level[0] != "logical":
            raise ExtractError(f"the source's wal_level is {level and level[0]}, extraction needs logical: set "
                               "rds.logical_replication=1 in its parameter group (config/parameters.py) and reboot")
        no_key = [r[0] for r in src.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace "
            "WHERE s.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND NOT EXISTS "
            "(SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) ORDER BY 1", (n.schema,))]
        if no_key:
            raise ExtractError(f"{n.schema}: table(s) without a primary key: {', '.join(no_key)}; logical "
                               "replication cannot apply their updates and deletes and verify cannot locate "
                               "differences: add a primary key in a migration first")
        if target_schema:
            problem = self.target_schema_problem(src, tgt)
            if problem:
                raise ExtractError(problem)

    def target_schema_problem(self, src: psycopg.Connection[Any], tgt: psycopg.Connection[Any]) -> str | None:
        """Why the target's schema is not the source's (None: equal, or not there / empty)."""
        schema = self.n.schema
        source, target = verify.table_shapes(src, schema), verify.table_shapes(tgt, schema)
        if not target:
            return None
        problems = [f"{t}: missing on the target" for t in sorted(source.keys() - target.keys())]
        problems += [f"{t}: only on the target" for t in sorted(target.keys() - source.keys())]
        for name in sorted(source.keys() & target.keys()):
            shape = verify.shape_problem(source[name], target[name])
            if shape:
                problems.append(f"{name}: {shape}")
        if not problems:
            return None
        return (f"the target's schema {schema} differs from the source's: {'; '.join(problems)}. Drop the "
                "target's schema (it is not in service yet) and run clone-schema again")

    # -- clone-schema ----------------------------------------------------------------------------------
    def clone_schema(self, *, pg_dump: str) -> list[str]:
        """The access model of the service and the schema's DDL on the target; returns what changed."""
        with self.sides() as (src, tgt):
            self.preflight(src, tgt, target_schema=True)
            changes: list[str] = []
            report = access_sql.apply(tgt, service_model(self.service, self.catalog), privileged=tgt)
            changes += report.changes
            if verify.table_shapes(tgt, self.n.schema):
                changes.append(f"schema {self.n.schema} already cloned (equal to the source): nothing to do")
                return changes
            ddl = schema_ddl(pg_dump, self.source_uri, self.n.schema)
            with tgt.transaction():
                tgt.execute(ddl.encode())
            tables = len(verify.table_shapes(tgt, self.n.schema))
            changes.append(f"cloned {self.n.schema}: {tables} table(s) with their indexes, constraints, "
                           "sequences, functions, triggers and policies")
            return changes

    # -- start -----------------------------------------------------------------------------------------
    def start(self, *, wait: bool = True, timeout: float = 3600) -> list[str]:
        n = self.n
        changes: list[str] = []
        with self.sides() as (src, tgt):
            self.preflight(src, tgt, target_schema=True)
            if not verify.table_shapes(tgt, n.schema):
                raise ExtractError(f"the target has no tables in {n.schema}: run clone-schema first")
            if not self.replication_uri:
                raise ExtractError("no replication login: pass --replication-uri (the platform's "
                                   "edumatrix_extraction_replicator, from its secret)")
            if ensure_publication(src, n.publication, n.schema):
                changes.append(f"source: publication {n.publication} for {n.schema}")
            if not subscription_exists(tgt, n.subscription):
                tgt.execute(sql.SQL("CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (slot_name = {})").format(
                    sql.Identifier(n.subscription), sql.Literal(self.replication_uri),
                    sql.Identifier(n.publication), sql.Literal(n.subscription)))
                changes.append(f"target: subscription {n.subscription} (slot {n.subscription} on the source)")
            if wait:
                self.wait_for_copy(src, tgt, timeout)
        return changes

    def wait_for_copy(self, src: psycopg.Connection[Any], tgt: psycopg.Connection[Any], timeout: float) -> None:
        """Show the initial copy (tables ready, rows and bytes copied) until every table is streaming."""
        deadline = time.monotonic() + timeout
        with Progress(TextColumn("[bold]initial copy[/bold]"), BarColumn(), TextColumn("{task.completed}/{task.total} "
                      "tables  {task.fields[rows]} rows  {task.fields[bytes]}"), TimeElapsedColumn(),
                      console=self.console, transient=True) as progress:
            task = progress.add_task("copy", total=None, rows="0", bytes="0 B")
            while True:
                states = table_states(tgt, self.n.subscription)
                rows, size = copy_progress(tgt)
                ready = sum(s in ("r", "s") for s in states.values())
                progress.update(task, total=len(states), completed=ready, rows=f"{rows:,}", bytes=_bytes(size))
                if states and ready == len(states):
                    return
                if time.monotonic() > deadline:
                    raise ExtractError(f"the initial copy did not finish within {timeout:.0f} s; `extract status` "
                                       "shows where it is (it goes on in the background)")
                time.sleep(0.2)

    # -- status ----------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        n = self.n
        with self.sides() as (src, tgt):
            out: dict[str, Any] = {"service": n.service, "schema": n.schema}
            out["tables"] = {t: _STATE_NAMES.get(s, s) for t, s in sorted(table_states(tgt, n.subscription).items())}
            out["slots"] = slot_health(src, n.subscription) + slot_health(tgt, n.reverse_subscription)
            out["lag"] = subscription_lag(tgt, n.subscription)
            out["source_fenced"] = fenced(src, n.access)
            out["target_fenced"] = fenced(tgt, n.access) if verify.table_shapes(tgt, n.schema) else None
            out["traffic"] = self.switch.pointing_at() if self.switch else None
            out["phase"] = self.phase(src, tgt)
        return out

    def live_phase(self) -> str | None:
        with self.sides() as (src, tgt):
            return self.phase(src, tgt)

    def phase(self, src: psycopg.Connection[Any], tgt: psycopg.Connection[Any]) -> str | None:
        """The live phase, read from the two servers and the pooler (None: not started)."""
        n = self.n
        forward = subscription_enabled(tgt, n.subscription)
        reverse = subscription_exists(src, n.reverse_subscription)
        if reverse:
            return (Phase.CUTOVER if fenced(src, n.access) else Phase.ROLLBACK).value
        if forward is not None:
            return Phase.REPLICATE.value
        if fenced(src, n.access):
            return Phase.COMPLETE.value
        return Phase.PREPARE.value if verify.table_shapes(tgt, n.schema) else None

    # -- verify ----------------------------------------------------------------------------------------
    def verify(self, *, max_keys: int = 20) -> verify.VerifyReport:
        with self.sides() as (src, tgt):
            return verify.verify_schema(src, tgt, self.n.schema, max_keys=max_keys, console=self.console)

    # -- cutover and rollback --------------------------------------------------------------------------
    def cutover(self, *, dry_run: bool = False, hook: Callable[[str], None] | None = None,
                catch_up_timeout: float = CATCH_UP_TIMEOUT_SECONDS) -> SwitchResult:
        return self._switch("target", dry_run=dry_run, hook=hook, catch_up_timeout=catch_up_timeout)

    def rollback(self, *, dry_run: bool = False, hook: Callable[[str], None] | None = None,
                 catch_up_timeout: float = CATCH_UP_TIMEOUT_SECONDS) -> SwitchResult:
        return self._switch("source", dry_run=dry_run, hook=hook, catch_up_timeout=catch_up_timeout)

    def _switch(self, to: str, *, dry_run: bool, hook: Callable[[str], None] | None,
                catch_up_timeout: float, locked: bool = False) -> SwitchResult:
        """Move the service's traffic to `to` ("target": cutover, "source": rollback). See the module doc."""
        n = self.n
        result = SwitchResult(direction="cutover" if to == "target" else "rollback", dry_run=dry_run)
        switch = self.switch
        if switch is None:
            raise ExtractError("no pooler to switch: pass --pooler-admin per PgBouncer with --pooler-record (agents) "
                               "or with --pooler-ini (a PgBouncer whose ini this host writes)")

        def step(name: str) -> None:
            result.steps.append(name)
            if hook:
                hook(name)

        try:
            switch.check()
        except TrafficError as exc:
            raise ExtractError(str(exc)) from exc
        with self.sides() as (src, tgt), switch.held():
            # one switch of a service at a time: a re-run must not take over a freeze whose runner still lives
            if not locked and not take_switch_lock(src, n.service):
                raise ExtractError(
                    f"another cutover or rollback of {n.service} is running (it holds the switch's advisory lock on "
                    "the source, pg_locks shows its backend): let it finish; if its runner hangs, end that backend "
                    "(pg_terminate_backend) and run the command again")
            old, new = (src, tgt) if to == "target" else (tgt, src)
            # forward: the replication that keeps `new` current; back: the one created for the way back
            forward = (n.subscription, n.publication) if to == "target" else (n.reverse_subscription,
                                                                               n.reverse_publication)
            back = (n.reverse_subscription, n.reverse_publication) if to == "target" else (n.subscription,
                                                                                           n.publication)
            # (the subscription of `forward` lives on `new`, the one of `back` on `old`)
            # A runner that died inside a freeze (killed, its host lost) left it: pools paused, maybe the marker.
            left_frozen, pointing = switch.frozen(), switch.pointing_at()
            if left_frozen and pointing == to:
                return self._thaw(to, src, tgt, result, step)
            if pointing == to and not fenced(new, n.access):
                result.notes.append(f"traffic is already on the {to}: nothing to do")
                return result
            keeping = subscription_enabled(new, forward[0])
            # A switch disables the replication keeping `new` current only once `new` has applied everything the
            # fenced old side had: a dead run that got so far left nothing to catch up.
            applied = left_frozen and keeping is False
            if left_frozen and keeping is None:
                raise ExtractError(
                    f"a switch died inside its freeze (pools paused) and no subscription {forward[0]} shows the "
                    f"{to} current while traffic is not there: the pools stay paused; recover by hand "
                    "(docs/extraction-runbook.md, \"If the runner dies inside the freeze\")")
            self.preflight(src, tgt, target_schema=True)
            step("preflight")
            problems = [] if applied else self.switch_problems(old, new, forward[0], forward[1])
            if problems:
                raise ExtractError("; ".join(problems))
            if left_frozen:
                result.notes.append(f"a {result.direction} that died inside its freeze left the pools paused: "
                                    f"this run completes it" + (" (the target had applied everything)" * applied))
            if dry_run:
                result.notes += [f"would {s}" for s in _STEP_TEXT]
                result.notes.append(f"checks passed: every table streaming, lag {subscription_lag(new, forward[0])}")
                return result
            undo: list[tuple[str, Callable[[], None]]] = []
            # set up before the freeze: the way back's publication, the connection verify will read through
            ensure_publication(new, back[1], n.schema)
            snapshot_conn: psycopg.Connection[Any] | None = connect(
                self.target_uri if to == "target" else self.source_uri, "verify")
            # the old side too: reverse replication writes into it from the moment traffic resumes
            old_snapshot = connect(self.source_uri if to == "target" else self.target_uri, "verify")
            resumed = False
            try:
                step("pause")
                t0 = time.monotonic()
                result.pause_seconds = switch.pause()
                undo.append(("resume", switch.resume))
                step("fence")
                set_fence(old, n.access, fenced=True)
                undo.append(("unfence the old side", lambda: set_fence(old, n.access, fenced=False)))
                end_sessions(old, n.access)
                step("catch-up")
                if not applied:
                    lsn = current_lsn(old)
                    result.catch_up_seconds = wait_applied(old, forward[0], lsn, catch_up_timeout, subscriber=new)
                step("reverse-replication")
                set_subscription_enabled(new, forward[0], False)
                undo.append(("re-enable forward replication", lambda: set_subscription_enabled(new, forward[0], True)))
                undo.append(("stop the way back", lambda: stop_reverse(old, back[0])))
                start_reverse(old, new, back[0], back[1], n.schema, self.reverse_uri(to))
                step("sequences")
                result.sequences = move_sequences(old, new, n.schema)
                # the snapshot `verify` compares: the new side exactly as the freeze left it
                assert snapshot_conn is not None
                for conn in (snapshot_conn, old_snapshot):
                    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    conn.execute("SELECT 1")
                step("switch")
                switch.point_at(to)
                undo.append(("point traffic back", lambda: switch.point_at("source" if to == "target" else "target")))
                step("unfence-target")
                set_fence(new, n.access, fenced=False)
                undo.append(("fence the new side again", lambda: set_fence(new, n.access, fenced=True)))
                step("resume")
                switch.resume()
                resumed = True
                result.freeze_seconds = time.monotonic() - t0
            except BaseException as exc:
                if snapshot_conn is not None:
                    snapshot_conn.close()
                old_snapshot.close()
                result.undone = _undo(undo, self.console)
                raise ExtractError(f"{result.direction} failed at step {result.steps[-1]}: {exc}; undone: "
                                   f"{', '.join(result.undone) or 'nothing to undo'}; traffic is on the "
                                   f"{'source' if to == 'target' else 'target'}, as before") from exc
            assert resumed
            assert snapshot_conn is not None
            try:
                step("verify")
                with snapshot_conn, old_snapshot:
                    report = verify.verify_schema(old_snapshot, snapshot_conn, n.schema, console=self.console)
                result.verify = report
            except BaseException as exc:
                result.verify_error = str(exc)
            if result.verify is not None and not result.verify.ok:
                result.verify.render(self.console)
            if result.verify is None or not result.verify.ok:
                result.notes.append("verify found differences or failed: switching back")
                back_result = self._switch("source" if to == "target" else "target", dry_run=False, hook=None,
                                           catch_up_timeout=catch_up_timeout, locked=True) if to == "target" else None
                result.rolled_back = back_result
                detail = result.verify_error or "differences (see the table above)"
                raise ExtractError(f"{result.direction}: verify after the switch failed: {detail}; traffic was "
                                   f"{'returned to the source' if back_result else 'left on the source'}")
        return result

    def _thaw(self, to: str, src: psycopg.Connection[Any], tgt: psycopg.Connection[Any], result: SwitchResult,
              step: Callable[[str], None]) -> SwitchResult:
        """End a freeze that a dead runner left while traffic leads to `to` (inside `sides()` and `held()`): `to`
        was serving before it (a run toward the other side that had not switched yet), or the dead run toward `to`
        had switched it already. Either way no write reached the other side since the freeze, so: the replication
        keeping the other side current runs again, the dead run's way back (keeping `to` current) stops, the fence
        on `to` is lifted, and the pools RESUME (the freeze marker cleared first)."""
        n = self.n
        assert self.switch is not None
        other, serving = (src, tgt) if to == "target" else (tgt, src)
        keeps_other, keeps_serving = ((n.reverse_subscription, n.subscription) if to == "target"
                                      else (n.subscription, n.reverse_subscription))
        step("thaw")
        if subscription_enabled(other, keeps_other) is False:
            set_subscription_enabled(other, keeps_other, True)
            result.notes.append(f"re-enabled {keeps_other} (keeps the {'source' if to == 'target' else 'target'} "
                                "current)")
        if subscription_enabled(serving, keeps_serving):
            set_subscription_enabled(serving, keeps_serving, False)
            result.notes.append(f"stopped {keeps_serving} (it kept the {to} current; the {to} serves now)")
        if fenced(serving, n.access):
            set_fence(serving, n.access, fenced=False)
            result.notes.append(f"lifted the fence on the {to}")
        step("resume")
        self.switch.resume()
        result.notes.append(f"a switch died inside its freeze with traffic on the {to}: the freeze is over, traffic "
                            f"is on the {to} (`extract {self.service} verify` compares the two sides)")
        return result

    def reverse_uri(self, to: str) -> str:
        """The replication login on the side that stops serving (the new side subscribes to it)."""
        return self.target_replication_uri if to == "target" else self.replication_uri

    def switch_problems(self, old: psycopg.Connection[Any], new: psycopg.Connection[Any], subscription: str,
                        publication: str) -> list[str]:
        """What must hold before the freeze: the keeping-current replication runs, covers every table, is
        close behind."""
        problems = []
        states = table_states(new, subscription)
        if subscription_enabled(new, subscription) is None:
            return [f"no subscription {subscription}: run `extract start` first"]
        if not subscription_enabled(new, subscription):
            problems.append(f"subscription {subscription} is disabled")
        not_ready = sorted(t for t, s in states.items() if s != "r")
        if not_ready:
            problems.append(f"tables not streaming yet: {', '.join(not_ready)} (wait for the initial copy)")
        published = set(publication_tables(old, publication))
        missing = sorted(set(verify.table_shapes(old, self.n.schema)) - published)
        if missing:
            problems.append(f"publication {publication} lacks {', '.join(missing)} (created after start? "
                            "migrations are frozen during an extraction: run `extract start` again)")
        slot = _slot_state(old, subscription)
        deadline = time.monotonic() + WORKER_START_SECONDS
        # an enabled subscription whose worker is starting (just re-enabled, or created by a run that died inside
        # the freeze) connects within seconds: wait for it rather than refuse a recovery with the pools paused
        while slot == (False,) and subscription_enabled(new, subscription) and time.monotonic() < deadline:
            time.sleep(0.1)
            slot = _slot_state(old, subscription)
        if slot is None:
            problems.append(f"the replication slot {subscription} is missing on the serving side")
        elif not slot[0]:
            problems.append(f"the subscription {subscription} is not connected yet (its worker starts within "
                            "seconds): try again")
        lag = slot_lag_bytes(old, subscription)
        if lag is not None and lag > MAX_LAG_BYTES_TO_START_CUTOVER:
            problems.append(f"the target is {_bytes(lag)} behind (more than {_bytes(MAX_LAG_BYTES_TO_START_CUTOVER)}): "
                            "wait until `extract status` shows it caught up")
        return problems

    # -- finish ----------------------------------------------------------------------------------------
    def finish(self) -> list[str]:
        n = self.n
        changes: list[str] = []
        with self.sides() as (src, tgt):
            if self.switch and self.switch.pointing_at() != "target":
                raise ExtractError("traffic is not on the target: run cutover first (finish removes the way back)")
            for conn, sub in ((tgt, n.subscription), (src, n.reverse_subscription)):
                if subscription_exists(conn, sub):
                    drop_subscription(conn, sub)
                    changes.append(f"dropped subscription {sub}")
            for conn, pub in ((src, n.publication), (tgt, n.reverse_publication)):
                if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (pub,)).fetchone():
                    conn.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(pub)))
                    changes.append(f"dropped publication {pub}")
            for conn, slot in ((src, n.subscription), (tgt, n.reverse_subscription)):
                if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone():
                    drop_slot(conn, slot)
                    changes.append(f"dropped slot {slot}")
            if not fenced(src, n.access):
                set_fence(src, n.access, fenced=True)
                changes.append(f"source schema {n.schema} is read-only for the service's roles")
        return changes


@dataclass
class SwitchResult:
    direction: str
    dry_run: bool
    steps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    pause_seconds: float | None = None
    catch_up_seconds: float | None = None
    freeze_seconds: float | None = None
    sequences: dict[str, int] = field(default_factory=dict)
    verify: verify.VerifyReport | None = None
    verify_error: str | None = None
    undone: list[str] = field(default_factory=list)
    rolled_back: SwitchResult | None = None


_STEP_TEXT = (
    "PAUSE the service's pools (bounded by the pause timeout)",
    "fence the old side: revoke the service roles' write privileges, end their direct sessions",
    "wait until the new side has applied the old side's WAL position",
    "stop forward replication; start reverse replication (new -> old, no copy)",
    f"move the new side's sequences {SEQUENCE_GAP} past the old side's",
    "point the pools at the new side (the backend record, taken by every PgBouncer; or its ini and RELOAD)",
    "lift the fence on the new side",
    "RESUME the pools",
    "verify the new side as of the freeze against the fenced old side",
)

_STATE_NAMES = {"i": "initializing", "d": "copying", "f": "copied", "s": "synchronized", "r": "streaming"}


def _undo(undo: list[tuple[str, Callable[[], None]]], console: Console) -> list[str]:
    done = []
    for label, action in reversed(undo):
        try:
            action()
            done.append(label)
        except Exception as exc:
            console.print(f"[red]undo failed: {label}: {exc}[/red]")
            done.append(f"{label} (FAILED: {exc})")
    return done


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# -- SQL building blocks (each idempotent) ----------------------------------------------------------------
def schema_ddl(pg_dump: str, source_uri: str, schema: str) -> str:
    """The schema's DDL without the schema itself (the access model creates and owns it)."""
    proc = subprocess.run([pg_dump, "--schema-only", "--no-publications", "--no-subscriptions",
                           f"--schema={schema}", "--dbname", source_uri], capture_output=True, text=True,
                          check=False, timeout=600)
    if proc.returncode != 0:
        raise ExtractError(f"pg_dump of {schema} failed: {proc.stderr.strip()}")
    keep = []
    for line in proc.stdout.splitlines():
        if line.startswith("\\") or line.startswith(("CREATE SCHEMA ", "ALTER SCHEMA ")):
            continue  # psql meta-commands (\restrict); the schema comes from the access model
        keep.append(line)
    return "\n".join(keep)


def ensure_publication(conn: psycopg.Connection[Any], name: str, schema: str) -> bool:
    """A publication of every table of the schema (FOR TABLES IN SCHEMA: needs a superuser in PostgreSQL 15;
    where that is refused, the current table list). Returns whether it was created."""
    if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        return False
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA {}").format(
                sql.Identifier(name), sql.Identifier(schema)))
    except psycopg.errors.InsufficientPrivilege:
        tables = sorted(verify.table_shapes(conn, schema))
        conn.execute(sql.SQL("CREATE PUBLICATION {} FOR TABLE {}").format(
            sql.Identifier(name), sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)))
    return True


def publication_tables(conn: psycopg.Connection[Any], publication: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s",
                                       (publication,))]


def subscription_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return subscription_enabled(conn, name) is not None


def subscription_enabled(conn: psycopg.Connection[Any], name: str) -> bool | None:
    row = conn.execute("SELECT subenabled FROM pg_subscription WHERE subname = %s", (name,)).fetchone()
    return None if row is None else bool(row[0])


def set_subscription_enabled(conn: psycopg.Connection[Any], name: str, enabled: bool) -> None:
    conn.execute(sql.SQL("ALTER SUBSCRIPTION {} {}").format(sql.Identifier(name),
                                                            sql.SQL("ENABLE" if enabled else "DISABLE")))


def drop_subscription(conn: psycopg.Connection[Any], name: str) -> None:
    """Drop a subscription; an enabled one drops its slot on the publisher. A disabled one is detached from
    its slot first (enabling it to drop the slot would replay what its slot holds): the caller drops the slot
    on the publisher (`finish` does)."""
    ident = sql.Identifier(name)
    if not subscription_enabled(conn, name):
        conn.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
    conn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))


def table_states(conn: psycopg.Connection[Any], subscription: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT c.relname, r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid "
        "JOIN pg_class c ON c.oid = r.srrelid WHERE s.subname = %s", (subscription,)).fetchall()
    return {str(t): str(s) for t, s in rows}


def copy_progress(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Rows and bytes copied so far by running table synchronizations (pg_stat_progress_copy) plus finished
    tables' sizes."""
    row = conn.execute("SELECT coalesce(sum(tuples_processed), 0), coalesce(sum(bytes_processed), 0) "
                       "FROM pg_stat_progress_copy").fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def slot_health(conn: psycopg.Connection[Any], slot: str) -> list[dict[str, Any]]:
    """The slot on its publisher: active, WAL status, bytes retained behind the current position, and the
    subscriber's replay lag in seconds as the walsender measures it (pg_stat_replication)."""
    rows = conn.execute(
        "SELECT s.slot_name, s.active, s.wal_status, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, s.safe_wal_size, "
        "extract(epoch FROM r.replay_lag) FROM pg_replication_slots s "
        "LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid WHERE s.slot_name = %s", (slot,)).fetchall()
    return [{"slot": s, "active": a, "wal_status": w, "retained_bytes": lag, "safe_wal_size": safe,
             "replay_lag_seconds": None if replay is None else round(float(replay), 3)}
            for s, a, w, lag, safe, replay in rows]


def slot_lag_bytes(conn: psycopg.Connection[Any], slot: str) -> int | None:
    row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint "
                       "FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def subscription_lag(conn: psycopg.Connection[Any], subscription: str) -> dict[str, Any]:
    row = conn.execute(
        "SELECT extract(epoch FROM now() - last_msg_receipt_time), received_lsn::text, latest_end_lsn::text "
        "FROM pg_stat_subscription st JOIN pg_subscription s ON s.oid = st.subid "
        "WHERE s.subname = %s AND st.relid IS NULL", (subscription,)).fetchone()
    if row is None:
        return {"seconds_since_last_message": None, "received_lsn": None, "latest_end_lsn": None}
    return {"seconds_since_last_message": None if row[0] is None else round(float(row[0]), 3),
            "received_lsn": row[1], "latest_end_lsn": row[2]}


def current_lsn(conn: psycopg.Connection[Any]) -> str:
    """The flush position: the fence's commit and every write before it are flushed (a commit flushes the WAL
    before it), while the write position may include later records that only the WAL writer flushes, up to
    wal_writer_delay (200 ms) later; a subscriber can confirm only what is flushed."""
    row = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def wait_applied(publisher: psycopg.Connection[Any], slot: str, lsn: str, timeout: float,
                 subscriber: psycopg.Connection[Any] | None = None) -> float:
    """Wait until the subscriber has confirmed (applied and flushed) everything up to `lsn`; seconds waited.

    The apply worker commits asynchronously (a subscription's default) and confirms a position only once its
    own commit is flushed, which the WAL writer does every wal_writer_delay (200 ms): so the subscriber is
    made to flush its WAL now by a synchronous commit of its own (one transaction id each poll), and the
    publisher commits an empty transaction too: its flush wakes the walsender, which then asks the
    subscriber for its position (a keepalive) instead of waiting for its next timer."""
    started = time.monotonic()
    while True:
        for conn in (subscriber, publisher):
            if conn is not None:
                with conn.transaction():
                    conn.execute("SELECT pg_current_xact_id()")
        row = publisher.execute(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn, active FROM pg_replication_slots WHERE slot_name = %s",
            (lsn, slot)).fetchone()
        if row is None:
            raise ExtractError(f"replication slot {slot} is gone")
        if row[0]:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise ExtractError(f"the subscriber did not apply up to {lsn} within {timeout:.1f} s "
                               f"(slot {slot} {'active' if row[1] else 'inactive'})")
        time.sleep(0.005)


def start_reverse(old: psycopg.Connection[Any], new: psycopg.Connection[Any], subscription: str,
                  publication: str, schema: str, new_replication_uri: str) -> None:
    """Replication new -> old from now on, no initial copy: the slot is created on `new` at its current
    position (everything before it is on both sides), then `old` subscribes to it."""
    if not new_replication_uri:
        raise ExtractError("no replication login for the way back: pass --target-replication-uri")
    ensure_publication(new, publication, schema)
    if not subscription_exists(old, subscription):
        if not new.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (subscription,)).fetchone():
            new.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (subscription,))
        old.execute(sql.SQL(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = false, slot_name = {}, "
            "copy_data = false, enabled = true)").format(
            sql.Identifier(subscription), sql.Literal(new_replication_uri), sql.Identifier(publication),
            sql.Literal(subscription)))
    elif not subscription_enabled(old, subscription):
        # The way back was used before (a rollback, then a cutover again): what its slot still holds was
        # applied on `old` from the other direction already; skip it. (Enabled: a run that died inside the freeze
        # started it; nothing was written on `new` since.)
        advance_slot(new, subscription)
        set_subscription_enabled(old, subscription, True)


def stop_reverse(old: psycopg.Connection[Any], subscription: str) -> None:
    """Undo of start_reverse: the way back stops (its slot stays for a later try; finish drops it)."""
    if subscription_enabled(old, subscription):
        set_subscription_enabled(old, subscription, False)


def advance_slot(conn: psycopg.Connection[Any], slot: str) -> None:
    """Move a disabled subscription's slot to the current position (waits for its walsender to exit)."""
    _retry_in_use(lambda: conn.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (slot,)))


def drop_slot(conn: psycopg.Connection[Any], slot: str) -> None:
    _retry_in_use(lambda: conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,)))


def _retry_in_use(action: Callable[[], object], timeout: float = 5.0) -> None:
    """Run `action` until no walsender holds the slot it needs (a disabled subscription's exits shortly)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            action()
            return
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def move_sequences(behind: psycopg.Connection[Any], ahead: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    """Set every sequence of `ahead` SEQUENCE_GAP past `behind`'s next value (never backwards); returns them."""
    source = verify.sequence_positions(behind, schema)
    current = verify.sequence_positions(ahead, schema)
    moved = {}
    for name, next_value in sorted(source.items()):
        value = max(next_value + SEQUENCE_GAP, current.get(name, 0))  # handed out next: value + increment
        ahead.execute("SELECT setval(format('%%I.%%I', %s::text, %s::text)::regclass, %s, true)",
                      (schema, name, value))
        moved[name] = value
    return moved


def take_switch_lock(conn: psycopg.Connection[Any], service: str) -> bool:
    """The service's switch lock (a session advisory lock on the source): held until `conn` closes, so a runner that
    dies releases it as its connection ends (at once when its process is killed; a lost host's connection ends when
    the server's TCP keepalive gives up on it)."""
    row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (f"edumatrix-extract-switch:{service}",)).fetchone()
    return bool(row and row[0])


def _slot_state(conn: psycopg.Connection[Any], slot: str) -> tuple[Any, ...] | None:
    """(active,) of a replication slot, None when it does not exist."""
    return conn.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone()


def end_sessions(conn: psycopg.Connection[Any], access: ServiceAccess) -> int:
    """End the service roles' sessions on a fenced side (clients that bypass the pooler); returns how many."""
    roles = [r.name for r in access.login_roles]
    row = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = ANY(%s) "
                       "AND pid <> pg_backend_pid()", (roles,)).fetchone()
    return int(row[0]) if row else 0


def pooled_aliases(service: str) -> Sequence[str]:
    """The pools of a service in the local PgBouncer (edumatrix_db/database/pooler.py names them so)."""
    return (service, f"{service}_readonly")
