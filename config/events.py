"""The event backbone's rules (issue 19, docs/event-backbone.md): which services publish, what the backbone
needs from the stack (brokers, copies, subnets), and how many replication slots and WAL senders the instance
must allow. Pure data: no resources.

Replication budget. Every logical slot and every physical replica holds a WAL sender, and each slot decodes (or
holds) the whole WAL, so `max_replication_slots` / `max_wal_senders` are derived from what the stack declares:

    slots   = publishing services (one Debezium slot each, when events are on)
            + declared extractions (one subscription slot each while replicating, config/extraction.py;
              counted in every phase so a phase move needs no reboot)
            + same-region read replicas + regions the credentials are copied to (one cross-region replica each)
            + SLOT_HEADROOM (a connector re-created beside its old slot, an operator's pg_recvlogical)
    senders = slots + SENDER_HEADROOM (pg_basebackup, a replica catching up after a restart)

never below PostgreSQL's own default (10 each). A stack may set either higher through `instance.parameters`;
lower than the budget is refused by the loader. Both are static parameters (a reboot applies them), and a
hot standby needs at least its primary's `max_wal_senders`: region stacks take the primary's values (their
instance settings are the primary's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from config.catalog import ServiceSpec
from config.errors import Problem
from config.settings import NAMESPACE, StackSettings

SLOT_HEADROOM = 4
SENDER_HEADROOM = 4
POSTGRES_DEFAULT = 10
"""`max_replication_slots` and `max_wal_senders` default to 10 in PostgreSQL 15 (runtime-config-replication)."""
SLOTS_PARAMETER = "max_replication_slots"
SENDERS_PARAMETER = "max_wal_senders"
MAX_BROKER_SUBNETS = 3
"""MSK provisioned: client subnets in two or three availability zones ("BrokerNodeGroupInfo.ClientSubnets": "you
can specify either two or three subnets", Amazon MSK API reference); brokers are spread evenly over them."""
MAX_STACK_NAME = 37 - len("edumatrix--cdc-")
"""The longest stack name whose plugin bucket prefix `edumatrix-<stack>-cdc-` fits 37 characters."""
IAM_PORT = 9098
"""Brokers' port for IAM-authenticated TLS clients inside the VPC (Amazon MSK, "Port information")."""


MSK_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
"""CreateCluster `ClusterName`: 1-64 characters, letters, digits and hyphens, a letter or digit first (Amazon MSK
API reference)."""
BUCKET_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]{0,36}$")
"""`bucket_prefix`: "Must be lowercase and less than or equal to 37 characters in length" (pulumi_aws
s3/bucket.py; S3 bucket naming rules: lowercase letters, digits, hyphens and dots, 63 in all)."""


HEARTBEAT_PREFIX = "__debezium-heartbeat"
"""Debezium's `heartbeat.topics.prefix`: heartbeats go to `<prefix>.<topic.prefix>`. A connector whose outbox is
quiet while other tables are busy confirms its slot's position only through them, so its slot does not hold WAL
until the service's next event (Debezium PostgreSQL connector, "WAL disk space consumption")."""


def heartbeat_topic_name(service: str) -> str:
    """`__debezium-heartbeat.edumatrix.<service>`: the service connector's heartbeat topic."""
    return f"{HEARTBEAT_PREFIX}.edumatrix.{service}"


def heartbeat_schema_name(service: str) -> str:
    """`<service>.heartbeat`: the registry's schema of the heartbeat records (two parts: no event type has it)."""
    return f"{service}.heartbeat"


def cluster_name(prefix: str) -> str:
    return f"{prefix}-events"


def registry_name(prefix: str) -> str:
    return f"{prefix}-events"


def plugin_bucket_prefix(prefix: str) -> str:
    return f"{prefix}-cdc-"


def publishers(settings: StackSettings) -> tuple[ServiceSpec, ...]:
    """The services with at least one event type in the catalog: each gets a topic per aggregate, a schema per
    event type and a connector on its outbox (statistics publishes nothing)."""
    return tuple(s for s in settings.catalog() if s.events)


def backbone_declared(settings: StackSettings) -> bool:
    """Whether this stack declares the event backbone (a primary AWS stack with `events.enabled`)."""
    return settings.events.enabled and not settings.is_local and not settings.is_region_stack


def broker_count(settings: StackSettings) -> int:
    """Brokers of the cluster: `brokersPerZone` in each subnet's zone (MSK needs a multiple of the subnets)."""
    subnets = len(settings.network.subnet_ids) if settings.network else 0
    return subnets * settings.events.brokers_per_zone


@dataclass(frozen=True)
class ReplicationBudget:
    publishers: int
    extractions: int
    replicas: int
    slots: int
    senders: int

    def explain(self) -> str:
        return (f"{self.publishers} outbox connector(s) + {self.extractions} extraction subscription(s) + "
                f"{self.replicas} replica(s) + {SLOT_HEADROOM} headroom")


def replication_budget(settings: StackSettings) -> ReplicationBudget:
    """The slots and WAL senders this stack's primary instance needs (module docstring)."""
    outbox = len(publishers(settings)) if backbone_declared(settings) else 0
    # every declared extraction, whatever its phase: a static parameter that followed the phase would need a
    # reboot at each move (the slot exists only while FACTS[phase].replication, the headroom is harmless)
    extracting = len(settings.extractions)
    replicas = settings.replicas.count + len(settings.secrets.replica_regions)
    slots = max(POSTGRES_DEFAULT, outbox + extracting + replicas + SLOT_HEADROOM)
    senders = max(POSTGRES_DEFAULT, slots + SENDER_HEADROOM)
    return ReplicationBudget(outbox, extracting, replicas, slots, senders)


def with_replication_budget(settings: StackSettings) -> StackSettings:
    """The settings with the budget in `instance.parameters` where the stack did not set the parameter itself
    (run after `events_problems` found nothing)."""
    if settings.is_local or settings.is_region_stack:
        return settings  # local: the local server's own config; region stacks: the primary's values
    budget = replication_budget(settings)
    given = settings.instance.parameters
    derived = {SLOTS_PARAMETER: str(budget.slots), SENDERS_PARAMETER: str(budget.senders)}
    parameters = {**derived, **given}
    if parameters == given:
        return settings
    instance = settings.instance.model_copy(update={"parameters": parameters})
    return settings.model_copy(update={"instance": instance})


def events_problems(settings: StackSettings) -> list[Problem]:
    """What the `events` section and the replication parameters may not say (file, key, fix)."""
    src, key = settings.source, f"{NAMESPACE}:events"
    problems: list[Problem] = []
    if "events" in settings.model_fields_set and (settings.is_local or settings.is_region_stack):
        where = "the local stack has no RDS instance" if settings.is_local else (
            "a region stack's instance is a read replica, and logical decoding reads the primary's WAL")
        return [Problem(src, key, f"only a primary AWS stack declares the event backbone: {where}",
                        "remove the key (the primary stack's connectors publish every service's events)")]
    problems.extend(_parameter_problems(settings))
    if not backbone_declared(settings):
        return problems
    events = settings.events
    prefix = settings.name_prefix
    for what, derived, pattern in (("the MSK cluster name", cluster_name(prefix), MSK_CLUSTER_NAME),
                                   ("the connector plugin bucket's prefix", plugin_bucket_prefix(prefix),
                                    BUCKET_PREFIX)):
        if not pattern.match(derived):
            problems.append(Problem(
                src, "stack name", f"AWS refuses {what} this stack derives from its name: {derived!r} "
                f"({pattern.pattern})", "rename the stack (and its file) to lowercase letters, digits and hyphens, at "
                f"most {MAX_STACK_NAME} characters, or turn {key}.enabled off"))
    if events.schema_format != "JSON":
        problems.append(Problem(
            src, f"{key}.schemaFormat", f"{events.schema_format}: the registered schema versions are derived for the "
            "Glue JSON Schema converter only (config/event_schemas.py); with auto-registration off an Avro record "
            "would find no version and every connector task would fail", "remove the key (default JSON)"))
    subnets = len(settings.network.subnet_ids) if settings.network else 0
    if subnets > MAX_BROKER_SUBNETS:
        problems.append(Problem(
            src, f"{NAMESPACE}:network.subnetIds", f"{subnets} subnets; MSK places brokers in two or three "
            "availability zones (BrokerNodeGroupInfo.ClientSubnets)",
            "list two or three subnets, each in its own availability zone"))
    brokers = broker_count(settings)
    if events.replication_factor > brokers:
        problems.append(Problem(
            src, f"{key}.replicationFactor", f"replicationFactor {events.replication_factor} needs as many brokers; "
            f"the cluster has {brokers} ({subnets} zone(s) x brokersPerZone {events.brokers_per_zone})",
            f"set replicationFactor to {brokers} or less, or raise {key}.brokersPerZone"))
    if settings.is_prod and events.replication_factor < 3:
        problems.append(Problem(
            src, f"{key}.replicationFactor", "prod keeps three copies of every event (Amazon MSK best practices: "
            "replication factor 3 for clusters across three availability zones)", "remove the key (default 3)"))
    return problems


def _parameter_problems(settings: StackSettings) -> list[Problem]:
    """A stack's own `max_replication_slots` / `max_wal_senders` below what it declares would make a connector,
    a subscription or a replica fail to start (`all replication slots are in use`)."""
    if settings.is_local or settings.is_region_stack:
        return []
    budget = replication_budget(settings)
    problems = []
    for name, needed in ((SLOTS_PARAMETER, budget.slots), (SENDERS_PARAMETER, budget.senders)):
        given = settings.instance.parameters.get(name)
        if given is None:
            continue
        if not given.isdigit() or int(given) < needed:
            problems.append(Problem(
                settings.source, f"{NAMESPACE}:instance.parameters.{name}",
                f"{given!r} is below the {needed} this stack needs ({budget.explain()}"
                + (f" + {SENDER_HEADROOM} senders" if name == SENDERS_PARAMETER else "") + ")",
                f"remove the key (the platform derives {needed}) or set {needed} or more"))
    return problems
