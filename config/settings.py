"""Typed, frozen settings of one stack, validated once from its stack file.

Keys in stack files are camelCase under the `edumatrix-db:` namespace (e.g. `edumatrix-db:instance` with
`multiAz`). Every default here is the secure posture; a stack turns something off only by saying so, and
some things (Multi-AZ and deletion protection in prod) cannot be turned off at all.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from config.catalog import Catalog, DataClassification, load_catalog
from config.naming import check_identifier

PROJECT = "edumatrix-db"
NAMESPACE = PROJECT


class Environment(StrEnum):
    LOCAL = "local"
    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"


class Model(BaseModel):
    """Base of every settings model: frozen, camelCase keys, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True, str_strip_whitespace=True
    )


# RDS CA identifiers current as of the rds-ca-2019 retirement (CKV_AWS_211 asks for one of these).
CURRENT_CA_IDENTIFIERS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")
# Master user names an attacker tries first (Security Hub RDS.25 asks for a non-default admin name).
DEFAULT_ADMIN_NAMES = frozenset({"postgres", "admin", "administrator", "root", "master", "rdsadmin", "user"})
# Parameters the platform owns: a stack cannot override them through `instance.parameters`.
MANAGED_PARAMETERS = frozenset(
    {
        "rds.force_ssl",
        "ssl_min_protocol_version",
        "shared_preload_libraries",
        "pgaudit.log",
        "pgaudit.role",
        "log_connections",
        "log_disconnections",
        "log_min_duration_statement",
        "rds.logical_replication",
        "idle_in_transaction_session_timeout",
        "max_connections",
        # log hygiene and password management (issue 10): set from typed settings or fixed by the platform
        "log_parameter_max_length",
        "log_min_error_statement",
        "temp_file_limit",
        "rds.restrict_password_commands",
    }
)
PERFORMANCE_INSIGHTS_RETENTION = (7, *range(31, 732, 31))
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINT_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
                           r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _minutes(hh: str, mm: str) -> int:
    return int(hh) * 60 + int(mm)


# -- timeouts of instance operations ---------------------------------------------------------------------
# The provider's own timeouts for aws.rds.Instance (terraform-provider-aws internal/service/rds/instance.go,
# `Timeouts`): create 40 min, update 80 min, delete 60 min. A cross-region replica of a large primary (a snapshot
# copied across regions) or a promotion followed by the Multi-AZ conversion outlasts them and fails the `up`
# half-way, so the platform always sets its own, never below these.
PROVIDER_TIMEOUT_MINUTES = {"create": 40, "update": 80, "delete": 60}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def duration_seconds(text: str) -> int | None:
    """Seconds of a Go-style duration as Pulumi's custom timeouts take them: `90m`, `4h`, `2h30m`, `45s`
    (None when it is not one)."""
    m = _DURATION.match(text)
    if not m or not any(m.groups()):
        return None
    return int(m[1] or 0) * 3600 + int(m[2] or 0) * 60 + int(m[3] or 0)


class InstanceTimeouts(Model):
    """How long `pulumi up` waits for an RDS instance operation (`4h`, `90m`, `2h30m`)."""

    create: str = "4h"
    update: str = "4h"
    delete: str = "2h"

    @model_validator(mode="after")
    def _durations(self) -> InstanceTimeouts:
        for op, floor in PROVIDER_TIMEOUT_MINUTES.items():
            value = getattr(self, op)
            seconds = duration_seconds(value)
            if seconds is None:
                raise ValueError(f"{op}: {value!r} is not a duration; write hours and/or minutes, e.g. 4h or 2h30m")
            if seconds < floor * 60:
                raise ValueError(f"{op}: {value} is shorter than the provider's own default ({floor}m); RDS "
                                 f"operations on large instances take longer: use at least {floor}m")
        return self


# Region stacks: creating a cross-region replica copies a snapshot of the whole primary across regions; a
# promotion is followed by the Multi-AZ conversion in the same update.
REGION_TIMEOUTS = InstanceTimeouts(create="12h", update="8h", delete="2h")

class NetworkSettings(Model):
    """Where the instance lives: an existing VPC and its private subnets (at least two AZs)."""

    vpc_id: Annotated[str, Field(pattern=r"^vpc-[0-9a-f]{8,17}$")]
    subnet_ids: Annotated[tuple[Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")], ...],
                          Field(min_length=2)]
    allowed_security_group_ids: tuple[Annotated[str, Field(pattern=r"^sg-[0-9a-f]{8,17}$")], ...] = ()
    allowed_cidrs: tuple[str, ...] = ()

    @field_validator("allowed_cidrs")
    @classmethod
    def _private_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR block: {exc}") from None
            if not net.is_private:
                raise ValueError(f"{cidr!r} is not a private range; the database is never reachable from the "
                                 "internet")
        return value

    @model_validator(mode="after")
    def _someone_may_connect(self) -> NetworkSettings:
        if not self.allowed_security_group_ids and not self.allowed_cidrs:
            raise ValueError("name at least one of allowedSecurityGroupIds or allowedCidrs: otherwise no "
                             "client can reach port 5432")
        if len(set(self.subnet_ids)) != len(self.subnet_ids):
            raise ValueError("subnetIds lists a subnet twice")
        return self


class InstanceSettings(Model):
    """The shared RDS PostgreSQL instance. Every default is the production posture."""

    identifier: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")] = None
    # A major version ("15") lets RDS apply minor upgrades (autoMinorVersionUpgrade); a pinned minor ("15.10")
    # needs autoMinorVersionUpgrade: false, or the next update would try to downgrade an upgraded instance.
    engine_version: Annotated[str, Field(pattern=r"^(1[3-9])(\.\d+)?$")] = "15"
    instance_class: Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = "db.r6g.large"
    allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 100
    max_allocated_storage_gb: Annotated[int, Field(ge=20, le=65536)] = 1000
    storage_type: Literal["gp3", "io1", "io2"] = "gp3"
    # Provisioned IOPS (io1/io2: required) and gp3 throughput (gp3 from 400 GiB only): config/preflight.py.
    iops: Annotated[int | None, Field(ge=1000, le=256_000)] = None
    storage_throughput_mibps: Annotated[int | None, Field(ge=125, le=4000)] = None
    multi_az: bool = True
    deletion_protection: bool = True
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 30
    backup_window: str = "00:00-00:30"
    maintenance_window: str = "sun:02:00-sun:03:00"
    final_snapshot: bool = True
    master_username: str = "edumatrix_admin"
    iam_auth: bool = True
    performance_insights_retention_days: int = 7
    monitoring_interval_seconds: int = 60
    ca_cert_identifier: str = "rds-ca-rsa2048-g1"
    # TLSv1.2 by default: one AWS text says "RDS for PostgreSQL 16 and later supports TLS version 1.3" (so 15 does
    # not), RDS Proxy speaks TLS 1.2, and some clients fail against a TLS-1.3-only server (prisma/orm#24943).
    # TLSv1.3 is accepted from PostgreSQL 16 (config/rds_parameters) and on the local stack. README, "TLS".
    ssl_min_protocol_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    max_connections: Annotated[int, Field(ge=20, le=5000)] = 1000
    reserved_connections: Annotated[int, Field(ge=3, le=1000)] = 50
    idle_in_transaction_session_timeout_ms: Annotated[int, Field(ge=1000, le=3_600_000)] = 60_000
    log_min_duration_statement_ms: Annotated[int, Field(ge=0, le=60_000)] = 100
    log_retention_days: Literal[30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653] = 365
    auto_minor_version_upgrade: bool = True
    apply_immediately: bool = False
    port: Annotated[int, Field(ge=1150, le=65535)] = 5432
    database_name: str = "edumatrix"
    # The RDS CA bundle (PEM) the schema provider verifies the server with (sslmode=verify-full);
    # relative to the project root. See README, "Environments and pulumi up".
    ca_bundle_path: str = "certs/rds-global-bundle.pem"
    parameters: dict[str, str] = Field(default_factory=dict)
    # The master password: `platform` generates it (pulumi_random), passes it write-only and keeps it in a Secrets
    # Manager secret of its own that is rotated and replicated; `rds-managed` lets RDS keep it
    # (ManageMasterUserPassword), which RDS refuses for any instance with read replicas. README, "Master password".
    master_password: Literal["platform", "rds-managed"] = "platform"
    # RDS Extended Support is billed once the major version's standard support ends; off unless asked for.
    extended_support: bool = False
    # Database Insights (the Performance Insights console is retired): standard keeps 7 days, advanced 465.
    database_insights_mode: Literal["standard", "advanced"] = "standard"
    timeouts: InstanceTimeouts = Field(default_factory=InstanceTimeouts)
    # Temporary files one session may write (temp_file_limit; superuser-only, so no role can raise it). Index
    # builds of large tables spill to temp files too: raise it for a migration that needs more.
    temp_file_limit_mb: Annotated[int, Field(ge=64, le=1_048_576)] = 1024

    @property
    def major_version(self) -> int:
        return int(self.engine_version.split(".")[0])

    @property
    def parameter_family(self) -> str:
        return f"postgres{self.major_version}"

    @field_validator("master_username")
    @classmethod
    def _non_default_admin(cls, value: str) -> str:
        check_identifier(value, "masterUsername")
        if value in DEFAULT_ADMIN_NAMES:
            raise ValueError(f"{value!r} is a default admin name attackers try first; choose another "
                             "(e.g. edumatrix_admin)")
        return value

    @field_validator("database_name")
    @classmethod
    def _db_identifier(cls, value: str) -> str:
        return check_identifier(value, "databaseName")

    @field_validator("ca_cert_identifier")
    @classmethod
    def _current_ca(cls, value: str) -> str:
        if value not in CURRENT_CA_IDENTIFIERS:
            raise ValueError(f"{value!r} is not a current RDS CA; allowed: {', '.join(CURRENT_CA_IDENTIFIERS)}")
        return value

    @field_validator("performance_insights_retention_days")
    @classmethod
    def _pi_retention(cls, value: int) -> int:
        if value not in PERFORMANCE_INSIGHTS_RETENTION:
            raise ValueError("Performance Insights keeps data for 7 days or a multiple of 31 up to 731")
        return value

    @field_validator("monitoring_interval_seconds")
    @classmethod
    def _monitoring_interval(cls, value: int) -> int:
        if value not in MONITORING_INTERVALS:
            raise ValueError(f"allowed intervals: {', '.join(map(str, MONITORING_INTERVALS))}")
        return value

    @field_validator("backup_window")
    @classmethod
    def _backup_window(cls, value: str) -> str:
        m = _WINDOW.match(value)
        if not m:
            raise ValueError("write the window as HH:MM-HH:MM in UTC, e.g. 00:00-00:30")
        start, end = _minutes(m[1], m[2]), _minutes(m[3], m[4])
        if (end - start) % 1440 < 30:
            raise ValueError("RDS needs a backup window of at least 30 minutes")
        return value

    @field_validator("maintenance_window")
    @classmethod
    def _maintenance_window(cls, value: str) -> str:
        if not _MAINT_WINDOW.match(value):
            raise ValueError("write the window as ddd:HH:MM-ddd:HH:MM in UTC, e.g. sun:02:00-sun:03:00")
        return value

    @field_validator("parameters")
    @classmethod
    def _unmanaged_parameters(cls, value: dict[str, str]) -> dict[str, str]:
        taken = sorted(set(value) & MANAGED_PARAMETERS)
        if taken:
            raise ValueError(
                f"{', '.join(taken)} {'is' if len(taken) == 1 else 'are'} set by the platform from typed "
                "settings (e.g. sslMinProtocolVersion, maxConnections); remove from parameters"
            )
        return value

    @model_validator(mode="after")
    def _storage_and_windows(self) -> InstanceSettings:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise ValueError(
                f"maxAllocatedStorageGb ({self.max_allocated_storage_gb}) is below allocatedStorageGb "
                f"({self.allocated_storage_gb}); storage autoscaling needs a ceiling above the start size"
            )
        if self.auto_minor_version_upgrade and "." in self.engine_version:
            raise ValueError(
                f"engineVersion {self.engine_version!r} pins a minor version while autoMinorVersionUpgrade is on: "
                f"after RDS upgrades the instance the next update would try to downgrade it; write "
                f"{self.engine_version.split('.')[0]!r} (or set autoMinorVersionUpgrade: false)"
            )
        if self.reserved_connections >= self.max_connections:
            raise ValueError("reservedConnections must be below maxConnections")
        if _windows_overlap(self.backup_window, self.maintenance_window):
            raise ValueError(f"backupWindow {self.backup_window} overlaps maintenanceWindow "
                             f"{self.maintenance_window}; RDS rejects overlapping windows")
        return self


def _windows_overlap(backup: str, maintenance: str) -> bool:
    """Whether a daily backup window overlaps a weekly maintenance window (minutes of the week)."""
    b = _WINDOW.match(backup)
    m = _MAINT_WINDOW.match(maintenance)
    if not b or not m:
        return False
    week = 7 * 1440
    m_start = _DAYS.index(m[1]) * 1440 + _minutes(m[2], m[3])
    m_end = _DAYS.index(m[4]) * 1440 + _minutes(m[5], m[6])
    m_len = (m_end - m_start) % week
    b_start, b_len = _minutes(b[1], b[2]), (_minutes(b[3], b[4]) - _minutes(b[1], b[2])) % 1440
    for day in range(7):
        start = day * 1440 + b_start
        # two intervals on a circle of length `week` overlap if either start lies inside the other
        if (start - m_start) % week < m_len or (m_start - start) % week < b_len:
            return True
    return False


class ServiceOverride(Model):
    """Per-stack changes to a catalog service (pool sizes differ between dev and prod)."""

    pool_size: Annotated[int, Field(ge=1, le=1000)] | None = None
    readonly_pool_size: Annotated[int, Field(ge=1, le=1000)] | None = None
    statement_timeout_ms: Annotated[int, Field(ge=100, le=5000)] | None = None

    def patch(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump(by_alias=False).items() if v is not None}


class LocalSettings(Model):
    """Where the local stack's database is: the server `edumatrix-db local up` starts.

    `pulumi up --stack local` reads the admin URI (host, port, password, CA path) from `connectionsFile`,
    which `local up` writes; `preferredPort` is the port `local up` tries first.
    """

    connections_file: str = ".local/connections.json"
    preferred_port: Annotated[int, Field(ge=1024, le=65535)] = 54329


# Lag alarms (spec 8.A "lag alerts"). CloudWatch's `ReplicaLag` is in seconds at one-minute resolution, and on
# RDS for PostgreSQL "a read replica reports a replication lag of up to five minutes if there are no user
# transactions occurring on the source DB instance" (AWS RDS user guide, "Working with read replicas for Amazon
# RDS for PostgreSQL"). A threshold at or below those five minutes pages on every quiet night, so the threshold
# is in seconds and above 300; the spec's "< 100ms target" is not measurable by RDS metrics (README, "Limits").
IDLE_REPLICA_LAG_SECONDS = 300
DEFAULT_LAG_THRESHOLD_SECONDS = 600
_SNS_TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"


class LagAlarmSettings(Model):
    """How replica lag pages someone: threshold (seconds), how many one-minute periods, which SNS topic."""

    lag_threshold_seconds: Annotated[int, Field(gt=IDLE_REPLICA_LAG_SECONDS, le=86_400)] = \
        DEFAULT_LAG_THRESHOLD_SECONDS
    # The alarm fires when `lagDatapointsToAlarm` of the last `lagEvaluationMinutes` minutes breach.
    lag_evaluation_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    lag_datapoints_to_alarm: Annotated[int, Field(ge=1, le=60)] = 3
    # An existing topic to page; without one each stack declares a CMK-encrypted topic of its own.
    alarm_topic_arn: Annotated[str | None, Field(pattern=_SNS_TOPIC_ARN)] = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_threshold(cls, data: object) -> object:
        if isinstance(data, dict) and "lagThresholdMs" in data:
            raise ValueError(
                "lagThresholdMs was renamed lagThresholdSeconds: RDS reports ReplicaLag in seconds, and up to "
                f"{IDLE_REPLICA_LAG_SECONDS} s on a primary without writes; write e.g. lagThresholdSeconds: "
                f"{DEFAULT_LAG_THRESHOLD_SECONDS} (above {IDLE_REPLICA_LAG_SECONDS})")
        return data

    @model_validator(mode="after")
    def _datapoints_fit(self) -> LagAlarmSettings:
        if self.lag_datapoints_to_alarm > self.lag_evaluation_minutes:
            raise ValueError(f"lagDatapointsToAlarm ({self.lag_datapoints_to_alarm}) cannot exceed "
                             f"lagEvaluationMinutes ({self.lag_evaluation_minutes})")
        return self


class ReplicaSettings(LagAlarmSettings):
    """Same-region read replicas of the shared instance, for read-only clients (spec 8.B)."""

    count: Annotated[int, Field(ge=0, le=5)] = 0  # RDS allows up to 15; five is this platform's ceiling
    instance_class: Annotated[str | None, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = None  # primary's


class RegionSettings(LagAlarmSettings):
    """A region stack: a cross-region replica of `primaryStack`'s instance in this stack's `aws:region`.

    `promote: true` turns the replica into a standalone primary (failover as a reviewed config change).
    """

    primary_stack: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    promote: bool = False
    instance_class: Annotated[str | None, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")] = None  # primary's
    # Copy the primary's automated backups into this region (point-in-time recovery here), kept this long.
    # Turn off only where RDS does not support the region pair for automated-backup replication.
    replicate_backups: bool = True
    backup_replication_days: Annotated[int, Field(ge=1, le=35)] = 7
    # Pulumi organization of the primary stack (`<org>/edumatrix-db/<primaryStack>`); default: this one's.
    organization: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")] = None
    # How long `pulumi up` waits for the replica's creation (a cross-region snapshot copy) and its promotion.
    timeouts: InstanceTimeouts = Field(default_factory=lambda: REGION_TIMEOUTS)


# The SAR rotation application pins (aws-cdk packages/aws-cdk-lib/aws-secretsmanager/lib/secret-rotation.ts,
# POSTGRES_ROTATION_SINGLE_USER): the version per partition.
ROTATION_APPLICATION_VERSIONS = {"aws": "1.1.671", "aws-cn": "1.1.440", "aws-us-gov": "1.1.383"}


class SecretsSettings(Model):
    """Database credentials in Secrets Manager: rotation and copies in the region stacks' regions.

    `replicaRegions` lists the region of every region stack naming this stack as its primary (the loader checks
    the two agree): a promoted region then finds the master and service credentials in its own region.
    """

    rotation_days: Annotated[int, Field(ge=1, le=1000)] = 30
    replica_regions: tuple[str, ...] = ()
    # The version of AWS's SecretsManagerRDSPostgreSQLRotationSingleUser application; default: the pin above.
    rotation_application_version: Annotated[str | None, Field(pattern=r"^\d+\.\d+\.\d+$")] = None

    @field_validator("replica_regions")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("replicaRegions lists a region twice")
        return value


def stack_name_prefix(stack: str) -> str:
    """Prefix of a stack's AWS physical names: `edumatrix-<stack>` (a region stack names its primary's with it)."""
    return f"edumatrix-{stack}"


class PrimaryReference(Model):
    """What a region stack knows statically about its primary (read from the primary's stack file by the
    loader; never written in a stack file). Runtime values (ARN, addresses) come from a StackReference."""

    stack: str
    region: str
    instance: InstanceSettings


class StackSettings(Model):
    """Everything one stack file says, validated. Built once in `__main__.py`, passed down as plain data."""

    stack: str
    source: str
    environment: Environment
    aws_region: str | None = None
    owner: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = "platform-team"
    data_classification: DataClassification = DataClassification.CONFIDENTIAL
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkSettings | None = None
    instance: InstanceSettings = Field(default_factory=InstanceSettings)
    services: dict[str, ServiceOverride] = Field(default_factory=dict)
    local: LocalSettings = Field(default_factory=LocalSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    region: RegionSettings | None = None
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    # Filled by the loader for region stacks (not a stack-file key): see PrimaryReference.
    primary: PrimaryReference | None = None

    @property
    def is_local(self) -> bool:
        return self.environment is Environment.LOCAL

    @property
    def is_prod(self) -> bool:
        return self.environment is Environment.PROD

    @property
    def is_region_stack(self) -> bool:
        """A stack that replicates another stack's instance into its own region (or was promoted from one)."""
        return self.region is not None

    def referenced_stacks(self) -> tuple[str, ...]:
        """Stacks whose outputs this stack reads through a StackReference (planned before this one)."""
        return (self.region.primary_stack,) if self.region is not None else ()

    def replica_instance(self) -> InstanceSettings:
        """The settings a region stack's instance runs with: the primary's, with this region's overrides."""
        if self.primary is None or self.region is None:
            raise ValueError(f"{self.stack} is not a region stack with a resolved primary")
        base = self.primary.instance
        return base.model_copy(update={"instance_class": self.region.instance_class or base.instance_class,
                                       "identifier": None})

    @property
    def name_prefix(self) -> str:
        """Prefix of AWS physical names: `edumatrix-<stack>`."""
        return stack_name_prefix(self.stack)

    @property
    def instance_identifier(self) -> str:
        return self.instance.identifier or self.name_prefix

    def catalog(self) -> Catalog:
        """The service catalog with this stack's overrides applied."""
        return load_catalog().with_overrides({k: v.patch() for k, v in self.services.items()})

    def base_tags(self) -> dict[str, str]:
        """Tags on every resource: service, environment, owner, data classification (+ the stack's own)."""
        return {
            "service": "edumatrix-db",
            "environment": self.environment.value,
            "owner": self.owner,
            "data-classification": self.data_classification.value,
            "managed-by": "pulumi",
            "stack": self.stack,
            **self.tags,
        }

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, value: dict[str, str]) -> dict[str, str]:
        reserved = {"service", "environment", "owner", "data-classification", "managed-by", "stack"}
        clash = sorted(set(value) & reserved)
        if clash:
            raise ValueError(f"{', '.join(clash)} set by the platform; use owner/dataClassification keys instead")
        for key in value:
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r}: the aws: prefix is reserved by AWS")
        return value
