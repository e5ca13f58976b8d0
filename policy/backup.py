"""AWS Backup plan coverage of RDS instances (Security Hub RDS.26).

The project does not declare backup plans yet. Until it does, uncovered instances are reported as
advisory; once a stack declares any backup plan or selection, coverage becomes mandatory: every primary
instance must be selected by a plan (by ARN, wildcard, or tags).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, ReportViolation, Severity, StackValidationArgs

from policy.base import (
    BACKUP_PLAN,
    BACKUP_SELECTION,
    INSTANCE,
    PackPolicy,
    StackPolicy,
    is_postgres_instance,
    is_replica,
    of_type,
)


def _selects(selection: Mapping[str, Any], instance: PolicyResource) -> bool:
    arn = str(instance.props.get("arn") or "")
    if any(fnmatch.fnmatchcase(arn, str(pattern)) for pattern in selection.get("resources") or []):
        return True
    tags = instance.props.get("tags") or {}
    for condition in selection.get("selectionTags") or []:
        if condition.get("type", "STRINGEQUALS") == "STRINGEQUALS" and \
                tags.get(condition.get("key")) == condition.get("value"):
            return True
    return False


def _primaries(args: StackValidationArgs) -> list[PolicyResource]:
    return [r for r in of_type(args.resources, INSTANCE)
            if is_postgres_instance(r.props) and not is_replica(r.props)]


def _uncovered(args: StackValidationArgs, report: ReportViolation) -> None:
    selections = of_type(args.resources, BACKUP_SELECTION)
    for inst in _primaries(args):
        if not any(_selects(s.props, inst) for s in selections):
            report(f"instance {inst.props.get('identifier', inst.name)} is not selected by any AWS Backup plan",
                   inst.urn)


def _advisory(args: StackValidationArgs, report: ReportViolation) -> None:
    if of_type(args.resources, BACKUP_PLAN, BACKUP_SELECTION):
        args.not_applicable("the stack declares backup plans: rds-backup-plan-coverage applies")
        return
    _uncovered(args, report)


def _mandatory(args: StackValidationArgs, report: ReportViolation) -> None:
    if not of_type(args.resources, BACKUP_PLAN, BACKUP_SELECTION):
        args.not_applicable("no backup plan declared yet: rds-backup-plan-declared reports (advisory)")
        return
    _uncovered(args, report)


_REMEDIATION = ("Declare an aws.backup.Plan (daily at 00:00 UTC, 30 days, copy to the DR region's vault) and an "
                "aws.backup.Selection naming the instance ARN.")

backup_plan_declared = StackPolicy(
    "rds-backup-plan-declared",
    "Advisory until the project declares AWS Backup plans: instances not covered by one are listed.",
    types=[INSTANCE, BACKUP_PLAN, BACKUP_SELECTION], validate=_advisory, severity=Severity.MEDIUM,
    controls=["RDS.26"], remediation=_REMEDIATION, enforcement_level=EnforcementLevel.ADVISORY,
)

backup_plan_coverage = StackPolicy(
    "rds-backup-plan-coverage",
    "Once a stack declares AWS Backup plans, every primary instance is selected by one.",
    types=[INSTANCE, BACKUP_PLAN, BACKUP_SELECTION], validate=_mandatory, severity=Severity.HIGH,
    controls=["RDS.26"], remediation=_REMEDIATION,
)

POLICIES: list[PackPolicy] = [backup_plan_declared, backup_plan_coverage]
