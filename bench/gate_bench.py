"""Time the policy gate over every stack file (budget: under 10 s on a 2-core machine).

Prints, per stack: resources, the bare plan (the baseline: running the program under mocks), the policy
evaluation on top of it, and the time per resource; then the whole `edumatrix-db check` process (imports
included) pinned to 2 CPUs where the OS allows, as a ratio of the 10 s budget. Not a test: run it with
`make bench` or `python bench/gate_bench.py [--repeat N]`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.loader import available_stacks  # noqa: E402
from edumatrix_db.offline import gate  # noqa: E402
from edumatrix_db.offline.engine import Planner  # noqa: E402

BUDGET_SECONDS = 10.0


def _two_cpus() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))[:2]
        os.sched_setaffinity(0, cpus)


def time_cli() -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "edumatrix_db.cli", "check", "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, preexec_fn=_two_cpus, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:], sep="\n", file=sys.stderr)
        raise SystemExit(f"edumatrix-db check exited {result.returncode}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best one is kept")
    args = parser.parse_args()
    stacks = available_stacks()
    print(f"{'stack':10} {'resources':>9} {'plan ms':>9} {'policies ms':>12} {'policy/plan':>12} "
          f"{'ms/resource':>12}")
    total_plan = total_policy = 0.0
    total_resources = 0
    for stack in stacks:
        plan_s = policy_s = float("inf")
        resources = 0
        for _ in range(args.repeat):
            start = time.perf_counter()
            recording = Planner().plan(stack)
            planned = time.perf_counter()
            report = gate.check_recording(recording)
            done = time.perf_counter()
            plan_s, policy_s = min(plan_s, planned - start), min(policy_s, done - planned)
            resources = report.resources
        total_plan += plan_s
        total_policy += policy_s
        total_resources += resources
        per_resource = (plan_s + policy_s) / resources * 1000 if resources else 0.0
        ratio = policy_s / plan_s if plan_s else 0.0
        print(f"{stack:10} {resources:>9} {plan_s * 1000:>9.1f} {policy_s * 1000:>12.2f} {ratio:>12.3f} "
              f"{per_resource:>12.2f}")
    per_resource = (total_plan + total_policy) / total_resources * 1000 if total_resources else 0.0
    print(f"{'all':10} {total_resources:>9} {total_plan * 1000:>9.1f} {total_policy * 1000:>12.2f} "
          f"{total_policy / total_plan:>12.3f} {per_resource:>12.2f}")
    cli = min(time_cli() for _ in range(args.repeat))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\nedumatrix-db check over {len(stacks)} stack files (whole process, pinned to <= 2 of {cpus} CPUs): "
          f"{cli:.2f} s = {cli / BUDGET_SECONDS:.3f} of the {BUDGET_SECONDS:.0f} s budget")
    return 0 if cli < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
