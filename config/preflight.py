"""AWS API rules for the settings the platform adds: what RDS, Secrets Manager or CloudWatch would refuse at
`pulumi up` although the SDK's mocks accept it. The loader reports these with file, key and fix before any
resource is declared; the `aws-api-*` policies (policy/aws_api.py) check the same on the declared resources, so
a user meets them here first.

Sources are cited where each rule is written (and in docs/policy-parity.md, "AWS preflight").
"""

from __future__ import annotations

from config.errors import Problem
from config.parameter_table import parameter_table
from config.settings import NAMESPACE, InstanceSettings, StackSettings

# -- storage (RDS for PostgreSQL) ------------------------------------------------------------------------
# io1/io2: iops required, 0.5-50 IOPS per GiB, at least 100 GiB (AWS CreateDBInstance `Iops`: "a multiple between
# .5 and 50 of the storage amount"; the error "Invalid iops to max storage (GB) ratio for engine name postgres":
# ministryofjustice/cloud-platform-environments#3972; the 100 GiB floor: #26102). gp3: below 400 GiB RDS refuses
# iops/throughput ("You can't specify IOPS or storage throughput for engine postgres and a storage size less than
# 400", cloud-gov/terraform-provision#1556); from 400 GiB the baseline is 12,000 IOPS and 500 MiB/s
# (hashicorp/terraform-provider-aws#28382).
PROVISIONED_IOPS_TYPES = ("io1", "io2")
PROVISIONED_IOPS_MIN_GB = 100
IOPS_PER_GB = (0.5, 50)
GP3_STRIPING_GB = 400
GP3_STRIPED_BASELINE_IOPS = 12_000
GP3_STRIPED_BASELINE_MIBPS = 500
# Database Insights: standard mode keeps Performance Insights data 7 days, advanced mode 465 (aws/aws-cdk#32851:
# "you must set the performanceInsightRetention to 465"); the flexible periods went with the retired console.
INSIGHTS_RETENTION_DAYS = {"standard": 7, "advanced": 465}


def storage_problems(storage_type: str, allocated_gb: int, iops: int | None,
                     throughput: int | None) -> list[tuple[str, str, str]]:
    """Why RDS for PostgreSQL would refuse this storage: (instance key, what is wrong, fix); empty when fine."""
    out: list[tuple[str, str, str]] = []
    if storage_type in PROVISIONED_IOPS_TYPES:
        low, high = (int(allocated_gb * r) for r in IOPS_PER_GB)
        if iops is None:
            out.append(("storageType", f"storageType {storage_type} needs provisioned IOPS; RDS refuses it without",
                        f"set {NAMESPACE}:instance.iops between {low} and {high} (0.5-50 per GiB of {allocated_gb} "
                        "GiB), or use gp3"))
        elif not IOPS_PER_GB[0] <= iops / allocated_gb <= IOPS_PER_GB[1]:
            out.append(("iops", f"{iops} IOPS is {iops / allocated_gb:.2f} per GiB; RDS refuses it (\"Invalid iops "
                        f"to max storage (GB) ratio for engine name postgres and storage type {storage_type}\")",
                        f"use {low}-{high} for {allocated_gb} GiB"))
        if allocated_gb < PROVISIONED_IOPS_MIN_GB:
            out.append(("allocatedStorageGb", f"{storage_type} starts at {PROVISIONED_IOPS_MIN_GB} GiB",
                        f"set allocatedStorageGb >= {PROVISIONED_IOPS_MIN_GB}, or storageType gp3"))
        if throughput is not None:
            out.append(("storageThroughputMibps", f"throughput is set only for gp3, not {storage_type}",
                        "remove storageThroughputMibps"))
    elif storage_type == "gp3":
        if allocated_gb < GP3_STRIPING_GB:
            for key, value in (("iops", iops), ("storageThroughputMibps", throughput)):
                if value is not None:
                    out.append((key, f"gp3 below {GP3_STRIPING_GB} GiB has a fixed baseline (3,000 IOPS, 125 MiB/s); "
                                "RDS refuses it (\"You can't specify IOPS or storage throughput for engine postgres "
                                f"and a storage size less than {GP3_STRIPING_GB}\")",
                                f"remove {key}, or raise allocatedStorageGb to {GP3_STRIPING_GB} or more"))
        else:
            if iops is not None and iops < GP3_STRIPED_BASELINE_IOPS:
                out.append(("iops", f"{iops} is below gp3's baseline of {GP3_STRIPED_BASELINE_IOPS} IOPS from "
                            f"{GP3_STRIPING_GB} GiB", f"remove iops or use {GP3_STRIPED_BASELINE_IOPS} or more"))
            if throughput is not None and throughput < GP3_STRIPED_BASELINE_MIBPS:
                out.append(("storageThroughputMibps", f"{throughput} MiB/s is below gp3's baseline of "
                            f"{GP3_STRIPED_BASELINE_MIBPS} from {GP3_STRIPING_GB} GiB",
                            f"remove it or use {GP3_STRIPED_BASELINE_MIBPS} or more"))
    return out


def instance_problems(source: str, instance: InstanceSettings, *, local: bool) -> list[Problem]:
    """Storage, Database Insights, the parameter table and the TLS floor of one instance's settings."""
    key = f"{NAMESPACE}:instance"
    problems = [Problem(source, f"{key}.{k}", message, fix)
                for k, message, fix in storage_problems(instance.storage_type, instance.allocated_storage_gb,
                                                        instance.iops, instance.storage_throughput_mibps)]
    days = INSIGHTS_RETENTION_DAYS[instance.database_insights_mode]
    if instance.performance_insights_retention_days != days:
        other = {d: m for m, d in INSIGHTS_RETENTION_DAYS.items()}.get(instance.performance_insights_retention_days)
        problems.append(Problem(
            source, f"{key}.performanceInsightsRetentionDays",
            f"Database Insights {instance.database_insights_mode} mode keeps {days} days, not "
            f"{instance.performance_insights_retention_days} (RDS retired the other retention periods with the "
            "Performance Insights console)",
            f"set databaseInsightsMode: {other}" if other else f"remove the key (default {days})"))
    try:
        table = parameter_table(instance.parameter_family)
    except KeyError as exc:
        problems.append(Problem(source, f"{key}.engineVersion", str(exc.args[0]),
                                "use engineVersion 15 or 16, or check in that family's table"))
        return problems
    for name, value in sorted(instance.parameters.items()):
        problem = table.problem(name, value)
        if problem:
            spec = table.get(name)
            fix = (f"see config/rds_parameters/{table.family}.json for the names RDS accepts" if spec is None
                   else f"remove {name} from parameters" if spec.rds_default == str(value).strip()
                   else "use an allowed value")
            problems.append(Problem(source, f"{key}.parameters.{name}", problem, fix))
    ssl = table.get("ssl_min_protocol_version")
    if not local and ssl is not None and ssl.value_problem(instance.ssl_min_protocol_version):
        problems.append(Problem(
            source, f"{key}.sslMinProtocolVersion",
            f"{instance.ssl_min_protocol_version} is not offered by RDS for {table.family} (AWS: \"RDS for "
            "PostgreSQL 16 and later supports TLS version 1.3\")",
            "use TLSv1.2 (the default), or engineVersion 16 for TLSv1.3; clients such as Prisma cannot connect to "
            "a TLS-1.3-only server (prisma/orm#24943)"))
    return problems


def preflight_problems(settings: StackSettings) -> list[Problem]:
    """Every rule of this module that one stack file can be judged by alone (sibling stacks: config.regions)."""
    src, ns = settings.source, NAMESPACE
    problems = instance_problems(src, settings.instance, local=settings.is_local)
    managed = settings.instance.master_password == "rds-managed"
    if managed and settings.replicas.count:
        problems.append(Problem(
            src, f"{ns}:instance.masterPassword",
            "RDS cannot create read replicas of an instance whose master password it manages (\"Creating read "
            "replicas for source instance ... where ManageMasterUserPassword is enabled is not supported\")",
            "remove masterPassword (the default, platform, keeps the password in a secret of the platform's)"))
    if managed and settings.secrets.replica_regions:
        problems.append(Problem(
            src, f"{ns}:instance.masterPassword",
            "region stacks replicate an instance whose master password RDS manages: RDS refuses that",
            "remove masterPassword (default platform)"))
    if settings.is_local and settings.secrets.replica_regions:
        problems.append(Problem(src, f"{ns}:secrets.replicaRegions", "the local stack keeps no secrets in AWS",
                                "remove the key"))
    return problems
