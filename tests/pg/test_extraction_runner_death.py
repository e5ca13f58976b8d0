"""The runner dying inside the cutover's freeze, and the documented recovery (issue 13; docs/extraction-runbook.md,
"If the runner dies inside the freeze").

A real `edumatrix-db extract feedback cutover` subprocess (the pooler record and both PgBouncers' admin consoles, as
an operator runs it) stops itself at a step (cli/extract.py HALT_VARIABLE) and is killed there with SIGKILL: no
undo runs, as when the runner's host is lost. What it left is read from the PgBouncers, the record and the servers;
then the runbook's command (`cutover` again, or `rollback`) is run as a subprocess too, and the service must serve
again from one side with every write a client saw acknowledged there exactly once and no client error (the
writers only waited). Two real servers, two PgBouncers with their agents (a file record stands in for SSM), a writer
through each. The drills run in file order on one stage, each from traffic on the source. A dead runner's switch
lock (a session advisory lock on the source) goes with its connection, so the re-run may take over; a live one's
refuses a second runner."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edumatrix_db.cli.extract import HALT_VARIABLE
from edumatrix_db.ops.extract import ExtractError, pooled_aliases, take_switch_lock
from edumatrix_db.ops.pooler_agent import FileRecordStore
from tests.pg.extraction_support import SERVICE, Stage, Writer, _port_of
from tests.pg.test_extraction import can_write_directly, rows_by_id, wait_equal, wait_streaming
from tests.pg.test_extraction_poolers import agent_stage

pytestmark = pytest.mark.postgres

ALIASES = tuple(pooled_aliases(SERVICE))
EDUMATRIX_DB = str(Path(sys.executable).parent / "edumatrix-db")

stage = pytest.fixture(scope="module", name="stage")(agent_stage)


def _command(stage: Stage, operation: str) -> list[str]:
    """`edumatrix-db extract feedback OPERATION` as the runbook gives it for a pooler with agents."""
    command = [EDUMATRIX_DB, "extract", SERVICE, operation, "--source", stage.source_master,
               "--target", stage.target_master, "--replication-uri", stage.replicator_uri(stage.source),
               "--target-replication-uri", stage.replicator_uri(stage.target), "--pooler-record", str(stage.record),
               "--source-pool-host", f"127.0.0.1:{_port_of(stage.source)}",
               "--target-pool-host", f"127.0.0.1:{_port_of(stage.target)}"]
    for bouncer in stage.bouncers:
        command += ["--pooler-admin", bouncer.admin_uri()]
    return command


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): the state field of /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def _kill_inside_the_freeze(stage: Stage, step: str) -> None:
    """Run `cutover`, let it stop itself as it reaches `step`, and SIGKILL it there."""
    env = {**os.environ, HALT_VARIABLE: step}
    runner = subprocess.Popen(_command(stage, "cutover"), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while not _stopped(runner.pid):
        if runner.poll() is not None or time.monotonic() > deadline:
            runner.kill()
            out = runner.communicate()[0].decode(errors="replace")
            raise AssertionError(f"the cutover did not reach step {step} (exit {runner.returncode}): {out[-3000:]}")
        time.sleep(0.01)
    runner.kill()
    runner.wait(30)


def _state(stage: Stage) -> dict[str, Any]:
    """Where the PgBouncers lead and whether any pool is paused, where the record leads and its freeze marker, and
    which side takes the service's writes directly (not fenced)."""
    assert stage.record is not None
    record = FileRecordStore(stage.record).read()
    return {"poolers": sorted({str(stage.side_of(b)) for b in stage.bouncers}),
            "paused": [b.paused(ALIASES) for b in stage.bouncers],
            "record": next((s for s, b in stage.backends.items() if b.key == record.backend), None),
            "marker": record.frozen,
            "writable": [side for side in ("source", "target") if can_write_directly(stage, side)]}


@dataclass
class Drill:
    left: dict[str, Any]
    """What the dead runner left."""
    recovered: dict[str, Any]
    """The state after the recovery command."""
    recovery: subprocess.CompletedProcess[str]
    writers: list[Writer]
    held: float
    """The longest a writer waited for one write: from the dead run's PAUSE to the recovery's RESUME."""

    @property
    def acknowledged(self) -> list[int]:
        return [i for w in self.writers for i in w.acknowledged]


def _drill(stage: Stage, step: str, recover_with: str) -> Drill:
    """Writers through both PgBouncers, the cutover killed at `step`, then `recover_with` run once."""
    wait_streaming(stage)
    writers = [stage.writer(b) for b in stage.bouncers]
    try:
        _kill_inside_the_freeze(stage, step)
        left = _state(stage)
        recovery = subprocess.run(_command(stage, recover_with), capture_output=True, text=True, timeout=300)
        time.sleep(0.3)
    finally:
        for writer in writers:
            writer.stop()
    drill = Drill(left, _state(stage), recovery, writers, max(w.max_latency for w in writers))
    print(f"\n[drill] killed at {step}, recovered with {recover_with}: clients held {drill.held:.2f} s")
    return drill


def _recovered(drill: Drill) -> tuple[int, dict[str, Any]]:
    """The recovery command's exit code and the state it left (its output printed for a failing test)."""
    print(drill.recovery.stdout + drill.recovery.stderr)
    return drill.recovery.returncode, drill.recovered


def _writes(stage: Stage, drill: Drill, side: str) -> tuple[list[list[str]], bool]:
    """What each writer saw as errors, and whether every acknowledged write is on `side` exactly once."""
    ids = drill.acknowledged
    on_side = rows_by_id(stage.source_master if side == "source" else stage.target_master, ids)
    return [w.errors for w in drill.writers], bool(ids) and on_side == dict.fromkeys(ids, 1)


NO_ERROR_EACH_WRITE_ONCE: tuple[list[list[str]], bool] = ([[], []], True)


def _back_to_the_source(stage: Stage) -> None:
    """A plain rollback (in this process), so that the next drill starts from traffic on the source (its
    preflight waits for the way back's worker to connect: extract.WORKER_START_SECONDS)."""
    stage.extraction().rollback()


SOURCE_SERVING = {"poolers": ["source"], "paused": [False, False], "record": "source", "marker": False,
                  "writable": ["source"]}
"""After a rollback: the target fenced again (before any cutover it is not: replication alone writes it)."""
TARGET_SERVING = {"poolers": ["target"], "paused": [False, False], "record": "target", "marker": False,
                  "writable": ["target"]}


# -- a runner still alive ----------------------------------------------------------------------------------------
def test_a_switch_refuses_while_another_runner_holds_the_services_switch_lock_and_pauses_nothing(
        stage: Stage) -> None:
    with stage.source_conn() as other_runner:
        assert take_switch_lock(other_runner, SERVICE)
        with pytest.raises(ExtractError) as refused:
            stage.extraction().cutover()
    assert ("another cutover or rollback of feedback is running" in str(refused.value),
            [b.paused(ALIASES) for b in stage.bouncers]) == (True, [False, False])


# -- killed after PAUSE and the freeze marker, recovered with rollback --------------------------------------------
@pytest.fixture(scope="module")
def after_marker(stage: Stage) -> Drill:
    return _drill(stage, "fence", "rollback")


def test_killed_after_the_marker_it_leaves_both_poolers_paused_the_marker_set_and_nothing_fenced(
        after_marker: Drill) -> None:
    assert after_marker.left == {"poolers": ["source"], "paused": [True, True], "record": "source", "marker": True,
                                 "writable": ["source", "target"]}


def test_killed_after_the_marker_rollback_resumes_both_poolers_on_the_source_and_clears_the_marker(
        after_marker: Drill) -> None:
    assert _recovered(after_marker) == (0, {**SOURCE_SERVING, "writable": ["source", "target"]})


def test_killed_after_the_marker_no_writer_saw_an_error_and_every_acknowledged_write_is_on_the_source_once(
        stage: Stage, after_marker: Drill) -> None:
    assert _writes(stage, after_marker, "source") == NO_ERROR_EACH_WRITE_ONCE


# -- killed after the fence, recovered with cutover --------------------------------------------------------------
@pytest.fixture(scope="module")
def after_fence(stage: Stage, after_marker: Drill) -> Drill:
    drill = _drill(stage, "catch-up", "cutover")
    _back_to_the_source(stage)
    return drill


def test_killed_after_the_fence_it_leaves_the_source_fenced(after_fence: Drill) -> None:
    assert after_fence.left == {"poolers": ["source"], "paused": [True, True], "record": "source", "marker": True,
                                "writable": ["target"]}


def test_killed_after_the_fence_cutover_again_completes_on_the_target(after_fence: Drill) -> None:
    assert _recovered(after_fence) == (0, TARGET_SERVING)


def test_killed_after_the_fence_every_acknowledged_write_is_on_the_target_once_and_no_writer_saw_an_error(
        stage: Stage, after_fence: Drill) -> None:
    assert _writes(stage, after_fence, "target") == NO_ERROR_EACH_WRITE_ONCE


# -- killed after forward replication stopped (caught up), recovered with cutover ---------------------------------
@pytest.fixture(scope="module")
def after_catch_up(stage: Stage, after_fence: Drill) -> Drill:
    drill = _drill(stage, "sequences", "cutover")
    _back_to_the_source(stage)
    return drill


def test_killed_after_the_catch_up_cutover_again_completes_on_the_target_without_waiting_for_replication(
        after_catch_up: Drill) -> None:
    assert (*_recovered(after_catch_up), "the target had applied everything" in " ".join(
        after_catch_up.recovery.stdout.split())) == (
        0, TARGET_SERVING, True)


def test_killed_after_the_catch_up_every_acknowledged_write_is_on_the_target_once(
        stage: Stage, after_catch_up: Drill) -> None:
    assert _writes(stage, after_catch_up, "target") == NO_ERROR_EACH_WRITE_ONCE


# -- killed after the record switch, recovered with rollback, then with cutover ---------------------------------
@pytest.fixture(scope="module")
def switched_then_rolled_back(stage: Stage, after_catch_up: Drill) -> Drill:
    return _drill(stage, "unfence-target", "rollback")


def test_killed_after_the_record_switch_both_poolers_run_the_target_paused_with_both_sides_fenced(
        switched_then_rolled_back: Drill) -> None:
    # (the target was fenced by the rollback before this drill; the dead run had not lifted it yet)
    assert switched_then_rolled_back.left == {"poolers": ["target"], "paused": [True, True], "record": "target",
                                              "marker": True, "writable": []}


def test_killed_after_the_record_switch_rollback_returns_both_poolers_to_the_source_resumed(
        switched_then_rolled_back: Drill) -> None:
    assert _recovered(switched_then_rolled_back) == (0, SOURCE_SERVING)


def test_killed_after_the_record_switch_and_rolled_back_every_acknowledged_write_is_on_the_source_once(
        stage: Stage, switched_then_rolled_back: Drill) -> None:
    assert _writes(stage, switched_then_rolled_back, "source") == NO_ERROR_EACH_WRITE_ONCE


@pytest.fixture(scope="module")
def switched_then_cut_over(stage: Stage, switched_then_rolled_back: Drill) -> Drill:
    return _drill(stage, "unfence-target", "cutover")


def test_killed_after_the_record_switch_cutover_again_lifts_the_targets_fence_and_resumes_there(
        switched_then_cut_over: Drill) -> None:
    assert _recovered(switched_then_cut_over) == (0, TARGET_SERVING)


def test_killed_after_the_record_switch_and_cut_over_every_acknowledged_write_is_on_the_target_once(
        stage: Stage, switched_then_cut_over: Drill) -> None:
    assert _writes(stage, switched_then_cut_over, "target") == NO_ERROR_EACH_WRITE_ONCE


def test_after_every_drill_the_target_still_equals_the_source_through_the_way_back(
        stage: Stage, switched_then_cut_over: Drill) -> None:
    # the way back applies the last drill's writes asynchronously: under load that takes more than a second
    wait_equal(stage.extraction())
    report = stage.extraction().verify()
    assert [t.table for t in report.tables if not t.equal] == []
