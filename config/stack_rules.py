"""AWS rules that need a whole stack, or its sibling stack files, to check (config.aws_names has the per-value ones).

- the instance identifier RDS will get, including the one derived from the stack name and the replicas'
  `-replica-N` suffix;
- a master user that would collide with a role the platform creates or RDS reserves;
- an alarm topic in another region than the alarms that notify it;
- the Lambda, CloudFormation, dashboard and queue names a primary stack derives from its name;
- a private DNS zone of the same name as another stack's in the same VPC;
- (storage: config/preflight.py, with the other rules of the settings issue 10 added);
- a VPC, subnet or security group that another stack file uses in another region (they exist in one region).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from config import aws_names
from config.catalog import load_catalog
from config.errors import ConfigError, Problem
from config.naming import RoleKind
from config.regions import REGION_KEY, partition_of
from config.settings import NAMESPACE, LagAlarmSettings, StackSettings, stack_name_prefix

ConfigReader = Callable[[str, Path], tuple[dict[str, Any], str]]
NETWORK_KEY = f"{NAMESPACE}:network"


def stack_problems(settings: StackSettings) -> list[Problem]:
    """Every rule of this module that needs only the stack itself."""
    return [*identifier_problems(settings), *master_user_problems(settings), *alarm_topic_problems(settings),
            *derived_name_problems(settings), *pitr_validation_problems(settings)]


def pitr_validation_on(settings: StackSettings) -> bool:
    """Whether a primary stack declares the monthly point-in-time validation (components/pitr_validation.py): with
    AWS Backup and the ops runner, unless `backups.pitrValidation` is false."""
    return settings.backups.enabled and settings.ops_runner.enabled and settings.backups.pitr_validation is not False


def pitr_validation_problems(settings: StackSettings) -> list[Problem]:
    """The point-in-time validation is validated by the ops runner (components/pitr_validation.py)."""
    backups = settings.backups
    if settings.is_local or settings.region is not None or not backups.enabled or backups.pitr_validation is not True:
        return []
    if settings.ops_runner.enabled:
        return []
    return [Problem(settings.source, f"{NAMESPACE}:backups.pitrValidation",
                    "the monthly point-in-time-restore validation needs the ops runner (its pitr-verify job "
                    "validates the restored copy), and opsRunner.enabled is false",
                    "set opsRunner.enabled: true, or backups.pitrValidation: false (and validate point-in-time "
                    "restores by hand every month: docs/recovery-runbook.md)")]


def identifier_problems(settings: StackSettings) -> list[Problem]:
    """The RDS identifiers this stack declares: `instance.identifier` or `edumatrix-<stack>`, and its replicas'."""
    if settings.is_local:
        return []
    key = f"{NAMESPACE}:instance.identifier"
    given = settings.instance.identifier if settings.region is None else None
    identifier = given or settings.name_prefix
    count = settings.replicas.count if settings.region is None else 0
    suffix = aws_names.REPLICA_SUFFIX.format(n=count) if count else ""
    problem = aws_names.rds_identifier_problem(identifier, suffix=suffix)
    if problem is None and settings.region is None and pitr_validation_on(settings):
        suffix = aws_names.PITR_CHECK_SUFFIX
        problem = aws_names.rds_identifier_problem(
            identifier, suffix=suffix, suffix_of="the point-in-time validation's copy (backups.pitrValidation)")
    if problem is None:
        return []
    message, fix = problem
    if given:
        return [Problem(settings.source, key, message, fix)]
    fix = (f"rename the stack (and its file) to lowercase letters, digits and single hyphens, short enough for "
           f"'edumatrix-<stack>{suffix}' to fit {aws_names.RDS_IDENTIFIER_MAX} characters")
    if settings.region is None:
        fix += f", or set {key}"
    return [Problem(settings.source, "stack name", f"the instance identifier derived from the stack name: {message}",
                    fix)]


def derived_name_problems(settings: StackSettings) -> list[Problem]:
    """The names a primary stack derives from `edumatrix-<stack>` (the rotation function and its application, the
    ops runner, the dashboard) whatever instance.identifier says: each must fit its AWS API."""
    if settings.is_local or settings.region is not None:
        return []
    broken = aws_names.derived_name_problems(settings.name_prefix)
    if not broken:
        return []
    names = "; ".join(f"{what}: {name!r}" for what, name in broken)
    return [Problem(settings.source, "stack name", f"AWS refuses names this stack derives from its name: {names}",
                    f"rename the stack (and its file) to letters, digits and hyphens, at most "
                    f"{longest_stack_name()} characters")]


def longest_stack_name() -> int:
    """The longest stack name whose derived names (aws_names.DERIVED_NAMES) AWS accepts."""
    return max(n for n in range(1, 64) if not aws_names.derived_name_problems(stack_name_prefix("a" * n)))


def master_user_problems(settings: StackSettings) -> list[Problem]:
    """The master user must not be a role the platform creates for a service (it would take it over)."""
    name = settings.instance.master_username
    for service in load_catalog():  # role names do not depend on the stack's pool overrides
        for kind in RoleKind:
            if service.role(kind) == name:
                return [Problem(settings.source, f"{NAMESPACE}:instance.masterUsername",
                                f"{name!r} is the {kind.value} role of service {service.name!r}, which the platform "
                                "creates with its own grants", "choose another name, e.g. edumatrix_admin")]
    return []


def alarm_topic_problems(settings: StackSettings) -> list[Problem]:
    """CloudWatch alarms notify SNS topics of their own region and partition only: PutMetricAlarm answers
    "ValidationError: Invalid region ca-central-1 specified. Only us-west-2 is supported."
    (cds-snc/notification-terraform#128) or "Invalid partition aws specified. Only aws-us-gov is supported."
    (aws-samples/amazon-cloudwatch-auto-alarms#61)."""
    region = settings.aws_region
    if region is None:
        return []
    sections: list[tuple[str, LagAlarmSettings]] = [("replicas", settings.replicas)]
    if settings.region is not None:
        sections.append(("region", settings.region))
    problems = []
    for section, alarms in sections:
        if alarms.alarm_topic_arn is None:
            continue
        partition, topic_region = aws_names.topic_region(alarms.alarm_topic_arn)
        if (partition, topic_region) != (partition_of(region), region):
            problems.append(Problem(
                settings.source, f"{NAMESPACE}:{section}.alarmTopicArn",
                f"the topic is in {topic_region} ({partition}) and this stack's alarms in {region}; CloudWatch "
                "alarms only notify topics of their own region",
                f"use a topic in {region} (arn:{partition_of(region)}:sns:{region}:<account>:<name>), or remove the "
                "key and the stack declares its own"))
    return problems


CONNECTIONS_KEY = f"{NAMESPACE}:connections"


def dns_zone_name(stack: str, dns_zone: str | None) -> str:
    """The private zone a primary stack's connection layer declares (components/platform.py)."""
    return dns_zone or f"{stack}.db.edumatrix.internal"


def zone_reuse_problems(settings: StackSettings, stacks_dir: Path, read: ConfigReader,
                        known: Iterable[str]) -> list[Problem]:
    """Two private hosted zones of one name cannot share a VPC: the second `up` fails with "ConflictingDomainExists:
    The VPC ... has already been associated with the hosted zone ... with the same domain name"
    (confluentinc/terraform-provider-confluent#395; Route 53 API AssociateVPCWithHostedZone)."""
    if settings.network is None or settings.is_local or settings.region is not None:
        return []
    zone = dns_zone_name(settings.stack, settings.connections.dns_zone)
    problems = []
    for other in known:
        if other == settings.stack:
            continue
        try:
            config, source = read(other, stacks_dir)
        except ConfigError:
            continue  # judged on its own
        network, connections = config.get(NETWORK_KEY), config.get(CONNECTIONS_KEY) or {}
        if (REGION_KEY in config or not isinstance(network, dict) or not isinstance(connections, dict)
                or network.get("vpcId") != settings.network.vpc_id or config.get("aws:region") != settings.aws_region):
            continue
        if dns_zone_name(other, connections.get("dnsZone")) == zone:
            problems.append(Problem(
                settings.source, f"{CONNECTIONS_KEY}.dnsZone",
                f"{source} declares the private zone {zone} in the same VPC {settings.network.vpc_id}; Route 53 "
                "refuses a second zone of that name there (\"ConflictingDomainExists\")",
                f"give this stack another dnsZone (the default is {settings.stack}.db.edumatrix.internal)"))
    return problems


def network_reuse_problems(settings: StackSettings, stacks_dir: Path, read: ConfigReader,
                           known: Iterable[str]) -> list[Problem]:
    """A VPC, its subnets and security groups live in one region: another stack file naming the same id in
    another region has a wrong id (one of the two files was copied and not updated)."""
    if settings.network is None or settings.aws_region is None:
        return []
    mine = {"vpcId": {settings.network.vpc_id}, "subnetIds": set(settings.network.subnet_ids),
            "allowedSecurityGroupIds": set(settings.network.allowed_security_group_ids)}
    problems = []
    for other in known:
        if other == settings.stack:
            continue
        try:
            config, source = read(other, stacks_dir)
        except ConfigError:
            continue  # judged on its own
        region = config.get("aws:region")
        network = config.get(NETWORK_KEY)
        if not isinstance(region, str) or region == settings.aws_region or not isinstance(network, dict):
            continue
        for key, ids in mine.items():
            theirs = network.get(key)
            theirs = {theirs} if isinstance(theirs, str) else set(theirs) if isinstance(theirs, list) else set()
            shared = sorted(ids & {t for t in theirs if isinstance(t, str)})
            if shared:
                problems.append(Problem(
                    settings.source, f"{NETWORK_KEY}.{key}",
                    f"{', '.join(shared)} {'is' if len(shared) == 1 else 'are'} also in {source}, a stack in "
                    f"{region}; a VPC, its subnets and security groups exist in one region only",
                    f"use the ids of this stack's VPC in {settings.aws_region} (one of the two files was copied "
                    "without updating them)"))
    return problems
