"""Typed, frozen settings of one stack, validated once from its stack file.

Keys in stack files are camelCase under the `edumatrix-db:` namespace (e.g. `edumatrix-db:instance` with
`multiAz`). Every default here is the secure posture; a stack turns something off only by saying so, and
some things (Multi-AZ and deletion protection in prod) cannot be turned off at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from config import aws_names
from config.catalog import Catalog, DataClassification, load_catalog
from config.errors import SettingError
from config.extraction import Phase
from config.maintenance import maintenance_parameter_names

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
# Tags the platform puts on resources (base_tags, and the components' replica-of/role).
PLATFORM_TAG_KEYS = frozenset({"service", "environment", "owner", "data-classification", "managed-by", "stack",
                               "replica-of", "role", "extraction-of", "extraction-phase"})
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
        "max_locks_per_transaction",
    }
) | maintenance_parameter_names()
PERFORMANCE_INSIGHTS_RETENTION = (7, *range(31, 732, 31))
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_MAINT_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)-"
                           r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):([0-5]\d)$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


_PULUMI_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
InstanceClass = Annotated[str, Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$", description="an RDS instance class",
                                     examples=["db.r6g.large"])]


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    """A validator for an optional field: `check` when a value is given."""
    return lambda value: None if value is None else check(value)


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
                raise SettingError(f"{value!r} is not a duration", "write hours and/or minutes, e.g. 4h or 2h30m",
                                   key=op)
            if seconds < floor * 60:
                raise SettingError(f"{value} is shorter than the provider's own default ({floor}m); RDS operations "
                                   "on large instances take longer", f"use at least {floor}m", key=op)
        return self


# Region stacks: creating a cross-region replica copies a snapshot of the whole primary across regions; a
# promotion is followed by the Multi-AZ conversion in the same update.
REGION_TIMEOUTS = InstanceTimeouts(create="12h", update="8h", delete="2h")

class NetworkSettings(Model):
    """Where the instance lives: an existing VPC and its private subnets (at least two AZs)."""

    vpc_id: Annotated[str, AfterValidator(aws_names.check_vpc_id)]
    subnet_ids: Annotated[tuple[Annotated[str, AfterValidator(aws_names.check_subnet_id)], ...],
                          Field(min_length=2, description="private subnets in at least two availability zones")]
    allowed_security_group_ids: tuple[Annotated[str, AfterValidator(aws_names.check_security_group_id)], ...] = ()
    allowed_cidrs: tuple[str, ...] = ()

    @field_validator("allowed_cidrs")
    @classmethod
    def _private_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError as exc:
                raise SettingError(f"{cidr!r} is not a CIDR block: {exc}",
                                   "write a network and prefix length with the host bits zero, e.g. 10.20.0.0/16"
                                   ) from None
            if not net.is_private:
                raise SettingError(f"{cidr!r} is not a private range; the database is never reachable from the "
                                   "internet", "name the private range of the clients' VPC (10.0.0.0/8, "
                                   "172.16.0.0/12 or 192.168.0.0/16), or their security group")
        return value

    @model_validator(mode="after")
    def _someone_may_connect(self) -> NetworkSettings:
        if not self.allowed_security_group_ids and not self.allowed_cidrs:
            raise SettingError("no client could reach port 5432",
                               "name at least one of allowedSecurityGroupIds or allowedCidrs")
        if len(set(self.subnet_ids)) != len(self.subnet_ids):
            raise SettingError("subnetIds lists a subnet twice", "remove the repeated subnet id", key="subnetIds")
        return self


class InstanceSettings(Model):
    """The shared RDS PostgreSQL instance. Every default is the production posture."""

    identifier: Annotated[str | None, AfterValidator(_optional(aws_names.check_rds_identifier))] = None
    # A major version ("15") lets RDS apply minor upgrades (autoMinorVersionUpgrade); a pinned minor ("15.10")
    # needs autoMinorVersionUpgrade: false, or the next update would try to downgrade an upgraded instance.
    engine_version: Annotated[str, Field(pattern=r"^(1[3-9])(\.\d+)?$", description="a PostgreSQL major version "
                                         "from 13 (or major.minor), quoted", examples=["'15'"])] = "15"
    instance_class: InstanceClass = "db.r6g.large"
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
        aws_names.check_master_username(value)
        if value in DEFAULT_ADMIN_NAMES:
            raise SettingError(f"{value!r} is a default admin name attackers try first (Security Hub RDS.25)",
                               "choose another name, e.g. edumatrix_admin")
        return value

    @field_validator("database_name")
    @classmethod
    def _db_identifier(cls, value: str) -> str:
        return aws_names.check_database_name(value)

    @field_validator("ca_cert_identifier")
    @classmethod
    def _current_ca(cls, value: str) -> str:
        if value not in CURRENT_CA_IDENTIFIERS:
            raise SettingError(f"{value!r} is not a current RDS CA",
                               f"use one of: {', '.join(CURRENT_CA_IDENTIFIERS)}")
        return value

    @field_validator("performance_insights_retention_days")
    @classmethod
    def _pi_retention(cls, value: int) -> int:
        if value not in PERFORMANCE_INSIGHTS_RETENTION:
            raise SettingError(f"Performance Insights cannot keep data for {value} days",
                               "use 7, or a multiple of 31 up to 731 (e.g. 93)")
        return value

    @field_validator("monitoring_interval_seconds")
    @classmethod
    def _monitoring_interval(cls, value: int) -> int:
        if value not in MONITORING_INTERVALS:
            raise SettingError(f"RDS has no {value}-second enhanced monitoring interval",
                               f"use one of: {', '.join(map(str, MONITORING_INTERVALS))}")
        return value

    @field_validator("backup_window")
    @classmethod
    def _backup_window(cls, value: str) -> str:
        m = _WINDOW.match(value)
        if not m:
            raise SettingError(f"{value!r} is not a daily window", "write HH:MM-HH:MM in UTC, e.g. 00:00-00:30")
        start, end = _minutes(m[1], m[2]), _minutes(m[3], m[4])
        if (end - start) % 1440 < 30:
            raise SettingError(f"the backup window {value} is shorter than the 30 minutes RDS requires",
                               "make it at least 30 minutes long, e.g. 00:00-00:30")
        return value

    @field_validator("maintenance_window")
    @classmethod
    def _maintenance_window(cls, value: str) -> str:
        # PreferredMaintenanceWindow: "ddd:hh24:mi-ddd:hh24:mi ... Must be at least 30 minutes" (CreateDBInstance).
        m = _MAINT_WINDOW.match(value)
        if not m:
            raise SettingError(f"{value!r} is not a weekly window",
                               "write ddd:HH:MM-ddd:HH:MM in UTC with lowercase days, e.g. sun:02:00-sun:03:00")
        start = _DAYS.index(m[1]) * 1440 + _minutes(m[2], m[3])
        end = _DAYS.index(m[4]) * 1440 + _minutes(m[5], m[6])
        if (end - start) % (7 * 1440) < 30:
            raise SettingError(f"the maintenance window {value} is shorter than the 30 minutes RDS requires",
                               "make it at least 30 minutes long, e.g. sun:02:00-sun:03:00")
        return value

    @field_validator("parameters")
    @classmethod
    def _unmanaged_parameters(cls, value: dict[str, str]) -> dict[str, str]:
        # PostgreSQL parameter names are case-insensitive: `Max_Connections` is `max_connections`.
        for name in value:
            if name.lower() in MANAGED_PARAMETERS:
                raise SettingError(
                    f"{name} is set by the platform from typed settings"
                    + (f" (PostgreSQL reads {name!r} as {name.lower()!r})" if name != name.lower() else ""),
                    "remove it from parameters; set the typed setting instead (e.g. sslMinProtocolVersion, "
                    "maxConnections, logMinDurationStatementMs)", key=name)
        spellings: dict[str, str] = {}
        for name in value:
            if name.lower() in spellings:
                raise SettingError(f"{spellings[name.lower()]!r} and {name!r} are the same parameter "
                                   "(PostgreSQL parameter names ignore case)", "keep one of them", key=name)
            spellings[name.lower()] = name
        return value

    @model_validator(mode="after")
    def _storage_and_windows(self) -> InstanceSettings:
        if self.max_allocated_storage_gb < self.allocated_storage_gb:
            raise SettingError(
                f"maxAllocatedStorageGb ({self.max_allocated_storage_gb}) is below allocatedStorageGb "
                f"({self.allocated_storage_gb})", "storage autoscaling needs a ceiling at or above the start "
                f"size: raise maxAllocatedStorageGb to {self.allocated_storage_gb} or more",
                key="maxAllocatedStorageGb")
        if self.auto_minor_version_upgrade and "." in self.engine_version:
            raise SettingError(
                f"engineVersion {self.engine_version!r} pins a minor version while autoMinorVersionUpgrade is on: "
                "after RDS upgrades the instance the next update would try to downgrade it",
                f"write {self.engine_version.split('.')[0]!r} (or set autoMinorVersionUpgrade: false)",
                key="engineVersion")
        if self.reserved_connections >= self.max_connections:
            raise SettingError(f"reservedConnections ({self.reserved_connections}) is not below maxConnections "
                               f"({self.max_connections})", "lower reservedConnections or raise maxConnections",
                               key="reservedConnections")
        if _windows_overlap(self.backup_window, self.maintenance_window):
            raise SettingError(f"backupWindow {self.backup_window} overlaps maintenanceWindow "
                               f"{self.maintenance_window}; RDS rejects overlapping windows",
                               "move one of them, e.g. backupWindow 00:00-00:30 and maintenanceWindow "
                               "sun:02:00-sun:03:00", key="maintenanceWindow")
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


class LagAlarmSettings(Model):
    """How replica lag pages someone: threshold (seconds), how many one-minute periods, which SNS topic."""

    lag_threshold_seconds: Annotated[int, Field(ge=1, le=86_400)] = DEFAULT_LAG_THRESHOLD_SECONDS
    # The alarm fires when `lagDatapointsToAlarm` of the last `lagEvaluationMinutes` minutes breach.
    lag_evaluation_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    lag_datapoints_to_alarm: Annotated[int, Field(ge=1, le=60)] = 3
    # An existing topic to page; without one the alarms page the region's AlarmTopic (components/alarm_topic.py).
    # Alarms notify only topics of their own region (the loader checks it against aws:region).
    alarm_topic_arn: Annotated[str | None, AfterValidator(_optional(aws_names.check_sns_topic_arn))] = None

    @model_validator(mode="before")
    @classmethod
    def _renamed_threshold(cls, data: object) -> object:
        if isinstance(data, dict) and "lagThresholdMs" in data:
            raise SettingError(
                "lagThresholdMs was renamed lagThresholdSeconds: RDS reports ReplicaLag in seconds, and up to "
                f"{IDLE_REPLICA_LAG_SECONDS} s on a primary without writes",
                f"rename it to lagThresholdSeconds, e.g. lagThresholdSeconds: {DEFAULT_LAG_THRESHOLD_SECONDS} "
                f"(above {IDLE_REPLICA_LAG_SECONDS})", key="lagThresholdMs")
        return data

    @field_validator("lag_threshold_seconds")
    @classmethod
    def _above_idle_lag(cls, value: int) -> int:
        if value <= IDLE_REPLICA_LAG_SECONDS:
            raise SettingError(
                f"{value} s: \"a PostgreSQL read replica reports a replication lag of up to five minutes if there are "
                "no user transactions occurring on the source DB instance\" (AWS), so this pages on quiet primaries",
                f"use more than {IDLE_REPLICA_LAG_SECONDS}, e.g. {DEFAULT_LAG_THRESHOLD_SECONDS}")
        return value

    @model_validator(mode="after")
    def _datapoints_fit(self) -> LagAlarmSettings:
        if self.lag_datapoints_to_alarm > self.lag_evaluation_minutes:
            raise SettingError(f"lagDatapointsToAlarm ({self.lag_datapoints_to_alarm}) exceeds "
                               f"lagEvaluationMinutes ({self.lag_evaluation_minutes})",
                               "lower lagDatapointsToAlarm or raise lagEvaluationMinutes",
                               key="lagDatapointsToAlarm")
        return self


class ReplicaSettings(LagAlarmSettings):
    """Same-region read replicas of the shared instance, for read-only clients (spec 8.B)."""

    count: Annotated[int, Field(ge=0, le=5)] = 0  # RDS allows up to 15; five is this platform's ceiling
    instance_class: InstanceClass | None = None  # primary's


class RegionSettings(LagAlarmSettings):
    """A region stack: a cross-region replica of `primaryStack`'s instance in this stack's `aws:region`.

    `promote: true` turns the replica into a standalone primary (failover as a reviewed config change).
    """

    primary_stack: Annotated[str, Field(pattern=_PULUMI_NAME, description="a stack name",
                                        examples=["prod"])]
    promote: bool = False
    instance_class: InstanceClass | None = None  # primary's
    # Copy the primary's automated backups into this region (point-in-time recovery here), kept this long.
    # Turn off only where RDS does not support the region pair for automated-backup replication.
    replicate_backups: bool = True
    backup_replication_days: Annotated[int, Field(ge=1, le=35)] = 7
    # Pulumi organization of the primary stack (`<org>/edumatrix-db/<primaryStack>`); default: this one's.
    organization: Annotated[str | None, Field(pattern=_PULUMI_NAME, description="a Pulumi organization name",
                                              examples=["edumatrix"])] = None
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
            raise SettingError("replicaRegions lists a region twice", "remove the repeated region")
        return value


def stack_name_prefix(stack: str) -> str:
    """Prefix of a stack's AWS physical names: `edumatrix-<stack>` (a region stack names its primary's with it)."""
    return f"edumatrix-{stack}"


# The ops runner (components/ops_runner.py, edumatrix_db/ops/runner.py): the Lambda runtime its package is built
# for (make runner-package reads it too). python3.11 reached end of support on 2026-06-30; 3.13 runs to 2029-06-30
# (Lambda runtimes table, https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
OPS_RUNNER_RUNTIME = "python3.13"
LOG_RETENTION_DAYS = Literal[30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653]


class OpsRunnerSettings(Model):
    """The platform's ops runner: a Lambda in the database's VPC running the scheduled and event-triggered jobs
    (the isolation audit now; per-minute metrics and restore-test validation later). Declared by primary AWS
    stacks; every default is the production posture."""

    enabled: bool = True
    # Lambda limits: memory 128-10,240 MB, timeout at most 900 s (Lambda quotas,
    # https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
    memory_mb: Annotated[int, Field(ge=128, le=10240)] = 256
    timeout_seconds: Annotated[int, Field(ge=10, le=900)] = 120
    # Concurrent runs at most; reserved out of the account's pool (which keeps at least 100 unreserved).
    reserved_concurrency: Annotated[int, Field(ge=1, le=10)] = 2
    # The audit runs every N minutes (EventBridge Scheduler `rate(N minutes)`); its findings alarm evaluates one
    # interval, and an alarm's period times evaluation periods cannot exceed one day.
    audit_every_minutes: Annotated[int, Field(ge=5, le=1440)] = 60
    # The lock-table use (pg_locks against max_locks_per_transaction x connections) that pages someone.
    lock_table_alarm_percent: Annotated[int, Field(ge=1, le=100)] = 50
    log_retention_days: LOG_RETENTION_DAYS = 365
    # How the function reaches Secrets Manager and CloudWatch from private subnets: `endpoints` declares
    # interface VPC endpoints for both (the function's egress then stays inside the VPC); `nat` relies on the
    # VPC's own route (NAT gateway, or endpoints it already has) and opens HTTPS egress.
    aws_api_access: Literal["endpoints", "nat"] = "endpoints"
    # An existing SNS topic the runner's alarms page; default: the region's AlarmTopic (components/alarm_topic.py).
    alarm_topic_arn: Annotated[str | None, AfterValidator(_optional(aws_names.check_sns_topic_arn))] = None
    # The package `make runner-package` builds, relative to the project root.
    package_path: str = "build/ops-runner.zip"

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> OpsRunnerSettings:
        if self.timeout_seconds >= self.audit_every_minutes * 60:
            raise SettingError(
                f"timeoutSeconds ({self.timeout_seconds}) must be shorter than the audit interval "
                f"(auditEveryMinutes {self.audit_every_minutes} = {self.audit_every_minutes * 60} s)",
                "lower timeoutSeconds or raise auditEveryMinutes", key="timeoutSeconds")
        return self


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ARN = re.compile(r"^arn:aws[a-z-]*:(sqs|lambda):[a-z0-9-]+:\d{12}:[A-Za-z0-9_:.-]+$")


class Subscription(Model):
    """Who is paged: one SNS subscription of the alarm topic."""

    protocol: Literal["email", "sms", "https", "sqs", "lambda"]
    endpoint: Annotated[str, Field(min_length=3, max_length=2048)]

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> Subscription:
        ok = {
            "email": bool(_EMAIL.match(self.endpoint)),
            "sms": bool(_E164.match(self.endpoint)),
            "https": self.endpoint.startswith("https://"),
            "sqs": bool(_ARN.match(self.endpoint)) and ":sqs:" in self.endpoint,
            "lambda": bool(_ARN.match(self.endpoint)) and ":lambda:" in self.endpoint,
        }[self.protocol]
        if not ok:
            expected = {"email": "an e-mail address", "sms": "an E.164 phone number (+4915112345678)",
                        "https": "an https:// URL", "sqs": "an SQS queue ARN", "lambda": "a Lambda function ARN"}
            raise SettingError(f"endpoint {self.endpoint!r} is not {expected[self.protocol]} ({self.protocol})",
                               f"give {expected[self.protocol]}, or the protocol that fits this endpoint",
                               key="endpoint")
        return self


class AlarmSettings(Model):
    """The alarm topic and the thresholds of every trigger (spec 2.A, 3.A, 4.B)."""

    # Who the alarm topic pages. Prod must name at least one (an alarm nobody receives is not an alarm).
    subscriptions: tuple[Subscription, ...] = ()
    # 3.A performance: cpu "> 70% sustained": above the threshold for `cpuSustainedMinutes`.
    cpu_percent: Annotated[float, Field(gt=0, le=100)] = 70
    cpu_sustained_minutes: Annotated[int, Field(ge=5, le=60)] = 15
    # 3.A memory "> 80% usage": FreeableMemory below (100 - memoryUsedPercent) % of the class's memory.
    memory_used_percent: Annotated[float, Field(gt=0, lt=100)] = 80
    # The class's memory when INSTANCE_MEMORY_GIB does not know the class.
    instance_memory_gb: Annotated[float | None, Field(gt=0, le=4096)] = None
    # 3.A connections "> 75% pool": DatabaseConnections above this share of max_connections.
    connections_percent: Annotated[float, Field(gt=0, le=100)] = 75
    # 2.A alerts "80% pool utilization": proxy borrowed / allowed connections, and each service's share of its
    # own pool (the collector's PoolUtilization metric).
    pool_utilization_percent: Annotated[float, Field(gt=0, le=100)] = 80
    # 2.A "wait time": the proxy's borrow latency. The spec's 30 s is the hard cap (connectionBorrowTimeout);
    # the alarm warns long before clients time out. No spec value: 1 s, a thirtieth of the cap.
    borrow_latency_ms: Annotated[int, Field(ge=1, le=30_000)] = 1000
    # 3.A queryTime "> 100ms average", per service (the collector's AverageQueryTime).
    query_time_ms: Annotated[float, Field(gt=0, le=60_000)] = 100
    # Pinned proxy connections defeat pooling (SET, advisory locks, LISTEN, ...). No spec value: a quarter of
    # the borrowed connections pinned for 15 minutes means a service keeps session state.
    pinned_percent: Annotated[float, Field(gt=0, le=100)] = 25
    # 3.A capacity "> 80% used": FreeStorageSpace below (100 - storageUsedPercent) % of allocatedStorageGb,
    # and the database's size above storageUsedPercent % of maxAllocatedStorageGb (autoscaling's ceiling).
    storage_used_percent: Annotated[float, Field(gt=0, lt=100)] = 80
    # 3.A growth "> 10% monthly", judged on a 7-day rate (an alarm cannot look back further).
    growth_percent_per_month: Annotated[float, Field(gt=0, le=1000)] = 10
    # 3.A wal "> 50GB size": TransactionLogsDiskUsage.
    wal_gb: Annotated[float, Field(gt=0, le=65536)] = 50
    # Logical replication slots hold WAL until consumed; a forgotten slot fills the disk. No spec value.
    replication_slot_lag_gb: Annotated[float, Field(gt=0, le=65536)] = 10
    replication_slot_disk_gb: Annotated[float, Field(gt=0, le=65536)] = 20
    # Transaction ID wraparound: PostgreSQL stops accepting writes near 2^31 (2,147,483,647); AWS's guidance is
    # to act at 1 billion ("Implement an early warning system for transaction ID wraparound in RDS for PostgreSQL").
    max_used_transaction_ids: Annotated[int, Field(ge=100_000_000, le=2_000_000_000)] = 1_000_000_000
    # 4.B security alerts, counted per 5 minutes from the exported PostgreSQL log.
    failed_logins_per_5_minutes: Annotated[int, Field(ge=1, le=10_000)] = 5
    privilege_changes_per_5_minutes: Annotated[int, Field(ge=1, le=10_000)] = 1
    schema_changes_per_5_minutes: Annotated[int, Field(ge=1, le=10_000)] = 1
    # 4.B "unusual access patterns": anomaly bands this many standard deviations wide.
    anomaly_band_width: Annotated[float, Field(ge=1, le=10)] = 3
    # RDS event subscriptions (failover, failure, low storage, configuration and security changes).
    event_subscriptions: bool = True


# The connection layer (spec 2.A pooling, 3.B "deploy database proxy layer", 5.B connection settings). Why a
# shared proxy is the default: docs/connections.md, "Shared proxy or one per service".
SPEC_POOL_WAIT_SECONDS = 30  # 2.A timeout "30 seconds max"
SPEC_POOL_IDLE_SECONDS = 600  # 2.A idleTimeout "10 minutes"
_DNS_NAME = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"


class ConnectionSettings(Model):
    """How services connect: RDS Proxy mode, pool timeouts, retry policy, and the private DNS zone their
    stable names live in (stack key `edumatrix-db:connections`)."""

    # shared: one proxy, one READ_WRITE endpoint per service (per-service metrics through EndpointName);
    # per-service: one proxy per service (per-service pool caps in the proxy; 9 of the 20 proxies a region
    # allows, each billed per vCPU of the instance); none: services connect to the instance directly.
    # Default (unset): shared in a primary AWS stack; none locally and in region stacks, which cannot have one.
    proxy: Literal["shared", "per-service", "none"] | None = None
    # RDS Proxy connectionBorrowTimeout: how long a client waits for a pooled connection (spec: 30 s max).
    borrow_timeout_seconds: Annotated[int, Field(ge=1, le=SPEC_POOL_WAIT_SECONDS)] = SPEC_POOL_WAIT_SECONDS
    # The services' own pool idle timeout (spec: 10 minutes), exported with the connection settings.
    client_idle_timeout_seconds: Annotated[int, Field(ge=30, le=3600)] = SPEC_POOL_IDLE_SECONDS
    # RDS Proxy idleClientTimeout (AWS: 1-28,800 s, default 1,800): longer than the clients' idle timeout, so
    # clients close idle connections first instead of finding them cut by the proxy.
    proxy_idle_client_timeout_seconds: Annotated[int, Field(ge=1, le=28_800)] = 1800
    # Share of the proxy's pool it may keep open while idle (maxIdleConnectionsPercent = this % of
    # maxConnectionsPercent).
    idle_pool_percent: Annotated[int, Field(ge=0, le=100)] = 50
    # Retry policy of the exported settings (spec 2.A "exponential backoff"): delay = min(cap, base * 2^n)
    # with full jitter, at most `retryAttempts` attempts.
    retry_base_ms: Annotated[int, Field(ge=10, le=10_000)] = 100
    retry_cap_ms: Annotated[int, Field(ge=100, le=60_000)] = 5000
    retry_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    # The private hosted zone of the stable per-service names; default `<stack>.db.edumatrix.internal`.
    dns_zone: Annotated[str | None, Field(max_length=200, pattern=_DNS_NAME)] = None

    @model_validator(mode="after")
    def _timeouts_in_order(self) -> ConnectionSettings:
        if self.proxy_idle_client_timeout_seconds <= self.client_idle_timeout_seconds:
            raise SettingError(
                f"proxyIdleClientTimeoutSeconds ({self.proxy_idle_client_timeout_seconds}) must be longer than "
                f"clientIdleTimeoutSeconds ({self.client_idle_timeout_seconds}): clients close idle connections "
                "first, the proxy never cuts one a client still counts as open",
                f"raise proxyIdleClientTimeoutSeconds above {self.client_idle_timeout_seconds}",
                key="proxyIdleClientTimeoutSeconds")
        if self.retry_base_ms > self.retry_cap_ms:
            raise SettingError(f"retryBaseMs ({self.retry_base_ms}) cannot exceed retryCapMs ({self.retry_cap_ms})",
                               f"lower retryBaseMs to {self.retry_cap_ms} or less", key="retryBaseMs")
        return self


class EventSettings(Model):
    """The event backbone (issue 19, docs/event-backbone.md; stack key `edumatrix-db:events`): an Amazon MSK
    cluster, a topic per service and aggregate, one Debezium connector per publishing service on MSK Connect
    reading the service's outbox publication, and a Glue schema registry with one schema per event type. Only a
    primary AWS stack declares it: CDC decodes the primary's WAL (a region stack's instance is a replica)."""

    enabled: bool = False
    # Provisioned MSK (docs/event-backbone.md, "Provisioned, not Serverless"): brokers per availability zone
    # (one zone per subnet of `network.subnetIds`), their type, Kafka version and EBS volume.
    kafka_version: Annotated[str, Field(pattern=r"^[1-9]\.\d+\.\d+(\.x)?$", description="an MSK Kafka version",
                                        examples=["3.6.0"])] = "3.6.0"
    broker_instance_type: Annotated[str, Field(pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$",
                                               description="an MSK broker type", examples=["kafka.m7g.large"])] = (
        "kafka.m7g.large")
    brokers_per_zone: Annotated[int, Field(ge=1, le=10)] = 1
    broker_volume_gb: Annotated[int, Field(ge=1, le=16384)] = 100
    # Every topic (one per service and aggregate): partitions, copies, the copies a write needs, retention.
    partitions: Annotated[int, Field(ge=1, le=1000)] = 6
    replication_factor: Annotated[int, Field(ge=1, le=30)] = 3
    min_insync_replicas: Annotated[int, Field(ge=1, le=30)] = 2
    retention_hours: Annotated[int, Field(ge=1, le=8760)] = 168
    # The Debezium PostgreSQL connector zip in the stack's plugin bucket (uploaded out of band: no download here).
    plugin_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9!_.*'()/-]{1,1024}\.(zip|jar)$",
                                     description="an S3 object key ending .zip or .jar",
                                     examples=["debezium-connector-postgres-2.7.4.Final-plugin.zip"])] = (
        "debezium-connector-postgres-2.7.4.Final-plugin.zip")
    plugin_object_version: Annotated[str | None, Field(min_length=1, max_length=1024)] = None
    kafkaconnect_version: Annotated[str, Field(pattern=r"^\d+\.\d+\.\d+$", examples=["2.7.1"])] = "2.7.1"
    connector_mcu: Literal[1, 2, 4, 8] = 1
    # The registry's compatibility: BACKWARD or stricter (consumers on the new schema read every older event).
    schema_compatibility: Literal["BACKWARD", "BACKWARD_ALL", "FULL", "FULL_ALL"] = "BACKWARD"
    schema_format: Literal["JSON", "AVRO"] = "JSON"
    # The Glue converter's AWSSchemaNamingStrategy in the plugin zip that names a record's schema
    # `<service>.<aggregate>.<type>` (docs/event-backbone.md, "Versions enforced at publish time").
    schema_naming_class: Annotated[str, Field(pattern=r"^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$",
                                              description="a fully qualified Java class name")] = (
        "com.edumatrix.events.EventTypeSchemaNaming")
    # Debezium snapshot.mode: no_data streams from the slot's creation on (the outbox is a queue, not state).
    snapshot_mode: Literal["no_data", "initial"] = "no_data"
    consumer_lag_seconds: Annotated[int, Field(ge=10, le=86_400)] = 300
    log_retention_days: LOG_RETENTION_DAYS = 365

    @model_validator(mode="after")
    def _copies(self) -> EventSettings:
        if self.min_insync_replicas >= self.replication_factor and self.replication_factor > 1:
            raise SettingError(
                f"minInsyncReplicas ({self.min_insync_replicas}) must be below replicationFactor "
                f"({self.replication_factor}): otherwise one broker's maintenance stops every producer (Amazon MSK "
                "best practices: 'ensure that the replication factor is greater than minISR')",
                f"set minInsyncReplicas to {self.replication_factor - 1}", key="minInsyncReplicas")
        return self


class BackupSettings(Model):
    """AWS Backup for a primary stack (spec 6.A, 4.A): the spec's rules as snapshot rules in two vaults under a
    customer-managed key, copies of the daily backups to each region stack's region, a weekly restore test.

    Point-in-time recovery is owned by RDS (the instance's automated backups: `instance.backupRetentionDays`,
    `instance.backupWindow`); AWS Backup takes no continuous backups here (docs/recovery-runbook.md, "Who owns
    point-in-time recovery"). AWS Backup's schedules are fixed by the spec: daily at 00:00 UTC and every 6 hours.
    """

    enabled: bool = True
    # The spec's "full" backups: daily at 00:00 UTC, 30 days (4.A: "30 days minimum retention").
    daily_retention_days: Annotated[int, Field(ge=30, le=3650)] = 30
    # The spec's "incremental" backups: every 6 hours, 7 days (RDS snapshots are incremental at the storage level).
    six_hourly_retention_days: Annotated[int, Field(ge=1, le=29)] = 7
    # A job that has not started this long after its scheduled time is not run (AWS Backup: at least 60 minutes).
    start_window_minutes: Annotated[int, Field(ge=60, le=720)] = 60
    # AWS Backup cancels a job still running this long after it started (spec 3.A: a backup within 1 hour; the
    # alarm fires at 60 minutes, the job is given more before it is cancelled).
    completion_window_minutes: Annotated[int, Field(ge=120, le=1440)] = 180
    # Vault lock: governance outside prod (IAM can still remove it); compliance in prod, immutable after this
    # many days (AWS Backup: at least 3, the 72-hour cooling-off period).
    lock_grace_days: Annotated[int, Field(ge=3, le=365)] = 14
    # Copies of the daily backups in every region stack's region (secrets.replicaRegions), kept this long.
    copy_retention_days: Annotated[int, Field(ge=30, le=3650)] = 30
    # The restore test: weekly (Sunday 03:00 UTC), restored into the instance's subnet group and security
    # group, validated by the ops runner within this many hours, then deleted by AWS Backup.
    restore_test_schedule: str = "cron(0 3 ? * SUN *)"
    restore_test_validation_hours: Annotated[int, Field(ge=1, le=168)] = 4
    # Existing SNS topic for the backup alarms; default: the region's alarm topic (components/alarm_topic.py).
    alarm_topic_arn: Annotated[str | None, AfterValidator(_optional(aws_names.check_sns_topic_arn))] = None
    # The monthly point-in-time-restore validation (components/pitr_validation.py): EventBridge Scheduler starts
    # a Step Functions state machine that restores the instance to the moment its run started into
    # `<identifier>-pitr-check` (this class, no Multi-AZ), waits at most `pitrValidationMaxWaitMinutes` for it,
    # has the ops runner's `pitr-verify` job validate it (a heartbeat within `pitrValidationHeartbeatMinutes`
    # before the moment and none after it) and deletes it. Monthly: the 1st at 04:00 UTC by default, after the
    # daily backup and away from Sunday's 03:00 restore test most months.
    pitr_validation: bool | None = None  # None: on wherever the ops runner is (it validates the copy)
    pitr_validation_schedule: Annotated[str, AfterValidator(aws_names.check_schedule_expression)] = \
        "cron(0 4 1 * ? *)"
    pitr_validation_instance_class: InstanceClass = "db.t4g.micro"
    pitr_validation_max_wait_minutes: Annotated[int, Field(ge=30, le=1440)] = 240
    pitr_validation_heartbeat_minutes: Annotated[int, Field(ge=2, le=60)] = 5

    @model_validator(mode="after")
    def _windows(self) -> BackupSettings:
        if self.completion_window_minutes < self.start_window_minutes + 60:
            raise SettingError(f"completionWindowMinutes ({self.completion_window_minutes}) must be at least 60 "
                               f"minutes longer than startWindowMinutes ({self.start_window_minutes})",
                               f"set completionWindowMinutes to {self.start_window_minutes + 60} or more",
                               key="completionWindowMinutes")
        return self


class ExtractionInstance(Model):
    """What the extraction target changes from the shared instance's settings; everything else (encryption,
    TLS, network, backups, monitoring, protection) is the shared instance's, so the target is as secure."""

    identifier: Annotated[str | None, AfterValidator(_optional(aws_names.check_rds_identifier))] = None
    instance_class: InstanceClass | None = None
    allocated_storage_gb: Annotated[int | None, Field(ge=20, le=65536)] = None
    max_allocated_storage_gb: Annotated[int | None, Field(ge=20, le=65536)] = None
    multi_az: bool | None = None
    # Why a prod target runs in one availability zone (required with multiAz: false in prod; the policy reads it).
    single_az_reason: Annotated[str | None, Field(
        min_length=10, max_length=256, description="why this prod target runs in one availability zone")] = None


# Fargate task sizes: CPU units -> the memory (MiB) each accepts (Amazon ECS developer guide, "Troubleshoot Amazon
# ECS task definition invalid CPU or memory errors": RegisterTaskDefinition answers "Invalid 'cpu' setting for
# task" otherwise). PgBouncer is one single-threaded process: more than 1 vCPU buys nothing.
FARGATE_MEMORY_MB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8192 + 1, 1024)),
}


class ExtractionPoolerSettings(Model):
    """The platform's PgBouncer in front of a service during its extraction (components/service_pooler.py):
    ECS Fargate tasks behind an internal NLB. Required by a stack with an extraction in a phase that has a
    pooler (config/extraction.py `FACTS[phase].pooler`); the loader names the missing key."""

    # The ECR repository (in the stack's account and Region) holding the pooler image, and the image's digest.
    image_repository: Annotated[str | None, AfterValidator(_optional(aws_names.check_ecr_repository))] = None
    image_digest: Annotated[str | None, AfterValidator(_optional(aws_names.check_image_digest))] = None
    # A secret holding the pooler's TLS certificate and key (JSON keys `certificate`, `privateKey`, PEM), issued
    # for the services' DNS names by the CA the services trust (`caName` says which, for their sslrootcert).
    tls_secret_arn: Annotated[str | None, AfterValidator(_optional(aws_names.check_secret_arn))] = None
    ca_name: Annotated[str, Field(min_length=3, max_length=256)] = "the platform's private CA"
    # At least two tasks, spread over the subnets' Availability Zones: one task is one point of failure.
    task_count: Annotated[int, Field(ge=2, le=10)] = 2
    cpu: Literal[256, 512, 1024] = 512
    memory_mb: int = 1024
    cpu_architecture: Literal["ARM64", "X86_64"] = "ARM64"
    log_retention_days: LOG_RETENTION_DAYS = 365
    # The NLB's own private address in each of network.subnetIds (subnet id -> IPv4). With client IP preservation
    # off, every connection through the NLB reaches PgBouncer from one of these; the task's hba.conf refuses them
    # the admin console, so only direct connections (the ops runner) reach it (docs/extraction-runbook.md, "What
    # the admin console admits"). AWS: inside the subnet's CIDR, not its first four or last address, not in use.
    nlb_addresses: dict[Annotated[str, AfterValidator(aws_names.check_subnet_id)], str] = Field(default_factory=dict)

    @field_validator("nlb_addresses")
    @classmethod
    def _private_ipv4(cls, value: dict[str, str]) -> dict[str, str]:
        import ipaddress

        for subnet, address in value.items():
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                raise SettingError(f"{subnet}: {address!r} is not an IPv4 address",
                                   "give the NLB's private IPv4 address in that subnet, e.g. 10.20.1.250") from None
            if not ip.is_private:
                raise SettingError(f"{subnet}: {address} is not a private address; the pooler's NLB is internal",
                                   "pick a free address inside the subnet's private CIDR")
        if len(set(value.values())) != len(value):
            raise SettingError("two subnets are given the same NLB address",
                               "give each subnet its own address, inside that subnet's CIDR")
        return value

    @model_validator(mode="after")
    def _fargate_size(self) -> ExtractionPoolerSettings:
        allowed = FARGATE_MEMORY_MB[self.cpu]
        if self.memory_mb not in allowed:
            raise SettingError(f"Fargate has no task of {self.cpu} CPU units with {self.memory_mb} MiB",
                               f"with cpu {self.cpu} choose memoryMb from {', '.join(map(str, allowed))}",
                               key="memoryMb")
        return self

    def missing(self) -> tuple[str, ...]:
        """The keys a pooler cannot be declared without."""
        return tuple(key for key, value in (("imageRepository", self.image_repository),
                                            ("imageDigest", self.image_digest),
                                            ("tlsSecretArn", self.tls_secret_arn),
                                            ("nlbAddresses", self.nlb_addresses)) if not value)


class ExtractionSettings(Model):
    """One service's extraction: the phase it is in and the phases it went through (oldest first).

    `history` is the record of the updates already applied (each a `pulumi up` of one phase); the loader checks
    that `history` followed by `phase` is a path of allowed moves from "not extracted" (config/extraction.py),
    so a skipped phase or an impossible move is refused with the allowed next phase. A pull request that moves
    the phase appends the old phase to `history`: the reviewer sees exactly one step.
    """

    phase: Phase
    history: tuple[Phase, ...] = ()
    instance: ExtractionInstance = Field(default_factory=ExtractionInstance)


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
    owner: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="a team name in lowercase "
                                "letters, digits and hyphens", examples=["platform-team"])] = "platform-team"
    data_classification: DataClassification = DataClassification.CONFIDENTIAL
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkSettings | None = None
    instance: InstanceSettings = Field(default_factory=InstanceSettings)
    services: dict[str, ServiceOverride] = Field(default_factory=dict)
    local: LocalSettings = Field(default_factory=LocalSettings)
    replicas: ReplicaSettings = Field(default_factory=ReplicaSettings)
    region: RegionSettings | None = None
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    ops_runner: OpsRunnerSettings = Field(default_factory=OpsRunnerSettings)
    alarms: AlarmSettings = Field(default_factory=AlarmSettings)
    connections: ConnectionSettings = Field(default_factory=ConnectionSettings)
    backups: BackupSettings = Field(default_factory=BackupSettings)
    events: EventSettings = Field(default_factory=EventSettings)


    # Services being extracted to an instance of their own, by service name (config/extraction.py).
    extractions: dict[str, ExtractionSettings] = Field(default_factory=dict)
    extraction_pooler: ExtractionPoolerSettings = Field(default_factory=ExtractionPoolerSettings)
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
    def credentials_prefix(self) -> str:
        """Prefix of the database's credential secrets and of its erasure ledger: the primary stack's (a region
        stack serves copies of its primary's secrets and a replica of its primary's ledger)."""
        return stack_name_prefix(self.region.primary_stack) if self.region is not None else self.name_prefix

    @property
    def erasure_ledger_table(self) -> str:
        """The GDPR erasure ledger's DynamoDB table (components/erasure_ledger.py, docs/gdpr.md)."""
        return f"{self.credentials_prefix}-gdpr-erasure-ledger"

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
        for key in value:
            if key in PLATFORM_TAG_KEYS:
                raise SettingError(f"tag {key!r} is set by the platform",
                                   "remove it; set edumatrix-db:owner / edumatrix-db:dataClassification instead",
                                   key=key)
            problem = aws_names.tag_problem(key, value[key])
            if problem:
                raise SettingError(*problem, key=key)
        room = aws_names.TAGS_PER_RESOURCE - len(PLATFORM_TAG_KEYS)
        if len(value) > room:
            raise SettingError(f"{len(value)} tags; AWS allows {aws_names.TAGS_PER_RESOURCE} per resource and the "
                               f"platform sets up to {len(PLATFORM_TAG_KEYS)}", f"keep at most {room} tags")
        return value
