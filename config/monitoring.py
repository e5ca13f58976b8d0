"""What pages whom, and when: the alarm topic's subscriptions and every scaling and security trigger of the
spec as a threshold (stack key `edumatrix-db:alarms`). Pure data; `components/alarm_topic.py` and
`components/database_alarms.py` turn it into SNS and CloudWatch resources.

Every default is the spec's value (3.A, 2.A, 4.B); where the spec gives none the default says why it was
chosen. Units are the ones a person thinks in (percent, milliseconds, GiB); the alarms convert them to the
metric's unit (CloudWatch reports `FreeableMemory` and `FreeStorageSpace` in bytes, `ReplicaLag` in
seconds, proxy borrow latency in microseconds).
"""

from __future__ import annotations

from config.errors import Problem
from config.settings import NAMESPACE, AlarmSettings, StackSettings

METRICS_NAMESPACE = "EduMatrix/Database"
"""THE namespace of the platform's own metrics (issue 18 aligned it; before, GDPR's were `EduMatrix/GDPR`):
every producer (the collector, the ops runner's jobs, the log metric filters), alarm and dashboard widget
takes it from here. Published metrics carry the dimension `Environment` (and `Service` per service)."""


def log_metrics_namespace(instance_identifier: str) -> str:
    """Where the metric filters on an instance's exported PostgreSQL log publish: `METRICS_NAMESPACE/<instance>`.
    A CloudWatch Logs metric filter takes dimensions only from fields its pattern extracts, and PostgreSQL's
    log lines are not JSON, so the instance is in the namespace and the service in the metric's name."""
    return f"{METRICS_NAMESPACE}/{instance_identifier}"

# Memory of RDS instance classes, GiB. CloudWatch reports `FreeableMemory` but no total, so "memory > 80 %
# used" needs the class's memory. Source: AWS, "Hardware specifications for DB instance classes"
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Summary.html): t-classes
# micro 1, small 2, medium 4, large 8, xlarge 16, 2xlarge 32; m-classes 4 GiB per vCPU; r-classes 8 GiB per
# vCPU (large = 2 vCPU). A class missing here is a configuration error naming `alarms.instanceMemoryGb`.
_SIZES_VCPU = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48,
               "16xlarge": 64, "24xlarge": 96}
_T_MEMORY = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
INSTANCE_MEMORY_GIB: dict[str, int] = {
    **{f"db.{family}.{size}": gib for family in ("t3", "t4g") for size, gib in _T_MEMORY.items()},
    **{f"db.{family}.{size}": 4 * vcpu for family in ("m5", "m6g", "m6i", "m7g")
       for size, vcpu in _SIZES_VCPU.items()},
    **{f"db.{family}.{size}": 8 * vcpu for family in ("r5", "r6g", "r6i", "r7g")
       for size, vcpu in _SIZES_VCPU.items()},
}

def instance_memory_gib(instance_class: str, alarms: AlarmSettings) -> float | None:
    """The memory of `instance_class` in GiB: the stack's override, else the table, else None."""
    if alarms.instance_memory_gb is not None:
        return alarms.instance_memory_gb
    memory = INSTANCE_MEMORY_GIB.get(instance_class)
    return float(memory) if memory is not None else None


def monitoring_problems(settings: StackSettings) -> list[Problem]:
    """Rules of `alarms` that need the rest of the stack: prod names who is paged; the memory of the instance the
    memory alarm watches is known. Only a primary stack declares that alarm (components/database_alarms.py);
    a region stack's replica has lag alarms only (components/lag_alarms.py), so its class is not asked about."""
    src, ns = settings.source, NAMESPACE
    problems: list[Problem] = []
    if settings.is_local:
        return problems
    alarms = settings.alarms
    if settings.is_prod and not alarms.subscriptions:
        problems.append(Problem(
            src, f"{ns}:alarms.subscriptions", "prod must name who is paged; the alarm topic has no subscriber",
            "add e.g. `subscriptions: [{protocol: email, endpoint: dba-oncall@example.org}]`",
        ))
    if settings.is_region_stack:
        return problems
    instance_class = settings.instance.instance_class
    if instance_memory_gib(instance_class, alarms) is None:
        problems.append(Problem(
            src, f"{ns}:alarms.instanceMemoryGb",
            f"the memory of {instance_class} is not in config/monitoring.py INSTANCE_MEMORY_GIB, so the "
            "'memory > 80 % used' alarm has no total to compare FreeableMemory with",
            f"set alarms.instanceMemoryGb to the class's memory (AWS 'Hardware specifications for DB instance "
            f"classes') or add {instance_class} to the table",
        ))
    return problems
