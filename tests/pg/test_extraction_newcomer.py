"""A PgBouncer task that ECS starts during a cutover's freeze (issue 13): it must not serve the old side, fenced
by then, while the others are paused. The switch (edumatrix_db/ops/traffic.py `AgentPoolerSet`) sets the backend
record's freeze marker once the listed tasks are paused, and re-lists the tasks before RESUME, pausing and waiting
for each newcomer; the newcomer's agent (edumatrix_db/ops/pooler_agent.py)
reads the marker when it starts and pauses its own pools until the marker is cleared.

Two real servers, PgBouncers with their agents (a file record stands in for SSM), writers through each; a
newcomer PgBouncer (its ini leading to the source, as a task starts before its agent reads the record) is started
with its agent inside the freeze by the cutover's step hook, and a writer through it at once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest

from edumatrix_db.ops.extract import ExtractError, pooled_aliases
from edumatrix_db.ops.pooler_agent import FileRecordStore
from tests.pg.extraction_support import SERVICE, Bouncer, Stage, Writer
from tests.pg.test_extraction import Injected, can_write_directly, rows_by_id, wait_streaming
from tests.pg.test_extraction_poolers import agent_stage

pytestmark = pytest.mark.postgres

ALIASES = tuple(pooled_aliases(SERVICE))


stage = pytest.fixture(scope="module", name="stage")(agent_stage)


@dataclass
class Newcomers:
    """PgBouncers (with agents) started by the cutover's hook at the given steps, each with a writer started at
    once in its own thread (its first write waits in the paused pool)."""

    stage: Stage
    at: tuple[str, ...]
    fail_at: str | None = None
    bouncers: list[Bouncer] = field(default_factory=list)
    writers: list[Writer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def hook(self, name: str) -> None:
        if name in self.at:
            [bouncer] = self.stage.more_bouncers(1)[-1:]
            self.bouncers.append(bouncer)
            thread = threading.Thread(target=lambda: self.writers.append(self.stage.writer(bouncer)), daemon=True)
            thread.start()
            self.threads.append(thread)
        if name == self.fail_at:
            raise Injected(f"injected at {name}")

    def stop(self) -> None:
        for thread in self.threads:
            thread.join(30)
        time.sleep(0.3)
        for writer in self.writers:
            writer.stop()


def _cutover(stage: Stage, newcomers: Newcomers, expect: str | None = None) -> list[Writer]:
    """A cutover with a writer through every PgBouncer already running, and the newcomers; the old writers."""
    wait_streaming(stage)
    writers = [stage.writer(b) for b in stage.bouncers]
    try:
        if expect is None:
            stage.extraction().cutover(hook=newcomers.hook)
        else:
            with pytest.raises(ExtractError, match=expect):
                stage.extraction().cutover(hook=newcomers.hook)
        time.sleep(0.3)
    finally:
        newcomers.stop()
        for writer in writers:
            writer.stop()
    return writers


def _state(stage: Stage) -> tuple:
    """Where each PgBouncer leads, whether any is paused, where the record leads and whether it is frozen."""
    assert stage.record is not None
    record = FileRecordStore(stage.record).read()
    side = next((s for s, b in stage.backends.items() if b.key == record.backend), None)
    paused = any(b.paused(ALIASES) for b in stage.bouncers)
    return {stage.side_of(b) for b in stage.bouncers}, paused, side, record.frozen


@pytest.fixture(scope="module")
def undone(stage: Stage) -> tuple[Newcomers, list[Writer]]:
    newcomers = Newcomers(stage, at=("catch-up",), fail_at="unfence-target")
    writers = _cutover(stage, newcomers, expect="failed at step unfence-target")
    return newcomers, writers


def test_a_cutover_undone_after_a_newcomer_leaves_every_pooler_on_the_source_resumed_and_the_record_thawed(
        stage: Stage, undone: tuple[Newcomers, list[Writer]]) -> None:
    assert (_state(stage), can_write_directly(stage, "source")) == (({"source"}, False, "source", False), True)


def test_after_the_undo_no_writer_saw_an_error_not_even_the_newcomers(
        undone: tuple[Newcomers, list[Writer]]) -> None:
    newcomers, writers = undone
    assert ([w.errors for w in writers], [w.errors for w in newcomers.writers]) == ([[], []], [[]])


def test_after_the_undo_the_newcomers_writes_are_on_the_source_once(
        stage: Stage, undone: tuple[Newcomers, list[Writer]]) -> None:
    ids = [i for w in undone[0].writers for i in w.acknowledged]
    assert (len(ids) > 0, rows_by_id(stage.source_master, ids)) == (True, dict.fromkeys(ids, 1))


@pytest.fixture(scope="module")
def cut_over(stage: Stage, undone: tuple) -> tuple[Newcomers, list[Writer]]:
    """Newcomers started before the switch (catch-up) and after it, before RESUME (unfence-target)."""
    newcomers = Newcomers(stage, at=("catch-up", "unfence-target"))
    writers = _cutover(stage, newcomers)
    return newcomers, writers


def test_the_cutover_moves_every_pooler_and_every_newcomer_to_the_target_resumed_and_thawed(
        stage: Stage, cut_over: tuple[Newcomers, list[Writer]]) -> None:
    assert _state(stage) == ({"target"}, False, "target", False)


def test_no_writer_through_a_newcomer_saw_an_error_so_none_reached_the_fenced_source(
        cut_over: tuple[Newcomers, list[Writer]]) -> None:
    newcomers, writers = cut_over
    assert ([w.errors for w in newcomers.writers], [w.errors for w in writers]) == ([[], []], [[], [], []])


def test_every_write_acknowledged_through_a_newcomer_is_on_the_target_once(
        stage: Stage, cut_over: tuple[Newcomers, list[Writer]]) -> None:
    ids = [i for w in cut_over[0].writers for i in w.acknowledged]
    assert (len(ids) > 0, rows_by_id(stage.target_master, ids)) == (True, dict.fromkeys(ids, 1))


