"""The phase model of a service extraction (spec 3.B, 7.B), shared by the declared side and the operated side.

A service's schema moves from the shared instance to an instance of its own in phases. The stack file says
which phase a service is in (`extractions: {SERVICE: {phase: ...}}`, the declared side); the `edumatrix-db
extract` commands do the work of each phase against live databases (the operated side). Both read this
module, so a phase means the same thing to both: what exists, where the service's traffic goes, whether the
shared instance still takes the service's writes, and which phase may follow.

    (not extracted) ──▶ prepare ──▶ replicate ──▶ cutover ──▶ complete ──▶ cleanup
                          ▲  │          ▲  │          │
                          │  ▼          │  ▼          ▼
                       (abandon)     (abandon)     rollback ──▶ replicate (try again) / (abandon)

- prepare: the target instance exists, with the service's schema (DDL only), roles and grants;
- replicate: a publication on the shared instance covers the whole schema, the target subscribes; the
  service still reads and writes the shared instance;
- cutover: the service's traffic is on the target; its roles have lost write access on the shared
  instance; replication is still in place so `rollback` is possible;
- complete: subscription, publication and slot are gone; the old schema stays read-only on the shared
  instance for a retention period;
- cleanup: the old schema is dropped from the shared instance (explicit, separate, irreversible);
- rollback: the service's traffic is back on the shared instance, writable again; the target is no longer
  authoritative but replication runs again and keeps it current (reverse replication brought the writes made
  on the target back first), so `replicate` and another cutover may follow, or the extraction is abandoned.
  The operated side also reports this phase after a cutover that was undone.

Abandoning (removing the service's entry) is allowed only while the shared instance is authoritative:
from prepare, replicate and rollback. Pure data: no resources, no connections.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class Phase(StrEnum):
    PREPARE = "prepare"
    REPLICATE = "replicate"
    CUTOVER = "cutover"
    COMPLETE = "complete"
    ROLLBACK = "rollback"
    CLEANUP = "cleanup"


@dataclass(frozen=True)
class PhaseFacts:
    """What holds while a service is in a phase; both sides derive what they declare or check from it."""

    target_instance: bool
    """The service's own instance exists (with its schema, roles and grants)."""
    replication: bool
    """A publication on the shared instance and a subscription on the target exist (and so a slot)."""
    traffic_on_target: bool
    """The service's connections (its DNS name / pooler entry) lead to the target."""
    source_writable: bool
    """The service's roles may write the schema on the shared instance."""
    source_schema: bool
    """The service's schema still exists on the shared instance."""
    migrations_frozen: bool
    """No migration may run for the service: DDL is not replicated, so the two sides would diverge."""
    pooler: bool
    """The platform's PgBouncer (components/service_pooler.py) stands in front of the service and its DNS name
    leads to it: from `replicate` (clients move onto it while the shared instance still serves, so that at
    cutover they are already connected to the layer that pauses them) through `cutover` and `rollback` (the
    way back is the same pause). Not in `prepare` (nothing to switch yet) nor from `complete` on (the name
    leads to the target instance directly; the one reconnect this costs is harmless: the source is fenced)."""


_FACTS_TABLE = (
    # phase          target replication on_target src_writable src_schema migrations_frozen pooler
    (Phase.PREPARE,   True,  False,      False,    True,        True,      True,             False),
    (Phase.REPLICATE, True,  True,       False,    True,        True,      True,             True),
    (Phase.CUTOVER,   True,  True,       True,     False,       True,      True,             True),
    (Phase.COMPLETE,  True,  False,      True,     False,       True,      False,            False),
    (Phase.CLEANUP,   True,  False,      True,     False,       False,     False,            False),
    (Phase.ROLLBACK,  True,  True,       False,    True,        True,      True,             True),
)
FACTS: Mapping[Phase, PhaseFacts] = MappingProxyType({row[0]: PhaseFacts(*row[1:]) for row in _FACTS_TABLE})

FIRST_PHASE = Phase.PREPARE
"""The only phase a service may enter from not being extracted."""

NEXT: Mapping[Phase, frozenset[Phase]] = MappingProxyType({
    Phase.PREPARE: frozenset({Phase.REPLICATE}),
    Phase.REPLICATE: frozenset({Phase.CUTOVER}),
    Phase.CUTOVER: frozenset({Phase.COMPLETE, Phase.ROLLBACK}),
    Phase.COMPLETE: frozenset({Phase.CLEANUP}),
    Phase.CLEANUP: frozenset(),
    Phase.ROLLBACK: frozenset({Phase.REPLICATE}),
})
"""The allowed moves between phases, one stack update (one `pulumi up`) at a time. Staying put is always allowed."""

ABANDONABLE: frozenset[Phase] = frozenset({Phase.PREPARE, Phase.REPLICATE, Phase.ROLLBACK})
"""Phases from which the service's entry may be removed: the shared instance is still authoritative."""


class Operation(StrEnum):
    """The `edumatrix-db extract SERVICE OPERATION` commands of the operated side."""

    CLONE_SCHEMA = "clone-schema"
    START = "start"
    STATUS = "status"
    VERIFY = "verify"
    CUTOVER = "cutover"
    ROLLBACK = "rollback"
    FINISH = "finish"


OPERATION_PHASES: Mapping[Operation, frozenset[Phase]] = MappingProxyType({
    Operation.CLONE_SCHEMA: frozenset({Phase.PREPARE}),
    Operation.START: frozenset({Phase.REPLICATE}),
    Operation.STATUS: frozenset(Phase),
    Operation.VERIFY: frozenset({Phase.REPLICATE, Phase.CUTOVER, Phase.COMPLETE}),
    Operation.CUTOVER: frozenset({Phase.CUTOVER}),
    Operation.ROLLBACK: frozenset({Phase.ROLLBACK}),
    Operation.FINISH: frozenset({Phase.COMPLETE}),
})
"""In which declared phase each operation belongs: the stack file is moved to the phase first (`pulumi up`),
then the operation does the live work. Rollback and cutover are also run before their stack update in an
emergency; the runbook (docs/extraction-runbook.md) says when."""

OPERATION_RESULT: Mapping[Operation, Phase | None] = MappingProxyType({
    Operation.CLONE_SCHEMA: Phase.PREPARE,
    Operation.START: Phase.REPLICATE,
    Operation.STATUS: None,
    Operation.VERIFY: None,
    Operation.CUTOVER: Phase.CUTOVER,
    Operation.ROLLBACK: Phase.ROLLBACK,
    Operation.FINISH: Phase.COMPLETE,
})
"""The phase whose live facts an operation establishes (None: it changes nothing)."""


def phase_named(text: str) -> Phase | None:
    """The phase called `text`, or None (callers turn None into an error naming their file and key)."""
    try:
        return Phase(text)
    except ValueError:
        return None


def can_move(current: Phase | None, requested: Phase | None) -> bool:
    """Whether one update may take a service from `current` to `requested` (None: not extracted)."""
    if current == requested:
        return True
    if current is None:
        return requested is FIRST_PHASE
    if requested is None:
        return current in ABANDONABLE
    return requested in NEXT[current]


def allowed_next(current: Phase | None) -> tuple[str, ...]:
    """The phases (and "remove the entry") one update may reach from `current`, in phase order, for messages."""
    if current is None:
        return (FIRST_PHASE.value,)
    order = list(Phase)
    names = [p.value for p in sorted(NEXT[current], key=order.index)]
    if current in ABANDONABLE:
        names.append("(remove the entry to abandon the extraction)")
    return tuple(names)


def move_problem(service: str, current: Phase | None, requested: Phase | None) -> str | None:
    """Why `current` -> `requested` is impossible for `service`, naming the allowed next phases; None if allowed."""
    if can_move(current, requested):
        return None
    here = current.value if current else "not extracted"
    there = requested.value if requested else "not extracted (entry removed)"
    allowed = allowed_next(current)
    if not allowed:
        return f"extraction of {service} is in its final phase {here}; it cannot move to {there}"
    return f"extraction of {service} cannot move from {here} to {there}; allowed next: {', '.join(allowed)}"


def path_between(current: Phase | None, requested: Phase) -> tuple[Phase, ...] | None:
    """The shortest sequence of updates from `current` to `requested` (excluding `current`), or None."""
    frontier: list[tuple[Phase | None, tuple[Phase, ...]]] = [(current, ())]
    seen: set[Phase | None] = {current}
    while frontier:
        nxt: list[tuple[Phase | None, tuple[Phase, ...]]] = []
        for phase, path in frontier:
            if phase == requested:
                return path
            for cand in ((FIRST_PHASE,) if phase is None else sorted(NEXT[phase], key=list(Phase).index)):
                if cand not in seen:
                    seen.add(cand)
                    nxt.append((cand, (*path, cand)))
        frontier = nxt
    return None


# -- names both sides use for the replication objects (added by the declared side, #12) -------------------------
REPLICATION_PREFIX = "edumatrix_extract_"


def publication_name(service: str) -> str:
    """The publication on the shared instance covering the service's schema: `edumatrix_extract_<service>`."""
    return f"{REPLICATION_PREFIX}{service}"


def subscription_name(service: str) -> str:
    """The subscription on the target, and its replication slot on the shared instance (same name)."""
    return f"{REPLICATION_PREFIX}{service}"
