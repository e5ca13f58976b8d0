"""The audit: the live database against the access model, read-only, in a handful of queries.

`run_audit(conn, model)` reads the whole catalog once (`database.catalog.read_catalog`: nine queries for
all service schemas, whatever their size), judges it (`database.drift.evaluate`) and returns an
`AuditReport`: one `Finding` per problem, each with the rule it breaks, the service, the object, what is
wrong and the fix, plus the lock-table use (`pg_locks` held outside the fast path, over
`max_locks_per_transaction * (max_connections + max_prepared_transactions)`), which the ops runner publishes
as a metric: on RDS every login may take session advisory locks, and a full lock table refuses every new
connection to the instance.

Any login may run it: the catalogs it reads are readable by every role (the platform's `edumatrix_ops` is
the intended one). `edumatrix-db audit` is the command; the ops runner calls `run_audit` on a schedule.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from config.access import AccessModel
from edumatrix_db.database.catalog import read_catalog
from edumatrix_db.database.drift import RULES, evaluate

__all__ = ["RULES", "AuditReport", "Finding", "run_audit"]


@dataclass(frozen=True)
class Finding:
    rule: str  # one of RULES
    service: str | None  # the catalog service it concerns; None for the database or the platform
    object: str  # e.g. "table feedback_schema.feedback_note", "role spy"
    message: str
    fix: str


@dataclass
class AuditReport:
    findings: list[Finding] = field(default_factory=list)
    lock_table_use: float = 0.0  # 0..1
    queries: int = 0  # statements the audit ran

    def counts_by_rule(self) -> dict[str, int]:
        """Findings per rule; every rule of RULES is present, zeros included (a metric per rule)."""
        counts = Counter(f.rule for f in self.findings)
        return {rule: counts.get(rule, 0) for rule in RULES}

    @property
    def clean(self) -> bool:
        return not self.findings

    def as_json(self) -> dict[str, Any]:
        return {
            "findings": [asdict(f) for f in self.findings],
            "counts": self.counts_by_rule(),
            "lock_table_use": round(self.lock_table_use, 6),
            "queries": self.queries,
        }


def run_audit(conn: psycopg.Connection[Any], model: AccessModel) -> AuditReport:
    """Audit the database `conn` is connected to against `model` (read-only)."""
    snapshot = read_catalog(conn, model)
    findings = [Finding(d.rule, d.service, d.object, d.message, d.fix) for d in evaluate(snapshot, model)]
    return AuditReport(findings=findings, lock_table_use=snapshot.lock_table_use, queries=snapshot.queries)
