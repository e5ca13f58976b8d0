"""The policy gate over many stacks at once: one worker process per core, forked after the heavy imports.

Each worker plans and checks whole stacks with the ordinary engine and gate (`gate.check_stack`), so a stack's
verdict is computed exactly as in one process; only the scheduling differs. A stack that reads another
stack's outputs (a region stack and its primary) starts once that stack is planned and receives its outputs,
instead of planning it again. Referenced stacks that were not asked for are planned too, but not reported.

`jobs=1` (or one stack) runs in this process with no pool: the sequential gate.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from config.loader import STACKS_DIR, load_stack
from edumatrix_db.offline import gate
from edumatrix_db.offline.engine import Planner

StackOutputs = Mapping[str, Any]


@dataclass(frozen=True)
class GateResult:
    """Reports of the requested stacks, in the order asked, and the warnings of every stack planned."""

    reports: list[gate.StackReport]
    warnings: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class _Checked:
    report: gate.StackReport
    outputs: dict[str, Any] | None  # None when the stack could not be planned
    warnings: dict[str, tuple[str, ...]]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_one(stack: str, stacks_dir: Path, known_outputs: Mapping[str, StackOutputs]) -> _Checked:
    planner = Planner(stacks_dir, known_outputs=known_outputs)
    report = gate.check_stack(stack, planner)
    recording = planner.planned(stack)
    return _Checked(report, dict(recording.outputs) if recording else None, planner.warnings())


def _references(stack: str, stacks_dir: Path) -> tuple[str, ...]:
    try:
        return load_stack(stack, stacks_dir).referenced_stacks()
    except ConfigError:
        return ()  # the worker reports the error as this stack's verdict


def _closure(stacks: Sequence[str], stacks_dir: Path) -> dict[str, tuple[str, ...]]:
    """Every stack to plan (the requested ones and what they reference) -> the stacks it references."""
    references: dict[str, tuple[str, ...]] = {}
    todo = deque(stacks)
    while todo:
        stack = todo.popleft()
        if stack not in references:
            references[stack] = _references(stack, stacks_dir)
            todo.extend(references[stack])
    return references


def check_stacks(stacks: Sequence[str], stacks_dir: Path = STACKS_DIR, *, jobs: int | None = None,
                 on_done: Callable[[gate.StackReport], None] | None = None) -> GateResult:
    """Plan and check `stacks` on up to `jobs` worker processes (default: one per available CPU)."""
    jobs = min(jobs or available_cpus(), len(stacks))
    if jobs <= 1:
        planner = Planner(stacks_dir)
        reports = []
        for stack in stacks:
            reports.append(gate.check_stack(stack, planner))
            if on_done:
                on_done(reports[-1])
        return GateResult(reports, planner.warnings())
    return _check_in_workers(stacks, stacks_dir, jobs, on_done)


def _check_in_workers(stacks: Sequence[str], stacks_dir: Path, jobs: int,
                      on_done: Callable[[gate.StackReport], None] | None) -> GateResult:
    references = _closure(stacks, stacks_dir)
    referenced = {ref for refs in references.values() for ref in refs}
    # Stacks others wait for go first; otherwise the order asked (then what was added by references).
    order = list(references)
    pending = sorted(order, key=lambda s: (s not in referenced, order.index(s)))
    results: dict[str, _Checked] = {}
    running: dict[Future[_Checked], str] = {}
    # Objects alive now (modules, classes) are never collected again: the forked workers' collections then
    # do not write to (and copy) the pages they share with this process, nor walk them. Workers collect
    # (the CLI may have paused collection in this process); the fast engine pauses it during each run.
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=gc.enable) as pool:
            while pending or running:
                ready = [s for s in pending if all(r in results for r in references[s])]
                if not ready and not running:
                    ready = list(pending)  # a reference cycle: each worker's planner reports it
                for stack in ready:
                    pending.remove(stack)
                    known: dict[str, StackOutputs] = {}
                    for ref in references[stack]:
                        outputs = results[ref].outputs if ref in results else None
                        if outputs is not None:  # else the worker's planner meets the referenced stack's error
                            known[ref] = outputs
                    running[pool.submit(_check_one, stack, stacks_dir, known)] = stack
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    stack = running.pop(future)
                    results[stack] = future.result()
                    if on_done and stack in stacks:
                        on_done(results[stack].report)
    finally:
        gc.unfreeze()
    warnings: dict[str, tuple[str, ...]] = {}
    for stack in references:
        for planned, messages in results[stack].warnings.items():
            warnings.setdefault(planned, messages)
    return GateResult([results[s].report for s in stacks], warnings)
