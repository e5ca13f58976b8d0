"""Required tags on every taggable AWS resource (cost, ownership, data classification)."""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from policy.base import PackPolicy, TypedResourcePolicy

REQUIRED_TAGS = ("service", "environment", "owner", "data-classification", "managed-by")

# AWS types this project declares (or will) that accept tags. Types without tags (aliases, policy
# attachments, automated-backup replication) are not listed.
TAGGABLE_TYPES = (
    "aws:rds/instance:Instance",
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/proxy:Proxy",
    "aws:kms/key:Key",
    "aws:cloudwatch/logGroup:LogGroup",
    "aws:cloudwatch/metricAlarm:MetricAlarm",
    "aws:sns/topic:Topic",
    "aws:iam/role:Role",
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:secretsmanager/secret:Secret",
    "aws:backup/plan:Plan",
    "aws:backup/vault:Vault",
    "aws:lambda/function:Function",
    "aws:sqs/queue:Queue",
    "aws:ec2/vpcEndpoint:VpcEndpoint",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
    "aws:cloudwatch/eventRule:EventRule",
    # the extraction pooler (components/service_pooler.py)
    "aws:ecs/cluster:Cluster",
    "aws:ecs/taskDefinition:TaskDefinition",
    "aws:ecs/service:Service",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener",
)


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    tags = args.props.get("tags") or {}
    required = args.get_config().get("requiredTags") or list(REQUIRED_TAGS)
    missing = [k for k in required if not str(tags.get(k) or "").strip()]
    if missing:
        report(f"missing tags: {', '.join(missing)}", None)


required_tags = TypedResourcePolicy(
    "required-tags",
    "Taggable AWS resources carry service, environment, owner, data-classification and managed-by tags.",
    types=TAGGABLE_TYPES, validate=_required_tags, severity=Severity.LOW,
    controls=["RDS.30", "RDS.33"],
    config={"requiredTags": {"type": "array", "items": {"type": "string"}, "default": list(REQUIRED_TAGS)}},
    remediation="Pass tags=settings.base_tags() to the component (it gives every child the same tags).",
)

POLICIES: list[PackPolicy] = [required_tags]
