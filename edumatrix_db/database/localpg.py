"""A local PostgreSQL provisioned like production: TLS only, the access model applied, audit on.

Layout under `<root>/.local/` (root = the project checkout unless overridden, e.g. by tests):
    pgdata/            the cluster (owned by the OS user the server runs as)
    tls/               ca.crt (clients verify against it), ca.key, server.crt, server.key
    run/               the Unix socket (mode 0700: only the server's OS user, used for bootstrap)
    log/postgresql.log the server log (connections, pgaudit lines)
    state.json         port, binaries and version of the running cluster
    passwords.json     passwords of the admin and service login roles (mode 0600)
    connections.json   the interface for service teams (see `connections()`)

Differences from RDS (documented in docs/local-database.md): locally a bootstrap superuser exists (reached
only through the Unix socket); it creates the admin role, the database and the extensions. Everything else
is applied by the admin role (database owner + CREATEROLE, no superuser), as on RDS.

PostgreSQL refuses to run as root. When this runs as root (CI), the server runs as the `postgres` system
user (created by Debian's postgresql packages) and the data and key files are handed to it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from config.access import AUDIT_ROLE, AccessModel, build_access_model
from config.loader import PROJECT_ROOT
from config.maintenance import AUTOVACUUM_PARAMETERS, PG_CRON, cron_parameters
from config.naming import quote_ident
from config.parameters import LOG_MIN_ERROR_STATEMENT, LOG_PARAMETER_MAX_LENGTH
from config.scram import verifier_matches
from config.settings import InstanceSettings
from edumatrix_db.database import cron, drift, events, fence, guard, sql

BOOTSTRAP_SUPERUSER = "postgres"
DEFAULT_PORT = 54329
SERVER_USER_WHEN_ROOT = "postgres"



def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only (0600), never readable by others even for a moment
    (`write_text` then `chmod` would leave a freshly created file world-readable in between)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # an existing file keeps its mode through O_CREAT
        handle.write(text)

class LocalServerError(RuntimeError):
    """The local server could not be found, set up or reached; the message says what to do."""


@dataclass(frozen=True)
class Binaries:
    bindir: Path
    version: str  # e.g. "15.14"
    source: str  # "PATH", "/usr/lib/postgresql", "pgserver"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    def exe(self, name: str) -> str:
        return str(self.bindir / name)

    def pkglibdir(self) -> Path | None:
        pg_config = self.bindir / "pg_config"
        if pg_config.exists():
            out = subprocess.run([str(pg_config), "--pkglibdir"], capture_output=True, text=True, check=False)
            if out.returncode == 0:
                return Path(out.stdout.strip())
        for cand in (self.bindir.parent / "lib" / "postgresql", self.bindir.parent / "lib"):
            if (cand / "plpgsql.so").exists():
                return cand
        return None

    def has_ssl(self) -> bool:
        """Whether the server was built with OpenSSL (the pgserver wheel is not)."""
        pg_config = self.bindir / "pg_config"
        if not pg_config.exists():
            return True  # cannot tell; the server's start will say so if not
        out = subprocess.run([str(pg_config), "--configure"], capture_output=True, text=True, check=False)
        return "openssl" in out.stdout or "with-ssl" in out.stdout

    def has_library(self, name: str) -> bool:
        lib = self.pkglibdir()
        return lib is not None and (lib / f"{name}.so").exists()


def _version(bindir: Path) -> str | None:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=False, timeout=10
        )
    except OSError:
        return None
    m = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    return f"{m[1]}.{m[2] or 0}" if out.returncode == 0 and m else None


def find_binaries(
    *, path: str | None = None, debian_root: Path = Path("/usr/lib/postgresql"), use_pgserver: bool = True
) -> Binaries:
    """PostgreSQL server binaries: on PATH, else the highest /usr/lib/postgresql/*/bin, else `pgserver`.

    `EDUMATRIX_PG_BINDIR` forces a directory (e.g. to try the pgserver wheel's binaries).
    """
    forced = os.environ.get("EDUMATRIX_PG_BINDIR")
    if forced:
        version = _version(Path(forced))
        if not version:
            raise LocalServerError(f"EDUMATRIX_PG_BINDIR={forced} holds no runnable postgres")
        return Binaries(Path(forced), version, "EDUMATRIX_PG_BINDIR")
    on_path = shutil.which("pg_ctl", path=path)
    if on_path:
        bindir = Path(on_path).resolve().parent
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            version = _version(bindir)
            if version:
                return Binaries(bindir, version, "PATH")
    found: list[tuple[int, Path]] = []
    for cand in debian_root.glob("*/bin"):
        if cand.parent.name.isdigit() and (cand / "pg_ctl").exists() and (cand / "initdb").exists():
            found.append((int(cand.parent.name), cand))
    for _, bindir in sorted(found, reverse=True):
        version = _version(bindir)
        if version:
            return Binaries(bindir, version, str(debian_root))
    if not use_pgserver:
        raise LocalServerError(f"no PostgreSQL server found on PATH or under {debian_root}/*/bin")
    try:
        import pgserver  # optional fallback
    except ImportError:
        raise LocalServerError(
            "no PostgreSQL server found (looked on PATH and under /usr/lib/postgresql/*/bin); install the "
            "Debian packages postgresql-15 postgresql-15-pgaudit, or `pip install pgserver` (no pgaudit, "
            "no pgcrypto)"
        ) from None
    bindir = Path(pgserver.__file__).parent / "pginstall" / "bin"
    version = _version(bindir)
    if not version:
        raise LocalServerError(f"the pgserver wheel's binaries at {bindir} do not run")
    return Binaries(bindir, version, "pgserver")


@dataclass
class State:
    port: int
    bindir: str
    version: str
    source: str
    pgaudit: bool
    server_user: str
    tls: bool = True


class LocalServer:
    """One local cluster under `<root>/.local`."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        database: str = "edumatrix",
        admin: str = "edumatrix_admin",
        max_connections: int = 500,
        preferred_port: int = DEFAULT_PORT,
        ssl_min_protocol_version: str = InstanceSettings().ssl_min_protocol_version,
        temp_file_limit_mb: int = InstanceSettings().temp_file_limit_mb,
    ) -> None:
        self.root = (root or PROJECT_ROOT).resolve()
        self.base = self.root / ".local"
        self.pgdata = self.base / "pgdata"
        self.tls = self.base / "tls"
        self.run_dir = self.base / "run"
        self.log_dir = self.base / "log"
        self.log_file = self.log_dir / "postgresql.log"
        self.state_file = self.base / "state.json"
        self.passwords_file = self.base / "passwords.json"
        self.connections_file = self.base / "connections.json"
        self.database = database
        self.admin = admin
        self.max_connections = max_connections
        self.preferred_port = preferred_port
        self.ssl_min_protocol_version = ssl_min_protocol_version
        self.temp_file_limit_mb = temp_file_limit_mb

    # -- who runs the server ---------------------------------------------------------------------------
    def _server_ids(self) -> tuple[int, int] | None:
        """(uid, gid) to run the server as when we are root; None when we are not root."""
        if os.geteuid() != 0:
            return None
        try:
            pw = pwd.getpwnam(SERVER_USER_WHEN_ROOT)
        except KeyError:
            raise LocalServerError(
                f"running as root, but there is no {SERVER_USER_WHEN_ROOT!r} system user to run PostgreSQL "
                "as (PostgreSQL refuses root); install postgresql-15 or `useradd --system postgres`"
            ) from None
        return pw.pw_uid, pw.pw_gid

    @property
    def server_user(self) -> str:
        ids = self._server_ids()
        return pwd.getpwuid(ids[0] if ids else os.geteuid()).pw_name

    def _give(self, path: Path) -> None:
        ids = self._server_ids()
        if ids:
            os.chown(path, *ids)

    def _run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        ids = self._server_ids()
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        if ids:
            kwargs.update(user=ids[0], group=ids[1], extra_groups=[])
            env["HOME"] = str(self.base)
        proc = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            cwd=str(self.base),
            check=False,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise LocalServerError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc

    # -- state -----------------------------------------------------------------------------------------
    def state(self) -> State | None:
        if not self.state_file.exists():
            return None
        return State(**json.loads(self.state_file.read_text()))

    def is_running(self) -> bool:
        state = self.state()
        if state is None or not (self.pgdata / "PG_VERSION").exists():
            return False
        proc = self._run([str(Path(state.bindir) / "pg_ctl"), "status", "-D", str(self.pgdata)], check=False)
        return proc.returncode == 0

    def passwords(self) -> dict[str, str]:
        if not self.passwords_file.exists():
            return {}
        data: dict[str, str] = json.loads(self.passwords_file.read_text())
        return data

    def _save_passwords(self, passwords: dict[str, str]) -> None:
        write_private(self.passwords_file, json.dumps(passwords, indent=2, sort_keys=True))

    def _check_server_can_reach_base(self) -> None:
        """As root the server runs as another user, who must be able to traverse every parent directory."""
        ids = self._server_ids()
        if ids is None:
            return
        uid, gid = ids
        for directory in [*reversed(self.base.parents)]:
            if not directory.exists():
                break  # created below with the default (traversable) mode
            st = directory.stat()
            mode = st.st_mode
            can = (st.st_uid == uid and mode & stat.S_IXUSR) or (st.st_gid == gid and mode & stat.S_IXGRP) \
                or (mode & stat.S_IXOTH)
            if not can:
                raise LocalServerError(
                    f"PostgreSQL runs as {SERVER_USER_WHEN_ROOT!r} here (it refuses root) and cannot enter "
                    f"{directory} (mode {stat.S_IMODE(mode):04o}); run from a checkout outside it, use "
                    f"--root to put .local/ elsewhere, or `chmod o+x {directory}`"
                )

    # -- set up ----------------------------------------------------------------------------------------
    def start(self) -> tuple[State, list[str]]:
        """Create (if needed) and start the cluster. Returns the state and notes for the user."""
        notes: list[str] = []
        self._check_server_can_reach_base()
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        for d in (self.run_dir, self.log_dir):
            d.mkdir(exist_ok=True)
            self._give(d)
        self.run_dir.chmod(0o700)
        previous = self.state()
        if self.is_running() and previous is not None:
            notes.append(f"server already running on port {previous.port}")
            return previous, notes
        bins = find_binaries()
        pgaudit = bins.has_library("pgaudit")
        tls = bins.has_ssl()
        if not tls:
            notes.append(
                f"WARNING: {bins.source} PostgreSQL {bins.version} was built without SSL: TLS is OFF, "
                "the URIs use sslmode=disable (production requires TLS; install postgresql-15)"
            )
        if not pgaudit:
            notes.append(
                f"WARNING: {bins.source} PostgreSQL {bins.version} has no pgaudit: audit logging "
                f"is OFF (install postgresql-{bins.major}-pgaudit)"
            )
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            self.pgdata.mkdir(mode=0o700)
            self._give(self.pgdata)
            if self.passwords_file.exists():
                self.passwords_file.unlink()  # a new cluster has new roles
            self._run(
                [
                    bins.exe("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    BOOTSTRAP_SUPERUSER,
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=reject",
                    "--no-sync",
                ]
            )
            notes.append(f"initialised a new cluster in {self.pgdata}")
            with (self.pgdata / "postgresql.conf").open("a") as f:
                f.write("\ninclude_if_exists = 'edumatrix.conf'\n")
        self._certificates()
        port = previous.port if previous and _port_free(previous.port) else self._pick_port()
        self._write_conf(port, pgaudit, tls, bins.has_library("pg_stat_statements"))
        state = State(
            tls=tls,
            port=port,
            bindir=str(bins.bindir),
            version=bins.version,
            source=bins.source,
            pgaudit=pgaudit,
            server_user=self.server_user,
        )
        self.state_file.write_text(json.dumps(asdict(state), indent=2))
        if self.log_file.exists():
            self._give(self.log_file)
        self._run(
            [bins.exe("pg_ctl"), "start", "-D", str(self.pgdata), "-l", str(self.log_file), "-w", "-t", "60"]
        )
        return state, notes

    def _pick_port(self) -> int:
        if _port_free(self.preferred_port):
            return self.preferred_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
            return port

    def _write_conf(
        self, port: int, pgaudit: bool, tls: bool = True, pg_stat_statements: bool = True
    ) -> None:
        libs = [name for name, ok in (("pg_stat_statements", pg_stat_statements), ("pgaudit", pgaudit)) if ok]
        with_cron = find_binaries().has_library(PG_CRON)  # scheduled maintenance as on RDS (config/maintenance.py)
        libs += [PG_CRON] if with_cron else []
        lines = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(port),
            "unix_socket_directories": f"'{self.run_dir}'",
            "unix_socket_permissions": "0700",
            "max_connections": str(self.max_connections),
            "password_encryption": "'scram-sha-256'",
            "shared_preload_libraries": f"'{','.join(libs)}'",
            "log_connections": "on",
            "log_disconnections": "on",
            "log_line_prefix": "'%t:%r:%u@%d:[%p]:'",  # RDS's fixed prefix, so log lines read as on RDS
            "log_min_duration_statement": "100",
            # The log hygiene of the RDS parameter group (config/parameters.py): no bind parameters in logged
            # statements, no text of failed statements, a cap on one session's temporary files.
            "log_parameter_max_length": LOG_PARAMETER_MAX_LENGTH,
            "log_min_error_statement": LOG_MIN_ERROR_STATEMENT,
            "temp_file_limit": f"'{self.temp_file_limit_mb}MB'",
            "fsync": "off",  # a local, disposable database; never a setting of a real stack
            # rds.logical_replication=1 in the RDS parameter group (config/parameters.py): service extraction
            # replicates a schema to another instance by logical replication (docs/extraction-runbook.md).
            "wal_level": "logical",
            **{name: f"'{value}'" for name, value in AUTOVACUUM_PARAMETERS},
        }
        if with_cron:  # RDS runs pg_cron jobs in background workers (not modifiable there): the same here
            cron_lines = (*cron_parameters(self.database), ("cron.use_background_workers", "on"))
            lines.update({name: f"'{value}'" for name, value in cron_lines})
        if tls:
            lines.update(
                {
                    "ssl": "on",
                    "ssl_cert_file": f"'{self.tls / 'server.crt'}'",
                    "ssl_key_file": f"'{self.tls / 'server.key'}'",
                    # The stack's floor, as on RDS (default TLSv1.2); PostgreSQL negotiates 1.3 when the client can.
                    "ssl_min_protocol_version": f"'{self.ssl_min_protocol_version}'",
                }
            )
        if pgaudit:
            lines.update(
                {"pgaudit.log": "'ddl,role'", "pgaudit.log_relation": "on", "pgaudit.log_parameter": "off",
                 "pgaudit.role": f"'{AUDIT_ROLE}'"}
            )
        conf = "# written by edumatrix-db local up; edits are overwritten\n"
        conf += "".join(f"{k} = {v}\n" for k, v in lines.items())
        (self.pgdata / "edumatrix.conf").write_text(conf)
        tcp = (
            "hostssl   all  all  127.0.0.1/32   scram-sha-256\n"
            "hostnossl all  all  0.0.0.0/0      reject\n"
            "hostnossl all  all  ::/0           reject\n"
            if tls
            else "# WARNING: this server was built without SSL; TCP is not encrypted\n"
            "host      all  all  127.0.0.1/32   scram-sha-256\n"
        )
        (self.pgdata / "pg_hba.conf").write_text(
            "# written by edumatrix-db local up: TCP only over TLS with SCRAM; the Unix socket (mode 0700,\n"
            "# reachable only by the server's OS user) is the bootstrap superuser's way in.\n"
            "local     all  all                 trust\n" + tcp
        )
        for f in ("edumatrix.conf", "pg_hba.conf"):
            self._give(self.pgdata / f)

    def _certificates(self) -> None:
        """A CA and a server certificate for 127.0.0.1/localhost (kept across runs)."""
        self.tls.mkdir(exist_ok=True)
        self.tls.chmod(0o755)
        if (self.tls / "server.crt").exists() and (self.tls / "ca.crt").exists():
            return
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edumatrix-db local CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=397))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        pkcs8 = serialization.PrivateFormat.PKCS8
        none = serialization.NoEncryption()
        files = {
            "ca.key": (ca_key.private_bytes(pem, pkcs8, none), 0o600, False),
            "ca.crt": (ca.public_bytes(pem), 0o644, False),
            "server.key": (key.private_bytes(pem, pkcs8, none), 0o600, True),
            "server.crt": (cert.public_bytes(pem), 0o644, True),
        }
        for name, (data, mode, server_owned) in files.items():
            path = self.tls / name
            path.write_bytes(data)
            path.chmod(mode)
            if server_owned:
                self._give(path)

    @property
    def ca_cert(self) -> Path:
        return self.tls / "ca.crt"

    # -- connections -----------------------------------------------------------------------------------
    def bootstrap_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.run_dir} port={self._port()} user={BOOTSTRAP_SUPERUSER} dbname={dbname}"

    def _port(self) -> int:
        state = self.state()
        if state is None:
            raise LocalServerError("the local server was never started; run `edumatrix-db local up`")
        return state.port

    def uri(self, user: str, password: str, dbname: str | None = None) -> str:
        state = self.state()
        tls = state.tls if state else True
        query = f"sslmode=verify-full&sslrootcert={quote(str(self.ca_cert))}" if tls else "sslmode=disable"
        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self._port()}/"
            f"{quote(dbname or self.database, safe='')}?{query}"
        )

    def bootstrap(self) -> list[str]:
        """As the bootstrap superuser: the admin role, the database, the extensions. Idempotent."""
        changes: list[str] = []
        passwords = self.passwords()
        with psycopg.connect(self.bootstrap_conninfo(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [self.admin]).fetchone() is None:
                conn.execute(f"CREATE ROLE {quote_ident(self.admin)} LOGIN CREATEROLE".encode())
                changes.append(f"created admin role {self.admin}")
            if self.admin not in passwords:
                passwords[self.admin] = sql.new_password()
                sql.set_password(conn, self.admin, passwords[self.admin])
                self._save_passwords(passwords)
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database]).fetchone()
            if exists is None:
                conn.execute(
                    f"CREATE DATABASE {quote_ident(self.database)} OWNER {quote_ident(self.admin)}".encode()
                )
                changes.append(f"created database {self.database}")
        with psycopg.connect(self.bootstrap_conninfo(self.database), autocommit=True) as conn:
            available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions").fetchall()}
            conn.execute(
                f"CREATE SCHEMA IF NOT EXISTS extensions AUTHORIZATION {quote_ident(self.admin)}".encode()
            )
            cron_here = conn.execute("SELECT current_setting('cron.database_name', true) = current_database()")
            extensions = [("pgcrypto", "extensions"), ("pgaudit", None), ("pg_stat_statements", "extensions"),
                          ("pgstattuple", "extensions")]  # statements and bloat for docs/health
            extensions += [(PG_CRON, None)] if cron_here.fetchone() == (True,) else []
            for name, schema in extensions:
                if name not in available:
                    continue  # the access model's apply reports it
                if conn.execute("SELECT 1 FROM pg_extension WHERE extname = %s", [name]).fetchone() is None:
                    where = f" SCHEMA {quote_ident(schema)}" if schema else ""
                    conn.execute(f'CREATE EXTENSION "{name}"{where}'.encode())  # names: the constants above
                    changes.append(f"created extension {name}")
            # docs/health read statistics of every service (pg_read_all_stats, pg_stat_scan_tables)
            conn.execute(f"GRANT pg_monitor TO {quote_ident(self.admin)}".encode())
        return changes

    def admin_uri(self) -> str:
        return self.uri(self.admin, self.passwords()[self.admin])

    def superuser(self, dbname: str | None = None) -> psycopg.Connection[Any]:
        """The bootstrap superuser, over the Unix socket (only the server's OS user reaches it)."""
        return psycopg.connect(self.bootstrap_conninfo(dbname or self.database), autocommit=True)

    def apply(
        self, model: AccessModel, *, destructive: bool = False, revoke_foreign: bool = False
    ) -> sql.ApplyReport:
        """Apply the access model as the admin (over TLS), then, as the bootstrap superuser, what only a
        superuser may do: roles with BYPASSRLS or REPLICATION, the advisory-lock lock-down, the grant
        guard; check every login's password against the one in passwords.json (a role may change its own)."""
        with psycopg.connect(self.admin_uri(), autocommit=True) as conn, self.superuser() as su:
            guarded = [] if _guard_current(su, model) else guard.install_guard(su, model)
            report = sql.apply(conn, model, destructive=destructive, revoke_foreign=revoke_foreign, privileged=su)
            passwords = self.passwords()
            for role in model.all_roles:
                if not role.login:
                    continue
                reserved = role.replication or role.bypass_row_level_security
                if role.name not in passwords:
                    passwords[role.name] = sql.new_password()
                    sql.set_password(su if reserved else conn, role.name, passwords[role.name])
                    report.changes.append(f"ALTER ROLE {role.name} PASSWORD <new>")
                elif not _password_matches(su, role.name, passwords[role.name]):
                    sql.set_password(su if reserved else conn, role.name, passwords[role.name])
                    report.changes.append(f"ALTER ROLE {role.name} PASSWORD <from passwords.json>")
                    report.warnings.append(
                        f"the password of {role.name} had been changed outside the platform (a role may change "
                        "its own): reset to the one in connections.json"
                    )
            self._save_passwords(passwords)
            report.changes += guard.lock_down_functions(su, model)
            report.changes += guard.revoke_public_connect_elsewhere(su, model.database)
            for other in ("postgres", "template1"):  # new databases copy template1
                with self.superuser(other) as conn_other:
                    report.changes += guard.lock_down_functions(conn_other, model)
            report.changes += guarded
        return report

    def connections(self, model: AccessModel) -> dict[str, Any]:
        """The shape other teams build on:
        {"admin": URI, "database": NAME, "services": {SERVICE: {"schema": NAME,
         "roles": {"migrator": URI, "app": URI, "readonly": URI[, "gdpr": URI]}}}}  (gdpr: docs/gdpr.md)"""
        pw = self.passwords()
        return {
            "admin": self.admin_uri(),
            "database": self.database,
            "services": {
                s.service: {
                    "schema": s.schema,
                    "roles": {r.kind.value: self.uri(r.name, pw[r.name]) for r in s.login_roles},
                }
                for s in model.services
            },
            # the platform's own logins (docs/platform-roles.md): never given to a service
            "platform": {r.kind.value: self.uri(r.name, pw[r.name]) for r in model.platform.roles if r.login},
        }

    def write_connections(self, model: AccessModel, connections: dict[str, Any] | None = None) -> Path:
        """Write `.local/connections.json` (it holds passwords: mode 0600 from the moment it exists)."""
        write_private(self.connections_file, json.dumps(connections or self.connections(model), indent=2) + "\n")
        return self.connections_file

    # -- stop ------------------------------------------------------------------------------------------
    def stop(self) -> bool:
        """Stop the server if it runs; True when it was running."""
        from edumatrix_db.database.pooler import Pooler

        Pooler(self).stop()  # the pooler in front of it first
        state = self.state()
        if state is None or not self.is_running():
            return False
        self._run([str(Path(state.bindir) / "pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w"])
        return True


def _password_matches(su: psycopg.Connection[Any], role: str, password: str) -> bool:
    """Whether the role's stored SCRAM verifier is the one the platform set (superuser: reads pg_authid)."""
    row = su.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [role]).fetchone()
    return row is not None and verifier_matches(str(row[0]), password)


def _guard_current(su: psycopg.Connection[Any], model: AccessModel) -> bool:
    """The guard is installed, enabled, and its function is the one this model renders."""
    row = su.execute(
        "SELECT e.evtenabled, p.prosrc FROM pg_event_trigger e JOIN pg_proc p ON p.oid = e.evtfoid "
        "WHERE e.evtname = %s",
        [drift.GUARD_TRIGGER],
    ).fetchone()
    if row is None or row[0] not in ("O", "A"):
        return False
    create = next(stmt for stmt in guard.guard_sql(model) if stmt.startswith("CREATE OR REPLACE FUNCTION"))
    return bool(row[1]) and row[1] in create


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def up(
    root: Path | None = None,
    model: AccessModel | None = None,
    *,
    apply_model: bool = True,
    destructive: bool = False,
    revoke_foreign: bool = False,
    **server_kwargs: Any,
) -> tuple[LocalServer, State, list[str]]:
    """Start (or reuse) the local server, bootstrap it, apply the access model, write connections.json."""
    model = model or build_access_model(_default_catalog())
    server = LocalServer(root, database=model.database, **server_kwargs)
    state, notes = server.start()
    notes += server.bootstrap()
    if apply_model:
        with server.superuser() as conn:
            kept = fence.fenced_services(conn, model)
        notes += [f"{service}: its schema here carries an extraction's fence (writes revoked, migrator NOLOGIN: a "
                  f"cutover moved it to its own instance); kept, and its pools left where they lead; before `finish`, "
                  f"`edumatrix-db extract {service} rollback` brings it back" for service in kept]
        report = server.apply(fence.keep_fences(model, kept), destructive=destructive, revoke_foreign=revoke_foreign)
        with psycopg.connect(server.bootstrap_conninfo(model.database), autocommit=True) as conn:
            notes += cron.apply_cron_access(conn, model)  # pg_cron's schema belongs to the superuser
        with psycopg.connect(server.admin_uri(), autocommit=True) as conn:  # outboxes, inboxes, publications
            notes += events.apply_events(conn, model)
        with server.superuser() as conn:  # what was just created in a fenced schema got the app role's writes
            for access in model.services:
                if access.service in kept:
                    fence.set_fence(conn, access, fenced=True)
        notes.append(f"access model: {len(report.changes)} change(s)")
        notes += [f"WARNING: {w}" for w in report.warnings]
        notes += [f"found ({d.rule}{', ' + d.service if d.service else ''}): {d.object}: {d.message}; fix: "
                  f"{d.fix}" for d in report.findings]
        notes += [f"orphan (left alone; pass --destructive to drop): {o}" for o in report.orphans]
        notes += [f"dropped: {d}" for d in report.dropped]
        server.write_connections(model)
        from edumatrix_db.database import pooler

        unkept = _pools_without_lines(server, model, kept)
        notes += [f"WARNING: pgbouncer.ini has no line for {alias}: the pool of a fenced service now leads to this "
                  "server again" for alias in unkept]
        _, port = pooler.up(server, model, keep=kept)  # PgBouncer in front, its URIs added to connections.json
        notes.append(f"pooler: PgBouncer on 127.0.0.1:{port} (transaction mode, TLS, one pool per service)")
    return server, state, notes


def _pools_without_lines(server: LocalServer, model: AccessModel, services: Sequence[str]) -> list[str]:
    """The pool aliases of `services` that the pooler's configuration has no line for (nothing to keep)."""
    from edumatrix_db.database import pooler

    aliases = pooler.service_aliases(model, services)
    found = pooler.Pooler(server).configured_lines(aliases)
    return [a for a in aliases if a not in found]


def _default_catalog() -> Any:
    from config.catalog import load_catalog

    return load_catalog()
