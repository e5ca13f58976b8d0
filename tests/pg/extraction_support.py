"""Two real PostgreSQL servers (wal_level=logical), PgBouncer in front, and a writer through it: the stage of
the extraction drills (tests/pg/test_extraction.py) and of bench/extraction_bench.py.

The source is provisioned like the shared instance (the whole access model); the target like a fresh
instance of its own (bootstrap only: `clone-schema` applies the service's part of the model). The service's
login passwords on the target are the source's (in production: the service's secret, which the target's
roles are created with), so the pooler logs in to either side with the same credentials.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg

from config.access import build_access_model
from config.catalog import load_catalog
from edumatrix_db.database import localpg, tenancy
from edumatrix_db.database import sql as access_sql
from edumatrix_db.database.pooler import Pooler
from edumatrix_db.ops.extract import Extraction, pooled_aliases, service_model
from edumatrix_db.ops.pooler_agent import READY, BackendRecord, FileRecordStore, admin_connect, show_databases
from edumatrix_db.ops.traffic import (
    AgentPoolerSet,
    Backend,
    PgBouncerConsole,
    PgBouncerSwitch,
    PoolerSet,
    TrafficSwitch,
)
from tests.pg.conftest import free_port, scratch_root

SERVICE = "feedback"
SCHEMA = "feedback_schema"
ITEMS = "feedback_item"
VOTES = "feedback_vote"


def _port_of(server: localpg.LocalServer) -> int:
    return server._port()


@dataclass
class Bouncer:
    """A PgBouncer of the drills, in transaction mode, run as the servers' OS user."""

    server: localpg.LocalServer
    directory: Path
    port: int
    ini: Path

    def admin_uri(self) -> str:
        pw = self.server.passwords()[self.server.admin]
        return f"postgresql://{self.server.admin}:{quote(pw, safe='')}@127.0.0.1:{self.port}/pgbouncer?sslmode=require"

    def client_uri(self, role: str, password: str, alias: str) -> str:
        return f"postgresql://{role}:{quote(password, safe='')}@127.0.0.1:{self.port}/{alias}?sslmode=require"

    agent: subprocess.Popen[bytes] | None = None
    """Its pooler agent (edumatrix_db/ops/pooler_agent.py run as the image runs it), when the stage has agents."""

    def start_agent(self, record: Path, aliases: tuple[str, ...]) -> None:
        """Run the agent beside this PgBouncer, as the image's entrypoint does (here over the admin console's TCP
        port: the test runs under another Unix user than PgBouncer, so the unix-socket login is not open to it)."""
        self.agent_log = self.server.log_dir / f"{self.directory.name}-agent.log"
        log = self.agent_log.open("ab")
        command = [sys.executable, "-m", "edumatrix_db.ops.pooler_agent", "run", "--ini", str(self.ini),
                   "--admin", self.admin_uri(), "--record", str(record)]
        for alias in aliases:
            command += ["--alias", alias]
        self.agent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    agent_log: Path | None = None

    def wait_agent_ready(self, timeout: float = 30.0) -> None:
        """Until the agent has applied the record and watches it (its log says so)."""
        deadline, text = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            text = self.agent_log.read_text() if self.agent_log and self.agent_log.exists() else ""
            if f"{READY}: watching" in text:
                return
            if self.agent is not None and self.agent.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the pooler agent of {self.directory.name} is not watching its record: {text[-2000:]}")

    def stop_agent(self) -> None:
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGCONT)  # a test may have stopped it
            self.agent.terminate()
            self.agent.wait(10)

    def serving(self, aliases: tuple[str, ...]) -> tuple[str, int, str] | None:
        """The backend every pool of `aliases` runs with (`SHOW DATABASES`), None when they differ."""
        with admin_connect(self.admin_uri()) as conn:
            pools = show_databases(conn)
        backends = {pools[a].backend for a in aliases}
        return backends.pop() if len(backends) == 1 else None

    def paused(self, aliases: tuple[str, ...]) -> bool:
        """Whether any pool of `aliases` is paused in this PgBouncer (`SHOW DATABASES`, column `paused`)."""
        with admin_connect(self.admin_uri()) as conn:
            pools = show_databases(conn)
        return any(pools[a].paused for a in aliases if a in pools)

    def pid(self) -> int | None:
        try:
            return int((self.directory / "pgbouncer.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        import os

        pid = self.pid()
        if pid:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                return
            for _ in range(200):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.02)


def start_bouncer(source: localpg.LocalServer, target: localpg.LocalServer, service: str,
                  name: str = "drill-pgbouncer") -> Bouncer:
    """A PgBouncer whose pools lead to the source; `name` names its directory and log (several may run).
    Rendered and started by the local pooler module (edumatrix_db/database/pooler.py, as `local up` does: every
    service's pools, TLS 1.3 to clients), with clients waiting up to 60 s in a paused pool, and encrypting to both
    servers without verifying them (the two local CAs share one subject name, so OpenSSL cannot tell them apart in
    one bundle; production verifies against the RDS CA bundle)."""
    pooler = Pooler(source, directory=source.base / name, query_wait_timeout=60, server_tls_sslmode="require")
    port = pooler.start(build_access_model(load_catalog()), preferred_port=free_port())
    return Bouncer(source, pooler.dir, port, pooler.ini)


@dataclass
class Writer:
    """Inserts rows through the pooler, one autocommit transaction each, and records what was acknowledged
    and how long each write took (the client-observed freeze is the longest)."""

    uri: str
    acknowledged: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    """When each write started (time.monotonic), beside its latency: the bench attributes writes to switches."""
    stop_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    tenant: str = field(default_factory=lambda: str(uuid.uuid4()))

    def run(self) -> None:
        with psycopg.connect(self.uri, autocommit=True, prepare_threshold=None) as conn:
            n = 0
            while not self.stop_event.is_set():
                n += 1
                started = time.monotonic()
                try:
                    with conn.transaction():
                        tenancy.set_tenant(conn, self.tenant)
                        row = conn.execute(
                            f"INSERT INTO {SCHEMA}.{ITEMS} (institution_id, body) VALUES (%s, %s) RETURNING id",
                            (self.tenant, f"write {n}")).fetchone()
                    assert row is not None
                    self.acknowledged.append(int(row[0]))
                except psycopg.Error as exc:
                    self.errors.append(str(exc).strip())
                self.started.append(started)
                self.latencies.append(time.monotonic() - started)
                time.sleep(0.002)

    def start(self) -> Writer:
        self.thread = threading.Thread(target=self.run, name="drill-writer", daemon=True)
        self.thread.start()
        while not self.acknowledged and not self.errors:
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(30)

    @property
    def max_latency(self) -> float:
        return max(self.latencies, default=0.0)


@dataclass
class Stage:
    source: localpg.LocalServer
    target: localpg.LocalServer
    bouncer: Bouncer
    service: str = SERVICE
    more: list[Bouncer] = field(default_factory=list)
    """PgBouncers beyond the first (`more_bouncers`), switched with it as one PoolerSet."""
    record: Path | None = None
    """With agents (`use_agents`): the service's backend record, which every PgBouncer's agent applies, and the
    switch is the production one (`AgentPoolerSet`)."""

    @property
    def source_master(self) -> str:
        return self.source.bootstrap_conninfo("edumatrix")

    @property
    def target_master(self) -> str:
        return self.target.bootstrap_conninfo("edumatrix")

    def replicator_uri(self, server: localpg.LocalServer) -> str:
        return server.uri("edumatrix_extraction_replicator",
                          self.source.passwords()["edumatrix_extraction_replicator"])

    @property
    def backends(self) -> dict[str, Backend]:
        return {"source": Backend("127.0.0.1", _port_of(self.source), "edumatrix"),
                "target": Backend("127.0.0.1", _port_of(self.target), "edumatrix")}

    @property
    def bouncers(self) -> list[Bouncer]:
        return [self.bouncer, *self.more]

    def switch(self, pause_timeout: float = 2.0, bouncer: Bouncer | None = None) -> PgBouncerSwitch:
        bouncer = bouncer or self.bouncer
        return PgBouncerSwitch(bouncer.admin_uri(), bouncer.ini, pooled_aliases(self.service), self.backends,
                               pause_timeout=pause_timeout)

    def switches(self, pause_timeout: float = 2.0, ack_timeout: float = 2.0) -> TrafficSwitch:
        """With agents: every PgBouncer's console and the record (the production switch). Otherwise the stage's
        PgBouncer alone, or with the others started (`more_bouncers`) all of them as one set."""
        if self.record is not None:
            def consoles() -> list[PgBouncerConsole]:
                return [PgBouncerConsole(b.admin_uri(), pooled_aliases(self.service), self.backends,
                                         pause_timeout=pause_timeout) for b in self.bouncers]

            # the re-listing inside the freeze sees the PgBouncers started meanwhile, as ECS lists a replacement
            return AgentPoolerSet(consoles(), FileRecordStore(self.record), ack_timeout=ack_timeout,
                                  discover=consoles)
        if not self.more:
            return self.switch(pause_timeout)
        return PoolerSet([self.switch(pause_timeout, b) for b in self.bouncers])

    def use_agents(self) -> Path:
        """Give every PgBouncer an agent and the service a backend record leading to the source."""
        self.record = self.source.base / f"{self.service}-backend.json"
        FileRecordStore(self.record).write(BackendRecord(*self.backends["source"].key))
        for bouncer in self.bouncers:
            bouncer.start_agent(self.record, tuple(pooled_aliases(self.service)))
        for bouncer in self.bouncers:
            bouncer.wait_agent_ready()
        return self.record

    def side_of(self, bouncer: Bouncer) -> str | None:
        """Where that PgBouncer's pools of the service lead, as it runs them: "source", "target" or None."""
        running = bouncer.serving(tuple(pooled_aliases(self.service)))
        return next((side for side, b in self.backends.items() if b.key == running), None)

    def more_bouncers(self, count: int) -> list[Bouncer]:
        """Start `count` more PgBouncers like the first (the production pooler runs several tasks)."""
        for _ in range(count):
            self.more.append(start_bouncer(self.source, self.target, self.service,
                                           name=f"drill-pgbouncer-{len(self.more) + 2}"))
            if self.record is not None:
                self.more[-1].start_agent(self.record, tuple(pooled_aliases(self.service)))
                self.more[-1].wait_agent_ready()
        return self.more

    def extraction(self, service: str | None = None, *, target_uri: str | None = None,
                   pause_timeout: float = 2.0) -> Extraction:
        return Extraction(service or self.service, self.source_master, target_uri or self.target_master,
                          replication_uri=self.replicator_uri(self.source),
                          target_replication_uri=self.replicator_uri(self.target),
                          switch=self.switches(pause_timeout))

    def app_uri(self, bouncer: Bouncer | None = None) -> str:
        role = f"{self.service}_app"
        return (bouncer or self.bouncer).client_uri(role, self.source.passwords()[role], self.service)

    def writer(self, bouncer: Bouncer | None = None) -> Writer:
        return Writer(self.app_uri(bouncer)).start()

    def source_conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.source_master, autocommit=True)

    def target_conn(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.target_master, autocommit=True)

    def target_passwords(self) -> None:
        """The service's logins and the replication login get the source's passwords on the target."""
        pw = self.source.passwords()
        with self.target_conn() as conn:
            for role in (f"{self.service}_app", f"{self.service}_readonly", f"{self.service}_migrator",
                         "edumatrix_extraction_replicator"):
                access_sql.set_password(conn, role, pw[role])

    def stop(self) -> None:
        for bouncer in self.bouncers:
            bouncer.stop_agent()
            bouncer.stop()
        for server in (self.source, self.target):
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)


def build_stage(service: str = SERVICE) -> Stage:
    model = build_access_model(load_catalog())
    source, _, _ = localpg.up(scratch_root("extract-src-"), model, preferred_port=free_port())
    target, _, _ = localpg.up(scratch_root("extract-tgt-"), service_model(service), preferred_port=free_port(),
                              apply_model=False)
    bouncer = start_bouncer(source, target, service)
    return Stage(source, target, bouncer, service)


def create_service_tables(stage: Stage, rows: int = 2000) -> None:
    """The drill's schema on the source: a tenant table under forced RLS with a sequence, a table with a
    composite key, a function and a trigger; `rows` rows to copy."""
    with psycopg.connect(stage.source.uri(f"{stage.service}_migrator",
                                          stage.source.passwords()[f"{stage.service}_migrator"]),
                         autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {ITEMS} (institution_id uuid NOT NULL, id bigserial, body text, "
                     "updated_at timestamptz, PRIMARY KEY (institution_id, id))")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {VOTES} (institution_id uuid NOT NULL, item_id bigint NOT NULL, "
                     "voter int NOT NULL, score smallint, PRIMARY KEY (institution_id, item_id, voter))")
        conn.execute(f"CREATE OR REPLACE FUNCTION {stage.service}_fn_touch() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN NEW.updated_at := coalesce(NEW.updated_at, now()); RETURN NEW; END$$")
        conn.execute(f"CREATE OR REPLACE TRIGGER {stage.service}_trg_touch BEFORE INSERT OR UPDATE ON {ITEMS} "
                     f"FOR EACH ROW EXECUTE FUNCTION {stage.service}_fn_touch()")
        for table in (ITEMS, VOTES):
            for statement in tenancy.enable_tenant_isolation_sql(stage.service, table):
                conn.execute(statement)
    mover = stage.source.uri("edumatrix_data_mover", stage.source.passwords()["edumatrix_data_mover"])
    with psycopg.connect(mover, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SCHEMA}.{ITEMS} (institution_id, body) SELECT "
                     "('00000000-0000-0000-0000-00000000000' || (g %% 3))::uuid, repeat('x', 40) || g "
                     "FROM generate_series(1, %s) g", (rows,))
        conn.execute(f"INSERT INTO {SCHEMA}.{VOTES} SELECT institution_id, id, 1, 5 FROM {SCHEMA}.{ITEMS} "
                     "WHERE id % 2 = 0 ON CONFLICT DO NOTHING")
