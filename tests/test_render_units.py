"""edumatrix_db/offline/render.py on hand-made recordings: the JSON interface's exact layout, the tree's
extraction lines and settings, the Mermaid diagram's regions and node ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.loader import load_stack
from edumatrix_db.offline.engine import RecordedResource, Recording
from edumatrix_db.offline.render import render_json, render_mermaid, render_tree

INSTANCE = "aws:rds/instance:Instance"


@pytest.fixture(scope="module")
def local_settings():
    return load_stack("local")


def res(name: str, type_: str = INSTANCE, parent: str | None = None, **inputs) -> RecordedResource:
    return RecordedResource(urn=f"urn:pulumi:t::p::{type_}::{name}", type=type_, name=name, parent=parent,
                            provider=None, custom=True, inputs=dict(inputs), props=dict(inputs))


def recording(settings, *resources: RecordedResource, outputs=None) -> Recording:
    return Recording(project="edumatrix-db", stack="t", settings=settings, resources=list(resources),
                     outputs=outputs or {})


def test_the_plan_json_is_indented_by_two_and_keeps_the_interface_order(local_settings) -> None:
    text = render_json(recording(local_settings, res("db", identifier="x")), {"extra": 1})
    assert text == json.dumps({"project": "edumatrix-db", "stack": "t", "resources": [
        {"urn": "urn:pulumi:t::p::aws:rds/instance:Instance::db", "type": INSTANCE, "name": "db", "parent": None,
         "provider": None, "inputs": {"identifier": "x"}, "protect": False}], "outputs": {}, "extra": 1}, indent=2)


def test_values_json_cannot_hold_are_written_as_text(local_settings) -> None:
    assert json.loads(render_json(recording(local_settings), {"where": Path("/x/y")}))["where"] == "/x/y"


def test_the_tree_lists_each_extraction_with_its_phase_first_and_on_its_target(local_settings) -> None:
    target = res("feedback-target", identifier="edumatrix-feedback",
                 tags={"extraction-of": "feedback", "extraction-phase": "replicate"})
    lines = render_tree(recording(local_settings, target)).splitlines()
    assert lines[:3] == ["edumatrix-db / t  (1 resources)", "  extraction: feedback in phase replicate",
                         f"  - feedback-target  [{INSTANCE}]"]
    assert lines[3] == "      extraction: feedback, phase replicate"


def test_the_tree_shows_parameters_as_name_value_pairs(local_settings) -> None:
    group = res("params", "aws:rds/parameterGroup:ParameterGroup", family="postgres15",
                parameters=[{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    assert "      parameters: a=1, b=2" in render_tree(recording(local_settings, group)).splitlines()


def test_the_tree_shows_a_one_parameter_group(local_settings) -> None:
    group = res("params", "aws:rds/parameterGroup:ParameterGroup", parameters=[{"name": "a", "value": "1"}])
    assert "      parameters: a=1" in render_tree(recording(local_settings, group)).splitlines()


def test_the_tree_nests_children_and_ends_with_the_outputs(local_settings) -> None:
    parent = res("component", "edumatrix:x:Component")
    child = res("db", parent=parent.urn, identifier="x")
    lines = render_tree(recording(local_settings, parent, child, outputs={"endpoint": "h:5432"})).splitlines()
    assert lines[1:] == ["  - component  [edumatrix:x:Component]", f"    - db  [{INSTANCE}]",
                         "        identifier: x", "outputs:", "  endpoint: h:5432"]


def test_the_diagram_puts_instances_without_a_region_in_the_stacks_region(local_settings) -> None:
    text = render_mermaid(recording(local_settings, res("db-main", identifier="edumatrix-local",
                                                        instanceClass="db.t4g.micro")))
    region = local_settings.aws_region or "local"
    assert f'  subgraph region_{region.replace("-", "_")}["{region}"]' in text.splitlines()
    assert '    db_main[("edumatrix-local<br/>primary · db.t4g.micro")]' in text.splitlines()


def test_a_node_id_keeps_capitals_and_replaces_other_characters(local_settings) -> None:
    text = render_mermaid(recording(local_settings, res("Db.Main-1", identifier="x")))
    assert '    Db_Main_1[("x<br/>primary · ")]' in text.splitlines()


def test_an_instance_without_an_identifier_is_labelled_by_its_name(local_settings) -> None:
    text = render_mermaid(recording(local_settings, res("db")))
    assert '    db[("db<br/>primary · ")]' in text.splitlines()
