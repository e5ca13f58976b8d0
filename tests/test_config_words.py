"""Small rules of config/ held exactly: the words an error carries, the parameters only the platform sets,
optional settings, and the target instance's access model of an extraction."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.access import AccessModel, build_access_model
from config.catalog import load_catalog
from config.errors import ConfigError, Problem, fail
from config.extraction import FACTS, Phase
from config.extraction_plan import FROZEN_CONNECTION_LIMIT, target_model, update_problem
from config.loader import load_stack, settings_from_config
from config.maintenance import AUTOVACUUM_PARAMETERS, maintenance_parameter_names
from config.naming import InvalidIdentifier, RoleKind, version_table_name
from tests.dev_stack import DEV

WriteStack = Callable[[str, dict], Path]  # tests/conftest.py's write_stack fixture


def problems(write_stack: WriteStack, stacks_dir: Path, **sections: Any) -> list[tuple[str, str, str]]:
    config = copy.deepcopy(DEV)
    config.update({f"edumatrix-db:{k}": v for k, v in sections.items()})
    write_stack("words", config)
    try:
        load_stack("words", stacks_dir)
    except ConfigError as caught:
        return [(p.key, p.message, p.fix) for p in caught.problems]
    return []


def test_fail_builds_an_error_of_exactly_one_problem() -> None:
    error = fail("stacks/Pulumi.x.yaml", "edumatrix-db:k", "is wrong", "write it right")
    assert error.problems == [Problem("stacks/Pulumi.x.yaml", "edumatrix-db:k", "is wrong", "write it right")]


def test_the_maintenance_parameters_are_autovacuums_and_pg_crons() -> None:
    assert maintenance_parameter_names() == {name for name, _ in AUTOVACUUM_PARAMETERS} | {"cron.database_name"}


@pytest.mark.parametrize("name", ["cron.database_name", "autovacuum_vacuum_scale_factor",
                                  "log_autovacuum_min_duration"])
def test_a_stack_cannot_set_a_maintenance_parameter_itself(
        write_stack: WriteStack, stacks_dir: Path, name: str) -> None:
    found = problems(write_stack, stacks_dir, instance={"parameters": {name: "1"}})
    assert [(key, message) for key, message, _ in found] == [
        (f"edumatrix-db:instance.parameters.{name}", f"{name} is set by the platform from typed settings")]


def test_a_schedule_that_is_not_an_eventbridge_expression_is_shown_the_two_forms(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problems(write_stack, stacks_dir, backups={"pitrValidationSchedule": "monthly"}) == [(
        "edumatrix-db:backups.pitrValidationSchedule", "'monthly' is not an EventBridge Scheduler expression",
        "use cron(minutes hours day-of-month month day-of-week year), e.g. cron(0 4 1 * ? *) for the 1st of every "
        "month at 04:00 UTC, or rate(N days)")]


def test_an_optional_identifier_left_empty_is_accepted(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problems(write_stack, stacks_dir, instance={"identifier": None}) == []


def test_an_optional_identifier_given_is_checked(write_stack: WriteStack, stacks_dir: Path) -> None:
    assert problems(write_stack, stacks_dir, instance={"identifier": "Bad_Name"}) == [(
        "edumatrix-db:instance.identifier", "'Bad_Name' is not an RDS identifier: lowercase letters, digits and "
        "hyphens, starting with a letter", "use lowercase letters, digits and single hyphens, starting with a "
        "letter and not ending with a hyphen (RDS DBInstanceIdentifier rules), e.g. edumatrix-prod")]


def test_a_version_table_name_too_long_for_postgresql_is_refused_naming_what_it_is() -> None:
    with pytest.raises(InvalidIdentifier, match=r"^version table 'a{50}_schema_version' is 65 bytes"):
        version_table_name("a" * 50)




@pytest.fixture
def model() -> AccessModel:
    # per test, not at import: under `make mutation` the import happens before the mutant is chosen
    return build_access_model(load_catalog())


def test_the_target_model_holds_the_extracted_service_only(model: AccessModel) -> None:
    target = target_model(model, "feedback", FACTS[Phase.REPLICATE])
    assert [a.service for a in target.services] == ["feedback"]
    assert target.extensions == model.extensions


@pytest.mark.parametrize("phase", list(Phase))
def test_the_targets_migrator_is_frozen_exactly_while_the_phase_freezes_migrations(
        phase: Phase, model: AccessModel) -> None:
    (access,) = target_model(model, "feedback", FACTS[phase]).services
    (original,) = [a for a in model.services if a.service == "feedback"]
    expected = FROZEN_CONNECTION_LIMIT if FACTS[phase].migrations_frozen else original.role(
        RoleKind.MIGRATOR).connection_limit
    assert access.role(RoleKind.MIGRATOR).connection_limit == expected
    assert access.role(RoleKind.APP) == original.role(RoleKind.APP)


def test_some_phase_freezes_migrations_and_some_does_not() -> None:
    assert {FACTS[p].migrations_frozen for p in Phase} == {True, False}


def test_a_new_entry_claiming_a_history_is_told_the_history_starts_empty() -> None:
    assert update_problem("feedback", None, ("prepare", ("prepare", "replicate"))) == (
        "feedback is new to this stack but its history lists prepare, replicate: the history records the phases "
        "applied to this stack, none yet")


def test_a_rewritten_history_is_told_the_history_it_must_become() -> None:
    assert update_problem("feedback", ("replicate", ("prepare",)), ("cutover", ("prepare", "x"))) == (
        "the history of feedback must become [prepare, replicate] with this update (the phases applied before it), "
        "not [prepare, x]")


def test_a_history_changed_without_a_phase_change_is_reported() -> None:
    assert update_problem("feedback", ("replicate", ("prepare",)), ("replicate", ())) == (
        "the history of feedback must become [prepare] with this update (the phases applied before it), not []")


def test_an_unchanged_entry_is_no_update() -> None:
    assert update_problem("feedback", ("replicate", ("prepare",)), ("replicate", ("prepare",))) is None


def test_a_move_problem_names_the_service() -> None:
    assert update_problem("feedback", ("prepare", ()), ("cutover", ("prepare", "replicate"))) == (
        "extraction of feedback cannot move from prepare to cutover; allowed next: replicate, (remove the entry to "
        "abandon the extraction)")


def test_every_resource_is_tagged_with_service_environment_owner_classification_manager_and_stack() -> None:
    assert load_stack("dev").base_tags() == {
        "service": "edumatrix-db", "environment": "dev", "owner": "platform-team",
        "data-classification": "confidential", "managed-by": "pulumi", "stack": "dev"}


def test_a_stacks_own_tags_are_added_to_the_base_tags(write_stack: WriteStack, stacks_dir: Path) -> None:
    config = copy.deepcopy(DEV)
    config["edumatrix-db:tags"] = {"cost-center": "cc-42"}
    write_stack("tagged", config)
    tags = load_stack("tagged", stacks_dir).base_tags()
    assert (tags["cost-center"], tags["stack"]) == ("cc-42", "tagged")


def test_a_region_stack_references_its_primary_and_a_primary_nothing() -> None:
    assert (load_stack("prod-eu-west-1").referenced_stacks(), load_stack("prod").referenced_stacks()) == (
        ("prod",), ())


def test_a_value_the_stack_file_holds_encrypted_is_taken_as_the_engine_decrypted_it(
        write_stack: WriteStack, stacks_dir: Path) -> None:
    config = copy.deepcopy(DEV)
    config["edumatrix-db:owner"] = {"secure": "v1:AAAAencrypted"}
    write_stack("secret", config)
    engine = {"edumatrix-db:owner": "data-team", "edumatrix-db:environment": "dev", "aws:region": "us-east-1",
              "edumatrix-db:network": json.dumps(DEV["edumatrix-db:network"])}
    settings = settings_from_config(engine, stack="secret", source="stacks/Pulumi.secret.yaml",
                                    stacks_dir=stacks_dir)
    assert settings.owner == "data-team"
