"""Where a service's traffic goes, and the freeze: PgBouncer's PAUSE / RESUME and a pool retargeted by RELOAD.

`PAUSE db` makes PgBouncer stop handing out server connections for that pool and wait until every running
transaction has finished (transaction mode); new client queries queue in PgBouncer (the client sees a
pause, not an error) until `RESUME db`. One long transaction stalls `PAUSE`: `pause()` is bounded by a
timeout, after which it sends `RESUME` and raises, so traffic is never left paused.

Retargeting: the pool's line in pgbouncer.ini gets the other server's `host`/`port`/`dbname`, then
`RELOAD`; PgBouncer closes the pool's server connections to the old server as they are released (while
paused, all of them), so the next transaction opens one to the new server. PgBouncer cannot change a pool's
backend from its admin console, so whoever may write the ini does it:

- production (`AgentPoolerSet`): each PgBouncer task (2+ ECS tasks behind an NLB, each holding its own client
  connections: components/service_pooler.py) runs an agent (edumatrix_db/ops/pooler_agent.py) that applies the
  service's backend record (SSM Parameter Store) to its own ini. The switch PAUSEs every task through its admin
  console, marks the record frozen (a task started meanwhile pauses itself), writes the record, waits until every
  task's `SHOW DATABASES` reports the new backend (bounded; otherwise the record is written back and the cutover
  undone), re-lists the tasks, and RESUMEs. The local drills run the same code with a file record
  (tests/pg/test_extraction_poolers.py);
- a PgBouncer whose ini this process may write (`local up`): `PgBouncerSwitch` rewrites it atomically and sends
  `RELOAD` itself; `PoolerSet` switches several so.

Either set pauses all, switches all, resumes all, and on any failure resumes every one, so no task is left
paused or pointing alone at the other side. Production decision and its freeze on AWS:
docs/extraction-runbook.md ("How traffic moves").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Protocol

import psycopg

from edumatrix_db.ops.pooler_agent import (
    AgentError,
    Backend,
    BackendRecord,
    PoolState,
    RecordStore,
    admin_connect,
    configured_backends,
    point_pools,
    show_databases,
    write_atomically,
)

PAUSE_TIMEOUT_SECONDS = 2.0
"""How long `PAUSE` may wait for running transactions (the app roles' statement_timeout is 5 s)."""
ACK_TIMEOUT_SECONDS = 2.0
"""How long the switch waits, inside the freeze, until every pooler's agent runs the new backend record (the
agents read it every pooler_agent.FAST_POLL_SECONDS while paused)."""
ACK_POLL_SECONDS = 0.01


class TrafficError(RuntimeError):
    """The pooler could not be paused, retargeted or resumed; the message says what state traffic is in."""


class PauseTimeout(TrafficError):
    """PAUSE did not complete in time (a long transaction); traffic was resumed."""


class PgBouncerConsole:
    """One PgBouncer's admin console, for the pools (`aliases`) of one service: PAUSE / RESUME them and read where
    they lead (`SHOW DATABASES`). `backends` ({"source", "target"}) names the two sides."""

    def __init__(self, admin_uri: str, aliases: Sequence[str], backends: Mapping[str, Backend],
                 *, pause_timeout: float = PAUSE_TIMEOUT_SECONDS) -> None:
        self.admin_uri = admin_uri
        self.aliases = tuple(aliases)
        self.backends = dict(backends)
        self.pause_timeout = pause_timeout

    @property
    def name(self) -> str:
        """The console's address, without credentials (for messages)."""
        return self.admin_uri.rsplit("@", 1)[-1].split("?", 1)[0]

    def _admin(self) -> psycopg.Connection[Any]:
        return admin_connect(self.admin_uri)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep one admin connection open for the commands inside (RELOAD, RESUME, SHOW): no connection set-up
        inside the freeze."""
        if self._held is not None:  # already held by an outer switch
            yield
            return
        self._held = self._admin()
        try:
            yield
        finally:
            held, self._held = self._held, None
            held.close()

    _held: psycopg.Connection[Any] | None = None

    def _command(self, text: str) -> None:
        if self._held is not None and not self._held.closed:
            self._held.execute(text)
            return
        with self._admin() as conn:
            conn.execute(text)

    def pools(self) -> dict[str, PoolState]:
        """The service's pools as PgBouncer runs them (`SHOW DATABASES`)."""
        if self._held is not None and not self._held.closed:
            found = show_databases(self._held)
        else:
            with self._admin() as conn:
                found = show_databases(conn)
        return {a: found[a] for a in self.aliases if a in found}

    def check_pools(self) -> None:
        """The pooler answers and runs every alias (raise TrafficError otherwise)."""
        try:
            pools = self.pools()
        except (OSError, psycopg.Error) as exc:
            raise TrafficError(f"the pooler {self.name} is not reachable: {exc}") from exc
        missing = [a for a in self.aliases if a not in pools]
        if missing:
            raise TrafficError(f"the pooler {self.name} runs no pool {', '.join(missing)}")

    def serving(self) -> str | None:
        """"source" or "target" when every pool leads there (as PgBouncer runs them), else None."""
        pools = self.pools()
        if len(pools) != len(self.aliases):
            return None
        sides = {next((side for side, b in self.backends.items() if b.key == p.backend), None)
                 for p in pools.values()}
        return sides.pop() if len(sides) == 1 else None

    def paused(self) -> bool:
        """Whether any pool of the service is paused (a freeze under way, or left by a runner that died in it)."""
        return any(p.paused for p in self.pools().values())

    def reports(self, backend: Backend) -> bool:
        """Whether every pool of the service runs with `backend` (after the agent's RELOAD)."""
        pools = self.pools()
        return len(pools) == len(self.aliases) and all(p.backend == backend.key for p in pools.values())

    # -- the freeze ------------------------------------------------------------------------------------
    def pause(self) -> float:
        """PAUSE every pool of the service; returns the seconds it took. On timeout: RESUME, PauseTimeout."""
        started = time.monotonic()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._admin() as conn:
                    for alias in self.aliases:
                        try:
                            conn.execute(f"PAUSE {alias}")
                        except psycopg.Error as exc:
                            # a task started during the freeze pauses itself (the record's freeze marker)
                            if "already" not in str(exc):
                                raise
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=run, name="pgbouncer-pause", daemon=True)
        worker.start()
        worker.join(self.pause_timeout)
        if worker.is_alive():
            self.resume()
            worker.join(5)
            raise PauseTimeout(
                f"PAUSE did not finish within {self.pause_timeout:.1f} s (a transaction of the service is still "
                "running); traffic was resumed, nothing else changed")
        if errors:
            self.resume()
            raise TrafficError(f"PAUSE failed: {errors[0]}; traffic was resumed") from errors[0]
        return time.monotonic() - started

    def resume(self) -> None:
        """RESUME every pool (a pool that is not paused is left alone)."""
        for alias in self.aliases:
            try:
                self._command(f"RESUME {alias}")
            except psycopg.Error as exc:
                if "not paused" not in str(exc):
                    raise


class PgBouncerSwitch(PgBouncerConsole):
    """A PgBouncer whose ini this process may write (`local up`, a pooler on the same host): the pools' lines are
    rewritten here and `RELOAD`ed. On ECS the ini is the task's own: `AgentPoolerSet` with the agent instead."""

    def __init__(self, admin_uri: str, ini: Path, aliases: Sequence[str], backends: Mapping[str, Backend],
                 *, pause_timeout: float = PAUSE_TIMEOUT_SECONDS) -> None:
        super().__init__(admin_uri, aliases, backends, pause_timeout=pause_timeout)
        self.ini = ini

    def check(self) -> None:
        """The pooler answers and every alias is in its configuration (raise TrafficError otherwise)."""
        try:
            text = self.ini.read_text()
            self._command("SHOW VERSION")
        except (OSError, psycopg.Error) as exc:
            raise TrafficError(f"the pooler is not reachable ({self.ini}): {exc}") from exc
        missing = [a for a in self.aliases if a not in configured_backends(text, self.aliases)]
        if missing:
            raise TrafficError(f"the pooler configuration {self.ini} has no pool {', '.join(missing)}")

    def pointing_at(self) -> str | None:
        """"source", "target", or None when the pools disagree or point elsewhere (as the ini says)."""
        lines = configured_backends(self.ini.read_text(), self.aliases).values()
        sides = {next((side for side, b in self.backends.items() if b.key == line), None) for line in lines}
        return sides.pop() if len(sides) == 1 else None

    def frozen(self) -> bool:
        """Whether a pool of the service is paused (a freeze under way, or left by a runner that died in it)."""
        return self.paused()

    def point_at(self, side: str) -> None:
        """Rewrite the pools' backend and RELOAD (the pools should be paused: no transaction is split)."""
        backend = self.backends[side]
        write_atomically(self.ini, point_pools(self.ini.read_text(), self.aliases, *backend.key))
        self._command("RELOAD")


class TrafficSwitch(Protocol):
    """What the cutover needs of the layer in front of a service: one PgBouncer or several."""

    def check(self) -> None: ...
    def held(self) -> Any: ...
    def pointing_at(self) -> str | None: ...
    def point_at(self, side: str) -> None: ...
    def pause(self) -> float: ...
    def resume(self) -> None: ...
    def frozen(self) -> bool: ...


class _ConsoleSet:
    """Several PgBouncers in front of one service, paused and resumed together (each in its own thread)."""

    def __init__(self, switches: Sequence[PgBouncerConsole]) -> None:
        if not switches:
            raise TrafficError("no pooler given")
        self.switches = tuple(switches)

    def _all(self, action: str, run: Any) -> list[Any]:
        """Run `run(switch)` on every pooler at once; the results in order, or TrafficError naming the failures
        (after every call has returned)."""
        with ThreadPoolExecutor(max_workers=len(self.switches), thread_name_prefix=f"pgbouncer-{action}") as pool:
            futures = [pool.submit(run, switch) for switch in self.switches]
        failures = [(sw, f.exception()) for sw, f in zip(self.switches, futures, strict=True) if f.exception()]
        if failures:
            named = "; ".join(f"{sw.name}: {exc}" for sw, exc in failures)
            first = failures[0][1]
            error = PauseTimeout if all(isinstance(e, PauseTimeout) for _, e in failures) else TrafficError
            raise error(f"{action} failed on {len(failures)} of {len(self.switches)} pooler(s): {named}") from first
        return [f.result() for f in futures]

    @contextmanager
    def held(self) -> Iterator[None]:
        with ExitStack() as stack:
            for switch in self.switches:
                stack.enter_context(switch.held())
            yield

    def pause(self) -> float:
        started = time.monotonic()
        try:
            self._all("PAUSE", lambda sw: sw.pause())
        except TrafficError as exc:
            try:
                self.resume()
            except TrafficError as resume_error:
                raise TrafficError(f"{exc}; and resuming failed: {resume_error}") from exc
            raise type(exc)(f"{exc}; every pooler was resumed, nothing else changed") from exc
        return time.monotonic() - started

    def resume(self) -> None:
        self._all("RESUME", lambda sw: sw.resume())

    def frozen(self) -> bool:
        """Whether any pooler has a pool of the service paused: a freeze is under way, or a runner died inside one
        (the cutover's re-run recovers it: edumatrix_db/ops/extract.py)."""
        return any(self._all("SHOW DATABASES", lambda sw: sw.paused()))


class PoolerSet(_ConsoleSet):
    """Every PgBouncer in front of one service whose ini this process writes (`PgBouncerSwitch`), switched
    together: PAUSE all (in parallel, each bounded by its own timeout), retarget all, RESUME all. A failure to
    pause any resumes all before it is raised; `resume` tries every pooler even when one fails, then raises naming
    the ones that did. Traffic "points at" a side only when every pooler does (a split is reported as None, and
    the cutover's undo points them all back)."""

    switches: tuple[PgBouncerSwitch, ...]

    def __init__(self, switches: Sequence[PgBouncerSwitch]) -> None:
        super().__init__(switches)

    def check(self) -> None:
        self._all("check", lambda sw: sw.check())

    def pointing_at(self) -> str | None:
        sides = {switch.pointing_at() for switch in self.switches}
        return sides.pop() if len(sides) == 1 else None

    def point_at(self, side: str) -> None:
        self._all("switch", lambda sw: sw.point_at(side))


class AgentPoolerSet(_ConsoleSet):
    """The production switch: every PgBouncer task of a service (its admin console, `PgBouncerConsole`) and the
    service's backend record (`store`), which each task's agent applies to its own ini
    (edumatrix_db/ops/pooler_agent.py). The same code runs the local drills, with a file record.

    `pause()` PAUSEs every listed task, then sets the record's freeze marker: a task ECS starts from then on reads
    it and pauses its own pools (edumatrix_db/ops/pooler_agent.py `Agent.follow_freeze`) until the marker is cleared.
    `point_at(side)` (inside the freeze, every pool paused): write the record (the next generation, still frozen),
    then wait until every task's `SHOW DATABASES` reports the side's backend for every pool, at most `ack_timeout`.
    If any task does not, the previous record is written back and the switch waits (bounded again) until every task
    reports the previous backend, then raises: the cutover undoes its other steps and RESUMEs, so no task is left
    leading elsewhere than the others. `resume()` re-lists the tasks (`discover`, once, just before the RESUME:
    every task started since the listing is PAUSEd and must report the record's backend within `ack_timeout`),
    clears the freeze marker, and RESUMEs every task; a newcomer that did not report fails it after the RESUME (the
    cutover then undoes, and the undo's RESUME re-lists again). Where traffic points is what the tasks run, not what
    the record says. One re-listing, not one per step: each costs ECS calls inside the freeze.

    The marker is set after the listed tasks are paused, not before: a listed task's agent that read it first would
    PAUSE beside the runner's PAUSE. A task that started between the listing and the marker (ECS did not list it)
    is taken in by the re-listing if ECS lists it by then, and its agent reads the record every second in its first
    minute."""

    switches: tuple[PgBouncerConsole, ...]

    def __init__(self, consoles: Sequence[PgBouncerConsole], store: RecordStore, *,
                 ack_timeout: float = ACK_TIMEOUT_SECONDS,
                 discover: Callable[[], Sequence[PgBouncerConsole]] | None = None) -> None:
        super().__init__(consoles)
        self.store = store
        self.ack_timeout = ack_timeout
        self.backends = consoles[0].backends
        self.discover = discover
        """The tasks running now (ECS, re-listed inside the freeze); None: the given consoles are all there is."""

    def _relist(self) -> list[PgBouncerConsole]:
        """Take in (and PAUSE) the tasks `discover` lists that the set does not have yet; the newcomers. A task no
        longer listed stays in the set: ECS stops listing a task as soon as it is told to stop, while the NLB still
        drains its clients (deregistration delay), and those must be resumed too."""
        if self.discover is None:
            return []
        known = {switch.admin_uri for switch in self.switches}
        newcomers = [c for c in self.discover() if c.admin_uri not in known]
        self.switches = (*self.switches, *newcomers)
        for console in newcomers:
            console.pause()
        return newcomers

    def pause(self) -> float:
        started = time.monotonic()
        super().pause()
        try:
            self._write(self.record().freezing(True))
        except TrafficError as exc:
            self.resume()
            raise TrafficError(f"{exc}; every pooler was resumed, nothing else changed") from exc
        return time.monotonic() - started

    def resume(self) -> None:
        problems: list[str] = []
        try:
            record = self.record()
            newcomers = self._relist()
            late = self._lagging_of(newcomers, Backend(*record.backend), self.ack_timeout)
            if late:
                problems.append(f"{len(late)} pooler task(s) started during the freeze did not take the record "
                                f"within {self.ack_timeout:.1f} s ({'; '.join(late)})")
            if record.frozen:
                self._write(record.freezing(False))
        except TrafficError as exc:
            problems.append(str(exc))
        super().resume()
        if problems:
            raise TrafficError(f"{'; '.join(problems)}; every pooler was resumed")

    def check(self) -> None:
        self._all("check", lambda sw: sw.check_pools())
        try:
            record = self.store.read()
        except AgentError as exc:
            raise TrafficError(str(exc)) from exc
        if not any(record.backend == b.key for b in self.backends.values()):
            raise TrafficError(f"the backend record {self.store.describe()} leads to {record.host}:{record.port}/"
                               f"{record.dbname}, neither the source nor the target: correct it first")

    def frozen(self) -> bool:
        """Also when the record's freeze marker is set: a runner that died after setting it leaves it so."""
        return self.record().frozen or super().frozen()

    def pointing_at(self) -> str | None:
        sides = {switch.serving() for switch in self.switches}
        return sides.pop() if len(sides) == 1 else None

    def record(self) -> BackendRecord:
        try:
            return self.store.read()
        except AgentError as exc:
            raise TrafficError(str(exc)) from exc

    def _write(self, record: BackendRecord) -> None:
        try:
            self.store.write(record)
        except AgentError as exc:
            raise TrafficError(str(exc)) from exc

    def lagging(self, backend: Backend) -> list[str]:
        """The poolers whose pools do not (yet) all run `backend`."""
        return _lagging(self.switches, backend)

    def wait_reported(self, backend: Backend, timeout: float) -> list[str]:
        """Wait until every pooler runs `backend`; [] or the ones that still do not after `timeout`."""
        return self._lagging_of(self.switches, backend, timeout)

    def _lagging_of(self, switches: Sequence[PgBouncerConsole], backend: Backend, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            late = _lagging(switches, backend)
            if not late or time.monotonic() > deadline:
                return late
            time.sleep(ACK_POLL_SECONDS)

    def point_at(self, side: str) -> None:
        backend = self.backends[side]
        previous = self.record()
        self._write(previous.next(*backend.key))
        late = self.wait_reported(backend, self.ack_timeout)
        if not late:
            return
        back = Backend(*previous.backend)
        try:
            self._write(self.record().next(*back.key))
            still = self.wait_reported(back, self.ack_timeout)
        except TrafficError as exc:
            raise TrafficError(f"{len(late)} of {len(self.switches)} pooler(s) did not take the {side} within "
                               f"{self.ack_timeout:.1f} s ({'; '.join(late)}), and restoring the record failed: "
                               f"{exc}") from exc
        where = (f"every pooler runs {back.host}:{back.port} again" if not still else
                 f"STILL leading elsewhere: {'; '.join(still)}")
        raise TrafficError(f"{len(late)} of {len(self.switches)} pooler(s) did not take the {side} within "
                           f"{self.ack_timeout:.1f} s ({'; '.join(late)}); the backend record "
                           f"{self.store.describe()} was restored and {where}")


def _lagging(switches: Sequence[PgBouncerConsole], backend: Backend) -> list[str]:
    """The poolers whose pools do not (yet) all run `backend`."""
    late = []
    for switch in switches:
        try:
            if not switch.reports(backend):
                late.append(switch.name)
        except (OSError, psycopg.Error) as exc:
            late.append(f"{switch.name} ({str(exc).strip()})")
    return late
