"""AWS preflight, continued: the API constraints of the resource types around the instance (KMS aliases,
EventBridge targets and their Lambda permissions, Route 53, CloudWatch dashboards and metric filters, Secrets
Manager values and the rotation application, SNS topic policies and subscriptions) and of the PostgreSQL
extensions RDS offers. The mocks accept any argument combination; these are the combinations AWS refuses at
`pulumi up`, or accepts and then silently does nothing with. Each description names its source (the error text,
the API reference or the SDK docstring); docs/policy-parity.md, "AWS preflight", lists them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import PolicyResource, ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.rds_extensions import PRELOADED_EXTENSIONS, supported_extensions
from policy.base import (
    INSTANCE,
    PARAMETER_GROUP,
    REGION_CONFIG,
    SECRET,
    PackPolicy,
    StackPolicy,
    TypedResourcePolicy,
    arn_region,
    csv_values,
    is_replica,
    of_type,
    parameters,
    resource_region,
    validation_region,
)

KMS_ALIAS = "aws:kms/alias:Alias"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
ZONE = "aws:route53/zone:Zone"
RECORD = "aws:route53/record:Record"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
METRIC_FILTER = "aws:cloudwatch/logMetricFilter:LogMetricFilter"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
SECRET_ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
SAR_STACK = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
PG_EXTENSION = "postgresql:index/extension:Extension"


def _stack_region(res: PolicyResource, default: str | None) -> str | None:
    return resource_region(res.props, res.provider.props if res.provider else None, default)


def _json(text: Any) -> Any:
    try:
        return json.loads(str(text))
    except ValueError:
        return None


# -- KMS aliases -----------------------------------------------------------------------------------------

_ALIAS = re.compile(r"^alias/[A-Za-z0-9/_-]+$")


def _alias_name(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = args.props.get("name")
    if name is None:
        return  # name_prefix: the provider generates a valid name
    name = str(name)
    if not _ALIAS.match(name) or len(name) > 256:
        report(f"alias {name!r}: KMS takes \"alias/\" followed by letters, digits, '/', '_' and '-', at most 256 "
               "characters (CreateAlias AliasName)", None)
    if name.startswith("alias/aws/"):
        report(f"alias {name!r}: \"The alias/aws/ prefix is reserved for AWS managed keys\" (CreateAlias)", None)
    key = args.props.get("targetKeyId")
    key_region, region = arn_region(key), validation_region(args)
    if key_region and region and key_region != region:
        report(f"the alias is in {region}, its key in {key_region}: an alias and its key must be in the same "
               "Region (CreateAlias TargetKeyId)", None)


kms_alias_name = TypedResourcePolicy(
    "aws-api-kms-alias-name",
    "KMS alias names start with alias/, not alias/aws/, use [A-Za-z0-9/_-] (at most 256), and name a key of their "
    "Region (AWS KMS API reference, CreateAlias: \"The alias/aws/ prefix is reserved for AWS managed keys\"; SDK "
    "kms/alias.py: \"The name must start with the word alias followed by a forward slash\").",
    types=[KMS_ALIAS], validate=_alias_name, severity=Severity.HIGH, controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="components/keys.py names aliases alias/<stack>-<purpose>; keep that form.",
)


def _alias_unique(args: StackValidationArgs, report: ReportViolation) -> None:
    default = args.get_config().get("defaultRegion")
    seen: dict[tuple[str | None, str], str] = {}
    for alias in of_type(args.resources, KMS_ALIAS):
        name = alias.props.get("name")
        if not name:
            continue
        key = (_stack_region(alias, default), str(name))
        if key in seen:
            report(f"{name} is declared twice in {key[0]} (also by {seen[key]}): \"AlreadyExistsException: An alias "
                   "with the name ... already exists\"", alias.urn)
        seen.setdefault(key, alias.name)


kms_alias_unique = StackPolicy(
    "aws-api-kms-alias-unique",
    "An alias name is used once per Region (KMS CreateAlias: AlreadyExistsException).",
    types=[KMS_ALIAS], validate=_alias_unique, severity=Severity.HIGH, controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="Give each PlatformKey of a region a distinct purpose.",
)


# -- EventBridge targets and the Lambda permissions they need --------------------------------------------

_PREDEFINED_PLACEHOLDERS = {"aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time",
                            "aws.events.event", "aws.events.event.json"}
_PLACEHOLDER = re.compile(r"<([^<>\s\"]+)>")


def _target_input(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    given = [k for k in ("input", "inputPath", "inputTransformer") if props.get(k)]
    if len(given) > 1:
        report(f"{' and '.join(given)} are mutually exclusive (SDK cloudwatch/event_target.py: \"Conflicts with\")",
               None)
    if props.get("input") and _json(props["input"]) is None:
        report("input is not valid JSON: EventBridge passes \"Valid JSON text\" to the target", None)
    transformer = props.get("inputTransformer")
    if not isinstance(transformer, Mapping):
        return
    paths = dict(transformer.get("inputPaths") or {})
    if len(paths) > 100:
        report(f"inputPaths has {len(paths)} keys: EventBridge takes at most 100", None)
    template = str(transformer.get("inputTemplate") or "")
    known = set(paths) | _PREDEFINED_PLACEHOLDERS
    unknown = sorted(set(_PLACEHOLDER.findall(template)) - known)
    if unknown:
        report(f"inputTemplate uses {', '.join(unknown)}, defined neither in inputPaths nor by EventBridge "
               f"({', '.join(sorted(_PREDEFINED_PLACEHOLDERS))}): \"InvalidInputTemplate\"", None)


event_target_input = TypedResourcePolicy(
    "aws-api-event-target-input",
    "An EventBridge target sets at most one of input, inputPath, inputTransformer (SDK: \"Conflicts with\"); input "
    "is JSON; a transformer's template uses only its inputPaths (at most 100) and EventBridge's predefined "
    "placeholders (EventBridge user guide, \"Amazon EventBridge input transformation\").",
    types=[EVENT_TARGET], validate=_target_input, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/ops_runner.py passes one inputTransformer built by event_input_template().",
)


def _function_name(ref: Any) -> str:
    """A Lambda function's name from its name, partial or full ARN."""
    text = str(ref or "")
    return text.split(":function:", 1)[1].split(":", 1)[0] if ":function:" in text else text


def _is_rule_arn(value: Any) -> bool:
    return bool(re.match(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:rule/.+$", str(value or "")))


def _permission_source(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    action = str(props.get("action") or "")
    if not re.match(r"^(lambda:[A-Za-z]+|lambda:\*)$", action):
        report(f"action {action!r}: Lambda AddPermission takes lambda:<Action> (e.g. lambda:InvokeFunction)", None)
    principal = str(props.get("principal") or "")
    if principal.endswith(".amazonaws.com") and "sourceArn" not in props:
        report(f"{principal} may invoke the function on behalf of any resource of any account: set sourceArn (Lambda "
               "developer guide, \"Using resource-based policies for Lambda\": confused deputy)", None)
    source = props.get("sourceArn")
    if principal == "events.amazonaws.com" and source and not _is_rule_arn(source):
        report(f"sourceArn {source!r} is not an EventBridge rule ARN (arn:aws:events:REGION:ACCOUNT:rule/NAME): "
               "the permission never matches and every invocation fails (FailedInvocations)", None)


lambda_permission_source = TypedResourcePolicy(
    "aws-api-lambda-permission-source",
    "A Lambda permission names a lambda: action and, for a service principal, the sourceArn that may invoke; for "
    "events.amazonaws.com that is a rule ARN (Lambda API AddPermission; EventBridge user guide, \"Using "
    "resource-based policies for Amazon EventBridge\", Lambda permissions).",
    types=[LAMBDA_PERMISSION], validate=_permission_source, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="Pass source_arn=rule.arn (components/ops_runner.py does).",
)


def _rules_by_ref(resources: list[PolicyResource]) -> dict[str, PolicyResource]:
    return {str(r.props[f]): r for r in of_type(resources, EVENT_RULE) for f in ("name", "arn") if r.props.get(f)}


def _lambda_targets_permitted(args: StackValidationArgs, report: ReportViolation) -> None:
    rules = _rules_by_ref(list(args.resources))
    permissions = [p.props for p in of_type(args.resources, LAMBDA_PERMISSION)
                   if p.props.get("principal") == "events.amazonaws.com"
                   and str(p.props.get("action")) in ("lambda:InvokeFunction", "lambda:*")]
    for target in of_type(args.resources, EVENT_TARGET):
        arn = str(target.props.get("arn") or "")
        if ":lambda:" not in arn or ":function:" not in arn:
            continue
        function = _function_name(arn)
        rule = rules.get(str(target.props.get("rule") or ""))
        rule_arn = rule.props.get("arn") if rule is not None else None
        allowed = [p for p in permissions if _function_name(p.get("function")) == function
                   and (rule_arn is None or p.get("sourceArn") == rule_arn)]
        if not allowed:
            which = f"rule {rule_arn}" if rule_arn else "its rule"
            report(f"the target invokes Lambda function {function}, but no lambda Permission lets "
                   f"events.amazonaws.com invoke it from {which}: EventBridge's invocations fail "
                   "(FailedInvocations) and nothing else reports it", target.urn)


event_target_lambda_permission = StackPolicy(
    "aws-api-event-target-lambda-permission",
    "Every EventBridge target that is a Lambda function has a lambda Permission for events.amazonaws.com whose "
    "sourceArn is the target's rule (EventBridge user guide, \"Using resource-based policies for Amazon "
    "EventBridge\": \"you must add permissions to the Lambda function's resource-based policy\").",
    types=[EVENT_TARGET, EVENT_RULE, LAMBDA_PERMISSION], validate=_lambda_targets_permitted, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    remediation="Declare aws.lambda_.Permission(principal='events.amazonaws.com', source_arn=rule.arn) and make "
                "the target depend on it.",
)


# -- Route 53 --------------------------------------------------------------------------------------------

# RFC 6761 / RFC 2606 / ICANN's .internal (2024): never delegated from the public root.
_PRIVATE_TLDS = ("internal", "local", "localhost", "test", "invalid", "example", "home.arpa")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _fqdn(name: Any) -> str:
    return str(name or "").rstrip(".").lower()


def _dns_name_problem(name: str) -> str | None:
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels if label != "*"):
        return f"{name!r} is not a DNS name (labels of 1-63 letters, digits, '-' or '_', at most 253 characters)"
    return None


def _zone(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    name = _fqdn(props.get("name"))
    private = bool(props.get("vpcs"))
    if private and props.get("delegationSetId"):
        report("delegationSetId with vpcs: \"delegation sets can only be used for public zones\" (SDK route53/zone.py)",
               None)
    if (problem := _dns_name_problem(name)) is not None:
        report(problem, None)
    if not private and (name in _PRIVATE_TLDS or name.endswith(tuple(f".{t}" for t in _PRIVATE_TLDS))):
        report(f"{name} is under a top-level domain nobody delegates: as a public zone (no vpcs) its names never "
               "resolve; make it a private zone associated with the VPC", None)


route53_zone = TypedResourcePolicy(
    "aws-api-route53-zone",
    "Hosted zones have DNS names; a zone under a never-delegated suffix (.internal, .local, ...) is private (has "
    "vpcs), and a private zone takes no delegation set (SDK route53/zone.py; Route 53 developer guide, \"Working "
    "with private hosted zones\").",
    types=[ZONE], validate=_zone, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/connection_layer.py declares its zone with the database VPC in vpcs.",
)

_ROUTING = ("cidrRoutingPolicy", "failoverRoutingPolicies", "geolocationRoutingPolicies",
            "geoproximityRoutingPolicy", "latencyRoutingPolicies", "multivalueAnswerRoutingPolicy",
            "weightedRoutingPolicies")
_RECORD_TYPES = {"A", "AAAA", "CAA", "CNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA", "SPF", "SRV",
                 "SSHFP", "SVCB", "TLSA", "TXT"}


def _record(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    kind = str(props.get("type") or "")
    if kind not in _RECORD_TYPES:
        report(f"type {kind!r} is not a Route 53 record type ({', '.join(sorted(_RECORD_TYPES))})", None)
    alias, ttl, records = props.get("aliases"), props.get("ttl"), props.get("records")
    if alias and (ttl is not None or records):
        report("aliases with ttl or records: \"Conflicts with ttl & records\" (SDK route53/record.py)", None)
    if not alias and (ttl is None or not records):
        report("a record that is not an alias needs ttl and records: Route 53 answers \"InvalidInput: Invalid request: "
               "Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or "
               "TrafficPolicyInstanceId]\"", None)
    if isinstance(ttl, int | float) and not 0 <= ttl <= 2147483647:
        report(f"ttl {ttl}: Route 53 takes 0 to 2147483647 seconds", None)
    if kind == "CNAME" and records and len(records) != 1:
        report(f"a CNAME has exactly one value, not {len(records)} (RFC 1034 3.6.2; Route 53 refuses the change "
               "batch)", None)
    routed = [k for k in _ROUTING if props.get(k)]
    if routed and not props.get("setIdentifier"):
        report(f"{routed[0]} needs setIdentifier (SDK route53/record.py: \"Required if using ...\")", None)
    if props.get("setIdentifier") and not routed:
        report("setIdentifier without a routing policy: Route 53 refuses a simple record with a SetIdentifier", None)


route53_record = TypedResourcePolicy(
    "aws-api-route53-record",
    "Route 53 records are an alias or ttl+records, never both; a CNAME has one value; routing policies come with "
    "a setIdentifier and only then (SDK route53/record.py; Route 53 API ChangeResourceRecordSets: \"Expected "
    "exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId]\").",
    types=[RECORD], validate=_record, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/connection_layer.py declares simple CNAMEs with a TTL and one target.",
)


def _records_in_zones(args: StackValidationArgs, report: ReportViolation) -> None:
    zones = {str(z.props.get(f)): _fqdn(z.props.get("name")) for z in of_type(args.resources, ZONE)
             for f in ("zoneId", "id") if z.props.get(f)}
    seen: dict[tuple[str, str, str, str], str] = {}
    for record in of_type(args.resources, RECORD):
        zone_id, name, kind = str(record.props.get("zoneId")), _fqdn(record.props.get("name")), record.props.get("type")
        zone = zones.get(zone_id)
        if zone is None:
            continue  # a zone of another stack
        if name != zone and not name.endswith(f".{zone}"):
            report(f"\"InvalidChangeBatch: RRSet with DNS name {name}. is not permitted in zone {zone}.\"", record.urn)
        elif name == zone and kind == "CNAME":
            report(f"\"InvalidChangeBatch: RRSet of type CNAME with DNS name {name}. is not permitted at apex in zone "
                   f"{zone}.\"", record.urn)
        key = (zone_id, name, str(kind), str(record.props.get("setIdentifier") or ""))
        if key in seen:
            report(f"{kind} {name} is declared twice in {zone} (also by {seen[key]}): \"Tried to create resource "
                   "record set ... but it already exists\"", record.urn)
        seen.setdefault(key, record.name)


route53_record_zone = StackPolicy(
    "aws-api-route53-record-zone",
    "Every record's name lies in its zone, no CNAME sits at the zone apex, and no name/type/set is declared twice "
    "(Route 53 ChangeResourceRecordSets errors: \"RRSet with DNS name ... is not permitted in zone\", \"RRSet of "
    "type CNAME ... is not permitted at apex\", \"Tried to create resource record set ... but it already exists\").",
    types=[RECORD, ZONE], validate=_records_in_zones, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="Name records <label>.<zone name> (components/connection_layer.py).",
)


# -- CloudWatch: dashboards and metric filters -----------------------------------------------------------

_DASHBOARD_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
DASHBOARD_WIDGETS_MAX = 500  # CloudWatch quotas: widgets per dashboard
WIDGET_METRICS_MAX = 500  # CloudWatch quotas: metrics per graph widget
DASHBOARD_METRICS_MAX = 2500  # CloudWatch quotas: metrics per dashboard


def _widgets(body: Any) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for i, widget in enumerate(body.get("widgets") or []):
        if isinstance(widget, Mapping):
            yield i, widget


def _widget_problems(i: int, widget: Mapping[str, Any]) -> Iterator[str]:
    for field, low, high in (("width", 1, 24), ("height", 1, 1000), ("x", 0, 23)):
        value = widget.get(field)
        if value is not None and (not isinstance(value, int) or not low <= value <= high):
            yield f"widget {i}: {field} {value!r} is outside {low}-{high}"
    props = widget.get("properties") or {}
    if widget.get("type") == "metric" and isinstance(props, Mapping):
        if not props.get("region"):
            yield f"widget {i}: a metric widget needs properties.region"
        if len(props.get("metrics") or []) > WIDGET_METRICS_MAX:
            yield f"widget {i}: more than {WIDGET_METRICS_MAX} metrics"


def _dashboard(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = str(args.props.get("dashboardName") or "")
    if not _DASHBOARD_NAME.match(name):
        report(f"dashboardName {name!r}: \"The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "
               "\\\"-\\\", and \\\"_\\\"\" (PutDashboard)", None)
    body = _json(args.props.get("dashboardBody"))
    if not isinstance(body, Mapping) or not isinstance(body.get("widgets"), list):
        report("dashboardBody is not a JSON object with a widgets array: PutDashboard answers "
               "\"InvalidParameterInput\"", None)
        return
    widgets = list(_widgets(body))
    if len(widgets) > DASHBOARD_WIDGETS_MAX:
        report(f"{len(widgets)} widgets: a dashboard holds at most {DASHBOARD_WIDGETS_MAX}", None)
    metrics = sum(len((w.get("properties") or {}).get("metrics") or []) for _, w in widgets)
    if metrics > DASHBOARD_METRICS_MAX:
        report(f"{metrics} metrics: a dashboard holds at most {DASHBOARD_METRICS_MAX}", None)
    for i, widget in widgets:
        for problem in _widget_problems(i, widget):
            report(problem, None)


dashboard = TypedResourcePolicy(
    "aws-api-dashboard",
    "Dashboards have a PutDashboard name (A-Z a-z 0-9 - _, at most 255) and a body CloudWatch accepts: a JSON "
    "object of widgets (width 1-24, height 1-1000, x 0-23, metric widgets with a region), at most 500 widgets, "
    "500 metrics per widget and 2500 per dashboard (CloudWatch API PutDashboard; \"Dashboard Body Structure and "
    "Syntax\"; CloudWatch service quotas).",
    types=[DASHBOARD], validate=_dashboard, severity=Severity.MEDIUM, controls=["issue 10 preflight"],
    remediation="components/database_alarms.py builds the body; keep its widgets within the grid.",
)

_FILTER_NAME = re.compile(r"^[^:*]{1,512}$")
_METRIC_TEXT = re.compile(r"^[^:*$]{1,255}$")
_UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
          "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
          "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
          "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def _metric_filter(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    name = str(props.get("name") or "")
    if not _FILTER_NAME.match(name):
        report(f"name {name!r}: PutMetricFilter filterName is 1-512 characters without ':' or '*'", None)
    if len(str(props.get("pattern") or "")) > 1024:
        report("pattern is longer than 1024 characters (PutMetricFilter filterPattern)", None)
    transformation = props.get("metricTransformation") or {}
    if not isinstance(transformation, Mapping):
        return
    for field in ("name", "namespace"):
        text = str(transformation.get(field) or "")
        if not _METRIC_TEXT.match(text):
            report(f"metricTransformation.{field} {text!r}: 1-255 characters without ':', '*' or '$'", None)
    dimensions = transformation.get("dimensions") or {}
    if dimensions and transformation.get("defaultValue") is not None:
        report("metricTransformation sets dimensions and defaultValue: \"Conflicts with\" (SDK; CloudWatch Logs "
               "MetricTransformation: \"If you specify dimensions, you can't also specify a default value\")", None)
    if len(dimensions) > 3:
        report(f"{len(dimensions)} dimensions: \"Up to 3 dimensions are allowed\"", None)
    unit = transformation.get("unit")
    if unit is not None and unit not in _UNITS:
        report(f"unit {unit!r} is not a CloudWatch StandardUnit", None)


metric_filter = TypedResourcePolicy(
    "aws-api-metric-filter",
    "Metric filters CloudWatch Logs accepts: filter name without ':' or '*', pattern at most 1024, metric name and "
    "namespace without ':', '*', '$', a StandardUnit, and dimensions (at most 3) never with a defaultValue "
    "(CloudWatch Logs API PutMetricFilter and MetricTransformation; SDK cloudwatch/_inputs.py).",
    types=[METRIC_FILTER], validate=_metric_filter, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/database_alarms.py builds the filters; keep defaultValue only on dimensionless ones.",
)


def _filters_on_declared_groups(args: StackValidationArgs, report: ReportViolation) -> None:
    default = args.get_config().get("defaultRegion")
    groups = {(str(g.props.get("name")), _stack_region(g, default)) for g in of_type(args.resources, LOG_GROUP)}
    for flt in of_type(args.resources, METRIC_FILTER):
        group = str(flt.props.get("logGroupName") or "")
        if (group, _stack_region(flt, default)) not in groups:
            report(f"log group {group} is not declared in this stack (in {_stack_region(flt, default)}): "
                   "PutMetricFilter answers \"ResourceNotFoundException: The specified log group does not exist\" "
                   "until RDS or Lambda first writes to it", flt.urn)


metric_filter_log_group = StackPolicy(
    "aws-api-metric-filter-log-group",
    "A metric filter's log group is declared in the same stack and Region, so it exists when the filter is "
    "created (PutMetricFilter: ResourceNotFoundException; RDS creates /aws/rds/instance/... only when it first "
    "exports logs).",
    types=[METRIC_FILTER, LOG_GROUP], validate=_filters_on_declared_groups, severity=Severity.HIGH,
    controls=["issue 10 preflight"], config=REGION_CONFIG,
    remediation="Declare the group (components/rds_log_groups.py) and pass its name from the resource.",
)


# -- Secrets Manager: values, rotation and the rotation application --------------------------------------

SECRET_VALUE_MAX_BYTES = 65536
# The single-user rotation function for RDS PostgreSQL reads these keys (AWS Secrets Manager user guide,
# "JSON structure of AWS Secrets Manager secrets", Amazon RDS PostgreSQL).
ROTATED_SECRET_KEYS = ("engine", "host", "username", "password")


def _secret_version(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    given = [k for k in ("secretString", "secretBinary", "secretStringWo") if props.get(k) is not None]
    if len(given) != 1:
        report(f"a secret version takes exactly one of secretString, secretBinary, secretStringWo (got "
               f"{', '.join(given) or 'none'}; SDK secretsmanager/secret_version.py)", None)
    for key in given:
        size = len(str(props[key]).encode())
        if size > SECRET_VALUE_MAX_BYTES:
            report(f"{key} is {size} bytes: a secret value holds at most {SECRET_VALUE_MAX_BYTES} (Secrets Manager "
                   "quotas)", None)


secret_version = TypedResourcePolicy(
    "aws-api-secret-version",
    "A secret version carries exactly one value of at most 65,536 bytes (SDK secretsmanager/secret_version.py: "
    "\"Required if secret_binary or secret_string_wo is not set\"; Secrets Manager quotas, secret value size).",
    types=[SECRET_VERSION], validate=_secret_version, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/secrets.py writes one JSON secretString per credential.",
)


def _rotated_have_values(args: StackValidationArgs, report: ReportViolation) -> None:
    secrets = {str(s.props.get(f)): s for s in of_type(args.resources, SECRET) for f in ("arn", "id", "name")
               if s.props.get(f)}
    values: dict[str, list[Any]] = {}
    versions: dict[str, set[str]] = {}
    for version in of_type(args.resources, SECRET_VERSION):
        secret = secrets.get(str(version.props.get("secretId")))
        if secret is not None:
            values.setdefault(secret.urn, []).append(version.props.get("secretString"))
            versions.setdefault(secret.urn, set()).add(version.urn)
    for rotation in of_type(args.resources, SECRET_ROTATION):
        secret = secrets.get(str(rotation.props.get("secretId")))
        if secret is None:
            continue  # a secret of another stack (or RDS's own)
        strings = values.get(secret.urn)
        if not strings:
            report(f"{secret.name} is rotated but has no value in this stack: the rotation function fails at "
                   "createSecret (\"ResourceNotFoundException: Secrets Manager can't find the specified secret "
                   "value for staging label: AWSCURRENT\")", rotation.urn)
            continue
        if not versions[secret.urn] & {d.urn for d in rotation.dependencies or []}:
            report(f"the rotation of {secret.name} does not wait for its value: with rotateImmediately it can start "
                   "before the value is written and fail at createSecret; take secret_id from the version "
                   "(version.secret_arn) or depend on it", rotation.urn)
        for text in strings:
            if not isinstance(text, str):
                continue  # write-only or unknown until apply
            value = _json(text)
            missing = [k for k in ROTATED_SECRET_KEYS if not isinstance(value, Mapping) or not value.get(k)]
            if missing:
                report(f"{secret.name}'s value lacks {', '.join(missing)}: the RDS PostgreSQL rotation function "
                       "reads engine, host, username and password from the secret (\"JSON structure of AWS Secrets "
                       "Manager secrets\")", rotation.urn)


rotated_secret_value = StackPolicy(
    "aws-api-rotated-secret-value",
    "Every rotated secret has a value, written before the rotation starts, a JSON object with the keys the RDS "
    "PostgreSQL rotation function reads (engine, host, username, password) (Secrets Manager user guide, \"JSON "
    "structure of AWS Secrets Manager secrets\"; \"Troubleshoot rotation\": can't find the specified secret value "
    "for staging label AWSCURRENT).",
    types=[SECRET_ROTATION, SECRET, SECRET_VERSION], validate=_rotated_have_values, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    remediation="components/secrets.py CredentialSecret writes the version before its rotation.",
)

ROTATION_CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY")
_STACK_NAME = re.compile(r"^[A-Za-z][-A-Za-z0-9]*$")
SAR_STACK_PREFIX = "serverlessrepo-"  # the provider prefixes the CloudFormation stack's name with it


def _rotation_app(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    app = str(props.get("applicationId") or "")
    name = str(props.get("name") or "")
    if not _STACK_NAME.match(name) or len(SAR_STACK_PREFIX + name) > 128:
        report(f"name {name!r}: CloudFormation stack names (after the provider's {SAR_STACK_PREFIX!r} prefix) are "
               "at most 128 letters, digits and '-', starting with a letter", None)
    if not props.get("semanticVersion"):
        report("semanticVersion is not pinned: every new version of the application replaces the stack", None)
    if "SecretsManagerRDS" not in app:
        return
    missing = [c for c in ROTATION_CAPABILITIES if c not in (props.get("capabilities") or [])]
    if missing:
        report(f"capabilities lack {', '.join(missing)}: the rotation application creates an IAM role and a "
               f"resource policy (\"Requires capabilities : [{', '.join(ROTATION_CAPABILITIES)}]\")", None)
    params = props.get("parameters") or {}
    for key in ("endpoint", "functionName"):
        if not params.get(key):
            report(f"parameters.{key} is required by the rotation application", None)
    function = str(params.get("functionName") or "")
    if function and not re.match(r"^[A-Za-z0-9_-]{1,64}$", function):
        report(f"parameters.functionName {function!r}: a Lambda function name is 1-64 letters, digits, '-' or '_'",
               None)
    if bool(params.get("vpcSubnetIds")) != bool(params.get("vpcSecurityGroupIds")):
        report("vpcSubnetIds and vpcSecurityGroupIds go together: with one only the function is not in the VPC and "
               "cannot reach the private instance", None)


rotation_application = TypedResourcePolicy(
    "aws-api-rotation-application",
    "The Serverless Application Repository stack of a rotation function: a valid stack name, a pinned version, "
    "capabilities CAPABILITY_IAM and CAPABILITY_RESOURCE_POLICY, the application's required parameters and both VPC "
    "parameters or none (SDK serverlessrepository/cloud_formation_stack.py example; the application's template).",
    types=[SAR_STACK], validate=_rotation_app, severity=Severity.HIGH, controls=["issue 10 preflight"],
    remediation="components/secrets.py SecretRotator declares the application with these inputs.",
)


# -- SNS: topic policies and subscriptions ---------------------------------------------------------------

def _topic_policy(args: ResourceValidationArgs, report: ReportViolation) -> None:
    topic = str(args.props.get("arn") or "")
    document = _json(args.props.get("policy"))
    statements = document.get("Statement") if isinstance(document, Mapping) else None
    if not isinstance(statements, list):
        report("policy is not a JSON policy document with a Statement list: SetTopicAttributes answers "
               "\"InvalidParameter: Invalid parameter: Policy Error\"", None)
        return
    for i, statement in enumerate(s for s in statements if isinstance(s, Mapping)):
        actions = statement.get("Action")
        actions = [actions] if isinstance(actions, str) else list(actions or [])
        foreign = [a for a in actions if not str(a).lower().startswith("sns:")]
        if foreign:
            report(f"statement {i}: {', '.join(map(str, foreign))}: \"Invalid parameter: Policy statement action out "
                   "of service scope!\"", None)
        resources = statement.get("Resource")
        resources = [resources] if isinstance(resources, str) else list(resources or [])
        if topic and resources and not any(fnmatchcase(topic, str(r)) for r in resources):
            report(f"statement {i} names {', '.join(map(str, resources))}, not this topic ({topic}): it grants "
                   "nothing on the topic the policy is attached to", None)
    region, topic_region = validation_region(args), arn_region(topic)
    if region and topic_region and region != topic_region:
        report(f"the policy is set in {region}, the topic is in {topic_region}: \"NotFound: Topic does not exist\"",
               None)


topic_policy = TypedResourcePolicy(
    "aws-api-sns-topic-policy",
    "An SNS topic policy is a policy document of sns: actions on its own topic, set in the topic's Region (SNS API "
    "SetTopicAttributes: \"Policy statement action out of service scope!\"; SNS developer guide, \"Access policy "
    "language\").",
    types=[TOPIC_POLICY], validate=_topic_policy, severity=Severity.HIGH, controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="components/alarm_topic.py builds the policy from the topic's ARN.",
)

_ENDPOINTS = {
    "email": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "email-json": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "http": re.compile(r"^http://\S+$"),
    "https": re.compile(r"^https://\S+$"),
    "sms": re.compile(r"^\+[1-9]\d{1,14}$"),
    "sqs": re.compile(r"^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:\S+$"),
    "lambda": re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:\S+$"),
    "firehose": re.compile(r"^arn:aws[a-z-]*:firehose:[a-z0-9-]+:\d{12}:deliverystream/\S+$"),
    "application": re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:endpoint/\S+$"),
}


def _subscription(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    protocol, endpoint = str(props.get("protocol") or ""), str(props.get("endpoint") or "")
    pattern = _ENDPOINTS.get(protocol)
    if pattern is None:
        report(f"protocol {protocol!r}: SNS Subscribe takes {', '.join(sorted(_ENDPOINTS))}", None)
    elif endpoint and not pattern.match(endpoint):
        report(f"endpoint {endpoint!r} is not a {protocol} endpoint (SNS Subscribe Endpoint: email address, URL, "
               "E.164 number or ARN by protocol): \"InvalidParameter: Invalid parameter: Endpoint\"", None)
    if protocol == "firehose" and not props.get("subscriptionRoleArn"):
        report("a firehose subscription needs subscriptionRoleArn", None)
    if props.get("endpointAutoConfirms") and protocol not in ("http", "https"):
        report("endpointAutoConfirms applies to http/https endpoints only", None)
    region, topic_region = validation_region(args), arn_region(props.get("topic"))
    if region and topic_region and region != topic_region:
        report(f"the subscription is made in {region}, the topic is in {topic_region}: Subscribe is called in the "
               "topic's Region (\"InvalidParameter: Invalid parameter: TopicArn\")", None)


subscription = TypedResourcePolicy(
    "aws-api-sns-subscription",
    "SNS subscriptions use a protocol SNS takes with an endpoint of that protocol's shape, in the topic's Region; "
    "firehose with a subscription role; auto-confirmation only for http(s) (SNS API Subscribe; SDK "
    "sns/topic_subscription.py).",
    types=[SUBSCRIPTION], validate=_subscription, severity=Severity.HIGH, controls=["issue 10 preflight"],
    config=REGION_CONFIG,
    remediation="alarms.emails takes addresses; components/alarm_topic.py subscribes them in the topic's region.",
)


# -- PostgreSQL extensions on RDS -------------------------------------------------------------------------

def _engine_major(args: StackValidationArgs) -> str | None:
    for inst in of_type(args.resources, INSTANCE):
        version = str(inst.props.get("engineVersion") or "")
        if inst.props.get("engine") == "postgres" and not is_replica(inst.props) and version:
            return version.split(".", 1)[0]
    for group in of_type(args.resources, PARAMETER_GROUP):
        family = str(group.props.get("family") or "")
        if family.startswith("postgres"):
            return family.removeprefix("postgres")
    return None


def _extensions_supported(args: StackValidationArgs, report: ReportViolation) -> None:
    extensions = of_type(args.resources, PG_EXTENSION)
    major = _engine_major(args)
    if major is None:
        args.not_applicable("no RDS instance or parameter group in this stack: the engine is not RDS's")
        return
    supported = supported_extensions(major)
    for ext in extensions:
        name = str(ext.props.get("name") or "")
        if supported is None:
            report(f"no list of RDS for PostgreSQL {major} extensions is checked in (config/rds_extensions.py): "
                   f"{name} cannot be checked", ext.urn)
        elif name not in supported:
            report(f"{name} is not an extension RDS for PostgreSQL {major} offers: CREATE EXTENSION fails (\"could "
                   "not open extension control file\")", ext.urn)


extension_supported = StackPolicy(
    "aws-api-pg-extension-supported",
    "Every PostgreSQL extension is one RDS offers for the instance's major version (AWS \"Extension versions for "
    "Amazon RDS for PostgreSQL\", PostgreSQLReleaseNotes/postgresql-extensions.html; config/rds_extensions.py).",
    types=[PG_EXTENSION, INSTANCE, PARAMETER_GROUP], validate=_extensions_supported, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    remediation="Use an extension of the list, or install it as a trusted language extension (pg_tle).",
)


def _extensions_preloaded(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = [parameters(g.props) for g in of_type(args.resources, PARAMETER_GROUP)
              if str(g.props.get("family") or "").startswith("postgres")]
    if not groups:
        args.not_applicable("no PostgreSQL parameter group in this stack")
        return
    for ext in of_type(args.resources, PG_EXTENSION):
        name = str(ext.props.get("name") or "")
        for group in groups:
            if name in PRELOADED_EXTENSIONS and name not in csv_values(group.get("shared_preload_libraries")):
                report(f"{name} is not in shared_preload_libraries: {PRELOADED_EXTENSIONS[name]}", ext.urn)
            cron_db = group.get("cron.database_name", "postgres")
            if name == "pg_cron" and str(ext.props.get("database") or "postgres") != cron_db:
                report(f"pg_cron is created in {ext.props.get('database')!r} but cron.database_name is {cron_db!r}: "
                       f"\"ERROR: can only create extension in database {cron_db}\"", ext.urn)


extension_preloaded = StackPolicy(
    "aws-api-pg-extension-preload",
    "Extensions that work only when preloaded (pg_cron, pgaudit, pg_stat_statements) are in the parameter group's "
    "shared_preload_libraries, and pg_cron lives in cron.database_name (AWS RDS user guide, \"Scheduling "
    "maintenance with the PostgreSQL pg_cron extension\"; pgaudit and pg_stat_statements documentation).",
    types=[PG_EXTENSION, PARAMETER_GROUP], validate=_extensions_preloaded, severity=Severity.HIGH,
    controls=["issue 10 preflight"],
    remediation="config/parameters.py preloads the platform's extensions and sets cron.database_name.",
)


POLICIES: list[PackPolicy] = [
    kms_alias_name, kms_alias_unique, event_target_input, lambda_permission_source, event_target_lambda_permission,
    route53_zone, route53_record, route53_record_zone, dashboard, metric_filter, metric_filter_log_group,
    secret_version, rotated_secret_value, rotation_application, topic_policy, subscription, extension_supported,
    extension_preloaded,
]
