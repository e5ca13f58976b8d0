"""Where a service's traffic goes, and the freeze: PgBouncer's PAUSE / RESUME and a pool retargeted by RELOAD.

`PAUSE db` makes PgBouncer stop handing out server connections for that pool and wait until every running
transaction has finished (transaction mode); new client queries queue in PgBouncer (the client sees a
pause, not an error) until `RESUME db`. One long transaction stalls `PAUSE`: `pause()` is bounded by a
timeout, after which it sends `RESUME` and raises, so traffic is never left paused.

Retargeting: the pool's line in pgbouncer.ini gets the other server's `host`/`port`/`dbname`, then
`RELOAD`; PgBouncer closes the pool's server connections to the old server as they are released (while
paused, all of them), so the next transaction opens one to the new server. The ini is rewritten atomically.
Several PgBouncers in front of one service (the production pooler runs 2+ ECS tasks behind an NLB, each
holding its own client connections: components/service_pooler.py): `PoolerSet` pauses all, switches all, resumes
all, and on any failure resumes every one, so no task is left paused or pointing alone at the other side.
Production decision and its freeze on AWS: docs/extraction-runbook.md ("How traffic moves").
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

PAUSE_TIMEOUT_SECONDS = 2.0
"""How long `PAUSE` may wait for running transactions (the app roles' statement_timeout is 5 s)."""


class TrafficError(RuntimeError):
    """The pooler could not be paused, retargeted or resumed; the message says what state traffic is in."""


class PauseTimeout(TrafficError):
    """PAUSE did not complete in time (a long transaction); traffic was resumed."""


@dataclass(frozen=True)
class Backend:
    host: str
    port: int
    dbname: str

    def matches(self, line: str) -> bool:
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        return (fields.get("host"), fields.get("port"), fields.get("dbname")) == (
            self.host, str(self.port), self.dbname)

    @classmethod
    def of(cls, conninfo: str) -> Backend:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
        return cls(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432) or 5432),
                   str(params.get("dbname", "")))


class PgBouncerSwitch:
    """The pools (`aliases`) of one service in one PgBouncer, moved between `backends` ({"source", "target"})."""

    def __init__(self, admin_uri: str, ini: Path, aliases: Sequence[str], backends: Mapping[str, Backend],
                 *, pause_timeout: float = PAUSE_TIMEOUT_SECONDS) -> None:
        self.admin_uri = admin_uri
        self.ini = ini
        self.aliases = tuple(aliases)
        self.backends = dict(backends)
        self.pause_timeout = pause_timeout

    def _admin(self) -> psycopg.Connection[Any]:
        # The admin console speaks only the simple query protocol: a ClientCursor sends queries as text.
        return psycopg.connect(self.admin_uri, autocommit=True, cursor_factory=psycopg.ClientCursor,
                               connect_timeout=5)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep one admin connection open for the commands inside (RELOAD, RESUME): no connection set-up
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

    def check(self) -> None:
        """The pooler answers and every alias is in its configuration (raise TrafficError otherwise)."""
        try:
            lines = self._lines()
            self._command("SHOW VERSION")
        except (OSError, psycopg.Error) as exc:
            raise TrafficError(f"the pooler is not reachable ({self.ini}): {exc}") from exc
        missing = [a for a in self.aliases if not any(self._is_alias_line(line, a) for line in lines)]
        if missing:
            raise TrafficError(f"the pooler configuration {self.ini} has no pool {', '.join(missing)}")

    # -- where traffic goes ----------------------------------------------------------------------------
    def _lines(self) -> list[str]:
        return self.ini.read_text().splitlines()

    @staticmethod
    def _is_alias_line(line: str, alias: str) -> bool:
        return re.match(rf"^{re.escape(alias)}\s*=", line) is not None

    def pointing_at(self) -> str | None:
        """"source", "target", or None when the pools disagree or point elsewhere."""
        sides = set()
        for line in self._lines():
            for alias in self.aliases:
                if self._is_alias_line(line, alias):
                    sides.add(next((side for side, b in self.backends.items() if b.matches(line)), None))
        return sides.pop() if len(sides) == 1 else None

    def point_at(self, side: str) -> None:
        """Rewrite the pools' backend and RELOAD (the pools should be paused: no transaction is split)."""
        backend = self.backends[side]
        out = []
        for line in self._lines():
            if any(self._is_alias_line(line, a) for a in self.aliases):
                line = re.sub(r"\bhost=\S+", f"host={backend.host}", line)
                line = re.sub(r"\bport=\S+", f"port={backend.port}", line)
                line = re.sub(r"\bdbname=\S+", f"dbname={backend.dbname}", line)
            out.append(line)
        tmp = self.ini.with_suffix(".tmp")
        tmp.write_text("\n".join(out) + "\n")
        tmp.chmod(self.ini.stat().st_mode & 0o777)
        tmp.replace(self.ini)
        self._command("RELOAD")

    # -- the freeze ------------------------------------------------------------------------------------
    def pause(self) -> float:
        """PAUSE every pool of the service; returns the seconds it took. On timeout: RESUME, PauseTimeout."""
        started = time.monotonic()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with self._admin() as conn:
                    for alias in self.aliases:
                        conn.execute(f"PAUSE {alias}")
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


class TrafficSwitch(Protocol):
    """What the cutover needs of the layer in front of a service: one PgBouncer or several."""

    def check(self) -> None: ...
    def held(self) -> Any: ...
    def pointing_at(self) -> str | None: ...
    def point_at(self, side: str) -> None: ...
    def pause(self) -> float: ...
    def resume(self) -> None: ...


class PoolerSet:
    """Every PgBouncer in front of one service, switched together: PAUSE all (in parallel, each bounded by its
    own timeout), retarget all, RESUME all. A failure to pause any resumes all before it is raised; `resume`
    tries every pooler even when one fails, then raises naming the ones that did. Traffic "points at" a side only
    when every pooler does (a split is reported as None, and the cutover's undo points them all back)."""

    def __init__(self, switches: Sequence[PgBouncerSwitch]) -> None:
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
            named = "; ".join(f"{sw.admin_uri.rsplit('@', 1)[-1]}: {exc}" for sw, exc in failures)
            first = failures[0][1]
            error = PauseTimeout if all(isinstance(e, PauseTimeout) for _, e in failures) else TrafficError
            raise error(f"{action} failed on {len(failures)} of {len(self.switches)} pooler(s): {named}") from first
        return [f.result() for f in futures]

    def check(self) -> None:
        self._all("check", lambda sw: sw.check())

    @contextmanager
    def held(self) -> Iterator[None]:
        with ExitStack() as stack:
            for switch in self.switches:
                stack.enter_context(switch.held())
            yield

    def pointing_at(self) -> str | None:
        sides = {switch.pointing_at() for switch in self.switches}
        return sides.pop() if len(sides) == 1 else None

    def point_at(self, side: str) -> None:
        self._all("switch", lambda sw: sw.point_at(side))

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
