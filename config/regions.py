"""AWS regions, and the rules a region stack must satisfy before anything is declared (spec 8.A, 8.B).

A region stack (`edumatrix-db:region: {primaryStack: ...}`) replicates another stack's instance into its own
`aws:region`. What can be known from the stack files alone is checked here, statically: the region exists,
the primary stack exists and holds an instance, the replica is in another region of the same partition,
and at most one region stack per primary is promoted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.errors import ConfigError, Problem
from config.settings import NAMESPACE, PrimaryReference, StackSettings

# Regions where RDS for PostgreSQL runs (commercial, GovCloud and China partitions), as of late 2025.
AWS_REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1",
    "ap-east-1", "ap-east-2", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
    "ap-southeast-7", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-south-2",
    "eu-north-1",
    "il-central-1", "me-south-1", "me-central-1", "mx-central-1", "sa-east-1",
    "us-gov-east-1", "us-gov-west-1",
    "cn-north-1", "cn-northwest-1",
)

REGION_KEY = f"{NAMESPACE}:region"
PRIMARY_KEY = f"{REGION_KEY}.primaryStack"
PROMOTE_KEY = f"{REGION_KEY}.promote"

StackLoader = Callable[[str, Path], StackSettings]
ConfigReader = Callable[[str, Path], tuple[dict[str, Any], str]]


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to: replication never crosses partitions."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def region_problems(settings: StackSettings) -> list[Problem]:
    """`aws:region` must name a real region (every AWS stack)."""
    region = settings.aws_region
    if region is None or region in AWS_REGIONS:
        return []
    hint = difflib.get_close_matches(region, AWS_REGIONS, n=1)
    return [Problem(settings.source, "aws:region", f"{region!r} is not an AWS region",
                    (f"did you mean {hint[0]!r}? " if hint else "") + "regions: " + ", ".join(AWS_REGIONS))]


def resolve_region_stack(
    settings: StackSettings, stacks_dir: Path, *, load: StackLoader, read: ConfigReader, known: list[str],
) -> tuple[StackSettings, list[Problem]]:
    """For a region stack: check it against its primary's stack file and attach the PrimaryReference.

    Returns the settings (with `primary` filled when the primary could be read) and the problems found.
    """
    region = settings.region
    if region is None:
        return settings, []
    src, problems = settings.source, []
    if settings.is_local:
        return settings, [Problem(src, REGION_KEY, "a local stack cannot be a region stack",
                                  "remove the key, or set edumatrix-db:environment and aws:region")]
    if "instance" in settings.model_fields_set:
        problems.append(Problem(
            src, f"{NAMESPACE}:instance", "a region stack does not declare an instance of its own",
            f"remove the key: the replica runs with the instance settings of {region.primary_stack!r} "
            f"(override the class with {REGION_KEY}.instanceClass)"))
    if settings.replicas.count:
        problems.append(Problem(
            src, f"{NAMESPACE}:replicas.count", "same-region replicas of a region stack are not supported",
            "remove the key; declare read replicas on the primary stack"))
    if region.primary_stack == settings.stack:
        problems.append(Problem(src, PRIMARY_KEY, "a stack cannot replicate itself",
                                "name the stack that holds the primary instance, e.g. prod"))
        return settings, problems
    if region.primary_stack not in known:
        primaries = [name for name in known if name != settings.stack and not _cannot_be_primary(name, stacks_dir,
                                                                                              read)]
        hint = difflib.get_close_matches(region.primary_stack, primaries, n=1)
        problems.append(Problem(
            src, PRIMARY_KEY, f"no stack named {region.primary_stack!r} (no stacks/Pulumi.{region.primary_stack}.yaml)",
            (f"did you mean {hint[0]!r}? " if hint else "") + f"stacks with a primary instance: "
            f"{', '.join(primaries) or 'none'}"))
        return settings, problems
    try:
        primary = load(region.primary_stack, stacks_dir)
    except ConfigError as error:
        first = error.problems[0].render() if error.problems else ""
        problems.append(Problem(src, PRIMARY_KEY, f"the primary stack {region.primary_stack!r} does not validate",
                                f"fix it first: {first}"))
        return settings, problems
    if primary.region is not None:
        problems.append(Problem(
            src, PRIMARY_KEY, f"{region.primary_stack!r} is itself a region stack",
            f"name the stack that holds the primary instance ({primary.region.primary_stack!r}); chained "
            "replicas are not supported"))
        return settings, problems
    if primary.is_local or not primary.aws_region:
        problems.append(Problem(src, PRIMARY_KEY, f"{region.primary_stack!r} is a local stack: nothing to replicate",
                                "name an AWS stack, e.g. prod"))
        return settings, problems
    if settings.aws_region == primary.aws_region:
        problems.append(Problem(
            src, "aws:region", f"the replica would be in its primary's own region ({primary.aws_region})",
            f"use another region; for read replicas in {primary.aws_region} set {NAMESPACE}:replicas.count in "
            f"{primary.source}"))
    elif settings.aws_region and partition_of(settings.aws_region) != partition_of(primary.aws_region):
        problems.append(Problem(
            src, "aws:region", f"{settings.aws_region} is in partition {partition_of(settings.aws_region)}, the "
            f"primary's {primary.aws_region} in {partition_of(primary.aws_region)}; RDS cannot replicate across",
            "choose a region in the primary's partition"))
    if settings.environment is not primary.environment:
        problems.append(Problem(
            src, f"{NAMESPACE}:environment", f"{settings.environment.value!r} differs from the primary's "
            f"{primary.environment.value!r}", f"set {NAMESPACE}:environment: {primary.environment.value}"))
    if region.promote:
        for other in known:
            if other == settings.stack:
                continue
            section = _region_section(other, stacks_dir, read)
            if section.get("primaryStack") == region.primary_stack and section.get("promote") in (True, "true"):
                problems.append(Problem(
                    src, PROMOTE_KEY, f"stack {other!r} is already the promoted primary of "
                    f"{region.primary_stack!r}; at most one region is primary",
                    f"set {PROMOTE_KEY}: false here, or first demote {other!r} (see docs/failover-runbook.md)"))
    reference = PrimaryReference(stack=primary.stack, region=primary.aws_region, instance=primary.instance)
    return settings.model_copy(update={"primary": reference}), problems


def _region_section(name: str, stacks_dir: Path, read: ConfigReader) -> dict[str, Any]:
    """A sibling stack's raw `edumatrix-db:region` section ({} if none or unreadable)."""
    try:
        config, _ = read(name, stacks_dir)
    except ConfigError:
        return {}
    section = config.get(REGION_KEY)
    return section if isinstance(section, dict) else {}


def _cannot_be_primary(name: str, stacks_dir: Path, read: ConfigReader) -> bool:
    try:
        config, _ = read(name, stacks_dir)
    except ConfigError:
        return False
    return REGION_KEY in config or config.get(f"{NAMESPACE}:environment") == "local"


SECRETS_KEY = f"{NAMESPACE}:secrets.replicaRegions"


def secret_replica_problems(settings: StackSettings, stacks_dir: Path, *, read: ConfigReader,
                            known: list[str]) -> list[Problem]:
    """A primary's `secrets.replicaRegions` must list the region of every region stack naming it.

    The primary stack copies its credentials (master and service secrets) into those regions under keys of its
    own there, so it needs them before any region stack is deployed; the list is written in its stack file (a
    review shows it) and checked here against the region stack files, so a region stack cannot exist without its
    copies. A region listed before its stack file exists is fine (deploy order: the primary first). A sibling file
    that cannot be read, or names no valid region of the primary's partition, is left to its own check.
    """
    src, configured = settings.source, settings.secrets.replica_regions
    if settings.is_region_stack:
        if configured:
            return [Problem(src, SECRETS_KEY, "a region stack's credentials are its primary's copies",
                            f"remove the key; list this region in the secrets.replicaRegions of "
                            f"{settings.region.primary_stack if settings.region else 'the primary'}")]
        return []
    if settings.is_local:
        return []
    named: dict[str, str] = {}
    for other in known:
        if other == settings.stack or _region_section(other, stacks_dir, read).get("primaryStack") != settings.stack:
            continue
        try:
            config, _ = read(other, stacks_dir)
        except ConfigError:
            continue
        region = config.get("aws:region")
        if isinstance(region, str) and region in AWS_REGIONS and region != settings.aws_region and \
                settings.aws_region and partition_of(region) == partition_of(settings.aws_region):
            named[region] = other
    problems: list[Problem] = []
    if named and settings.instance.master_password == "rds-managed":
        problems.append(Problem(
            src, f"{NAMESPACE}:instance.masterPassword",
            f"{', '.join(sorted(named.values()))} replicate{'s' if len(named) == 1 else ''} this instance, and RDS "
            "cannot create a replica of an instance whose master password it manages (ManageMasterUserPassword)",
            "remove masterPassword (default platform)"))
    for region in sorted(set(named) - set(configured)):
        problems.append(Problem(
            src, SECRETS_KEY, f"stacks/Pulumi.{named[region]}.yaml replicates this stack into {region}, which is not "
            "listed: after a promotion there, no credentials would be found in that region",
            f"add {region} to {SECRETS_KEY} and `pulumi up` this stack before {named[region]}"))
    for region in configured:
        if region not in AWS_REGIONS:
            hint = difflib.get_close_matches(region, AWS_REGIONS, n=1)
            problems.append(Problem(src, SECRETS_KEY, f"{region!r} is not an AWS region",
                                    f"did you mean {hint[0]!r}?" if hint else "use a region name, e.g. eu-west-1"))
        elif region == settings.aws_region:
            problems.append(Problem(src, SECRETS_KEY, f"{region} is this stack's own region: the secrets are there",
                                    f"remove {region}"))
        elif settings.aws_region and partition_of(region) != partition_of(settings.aws_region):
            problems.append(Problem(src, SECRETS_KEY, f"Secrets Manager does not replicate from "
                                    f"{settings.aws_region} into {region} (another partition)", f"remove {region}"))
    return problems
