"""GDPR (spec 4.A compliance.gdpr): the erasure ledger outside the instance (components/erasure_ledger.py) and
its presence wherever a service holds personal data (docs/gdpr.md).

The mocks accept any DynamoDB table; what AWS or the ledger's purpose requires is checked here, with sources:
- without `serverSideEncryption.kmsKeyArn` DynamoDB encrypts with an AWS-owned key ("If enabled is false then
  server-side encryption is set to AWS-owned key ... if enabled is true and no kms_key_arn is specified then
  server-side encryption is set to the default KMS-managed key", pulumi-aws `TableServerSideEncryptionArgs`);
- a table with replicas has its streams turned on by AWS; without `streamEnabled: true` every update tries to
  turn them off and fails (hashicorp/terraform-provider-aws#43625); global tables need `NEW_AND_OLD_IMAGES`;
- a replica's key must be a key of the replica's region (a KMS key is regional).
"""

from __future__ import annotations

import json
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from policy.base import PackPolicy, StackPolicy, TypedResourcePolicy, is_aws_managed_key, of_type

TABLE = "aws:dynamodb/table:Table"
RESOURCE_POLICY = "aws:dynamodb/resourcePolicy:ResourcePolicy"
# "The maximum size supported for a resource-based policy document is 20 KB" (DynamoDB developer guide,
# "Resource-based policy considerations").
MAX_RESOURCE_POLICY_BYTES = 20 * 1024
PG_ROLE = "postgresql:index/role:Role"
GDPR_LOGIN_SUFFIX = "_gdpr"
LEDGER_PURPOSE = "gdpr-erasure-ledger"


def _region_of(arn: Any) -> str | None:
    parts = str(arn or "").split(":")
    return parts[3] if len(parts) > 4 and parts[0] == "arn" else None


def _table_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    sse = props.get("serverSideEncryption") or {}
    key = sse.get("kmsKeyArn")
    if not sse.get("enabled") or not key or is_aws_managed_key(key):
        report("the table is not encrypted with a customer-managed key (serverSideEncryption.kmsKeyArn)", None)
    if not (props.get("pointInTimeRecovery") or {}).get("enabled"):
        report("point-in-time recovery is off (pointInTimeRecovery.enabled)", None)
    if props.get("deletionProtectionEnabled") is not True:
        report("deletion protection is off (deletionProtectionEnabled)", None)
    replicas = props.get("replicas") or []
    if replicas and (props.get("streamEnabled") is not True or props.get("streamViewType") != "NEW_AND_OLD_IMAGES"):
        report("a table with replicas needs streamEnabled: true and streamViewType NEW_AND_OLD_IMAGES (AWS turns "
               "the streams on; hashicorp/terraform-provider-aws#43625)", None)
    for replica in replicas:
        region, key = replica.get("regionName"), replica.get("kmsKeyArn")
        if not key or is_aws_managed_key(key):
            report(f"the replica in {region} has no customer-managed key (kmsKeyArn)", None)
        elif _region_of(key) not in (None, region):
            report(f"the replica in {region} names a key of {_region_of(key)}: KMS keys are regional", None)
        if replica.get("pointInTimeRecovery") is not True or replica.get("deletionProtectionEnabled") is not True:
            report(f"the replica in {region} lacks point-in-time recovery or deletion protection", None)


dynamodb_table_protected = TypedResourcePolicy(
    "dynamodb-table-protected",
    "DynamoDB tables (the GDPR erasure ledger) are encrypted with a CMK, keep point-in-time recovery, are "
    "deletion-protected, and their replicas are too, under keys of their own regions.",
    types=[TABLE], validate=_table_protected, severity=Severity.HIGH,
    controls=["spec 4.A compliance.gdpr", "spec 4.A atRest", "DynamoDB.2", "CKV_AWS_119", "CKV_AWS_28"],
    remediation="Declare the table through components/erasure_ledger.py (ErasureLedger), which sets all of it.",
)


def _ledger_declared(args: StackValidationArgs, report: ReportViolation) -> None:
    logins = [r for r in of_type(args.resources, PG_ROLE)
              if str(r.props.get("name") or "").endswith(GDPR_LOGIN_SUFFIX) and r.props.get("login") is True]
    if not logins:
        args.not_applicable("no service holds personal data in this stack (no <service>_gdpr login)")
        return
    if not any(r.resource_type.startswith("aws:") for r in args.resources):
        args.not_applicable("a stack without AWS resources (local): the ledger is a file (docs/gdpr.md)")
        return
    ledgers = [t for t in of_type(args.resources, TABLE)
               if (t.props.get("tags") or {}).get("purpose") == LEDGER_PURPOSE]
    if not ledgers:
        names = ", ".join(sorted(str(r.props.get("name")) for r in logins))
        report(f"services hold personal data ({names}) but no erasure ledger is declared: a restore would "
               "bring erased people back", None)


erasure_ledger_declared = StackPolicy(
    "gdpr-erasure-ledger-declared",
    "A stack whose services hold personal data declares the erasure ledger outside the instance, so that a "
    "restore can replay erasures (spec 4.A right to be forgotten; backups keep 30 days).",
    types=[PG_ROLE, TABLE], validate=_ledger_declared, severity=Severity.HIGH,
    controls=["spec 4.A compliance.gdpr"],
    remediation="components/platform.py declares ErasureLedger when the catalog lists personal tables; keep it.",
)

def _resource_policy_scoped(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    arn = str(props.get("resourceArn") or "")
    text = props.get("policy")
    if not isinstance(text, str):
        return  # unknown until the table exists (a first preview)
    if len(text.encode()) > MAX_RESOURCE_POLICY_BYTES:
        report(f"the policy is {len(text.encode())} bytes: DynamoDB takes at most 20 KB", None)
    try:
        statements = json.loads(text).get("Statement") or []
    except (ValueError, AttributeError):
        report("the policy is not a JSON policy document", None)
        return
    for statement in statements if isinstance(statements, list) else [statements]:
        resources = statement.get("Resource")
        for resource in resources if isinstance(resources, list) else [resources]:
            if resource != arn and not str(resource).startswith(f"{arn}/"):
                report(f"statement {statement.get('Sid', '?')} names {resource}: a table's resource policy may "
                       f"only name the table ({arn}) and its indexes and streams", None)


dynamodb_resource_policy_scoped = TypedResourcePolicy(
    "dynamodb-resource-policy-scoped",
    "A DynamoDB resource policy names only its own table (and its indexes and streams) and fits DynamoDB's 20 KB.",
    types=[RESOURCE_POLICY], validate=_resource_policy_scoped, severity=Severity.MEDIUM,
    controls=["DynamoDB developer guide: resource-based policy considerations"],
    remediation="Let components/erasure_ledger.py write the ledger's append-only policy.",
)

POLICIES: list[PackPolicy] = [dynamodb_table_protected, erasure_ledger_declared, dynamodb_resource_policy_scoped]
