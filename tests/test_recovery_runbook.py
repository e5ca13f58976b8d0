"""docs/recovery-runbook.md stays true to the catalog: its full-recovery order is `recovery_priority`."""

import re
from pathlib import Path

from config.catalog import load_catalog

RUNBOOK = (Path(__file__).resolve().parent.parent / "docs" / "recovery-runbook.md").read_text()


def test_the_full_recovery_order_in_the_runbook_is_the_catalogs() -> None:
    rows = re.findall(r"^\| (\d) \| ([a-z_]+) \|", RUNBOOK, re.MULTILINE)
    assert [(int(n), name) for n, name in rows] == [
        (s.recovery_priority, s.name) for s in load_catalog().recovery_order()]
