"""The declared side of extraction under mocks (issue 12): staging extracts `feedback`, planned in every phase.

Each phase's plan holds the resources its facts (config/extraction.py) call for and nothing else; the target
stands on the shared instance's own posture; and the move between consecutive phases changes only what it
should (compared by URN, as `edumatrix-db diff` compares plans).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.extraction import FACTS, NEXT, Phase, path_between
from edumatrix_db.offline.diff import diff_plans
from edumatrix_db.offline.engine import Planner, RecordedResource, Recording
from edumatrix_db.offline.render import render_mermaid, render_tree
from tests.region_support import copy_stacks, edit_stack

STACK = "staging"
SERVICE = "feedback"
EXTRACTION = "edumatrix:extraction:ServiceExtraction"
TARGET = "edumatrix:extraction:TargetInstance"
INSTANCE = "aws:rds/instance:Instance"
SUBSCRIPTION = "postgresql:index/subscription:Subscription"
PUBLICATION = "pulumi-python:dynamic/edumatrix:SchemaPublication"
RECORD = "aws:route53/record:Record"
POOLER = "edumatrix:extraction:ServicePooler"
NLB = "aws:lb/loadBalancer:LoadBalancer"
GRANT = "postgresql:index/grant:Grant"
ROLE = "postgresql:index/role:Role"
WRITTEN = "      phase: replicate\n      history: [prepare]\n"
REPLICATION = {"edumatrix-staging-extract-feedback-publication", "edumatrix-staging-extract-feedback-subscription"}
# Changed by every move: the target's phase tag, and the ops runner's function, whose audit model carries the phase.
MOVED = {"edumatrix-staging-feedback-db", "edumatrix-staging-ops-runner-function"}


def _phase_lines(phase: Phase) -> str:
    path = path_between(None, phase)
    assert path is not None
    history = ", ".join(p.value for p in path[:-1])
    return f"      phase: {phase.value}\n      history: [{history}]\n"


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[Phase, Recording]:
    """The staging plan in every phase (one copy of `stacks/` per phase)."""
    out = {}
    for phase in Phase:
        stacks = copy_stacks(tmp_path_factory.mktemp(phase.value))
        edit_stack(stacks, STACK, WRITTEN, _phase_lines(phase))
        out[phase] = Planner(stacks).plan(STACK)
    return out


def _under_extraction(rec: Recording, resource: RecordedResource) -> bool:
    """Whether `resource` descends from the ServiceExtraction component (its parent chain)."""
    urns = {r.urn: r for r in rec.resources}
    current: RecordedResource | None = resource
    while current is not None:
        if current.type == EXTRACTION:
            return True
        current = urns.get(current.parent or "")
    return False


def _descends(rec: Recording, resource: RecordedResource, ancestor: str) -> bool:
    urns = {r.urn: r for r in rec.resources}
    current = urns.get(resource.parent or "")
    while current is not None:
        if current.urn == ancestor:
            return True
        current = urns.get(current.parent or "")
    return False


def _in_extraction(rec: Recording) -> list[RecordedResource]:
    return [r for r in rec.resources if _under_extraction(rec, r)]


def _as_json(rec: Recording) -> dict:
    return json.loads(json.dumps(rec.to_json(), default=str))


def _shared(rec: Recording) -> RecordedResource:
    return next(r for r in rec.of_type(INSTANCE) if r.name == "edumatrix-staging-db")


def _target(rec: Recording) -> RecordedResource:
    return next(r for r in rec.of_type(INSTANCE) if r.name == "edumatrix-staging-feedback-db")


def _by_name(rec: Recording, type_: str, name: str) -> RecordedResource:
    return next(r for r in rec.of_type(type_) if r.name == name)


def test_the_repository_stack_file_plans_the_replicate_phase() -> None:
    assert WRITTEN in (Path(__file__).parent.parent / "stacks" / f"Pulumi.{STACK}.yaml").read_text()


@pytest.mark.parametrize("phase", list(Phase))
def test_every_phase_declares_the_target_instance_on_its_own_foundation(plans: dict[Phase, Recording],
                                                                       phase: Phase) -> None:
    types = {r.type for r in _in_extraction(plans[phase])}
    assert {TARGET, "edumatrix:database:InstanceFoundation", "aws:kms/key:Key", "aws:rds/parameterGroup:ParameterGroup",
            "edumatrix:database:ServiceSchema", "edumatrix:monitoring:DatabaseAlarms"} <= types


@pytest.mark.parametrize("phase", list(Phase))
def test_replication_exists_exactly_in_the_phases_whose_facts_say_so(plans: dict[Phase, Recording],
                                                                     phase: Phase) -> None:
    types = [r.type for r in _in_extraction(plans[phase])]
    expected = 1 if FACTS[phase].replication else 0
    assert (types.count(PUBLICATION), types.count(SUBSCRIPTION)) == (expected, expected)


@pytest.mark.parametrize("phase", list(Phase))
def test_the_services_name_points_where_its_traffic_is(plans: dict[Phase, Recording], phase: Phase) -> None:
    """At the pooler while it stands in front of the service (it sends the traffic where the switch says), else
    at the instance serving the service."""
    rec = plans[phase]
    record = _by_name(rec, RECORD, "edumatrix-staging-connections-feedback")
    if FACTS[phase].pooler:
        assert record.inputs["records"] == [rec.one(NLB).props["dnsName"]]
    elif FACTS[phase].traffic_on_target:
        assert record.inputs["records"] == [_target(rec).props["address"]]
    else:
        assert record.inputs["records"] != [_target(rec).props["address"]]


@pytest.mark.parametrize("phase", list(Phase))
def test_the_pooler_exists_exactly_in_the_phases_whose_facts_say_so(plans: dict[Phase, Recording],
                                                                   phase: Phase) -> None:
    assert len(plans[phase].of_type(POOLER)) == (1 if FACTS[phase].pooler else 0)


@pytest.mark.parametrize("phase", list(Phase))
def test_the_app_role_writes_on_the_shared_instance_only_while_it_is_authoritative(
        plans: dict[Phase, Recording], phase: Phase) -> None:
    grants = [r for r in plans[phase].of_type(GRANT)
              if r.name == "feedback-app-table" and not _under_extraction(plans[phase], r)]
    if not FACTS[phase].source_schema:
        assert grants == []
        return
    privileges = set(grants[0].inputs["privileges"])
    assert ("INSERT" in privileges) is FACTS[phase].source_writable
    assert "SELECT" in privileges


@pytest.mark.parametrize("phase", list(Phase))
def test_the_migrator_cannot_log_in_on_either_instance_while_migrations_are_frozen(
        plans: dict[Phase, Recording], phase: Phase) -> None:
    migrators = [r for r in plans[phase].of_type(ROLE) if r.inputs["name"] == "feedback_migrator"]
    assert migrators, "the migrator is declared on the target in every phase"
    limits = {r.inputs["connectionLimit"] for r in migrators}
    assert (limits == {0}) is FACTS[phase].migrations_frozen


def test_a_cleaned_up_service_has_no_schema_left_on_the_shared_instance(plans: dict[Phase, Recording]) -> None:
    rec = plans[Phase.CLEANUP]
    shared_schemas = [r for r in rec.of_type("postgresql:index/schema:Schema")
                      if r.inputs["name"] == "feedback_schema" and not _under_extraction(rec, r)]
    assert shared_schemas == []
    assert [r for r in rec.of_type("postgresql:index/schema:Schema") if r.inputs["name"] == "feedback_schema"]


# Inputs that name the instance itself or are generated per instance; everything else is its posture.
OWN_INPUTS = {"identifier", "instanceClass", "allocatedStorage", "maxAllocatedStorage", "kmsKeyId",
              "performanceInsightsKmsKeyId", "dbSubnetGroupName", "vpcSecurityGroupIds", "parameterGroupName",
              "monitoringRoleArn", "finalSnapshotIdentifier", "passwordWo", "tags"}


def test_the_targets_posture_equals_the_shared_instances(plans: dict[Phase, Recording]) -> None:
    rec = plans[Phase.REPLICATE]
    shared, target = _shared(rec).inputs, _target(rec).inputs
    posture = {k: v for k, v in shared.items() if k not in OWN_INPUTS}
    assert {k: target.get(k) for k in posture} == posture
    assert target["kmsKeyId"] != shared["kmsKeyId"]  # a CMK of its own
    assert target["instanceClass"] == "db.t4g.medium"  # the stack file's override


def test_the_targets_parameter_group_equals_the_shared_instances(plans: dict[Phase, Recording]) -> None:
    rec = plans[Phase.REPLICATE]
    groups = rec.of_type("aws:rds/parameterGroup:ParameterGroup")
    shared = next(g for g in groups if not _under_extraction(rec, g))
    target = next(g for g in groups if _under_extraction(rec, g))
    assert target.inputs["parameters"] == shared.inputs["parameters"]


def test_the_subscription_connects_as_the_platforms_replication_login(plans: dict[Phase, Recording]) -> None:
    sub = plans[Phase.REPLICATE].one(SUBSCRIPTION)
    assert sub.inputs["conninfo"] == "[secret]"
    assert "user=edumatrix_extraction_replicator " in sub.props["conninfo"]
    assert sub.inputs["slotName"] == sub.inputs["name"] == "edumatrix_extract_feedback"


def _diff(plans: dict[Phase, Recording], before: Phase, after: Phase) -> tuple[set[str], set[str], set[str]]:
    """(added, removed, changed) resource names between two phases' plans."""
    d = diff_plans(_as_json(plans[before]), _as_json(plans[after]), stack=STACK, base_label=before.value)
    return ({r["name"] for r in d.added}, {r["name"] for r in d.removed}, {c.name for c in d.changed})


def _pooler_names(rec: Recording) -> set[str]:
    pooler = rec.one(POOLER)
    return {pooler.name} | {r.name for r in rec.resources if _descends(rec, r, pooler.urn)}


# The cutover's switch reaches SSM and ECS through the ops runner's endpoints while a pooler is declared (issue 13).
SWITCH_ROUTE = {"edumatrix-staging-ops-runner-ssm", "edumatrix-staging-ops-runner-ecs"}


def test_prepare_to_replicate_adds_the_replication_and_the_pooler_and_moves_the_name_onto_it(
        plans: dict[Phase, Recording]) -> None:
    added, removed, changed = _diff(plans, Phase.PREPARE, Phase.REPLICATE)
    assert added == REPLICATION | _pooler_names(plans[Phase.REPLICATE]) | SWITCH_ROUTE
    assert removed == {"edumatrix-staging-connections-feedback"}  # its proxy endpoint: the pooler is its pool now
    assert changed == MOVED | {
        "edumatrix-staging-connections-feedback",  # the DNS name, now the pooler's NLB
        "edumatrix-staging-connections-shared",  # the proxy no longer logs in as feedback's roles
        "edumatrix-staging-connections-proxy-secrets",  # nor reads their secrets
        "edumatrix-staging-alarms-db-dashboard",  # no proxy endpoint of feedback to chart any more
    }


def test_replicate_to_cutover_fences_writes_and_leaves_the_name_and_the_pooler_alone(
        plans: dict[Phase, Recording]) -> None:
    """The traffic moved by the ops runner's switch (PAUSE, switch, RESUME on every pooler task); the update
    redeploys no pooler task and moves no name."""
    added, removed, changed = _diff(plans, Phase.REPLICATE, Phase.CUTOVER)
    assert added == set()
    assert removed == set()
    assert changed == MOVED | {
        "feedback-app-table", "feedback-app-sequence",  # writes revoked on the shared instance
        "feedback-app-table-defaults", "feedback-app-sequence-defaults",  # and on tables created later
    }


def test_cutover_to_complete_removes_replication_and_the_pooler_and_lifts_the_freeze(
        plans: dict[Phase, Recording]) -> None:
    added, removed, changed = _diff(plans, Phase.CUTOVER, Phase.COMPLETE)
    assert added == set()
    assert removed == REPLICATION | _pooler_names(plans[Phase.CUTOVER]) | SWITCH_ROUTE
    # the phase tag; the migrator's connection limit on both instances; the name, from the pooler to the target
    assert changed == MOVED | {"feedback-migrator", "edumatrix-staging-feedback-feedback-migrator",
                               "edumatrix-staging-connections-feedback"}


def test_complete_to_cleanup_removes_only_the_old_schema_and_its_logins(plans: dict[Phase, Recording]) -> None:
    complete = plans[Phase.COMPLETE]
    d = diff_plans(_as_json(complete), _as_json(plans[Phase.CLEANUP]), stack=STACK, base_label="complete")
    assert d.added == []
    old_schema = next(r for r in complete.of_type("edumatrix:database:ServiceSchema") if r.name == SERVICE)
    outside = [r["name"] for r in d.removed
               if r["urn"] != old_schema.urn and not _descends(complete, complete.by_urn(r["urn"]), old_schema.urn)]
    # its migrator's USAGE on schema cron, the CDC login's USAGE on the schema, its event objects (docs/events.md)
    assert sorted(outside) == ["edumatrix-db-maintenance-feedback-cron",
                               "edumatrix-db-platform-cdc_replicator-schema-feedback_schema",
                               "edumatrix-staging-events-feedback"]
    assert any(r["type"] == "postgresql:index/schema:Schema" for r in d.removed)
    assert {c.name for c in d.changed} == MOVED


def test_cutover_to_rollback_returns_writes_and_the_name_and_keeps_replication(
        plans: dict[Phase, Recording]) -> None:
    """Forward replication stays: the target is kept current for another try (config/extraction.py, rollback;
    the operated side's `rollback` restarts it)."""
    added, removed, changed = _diff(plans, Phase.CUTOVER, Phase.ROLLBACK)
    replicate_to_cutover = _diff(plans, Phase.REPLICATE, Phase.CUTOVER)
    assert added == set()  # the pooler stays in front of the service: it serves from the source again
    assert removed == set()
    assert changed == replicate_to_cutover[2]


def test_every_allowed_move_is_one_of_the_compared_ones() -> None:
    compared = {(Phase.PREPARE, Phase.REPLICATE), (Phase.REPLICATE, Phase.CUTOVER), (Phase.CUTOVER, Phase.COMPLETE),
                (Phase.COMPLETE, Phase.CLEANUP), (Phase.CUTOVER, Phase.ROLLBACK), (Phase.ROLLBACK, Phase.REPLICATE)}
    assert {(a, b) for a, nexts in NEXT.items() for b in nexts} == compared


def test_rollback_to_replicate_keeps_the_replication_that_ran_through_rollback(
        plans: dict[Phase, Recording]) -> None:
    added, removed, changed = _diff(plans, Phase.ROLLBACK, Phase.REPLICATE)
    assert added == set()
    assert removed == set()
    assert changed == MOVED


def test_the_tree_shows_the_phase(plans: dict[Phase, Recording]) -> None:
    tree = render_tree(plans[Phase.CUTOVER])
    assert "extraction: feedback in phase cutover" in tree.splitlines()[1]


def test_mermaid_draws_the_replication_link_while_replicating(plans: dict[Phase, Recording]) -> None:
    text = render_mermaid(plans[Phase.REPLICATE])
    assert 'edumatrix_staging_db == "logical replication: edumatrix_extract_feedback" ==> ' \
           "edumatrix_staging_feedback_db" in text
    assert "svc_feedback([\"feedback\"]) --> edumatrix_staging_db" in text


def test_mermaid_draws_the_service_on_its_target_after_cutover(plans: dict[Phase, Recording]) -> None:
    text = render_mermaid(plans[Phase.COMPLETE])
    assert "svc_feedback([\"feedback\"]) --> edumatrix_staging_feedback_db" in text
    assert "logical replication" not in text
    assert "extraction target of feedback · phase complete" in text
