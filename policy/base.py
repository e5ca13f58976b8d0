"""Building blocks of the edumatrix-db policy pack: typed policy classes carrying our metadata, config
access with schema defaults, and readers for the resource shapes the program declares.

Validators read `args.props` with the engine's camelCase property names (`multiAz`, `kmsKeyId`, ...), so the
same code runs under `pulumi preview --policy-pack policy` and in the offline gate (`edumatrix-db check`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
PROXY = "aws:rds/proxy:Proxy"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
KMS_KEY = "aws:kms/key:Key"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET = "aws:secretsmanager/secret:Secret"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
BACKUP_VAULT = "aws:backup/vault:Vault"
PG_ROLE = "postgresql:index/role:Role"
PG_GRANT = "postgresql:index/grant:Grant"
PG_GRANT_ROLE = "postgresql:index/grantRole:GrantRole"
PG_DEFAULT_PRIVILEGES = "postgresql:index/defaultPrivileges:DefaultPrivileges"
PG_SCHEMA = "postgresql:index/schema:Schema"

ResourceCheck = Callable[[ResourceValidationArgs, ReportViolation], None]
StackCheck = Callable[[StackValidationArgs, ReportViolation], None]


# `# pragma: no mutate block`: the policies are built when policy/ is imported, before `make mutation` switches a
# mutant on (its test processes are forked after the imports), so a mutant here could never be caught; what
# these functions do is tested by tests/test_gate.py (metadata) and tests/test_policy_pack_server.py.
def _schema(config: Mapping[str, Mapping[str, Any]] | None) -> PolicyConfigSchema | None:  # pragma: no mutate block
    return PolicyConfigSchema(properties={k: dict(v) for k, v in config.items()}) if config else None


class _Metadata:
    """What our pack adds to a pulumi-policy Policy: the controls it covers (kept in `tags` as well)."""

    controls: tuple[str, ...]

    def config_defaults(self) -> dict[str, Any]:
        schema: PolicyConfigSchema | None = getattr(self, "config_schema", None)
        if schema is None:
            return {}
        return {k: v["default"] for k, v in schema.properties.items() if "default" in v}


class TypedResourcePolicy(ResourceValidationPolicy, _Metadata):
    """A resource policy that only looks at the resource types it names."""

    resource_types: frozenset[str]

    def __init__(self, name: str, description: str, *, types: Iterable[str], validate: ResourceCheck,
                 severity: Severity, remediation: str, controls: Sequence[str] = (),
                 config: Mapping[str, Mapping[str, Any]] | None = None,
                 enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> None:  # pragma: no mutate block
        self.resource_types = frozenset(types)
        self.controls = tuple(controls)

        def only_listed_types(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in self.resource_types:
                validate(args, report)

        super().__init__(name, description, validate=only_listed_types, enforcement_level=enforcement_level,
                         config_schema=_schema(config), severity=severity, tags=list(self.controls),
                         remediation_steps=remediation)


class StackPolicy(StackValidationPolicy, _Metadata):
    """A stack policy (sees every resource at once) with our metadata."""

    resource_types: frozenset[str]

    def __init__(self, name: str, description: str, *, types: Iterable[str], validate: StackCheck,
                 severity: Severity, remediation: str, controls: Sequence[str] = (),
                 config: Mapping[str, Mapping[str, Any]] | None = None,
                 enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> None:  # pragma: no mutate block
        self.resource_types = frozenset(types)
        self.controls = tuple(controls)
        super().__init__(name, description, validate=validate, enforcement_level=enforcement_level,
                         config_schema=_schema(config), severity=severity, tags=list(self.controls),
                         remediation_steps=remediation)


PackPolicy = TypedResourcePolicy | StackPolicy


def setting(args: ResourceValidationArgs | StackValidationArgs, key: str, default: Any) -> Any:
    """A policy config value; `default` must equal the schema's default (the CLI applies it, the gate too)."""
    value = args.get_config().get(key)
    return default if value is None else value


# -- RDS instances -------------------------------------------------------------------------------------

_ARN = re.compile(r"^arn:aws[a-z-]*:(?P<service>[a-z0-9-]+):(?P<region>[a-z0-9-]*):(?P<account>\d*):(?P<rest>.+)$")


def arn_region(value: Any) -> str | None:
    """The region of an ARN, or None when `value` is not an ARN (a bare identifier or key id)."""
    m = _ARN.match(str(value or ""))
    return m["region"] if m else None


def is_replica(props: Mapping[str, Any]) -> bool:
    return bool(props.get("replicateSourceDb"))


def is_cross_region_replica(props: Mapping[str, Any], region: str | None) -> bool:
    """A replica whose source ARN names another region than the replica's own."""
    source_region = arn_region(props.get("replicateSourceDb"))
    return bool(is_replica(props) and source_region and region and source_region != region)


def is_postgres_instance(props: Mapping[str, Any]) -> bool:
    """RDS for PostgreSQL: engine `postgres`, or a replica (whose engine comes from its source)."""
    engine = str(props.get("engine") or "")
    return engine == "postgres" or (not engine and is_replica(props))


def resource_region(props: Mapping[str, Any], provider_props: Mapping[str, Any] | None,
                    default: str | None = None) -> str | None:
    """Where a resource lives: its own `region` input (pulumi-aws 7), else its provider's region."""
    return props.get("region") or (provider_props or {}).get("region") or default


def validation_region(args: ResourceValidationArgs) -> str | None:
    """Where the validated resource lives: its own `region`, its provider's, else the `defaultRegion` policy config
    (the stack's aws:region; REGION_CONFIG is its schema)."""
    provider = args.provider.props if args.provider else None
    return resource_region(args.props, provider, args.get_config().get("defaultRegion"))


REGION_CONFIG = {"defaultRegion": {"type": "string", "description": "the stack's aws:region"}}


def is_aws_managed_key(key: Any) -> bool:
    """An AWS-managed key named by its alias (`alias/aws/rds`), i.e. not a customer-managed key."""
    text = str(key or "")
    return "alias/aws/" in text


def flag(props: Mapping[str, Any], key: str) -> bool:
    return props.get(key) is True


# -- parameter groups ---------------------------------------------------------------------------------

def parameters(props: Mapping[str, Any]) -> dict[str, str]:
    """A parameter group's parameters as name -> value (lower-case names, string values)."""
    out: dict[str, str] = {}
    for item in props.get("parameters") or []:
        if isinstance(item, Mapping) and item.get("name"):
            out[str(item["name"]).lower()] = str(item.get("value", ""))
    return out


def is_postgres_family(props: Mapping[str, Any]) -> bool:
    return str(props.get("family") or "").startswith("postgres")


# ssl_min_protocol_version's values, weakest first. PostgreSQL reads enum settings in any case (guc.c,
# config_enum_lookup_by_name: pg_strcasecmp), so "tlsv1.3" is the floor "TLSv1.3" is.
TLS_VERSIONS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_TLS_RANK = {version.lower(): rank for rank, version in enumerate(TLS_VERSIONS, start=1)}


def tls_rank(version: str | None) -> int:
    """How strong a TLS floor is: 1 (TLSv1) to 4 (TLSv1.3) in any case, 0 when unset or not a TLS version."""
    return _TLS_RANK.get((version or "").lower(), 0)


def csv_values(value: str | None) -> set[str]:
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


# -- stack helpers ------------------------------------------------------------------------------------

def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]
