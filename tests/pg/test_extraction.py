"""Extraction drills on two real PostgreSQL servers (wal_level=logical) with PgBouncer in front and a writer
going through it (tests/pg/extraction_support.py). The tests of this module run in file order on one stage:
refusals first, then replication, injected failures, the cutover, rollback, cutover again, finish."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from edumatrix_db.cli import main
from edumatrix_db.database.localpg import find_binaries
from edumatrix_db.ops import extract
from edumatrix_db.ops.extract import CUTOVER_STEPS, ExtractError, Extraction, SwitchResult
from tests.pg.extraction_support import (
    ITEMS,
    SCHEMA,
    Stage,
    Writer,
    build_stage,
    create_service_tables,
)

pytestmark = pytest.mark.postgres
# The platform creates an outbox and an inbox in feedback_schema (docs/events.md): they replicate like any table.
EVENT_TABLES = ("feedback_inbox", "feedback_outbox")
PG_DUMP = find_binaries(use_pgserver=False).exe("pg_dump")


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    built = build_stage()
    try:
        create_service_tables(built, rows=2000)
        yield built
    finally:
        built.stop()


@pytest.fixture(scope="module")
def replicating(stage: Stage) -> Stage:
    return replicate(stage)


def replicate(stage: Stage) -> Stage:
    """The service cloned and replicating (every table streaming)."""
    ex = stage.extraction()
    ex.clone_schema(pg_dump=PG_DUMP)
    stage.target_passwords()
    ex.start()
    wait_streaming(stage)
    return stage


def wait_streaming(stage: Stage, timeout: float = 30) -> None:
    """Until the forward subscription's worker is connected, every table streams, and its slot is less than
    1 MB behind (the statistics drill writes WAL that this slot must decode past)."""
    deadline = time.monotonic() + timeout
    with stage.source_conn() as src, stage.target_conn() as tgt:
        while time.monotonic() < deadline:
            states = extract.table_states(tgt, "edumatrix_extract_feedback")
            slot = src.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                               ("edumatrix_extract_feedback",)).fetchone()
            lag = extract.slot_lag_bytes(src, "edumatrix_extract_feedback")
            if states and set(states.values()) == {"r"} and slot and slot[0] and lag is not None and lag < 2**20:
                return
            time.sleep(0.1)
    raise AssertionError("replication did not stream within the timeout")


def wait_equal(ex: Extraction, timeout: float = 30) -> None:
    """Until the target's tables equal the source's (replication caught up; no writer running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(t.equal for t in ex.verify().tables):
            return
        time.sleep(0.2)
    raise AssertionError("the target did not catch up")


def rows_by_id(uri: str, ids: list[int]) -> dict[int, int]:
    """How many rows of the drill table carry each id."""
    with psycopg.connect(uri, autocommit=True) as conn:
        rows = conn.execute(f"SELECT id, count(*) FROM {SCHEMA}.{ITEMS} WHERE id = ANY(%s) GROUP BY id",
                            (ids,)).fetchall()
    return {int(i): int(n) for i, n in rows}


def can_write_directly(stage: Stage, server: str) -> bool:
    """Whether the service's app role may insert on that server, bypassing the pooler."""
    srv = stage.source if server == "source" else stage.target
    uri = srv.uri("feedback_app", stage.source.passwords()["feedback_app"])
    with psycopg.connect(uri, autocommit=True) as conn:
        row = conn.execute(f"SELECT has_table_privilege('{SCHEMA}.{ITEMS}', 'INSERT')").fetchone()
    return bool(row and row[0])


# -- refusals before any change -------------------------------------------------------------------------
def test_an_unknown_service_is_refused_naming_the_catalog(stage: Stage) -> None:
    with pytest.raises(ExtractError, match=r"unknown service 'billing'.*config/services.yaml"):
        stage.extraction("billing")


def test_an_unreachable_target_is_refused(stage: Stage) -> None:
    ex = stage.extraction(target_uri="postgresql://nobody@127.0.0.1:1/edumatrix?connect_timeout=2")
    with pytest.raises(ExtractError, match="cannot reach the target"):
        ex.clone_schema(pg_dump=PG_DUMP)


def test_a_table_without_a_primary_key_is_refused_before_anything_changes(stage: Stage) -> None:
    with psycopg.connect(stage.source_master, autocommit=True) as conn:
        conn.execute("CREATE TABLE news_system_schema.news_system_nokey (body text)")
    with pytest.raises(ExtractError, match="without a primary key: news_system_nokey"):
        stage.extraction("news_system").clone_schema(pg_dump=PG_DUMP)
    with stage.target_conn() as tgt:
        assert tgt.execute("SELECT 1 FROM pg_roles WHERE rolname = 'news_system_app'").fetchone() is None


def test_a_target_with_a_different_schema_is_refused(stage: Stage) -> None:
    with psycopg.connect(stage.source_master, autocommit=True) as conn:
        conn.execute("CREATE TABLE jobs_portal_schema.jobs_portal_post (id bigint PRIMARY KEY, title text)")
    with stage.target_conn() as tgt:
        tgt.execute("CREATE SCHEMA jobs_portal_schema")
        tgt.execute("CREATE TABLE jobs_portal_schema.jobs_portal_post (id bigint PRIMARY KEY, title varchar(10))")
    with pytest.raises(ExtractError, match=r"differs from the source's: .*jobs_portal_post: .*title"):
        stage.extraction("jobs_portal").clone_schema(pg_dump=PG_DUMP)


# -- clone and replicate --------------------------------------------------------------------------------
def test_clone_schema_twice_changes_nothing_the_second_time(replicating: Stage) -> None:
    changes = replicating.extraction().clone_schema(pg_dump=PG_DUMP)
    assert changes == ["schema feedback_schema already cloned (equal to the source): nothing to do"]


def test_the_clone_carries_policies_triggers_and_functions(replicating: Stage) -> None:
    with replicating.target_conn() as tgt:
        found = tgt.execute(
            "SELECT (SELECT count(*) FROM pg_policies WHERE schemaname = %(s)s), "
            "(SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s AND NOT t.tgisinternal), "
            "(SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s)",
            {"s": SCHEMA}).fetchone()
    # the platform's outbox and inbox have a policy each; the outbox's payload check has its function
    assert found == (2 + len(EVENT_TABLES), 1, 2)


def test_start_twice_is_safe(replicating: Stage) -> None:
    assert replicating.extraction().start() == []


def test_the_initial_copy_under_forced_rls_is_complete(replicating: Stage) -> None:
    ex = replicating.extraction()
    wait_equal(ex)
    assert {t.table: t.target_rows for t in ex.verify().tables} == {"feedback_item": 2000, "feedback_vote": 1000,
                                                                    **dict.fromkeys(EVENT_TABLES, 0)}


def test_status_reports_every_table_streaming_and_the_slot_active(replicating: Stage) -> None:
    status = replicating.extraction().status()
    assert (status["phase"], status["tables"], [s["active"] for s in status["slots"]]) == (
        "replicate", dict.fromkeys(["feedback_item", "feedback_vote", *EVENT_TABLES], "streaming"), [True])


def test_status_as_json_through_the_command(replicating: Stage, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "feedback", "status", "--format", "json", "--source", replicating.source_master,
                 "--target", replicating.target_master])
    status = json.loads(capsys.readouterr().out)
    assert (code, status["phase"], sorted(status["tables"]), status["slots"][0]["slot"]) == (
        0, "replicate", sorted(["feedback_item", "feedback_vote", *EVENT_TABLES]), "edumatrix_extract_feedback")


def test_verify_through_the_command_passes_while_replicating(replicating: Stage,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Tables equal; the sequences are behind by design until cutover moves them."""
    wait_equal(replicating.extraction())
    code = main(["extract", "feedback", "verify", "--format", "json", "--source", replicating.source_master,
                 "--target", replicating.target_master])
    report = json.loads(capsys.readouterr().out)
    assert (code, report["ok"], [t["equal"] for t in report["tables"]]) == (0, True, [True] * (2 + len(EVENT_TABLES)))


def test_a_subscriber_killed_while_streaming_catches_up_after_restart(replicating: Stage) -> None:
    writer = replicating.writer()
    replicating.target._run([replicating.target.state().bindir + "/pg_ctl", "stop", "-D",  # type: ignore[union-attr]
                             str(replicating.target.pgdata), "-m", "immediate", "-w"])
    time.sleep(0.5)
    replicating.target.start()
    time.sleep(0.5)
    writer.stop()
    assert writer.errors == []
    wait_streaming(replicating)
    wait_equal(replicating.extraction())


def test_a_subscriber_killed_during_the_initial_copy_catches_up_after_restart(stage: Stage) -> None:
    with psycopg.connect(stage.source_master, autocommit=True) as conn:
        conn.execute("CREATE TABLE statistics_schema.statistics_event (id bigint PRIMARY KEY, body text)")
        conn.execute("INSERT INTO statistics_schema.statistics_event SELECT g, repeat('s', 200) "
                     "FROM generate_series(1, 300000) g")
    ex = stage.extraction("statistics")
    ex.clone_schema(pg_dump=PG_DUMP)
    ex.start(wait=False)
    with stage.target_conn() as tgt:
        while not extract.table_states(tgt, "edumatrix_extract_statistics"):
            time.sleep(0.01)
        states_at_kill = extract.table_states(tgt, "edumatrix_extract_statistics")
    stage.target._run([stage.target.state().bindir + "/pg_ctl", "stop", "-D",  # type: ignore[union-attr]
                       str(stage.target.pgdata), "-m", "immediate", "-w"])
    stage.target.start()
    with stage.source_conn() as src, stage.target_conn() as tgt:
        ex.wait_for_copy(src, tgt, timeout=120)
    assert states_at_kill.get("statistics_event") in ("d", "i")
    assert ex.verify().tables[0].equal


# -- cutover refused or failing: the source keeps serving -------------------------------------------------
def test_a_dry_run_checks_and_changes_nothing(replicating: Stage) -> None:
    wait_streaming(replicating)
    result = replicating.extraction().cutover(dry_run=True)
    assert (result.notes[-1].startswith("checks passed"), replicating.switch().pointing_at(),
            can_write_directly(replicating, "source")) == (True, "source", True)


def test_a_table_created_during_replication_makes_cutover_refuse_before_the_freeze(replicating: Stage) -> None:
    wait_streaming(replicating)
    with replicating.source_conn() as src:
        src.execute(f"CREATE TABLE {SCHEMA}.feedback_late (id bigint PRIMARY KEY)")
        try:
            with pytest.raises(ExtractError, match="feedback_late: missing on the target"):
                replicating.extraction().cutover()
        finally:
            src.execute(f"DROP TABLE {SCHEMA}.feedback_late")
    assert (replicating.switch().pointing_at(), can_write_directly(replicating, "source")) == ("source", True)


FAILING_STEPS = [s for s in CUTOVER_STEPS if s not in ("preflight", "verify")]


class Injected(RuntimeError):
    pass


def fail_at(step: str) -> Callable[[str], None]:
    def hook(name: str) -> None:
        if name == step:
            raise Injected(f"injected at {step}")
    return hook


@pytest.mark.parametrize("step", FAILING_STEPS)
def test_a_cutover_failing_at_a_step_leaves_the_source_serving(replicating: Stage, step: str) -> None:
    wait_streaming(replicating)
    writer = replicating.writer()
    try:
        with pytest.raises(ExtractError, match=f"failed at step {step}"):
            replicating.extraction().cutover(hook=fail_at(step))
        time.sleep(0.2)
        acknowledged_after = len(writer.acknowledged)
        time.sleep(0.3)
    finally:
        writer.stop()
    with replicating.target_conn() as tgt:
        forward = extract.subscription_enabled(tgt, "edumatrix_extract_feedback")
    with replicating.source_conn() as src:
        back = extract.subscription_enabled(src, "edumatrix_extract_feedback_back")
    assert (writer.errors, replicating.switch().pointing_at(), can_write_directly(replicating, "source"),
            forward, bool(back), len(writer.acknowledged) > acknowledged_after) == (
        [], "source", True, True, False, True)


def test_a_pause_that_cannot_finish_in_time_is_undone(replicating: Stage) -> None:
    wait_streaming(replicating)
    with psycopg.connect(replicating.app_uri(), autocommit=True, prepare_threshold=None) as long_running:
        long_running.execute("BEGIN")
        long_running.execute(f"SELECT count(*) FROM {SCHEMA}.{ITEMS}")
        with pytest.raises(ExtractError, match=r"PAUSE did not finish within 0\.5 s"):
            replicating.extraction(pause_timeout=0.5).cutover()
        long_running.execute("COMMIT")
    writer = replicating.writer()
    time.sleep(0.3)
    writer.stop()
    assert (writer.errors, replicating.switch().pointing_at()) == ([], "source")


# -- the cutover under load ------------------------------------------------------------------------------
@dataclass
class Cutover:
    result: SwitchResult
    writer: Writer
    moved_to: int


@pytest.fixture(scope="module")
def cut_over(replicating: Stage) -> Cutover:
    wait_streaming(replicating)
    writer = replicating.writer()
    time.sleep(0.3)
    result = replicating.extraction().cutover()
    time.sleep(0.5)
    writer.stop()
    return Cutover(result, writer, result.sequences["feedback_item_id_seq"])


def test_the_writer_saw_no_error_during_the_cutover(cut_over: Cutover) -> None:
    assert cut_over.writer.errors == []


def test_every_acknowledged_write_is_on_the_target_exactly_once(replicating: Stage, cut_over: Cutover) -> None:
    ids = cut_over.writer.acknowledged
    assert rows_by_id(replicating.target_master, ids) == dict.fromkeys(ids, 1)


def test_writes_after_the_cutover_went_to_the_target(replicating: Stage, cut_over: Cutover) -> None:
    """Ids past the moved sequence were handed out by the target's sequence."""
    assert any(i > cut_over.moved_to for i in cut_over.writer.acknowledged)


def test_the_target_as_of_the_freeze_has_the_sources_checksums(cut_over: Cutover) -> None:
    assert cut_over.result.verify is not None
    assert [t.equal for t in cut_over.result.verify.tables] == [True] * (2 + len(EVENT_TABLES))


def test_the_targets_sequences_are_ahead_of_the_source(cut_over: Cutover) -> None:
    assert cut_over.result.verify is not None
    assert [s.ok for s in cut_over.result.verify.sequences] == [True]


def test_after_the_cutover_the_source_is_fenced_and_the_target_writable(replicating: Stage, cut_over: Cutover) -> None:
    assert (can_write_directly(replicating, "source"), can_write_directly(replicating, "target")) == (False, True)


def test_a_second_cutover_changes_nothing(replicating: Stage, cut_over: Cutover) -> None:
    result = replicating.extraction().cutover()
    assert result.notes == ["traffic is already on the target: nothing to do"]


# -- rollback before finish: lossless, by reverse replication ---------------------------------------------
@pytest.fixture(scope="module")
def rolled_back(replicating: Stage, cut_over: Cutover) -> Writer:
    writer = replicating.writer()
    time.sleep(0.3)
    replicating.extraction().rollback()
    time.sleep(0.3)
    writer.stop()
    return writer


def test_rollback_returns_traffic_to_the_source_without_errors(replicating: Stage, rolled_back: Writer) -> None:
    assert (rolled_back.errors, replicating.switch().pointing_at(), can_write_directly(replicating, "source")) == (
        [], "source", True)


def test_rollback_loses_no_write_made_on_the_target(replicating: Stage, cut_over: Cutover,
                                                     rolled_back: Writer) -> None:
    ids = cut_over.writer.acknowledged + rolled_back.acknowledged
    assert rows_by_id(replicating.source_master, ids) == dict.fromkeys(ids, 1)


def test_a_second_rollback_changes_nothing(replicating: Stage, rolled_back: Writer) -> None:
    assert replicating.extraction().rollback().notes == ["traffic is already on the source: nothing to do"]


# -- cutover again, then finish ---------------------------------------------------------------------------
def test_finish_removes_replication_and_leaves_the_source_read_only(replicating: Stage, rolled_back: Writer) -> None:
    wait_streaming(replicating)
    ex = replicating.extraction()
    ex.cutover()
    ex.finish()
    with replicating.source_conn() as src, replicating.target_conn() as tgt:
        left = [r[0] for r in src.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE "
                                          "'edumatrix_extract_feedback%'")]
        left += [r[0] for r in tgt.execute("SELECT subname FROM pg_subscription WHERE subname LIKE "
                                           "'edumatrix_extract_feedback%'")]
    assert (left, can_write_directly(replicating, "source"), ex.status()["phase"]) == ([], False, "complete")


def test_finish_twice_is_safe(replicating: Stage) -> None:
    assert replicating.extraction().finish() == []
