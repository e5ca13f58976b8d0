"""The production switch's order around the freeze marker (edumatrix_db/ops/traffic.py `AgentPoolerSet`), with
consoles that record what they are asked instead of a PgBouncer (the real ones: tests/pg/test_extraction_newcomer.py
and tests/pg/test_extraction_poolers.py): the marker is set only once every listed task is paused and cleared
before any task is resumed; a task listed just before the RESUME is paused, and must report the record's backend
first."""

from __future__ import annotations

from pathlib import Path

import pytest

from edumatrix_db.ops.pooler_agent import BackendRecord, FileRecordStore
from edumatrix_db.ops.traffic import AgentPoolerSet, Backend, PgBouncerConsole, TrafficError

SOURCE = Backend("source.example", 5432, "edumatrix")
TARGET = Backend("target.example", 5432, "edumatrix")
Log = list[tuple[str, ...]]


class Console(PgBouncerConsole):
    """A task's admin console that logs PAUSE / RESUME and reports `running` as its pools' backend."""

    def __init__(self, task: str, log: Log, running: Backend = SOURCE, pause_fails: bool = False) -> None:
        super().__init__(f"postgresql://admin@{task}:6432/pgbouncer", ("edumatrix",),
                         {"source": SOURCE, "target": TARGET})
        self.log, self.running, self.pause_fails = log, running, pause_fails

    def pause(self) -> float:
        if self.pause_fails:
            raise TrafficError(f"PAUSE failed on {self.name}")
        self.log.append(("pause", self.name))
        return 0.0

    def resume(self) -> None:
        self.log.append(("resume", self.name))

    def reports(self, backend: Backend) -> bool:
        return self.running == backend


class Store(FileRecordStore):
    def __init__(self, path: Path, log: Log) -> None:
        super().__init__(path)
        self.log = log

    def write(self, record: BackendRecord) -> None:
        super().write(record)
        self.log.append(("frozen" if record.frozen else "thawed", record.host))


def _set(tmp_path: Path, log: Log, consoles: list[Console], listed: list[Console] | None = None) -> AgentPoolerSet:
    store = Store(tmp_path / "record.json", log)
    FileRecordStore(store.path).write(BackendRecord(*SOURCE.key))
    return AgentPoolerSet(consoles, store, ack_timeout=0.05,
                          discover=(lambda: listed) if listed is not None else None)


def test_the_freeze_marker_is_set_only_after_every_listed_task_is_paused(tmp_path: Path) -> None:
    log: Log = []
    _set(tmp_path, log, [Console("a", log), Console("b", log)]).pause()
    assert (sorted(log[:2]), log[2:]) == ([("pause", "a:6432/pgbouncer"), ("pause", "b:6432/pgbouncer")],
                                          [("frozen", "source.example")])


def test_the_freeze_marker_is_cleared_before_any_task_is_resumed(tmp_path: Path) -> None:
    log: Log = []
    switch = _set(tmp_path, log, [Console("a", log), Console("b", log)])
    switch.pause()
    del log[:]
    switch.resume()
    assert (log[0], sorted(log[1:])) == (("thawed", "source.example"),
                                         [("resume", "a:6432/pgbouncer"), ("resume", "b:6432/pgbouncer")])


def test_a_pause_that_fails_resumes_every_task_and_never_sets_the_marker(tmp_path: Path) -> None:
    log: Log = []
    switch = _set(tmp_path, log, [Console("a", log), Console("b", log, pause_fails=True)])
    with pytest.raises(TrafficError, match="every pooler was resumed"):
        switch.pause()
    assert [entry for entry in log if entry[0] in ("frozen", "thawed")] == []


def test_the_switch_itself_does_not_relist_the_tasks_each_relisting_costs_ecs_calls_in_the_freeze(
        tmp_path: Path) -> None:
    log: Log = []
    a, b = Console("a", log, TARGET), Console("b", log, TARGET)
    asked: list[str] = []
    switch = _set(tmp_path, log, [a, b])

    def relist() -> list[Console]:
        asked.append("listed")
        return [a, b]

    switch.discover = relist
    switch.pause()
    switch.point_at("target")
    assert asked == []


def test_a_task_listed_before_the_resume_is_paused_reported_and_resumed_with_the_others(tmp_path: Path) -> None:
    log: Log = []
    a, b, c = Console("a", log), Console("b", log), Console("c", log)
    switch = _set(tmp_path, log, [a, b], listed=[a, b, c])
    switch.pause()
    del log[:]
    switch.resume()
    assert (log[:2], sorted(log[2:])) == ([("pause", "c:6432/pgbouncer"), ("thawed", "source.example")],
                                          [("resume", f"{t}:6432/pgbouncer") for t in "abc"])


def test_a_newcomer_that_does_not_report_the_record_fails_the_resume_after_every_task_resumed(
        tmp_path: Path) -> None:
    log: Log = []
    a, b, late = Console("a", log), Console("b", log), Console("c", log, running=TARGET)
    switch = _set(tmp_path, log, [a, b], listed=[a, b, late])
    switch.pause()
    with pytest.raises(TrafficError, match=r"1 pooler task\(s\) started during the freeze did not take the record"):
        switch.resume()
    assert sorted(e for e in log if e[0] == "resume") == [("resume", f"{t}:6432/pgbouncer") for t in "abc"]


def test_a_task_no_longer_listed_is_still_resumed_since_it_may_still_drain_clients(tmp_path: Path) -> None:
    log: Log = []
    a, b = Console("a", log), Console("b", log)
    switch = _set(tmp_path, log, [a, b], listed=[a])
    switch.pause()
    switch.resume()
    assert sorted(e for e in log if e[0] == "resume") == [("resume", f"{t}:6432/pgbouncer") for t in "ab"]
