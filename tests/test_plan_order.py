"""A plan lists its resources in the order the program created them, the same in every process (the plan JSON
is a stable interface; registration order varies between runs because the SDK awaits sets of resources)."""

import json
import subprocess
import sys

import pytest

from config.loader import PROJECT_ROOT

_URNS_OF_EVERY_STACK = """
import json
from config.loader import available_stacks
from edumatrix_db.offline.engine import Planner

planner = Planner()
print(json.dumps({stack: [r.urn for r in planner.plan(stack).resources] for stack in available_stacks()}))
"""


@pytest.mark.slow  # plans every stack file, twice, in two processes
def test_every_stack_lists_its_resources_in_the_same_order_in_two_processes() -> None:
    runs = [subprocess.Popen([sys.executable, "-c", _URNS_OF_EVERY_STACK], cwd=PROJECT_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    orders = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        orders.append(json.loads(out))
    assert sum(len(urns) for urns in orders[0].values()) > 1000
    assert orders[0] == orders[1]
