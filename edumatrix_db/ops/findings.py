"""A problem one of the operational checks found, with its fix. One shape for `migrate check`, `health` and
the guard's audit (edumatrix_db.ops.audit, #11), so reports and JSON read alike."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    rule: str
    service: str
    object: str
    message: str
    fix: str


def counts_by_rule(findings: list[Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.rule] = out.get(f.rule, 0) + 1
    return out
