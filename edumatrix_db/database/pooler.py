"""The local pooler: PgBouncer (Debian's `pgbouncer`, 1.18) in transaction mode in front of the local server,
pooling like RDS Proxy does in production (spec 2.A "connections: pooling").

- Transaction mode: a server connection serves a client for one transaction, then the next client. That is
  why the tenant must be set per transaction (`set_config(..., true)`, docs/tenancy.md): a session `SET`
  stays on the server connection and the next client of it sees it (tests/pg/test_pooler.py shows both).
  RDS Proxy behaves differently: it *pins* a client that runs `SET` to its server connection for the rest of
  the session instead of handing the setting on, so nothing leaks but pooling is lost for that client.
- TLS on both sides: clients verify PgBouncer with the local CA (`sslmode=verify-full`; it presents the
  server's certificate, issued for 127.0.0.1/localhost), PgBouncer verifies the server the same way.
- One pool alias per service and role kind (PgBouncer sizes pools per `[databases]` entry): `<service>` for
  the app role, `<service>_readonly` for the read-only role, each with `pool_size` and `max_db_connections`
  from the catalog, so a service can never hold more server connections than its pool.
- `query_wait_timeout` 30 s (spec: "30 seconds max" wait for a connection); server connections idle for
  10 minutes are closed (spec: idleTimeout "10 minutes").
- PgBouncer 1.18 has no protocol-level prepared statements: a named statement prepared on one server
  connection does not exist on the next. psycopg 3 prepares a statement after 5 executions, so pooled
  clients set `prepare_threshold=None` (connections.json says so under `pooler.clientSettings`).

Files under `<root>/.local/pgbouncer/`: pgbouncer.ini, userlist.txt (mode 0600: the local login passwords,
as in passwords.json), pgbouncer.pid; the log is `.local/log/pgbouncer.log`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg

from config.access import AccessModel, ServiceAccess
from config.naming import RoleKind

if TYPE_CHECKING:
    from edumatrix_db.database.localpg import LocalServer

QUERY_WAIT_TIMEOUT_SECONDS = 30  # spec 2.A timeout "30 seconds max"
SERVER_IDLE_TIMEOUT_SECONDS = 600  # spec 2.A idleTimeout "10 minutes"
PREFERRED_PORT_OFFSET = 1  # PgBouncer tries the server's port + 1 first
CLIENT_SETTINGS = {
    "poolMode": "transaction",
    "prepareThreshold": None,
    "note": "PgBouncer 1.18 keeps no prepared statements across server connections: psycopg clients "
            "connect with prepare_threshold=None; set the tenant per transaction (set_config(..., true))",
}


class PoolerError(RuntimeError):
    """PgBouncer is missing or would not start; the message says what to do."""


@dataclass(frozen=True)
class Pool:
    """One line of PgBouncer's `SHOW POOLS`."""

    database: str
    user: str
    active: int
    waiting: int
    server_connections: int
    max_wait_seconds: int


def alias(access: ServiceAccess, kind: RoleKind) -> str:
    """The pool alias clients name as their database: `<service>` (app) or `<service>_readonly`."""
    return access.service if kind is RoleKind.APP else f"{access.service}_{kind.value}"


POOLED_KINDS = (RoleKind.APP, RoleKind.READONLY)


def service_aliases(model: AccessModel, services: Collection[str]) -> list[str]:
    """The pool aliases of `services` (each pooled role kind's `alias`)."""
    return [alias(a, k) for a in model.services if a.service in services for k in POOLED_KINDS]


def find_pgbouncer() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise PoolerError("pgbouncer not found: install Debian's pgbouncer (`make up` does it as root: "
                          "scripts/prereqs.py), e.g. `apt-get install pgbouncer`")
    return found


class Pooler:
    """PgBouncer for one LocalServer; `directory` and the timeouts can differ (tests run a second one)."""

    def __init__(self, server: LocalServer, *, directory: Path | None = None,
                 query_wait_timeout: int = QUERY_WAIT_TIMEOUT_SECONDS,
                 server_idle_timeout: int = SERVER_IDLE_TIMEOUT_SECONDS,
                 server_tls_sslmode: str = "verify-full") -> None:
        self.server = server
        self.dir = directory or server.base / "pgbouncer"
        self.ini = self.dir / "pgbouncer.ini"
        self.userlist = self.dir / "userlist.txt"
        self.pidfile = self.dir / "pgbouncer.pid"
        self.state_file = self.dir / "state.json"
        self.log_file = server.log_dir / (f"{self.dir.name}.log" if directory else "pgbouncer.log")
        self.query_wait_timeout = query_wait_timeout
        self.server_idle_timeout = server_idle_timeout
        self.server_tls_sslmode = server_tls_sslmode
        """`verify-full` (the server's local CA); the extraction drills' PgBouncers lead to two local servers
        whose CAs share one subject name, which one bundle cannot tell apart: they encrypt with `require`."""

    # -- state -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if not self.state_file.exists():
            raise PoolerError("the pooler was never started; run `edumatrix-db local up`")
        return int(json.loads(self.state_file.read_text())["port"])

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    # -- configuration ---------------------------------------------------------------------------------
    def config(self, model: AccessModel, port: int, kept: Mapping[str, str] | None = None) -> str:
        """pgbouncer.ini: one alias per service and pooled role kind, sized from the catalog; an alias in `kept`
        keeps that line (a pool an extraction switched to its target: `start(keep=...)`)."""
        srv = self.server
        backend = f"host=127.0.0.1 port={srv._port()} dbname={model.database}"
        databases = []
        for access in model.services:
            for kind in POOLED_KINDS:
                name = alias(access, kind)
                if kept and name in kept:
                    databases.append(kept[name])
                    continue
                size = access.role(kind).connection_limit
                databases.append(f"{name} = {backend} pool_size={size} max_db_connections={size}")
        tls = srv.tls
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(port),
            "unix_socket_dir": "",
            "auth_type": "scram-sha-256",
            "auth_file": str(self.userlist),
            "admin_users": srv.admin,
            "stats_users": srv.admin,
            "pool_mode": "transaction",
            "max_client_conn": "2000",
            "default_pool_size": "1",
            "query_wait_timeout": str(self.query_wait_timeout),
            "server_idle_timeout": str(self.server_idle_timeout),
            "ignore_startup_parameters": "extra_float_digits",
            "client_tls_sslmode": "require",
            "client_tls_key_file": str(tls / "server.key"),
            "client_tls_cert_file": str(tls / "server.crt"),
            "client_tls_protocols": "tlsv1.3",  # as the local server (RDS Proxy speaks TLS 1.2: docs)
            "server_tls_sslmode": self.server_tls_sslmode,
            "server_tls_ca_file": str(tls / "ca.crt"),
            "server_tls_protocols": "tlsv1.3",
            "logfile": str(self.log_file),
            "pidfile": str(self.pidfile),
            "log_connections": "0",
            "log_disconnections": "0",
        }
        lines = ["; written by edumatrix-db local up (edumatrix_db/database/pooler.py); edits are overwritten",
                 "[databases]", *databases, "", "[pgbouncer]", *(f"{k} = {v}" for k, v in settings.items())]
        return "\n".join(lines) + "\n"

    def _write(self, path: Path, text: str, mode: int) -> None:
        path.write_text(text)
        path.chmod(mode)
        self.server._give(path)

    # -- start / stop ----------------------------------------------------------------------------------
    def start(self, model: AccessModel, *, preferred_port: int | None = None, keep: Collection[str] = ()) -> int:
        """(Re)write the configuration and start PgBouncer, or reload a running one. Returns its port. The pools of
        the services in `keep` keep the lines the configuration has for them (where they lead, their sizes)."""
        exe = find_pgbouncer()
        srv = self.server
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        srv._give(self.dir)
        passwords = srv.passwords()
        users = [srv.admin, *(a.role(k).name for a in model.services for k in POOLED_KINDS)]
        missing = [u for u in users if u not in passwords]
        if missing:
            raise PoolerError(f"no password for {', '.join(missing)}: apply the access model first (local up)")
        self._write(self.userlist, "".join(f'"{u}" "{passwords[u]}"\n' for u in users), 0o600)
        running = self.is_running()
        port = self.port if running else _free_port(preferred_port or srv._port() + PREFERRED_PORT_OFFSET)
        kept = self.configured_lines(service_aliases(model, keep))
        self._write(self.ini, self.config(model, port, kept), 0o644)
        self.state_file.write_text(json.dumps({"port": port}))
        if self.log_file.exists():
            srv._give(self.log_file)
        if running:
            pid = self.pid()
            assert pid is not None
            os.kill(pid, signal.SIGHUP)  # reload the configuration
            return port
        srv._run([exe, "-d", "-q", str(self.ini)])
        self._wait_until_listening(port)
        return port

    def _wait_until_listening(self, port: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.05)
        log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
        raise PoolerError(f"PgBouncer did not listen on 127.0.0.1:{port} within {timeout:.0f} s\n{log}")

    def stop(self) -> bool:
        """Stop PgBouncer if it runs; True when it was running."""
        pid = self.pid()
        if pid is None or not self.is_running():
            return False
        os.kill(pid, signal.SIGINT)  # immediate shutdown
        deadline = time.monotonic() + 10
        while self.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return True

    # -- clients ---------------------------------------------------------------------------------------
    def uri(self, user: str, password: str, database: str) -> str:
        query = f"sslmode=verify-full&sslrootcert={quote(str(self.server.ca_cert))}"
        return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/"
                f"{quote(database, safe='')}?{query}")

    def connections(self, model: AccessModel) -> dict[str, Any]:
        """What `connections.json` gains: `pooler` (where, how to connect) and per service `pooled` URIs."""
        pw = self.server.passwords()
        return {
            "pooler": {"host": "127.0.0.1", "port": self.port, **CLIENT_SETTINGS,
                       "queryWaitTimeoutSeconds": self.query_wait_timeout},
            "services": {
                a.service: {"pooled": {k.value: self.uri(a.role(k).name, pw[a.role(k).name], alias(a, k))
                                       for k in POOLED_KINDS}}
                for a in model.services
            },
        }

    def configured_lines(self, aliases: Collection[str]) -> dict[str, str]:
        """Alias -> its whole `[databases]` line in pgbouncer.ini, for those of `aliases` it has."""
        out: dict[str, str] = {}
        for line in self.ini.read_text().splitlines() if aliases and self.ini.exists() else ():
            name, sep, _ = line.partition("=")  # `alias = key=value ...`, as the pooler agent reads it
            if sep and name.strip() in aliases:
                out[name.strip()] = line
        return out

    def configured(self) -> dict[str, int]:
        """Alias -> pool size, as written in pgbouncer.ini."""
        out: dict[str, int] = {}
        for line in self.ini.read_text().splitlines() if self.ini.exists() else ():
            name, sep, rest = line.partition(" = host=")
            if sep and "pool_size=" in rest:
                out[name] = int(rest.split("pool_size=")[1].split()[0])
        return out

    def pools(self) -> list[Pool]:
        """`SHOW POOLS` from PgBouncer's admin console (as the local admin, over TLS)."""
        srv = self.server
        uri = self.uri(srv.admin, srv.passwords()[srv.admin], "pgbouncer")
        # The admin console speaks only the simple query protocol: a ClientCursor sends the query as text.
        with psycopg.connect(uri, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            cur = conn.execute("SHOW POOLS")
            names = [c.name for c in cur.description or ()]
            rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        return [Pool(r["database"], r["user"], int(r["cl_active"]), int(r["cl_waiting"]),
                     int(r["sv_idle"]) + int(r["sv_active"]) + int(r["sv_used"]), int(r["maxwait"]))
                for r in rows if r["database"] != "pgbouncer"]


def _free_port(preferred: int) -> int:
    """`preferred` if it is free, else any free port (0: any)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def merge_connections(connections: dict[str, Any], pooled: dict[str, Any]) -> dict[str, Any]:
    """connections.json with the pooler's keys added beside the existing ones (none is removed)."""
    merged = {**connections, "pooler": pooled["pooler"]}
    merged["services"] = {name: {**entry, **pooled["services"].get(name, {})}
                          for name, entry in connections["services"].items()}
    return merged


def up(server: LocalServer, model: AccessModel, *, keep: Collection[str] = ()) -> tuple[Pooler, int]:
    """Start (or reload) the pooler and add its URIs to connections.json; the pools of the services in `keep` stay
    where the configuration leads them (`Pooler.start`)."""
    pooler = Pooler(server)
    port = pooler.start(model, keep=keep)
    data = json.loads(server.connections_file.read_text())
    server.connections_file.write_text(json.dumps(merge_connections(data, pooler.connections(model)), indent=2) + "\n")
    server.connections_file.chmod(0o600)
    return pooler, port
