"""Service extraction (spec 3.B; config/extraction.py, components/extraction.py): the target is at least as secure
as the shared instance, replication is watched and uses the platform's replication login, and a phase without
replication leaves no publication or subscription behind.

A target is an RDS instance tagged `extraction-of: <service>`, its phase in `extraction-phase` (on the instance
only). The source is the stack's primary instance that is neither a replica nor a target. Logical replication
on the source is `logical-replication-enabled` (policy/replication.py); no service role with REPLICATION is
`service-role-attributes` and, for RDS's `rds_replication` membership, `service-grants-confined`
(policy/access.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, Severity, StackValidationArgs

from config.access import PlatformRoleKind, platform_role_name
from config.extraction import FACTS, phase_named, publication_name, subscription_name
from policy.base import (
    INSTANCE,
    PARAMETER_GROUP,
    PackPolicy,
    StackPolicy,
    flag,
    is_aws_managed_key,
    is_replica,
    of_type,
    parameters,
    setting,
    tls_rank,
)

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SUBSCRIPTION = "postgresql:index/subscription:Subscription"
PUBLICATION = "pulumi-python:dynamic/edumatrix:SchemaPublication"
SLOT_LAG_METRIC = "OldestReplicationSlotLag"
TARGET_TAG, PHASE_TAG = "extraction-of", "extraction-phase"
SUBSCRIPTION_SSLMODES = ("require", "verify-ca", "verify-full")


def _tags(res: PolicyResource) -> Mapping[str, Any]:
    tags = res.props.get("tags")
    return tags if isinstance(tags, Mapping) else {}


def targets(resources: list[PolicyResource]) -> list[PolicyResource]:
    return [r for r in of_type(resources, INSTANCE) if _tags(r).get(TARGET_TAG)]


def sources(resources: list[PolicyResource]) -> list[PolicyResource]:
    return [r for r in of_type(resources, INSTANCE) if not is_replica(r.props) and not _tags(r).get(TARGET_TAG)]


def _tls_floor(resources: list[PolicyResource], instance: PolicyResource) -> tuple[str, str]:
    """(ssl_min_protocol_version, rds.force_ssl) of the instance's parameter group, "" when unset."""
    name = instance.props.get("parameterGroupName")
    for group in of_type(resources, PARAMETER_GROUP):
        if group.props.get("name") == name:
            params = parameters(group.props)
            return params.get("ssl_min_protocol_version", ""), params.get("rds.force_ssl", "")
    return "", ""


def _weaker(target: PolicyResource, source: PolicyResource, resources: list[PolicyResource],
            single_az: Mapping[str, Any]) -> list[str]:
    t, s = target.props, source.props
    out = []
    if not flag(t, "storageEncrypted"):
        out.append("storage is not encrypted")
    key = t.get("kmsKeyId")
    if not key or is_aws_managed_key(key):
        out.append("storage is not encrypted with a customer-managed key")
    elif key == s.get("kmsKeyId"):
        out.append("it shares the shared instance's KMS key instead of a key of its own")
    if t.get("publiclyAccessible") is True:
        out.append("it is publicly accessible")
    for name, what in (("deletionProtection", "deletion protection"), ("iamDatabaseAuthenticationEnabled",
                                                                         "IAM database authentication"),
                       ("performanceInsightsEnabled", "Performance Insights")):
        if flag(s, name) and not flag(t, name):
            out.append(f"{what} is off while the shared instance has it")
    if flag(s, "multiAz") and not flag(t, "multiAz") and t.get("identifier") not in single_az:
        out.append("it runs in one availability zone while the shared instance is Multi-AZ (the stack file may say "
                   "why: singleAzReason)")
    if int(t.get("backupRetentionPeriod") or 0) < int(s.get("backupRetentionPeriod") or 0):
        out.append(f"backups are kept {t.get('backupRetentionPeriod') or 0} days, the shared instance's "
                   f"{s.get('backupRetentionPeriod')}")
    s_interval, t_interval = int(s.get("monitoringInterval") or 0), int(t.get("monitoringInterval") or 0)
    if s_interval and (not t_interval or t_interval > s_interval):
        out.append(f"enhanced monitoring every {t_interval or 'never'} s, the shared instance's every {s_interval} s")
    missing_logs = set(s.get("enabledCloudwatchLogsExports") or []) - set(t.get("enabledCloudwatchLogsExports") or [])
    if missing_logs:
        out.append(f"it does not export the logs {', '.join(sorted(missing_logs))}")
    (s_tls, s_force), (t_tls, t_force) = _tls_floor(resources, source), _tls_floor(resources, target)
    if tls_rank(t_tls) < tls_rank(s_tls):
        out.append(f"its TLS floor is {t_tls or 'unset'}, the shared instance's {s_tls}")
    if s_force == "1" and t_force != "1":
        out.append("rds.force_ssl is not 1 while the shared instance forces TLS")
    return out


def _found(args: StackValidationArgs, find: Callable[[list[PolicyResource]], list[PolicyResource]],
           idle: str) -> tuple[list[PolicyResource], list[PolicyResource]] | None:
    """(every resource, what `find` picks), or None after telling the gate the policy had nothing to check."""
    resources = list(args.resources)
    found = find(resources)
    if not found:
        args.not_applicable(idle)
        return None
    return resources, found


def _target_as_secure(args: StackValidationArgs, report: ReportViolation) -> None:
    picked = _found(args, targets, "no extraction target in this stack")
    if picked is None:
        return
    resources, found = picked
    shared = sources(resources)
    if not shared:
        args.not_applicable("no shared instance to compare the extraction targets with")
        return
    single_az = setting(args, "singleAzTargets", {}) or {}
    for target in found:
        for problem in _weaker(target, shared[0], resources, single_az):
            report(f"extraction target {target.props.get('identifier')} is less secure than the shared instance: "
                   f"{problem}", target.urn)


target_as_secure = StackPolicy(
    "extraction-target-as-secure",
    "An extraction target is at least as secure as the shared instance: encrypted with a CMK of its own, not "
    "public, the same TLS floor, deletion protection, IAM auth, Multi-AZ (unless the stack file says why), "
    "backups kept as long, monitoring and log exports.",
    types=[INSTANCE, PARAMETER_GROUP], validate=_target_as_secure, severity=Severity.HIGH,
    controls=["spec 3.B new instance", "spec 4.A encryption", "RDS.3", "RDS.5"],
    config={"singleAzTargets": {"type": "object", "default": {},
                                "description": "extraction targets allowed one zone: identifier -> the stack "
                                               "file's reason (edumatrix-db policy-config fills it)"}},
    remediation="Declare the target through components/extraction.py (TargetInstance: the shared instance's own "
                "component and settings); change only instanceClass and storage in extractions.<service>.instance.",
)


def _replicating(resources: list[PolicyResource]) -> list[PolicyResource]:
    return of_type(resources, SUBSCRIPTION, PUBLICATION)


def _slot_lag_alarm(args: StackValidationArgs, report: ReportViolation) -> None:
    picked = _found(args, _replicating, "no logical replication declared in this stack")
    if picked is None:
        return
    resources, links = picked
    watched = {str((a.props.get("dimensions") or {}).get("DBInstanceIdentifier"))
               for a in of_type(resources, METRIC_ALARM)
               if a.props.get("metricName") == SLOT_LAG_METRIC and a.props.get("alarmActions")}
    for source in sources(resources):
        identifier = str(source.props.get("identifier"))
        if identifier not in watched:
            report(f"{len(links)} replication resource(s) create a slot on {identifier}, but no alarm with actions "
                   f"watches its {SLOT_LAG_METRIC}: a stalled subscriber would keep WAL until the disk fills",
                   source.urn)


slot_lag_alarm = StackPolicy(
    "extraction-slot-lag-alarm",
    "A stack replicating a service logically has an OldestReplicationSlotLag alarm (with actions) on the source.",
    types=[SUBSCRIPTION, PUBLICATION, METRIC_ALARM, INSTANCE], validate=_slot_lag_alarm, severity=Severity.HIGH,
    controls=["spec 3.B monitoring", "spec 8.A lag alerts"],
    remediation="Keep the replication-slot-lag alarm of components/database_alarms.py (alarms.replicationSlotLagGb) "
                "paging the stack's alarm topic.",
)


def _replication_left(args: StackValidationArgs, report: ReportViolation) -> None:
    picked = _found(args, targets, "no extraction target in this stack")
    if picked is None:
        return
    resources, found = picked
    subscriptions = {str(r.props.get("name")): r for r in of_type(resources, SUBSCRIPTION)}
    publications = {str(r.props.get("publication")): r for r in of_type(resources, PUBLICATION)}
    for target in found:
        service, phase = str(_tags(target).get(TARGET_TAG)), phase_named(str(_tags(target).get(PHASE_TAG)))
        if phase is None:
            report(f"extraction target {target.props.get('identifier')} has no valid {PHASE_TAG} tag", target.urn)
            continue
        if FACTS[phase].replication:
            continue
        for leftover, kind in ((subscriptions.get(subscription_name(service)), "subscription"),
                               (publications.get(publication_name(service)), "publication")):
            if leftover is not None:
                report(f"the extraction of {service} is in phase {phase.value}, which has no replication, but its "
                       f"{kind} is still declared (its slot would hold WAL on the shared instance)", leftover.urn)


no_replication_left = StackPolicy(
    "extraction-no-replication-left",
    "An extraction in a phase without replication (complete, cleanup, rollback) leaves no subscription or "
    "publication (and so no slot) behind.",
    types=[INSTANCE, SUBSCRIPTION, PUBLICATION], validate=_replication_left, severity=Severity.HIGH,
    controls=["spec 3.B cleanup", "spec 7.B rollback"],
    remediation="Declare extractions through components/extraction.py, which declares replication only in the "
                "phases config/extraction.py FACTS gives it.",
)


def _replication_login(args: StackValidationArgs, report: ReportViolation) -> None:
    picked = _found(args, lambda resources: of_type(resources, SUBSCRIPTION), "no subscription in this stack")
    if picked is None:
        return
    _, subscriptions = picked
    login = platform_role_name(PlatformRoleKind.EXTRACTION_REPLICATOR)
    for sub in subscriptions:
        fields = dict(part.split("=", 1) for part in str(sub.props.get("conninfo") or "").split() if "=" in part)
        if fields.get("user") != login:
            report(f"subscription {sub.props.get('name')} connects as {fields.get('user') or 'nobody'}, not the "
                   f"platform's replication login {login}: a login that may decode the whole database is a "
                   "platform secret, never a service's", sub.urn)
        if fields.get("sslmode") not in SUBSCRIPTION_SSLMODES:
            report(f"subscription {sub.props.get('name')} does not require TLS (sslmode "
                   f"{fields.get('sslmode') or 'unset'})", sub.urn)


replication_login = StackPolicy(
    "extraction-replication-login",
    "Subscriptions connect to the source as the platform's extraction replication login, over TLS.",
    types=[SUBSCRIPTION], validate=_replication_login, severity=Severity.CRITICAL,
    controls=["spec 4.A least privilege", "spec 3.B logical replication"],
    remediation="Use components/extraction.py: it builds the conninfo from the platform role "
                "edumatrix_extraction_replicator (config/access.py) with sslmode=require.",
)

POLICIES: list[PackPolicy] = [target_as_secure, slot_lag_alarm, no_replication_left, replication_login]
