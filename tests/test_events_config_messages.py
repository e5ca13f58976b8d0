"""config/events.py, every problem the event backbone's loader rules report, as a user reads it: one row per way to
break a stack's settings, with the whole (key, message, fix) expected; and the replication budget, counted in
full (tests/test_event_backbone.py proves the same rules through stack files and the plan)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from config.events import ReplicationBudget, events_problems, replication_budget
from config.extraction import Phase
from config.loader import load_stack
from config.settings import ExtractionSettings, StackSettings
from tests.policy.reports import rows

Edit = Callable[[StackSettings], StackSettings]
PROD_BUDGET = "8 outbox connector(s) + 0 extraction subscription(s) + 3 replica(s) + 4 headroom"
RENAME = ("rename the stack (and its file) to lowercase letters, digits and hyphens, at most 22 characters, or turn "
          "edumatrix-db:events.enabled off")


@cache
def stack(name: str) -> StackSettings:
    return load_stack(name)


def _with(**update: Any) -> Edit:
    return lambda settings: settings.model_copy(update=update)


def _parameters(**parameters: str) -> Edit:
    return lambda s: s.model_copy(update={"instance": s.instance.model_copy(update={"parameters": parameters})})


def _events(**update: Any) -> Edit:
    return lambda s: s.model_copy(update={"events": s.events.model_copy(update=update)})


def _subnets(count: int) -> Edit:
    def edit(s: StackSettings) -> StackSettings:
        assert s.network is not None
        ids = tuple(f"subnet-0a1b2c3d4e5f6{n:04d}" for n in range(count))
        return s.model_copy(update={"network": s.network.model_copy(update={"subnet_ids": ids})})
    return edit


def _declaring_events(s: StackSettings) -> StackSettings:
    """The settings with an `events` section written in the stack file."""
    return s.model_copy(update={"events": s.events.model_copy(update={"enabled": True})})


# (id, stack, edits of its loaded settings, (key, message, fix) of each problem in order)
CASES = rows(
    ("the-local-stack-declaring-the-backbone", "local", [_declaring_events],
     [("edumatrix-db:events", "only a primary AWS stack declares the event backbone: the local stack has no RDS "
       "instance", "remove the key (the primary stack's connectors publish every service's events)")]),
    ("a-region-stack-declaring-the-backbone", "prod-eu-west-1", [_declaring_events],
     [("edumatrix-db:events", "only a primary AWS stack declares the event backbone: a region stack's instance is a "
       "read replica, and logical decoding reads the primary's WAL",
       "remove the key (the primary stack's connectors publish every service's events)")]),
    ("the-local-stack-sets-its-own-slots", "local", [_parameters(max_replication_slots="1")], []),
    ("a-region-stack-takes-its-primarys-slots", "prod-eu-west-1", [_parameters(max_replication_slots="1")], []),
    ("prod-with-the-budget-the-loader-derived-exactly", "prod", [], []),
    ("slots-below-the-budget", "prod", [_parameters(max_replication_slots="14")],
     [("edumatrix-db:instance.parameters.max_replication_slots", f"'14' is below the 15 this stack needs "
       f"({PROD_BUDGET})", "remove the key (the platform derives 15) or set 15 or more")]),
    ("senders-below-the-budget-count-their-own-headroom", "prod", [_parameters(max_wal_senders="18")],
     [("edumatrix-db:instance.parameters.max_wal_senders", f"'18' is below the 19 this stack needs "
       f"({PROD_BUDGET} + 4 senders)", "remove the key (the platform derives 19) or set 19 or more")]),
    ("slots-not-a-number", "prod", [_parameters(max_replication_slots="15 ", max_wal_senders="19")],
     [("edumatrix-db:instance.parameters.max_replication_slots", f"'15 ' is below the 15 this stack needs "
       f"({PROD_BUDGET})", "remove the key (the platform derives 15) or set 15 or more")]),
    ("a-stack-name-neither-msk-nor-s3-accepts", "prod", [_with(stack="prod_eu")],
     [("stack name", "AWS refuses the MSK cluster name this stack derives from its name: 'edumatrix-prod_eu-events' "
       "(^[0-9A-Za-z][0-9A-Za-z-]{0,63}$)", RENAME),
      ("stack name", "AWS refuses the connector plugin bucket's prefix this stack derives from its name: "
       "'edumatrix-prod_eu-cdc-' (^[a-z0-9][a-z0-9-]{0,36}$)", RENAME)]),
    ("avro", "prod", [_events(schema_format="AVRO")],
     [("edumatrix-db:events.schemaFormat", "AVRO: the registered schema versions are derived for the Glue JSON Schema "
       "converter only (config/event_schemas.py); with auto-registration off an Avro record would find no version "
       "and every connector task would fail", "remove the key (default JSON)")]),
    ("four-subnets", "prod", [_subnets(4)],
     [("edumatrix-db:network.subnetIds", "4 subnets; MSK places brokers in two or three availability zones "
       "(BrokerNodeGroupInfo.ClientSubnets)", "list two or three subnets, each in its own availability zone")]),
    ("three-subnets", "prod", [_subnets(3)], []),
    ("no-network-means-no-brokers", "prod", [_with(network=None)],
     [("edumatrix-db:events.replicationFactor", "replicationFactor 3 needs as many brokers; the cluster has 0 "
       "(0 zone(s) x brokersPerZone 1)", "set replicationFactor to 0 or less, or raise "
       "edumatrix-db:events.brokersPerZone")]),
    ("prod-with-two-copies", "prod", [_events(replication_factor=2, min_insync_replicas=1)],
     [("edumatrix-db:events.replicationFactor", "prod keeps three copies of every event (Amazon MSK best practices: "
       "replication factor 3 for clusters across three availability zones)", "remove the key (default 3)")]),
)


@pytest.mark.parametrize(("name", "edits", "expected"), CASES)
def test_each_event_backbone_rule_reports_its_key_message_and_fix_in_full(
        name: str, edits: list[Edit], expected: list[tuple[str, str, str]]) -> None:
    settings = stack(name)
    for edit in edits:
        settings = edit(settings)
    problems = events_problems(settings)
    assert [p.source for p in problems] == [f"stacks/Pulumi.{name}.yaml"] * len(expected)
    assert [(p.key, p.message, p.fix) for p in problems] == expected


def test_a_stack_without_the_backbone_counts_no_outbox_connector() -> None:
    assert replication_budget(stack("dev")) == ReplicationBudget(0, 0, 0, 10, 14)


def test_each_declared_extraction_adds_a_slot_to_the_connectors_and_replicas() -> None:
    """A prepare-phase extraction has no subscription yet: it is counted all the same (a phase move needs no reboot)."""
    prepared = ExtractionSettings(phase=Phase.PREPARE)
    extracting = _with(extractions=dict.fromkeys(("courses", "grading"), prepared))(stack("prod"))
    assert replication_budget(extracting) == ReplicationBudget(8, 2, 3, 17, 21)
