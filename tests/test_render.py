"""The plan renderers (edumatrix_db/offline/render.py) on small recordings built by hand: what a reviewer sees in
the Mermaid diagram and the tree, node by node and label by label."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.loader import load_stack
from edumatrix_db.offline.engine import RecordedResource, Recording
from edumatrix_db.offline.render import render_json, render_mermaid, render_tree

INSTANCE = "aws:rds/instance:Instance"
SCHEMA = "edumatrix:database:ServiceSchema"
PRIMARY_ARN = "arn:aws:rds:us-east-1:123456789012:db:edumatrix-prod"


def res(type_: str, name: str, inputs: dict[str, Any] | None = None, parent: str | None = None,
        **props: Any) -> RecordedResource:
    inputs = inputs or {}
    return RecordedResource(urn=f"urn:pulumi:s::edumatrix-db::{type_}::{name}", type=type_, name=name,
                            parent=parent, provider=None, custom=True, inputs=inputs, props={**inputs, **props})


def recording(stack: str, *resources: RecordedResource, outputs: dict[str, Any] | None = None) -> Recording:
    return Recording("edumatrix-db", stack, load_stack(stack), list(resources), outputs or {})


def test_mermaid_draws_the_primary_its_replicas_and_the_schemas_using_it() -> None:
    diagram = render_mermaid(recording(
        "prod",
        res(INSTANCE, "edumatrix-prod-db", {"identifier": "edumatrix-prod", "instanceClass": "db.r6g.large"},
            arn=PRIMARY_ARN),
        res(INSTANCE, "edumatrix-prod-replicas-1", {"identifier": "edumatrix-prod-replica-1",
                                                    "instanceClass": "db.r6g.xlarge",
                                                    "replicateSourceDb": PRIMARY_ARN}),
        res(SCHEMA, "feedback"),
    ))
    assert diagram.splitlines() == [
        "flowchart LR",
        '  subgraph region_us_east_1["us-east-1"]',
        '    edumatrix_prod_db[("edumatrix-prod<br/>primary · db.r6g.large")]',
        '    edumatrix_prod_replicas_1[("edumatrix-prod-replica-1<br/>replica · db.r6g.xlarge")]',
        "  end",
        "  edumatrix_prod_db -. async replication .-> edumatrix_prod_replicas_1",
        '  svc_feedback(["feedback"]) --> edumatrix_prod_db',
    ]


def test_mermaid_draws_a_region_stacks_source_in_the_primarys_region_named_after_its_stack() -> None:
    diagram = render_mermaid(recording(
        "prod-eu-west-1",
        res(INSTANCE, "edumatrix-prod-eu-west-1-db", {"identifier": "edumatrix-prod-eu-west-1",
                                                      "instanceClass": "db.r6g.large", "region": "eu-west-1",
                                                      "replicateSourceDb": PRIMARY_ARN}),
    ))
    assert diagram.splitlines() == [
        "flowchart LR",
        '  subgraph region_eu_west_1["eu-west-1"]',
        '    edumatrix_prod_eu_west_1_db[("edumatrix-prod-eu-west-1<br/>replica · db.r6g.large")]',
        "  end",
        '  subgraph region_us_east_1["us-east-1"]',
        '    source_edumatrix_prod[("edumatrix-prod<br/>primary · stack prod")]',
        "  end",
        "  source_edumatrix_prod -. async replication .-> edumatrix_prod_eu_west_1_db",
    ]


def test_mermaid_labels_an_outside_source_of_a_stack_without_a_primary_stack_as_a_source() -> None:
    diagram = render_mermaid(recording(
        "dev",
        res(INSTANCE, "copy", {"identifier": "copy", "instanceClass": "db.t4g.medium",
                               "replicateSourceDb": "arn:aws:rds:eu-west-2:123456789012:db:elsewhere"}),
    ))
    assert '  subgraph region_eu_west_2["eu-west-2"]' in diagram.splitlines()
    assert '    source_elsewhere[("elsewhere<br/>source")]' in diagram.splitlines()
    assert "  source_elsewhere -. async replication .-> copy" in diagram.splitlines()


def test_mermaid_points_the_schemas_of_the_local_stack_at_the_local_server() -> None:
    diagram = render_mermaid(recording("local", res(SCHEMA, "feedback"), res(SCHEMA, "news_system")))
    assert diagram.splitlines() == [
        "flowchart LR",
        '  local_postgresql[("local PostgreSQL")]',
        '  svc_feedback(["feedback"]) --> local_postgresql',
        '  svc_news_system(["news_system"]) --> local_postgresql',
    ]


def test_mermaid_without_instances_or_schemas_is_an_empty_flowchart() -> None:
    assert render_mermaid(recording("local")) == "flowchart LR"


def test_tree_nests_children_under_their_parent_and_shows_only_set_key_settings() -> None:
    parent = res("edumatrix:database:SharedInstance", "edumatrix-prod")
    tree = render_tree(recording(
        "prod",
        parent,
        res(INSTANCE, "edumatrix-prod-db", {"identifier": "edumatrix-prod", "multiAz": True, "kmsKeyId": "",
                                            "tags": {"a": "b"}}, parent=parent.urn),
        res("aws:rds/parameterGroup:ParameterGroup", "params", {
            "family": "postgres15", "parameters": [{"name": "rds.force_ssl", "value": "1"},
                                                   {"name": "max_connections", "value": "1500"}]},
            parent=parent.urn),
        res("aws:rds/subnetGroup:SubnetGroup", "subnets", {"subnetIds": ["subnet-1", "subnet-2"]}),
        outputs={"address": "db.example"},
    ))
    assert tree.splitlines() == [
        "edumatrix-db / prod  (4 resources)",
        "  - edumatrix-prod  [edumatrix:database:SharedInstance]",
        "    - edumatrix-prod-db  [aws:rds/instance:Instance]",
        "        identifier: edumatrix-prod",
        "        multiAz: True",
        "    - params  [aws:rds/parameterGroup:ParameterGroup]",
        "        family: postgres15",
        "        parameters: rds.force_ssl=1, max_connections=1500",
        "  - subnets  [aws:rds/subnetGroup:SubnetGroup]",
        "      subnetIds: subnet-1, subnet-2",
        "outputs:",
        "  address: db.example",
    ]


@pytest.mark.parametrize("extra", [None, {"violations": []}])
def test_json_is_the_recording_plus_what_the_caller_adds(extra: dict[str, Any] | None) -> None:
    rec = recording("local", res(SCHEMA, "feedback"), outputs={"environment": "local"})
    assert json.loads(render_json(rec, extra)) == {**rec.to_json(), **(extra or {})}
