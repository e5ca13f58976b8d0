"""The `extractions:` stack key (issue 12): every impossible move, unknown services, a service extracted twice
and unsafe targets are refused with the file, the key and the allowed next phase, before anything is declared;
and what each phase does to the access model (write fence, migration freeze, schema gone)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from config.access import build_access_model, full_model_for_settings, model_for_settings
from config.catalog import load_catalog
from config.errors import ConfigError
from config.extraction import FACTS, Phase, allowed_next, can_move, path_between
from config.extraction_plan import (
    fence_writes,
    freeze_migrations,
    source_access,
    source_model,
    target_instance_settings,
    target_memory_gib,
    update_problem,
)
from config.loader import read_stack_config, validate_config
from config.naming import RoleKind
from config.settings import StackSettings
from edumatrix_db.offline.diff import diff_plans
from edumatrix_db.offline.gate import policy_config
from edumatrix_db.ops.runner import RunnerConfig

KEY = "edumatrix-db:extractions"
STATES: list[Phase | None] = [None, *Phase]


def _config(stack: str, extractions: dict[str, Any] | None, **sections: Any) -> tuple[dict[str, Any], str]:
    config, source = read_stack_config(stack)
    config = copy.deepcopy(config)
    config.pop(KEY, None)
    if extractions is not None:
        config[KEY] = extractions
    for key, value in sections.items():
        config[f"edumatrix-db:{key}"] = value
    return config, source


def load(extractions: dict[str, Any] | None, stack: str = "staging", **sections: Any) -> StackSettings:
    config, source = _config(stack, extractions, **sections)
    return validate_config(config, stack=stack, source=source)


def staging_instance(**keys: Any) -> dict[str, Any]:
    """The staging stack's `instance` section with `keys` changed."""
    return {**_config("staging", None)[0]["edumatrix-db:instance"], **keys}


def problems(extractions: dict[str, Any], stack: str = "staging", **sections: Any) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigError) as caught:
        load(extractions, stack, **sections)
    return [(p.key, p.message, p.fix) for p in caught.value.problems]


def _entry(current: Phase | None, requested: Phase) -> dict[str, Any]:
    """A stack file entry: `current` reached the shortest way, then `requested`."""
    history = [p.value for p in (path_between(None, current) or ())] if current else []
    return {"phase": requested.value, "history": history}


IMPOSSIBLE = [(c, r) for c in STATES for r in Phase
              if not can_move(c, r) and (c is None or path_between(None, c) is not None)]


@pytest.mark.parametrize(("current", "requested"), IMPOSSIBLE,
                         ids=[f"{c.value if c else 'none'}-to-{r.value}" for c, r in IMPOSSIBLE])
def test_every_impossible_move_is_refused_at_the_phase_naming_the_allowed_next_phases(
        current: Phase | None, requested: Phase) -> None:
    [(key, message, fix)] = problems({"feedback": _entry(current, requested)})
    assert key == f"{KEY}.feedback.phase"
    assert requested.value in message
    for allowed in allowed_next(current):
        assert allowed in fix


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_reached_by_allowed_moves_is_accepted(phase: Phase) -> None:
    path = path_between(None, phase)
    assert path is not None, f"no allowed moves reach {phase.value}"
    settings = load({"feedback": _entry(path[-2] if len(path) > 1 else None, phase)})
    assert settings.extractions["feedback"].phase is phase


def test_a_skipped_phase_in_the_history_is_refused_at_the_history() -> None:
    [(key, message, fix)] = problems({"feedback": {"phase": "complete", "history": ["prepare", "cutover"]}})
    assert key == f"{KEY}.feedback.history"
    assert "cannot move from prepare to cutover" in message
    assert "replicate" in fix


def test_a_phase_listed_twice_in_a_row_in_the_history_is_refused() -> None:
    [(key, message, _)] = problems({"feedback": {"phase": "replicate", "history": ["prepare", "prepare"]}})
    assert key == f"{KEY}.feedback.history"
    assert "twice" in message


def test_a_service_extracted_again_after_its_cleanup_is_refused() -> None:
    done = ["prepare", "replicate", "cutover", "complete", "cleanup"]
    [(key, message, _)] = problems({"feedback": {"phase": "prepare", "history": done}})
    assert key == f"{KEY}.feedback.phase"
    assert "already extracted" in message


def test_a_retry_after_rollback_is_accepted() -> None:
    settings = load({"feedback": {"phase": "replicate",
                                  "history": ["prepare", "replicate", "cutover", "rollback"]}})
    assert settings.extractions["feedback"].phase is Phase.REPLICATE


def test_an_unknown_phase_names_the_phases() -> None:
    [(key, _message, fix)] = problems({"feedback": {"phase": "migrate"}})
    assert key == f"{KEY}.feedback.phase"
    assert "prepare" in fix
    assert "cutover" in fix


def test_an_unknown_service_is_refused_with_a_suggestion() -> None:
    [(key, message, fix)] = problems({"feedbak": {"phase": "prepare"}})
    assert (key, message) == (f"{KEY}.feedbak", "unknown service")
    assert "did you mean 'feedback'?" in fix


def test_an_unknown_service_like_no_service_is_told_the_services() -> None:
    services = ", ".join(s.name for s in load_catalog())
    assert problems({"zzqqxx": {"phase": "prepare"}}) == [(f"{KEY}.zzqqxx", "unknown service", f"services: {services}")]


def test_every_unknown_service_is_reported_not_only_the_first() -> None:
    found = problems({"feedbak": {"phase": "prepare"}, "statistcs": {"phase": "prepare"}})
    assert [k for k, _, _ in found] == [f"{KEY}.feedbak", f"{KEY}.statistcs"]


def test_two_services_extracted_to_one_instance_are_refused() -> None:
    found = problems({"feedback": {"phase": "prepare", "instance": {"identifier": "edumatrix-staging-own"}},
                      "statistics": {"phase": "prepare", "instance": {"identifier": "edumatrix-staging-own"}}})
    assert [k for k, _, _ in found] == [f"{KEY}.statistics.instance.identifier"]
    assert "extraction target of feedback" in found[0][1]


def test_a_target_named_like_the_shared_instance_is_refused() -> None:
    [(key, message, _)] = problems({"feedback": {"phase": "prepare", "instance": {"identifier": "edumatrix-staging"}}})
    assert key == f"{KEY}.feedback.instance.identifier"
    assert "shared instance" in message


@pytest.mark.parametrize("stack", ["local", "prod-eu-west-1"])
def test_stacks_without_a_shared_rds_instance_cannot_extract(stack: str) -> None:
    [(key, _, fix)] = problems({"feedback": {"phase": "prepare"}}, stack=stack)
    assert key == KEY
    assert "primary stack" in fix


def test_a_single_az_prod_target_needs_a_reason() -> None:
    assert problems({"feedback": {"phase": "prepare", "instance": {"multiAz": False}}}, "prod") == [(
        f"{KEY}.feedback.instance.multiAz",
        "a prod extraction target runs Multi-AZ unless the stack file says why not",
        f"remove the key, or add {KEY}.feedback.instance.singleAzReason explaining it")]


def test_a_single_az_reason_too_short_to_say_why_asks_for_a_sentence() -> None:
    assert problems({"feedback": {"phase": "prepare", "instance": {"multiAz": False, "singleAzReason": "cheap"}}},
                    "prod") == [(
        f"{KEY}.feedback.instance.singleAzReason",
        "String should have at least 10 characters: why this prod target runs in one availability zone",
        "write at least 10 characters")]


def test_a_single_az_reason_for_a_multi_az_target_is_refused() -> None:
    reason = "a cold archive service; restores from backups within the hour are accepted"
    assert problems({"feedback": {"phase": "prepare", "instance": {"singleAzReason": reason}}}, "prod") == [(
        f"{KEY}.feedback.instance.singleAzReason", "only a single-AZ target needs a reason",
        "remove the key, or set multiAz: false")]


def test_a_stated_single_az_reason_reaches_the_policy_config() -> None:
    reason = "a cold archive service; restores from backups within the hour are accepted"
    settings = load({"feedback": {"phase": "prepare", "instance": {"multiAz": False, "singleAzReason": reason}}},
                    "prod")
    config = policy_config(settings)
    assert config["rds-multi-az"]["singleAzTargets"] == {"edumatrix-prod-feedback": reason}
    assert config["extraction-target-as-secure"]["singleAzTargets"] == {"edumatrix-prod-feedback": reason}


def test_a_target_class_without_known_memory_is_refused() -> None:
    assert problems({"feedback": {"phase": "prepare", "instance": {"instanceClass": "db.zz9.huge"}}}) == [(
        f"{KEY}.feedback.instance.instanceClass", "the memory of db.zz9.huge is not in config/monitoring.py "
        "INSTANCE_MEMORY_GIB, so the target's 'memory > 80 % used' alarm has no total",
        "choose a listed class or add it to the table")]


def test_a_derived_target_identifier_too_long_for_rds_is_refused_at_the_identifier() -> None:
    """The shared identifier is valid, but with `-students-platform` appended it is longer than RDS allows."""
    shared = "edumatrix-staging-" + "a" * 32
    target = f"{shared}-students-platform"
    found = problems({"students_platform": {"phase": "prepare"}},
                     instance=staging_instance(identifier=shared))
    assert found == [(f"{KEY}.students_platform.instance.identifier",
                      f"target identifier {target!r}: {target!r} is 68 characters; RDS identifiers are at most 63",
                      f"set {KEY}.students_platform.instance.identifier; shorten it to at most 63 characters")]


def test_a_tls_floor_rds_does_not_offer_is_refused_for_the_target_too() -> None:
    """The target copies the shared instance's floor; RDS would refuse it there as well (not a local check)."""
    found = problems({"feedback": {"phase": "prepare"}},
                     instance=staging_instance(sslMinProtocolVersion="TLSv1.3"))
    assert [k for k, _, _ in found] == ["edumatrix-db:instance.sslMinProtocolVersion",
                                        f"{KEY}.feedback.instance.sslMinProtocolVersion"]


def test_a_target_that_rds_would_refuse_names_the_extraction_key() -> None:
    found = problems({"feedback": {"phase": "prepare", "instance": {"allocatedStorageGb": 50}}},
                     instance={"instanceClass": "db.r6g.large", "allocatedStorageGb": 400,
                               "storageThroughputMibps": 600})
    assert [k for k, _, _ in found] == [f"{KEY}.feedback.instance.storageThroughputMibps"]
    assert found[0][1].startswith("the extraction target of feedback: ")


# -- the access model in each phase ------------------------------------------------------------------------------
def _feedback(settings: StackSettings) -> Any:
    return next(a for a in model_for_settings(settings).services if a.service == "feedback")


def test_fencing_leaves_the_app_role_reads_only() -> None:
    access = full_model_for_settings(load(None)).service("feedback")
    fenced = fence_writes(access)
    app = access.role(RoleKind.APP).name
    for grant in fenced.grants + fenced.default_privileges:
        if grant.role == app and grant.object_type.value in ("table", "sequence"):
            assert grant.privileges == {"SELECT"}
    assert [g for g in fenced.grants if g.role != app] == [g for g in access.grants if g.role != app]


def test_freezing_sets_the_migrators_connection_limit_to_zero_and_nothing_else() -> None:
    access = full_model_for_settings(load(None)).service("feedback")
    frozen = freeze_migrations(access)
    changed = [(a, b) for a, b in zip(access.roles, frozen.roles, strict=True) if a != b]
    assert [(a.kind, b.connection_limit) for a, b in changed] == [(RoleKind.MIGRATOR, 0)]


@pytest.mark.parametrize("phase", list(Phase))
def test_the_stacks_access_model_follows_the_phase(phase: Phase) -> None:
    path = path_between(None, phase) or ()
    settings = load({"feedback": {"phase": phase.value, "history": [p.value for p in path[:-1]]}})
    full = full_model_for_settings(settings).service("feedback")
    if not FACTS[phase].source_schema:
        assert "feedback" not in [a.service for a in model_for_settings(settings).services]
    else:
        assert _feedback(settings) == source_access(full, FACTS[phase])
    others = [a for a in model_for_settings(settings).services if a.service != "feedback"]
    assert others == [a for a in full_model_for_settings(settings).services if a.service != "feedback"]


# -- one phase per update: the base stack file against the new one (`edumatrix-db diff`) ------------------------
def test_one_phase_appended_to_the_history_is_one_update() -> None:
    assert update_problem("feedback", ("prepare", ()), ("replicate", ("prepare",))) is None


def test_two_phases_in_one_update_are_reported_with_the_allowed_next() -> None:
    problem = update_problem("feedback", ("prepare", ()), ("cutover", ("prepare", "replicate")))
    assert problem is not None
    assert "cannot move from prepare to cutover; allowed next: replicate" in problem


def test_a_history_rewritten_in_the_same_update_is_reported() -> None:
    problem = update_problem("feedback", ("replicate", ("prepare",)), ("cutover", ("replicate",)))
    assert problem is not None
    assert "must become [prepare, replicate]" in problem


def test_a_new_entry_cannot_claim_an_applied_history() -> None:
    problem = update_problem("feedback", None, ("prepare", ("prepare",)))
    assert problem is not None


def test_removing_an_entry_after_cutover_is_reported_and_before_it_is_not() -> None:
    assert update_problem("feedback", ("replicate", ("prepare",)), None) is None
    problem = update_problem("feedback", ("cutover", ("prepare", "replicate")), None)
    assert problem is not None
    assert "allowed next: complete, rollback" in problem


def test_the_diff_reports_a_skipped_phase_as_a_danger() -> None:
    def plan(phase: str, history: list[str]) -> dict[str, Any]:
        return {"resources": [], "outputs": {"extractions": {"feedback": {"phase": phase, "history": history}}}}

    result = diff_plans(plan("prepare", []), plan("cutover", ["prepare", "replicate"]), stack="staging",
                        base_label="main")
    assert [d.kind for d in result.dangers] == ["extraction-move"]
    assert result.dangerous
    assert diff_plans(plan("prepare", []), plan("replicate", ["prepare"]), stack="staging",
                      base_label="main").dangers == []


def test_the_ops_runners_audit_judges_the_shared_instance_as_the_phase_leaves_it() -> None:
    """The program hands the runner each extraction's phase; its access model then matches the stack's."""
    settings = load({"feedback": {"phase": "cutover", "history": ["prepare", "replicate"]}})
    runner = RunnerConfig(environment="staging", secret_arn="arn", model={"extractions": {"feedback": "cutover"}})
    assert runner.access_model().services == model_for_settings(settings).services


def test_the_target_takes_the_shared_instances_settings_with_the_extractions_overrides() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": [], "instance": {
        "instanceClass": "db.t4g.medium", "allocatedStorageGb": 20, "maxAllocatedStorageGb": 100,
        "multiAz": False, "singleAzReason": "a staging copy"}}})
    target = target_instance_settings(settings, "feedback")
    assert (target.identifier, target.instance_class, target.allocated_storage_gb, target.max_allocated_storage_gb,
            target.multi_az) == ("edumatrix-staging-feedback", "db.t4g.medium", 20, 100, False)
    assert target.backup_retention_days == settings.instance.backup_retention_days


def test_a_target_without_overrides_is_the_shared_instance_under_its_own_name() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": []}})
    target = target_instance_settings(settings, "feedback")
    assert target == settings.instance.model_copy(update={"identifier": "edumatrix-staging-feedback"})


def test_a_target_of_the_shared_instances_class_is_sized_as_the_stack_says() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": []}}, alarms={"instanceMemoryGb": 12})
    assert target_memory_gib(settings, "feedback") == 12


def test_a_target_of_another_class_is_sized_from_the_class_table() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": [], "instance": {"instanceClass": "db.t4g.medium"}}},
                    alarms={"instanceMemoryGb": 12})
    assert target_memory_gib(settings, "feedback") == 4.0


# -- the exact words of the extraction key's errors ----------------------------------------------------------------
EXT = "edumatrix-db:extractions.feedback"
OWN = "a service is extracted to an instance of its own"


def test_a_phase_listed_twice_in_a_row_is_told_to_list_each_once() -> None:
    assert problems({"feedback": {"phase": "replicate", "history": ["prepare", "prepare"]}}) == [
        (f"{EXT}.history", "history lists prepare twice in a row", "list each applied phase once, oldest first")]


def test_a_history_that_skips_the_first_phase_is_told_what_comes_first() -> None:
    assert problems({"feedback": {"phase": "cutover", "history": ["replicate"]}}) == [
        (f"{EXT}.history", "extraction of feedback cannot move from not extracted to replicate; allowed next: "
         "prepare (applied so far: nothing yet)",
         f"correct {EXT}.history: after not extracted comes one of: prepare")]


def test_a_phase_that_skips_one_names_the_applied_phases_and_the_allowed_next() -> None:
    assert problems({"feedback": {"phase": "cutover", "history": ["prepare"]}}) == [
        (f"{EXT}.phase", "extraction of feedback cannot move from prepare to cutover; allowed next: replicate, "
         "(remove the entry to abandon the extraction) (applied so far: prepare)",
         f"set {EXT}.phase to one of: replicate, (remove the entry to abandon the extraction)")]


def test_preparing_a_service_extracted_before_is_told_it_is_extracted_once() -> None:
    assert problems({"feedback": {"phase": "prepare", "history": ["prepare", "replicate", "cutover",
                                                                  "complete"]}}) == [
        (f"{EXT}.phase", "feedback was already extracted; a service is extracted once (applied so far: prepare, "
         "replicate, cutover, complete)", f"set {EXT}.phase to one of: cleanup")]


def test_a_phase_equal_to_the_last_applied_one_stays_put_and_is_accepted() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": ["prepare"]}})
    assert settings.extractions["feedback"].phase is Phase.PREPARE


def test_going_back_to_prepare_mid_extraction_names_the_allowed_next_not_a_second_extraction() -> None:
    assert problems({"feedback": {"phase": "prepare", "history": ["prepare", "replicate"]}}) == [
        (f"{EXT}.phase", "extraction of feedback cannot move from replicate to prepare; allowed next: cutover, "
         "(remove the entry to abandon the extraction) (applied so far: prepare, replicate)",
         f"set {EXT}.phase to one of: cutover, (remove the entry to abandon the extraction)")]


def test_a_wrong_history_after_cutover_is_told_both_ways_on() -> None:
    assert problems({"feedback": {"phase": "complete", "history": ["prepare", "replicate", "cutover", "prepare"]}}) == [
        (f"{EXT}.history", "extraction of feedback cannot move from cutover to prepare; allowed next: complete, "
         "rollback (applied so far: prepare, replicate, cutover)",
         f"correct {EXT}.history: after cutover comes one of: complete, rollback")]


def test_moving_after_cleanup_is_told_to_keep_the_final_phase() -> None:
    assert problems({"feedback": {"phase": "replicate", "history": ["prepare", "replicate", "cutover", "complete",
                                                                    "cleanup"]}}) == [
        (f"{EXT}.phase", "extraction of feedback is in its final phase cleanup; it cannot move to replicate "
         "(applied so far: prepare, replicate, cutover, complete, cleanup)",
         f"keep {EXT}.phase: cleanup for good (removing the entry would declare the schema on the shared instance "
         "again)")]


def test_a_target_named_as_the_shared_instance_is_refused() -> None:
    assert problems({"feedback": {"phase": "prepare", "history": [],
                                  "instance": {"identifier": "edumatrix-staging"}}}) == [
        (f"{EXT}.instance.identifier", f"target identifier 'edumatrix-staging' is already the shared instance's: {OWN}",
         "choose another identifier, e.g. edumatrix-staging-feedback")]


@pytest.mark.parametrize("n", [1, 2])
def test_a_target_named_as_any_read_replica_is_refused(n: int) -> None:
    found = problems({"feedback": {"phase": "prepare", "history": [],
                                   "instance": {"identifier": f"edumatrix-staging-replica-{n}"}}},
                     replicas={"count": 2})
    assert found == [(f"{EXT}.instance.identifier", f"target identifier 'edumatrix-staging-replica-{n}' is already "
                      f"a read replica's: {OWN}", "choose another identifier, e.g. edumatrix-staging-feedback")]


def test_a_replica_name_beyond_the_replica_count_is_free() -> None:
    load({"feedback": {"phase": "prepare", "history": [], "instance": {"identifier": "edumatrix-staging-replica-3"}}},
         replicas={"count": 2})


def test_replicas_are_numbered_from_one_so_a_replica_0_name_is_free() -> None:
    settings = load({"feedback": {"phase": "prepare", "history": [],
                                  "instance": {"identifier": "edumatrix-staging-replica-0"}}}, replicas={"count": 2})
    assert settings.extractions["feedback"].instance.identifier == "edumatrix-staging-replica-0"


def test_two_targets_of_one_name_are_refused_naming_the_first() -> None:
    same = {"identifier": "edumatrix-staging-x"}
    assert problems({"feedback": {"phase": "prepare", "history": [], "instance": same},
                     "news_system": {"phase": "prepare", "history": [], "instance": same}}) == [
        ("edumatrix-db:extractions.news_system.instance.identifier", "target identifier 'edumatrix-staging-x' is "
         f"already the extraction target of feedback's: {OWN}",
         "choose another identifier, e.g. edumatrix-staging-news-system")]


@pytest.mark.parametrize(("stack", "where"), [("prod-eu-west-1", "a region stack"), ("local", "the local stack")])
def test_a_stack_without_the_shared_instance_cannot_extract(stack: str, where: str) -> None:
    assert problems({"feedback": {"phase": "prepare", "history": []}}, stack=stack) == [
        ("edumatrix-db:extractions", f"{where} has no shared RDS instance to extract a service from",
         "remove the key; extractions belong to the primary stack holding the shared instance")]


def test_a_cleaned_up_service_leaves_the_shared_model_and_every_other_service_stays() -> None:
    full = build_access_model(load_catalog())
    shared = source_model(full, {"news_system": Phase.CLEANUP})
    assert [a.service for a in shared.services] == [a.service for a in full.services if a.service != "news_system"]


def _app_table_privileges(phase: Phase) -> frozenset[str]:
    access = source_access(build_access_model(load_catalog()).service("feedback"), FACTS[phase])
    return next(g.privileges for g in access.grants if g.role == "feedback_app" and g.object_type.value == "table")


def test_the_app_role_writes_on_the_shared_instance_until_cutover() -> None:
    assert _app_table_privileges(Phase.REPLICATE) == frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})


def test_from_cutover_the_app_role_only_reads_on_the_shared_instance() -> None:
    assert _app_table_privileges(Phase.CUTOVER) == frozenset({"SELECT"})
