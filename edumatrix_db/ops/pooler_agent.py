"""The extraction pooler's agent: how a running PgBouncer learns where a service's traffic goes (issue 13).

PgBouncer cannot change a `[databases]` entry from its admin console: a new backend needs the ini rewritten and
`RELOAD`. On ECS Fargate nobody but the task itself can write the task's ini, so each task runs this agent beside
PgBouncer (the image's entrypoint, pooler-image/). The agent

- renders PgBouncer's configuration from the task's environment (the image contract, docs/extraction-runbook.md
  "The pooler image") and the service's *backend record* before PgBouncer starts (`render`), then
- watches the record (`run`): when it names another backend, rewrites the pools' lines of the ini (atomically)
  and sends `RELOAD` through PgBouncer's admin console on the local unix socket, where the user `pgbouncer` of
  the same Unix user id is let in without a password (PgBouncer's own rule; nothing listens for it on the
  network).

The backend record (`BackendRecord`): host, port, dbname, a generation and the freeze marker, as JSON. It lives in
SSM Parameter Store on AWS (`SsmRecordStore`; the parameter `/<prefix>/extraction/<service>/pooler-backend`,
components/ service_pooler.py: the ops runner's role may put it, the task role may only get it) and in a file
locally (`FileRecordStore`). The runner's switch (edumatrix_db/ops/traffic.py `AgentPoolerSet`) PAUSEs every task,
writes the record, waits until every task's `SHOW DATABASES` reports the new backend, and RESUMEs.

Polling: the agent reads the record often only while its PgBouncer has a pool of the service paused (the
switch pauses before it writes, so the new backend is picked up within `FAST_POLL_SECONDS` of the write) and
rarely otherwise (a task started or restarted meanwhile, or a record changed by hand): few API calls (SSM's
default throughput is shared by the account and Region) and a short freeze. In its first minute it reads it every
second, and a record carrying the freeze marker makes it PAUSE its own pools until the marker is cleared
(`follow_freeze`): a task ECS starts during a cutover serves neither side until the switch lands.

Self-contained on purpose (the standard library, psycopg; boto3 only for SSM): the image copies this one file.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

FAST_POLL_SECONDS = 0.2
"""Record reads while a pool is paused (a cutover is under way): the freeze waits for at most this plus one read."""
SLOW_POLL_SECONDS = 30.0
"""Record reads otherwise: a task that missed a switch converges within this."""
STARTUP_POLL_SECONDS = 1.0
STARTUP_WATCH_SECONDS = 60.0
"""For this long after it starts, the agent reads the record every STARTUP_POLL_SECONDS: a task that started just
before a cutover wrote its freeze marker (and that ECS did not yet list as RUNNING) pauses within a second, well
before the NLB's health checks let clients reach it (healthy threshold 3 x 10 s, components/service_pooler.py)."""
PAUSED_CHECK_SECONDS = 0.2
"""How often the agent asks its own PgBouncer whether a pool is paused (the local admin console: no API call)."""
RECORD_MAX_BYTES = 4096
"""SSM Parameter Store, standard tier: a value of at most 4 KB (PutParameter, `Value`)."""

READY = "ready"
"""The first word of the line the agent logs once it has applied the record and watches it."""

log = logging.getLogger("edumatrix.pooler_agent")


class AgentError(RuntimeError):
    """The record cannot be read or is malformed, or PgBouncer refused the change; the message says which."""


# -- the record ------------------------------------------------------------------------------------------------

_HOST = re.compile(r"^[A-Za-z0-9.:_-]{1,253}$")
_DBNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


@dataclass(frozen=True)
class Backend:
    """One PostgreSQL server and database a pool can lead to. Defined here, not in traffic.py, because this file
    is the image's whole agent (pooler-image/): the runner's side imports it from here."""

    host: str
    port: int
    dbname: str

    @property
    def key(self) -> tuple[str, int, str]:
        """(host, port, dbname): how the ini, the backend record and `SHOW DATABASES` name a backend."""
        return self.host, self.port, self.dbname

    @classmethod
    def of(cls, conninfo: str) -> Backend:
        params = psycopg.conninfo.conninfo_to_dict(conninfo)
        return cls(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432) or 5432),
                   str(params.get("dbname", "")))


@dataclass(frozen=True)
class BackendRecord:
    """Where the service's pools lead: one PostgreSQL server and database; `generation` grows with each write.
    `frozen`: a cutover's freeze is under way (the runner's switch sets it once every task it listed is paused and
    clears it just before RESUME); an agent that reads it pauses its own pools until it is cleared."""

    host: str
    port: int
    dbname: str
    generation: int = 0
    frozen: bool = False

    def __post_init__(self) -> None:
        # The values end up on an ini line: refuse anything that could add a key (a space, `=`) to it.
        if not _HOST.match(self.host):
            raise AgentError(f"backend record: host {self.host!r} is not a host name or address")
        if not 0 < self.port < 65536:
            raise AgentError(f"backend record: port {self.port} is out of range")
        if not _DBNAME.match(self.dbname):
            raise AgentError(f"backend record: dbname {self.dbname!r} is not a plain database name")
        if self.generation < 0:
            raise AgentError(f"backend record: generation {self.generation} is negative")

    @property
    def backend(self) -> tuple[str, int, str]:
        return Backend(self.host, self.port, self.dbname).key

    def next(self, host: str, port: int, dbname: str) -> BackendRecord:
        """Another backend, the freeze marker kept."""
        return BackendRecord(host, port, dbname, self.generation + 1, self.frozen)

    def freezing(self, frozen: bool) -> BackendRecord:
        """The same backend with the freeze marker set or cleared."""
        return BackendRecord(self.host, self.port, self.dbname, self.generation + 1, frozen)

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "port": self.port, "dbname": self.dbname,
                           "generation": self.generation, "frozen": self.frozen}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BackendRecord:
        try:
            data = json.loads(text)
            frozen = data.get("frozen", False)
            if not isinstance(frozen, bool):
                raise TypeError(f"frozen is {frozen!r}, not true or false")
            return cls(str(data["host"]), int(data["port"]), str(data["dbname"]), int(data.get("generation", 0)),
                       frozen)
        except (ValueError, TypeError, KeyError) as exc:
            raise AgentError(f"backend record is not JSON with host, port, dbname (and generation): {exc}") from exc


class RecordStore(Protocol):
    """Where the record lives: read by every agent, written by the runner's switch only."""

    def read(self) -> BackendRecord: ...
    def write(self, record: BackendRecord) -> None: ...
    def describe(self) -> str: ...


class FileRecordStore:
    """The record in a file (local drills, `local up`): replaced atomically, so a reader sees old or new."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> BackendRecord:
        try:
            return BackendRecord.from_json(self.path.read_text())
        except OSError as exc:
            raise AgentError(f"cannot read the backend record {self.path}: {exc}") from exc

    def write(self, record: BackendRecord) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(record.to_json() + "\n")
        tmp.chmod(0o644)
        tmp.replace(self.path)

    def describe(self) -> str:
        return str(self.path)


class SsmRecordStore:
    """The record in an SSM Parameter Store `String` parameter (it names hosts, no secret; IAM decides who may
    put it). `client` is a boto3 SSM client."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client

    def read(self) -> BackendRecord:
        try:
            answer = self.client.get_parameter(Name=self.name)
        except Exception as exc:  # botocore's ClientError and connection errors
            raise AgentError(f"cannot read the backend record {self.name} from SSM: {exc}") from exc
        return BackendRecord.from_json(str(answer["Parameter"]["Value"]))

    def write(self, record: BackendRecord) -> None:
        value = record.to_json()
        if len(value.encode()) > RECORD_MAX_BYTES:
            raise AgentError(f"backend record of {len(value.encode())} bytes exceeds SSM's {RECORD_MAX_BYTES}")
        try:
            # The parameter exists (declared with the pooler); Overwrite is required to change it.
            self.client.put_parameter(Name=self.name, Value=value, Overwrite=True)
        except Exception as exc:
            raise AgentError(f"cannot write the backend record {self.name} to SSM: {exc}") from exc

    def describe(self) -> str:
        return f"ssm:{self.name}"


def open_store(where: str, *, region: str | None = None, endpoint_url: str | None = None) -> RecordStore:
    """`ssm:/name` (boto3's SSM client, through `endpoint_url` when given: the ops runner's VPC endpoint) or a
    file path."""
    if where.startswith("ssm:"):
        import boto3  # only where the record is in SSM

        return SsmRecordStore(where.removeprefix("ssm:"),
                              boto3.client("ssm", region_name=region, endpoint_url=endpoint_url))
    return FileRecordStore(Path(where))


# -- PgBouncer's configuration and admin console ----------------------------------------------------------------

def _is_alias_line(line: str, alias: str) -> bool:
    return re.match(rf"^{re.escape(alias)}\s*=", line) is not None


def point_pools(ini: str, aliases: Sequence[str], host: str, port: int, dbname: str) -> str:
    """The ini with the `[databases]` lines of `aliases` leading to host/port/dbname (other keys kept)."""
    out = []
    for line in ini.splitlines():
        if any(_is_alias_line(line, a) for a in aliases):
            line = re.sub(r"\bhost=\S+", f"host={host}", line)
            line = re.sub(r"\bport=\S+", f"port={port}", line)
            line = re.sub(r"\bdbname=\S+", f"dbname={dbname}", line)
        out.append(line)
    return "\n".join(out) + "\n"


def configured_backends(ini: str, aliases: Sequence[str]) -> dict[str, tuple[str, int, str]]:
    """Alias -> (host, port, dbname) as the ini's `[databases]` lines say."""
    out = {}
    for line in ini.splitlines():
        for alias in aliases:
            if _is_alias_line(line, alias):
                fields = dict(re.findall(r"(\w+)=(\S+)", line))
                out[alias] = (fields.get("host", ""), int(fields.get("port", "5432")), fields.get("dbname", alias))
    return out


def write_atomically(path: Path, text: str) -> None:
    """Replace a file in one step, keeping its mode (PgBouncer never reads half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(path.stat().st_mode & 0o777 if path.exists() else 0o600)
    tmp.replace(path)


@dataclass(frozen=True)
class PoolState:
    """One line of `SHOW DATABASES` (PgBouncer 1.18: name, host, port, database, ..., paused, disabled)."""

    name: str
    host: str
    port: int
    database: str
    paused: bool

    @property
    def backend(self) -> tuple[str, int, str]:
        return Backend(self.host, self.port, self.database).key


def admin_connect(conninfo: str, *, timeout: int = 5) -> psycopg.Connection[Any]:
    # The admin console speaks only the simple query protocol: a ClientCursor sends queries as text.
    return psycopg.connect(conninfo, autocommit=True, cursor_factory=psycopg.ClientCursor, connect_timeout=timeout)


def show_databases(conn: psycopg.Connection[Any]) -> dict[str, PoolState]:
    cur = conn.execute("SHOW DATABASES")
    names = [c.name for c in cur.description or ()]
    out = {}
    for row in cur.fetchall():
        r = dict(zip(names, row, strict=True))
        out[str(r["name"])] = PoolState(str(r["name"]), str(r["host"] or ""), int(r["port"] or 0),
                                        str(r["database"] or ""), bool(int(r.get("paused") or 0)))
    return out


# -- the agent -------------------------------------------------------------------------------------------------

class Agent:
    """Keeps one PgBouncer's pools of a service (`aliases`) leading where the record says."""

    def __init__(self, *, ini: Path, admin: str, aliases: Sequence[str], store: RecordStore,
                 fast: float = FAST_POLL_SECONDS, slow: float = SLOW_POLL_SECONDS,
                 paused_check: float = PAUSED_CHECK_SECONDS, started: float | None = None) -> None:
        self.ini = ini
        self.admin = admin
        self.aliases = tuple(aliases)
        self.store = store
        self.fast, self.slow, self.paused_check = fast, slow, paused_check
        self.applied: BackendRecord | None = None
        self.self_paused = False
        """Whether this agent paused the pools itself (a freeze marker): it resumes only those, once cleared."""
        self._started = time.monotonic() if started is None else started
        self._conn: psycopg.Connection[Any] | None = None
        self._last_read = float("-inf")
        self._watching = False

    def _admin(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = admin_connect(self.admin)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def paused(self) -> bool:
        """Whether PgBouncer holds any pool of the service paused (a switch is under way)."""
        pools = show_databases(self._admin())
        return any(pools[a].paused for a in self.aliases if a in pools)

    def read_interval(self, paused: bool, now: float | None = None) -> float:
        if paused:
            return self.fast
        now = time.monotonic() if now is None else now
        return min(self.slow, STARTUP_POLL_SECONDS) if now - self._started < STARTUP_WATCH_SECONDS else self.slow

    def _pools(self, command: str) -> None:
        """PAUSE or RESUME every pool of the service (one already so is left alone)."""
        admin = self._admin()
        states = show_databases(admin)
        for alias in self.aliases:
            if alias in states and states[alias].paused == (command == "PAUSE"):
                continue
            try:
                admin.execute(f"{command} {alias}")
            except psycopg.Error as exc:
                if "already" not in str(exc) and "not paused" not in str(exc):
                    raise

    def follow_freeze(self, record: BackendRecord) -> None:
        """A freeze marker pauses the service's pools (a task started during a cutover serves neither side until
        the switch lands); its clearing resumes them, if this agent paused them (the runner resumes its own)."""
        if record.frozen and not self.self_paused and not self.paused():
            self._pools("PAUSE")
            self.self_paused = True
            log.info("a cutover's freeze is under way (record generation %s): pools %s paused until it ends",
                     record.generation, ",".join(self.aliases))
        elif not record.frozen and self.self_paused:
            self._pools("RESUME")
            self.self_paused = False
            log.info("the freeze ended (record generation %s): pools %s resumed", record.generation,
                     ",".join(self.aliases))

    def apply(self, record: BackendRecord) -> bool:
        """Point the pools where `record` says (rewrite the ini, RELOAD) unless they lead there, paused first while
        the record says a freeze is under way and resumed after once it no longer does; True if the backend
        changed."""
        if record.frozen:
            self.follow_freeze(record)
        changed = self._point(record)
        if not record.frozen:
            self.follow_freeze(record)
        return changed

    def _point(self, record: BackendRecord) -> bool:
        text = self.ini.read_text()
        current = configured_backends(text, self.aliases)
        missing = [a for a in self.aliases if a not in current]
        if missing:
            raise AgentError(f"{self.ini} has no pool {', '.join(missing)}")
        if all(b == record.backend for b in current.values()):
            self.applied = record
            return False
        write_atomically(self.ini, point_pools(text, self.aliases, *record.backend))
        self._admin().execute("RELOAD")
        log.info("pools %s now lead to %s:%s/%s (record generation %s)", ",".join(self.aliases), *record.backend,
                 record.generation)
        self.applied = record
        return True

    def step(self, now: float | None = None) -> bool:
        """One look: read the record if due (often while paused, rarely otherwise) and apply it; True if changed."""
        now = time.monotonic() if now is None else now
        # due at the first look at or after the interval (half a look's spacing of slack: clocks and floats)
        if now - self._last_read < self.read_interval(self.paused(), now) - self.paused_check / 2:
            return False
        self._last_read = now
        return self.apply(self.store.read())

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: apply the record at start, then look every `paused_check` seconds. Errors are logged and
        retried (the runner's switch times out and restores the record if this task never acknowledges)."""
        while not stop.is_set():
            try:
                self.step()
                if not self._watching and self.applied is not None:
                    self._watching = True
                    log.info("%s: watching %s for pools %s, now leading to %s:%s/%s", READY, self.store.describe(),
                             ",".join(self.aliases), *self.applied.backend)
            except (AgentError, OSError, psycopg.Error) as exc:
                log.error("%s", exc)
                self.close()
                self._last_read = float("-inf")  # read again as soon as PgBouncer answers
            stop.wait(self.paused_check)
        self.close()


# -- the image: PgBouncer's files from the task's environment ----------------------------------------------------

ADMIN_USER_ENV = "PGBOUNCER_ADMIN_USER"
NLB_ADDRESSES_ENV = "PGBOUNCER_NLB_ADDRESSES"


def nlb_addresses(env: Mapping[str, str]) -> tuple[str, ...]:
    """`PGBOUNCER_NLB_ADDRESSES` (comma-separated IPv4): where connections through the load balancer come from.
    Required: a task that cannot tell them from the ops runner's would admit the admin console through the NLB."""
    out = []
    for item in _env(env, NLB_ADDRESSES_ENV).split(","):
        try:
            out.append(str(ipaddress.IPv4Address(item.strip())))
        except ValueError:
            raise AgentError(f"{NLB_ADDRESSES_ENV}: {item!r} is not an IPv4 address") from None
    return tuple(out)


def _env(env: Mapping[str, str], key: str) -> str:
    value = env.get(key, "")
    if not value:
        raise AgentError(f"the task's environment lacks {key} (docs/extraction-runbook.md, 'The pooler image')")
    return value


def pools_of(env: Mapping[str, str]) -> dict[str, int]:
    """`PGBOUNCER_POOLS` (`role:size,...`): each login role's server connections in this task."""
    out = {}
    for item in _env(env, "PGBOUNCER_POOLS").split(","):
        role, _, size = item.partition(":")
        if not re.match(r"^[a-z_][a-z0-9_]{0,62}$", role) or not size.isdigit() or int(size) < 1:
            raise AgentError(f"PGBOUNCER_POOLS: {item!r} is not role:size")
        out[role] = int(size)
    return out


def render(env: Mapping[str, str], record: BackendRecord, directory: Path, *,
           ca_file: str = "/etc/pgbouncer/rds-global-bundle.pem") -> dict[str, str]:
    """pgbouncer.ini, hba.conf and userlist.txt (file name -> text) for the task, its pool leading to `record`.

    - One pool, named like the database clients ask for (`PGBOUNCER_DATABASE`); each login role capped at its
      share (`max_user_connections`), the pool at their sum.
    - The admin console: over TCP only the admin user, only over TLS, only with SCRAM (the runner's PAUSE,
      RESUME, SHOW), and never from the load balancer's addresses (`PGBOUNCER_NLB_ADDRESSES`: with client IP
      preservation off every connection through the NLB comes from one of them), so only a direct connection
      reaches it (the task's security group admits the ops runner's group and the NLB's alone); every other user is
      refused the `pgbouncer` database. The agent's RELOAD comes over the
      unix socket (mode 0700 in `directory`) as the user `pgbouncer` of PgBouncer's own Unix user id.
    - Clients: TLS required (the certificate from Secrets Manager); servers verified (`verify-full`)."""
    database = _env(env, "PGBOUNCER_DATABASE")
    admin = _env(env, ADMIN_USER_ENV)
    through_nlb = nlb_addresses(env)
    pools = pools_of(env)
    port = int(env.get("PGBOUNCER_LISTEN_PORT", "6432"))
    passwords = {admin: _env(env, "PGBOUNCER_ADMIN_PASSWORD")}
    passwords.update({role: _env(env, f"PGBOUNCER_PASSWORD_{role.upper()}") for role in pools})
    total = sum(pools.values())
    settings = {
        "listen_addr": "0.0.0.0",
        "listen_port": str(port),
        "unix_socket_dir": str(directory),
        "unix_socket_mode": "0700",
        "auth_type": "hba",
        "auth_hba_file": str(directory / "hba.conf"),
        "auth_file": str(directory / "userlist.txt"),
        "admin_users": admin,
        "pool_mode": env.get("PGBOUNCER_POOL_MODE", "transaction"),
        "max_client_conn": env.get("PGBOUNCER_MAX_CLIENT_CONN", "2000"),
        "default_pool_size": str(total),
        "max_db_connections": str(total),
        "query_wait_timeout": "30",
        "server_idle_timeout": "600",
        "ignore_startup_parameters": "extra_float_digits",
        "client_tls_sslmode": env.get("PGBOUNCER_CLIENT_TLS_SSLMODE", "require"),
        "client_tls_cert_file": str(directory / "tls.crt"),
        "client_tls_key_file": str(directory / "tls.key"),
        "server_tls_sslmode": env.get("PGBOUNCER_SERVER_TLS_SSLMODE", "verify-full"),
        "server_tls_ca_file": ca_file,
        "pidfile": str(directory / "pgbouncer.pid"),
        "log_connections": "0",
        "log_disconnections": "0",
    }
    ini = "\n".join([
        "; rendered by edumatrix_db/ops/pooler_agent.py from the task's environment and the backend record",
        "[databases]",
        f"{database} = host={record.host} port={record.port} dbname={record.dbname}",
        "", "[users]", *(f"{role} = max_user_connections={size}" for role, size in sorted(pools.items())),
        "", "[pgbouncer]", *(f"{k} = {v}" for k, v in settings.items()),
    ]) + "\n"
    roles = ",".join(sorted(pools))
    hba = "\n".join([
        "# rendered by edumatrix_db/ops/pooler_agent.py; first match wins",
        "# the admin console is never reached through the load balancer (its addresses), only directly",
        *(f"host pgbouncer all {address}/32 reject" for address in through_nlb),
        f"hostssl pgbouncer {admin} 0.0.0.0/0 scram-sha-256",
        "host pgbouncer all 0.0.0.0/0 reject",
        f"hostssl {database} {roles} 0.0.0.0/0 scram-sha-256",
        "host all all 0.0.0.0/0 reject",
    ]) + "\n"
    userlist = "".join(f'"{user}" "{password}"\n' for user, password in passwords.items())
    return {"pgbouncer.ini": ini, "hba.conf": hba, "userlist.txt": userlist,
            "tls.crt": _env(env, "PGBOUNCER_TLS_CERTIFICATE"), "tls.key": _env(env, "PGBOUNCER_TLS_KEY")}


# -- command line (the image's entrypoint calls it) ------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pooler_agent", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="write PgBouncer's files from the environment and the record")
    r.add_argument("--dir", type=Path, required=True)
    r.add_argument("--record", required=True, help="ssm:/parameter-name or a file path")
    w = sub.add_parser("run", help="keep the pools leading where the record says")
    w.add_argument("--ini", type=Path, required=True)
    w.add_argument("--admin", required=True, help="the admin console's conninfo (the unix socket in the image)")
    w.add_argument("--alias", action="append", required=True, help="a pool of the service (repeat)")
    w.add_argument("--record", required=True, help="ssm:/parameter-name or a file path")
    w.add_argument("--fast", type=float, default=FAST_POLL_SECONDS)
    w.add_argument("--slow", type=float, default=SLOW_POLL_SECONDS)
    w.add_argument("--paused-check", type=float, default=PAUSED_CHECK_SECONDS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s pooler-agent %(levelname)s %(message)s")
    region = os.environ.get("AWS_REGION")
    try:
        store = open_store(args.record, region=region)
        if args.command == "render":
            args.dir.mkdir(parents=True, exist_ok=True)
            for name, text in render(os.environ, store.read(), args.dir).items():
                path = args.dir / name
                path.write_text(text)
                path.chmod(0o600)
            return 0
        agent = Agent(ini=args.ini, admin=args.admin, aliases=args.alias, store=store, fast=args.fast,
                      slow=args.slow, paused_check=args.paused_check)
    except AgentError as exc:
        log.error("%s", exc)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.run(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
