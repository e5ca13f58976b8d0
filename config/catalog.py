"""The service catalog: the nine services of the spec, loaded from `config/services.yaml`.

This is the only source of service names, pool sizes, timeouts, owners and classifications; schema and
role names are derived from the service name by `config.naming`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from config.errors import ConfigError, Problem
from config.event_schemas import PayloadType
from config.naming import (
    BASE_ROLE_KINDS,
    GDPR_ROLE_KINDS,
    RoleKind,
    belongs_to,
    check_identifier,
    contract_functions,
    role_name,
    schema_name,
)
from config.yamlfile import read_yaml

CATALOG_PATH = Path(__file__).with_name("services.yaml")

# Connections the migrator role may hold: migrations run one at a time, plus one for a human operator.
MIGRATOR_CONNECTIONS = 2
# Connections of a `<service>_gdpr` login: the GDPR orchestrator holds one per service, plus one to spare.
GDPR_CONNECTIONS = 2


class DataClassification(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class EventSpec(BaseModel):
    """One versioned event type a service publishes through its outbox (spec 2.B, docs/events.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    aggregate: str
    """The outbox row's `aggregatetype`: the topic is `edumatrix.<service>.<aggregate>`."""
    type: str
    """The outbox row's `type`, e.g. `student_enrolled`."""
    version: int = Field(default=1, ge=1, le=1000)
    """The payload schema's current version (the outbox row's `schema_version`)."""
    payload: tuple[tuple[str, PayloadType], ...] = Field(min_length=1)
    """The payload of this version (in services.yaml a mapping): member name -> `string`, `integer` (32 bits) or
    `boolean`, every member required and never null (config/event_schemas.py: the registered schema is derived
    from it). Kept as pairs so the spec stays hashable; `fields` is the mapping."""

    @field_validator("aggregate", "type")
    @classmethod
    def _identifier(cls, value: str) -> str:
        return check_identifier(value, "event aggregate or type")

    @field_validator("payload", mode="before")
    @classmethod
    def _members(cls, value: Any) -> Any:
        pairs = tuple(value.items()) if isinstance(value, dict) else value
        for name, _kind in pairs:
            check_identifier(name, "payload member")
        return pairs

    @property
    def fields(self) -> dict[str, PayloadType]:
        return dict(self.payload)


class ServiceSpec(BaseModel):
    """One service of the catalog."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    pool_size: int = Field(ge=1, le=1000)
    readonly_pool_size: int = Field(ge=1, le=1000)
    statement_timeout_ms: int = Field(ge=100, le=5000)
    owner_team: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    data_classification: DataClassification
    # Full recovery restores services in this order, 1 first (spec 6.B "service priority order";
    # docs/recovery-runbook.md says why each is where it is).
    # (Optional for catalogs built in code; config/services.yaml numbers every service, a test checks it.)
    recovery_priority: int | None = Field(default=None, ge=1, le=100)
    personal_tables: tuple[str, ...] = ()
    """Tables holding personal data (docs/gdpr.md): the service implements the GDPR contract and reads of
    these tables are audited (pgaudit object audit)."""
    events: tuple[EventSpec, ...] = ()
    """The event types the service publishes (outbox -> CDC -> Kafka; docs/events.md)."""

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        check_identifier(value, "service name")
        # Every derived name must fit too: the longest suffix decides.
        schema_name(value)
        for kind in RoleKind:
            role_name(value, kind)
        return value

    @field_validator("personal_tables")
    @classmethod
    def _personal_tables(cls, value: tuple[str, ...], info: Any) -> tuple[str, ...]:
        service = info.data.get("name")
        for table in value:
            check_identifier(table, "personal table")
            if service and not belongs_to(service, table):
                raise ValueError(f"personal table {table!r} does not follow the convention {service}_<entity>")
        if len(set(value)) != len(value):
            raise ValueError("personal_tables lists a table twice")
        return value

    @field_validator("events")
    @classmethod
    def _events_unique(cls, value: tuple[EventSpec, ...]) -> tuple[EventSpec, ...]:
        types = [e.type for e in value]
        dupes = sorted({t for t in types if types.count(t) > 1})
        if dupes:
            raise ValueError(f"events lists a type twice: {', '.join(dupes)}")
        return value

    @property
    def schema_name(self) -> str:
        return schema_name(self.name)

    @property
    def aggregates(self) -> tuple[str, ...]:
        """The aggregate types the service publishes, each once, in catalog order (one topic each)."""
        return tuple(dict.fromkeys(e.aggregate for e in self.events))

    @property
    def holds_personal_data(self) -> bool:
        """Whether the service must implement the GDPR contract (it lists personal tables)."""
        return bool(self.personal_tables)

    @property
    def contract_functions(self) -> tuple[str, str]:
        """`<service>_fn_erase_subject`, `<service>_fn_export_subject`."""
        return contract_functions(self.name)

    @property
    def role_kinds(self) -> tuple[RoleKind, ...]:
        """The service's roles: the four of every service, and the GDPR pair if it holds personal data."""
        return (*BASE_ROLE_KINDS, *(GDPR_ROLE_KINDS if self.holds_personal_data else ()))

    def role(self, kind: RoleKind | str) -> str:
        return role_name(self.name, kind)

    def connection_limits(self) -> dict[RoleKind, int]:
        """Connection limit per role: the owner never logs in; the others get their pool sizes."""
        limits = {
            RoleKind.OWNER: 0,
            RoleKind.MIGRATOR: MIGRATOR_CONNECTIONS,
            RoleKind.APP: self.pool_size,
            RoleKind.READONLY: self.readonly_pool_size,
            RoleKind.GDPR: GDPR_CONNECTIONS,
            RoleKind.GDPR_DEFINER: 0,
        }
        return {kind: limits[kind] for kind in self.role_kinds}

    def total_connections(self) -> int:
        return sum(self.connection_limits().values())


class Catalog(BaseModel):
    """The whole catalog, in the order of the spec."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    services: tuple[ServiceSpec, ...]

    @field_validator("services")
    @classmethod
    def _unique(cls, value: tuple[ServiceSpec, ...]) -> tuple[ServiceSpec, ...]:
        names = [s.name for s in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"service names must be unique; repeated: {', '.join(dupes)}")
        if not value:
            raise ValueError("the catalog lists no service")
        priorities = sorted(s.recovery_priority or 0 for s in value)
        if any(priorities) and priorities != list(range(1, len(value) + 1)):
            raise ValueError(f"recovery_priority must number the services 1 to {len(value)}, each once; got "
                             f"{', '.join(map(str, priorities))}")
        return value

    def only(self, *names: str) -> Catalog:
        """The catalog of an instance holding only these services (an extraction target), in recovery order
        renumbered 1..n."""
        kept = [s for s in self.recovery_order() if s.name in names]
        renumbered = [s.model_copy(update={"recovery_priority": i if s.recovery_priority else None})
                      for i, s in enumerate(kept, start=1)]
        return Catalog(services=tuple(renumbered))

    def recovery_order(self) -> tuple[ServiceSpec, ...]:
        """The services in the order a full recovery restores them."""
        return tuple(sorted(self.services, key=lambda s: s.recovery_priority or len(self.services) + 1))

    def __iter__(self) -> Iterator[ServiceSpec]:  # type: ignore[override]
        return iter(self.services)

    def __len__(self) -> int:
        return len(self.services)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    def get(self, name: str) -> ServiceSpec:
        for service in self.services:
            if service.name == name:
                return service
        raise KeyError(name)

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> Catalog:
        """A copy with per-service fields replaced (stack files may resize pools or tighten timeouts)."""
        updated = []
        for service in self.services:
            patch = dict(overrides.get(service.name, {}))
            updated.append(ServiceSpec.model_validate({**service.model_dump(), **patch}))
        return Catalog(services=tuple(updated))


def parse_catalog(data: Any, source: str) -> Catalog:
    """Validate catalog data, turning every mistake into a ConfigError naming the entry and field."""
    try:
        return Catalog.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = list(err["loc"])
            key = ".".join(str(part) for part in loc)
            if len(loc) >= 2 and loc[0] == "services" and isinstance(loc[1], int):
                entries = data.get("services", []) if isinstance(data, dict) else []
                if loc[1] < len(entries) and isinstance(entries[loc[1]], dict):
                    key = ".".join([f"services[{entries[loc[1]].get('name', loc[1])}]", *map(str, loc[2:])])
            message = str(err["msg"]).removeprefix("Value error, ")
            problems.append(Problem(source, key, message, "edit the catalog entry (see the field list at "
                                                          "the top of config/services.yaml)"))
        raise ConfigError(problems) from None


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    """Load and validate the catalog file (cached: it is read once per process)."""
    return parse_catalog(read_yaml(path, str(path)), str(path))
