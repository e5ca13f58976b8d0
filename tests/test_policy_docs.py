"""docs/policy-parity.md stays true to the pack: every policy, every control the issue names."""

import re
from pathlib import Path

import pytest

from policy.base import PackPolicy
from policy.pack import POLICIES

DOC = (Path(__file__).resolve().parent.parent / "docs" / "policy-parity.md").read_text()
ASKED = ["RDS.2", "RDS.3", "RDS.5", "RDS.6", "RDS.8", "RDS.9", "RDS.36", "RDS.10", "RDS.11", "RDS.13", "RDS.17",
         "RDS.23", "RDS.25", "RDS.26", "RDS.38", "RDS.43", "CKV_AWS_16", "CKV_AWS_17", "CKV_AWS_118", "CKV_AWS_129",
         "CKV_AWS_133", "CKV_AWS_157", "CKV_AWS_161", "CKV_AWS_211", "CKV_AWS_226", "CKV_AWS_245", "CKV_AWS_293",
         "CKV_AWS_353", "CKV_AWS_354", "CKV2_AWS_30", "CKV2_AWS_60", "CKV2_AWS_69"]


def _parity_rows(control: str) -> list[str]:
    """Rows of the parity tables whose first cell names `control`."""
    return [line for line in DOC.splitlines()
            if line.startswith("|") and re.search(rf"(^|[ ,]){re.escape(control)}([ ,]|$)", line.split("|")[1])]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
def test_every_policy_is_in_the_policies_table(policy: PackPolicy) -> None:
    assert f"| `{policy.name}` |" in DOC


@pytest.mark.parametrize("control", ASKED)
def test_every_asked_control_has_a_parity_row(control: str) -> None:
    assert _parity_rows(control), control


@pytest.mark.parametrize(("control", "policy"), [
    (c, p.name) for p in POLICIES for c in p.controls if re.match(r"^(RDS\.\d+|CKV2?_AWS_\d+)$", c)])
def test_parity_row_names_the_policy_that_claims_the_control(control: str, policy: str) -> None:
    assert any(f"`{policy}`" in row for row in _parity_rows(control)), (control, policy)
