"""The policy gate over many stacks at once: one worker process per core, forked after the heavy imports.

Each worker plans and checks whole stacks with the ordinary engine and gate (`gate.check_stack`), so a stack's
verdict is computed exactly as in one process; only the scheduling differs. A stack that reads another
stack's outputs (a region stack and its primary) starts once that stack is planned and receives its outputs,
instead of planning it again. Referenced stacks that were not asked for are planned too, but not reported.
Workers take stacks one at a time as they become free: stacks others wait for first, then larger stacks
first (`_stack_facts`: region stacks last, then by stack file size), so that the last one to finish is a small
one.

`jobs=1` (or one stack) runs in this process with no pool: the sequential gate.

Before forking, this process loads the provider SDK modules the program's components use (read from their
source): pulumi-aws loads each service module on first use, and `aws.ec2` alone costs about half a second,
which every worker would otherwise pay again. Only speed depends on that list; a module it misses is loaded
by the worker that needs it.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import multiprocessing
import os
import re
import resource
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from config.loader import PROJECT_ROOT, STACKS_DIR, load_stack
from edumatrix_db.offline import gate, sdk_fastpath
from edumatrix_db.offline.engine import Planner

StackOutputs = Mapping[str, Any]
MEMORY_LIMIT_MB = 1024


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


_PROVIDER_IMPORT = re.compile(r"^[ \t]*import (pulumi_\w+)(?: as (\w+))?[ \t]*(?:#.*)?$", re.MULTILINE)


def provider_modules_used(components: Path = PROJECT_ROOT / "components") -> set[tuple[str, str, str]]:
    """(`pulumi_aws`, `rds`, `Instance`) for every `aws.rds.Instance`-style use under `components`.

    Read with regular expressions, not parsed: parsing and walking the components' syntax trees cost about
    0.5 s of `check`'s serial part. Text in a comment or string that looks like a use is found too (the
    preload skips a name its service does not export); only speed depends on this list
    (tests/test_parallel_gate.py: it holds every use a syntax-tree reading finds)."""
    used: set[tuple[str, str, str]] = set()
    for path in sorted(components.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        aliases = {match[2] or match[1]: match[1] for match in _PROVIDER_IMPORT.finditer(source)}
        if aliases:
            uses = re.compile(rf"(?<![\w.])({'|'.join(map(re.escape, aliases))})\.\s*(\w+)\.\s*(\w+)")
            used.update((aliases[match[1]], match[2], match[3]) for match in uses.finditer(source))
    return used


PROGRAM_MODULES = ("components.platform",)  # what `__main__.py` imports beyond config/ (loaded already)


def preload_provider_modules() -> None:
    """Load the provider modules the program uses (pulumi's lazy modules load on attribute access), each
    service package only as far as these names need (`sdk_fastpath.load_provider_services`), and the
    program's component modules (about 0.15 s of CPU that each worker would otherwise pay on its first plan)."""
    sdk_fastpath.load_provider_services()
    for module in PROGRAM_MODULES:
        importlib.import_module(module)
    for package, module, name in sorted(provider_modules_used()):
        with contextlib.suppress(AttributeError):  # a hint only: the program itself reports a wrong name
            service = getattr(importlib.import_module(package), module)
            if sdk_fastpath.exports(service, name):  # else text that looks like a use (it would load it whole)
                getattr(service, name)


_collected_at_mb = [0]  # this process's peak memory when it last collected


def collect_when_large() -> None:
    """Workers run without the cyclic collector: a plan leaves about 40 KB of cyclic garbage per resource,
    and collecting it costs a quarter of the plan (measured: 1.4 s for five stacks). Past MEMORY_LIMIT_MB of
    peak memory a worker collects, and again each time its peak has grown by half that since (the memory a
    collection frees is reused before the peak grows), so a gate over very many stacks stays bounded without
    collecting after every stack: that made the gate grow faster than its stacks (measured: 25 stacks, 4,107
    resources, 18.2 s of CPU collecting after each stack past 1 GiB, 14.9 s never collecting)."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    if peak_mb > MEMORY_LIMIT_MB and peak_mb - _collected_at_mb[0] > MEMORY_LIMIT_MB // 2:
        gc.collect()
        _collected_at_mb[0] = peak_mb


def _check_one(stack: str, stacks_dir: Path, known_outputs: Mapping[str, StackOutputs], evaluate: bool) -> _Checked:
    """Plan `stack` and, unless it is only planned for the outputs another stack reads, check it."""
    planner = Planner(stacks_dir, known_outputs=known_outputs)
    if evaluate:
        report = gate.check_stack(stack, planner)
    else:
        try:
            planner.plan(stack)
            report = gate.StackReport(stack)
        except ConfigError as error:  # the stacks reading it meet the same error in their own planner
            report = gate.StackReport(stack, error=str(error))
    recording = planner.planned(stack)
    collect_when_large()
    return _Checked(report, dict(recording.outputs) if recording else None, planner.warnings())


def _stack_facts(stack: str, stacks_dir: Path) -> tuple[tuple[str, ...], int]:
    """(the stacks `stack` references, how much it declares, roughly). Only the order in which workers take
    stacks depends on the second: larger first, so that the last stack to finish is a small one. A stack that
    reads another's outputs (a region stack replicating its primary) declares tens of resources (27 measured,
    against 460-1,118 for the platform stacks) and counts 0; any other its stack file's size, a rough measure
    (the local stack's file is the smallest but it declares 460 resources: it still goes before the region
    stacks)."""
    try:
        references = load_stack(stack, stacks_dir).referenced_stacks()
    except ConfigError:
        return (), 0  # the worker reports the error as this stack's verdict
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    return references, 0 if references or not path.is_file() else path.stat().st_size


def _closure(stacks: Sequence[str], stacks_dir: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
    """Every stack to plan (the requested ones and what they reference) -> the stacks it references, and
    -> how much it declares (`_stack_facts`)."""
    references: dict[str, tuple[str, ...]] = {}
    sizes: dict[str, int] = {}
    todo = deque(stacks)
    while todo:
        stack = todo.popleft()
        if stack not in references:
            references[stack], sizes[stack] = _stack_facts(stack, stacks_dir)
            todo.extend(references[stack])
    return references, sizes


def schedule(references: Mapping[str, Sequence[str]], sizes: Mapping[str, int]) -> list[str]:
    """The order workers take stacks in (when ready): stacks others read first, then the larger ones."""
    referenced = {ref for refs in references.values() for ref in refs}
    return sorted(references, key=lambda stack: (stack not in referenced, -sizes[stack]))


def check_stacks(stacks: Sequence[str], stacks_dir: Path = STACKS_DIR, *, jobs: int | None = None,
                 on_done: Callable[[gate.StackReport], None] | None = None) -> GateResult:
    """Plan and check `stacks` on up to `jobs` worker processes (default: one per available CPU)."""
    jobs = min(jobs or available_cpus(), len(stacks))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():  # no fork (Windows): sequential
        planner = Planner(stacks_dir)
        reports = []
        for stack in stacks:
            reports.append(gate.check_stack(stack, planner))
            collect_when_large()
            if on_done:
                on_done(reports[-1])
        return GateResult(reports, planner.warnings())
    return _check_in_workers(stacks, stacks_dir, jobs, on_done)


def _check_in_workers(stacks: Sequence[str], stacks_dir: Path, jobs: int,
                      on_done: Callable[[gate.StackReport], None] | None) -> GateResult:
    references, sizes = _closure(stacks, stacks_dir)
    pending = schedule(references, sizes)
    results: dict[str, _Checked] = {}
    running: dict[Future[_Checked], str] = {}
    preload_provider_modules()
    # Objects alive now (modules, classes) are never collected again: a worker's collection (see
    # collect_when_large) then neither walks nor writes to (and copies) the pages it shares with this process.
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=gc.disable) as pool:
            while pending or running:
                # A stack is handed out only when a worker is free, so one that becomes ready later (a region
                # stack once its primary is planned) is not queued behind the others.
                while pending and len(running) < jobs:
                    ready = [s for s in pending if all(r in results for r in references[s])]
                    if not ready and running:
                        break
                    stack = (ready or pending)[0]  # none ready, none running: a reference cycle, reported by
                    pending.remove(stack)          # the worker's planner
                    known: dict[str, StackOutputs] = {}
                    for ref in references[stack]:
                        outputs = results[ref].outputs if ref in results else None
                        if outputs is not None:  # else the worker's planner meets the referenced stack's error
                            known[ref] = outputs
                    running[pool.submit(_check_one, stack, stacks_dir, known, stack in stacks)] = stack
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
