"""The cutover through several PgBouncers at once, the production way (issue 13): production runs the pooler as
2+ ECS tasks, each holding its own clients (components/service_pooler.py), each with an agent that applies the
service's backend record to its own ini (edumatrix_db/ops/pooler_agent.py). The switch (edumatrix_db/ops/traffic.py
`AgentPoolerSet`) pauses all, writes the record, waits until every PgBouncer runs the new backend, and resumes
all; on any failure it resumes all, and a PgBouncer whose agent never takes the record gets the record restored.
Two real servers, two real PgBouncers with their agents (a file record stands in for SSM), a writer through
each. The tests run in file order on one stage: failures first, then the cutover."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any, TypeAlias

import psycopg
import pytest

from edumatrix_db.ops.extract import ExtractError
from edumatrix_db.ops.pooler_agent import FileRecordStore
from edumatrix_db.ops.traffic import AgentPoolerSet
from tests.pg.extraction_support import ITEMS, SCHEMA, Bouncer, Stage, build_stage, create_service_tables
from tests.pg.test_extraction import can_write_directly, fail_at, replicate, rows_by_id, wait_streaming

pytestmark = pytest.mark.postgres


def agent_stage() -> Iterator[Stage]:
    """Two servers, two PgBouncers with their agents in front of the service, replication streaming."""
    built = build_stage()
    try:
        create_service_tables(built, rows=500)
        built.more_bouncers(1)
        built.use_agents()
        yield replicate(built)
    finally:
        built.stop()


stage = pytest.fixture(scope="module", name="stage")(agent_stage)


def _bouncers(stage: Stage) -> list[Bouncer]:
    return [stage.bouncer, *stage.more]


def _sides(stage: Stage) -> list[str | None]:
    """Where each PgBouncer's pools lead, as it runs them."""
    return [stage.side_of(b) for b in _bouncers(stage)]


def _record_side(stage: Stage) -> str | None:
    assert stage.record is not None
    record = FileRecordStore(stage.record).read()
    return next((side for side, b in stage.backends.items() if b.key == record.backend), None)


def _paused(bouncer: Bouncer) -> bool:
    """Whether any of the service's pools is paused in that PgBouncer."""
    return bouncer.paused(("feedback", "feedback_readonly"))


def test_the_stage_switches_both_poolers_through_the_backend_record(stage: Stage) -> None:
    switch = stage.switches()
    assert isinstance(switch, AgentPoolerSet)
    assert (len(switch.switches), _sides(stage), _record_side(stage)) == (2, ["source", "source"], "source")


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


# What a failed cutover left (see _failed_cutover_under_load).
Outcome: TypeAlias = tuple[list[list[str]], list[str | None], str | None, list[bool], bool]


def _failed_cutover_under_load(stage: Stage, match: str, **cutover: Any) -> Outcome:
    """A cutover expected to fail (`match`) with a writer through each PgBouncer; then what the writers saw, where
    each PgBouncer leads, where the record leads, which are paused, and whether the source takes writes."""
    wait_streaming(stage)
    writers = [stage.writer(b) for b in _bouncers(stage)]
    try:
        with pytest.raises(ExtractError, match=match):
            stage.extraction().cutover(**cutover)
        time.sleep(0.2)
    finally:
        for writer in writers:
            writer.stop()
    return ([w.errors for w in writers], _sides(stage), _record_side(stage), [_paused(b) for b in _bouncers(stage)],
            can_write_directly(stage, "source"))


UNDONE: Outcome = ([[], []], ["source", "source"], "source", [False, False], True)
"""No writer saw an error, both PgBouncers and the record lead to the source, none is paused, the source writes."""


def test_a_cutover_failing_after_the_switch_points_both_poolers_back(stage: Stage) -> None:
    assert _failed_cutover_under_load(stage, "failed at step unfence-target", hook=fail_at("unfence-target")) == UNDONE


@pytest.fixture
def hung_agent(stage: Stage) -> Iterator[None]:
    """The second PgBouncer's agent stopped (SIGSTOP): it never takes a record, as a task whose agent hangs."""
    agent = stage.more[0].agent
    assert agent is not None
    agent.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        agent.send_signal(signal.SIGCONT)


def test_a_pooler_that_never_takes_the_record_fails_the_cutover_at_the_switch(stage: Stage, hung_agent: None) -> None:
    wait_streaming(stage)
    with pytest.raises(ExtractError, match=r"failed at step switch: 1 of 2 pooler\(s\) did not take the target"):
        stage.extraction().cutover()


def test_after_a_pooler_never_took_the_record_both_run_the_source_resumed_and_the_record_leads_there(
        stage: Stage, hung_agent: None) -> None:
    assert _failed_cutover_under_load(stage, r"the backend record .* was restored and every pooler runs") == UNDONE


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
    assert (_sides(stage), _record_side(stage), [_paused(b) for b in _bouncers(stage)]) == (
        ["target", "target"], "target", [False, False])


def test_the_writers_through_both_poolers_saw_no_error(cut_over: list) -> None:
    assert [w.errors for w in cut_over] == [[], []]


def test_every_write_acknowledged_through_either_pooler_is_on_the_target_once(stage: Stage, cut_over: list) -> None:
    ids = [i for w in cut_over for i in w.acknowledged]
    assert rows_by_id(stage.target_master, ids) == dict.fromkeys(ids, 1)
