"""`restore-schema` between two real local servers provisioned like production: one service's schema comes
back with its rows, sequences, indexes, tenant policies and the model's grants; nothing else on the target
changes; a refused or interrupted restore leaves the target exactly as it was."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, TypeAlias

import psycopg
import pytest
from rich.console import Console

from config.access import AccessModel
from edumatrix_db.cli import main
from edumatrix_db.database.tenancy import enable_tenant_isolation, tenant_transaction
from edumatrix_db.ops.audit import run_audit
from edumatrix_db.ops.restore import PHASES, RestoreError, RestoreRequest, RestoreResult, restore_schema
from tests.pg.conftest import Postgres
from tests.pg.servers import Server, empty_ledger, local_server

SERVICE = "feedback"
SCHEMA = "feedback_schema"
# The platform's (empty) outbox and inbox of feedback_schema (docs/events.md) are restored like any table.
EVENT_TABLES = {"feedback_inbox": 0, "feedback_outbox": 0}
TENANT_A = uuid.UUID("00000000-0000-0000-0000-00000000000a")
TENANT_B = uuid.UUID("00000000-0000-0000-0000-00000000000b")
ROWS = 3000
# The `servers` fixture: a source server holding feedback's schema, and a target server.
Servers: TypeAlias = tuple[Server, Server]


def _fill_source(server: Server) -> None:
    with psycopg.connect(server.uri(SERVICE, "migrator"), autocommit=True) as conn:
        # A domain: a user-defined column type (named with its schema unless the schema is on the search_path).
        # Not an enum: the verification core hashes enum values by their OIDs, which differ between servers.
        conn.execute("CREATE DOMAIN feedback_mood AS text CHECK (VALUE IN ('happy', 'sad'))")
        conn.execute("CREATE TABLE feedback_entry (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
                     "body text NOT NULL, mood feedback_mood, score numeric(4,1), "
                     "created_at timestamptz NOT NULL DEFAULT now(), "
                     "body_length int GENERATED ALWAYS AS (length(body)) STORED)")
        conn.execute("CREATE TABLE feedback_vote (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
                     "entry_id bigint NOT NULL REFERENCES feedback_entry(id), voter text NOT NULL, "
                     "UNIQUE (institution_id, entry_id, voter))")
        conn.execute("CREATE INDEX feedback_entry_created_idx ON feedback_entry (institution_id, created_at)")
        conn.execute("CREATE FUNCTION feedback_fn_count() RETURNS bigint LANGUAGE sql STABLE "
                     "SET search_path = feedback_schema AS 'SELECT count(*) FROM feedback_entry'")
        conn.execute("CREATE VIEW feedback_recent WITH (security_invoker = true) AS "
                     "SELECT id, institution_id, body FROM feedback_entry WHERE score > 2")
        conn.execute("INSERT INTO feedback_entry (institution_id, body, mood, score) "
                     "SELECT CASE WHEN g %% 2 = 0 THEN %s::uuid ELSE %s::uuid END, 'entry ' || g, "
                     "CASE WHEN g %% 3 = 0 THEN 'happy' ELSE 'sad' END, (g %% 50) / 10.0 "
                     "FROM generate_series(1, %s) g", (TENANT_A, TENANT_B, ROWS))
        conn.execute("INSERT INTO feedback_vote (institution_id, entry_id, voter) "
                     "SELECT institution_id, id, 'voter' || id FROM feedback_entry WHERE id % 10 = 0")
        for table in ("feedback_entry", "feedback_vote"):
            enable_tenant_isolation(conn, SERVICE, table)
        # feedback_entry is one of feedback's personal tables (config/services.yaml): the migration that creates
        # it gives pgaudit's object-audit role SELECT on it (docs/gdpr.md)
        conn.execute("GRANT SELECT ON feedback_entry TO rds_pgaudit")
        conn.execute("SELECT nextval('feedback_entry_id_seq')")  # the sequence ahead of the rows' max id


def _fill_others(server: Server, model: AccessModel) -> None:
    """A table with rows in every other service's schema on the target: what must not change."""
    for s in model.services:
        if s.service == SERVICE:
            continue
        with psycopg.connect(server.uri(s.service, "migrator"), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {s.service}_item (id bigserial PRIMARY KEY, note text)")
            conn.execute(f"INSERT INTO {s.service}_item (note) SELECT 'n' || g FROM generate_series(1, 200) g")


def _fingerprint(server: Server, schemas: list[str]) -> dict[str, str]:
    """Per schema: a checksum of every table's rows and of the catalog entries in it (names, owners, ACLs)."""
    out = {}
    with server.superuser() as su:
        for schema in schemas:
            h = hashlib.sha256()
            catalog = su.execute(
                "SELECT c.relname, c.relkind, c.relowner::regrole::text, coalesce(c.relacl::text, ''), c.oid "
                "FROM pg_class c WHERE c.relnamespace = %s::regnamespace ORDER BY c.relname", (schema,)).fetchall()
            h.update(repr([row[:4] for row in catalog]).encode())
            nsp = su.execute("SELECT nspowner::regrole::text, coalesce(nspacl::text, ''), oid FROM pg_namespace "
                             "WHERE nspname = %s", (schema,)).fetchone()
            h.update(repr(nsp).encode())
            for name, kind, *_ in catalog:
                if kind == "r":
                    rows = su.execute(f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                                      f"FROM {schema}.{name} t").fetchone()
                    h.update(repr(rows).encode())
            out[schema] = h.hexdigest()
    return out


@pytest.fixture(scope="module")
def servers(pg: Postgres) -> Iterator[Servers]:
    with local_server("edumatrix-restore-src-", pg.model) as source, \
            local_server("edumatrix-restore-dst-", pg.model) as target:
        _fill_source(source)
        _fill_others(target, pg.model)
        yield source, target


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _restore(source: Server, target: Server, model: AccessModel, **kwargs: Any) -> RestoreResult:
    request = RestoreRequest(SERVICE, source.mover_uri, target.admin_uri, **{"erasures": empty_ledger(), **kwargs})
    return restore_schema(request, model, console=_quiet())


def _other_schemas(model: AccessModel) -> list[str]:
    return [s.schema for s in model.services if s.service != SERVICE]


def _target_state(target: Server, model: AccessModel) -> tuple[dict[str, str], list[str]]:
    with target.superuser() as su:
        schemas = [r[0] for r in su.execute("SELECT nspname FROM pg_namespace ORDER BY 1").fetchall()]
    return _fingerprint(target, [*_other_schemas(model), SCHEMA]), schemas


@pytest.mark.postgres
def test_an_existing_target_schema_is_refused_without_replace(pg: Postgres, servers: Servers) -> None:
    source, target = servers
    before = _target_state(target, pg.model)
    with pytest.raises(RestoreError, match="already has schema feedback_schema: pass --replace"):
        _restore(source, target, pg.model)
    assert _target_state(target, pg.model) == before


@pytest.mark.postgres
def test_replace_restores_rows_sequences_and_policies_while_other_services_keep_working(
        pg: Postgres, servers: Servers) -> None:
    source, target = servers
    others_before = _fingerprint(target, _other_schemas(pg.model)[1:])
    busy = pg.model.services[0] if pg.model.services[0].service != SERVICE else pg.model.services[1]
    stop, written, errors = threading.Event(), [0], []

    def workload() -> None:  # a service writing and reading its own schema during the restore
        with psycopg.connect(target.uri(busy.service, "app"), autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute(f"INSERT INTO {busy.schema}.{busy.service}_item (note) VALUES ('during')")
                    written[0] += 1
                    conn.execute(f"SELECT count(*) FROM {busy.schema}.{busy.service}_item").fetchone()
                except psycopg.Error as exc:
                    errors.append(exc)
                    return

    thread = threading.Thread(target=workload)
    thread.start()
    try:
        result = _restore(source, target, pg.model, replace=True, verify=True, jobs=2)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert result.replaced
    assert result.verify is not None
    assert result.verify.ok
    assert {t.name: t.rows for t in result.tables} == {"feedback_entry": ROWS, "feedback_vote": ROWS // 10,
                                                       **EVENT_TABLES}
    assert others_before == _fingerprint(target, _other_schemas(pg.model)[1:])
    with psycopg.connect(target.uri(busy.service, "app"), autocommit=True) as conn:
        count = conn.execute(f"SELECT count(*) FROM {busy.schema}.{busy.service}_item").fetchone()
    assert count == (200 + written[0],)
    with psycopg.connect(target.uri(SERVICE, "app"), autocommit=True) as conn, tenant_transaction(conn, TENANT_A):
        visible = conn.execute("SELECT count(*) FROM feedback_schema.feedback_entry").fetchone()
        in_view = conn.execute("SELECT count(*) FROM feedback_schema.feedback_recent").fetchone()
        counted = conn.execute("SELECT feedback_schema.feedback_fn_count()").fetchone()
        new_id = conn.execute("INSERT INTO feedback_schema.feedback_entry (institution_id, body) "
                              "VALUES (%s, 'after restore') RETURNING id", (TENANT_A,)).fetchone()
    assert visible == (ROWS // 2,)
    assert counted == (ROWS // 2,)
    assert in_view is not None
    assert 0 < in_view[0] < ROWS // 2
    assert new_id == (ROWS + 2,)  # the sequence continued where the source's was


@pytest.mark.postgres
def test_the_restored_schema_has_the_same_audit_findings_as_the_source(pg: Postgres, servers: Servers) -> None:
    """Ownership, grants, policies and RLS come back as the model and the source have them: the audit finds on
    the restored schema exactly what it finds on the source (the fixture's keys lack institution_id on purpose:
    at least one finding, so the comparison is not of two empty lists)."""
    source, target = servers
    _restore(source, target, pg.model, replace=True)

    def findings(uri: str) -> set[tuple[str, str, str]]:
        with psycopg.connect(uri, autocommit=True) as conn:
            return {(f.rule, f.object, f.message) for f in run_audit(conn, pg.model).findings if f.service == SERVICE}

    on_source = findings(source.admin_uri)
    assert on_source
    assert findings(target.admin_uri) == on_source


@pytest.mark.postgres
def test_as_restores_beside_the_service_without_touching_its_schema(pg: Postgres, servers: Servers) -> None:
    source, target = servers
    before = _fingerprint(target, [SCHEMA])
    result = _restore(source, target, pg.model, as_schema="feedback_inspect", verify=True,
                      skip_erasure_replay="an inspection copy: no traffic reaches it")
    try:
        assert result.verify is not None
        assert result.verify.ok
        assert not result.replaced
        assert _fingerprint(target, [SCHEMA]) == before
        with psycopg.connect(target.uri(SERVICE, "readonly"), autocommit=True) as conn, \
                tenant_transaction(conn, TENANT_B):
            rows = conn.execute("SELECT count(*) FROM feedback_inspect.feedback_entry").fetchone()
        assert rows == (ROWS // 2,)
    finally:
        with target.superuser() as su:
            su.execute("DROP SCHEMA IF EXISTS feedback_inspect CASCADE")


@pytest.mark.postgres
@pytest.mark.parametrize("phase", [p for p in PHASES if p != "checks"])
def test_an_interrupted_restore_leaves_the_target_as_it_was(pg: Postgres, servers: Servers, phase: str) -> None:
    source, target = servers
    before = _target_state(target, pg.model)

    def interrupt(current: str) -> None:
        if current == phase:
            raise KeyboardInterrupt(phase)

    request = RestoreRequest(SERVICE, source.mover_uri, target.admin_uri, replace=True, verify=True,
                                 erasures=empty_ledger())
    with pytest.raises(KeyboardInterrupt):
        restore_schema(request, pg.model, console=_quiet(), on_phase=interrupt)
    assert _target_state(target, pg.model) == before


@pytest.mark.postgres
def test_a_staging_schema_left_by_a_killed_restore_is_dropped_by_the_next_run(pg: Postgres, servers: Servers) -> None:
    source, target = servers
    with target.superuser() as su:
        su.execute("CREATE SCHEMA feedback_schema_rs_dead00 AUTHORIZATION feedback_owner")  # as a restore makes it
        su.execute("COMMENT ON SCHEMA feedback_schema_rs_dead00 IS 'edumatrix restore-schema staging of x'")
    result = _restore(source, target, pg.model, replace=True)
    assert result.dropped_leftovers == ["feedback_schema_rs_dead00"]


@pytest.mark.postgres
def test_a_source_with_a_foreign_grant_is_refused_and_nothing_is_copied(pg: Postgres, servers: Servers) -> None:
    source, target = servers
    other = next(s for s in pg.model.services if s.service != SERVICE)
    before = _target_state(target, pg.model)
    with source.superuser() as su:
        su.execute(f"GRANT SELECT ON feedback_schema.feedback_vote TO {other.service}_app")
    try:
        with pytest.raises(RestoreError, match=f"feedback_vote is granted to {other.service}_app"):
            _restore(source, target, pg.model, replace=True)
    finally:
        with source.superuser() as su:
            su.execute(f"REVOKE SELECT ON feedback_schema.feedback_vote FROM {other.service}_app")
    assert _target_state(target, pg.model) == before


@pytest.mark.postgres
@pytest.mark.parametrize(("argv", "message"), [
    (["nosuchservice"], "unknown service 'nosuchservice'"),
    (["feedback", "--as", "jobs_portal_schema"], "that is jobs_portal's schema"),
    (["feedback"], "already has schema feedback_schema"),
    (["feedback", "--as", "feedback_copy"], "the erasures cannot be replayed into a copy"),
    (["feedback", "--replace", "--skip-erasure-replay", " "], "--skip-erasure-replay needs a reason"),
])
def test_the_command_refuses_with_exit_2_and_a_clear_message(
        pg: Postgres, servers: Servers, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    source, target = servers
    before = _target_state(target, pg.model)
    code = main(["restore-schema", *argv, "--from", source.mover_uri, "--to", target.admin_uri,
                 "--ledger", str(empty_ledger().path)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert _target_state(target, pg.model) == before


@pytest.mark.postgres
def test_an_unreachable_source_exits_2_without_showing_its_password(
        pg: Postgres, servers: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    _, target = servers
    before = _target_state(target, pg.model)
    code = main(["restore-schema", "feedback", "--from", "postgresql://edumatrix_data_mover:s3cret@127.0.0.1:1/x",
                 "--to", target.admin_uri, "--replace"])
    err = capsys.readouterr().err
    assert code == 2
    assert "cannot connect to the source" in err
    assert "s3cret" not in err
    assert _target_state(target, pg.model) == before


@pytest.mark.postgres
def test_a_source_without_the_schema_exits_2(
        pg: Postgres, servers: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = servers
    before = _target_state(target, pg.model)
    elsewhere = source.server.bootstrap_conninfo("postgres")  # a database of the source without the schema
    code = main(["restore-schema", "news_system", "--from", elsewhere, "--to", target.admin_uri, "--replace"])
    assert code == 2
    assert _target_state(target, pg.model) == before
    assert "the source has no schema news_system_schema" in capsys.readouterr().err


@pytest.mark.postgres
def test_the_command_restores_verifies_and_prints_a_json_summary(
        pg: Postgres, servers: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    source, target = servers
    code = main(["restore-schema", SERVICE, "--from", source.mover_uri, "--to", target.admin_uri, "--replace",
                 "--ledger", str(empty_ledger().path), "--verify", "--jobs", "2", "--format", "json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (summary["targetSchema"], summary["replaced"], summary["verify"]["ok"]) == (SCHEMA, True, True)
    assert summary["tables"] == {"feedback_entry": ROWS, "feedback_vote": ROWS // 10, **EVENT_TABLES}


@pytest.mark.postgres
def test_replacing_a_schema_another_schema_depends_on_is_refused(pg: Postgres, servers: Servers) -> None:
    source, target = servers
    with target.superuser() as su:
        su.execute("CREATE VIEW statistics_schema.statistics_feedback AS SELECT id FROM feedback_schema.feedback_entry")
    try:
        before = _target_state(target, pg.model)
        with pytest.raises(RestoreError, match=r"would drop objects of other schemas that depend on it: "
                                               r"statistics_schema\.statistics_feedback \(view on "):
            _restore(source, target, pg.model, replace=True)
        assert _target_state(target, pg.model) == before
    finally:
        with target.superuser() as su:
            su.execute("DROP VIEW statistics_schema.statistics_feedback")


@pytest.mark.postgres
def test_a_copy_longer_than_the_roles_idle_timeout_keeps_its_snapshot(pg: Postgres, servers: Servers) -> None:
    """The source snapshot's transaction idles while tables are copied; the platform roles' idle-in-transaction
    timeout (60 s on RDS) must not end it: here 1 s, and a copy phase that starts 2 s later."""
    source, target = servers
    with source.superuser() as su:
        su.execute("ALTER ROLE edumatrix_data_mover SET idle_in_transaction_session_timeout = '1s'")
    try:
        request = RestoreRequest(SERVICE, source.mover_uri, target.admin_uri, replace=True, verify=True,
                                 erasures=empty_ledger())
        result = restore_schema(request, pg.model, console=_quiet(),
                                on_phase=lambda phase: time.sleep(2) if phase == "data" else None)
    finally:
        with source.superuser() as su:
            su.execute("ALTER ROLE edumatrix_data_mover RESET idle_in_transaction_session_timeout")
    assert result.verify is not None
    assert result.verify.ok
