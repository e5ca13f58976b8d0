"""edumatrix_db/offline/render.py on hand-made recordings: the JSON interface's exact layout, the tree's
extraction lines and settings, the Mermaid diagram's regions and node ids."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config.loader import load_stack
from config.settings import StackSettings
from edumatrix_db.offline.engine import RecordedResource, Recording
from edumatrix_db.offline.render import render_json, render_mermaid, render_tree

INSTANCE = "aws:rds/instance:Instance"


@pytest.fixture(scope="module")
def local_settings() -> StackSettings:
    return load_stack("local")


def res(resource_name: str, type_: str = INSTANCE, parent: str | None = None, **inputs: Any) -> RecordedResource:
    name = resource_name
    return RecordedResource(urn=f"urn:pulumi:t::p::{type_}::{name}", type=type_, name=name, parent=parent,
                            provider=None, custom=True, inputs=dict(inputs), props=dict(inputs))


def recording(settings: StackSettings, *resources: RecordedResource,
              outputs: dict[str, Any] | None = None) -> Recording:
    return Recording(project="edumatrix-db", stack="t", settings=settings, resources=list(resources),
                     outputs=outputs or {})


def test_the_plan_json_is_indented_by_two_and_keeps_the_interface_order(local_settings: StackSettings) -> None:
    text = render_json(recording(local_settings, res("db", identifier="x")), {"extra": 1})
    assert text == json.dumps({"project": "edumatrix-db", "stack": "t", "resources": [
        {"urn": "urn:pulumi:t::p::aws:rds/instance:Instance::db", "type": INSTANCE, "name": "db", "parent": None,
         "provider": None, "inputs": {"identifier": "x"}, "protect": False}], "outputs": {}, "extra": 1}, indent=2)


def test_values_json_cannot_hold_are_written_as_text(local_settings: StackSettings) -> None:
    assert json.loads(render_json(recording(local_settings), {"where": Path("/x/y")}))["where"] == "/x/y"


def test_the_tree_lists_each_extraction_with_its_phase_first_and_on_its_target(local_settings: StackSettings) -> None:
    target = res("feedback-target", identifier="edumatrix-feedback",
                 tags={"extraction-of": "feedback", "extraction-phase": "replicate"})
    lines = render_tree(recording(local_settings, target)).splitlines()
    assert lines[:3] == ["edumatrix-db / t  (1 resources)", "  extraction: feedback in phase replicate",
                         f"  - feedback-target  [{INSTANCE}]"]
    assert lines[3] == "      extraction: feedback, phase replicate"


def test_the_tree_shows_parameters_as_name_value_pairs(local_settings: StackSettings) -> None:
    group = res("params", "aws:rds/parameterGroup:ParameterGroup", family="postgres15",
                parameters=[{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    assert "      parameters: a=1, b=2" in render_tree(recording(local_settings, group)).splitlines()


def test_the_tree_shows_a_one_parameter_group(local_settings: StackSettings) -> None:
    group = res("params", "aws:rds/parameterGroup:ParameterGroup", parameters=[{"name": "a", "value": "1"}])
    assert "      parameters: a=1" in render_tree(recording(local_settings, group)).splitlines()


def test_the_tree_nests_children_and_ends_with_the_outputs(local_settings: StackSettings) -> None:
    parent = res("component", "edumatrix:x:Component")
    child = res("db", parent=parent.urn, identifier="x")
    lines = render_tree(recording(local_settings, parent, child, outputs={"endpoint": "h:5432"})).splitlines()
    assert lines[1:] == ["  - component  [edumatrix:x:Component]", f"    - db  [{INSTANCE}]",
                         "        identifier: x", "outputs:", "  endpoint: h:5432"]


def test_the_diagram_puts_instances_without_a_region_in_the_stacks_region(local_settings: StackSettings) -> None:
    text = render_mermaid(recording(local_settings, res("db-main", identifier="edumatrix-local",
                                                        instanceClass="db.t4g.micro")))
    region = local_settings.aws_region or "local"
    assert f'  subgraph region_{region.replace("-", "_")}["{region}"]' in text.splitlines()
    assert '    db_main[("edumatrix-local<br/>primary · db.t4g.micro")]' in text.splitlines()


def test_a_node_id_keeps_capitals_and_replaces_other_characters(local_settings: StackSettings) -> None:
    text = render_mermaid(recording(local_settings, res("Db.Main-1", identifier="x")))
    assert '    Db_Main_1[("x<br/>primary · ")]' in text.splitlines()


def test_an_instance_without_an_identifier_is_labelled_by_its_name(local_settings: StackSettings) -> None:
    text = render_mermaid(recording(local_settings, res("db")))
    assert '    db[("db<br/>primary · ")]' in text.splitlines()


# -- the diagram of an extraction ----------------------------------------------------------------------

SCHEMA = "edumatrix:database:ServiceSchema"
SUBSCRIPTION = "postgresql:index/subscription:Subscription"


def extraction_plan(settings: StackSettings, phase: str, *, subscribed: bool = True,
                    schemas: tuple[str, ...] = ("feedback", "news")) -> list[str]:
    shared = res("db", identifier="edumatrix-prod", instanceClass="db.r6g.large")
    target = res("feedback-target", identifier="edumatrix-prod-feedback", instanceClass="db.t4g.large",
                 tags={"extraction-of": "feedback", "extraction-phase": phase})
    found = [res(name, SCHEMA) for name in schemas]
    if subscribed:
        found.append(res("feedback-subscription", SUBSCRIPTION, name="edumatrix_extract_feedback"))
    return render_mermaid(recording(settings, shared, target, *found)).splitlines()


def test_a_replicating_extraction_is_drawn_as_replication_with_traffic_on_the_shared_instance(
        local_settings: StackSettings) -> None:
    lines = extraction_plan(local_settings, "replicate")
    assert '  db == "logical replication: edumatrix_extract_feedback" ==> feedback_target' in lines
    assert '  svc_feedback(["feedback"]) --> db' in lines
    assert '    feedback_target[("edumatrix-prod-feedback<br/>extraction target of feedback · phase replicate · '\
           'db.t4g.large")]' in lines


def test_after_cutover_the_service_is_drawn_on_its_target_with_its_read_only_schema(
        local_settings: StackSettings) -> None:
    lines = extraction_plan(local_settings, "cutover")
    assert '  svc_feedback(["feedback"]) --> feedback_target' in lines
    assert "  svc_feedback -. read-only schema .- db" in lines
    assert '  svc_feedback(["feedback"]) --> db' not in lines


def test_after_cleanup_the_service_has_no_schema_on_the_shared_instance(local_settings: StackSettings) -> None:
    lines = extraction_plan(local_settings, "cleanup", subscribed=False, schemas=("news",))
    assert '  svc_feedback(["feedback"]) --> feedback_target' in lines
    assert not any("read-only schema" in line for line in lines)
    assert not any("logical replication" in line for line in lines)


def test_an_extraction_without_its_subscription_draws_no_replication(local_settings: StackSettings) -> None:
    assert not any("logical replication" in line for line in extraction_plan(local_settings, "replicate",
                                                                               subscribed=False))


def test_other_services_stay_on_the_shared_instance(local_settings: StackSettings) -> None:
    lines = extraction_plan(local_settings, "cutover")
    assert '  svc_news(["news"]) --> db' in lines
    assert lines[-1] == '  svc_news(["news"]) --> db'


def test_an_extraction_in_an_unknown_phase_is_drawn_on_the_shared_instance(local_settings: StackSettings) -> None:
    assert '  svc_feedback(["feedback"]) --> db' in extraction_plan(local_settings, "halfway")


def test_an_instance_in_another_region_is_drawn_in_that_region(local_settings: StackSettings) -> None:
    far = res("far", identifier="edumatrix-far", region="eu-west-1")
    assert '  subgraph region_eu_west_1["eu-west-1"]' in render_mermaid(recording(local_settings, far)).splitlines()


def test_a_replica_is_joined_to_its_source_in_the_plan(local_settings: StackSettings) -> None:
    source = res("db", identifier="edumatrix-prod")
    source.props["arn"] = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod"
    replica = res("replica", identifier="edumatrix-prod-replica-1",
                  replicateSourceDb="arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod")
    lines = render_mermaid(recording(local_settings, source, replica)).splitlines()
    assert "  db -. async replication .-> replica" in lines
    assert '    replica[("edumatrix-prod-replica-1<br/>replica · ")]' in lines


def test_a_replica_of_a_source_named_by_identifier_is_joined_to_that_name(local_settings: StackSettings) -> None:
    replica = res("replica", identifier="r", replicateSourceDb="edumatrix-prod")
    assert "  edumatrix_prod -. async replication .-> replica" in render_mermaid(
        recording(local_settings, replica)).splitlines()


def test_an_extraction_target_is_not_taken_for_the_primary(local_settings: StackSettings) -> None:
    target = res("feedback-target", identifier="t", tags={"extraction-of": "feedback", "extraction-phase": "cutover"})
    lines = render_mermaid(recording(local_settings, target, res("feedback", SCHEMA))).splitlines()
    assert '  local_postgresql[("local PostgreSQL")]' in lines


def test_the_tree_marks_only_rds_instances_as_extraction_targets(local_settings: StackSettings) -> None:
    tagged_group = res("params", "aws:rds/parameterGroup:ParameterGroup",
                       tags={"extraction-of": "feedback", "extraction-phase": "cutover"})
    assert not any("extraction" in line for line in render_tree(recording(local_settings, tagged_group)).splitlines())


def test_a_target_without_a_phase_tag_shows_an_empty_phase(local_settings: StackSettings) -> None:
    target = res("t", identifier="t", tags={"extraction-of": "feedback"})
    assert "  extraction: feedback in phase " in render_tree(recording(local_settings, target)).splitlines()


def test_the_plan_json_keeps_the_order_the_resources_declared_their_inputs(local_settings: StackSettings) -> None:
    text = render_json(recording(local_settings, res("db", zeta=1, alpha=2)))
    assert text.index('"zeta"') < text.index('"alpha"')


def test_service_schemas_are_drawn_on_the_primary_even_when_a_replica_sorts_before_it(
        local_settings: StackSettings) -> None:
    replica = res("a-replica", identifier="edumatrix-prod-replica-1", replicateSourceDb="edumatrix-prod")
    lines = render_mermaid(recording(local_settings, replica, res("db", identifier="edumatrix-prod"),
                                     res("feedback", SCHEMA))).splitlines()
    assert '  svc_feedback(["feedback"]) --> db' in lines
