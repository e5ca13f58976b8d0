"""The cutover through several PgBouncers at once (issue 13): production runs the pooler as 2+ ECS tasks, each
holding its own clients (components/service_pooler.py), so the switch pauses all, retargets all and resumes all
(edumatrix_db/ops/traffic.py `PoolerSet`), and on any failure resumes all. Two real servers, two real
PgBouncers, a writer through each. The tests run in file order on one stage: failures first, then the cutover."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from edumatrix_db.ops.extract import ExtractError
from edumatrix_db.ops.traffic import PoolerSet
from tests.pg.extraction_support import ITEMS, SCHEMA, Bouncer, Stage, build_stage, create_service_tables
from tests.pg.test_extraction import can_write_directly, fail_at, replicate, rows_by_id, wait_streaming

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    """Two servers, two PgBouncers in front of the service, replication streaming."""
    built = build_stage()
    try:
        create_service_tables(built, rows=500)
        built.more_bouncers(1)
        yield replicate(built)
    finally:
        built.stop()


def _bouncers(stage: Stage) -> list[Bouncer]:
    return [stage.bouncer, *stage.more]


def _sides(stage: Stage) -> list[str | None]:
    """Where each PgBouncer's pools point."""
    return [stage.switch(bouncer=b).pointing_at() for b in _bouncers(stage)]


def _paused(bouncer: Bouncer) -> bool:
    """Whether any of the service's pools is paused in that PgBouncer (SHOW DATABASES, column `paused`)."""
    with psycopg.connect(bouncer.admin_uri(), autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cur = conn.execute("SHOW DATABASES")
        columns = [c.name for c in cur.description or ()]
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
    return any(int(r["paused"]) for r in rows if r["name"] in ("feedback", "feedback_readonly"))


def test_the_stage_switches_both_poolers_as_one_set(stage: Stage) -> None:
    switch = stage.switches()
    assert isinstance(switch, PoolerSet)
    assert len(switch.switches) == 2


def test_a_long_transaction_on_one_pooler_resumes_both_and_changes_nothing(stage: Stage) -> None:
    wait_streaming(stage)
    with psycopg.connect(stage.app_uri(stage.more[0]), autocommit=True, prepare_threshold=None) as long_running:
        long_running.execute("BEGIN")
        long_running.execute(f"SELECT count(*) FROM {SCHEMA}.{ITEMS}")
        with pytest.raises(ExtractError, match=r"PAUSE failed on 1 of 2 pooler\(s\).*every pooler was resumed"):
            stage.extraction(pause_timeout=0.5).cutover()
        long_running.execute("COMMIT")
    writers = [stage.writer(b) for b in _bouncers(stage)]
    time.sleep(0.3)
    for writer in writers:
        writer.stop()
    assert ([w.errors for w in writers], [_paused(b) for b in _bouncers(stage)], _sides(stage)) == (
        [[], []], [False, False], ["source", "source"])


def test_a_cutover_failing_after_the_switch_points_both_poolers_back(stage: Stage) -> None:
    wait_streaming(stage)
    writers = [stage.writer(b) for b in _bouncers(stage)]
    try:
        with pytest.raises(ExtractError, match="failed at step unfence-target"):
            stage.extraction().cutover(hook=fail_at("unfence-target"))
        time.sleep(0.2)
    finally:
        for writer in writers:
            writer.stop()
    assert ([w.errors for w in writers], _sides(stage), [_paused(b) for b in _bouncers(stage)],
            can_write_directly(stage, "source")) == ([[], []], ["source", "source"], [False, False], True)


@pytest.fixture(scope="module")
def cut_over(stage: Stage) -> list:
    wait_streaming(stage)
    writers = [stage.writer(b) for b in _bouncers(stage)]
    time.sleep(0.3)
    stage.extraction().cutover()
    time.sleep(0.5)
    for writer in writers:
        writer.stop()
    return writers


def test_the_cutover_moves_every_pooler_to_the_target(stage: Stage, cut_over: list) -> None:
    assert (_sides(stage), [_paused(b) for b in _bouncers(stage)]) == (["target", "target"], [False, False])


def test_the_writers_through_both_poolers_saw_no_error(cut_over: list) -> None:
    assert [w.errors for w in cut_over] == [[], []]


def test_every_write_acknowledged_through_either_pooler_is_on_the_target_once(stage: Stage, cut_over: list) -> None:
    ids = [i for w in cut_over for i in w.acknowledged]
    assert rows_by_id(stage.target_master, ids) == dict.fromkeys(ids, 1)
