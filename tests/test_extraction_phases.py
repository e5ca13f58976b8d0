"""The shared phase model of a service extraction (config/extraction.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.extraction import (
    ABANDONABLE,
    FACTS,
    NEXT,
    OPERATION_PHASES,
    OPERATION_RESULT,
    Operation,
    Phase,
    allowed_next,
    can_move,
    move_problem,
    path_between,
    phase_named,
)

phases_or_none = st.one_of(st.none(), st.sampled_from(list(Phase)))


def test_the_main_line_is_prepare_replicate_cutover_complete_cleanup() -> None:
    assert path_between(None, Phase.CLEANUP) == (
        Phase.PREPARE, Phase.REPLICATE, Phase.CUTOVER, Phase.COMPLETE, Phase.CLEANUP)


def test_rollback_is_reachable_only_from_cutover() -> None:
    assert [p for p in Phase if Phase.ROLLBACK in NEXT[p]] == [Phase.CUTOVER]


def test_after_rollback_the_extraction_may_replicate_again() -> None:
    assert can_move(Phase.ROLLBACK, Phase.REPLICATE)


def test_a_skipped_phase_is_refused_naming_the_allowed_next_phase() -> None:
    problem = move_problem("courses", Phase.PREPARE, Phase.CUTOVER)
    assert problem == "extraction of courses cannot move from prepare to cutover; allowed next: replicate, " \
        "(remove the entry to abandon the extraction)"


def test_a_new_extraction_must_start_at_prepare() -> None:
    assert move_problem("news", None, Phase.REPLICATE) == \
        "extraction of news cannot move from not extracted to replicate; allowed next: prepare"


def test_cleanup_is_final() -> None:
    assert allowed_next(Phase.CLEANUP) == ()
    assert move_problem("news", Phase.CLEANUP, Phase.COMPLETE) == \
        "extraction of news is in its final phase cleanup; it cannot move to complete"


def test_an_extraction_whose_traffic_moved_cannot_be_abandoned() -> None:
    for phase in (Phase.CUTOVER, Phase.COMPLETE, Phase.CLEANUP):
        assert not can_move(phase, None), phase


@given(phases_or_none)
def test_staying_in_a_phase_is_always_allowed(phase: Phase | None) -> None:
    assert can_move(phase, phase)


@given(phases_or_none, phases_or_none)
def test_every_refused_move_has_a_message_and_every_allowed_one_has_none(
        current: Phase | None, requested: Phase | None) -> None:
    assert (move_problem("feedback", current, requested) is None) == can_move(current, requested)


@given(st.sampled_from(list(Phase)))
def test_every_phase_is_reachable_from_not_extracted(phase: Phase) -> None:
    assert path_between(None, phase) is not None


@given(st.sampled_from(list(Phase)), st.sampled_from(list(Phase)))
def test_no_single_move_both_moves_traffic_and_drops_replication(current: Phase, requested: Phase) -> None:
    """Traffic moves while replication still exists (so rollback is possible), never in the same step as its removal."""
    if not can_move(current, requested) or current == requested:
        return
    before, after = FACTS[current], FACTS[requested]
    if before.traffic_on_target != after.traffic_on_target:
        assert before.replication or after.replication


@given(st.sampled_from(list(Phase)))
def test_the_source_is_writable_exactly_when_traffic_is_on_it(phase: Phase) -> None:
    facts = FACTS[phase]
    assert facts.source_writable is not facts.traffic_on_target


@given(st.sampled_from(list(Phase)))
def test_abandoning_is_allowed_exactly_where_the_source_is_authoritative(phase: Phase) -> None:
    assert (phase in ABANDONABLE) == FACTS[phase].source_writable


@given(st.sampled_from(list(Phase)))
def test_migrations_are_frozen_while_the_schema_exists_on_two_instances_that_must_agree(phase: Phase) -> None:
    facts = FACTS[phase]
    assert facts.migrations_frozen == (phase in {Phase.PREPARE, Phase.REPLICATE, Phase.CUTOVER, Phase.ROLLBACK})


def test_every_operation_belongs_to_a_phase_and_establishes_one_of_its_phases() -> None:
    for operation in Operation:
        result = OPERATION_RESULT[operation]
        assert OPERATION_PHASES[operation], operation
        assert result is None or result in OPERATION_PHASES[operation], operation


@pytest.mark.parametrize("text", ["prepare", "replicate", "cutover", "complete", "rollback", "cleanup"])
def test_phase_names_are_the_stack_file_words(text: str) -> None:
    phase = phase_named(text)
    assert phase is not None
    assert phase.value == text


def test_an_unknown_phase_name_is_none() -> None:
    assert phase_named("migrate") is None


def test_removing_the_entry_of_an_extraction_past_cutover_is_refused_in_these_words() -> None:
    assert move_problem("news", Phase.CUTOVER, None) == (
        "extraction of news cannot move from cutover to not extracted (entry removed); allowed next: complete, "
        "rollback")


def test_no_sequence_of_updates_leads_back_to_prepare() -> None:
    """The phases after prepare form a cycle (replicate, cutover, rollback): the search ends all the same."""
    assert path_between(Phase.ROLLBACK, Phase.PREPARE) is None
