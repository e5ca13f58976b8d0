"""The spec's "point-in-time recovery + schema-specific restore", end to end on real servers: a base backup
(`pg_basebackup`) and archived WAL bring a second server to a chosen moment; `restore-schema` then puts that
moment's copy of one service's schema back into the running database. Rows committed before the moment are
there, rows committed after it are not, and the other services' schemas are untouched.

This is what RDS does for `restore-db-instance-to-point-in-time` (its automated backups are base backups plus
archived WAL) followed by the runbook's `restore-schema` (docs/recovery-runbook.md)."""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from config.access import AccessModel
from edumatrix_db.database.localpg import BOOTSTRAP_SUPERUSER, LocalServer, find_binaries
from edumatrix_db.ops import runner
from edumatrix_db.ops.restore import RestoreRequest, restore_schema
from tests.pg.conftest import Postgres, free_port
from tests.pg.servers import Server, empty_ledger, local_server
from tests.pg.test_backup_jobs import _heartbeat, _now, _pitr_event, _run_pitr, _scheduled

SCHEMA = "feedback_schema"


def _archiving(server: LocalServer) -> Path:
    """Turn on WAL archiving (and local replication for pg_basebackup) and restart; the archive directory."""
    archive = server.base / "wal-archive"
    archive.mkdir()
    server._give(archive)
    with (server.pgdata / "pg_hba.conf").open("a") as hba:
        hba.write("local     replication  all         trust\n")
    with server.superuser("postgres") as su:
        su.execute("ALTER SYSTEM SET archive_mode = on")
        su.execute(f"ALTER SYSTEM SET archive_command = 'test ! -f {archive}/%f && cp %p {archive}/%f'")
        su.execute("ALTER SYSTEM SET archive_timeout = 0")
    state = server.state()
    assert state is not None
    server._run([str(Path(state.bindir) / "pg_ctl"), "restart", "-D", str(server.pgdata), "-m", "fast", "-w",
                 "-l", str(server.log_file)])
    return archive


def _wait_archived(conn: psycopg.Connection[Any]) -> None:
    """Switch to a new WAL file and wait until the finished one is in the archive."""
    row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
    assert row is not None
    for _ in range(300):
        archived = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()
        if archived and archived[0] and archived[0] >= row[0]:
            return
        time.sleep(0.1)
    pytest.fail(f"WAL file {row[0]} was not archived within 30 s")


def _recover(server: LocalServer, archive: Path, base: Path, target_time: str) -> tuple[LocalServer, int]:
    """A second server from the base backup, replaying archived WAL up to `target_time`, then promoted."""
    port = free_port()
    run_dir = base / "run"
    run_dir.mkdir()
    server._give(run_dir)
    run_dir.chmod(0o700)
    overrides = {
        "port": str(port), "unix_socket_directories": f"'{run_dir}'", "archive_mode": "off",
        "restore_command": f"'cp {archive}/%f %p'", "recovery_target_time": f"'{target_time}'",
        "recovery_target_action": "'promote'", "recovery_target_inclusive": "on",
    }
    with (base / "data" / "postgresql.auto.conf").open("a") as auto:
        auto.write("".join(f"{k} = {v}\n" for k, v in overrides.items()))
    (base / "data" / "recovery.signal").touch()
    server._give(base / "data" / "recovery.signal")
    state = server.state()
    assert state is not None
    log = base / "recovered.log"
    log.touch()
    server._give(log)
    server._run([str(Path(state.bindir) / "pg_ctl"), "start", "-D", str(base / "data"), "-w", "-t", "120",
                 "-l", str(log)], timeout=180)
    return server, port


def _entries(uri: str) -> list[str]:
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("SET row_security = off")
        return [r[0] for r in conn.execute("SELECT body FROM feedback_schema.feedback_entry ORDER BY id").fetchall()]


def _other_schemas_checksum(server: Server, model: AccessModel) -> str:
    with server.superuser() as su:
        parts = []
        for s in model.services:
            if s.service == "feedback":
                continue
            rows = su.execute("SELECT md5(coalesce(string_agg(c.relname || ':' || c.relkind::text || ':' || "
                              "coalesce(c.relacl::text, ''), ',' ORDER BY c.relname), '')) FROM pg_class c "
                              "WHERE c.relnamespace = %s::regnamespace", (s.schema,)).fetchone()
            parts.append(f"{s.schema}={rows}")
    return "|".join(parts)


@pytest.fixture
def live(pg: Postgres) -> Iterator[Server]:
    with local_server("edumatrix-pitr-", pg.model) as server:
        yield server


@pytest.mark.postgres
def test_point_in_time_recovery_then_schema_restore_brings_back_exactly_the_rows_before_the_moment(
        pg: Postgres, live: Server, tmp_path: Path) -> None:
    archive = _archiving(live.server)
    with psycopg.connect(live.uri("feedback", "migrator"), autocommit=True) as conn:
        conn.execute("CREATE TABLE feedback_entry (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
                     "body text NOT NULL)")
        conn.execute("INSERT INTO feedback_entry (institution_id, body) "
                     "SELECT gen_random_uuid(), 'before base backup ' || g FROM generate_series(1, 100) g")
    state = live.server.state()
    assert state is not None
    base = _base_backup(live)
    with psycopg.connect(live.uri("feedback", "app"), autocommit=True) as app:
        app.execute("INSERT INTO feedback_schema.feedback_entry (institution_id, body) "
                    "VALUES (gen_random_uuid(), 'after base backup, before the moment')")
    with live.superuser() as su:
        time.sleep(1.1)
        row = su.execute("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
                         ).fetchone()
        assert row is not None
        moment = str(row[0])
        time.sleep(1.1)
    with psycopg.connect(live.uri("feedback", "app"), autocommit=True) as app:
        app.execute("UPDATE feedback_schema.feedback_entry SET body = 'damaged after the moment'")
        app.execute("INSERT INTO feedback_schema.feedback_entry (institution_id, body) "
                    "VALUES (gen_random_uuid(), 'after the moment')")
    with live.superuser() as su:
        _wait_archived(su)
    others_before = _other_schemas_checksum(live, pg.model)

    _recover(live.server, archive, base, moment)
    recovered_mover = live.mover_uri.replace(f":{state.port}/", f":{_port_of(base)}/")
    try:
        assert _entries(recovered_mover) == [f"before base backup {g}" for g in range(1, 101)] + [
            "after base backup, before the moment"]
        request = RestoreRequest("feedback", recovered_mover, live.admin_uri, replace=True, verify=True,
                                 erasures=empty_ledger())
        result = restore_schema(request, pg.model, console=Console(file=io.StringIO()))
    finally:
        live.server._run([str(Path(state.bindir) / "pg_ctl"), "stop", "-D", str(base / "data"), "-m", "fast",
                          "-w"], check=False)
    assert result.verify is not None
    assert result.verify.ok
    restored = _entries(live.admin_uri)
    assert "after the moment" not in restored
    assert "damaged after the moment" not in restored
    assert restored[-1] == "after base backup, before the moment"
    assert len(restored) == 101
    assert _other_schemas_checksum(live, pg.model) == others_before
    shutil.rmtree(base, ignore_errors=True)


def _base_backup(live: Server) -> Path:
    """`pg_basebackup` of the live server into `<its base>/recovered/data`; returns `<its base>/recovered`."""
    state = live.server.state()
    assert state is not None
    base = Path(str(live.server.base)) / "recovered"
    base.mkdir()
    live.server._give(base)
    live.server._run([find_binaries().exe("pg_basebackup"), "-D", str(base / "data"), "-h", str(live.server.run_dir),
                      "-p", str(state.port), "-U", BOOTSTRAP_SUPERUSER, "-X", "stream", "--no-sync"], timeout=300)
    return base


@pytest.mark.postgres
def test_the_pitr_validation_job_passes_a_copy_recovered_to_a_moment_by_its_heartbeats(
        pg: Postgres, live: Server) -> None:
    """What the monthly validation on AWS proves (components/pitr_validation.py): the copy has the heartbeat
    run before the moment and not the one after it, every schema is there and isolated, every table reads."""
    archive = _archiving(live.server)
    assert _scheduled(live) == "scheduled"
    state = live.server.state()
    assert state is not None
    base = _base_backup(live)
    _heartbeat(live, "clock_timestamp()")  # before the moment, after the base backup: replayed from the WAL
    time.sleep(1.1)
    moment = _now(live)
    time.sleep(1.1)
    _heartbeat(live, "clock_timestamp()")  # after the moment
    requested = _now(live)
    with live.superuser() as su:
        _wait_archived(su)
    _recover(live.server, archive, base, moment.replace("T", " ").replace("Z", "+00"))  # the form it parses
    try:
        result = _run_pitr(live, _pitr_event(moment, requested), port=_port_of(base))
        with pytest.raises(runner.RunnerError, match=r"1 heartbeat\(s\) after"):  # the live server moved on
            _run_pitr(live, _pitr_event(moment, requested))
    finally:
        live.server._run([str(Path(state.bindir) / "pg_ctl"), "stop", "-D", str(base / "data"), "-m", "fast",
                          "-w"], check=False)
    assert result["ok"]
    assert moment > result["latestHeartbeat"].replace("+00:00", "Z") > _now(live, "-5 minutes")
    shutil.rmtree(base, ignore_errors=True)


def _port_of(base: Path) -> int:
    for line in (base / "data" / "postgresql.auto.conf").read_text().splitlines():
        if line.startswith("port = "):
            return int(line.split("=")[1])
    raise AssertionError("no port in the recovered server's configuration")
