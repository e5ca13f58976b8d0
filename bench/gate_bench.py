"""How fast the review loop is: the policy gate and `plan`, against the engine as it was, in the same run.

Not a test: `make bench` or `python bench/gate_bench.py [--repeat N] [--regions N] [--processes-only]`. Prints:
1. per stack file: the old engine (`Planner(fast=False)`, plan + policies, one process, one stack after
   another) against the fast engine, in ms and ms per resource, and the ratio fast/old;
2. the gate over every stack file: the old sequential gate against the parallel gate (worker processes,
   one per CPU, at most 2), with the resources the stacks hold;
3. whole processes (imports included), pinned to at most 2 CPUs, the median of --repeat runs:
   `edumatrix-db check` (goal: 5 s) and `edumatrix-db plan prod --format json` (goal: 2 s), each alternating with
   a process that does the same work on the old engine (the sequential gate, `Planner(fast=False)`), who runs
   first alternating between rounds: the speed-up on today's stacks, whatever the machine. The goals were set
   against old-engine processes of 10.7 s and 4.8 s (issue 16), so the ratios 0.47 and 0.42 are printed beside
   it; rough ones (those stacks held fewer resources, so imports weighed more), not part of the exit code; with
   `--before CHECKOUT` (e.g. a checkout of main, using its .venv) that checkout's processes alternate too;
4. a synthetic scale run: the repository's stacks plus N region stacks made from the region template, for
   growing N, with the time per stack-per-core, which stays flat when the gate grows linearly in
   stacks over cores.
Wall times on a shared machine swing with its load (printed at start and end); CPU seconds (this process
and its workers) are printed beside them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.loader import STACKS_DIR, available_stacks, load_stack  # noqa: E402
from config.regions import AWS_REGIONS  # noqa: E402
from edumatrix_db.offline import gate, parallel  # noqa: E402
from edumatrix_db.offline.engine import Planner  # noqa: E402

CHECK_GOAL_S, PLAN_GOAL_S = 5.0, 2.0
# What the goals were set against (issue 16: `check` 10.7 s and `plan prod` 4.8 s as processes on 2 cores, the
# old engine, 1,335 resources then): the goals as rough shares of the old engine's process (docs/gate-speed.md,
# "Session 9": a larger workload weighs the imports less, which flatters today's ratio).
CHECK_GOAL_RATIO, PLAN_GOAL_RATIO = CHECK_GOAL_S / 10.7, PLAN_GOAL_S / 4.8
CORES = 2  # the machine the goals are set for
PROJECT_PACKAGES = ("config", "components", "edumatrix_db", "policy")
TEMPLATE = STACKS_DIR / "templates" / "region.yaml.example"


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process and the workers it waited for


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def best_of(repeat: int, work: Callable[[], object]) -> Timing:
    walls, cpus = [], []
    for _ in range(repeat):
        cpu, start = _cpu(), time.perf_counter()
        work()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - cpu)
    return Timing(min(walls), min(cpus))


def _old_gate(stacks: list[str], stacks_dir: Path = STACKS_DIR) -> list[gate.StackReport]:
    return gate.check_stacks(stacks, Planner(stacks_dir, fast=False))


def _fast_gate(stacks: list[str], stacks_dir: Path = STACKS_DIR, jobs: int = CORES) -> list[gate.StackReport]:
    return parallel.check_stacks(stacks, stacks_dir, jobs=jobs).reports


def _pin_to_cores() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:CORES])


# The old engine's process for each command: the same work (plan, policies, JSON on stdout) with the sequential
# gate and `Planner(fast=False)`, imports included.
_OLD_ENGINE = {
    "check": (
        "from config.loader import available_stacks\n"
        "from edumatrix_db.offline import gate\n"
        "from edumatrix_db.offline.engine import Planner\n"
        "print(gate.render_json(gate.check_stacks(available_stacks(), Planner(fast=False))))\n"),
    "plan prod --format json": (
        "from edumatrix_db.offline import gate\n"
        "from edumatrix_db.offline.engine import Planner\n"
        "from edumatrix_db.offline.render import render_json\n"
        "recording = Planner(fast=False).plan('prod')\n"
        "violations = [v.to_json() for v in gate.check_recording(recording).violations]\n"
        "print(render_json(recording, {'violations': violations}))\n"),
}


def time_process(*args: str, checkout: Path = ROOT, old_engine: str | None = None) -> Timing:
    """One `edumatrix-db` process of `checkout` (with its own `.venv`, or this interpreter for this checkout),
    imports included, on at most CORES CPUs; with `old_engine`, the process doing that command's work on the old
    engine instead."""
    python = _python_of(checkout)
    command = ["-c", _OLD_ENGINE[old_engine]] if old_engine else ["-m", "edumatrix_db.cli", *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run([python, *command], cwd=checkout, capture_output=True,
                            text=True, preexec_fn=_pin_to_cores, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"{'old engine ' + old_engine if old_engine else 'edumatrix-db ' + ' '.join(args)} "
                         f"exited {result.returncode}")
    return Timing(wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)


def _python_of(checkout: Path) -> str:
    """This interpreter for this checkout, another checkout's own `.venv` for it."""
    return sys.executable if checkout == ROOT else str(checkout / ".venv" / "bin" / "python")


def compile_project(checkout: Path = ROOT) -> None:
    """What `make check` does first (Makefile `bytecode`): the project's modules compiled into __pycache__, which
    Python would not write where PYTHONDONTWRITEBYTECODE is set; the processes measured then read them."""
    python = _python_of(checkout)
    subprocess.run([python, "-m", "compileall", "-q", "-x", "policy/venv", *PROJECT_PACKAGES], cwd=checkout,
                   check=True)


def _row(*cells: object) -> str:
    return " ".join(f"{c:>12}" if not isinstance(c, str) or i else f"{c:16}" for i, c in enumerate(cells))


def _stack_alone(stack: str, fast: bool, repeat: int) -> tuple[Timing, int]:
    """Plan + policies of one stack; the stacks it references are planned first, outside the timing."""
    timings, resources = [], 0
    for _ in range(repeat):
        planner = Planner(fast=fast)
        for referenced in load_stack(stack).referenced_stacks():
            planner.plan(referenced)
        timing = best_of(1, partial(gate.check_stack, stack, planner))
        timings.append(timing)
        resources = len(planner.plan(stack).resources)
    return min(timings, key=lambda t: t.wall), resources


def per_stack(repeat: int) -> None:
    print("per stack file, plan + policies, in this process:")
    print(_row("stack", "resources", "old ms", "fast ms", "fast/old", "old ms/res", "fast ms/res"))
    total_old = total_fast = 0.0
    total_resources = 0
    for stack in available_stacks():
        old, resources = _stack_alone(stack, False, repeat)
        fast, _ = _stack_alone(stack, True, repeat)
        total_old, total_fast = total_old + old.wall, total_fast + fast.wall
        total_resources += resources
        print(_row(stack, resources, f"{old.wall * 1000:.0f}", f"{fast.wall * 1000:.0f}", f"{fast.wall / old.wall:.2f}",
                   f"{old.wall / resources * 1000:.2f}", f"{fast.wall / resources * 1000:.2f}"))
    print(_row("sum", total_resources, f"{total_old * 1000:.0f}", f"{total_fast * 1000:.0f}",
               f"{total_fast / total_old:.2f}", f"{total_old / total_resources * 1000:.2f}",
               f"{total_fast / total_resources * 1000:.2f}"))
    old_plan = best_of(repeat, lambda: Planner(fast=False).plan("prod"))
    fast_plan = best_of(repeat, lambda: Planner().plan("prod"))
    print(f"plan prod alone (engine only): old {old_plan.wall:.2f} s, fast {fast_plan.wall:.2f} s wall "
          f"({fast_plan.cpu:.2f} s CPU) = {fast_plan.wall / old_plan.wall:.2f} of old; "
          f"goal {PLAN_GOAL_S:.0f} s: {fast_plan.wall / PLAN_GOAL_S:.2f} of it")


def whole_gate(repeat: int) -> None:
    stacks = available_stacks()
    resources = sum(r.resources for r in _fast_gate(stacks))
    old = best_of(repeat, lambda: _old_gate(stacks))
    fast = best_of(repeat, lambda: _fast_gate(stacks))
    print(f"gate over {len(stacks)} stack files ({resources} resources), in this process:")
    print(f"  old sequential gate      {old.wall:6.2f} s wall {old.cpu:6.2f} s CPU")
    print(f"  parallel gate, {CORES} workers {fast.wall:6.2f} s wall {fast.cpu:6.2f} s CPU   "
          f"= {fast.wall / old.wall:.2f} of the old wall time, {fast.cpu / old.cpu:.2f} of its CPU")
    print(f"  per resource: old {old.wall / resources * 1000:.2f} ms, parallel {fast.wall / resources * 1000:.2f} ms "
          f"wall ({fast.cpu / resources * 1000:.2f} ms CPU)")


def median_of(timings: list[Timing]) -> Timing:
    """The run of median wall time (a process is too short for its best run to stand for the others)."""
    return sorted(timings, key=lambda t: t.wall)[len(timings) // 2]


def _load() -> str:
    """The load averages (1, 5, 15 minutes), printed beside every timing."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


_PROCESSES = {"check": ("check", "--format", "json"), "plan prod --format json": ("plan", "prod", "--format", "json")}


def whole_processes(repeat: int, before: Path | None = None) -> bool:
    """Each command `repeat` times as a process; with `before` (another checkout, e.g. main's), that checkout's
    run alternates with this one's, so both see the same load."""
    print(f"whole processes (imports included, pinned to <= {CORES} CPUs, median of {repeat}; "
          f"uptime load {_load()}):")
    for checkout in (ROOT, *([before] if before is not None else [])):
        compile_project(checkout)
    met = True
    goals = ((CHECK_GOAL_S, CHECK_GOAL_RATIO), (PLAN_GOAL_S, PLAN_GOAL_RATIO))
    for (name, args), (goal, goal_ratio) in zip(_PROCESSES.items(), goals, strict=True):
        runs: dict[str, list[Timing]] = {"this": [], "before": [], "old": []}
        for round_ in range(repeat):
            order = ["old", "before", "this"] if round_ % 2 == 0 else ["this", "before", "old"]  # no side always first
            for side in order:
                if side == "old":
                    runs["old"].append(time_process(old_engine=name))
                elif side == "before" and before is not None:
                    runs["before"].append(time_process(*args, checkout=before))
                elif side == "this":
                    runs["this"].append(time_process(*args))
        this, old_engine = median_of(runs["this"]), median_of(runs["old"])
        ratio = this.wall / old_engine.wall
        line = (f"  edumatrix-db {name:24} {this.wall:6.2f} s wall {this.cpu:6.2f} s CPU  "
                f"goal {goal:.0f} s: {this.wall / goal:.2f} of it\n"
                f"    old engine's process {old_engine.wall:6.2f} s wall {old_engine.cpu:6.2f} s CPU: "
                f"{ratio:.2f}x wall, {this.cpu / old_engine.cpu:.2f}x CPU; the goal as a rough ratio {goal_ratio:.2f}: "
                f"{ratio / goal_ratio:.2f} of it")
        if before is not None:
            old = median_of(runs["before"])
            line += (f"; before ({before}) {old.wall:6.2f} s wall {old.cpu:6.2f} s CPU: "
                     f"{this.wall / old.wall:.2f}x wall, {this.cpu / old.cpu:.2f}x CPU")
        print(line)
        met = met and this.wall <= goal
    print(f"  (load at end {_load()})")
    return met


def _with_regions(base: Path, count: int) -> tuple[Path, list[str]]:
    target = base / f"stacks-{count}"
    target.mkdir()
    for path in STACKS_DIR.glob("Pulumi.*.yaml"):
        shutil.copy(path, target / path.name)
    taken = {"us-east-1", *(s.removeprefix("prod-") for s in available_stacks())}
    regions = [r for r in AWS_REGIONS if r not in taken and not r.startswith(("us-gov", "cn-"))][:count]
    for number, region in enumerate(regions, start=1):
        text = TEMPLATE.read_text(encoding="utf-8")
        # Ids of this region's own VPC (the loader refuses ids shared by stacks in different regions).
        for placeholder, value in {"<region>": region, "<vpc-id>": f"vpc-{number:017x}",
                                   "<subnet-id-a>": f"subnet-{number * 16 + 1:017x}",
                                   "<subnet-id-b>": f"subnet-{number * 16 + 2:017x}",
                                   "<client-security-group-id>": f"sg-{number:017x}"}.items():
            text = text.replace(placeholder, value)
        (target / f"Pulumi.prod-{region}.yaml").write_text(text, encoding="utf-8")
    # docs/new-region.md: each region is also listed in prod's secrets.replicaRegions
    prod = target / "Pulumi.prod.yaml"
    prod.write_text(prod.read_text(encoding="utf-8").replace(
        "    replicaRegions:\n", "    replicaRegions:\n" + "".join(f"      - {r}\n" for r in regions), 1),
        encoding="utf-8")
    return target, available_stacks(target)


def scale(max_regions: int) -> None:
    cores = min(CORES, parallel.available_cpus())
    print(f"synthetic scale: the repository's stacks plus N region stacks, parallel gate on {cores} workers")
    print(_row("N regions", "stacks", "resources", "wall s", "CPU s", "s/(stack/core)", "old-engine s"))
    steps = sorted({0, max_regions // 4, max_regions // 2, max_regions})
    with tempfile.TemporaryDirectory() as tmp:
        for count in steps:
            stacks_dir, stacks = _with_regions(Path(tmp), count)
            reports: list[gate.StackReport] = []
            timing = best_of(1, lambda: reports.extend(_fast_gate(stacks, stacks_dir, cores)))  # noqa: B023
            old = best_of(1, partial(_old_gate, stacks, stacks_dir)) if count in (0, max_regions) else None
            failed = [r.stack for r in reports if r.failed]
            if failed:
                raise SystemExit(f"synthetic stacks failed the gate: {failed}")
            print(_row(count, len(stacks), sum(r.resources for r in reports), f"{timing.wall:.2f}",
                       f"{timing.cpu:.2f}", f"{timing.wall / (len(stacks) / cores):.2f}",
                       f"{old.wall:.2f}" if old else "-"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the rows in this process keep "
                        "the best one, whole processes the median")
    parser.add_argument("--regions", type=int, default=20, help="region stacks in the largest synthetic run")
    parser.add_argument("--processes-only", action="store_true", help="only the whole-process timings (3.)")
    parser.add_argument("--before", type=Path, help="another checkout with its own .venv (e.g. main's) "
                        "whose processes run alternately with this one's as the baseline of 3.")
    args = parser.parse_args()
    if args.before is not None:
        args.before = args.before.resolve()  # the processes run with the checkout as their working directory
    print(f"load average at start: {_load()} "
          f"({parallel.available_cpus()} CPUs available)\n")
    if args.processes_only:
        return 0 if whole_processes(args.repeat, args.before) else 1
    gate.check_stack("prod", Planner())  # imports and first-run costs are not part of the in-process rows
    per_stack(args.repeat)
    print()
    whole_gate(args.repeat)
    print()
    met = whole_processes(args.repeat, args.before)
    print()
    scale(args.regions)
    print(f"\nload average at end: {_load()}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
