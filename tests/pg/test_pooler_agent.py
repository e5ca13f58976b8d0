"""The pooler agent against a real PgBouncer (Debian's 1.18; edumatrix_db/ops/pooler_agent.py, issue 13).

- A running PgBouncer with its agent (run as the image runs it: `python -m edumatrix_db.ops.pooler_agent run`) takes
  a backend record written while its pools are paused, as the cutover writes it: `SHOW DATABASES` then reports
  the new backend, and only the service's pools moved.
- The image's PgBouncer files (`render`: pgbouncer.ini, hba.conf, userlist) start a real PgBouncer: a service
  login runs through the pool over TLS to a verified server; the admin console answers the admin user over TLS
  only and refuses every other login; PgBouncer's own user reaches it over the unix socket without a password
  (how the agent sends RELOAD in the task)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from edumatrix_db.database import localpg
from edumatrix_db.ops.extract import pooled_aliases
from edumatrix_db.ops.pooler_agent import BackendRecord, FileRecordStore, admin_connect, render, show_databases
from tests.pg.conftest import Postgres, free_port
from tests.pg.extraction_support import Bouncer, start_bouncer
from tests.pg.nlb_stand_in import forwarder

pytestmark = pytest.mark.postgres

ALIASES = tuple(pooled_aliases("feedback"))
NLB_ADDRESS = "127.0.0.2"
"""Where the stand-in NLB's connections come from (tests/pg/nlb_stand_in.py), as the task's environment names it."""
ELSEWHERE_PORT = 1  # a backend nobody connects to while the pools are paused: only where they lead is checked


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@dataclass
class AgentStage:
    bouncer: Bouncer
    store: FileRecordStore
    port: int

    def admin(self) -> psycopg.Connection[Any]:
        return admin_connect(self.bouncer.admin_uri())


@pytest.fixture(scope="module")
def agent_stage(pg: Postgres) -> Iterator[AgentStage]:
    server = pg.server
    bouncer = start_bouncer(server, server, "feedback", name="agent-drill-pgbouncer")
    store = FileRecordStore(server.base / "agent-drill-backend.json")
    store.write(BackendRecord("127.0.0.1", server._port(), "edumatrix"))
    bouncer.start_agent(store.path, ALIASES)
    bouncer.wait_agent_ready()
    try:
        yield AgentStage(bouncer, store, server._port())
    finally:
        bouncer.stop_agent()
        bouncer.stop()


def test_a_record_written_while_the_pools_are_paused_is_running_after_the_agents_reload(
        agent_stage: AgentStage) -> None:
    elsewhere = ("127.0.0.1", ELSEWHERE_PORT, "edumatrix")
    with agent_stage.admin() as admin:
        for alias in ALIASES:
            admin.execute(f"PAUSE {alias}")
        try:
            agent_stage.store.write(agent_stage.store.read().next(*elsewhere))
            taken = wait_until(lambda: agent_stage.bouncer.serving(ALIASES) == elsewhere)
        finally:
            agent_stage.store.write(agent_stage.store.read().next("127.0.0.1", agent_stage.port, "edumatrix"))
            wait_until(lambda: agent_stage.bouncer.serving(ALIASES) == ("127.0.0.1", agent_stage.port, "edumatrix"))
            for alias in ALIASES:
                admin.execute(f"RESUME {alias}")
    assert taken


def test_the_agent_moves_only_the_services_pools(agent_stage: AgentStage) -> None:
    with agent_stage.admin() as admin:
        for alias in ALIASES:
            admin.execute(f"PAUSE {alias}")
        try:
            agent_stage.store.write(agent_stage.store.read().next("127.0.0.1", ELSEWHERE_PORT, "edumatrix"))
            wait_until(lambda: (agent_stage.bouncer.serving(ALIASES) or ("", 0, ""))[1] == ELSEWHERE_PORT)
            pools = show_databases(admin)
        finally:
            agent_stage.store.write(agent_stage.store.read().next("127.0.0.1", agent_stage.port, "edumatrix"))
            wait_until(lambda: agent_stage.bouncer.serving(ALIASES) == ("127.0.0.1", agent_stage.port, "edumatrix"))
            for alias in ALIASES:
                admin.execute(f"RESUME {alias}")
    # the PgBouncer of `local up` pools every service (and has its console's own entry): only these moved
    moved = {name for name, p in pools.items() if p.port == ELSEWHERE_PORT}
    assert (moved, len(pools) > len(ALIASES) + 1) == (set(ALIASES), True)


def test_a_freeze_marker_pauses_the_pools_until_it_is_cleared(agent_stage: AgentStage) -> None:
    """As a task started during a cutover: the record says a freeze is under way; nobody else pauses it."""
    def paused() -> bool:
        with agent_stage.admin() as admin:
            return all(p.paused for a, p in show_databases(admin).items() if a in ALIASES)

    store = agent_stage.store
    store.write(store.read().freezing(True))
    try:
        held = wait_until(paused)
    finally:
        store.write(store.read().freezing(False))
    released = wait_until(lambda: not paused())
    assert (held, released) == (True, True)


def test_clients_run_through_the_pools_after_the_agent_took_them_back(agent_stage: AgentStage, pg: Postgres) -> None:
    role = "feedback_app"
    with psycopg.connect(agent_stage.bouncer.client_uri(role, pg.server.passwords()[role], "feedback"),
                         autocommit=True, prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


# -- the image's files on a real PgBouncer ---------------------------------------------------------------------

@dataclass
class ImagePooler:
    directory: Path
    port: int
    server: localpg.LocalServer

    def uri(self, user: str, password: str, database: str, sslmode: str, port: int | None = None) -> str:
        return (f"postgresql://{user}:{quote(password, safe='')}@127.0.0.1:{port or self.port}/{database}"
                f"?sslmode={sslmode}&connect_timeout=5")


@pytest.fixture(scope="module")
def image_pooler(pg: Postgres) -> Iterator[ImagePooler]:
    """PgBouncer started from `render`'s files exactly (the server's certificate stands in for the pooler's)."""
    server = pg.server
    directory = server.base / "image-pgbouncer"
    directory.mkdir(exist_ok=True)
    directory.chmod(0o700)
    server._give(directory)
    passwords = server.passwords()
    port = free_port()
    env = {"PGBOUNCER_DATABASE": "edumatrix", "PGBOUNCER_ADMIN_USER": "edumatrix_pooler_admin",
           "PGBOUNCER_ADMIN_PASSWORD": "image-admin-password", "PGBOUNCER_LISTEN_PORT": str(port),
           "PGBOUNCER_POOLS": "feedback_app:2,feedback_readonly:1", "PGBOUNCER_NLB_ADDRESSES": NLB_ADDRESS,
           "PGBOUNCER_PASSWORD_FEEDBACK_APP": passwords["feedback_app"],
           "PGBOUNCER_PASSWORD_FEEDBACK_READONLY": passwords["feedback_readonly"],
           "PGBOUNCER_TLS_CERTIFICATE": (server.tls / "server.crt").read_text(),
           "PGBOUNCER_TLS_KEY": (server.tls / "server.key").read_text()}
    files = render(env, BackendRecord("127.0.0.1", server._port(), "edumatrix"), directory,
                   ca_file=str(server.tls / "ca.crt"))
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        path.chmod(0o600)
        server._give(path)
    exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    ids = server._server_ids()
    log = (server.log_dir / "image-pgbouncer.log").open("ab")
    user: dict[str, Any] = {"user": ids[0], "group": ids[1], "extra_groups": []} if ids else {}
    process = subprocess.Popen([exe, str(directory / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT,
                               **user)
    pooler = ImagePooler(directory, port, server)
    try:
        admin = pooler.uri("edumatrix_pooler_admin", "image-admin-password", "pgbouncer", "require")
        assert wait_until(lambda: _answers(admin)), (server.log_dir / "image-pgbouncer.log").read_text()[-2000:]
        yield pooler
    finally:
        process.terminate()
        process.wait(10)


def _answers(uri: str) -> bool:
    try:
        with admin_connect(uri):
            return True
    except psycopg.OperationalError:
        return False


def test_a_service_login_runs_through_the_rendered_pool_over_tls(image_pooler: ImagePooler, pg: Postgres) -> None:
    uri = image_pooler.uri("feedback_app", pg.server.passwords()["feedback_app"], "edumatrix", "require")
    with psycopg.connect(uri, autocommit=True, prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("feedback_app",)


def test_the_admin_user_reaches_the_console_over_tls(image_pooler: ImagePooler) -> None:
    uri = image_pooler.uri("edumatrix_pooler_admin", "image-admin-password", "pgbouncer", "require")
    with admin_connect(uri) as conn:
        assert set(show_databases(conn)) >= {"edumatrix"}


def test_the_admin_user_is_refused_without_tls(image_pooler: ImagePooler) -> None:
    uri = image_pooler.uri("edumatrix_pooler_admin", "image-admin-password", "pgbouncer", "disable")
    with pytest.raises(psycopg.OperationalError):
        admin_connect(uri).close()


def test_a_service_login_is_refused_the_console(image_pooler: ImagePooler, pg: Postgres) -> None:
    uri = image_pooler.uri("feedback_app", pg.server.passwords()["feedback_app"], "pgbouncer", "require")
    with pytest.raises(psycopg.OperationalError):
        admin_connect(uri).close()


def test_the_admin_console_refuses_the_admin_user_through_the_nlb(image_pooler: ImagePooler) -> None:
    with forwarder(image_pooler.port, NLB_ADDRESS) as port:
        uri = image_pooler.uri("edumatrix_pooler_admin", "image-admin-password", "pgbouncer", "require", port)
        with pytest.raises(psycopg.OperationalError, match="rejected"):
            admin_connect(uri).close()


def test_a_service_login_through_the_nlb_runs_on_its_pool(image_pooler: ImagePooler, pg: Postgres) -> None:
    with forwarder(image_pooler.port, NLB_ADDRESS) as port:
        uri = image_pooler.uri("feedback_app", pg.server.passwords()["feedback_app"], "edumatrix", "require", port)
        with psycopg.connect(uri, autocommit=True, prepare_threshold=None) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("feedback_app",)


def test_the_admin_console_answers_a_direct_connection_from_another_address(image_pooler: ImagePooler) -> None:
    with forwarder(image_pooler.port, "127.0.0.3") as port:
        uri = image_pooler.uri("edumatrix_pooler_admin", "image-admin-password", "pgbouncer", "require", port)
        with admin_connect(uri) as conn:
            assert set(show_databases(conn)) >= {"edumatrix"}


def test_pgbouncers_own_user_reloads_over_the_unix_socket_without_a_password(image_pooler: ImagePooler) -> None:
    psql = str(localpg.find_binaries().bindir / "psql")
    server = image_pooler.server
    proc = server._run([psql, "-X", "-A", "-t", "-c", "RELOAD",
                        f"host={image_pooler.directory} port={image_pooler.port} user=pgbouncer dbname=pgbouncer"],
                       check=False)
    assert (proc.returncode, proc.stderr.strip()) == (0, "")
