"""policy/aws_api_services.py, message by message: each row is one breaking input (or one compliant variant at a
boundary) and everything the policy then reports, each message written out in full as the user reads it in CI.
The resources are the smallest compliant set a policy checks (no stack is planned)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from policy import aws_api_services as svc
from tests.policy.fixtures import ACCOUNT, MISSING, instance, key_arn, parameter_group
from tests.policy.reports import builder, not_applicable, reports, rows

RULE_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule/edumatrix-test-ops"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:edumatrix-test-ops"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:edumatrix-test-admin-AbCdEf"
TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:edumatrix-test-alarms"
LOG_GROUP_NAME = "/aws/rds/instance/edumatrix-test/postgresql"
ROTATED_VALUE = json.dumps({"engine": "postgres", "host": "db.internal", "username": "admin", "password": "pw"})

alias = builder(svc.KMS_ALIAS, {"name": "alias/edumatrix-test-data", "targetKeyId": key_arn()})
target = builder(svc.EVENT_TARGET, {"rule": "edumatrix-test-ops", "arn": FUNCTION_ARN, "inputTransformer": {
    "inputPaths": {"id": "$.id"}, "inputTemplate": '{"id": <id>, "rule": <aws.events.rule-name>}'}})
rule = builder(svc.EVENT_RULE, {"name": "edumatrix-test-ops", "arn": RULE_ARN})
permission = builder(svc.LAMBDA_PERMISSION, {"action": "lambda:InvokeFunction", "function": "edumatrix-test-ops",
                                             "principal": "events.amazonaws.com", "sourceArn": RULE_ARN})
zone = builder(svc.ZONE, {"name": "db.edumatrix.internal", "zoneId": "Z1", "vpcs": [{"vpcId": "vpc-1"}]})
record = builder(svc.RECORD, {"zoneId": "Z1", "name": "app.db.edumatrix.internal", "type": "CNAME", "ttl": 60,
                              "records": ["edumatrix-test.abc.us-east-1.rds.amazonaws.com"]})
dashboard = builder(svc.DASHBOARD, {"dashboardName": "edumatrix-test", "dashboardBody": "{}"})
metric_filter = builder(svc.METRIC_FILTER, {
    "name": "failed-logins", "logGroupName": LOG_GROUP_NAME, "pattern": "FATAL",
    "metricTransformation": {"name": "FailedLogins", "namespace": "Edumatrix", "value": "1", "unit": "Count"}})
log_group = builder(svc.LOG_GROUP, {"name": LOG_GROUP_NAME})
secret = builder(svc.SECRET, {"arn": SECRET_ARN, "name": "edumatrix-test-admin"})
version = builder(svc.SECRET_VERSION, {"secretId": SECRET_ARN, "secretString": ROTATED_VALUE})
rotation = builder(svc.SECRET_ROTATION, {"secretId": SECRET_ARN})
rotation_app = builder(svc.SAR_STACK, {
    "name": "edumatrix-test-rotation", "semanticVersion": "1.1.367",
    "applicationId": "arn:aws:serverlessrepo:us-east-1:297356227824:applications/"
                     "SecretsManagerRDSPostgreSQLRotationSingleUser",
    "capabilities": ["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"],
    "parameters": {"endpoint": "https://secretsmanager.us-east-1.amazonaws.com", "functionName": "edumatrix-rotation",
                   "vpcSubnetIds": "subnet-1", "vpcSecurityGroupIds": "sg-1"}})
topic_policy = builder(svc.TOPIC_POLICY, {"arn": TOPIC_ARN, "policy": "{}"})
subscription = builder(svc.SUBSCRIPTION, {"topic": TOPIC_ARN, "protocol": "email", "endpoint": "dba@example.com"})
mysql_parameters = builder(svc.PARAMETER_GROUP, {"name": "edumatrix-mysql", "family": "mysql8.0", "parameters": []})
extension = builder(svc.PG_EXTENSION, {"name": "pgcrypto", "database": "edumatrix"})


def body(*widgets: dict[str, Any]) -> str:
    return json.dumps({"widgets": list(widgets)})


def metric_widget(metrics: int = 1, **fields: Any) -> dict[str, Any]:
    return {"type": "metric", "width": 12, "height": 6, "x": 0, "y": 0,
            "properties": {"region": "us-east-1", "metrics": [["AWS/RDS", "CPUUtilization"]] * metrics}, **fields}


def statements(*items: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(items)})


def publish(resource: Any = TOPIC_ARN, action: Any = ("sns:Publish",)) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": list(action) if isinstance(action, tuple) else action, "Resource": resource}


ALIAS_SHAPE = ("KMS takes \"alias/\" followed by letters, digits, '/', '_' and '-', at most 256 characters "
               "(CreateAlias AliasName)")
TARGET_NOT_PERMITTED = ("the target invokes Lambda function edumatrix-test-ops, but no lambda Permission lets "
                        "events.amazonaws.com invoke it from {}: EventBridge's invocations fail (FailedInvocations) "
                        "and nothing else reports it")
NOT_A_DNS_NAME = "{!r} is not a DNS name (labels of 1-63 letters, digits, '-' or '_', at most 253 characters)"
NOT_ALIAS_NEEDS_TTL = ("a record that is not an alias needs ttl and records: Route 53 answers \"InvalidInput: Invalid "
                       "request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or "
                       "TrafficPolicyInstanceId]\"")
DASHBOARD_NAME = ("dashboardName {!r}: \"The maximum length is 255, and valid characters are A-Z, a-z, 0-9, "
                  "\\\"-\\\", and \\\"_\\\"\" (PutDashboard)")
METRIC_TEXT = "metricTransformation.{} {!r}: 1-255 characters without ':', '*' or '$'"
NO_VALUE = ("edumatrix-admin-secret is rotated but has no value in this stack: the rotation function fails at "
            "createSecret (\"ResourceNotFoundException: Secrets Manager can't find the specified secret value for "
            "staging label: AWSCURRENT\")")
LACKS = ("{}'s value lacks {}: the RDS PostgreSQL rotation function reads engine, host, username "
         "and password from the secret (\"JSON structure of AWS Secrets Manager secrets\")")
NOT_WAITING = ("the rotation of edumatrix-admin-secret does not wait for its value: with rotateImmediately it can "
               "start before the value is written and fail at createSecret; take secret_id from the version "
               "(version.secret_arn) or depend on it")
STACK_NAME = ("name {!r}: CloudFormation stack names (after the provider's 'serverlessrepo-' prefix) are at most 128 "
              "letters, digits and '-', starting with a letter")
OUT_OF_SCOPE = "statement {}: {}: \"Invalid parameter: Policy statement action out of service scope!\""
NOT_A_POLICY = ("policy is not a JSON policy document with a Statement list: SetTopicAttributes answers "
                "\"InvalidParameter: Invalid parameter: Policy Error\"")
NOT_AN_ENDPOINT = ("endpoint {!r} is not a {} endpoint (SNS Subscribe Endpoint: email address, URL, E.164 number or "
                   "ARN by protocol): \"InvalidParameter: Invalid parameter: Endpoint\"")
PROTOCOLS = "application, email, email-json, firehose, http, https, lambda, sms, sqs"


def _secret_set(*versions: Any, rotation_deps: bool = True, **rotation_props: Any) -> list[Any]:
    """The admin secret, its versions and its rotation (waiting for every version unless told not to)."""
    return [secret("edumatrix-admin-secret"), *versions,
            rotation("admin-rotation", depends_on=versions if rotation_deps else (), **rotation_props)]


CASES = rows(
    # -- KMS aliases
    ("alias-without-prefix", svc.kms_alias_name, [alias("a", name="edumatrix-test-data")],
     [("a", f"alias 'edumatrix-test-data': {ALIAS_SHAPE}")]),
    ("alias-of-256-characters", svc.kms_alias_name, [alias("a", name="alias/" + "k" * 250)], []),
    ("alias-of-257-characters", svc.kms_alias_name, [alias("a", name="alias/" + "k" * 251)],
     [("a", f"alias {'alias/' + 'k' * 251!r}: {ALIAS_SHAPE}")]),
    ("alias-reserved-prefix", svc.kms_alias_name, [alias("a", name="alias/aws/rds")],
     [("a", "alias 'alias/aws/rds': \"The alias/aws/ prefix is reserved for AWS managed keys\" (CreateAlias)")]),
    ("alias-key-in-another-region", svc.kms_alias_name, [alias("a", targetKeyId=key_arn("eu-west-1"))],
     [("a", "the alias is in us-east-1, its key in eu-west-1: an alias and its key must be in the same Region "
            "(CreateAlias TargetKeyId)")]),
    ("alias-declared-twice", svc.kms_alias_unique, [alias("a", name=MISSING), alias("b"), alias("c")],
     [("c", "alias/edumatrix-test-data is declared twice in us-east-1 (also by b): \"AlreadyExistsException: An "
            "alias with the name ... already exists\"")]),
    ("alias-same-name-in-two-regions", svc.kms_alias_unique, [alias("a"), alias("b", region="eu-west-1")], []),
    # -- EventBridge targets
    ("target-input-and-input-path", svc.event_target_input,
     [target("t", inputTransformer=MISSING, input="{}", inputPath="$.detail")],
     [("t", "input and inputPath are mutually exclusive (SDK cloudwatch/event_target.py: \"Conflicts with\")")]),
    ("target-input-not-json", svc.event_target_input, [target("t", inputTransformer=MISSING, input="{job")],
     [("t", "input is not valid JSON: EventBridge passes \"Valid JSON text\" to the target")]),
    ("target-100-input-paths", svc.event_target_input,
     [target("t", inputTransformer={"inputPaths": {f"p{i}": "$.id" for i in range(99)}})], []),
    ("target-101-input-paths", svc.event_target_input,
     [target("t", inputTransformer={"inputPaths": {f"p{i}": "$.id" for i in range(100)}, "inputTemplate": "{}"})],
     [("t", "inputPaths has 101 keys: EventBridge takes at most 100")]),
    ("target-template-unknown-placeholders", svc.event_target_input,
     [target("t", inputTransformer={"inputTemplate": '{"a": <zone>, "b": <eventId>, "c": <id>}'})],
     [("t", "inputTemplate uses eventId, zone, defined neither in inputPaths nor by EventBridge (aws.events.event, "
            "aws.events.event.ingestion-time, aws.events.event.json, aws.events.rule-arn, aws.events.rule-name): "
            "\"InvalidInputTemplate\"")]),
    # -- Lambda permissions
    ("permission-action-without-service", svc.lambda_permission_source, [permission("p", action="InvokeFunction")],
     [("p", "action 'InvokeFunction': Lambda AddPermission takes lambda:<Action> (e.g. lambda:InvokeFunction)")]),
    ("permission-without-action", svc.lambda_permission_source, [permission("p", action=MISSING)],
     [("p", "action '': Lambda AddPermission takes lambda:<Action> (e.g. lambda:InvokeFunction)")]),
    ("permission-without-source", svc.lambda_permission_source, [permission("p", sourceArn=MISSING)],
     [("p", "events.amazonaws.com may invoke the function on behalf of any resource of any account: set sourceArn "
            "(Lambda developer guide, \"Using resource-based policies for Lambda\": confused deputy)")]),
    ("permission-source-not-a-rule", svc.lambda_permission_source,
     [permission("p", sourceArn=f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default")],
     [("p", f"sourceArn 'arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default' is not an EventBridge rule ARN "
            "(arn:aws:events:REGION:ACCOUNT:rule/NAME): the permission never matches and every invocation fails "
            "(FailedInvocations)")]),
    ("target-permitted-by-rule-name", svc.event_target_lambda_permission,
     [rule("r"), target("t"), permission("p")], []),
    ("target-permitted-by-rule-arn-and-qualified-function", svc.event_target_lambda_permission,
     [rule("r"), target("t", rule=RULE_ARN), permission("p", function=FUNCTION_ARN + ":live", action="lambda:*")], []),
    ("target-permission-of-another-rule", svc.event_target_lambda_permission,
     [rule("r"), target("t"), permission("p", sourceArn=RULE_ARN + "-2")],
     [("t", TARGET_NOT_PERMITTED.format(f"rule {RULE_ARN}"))]),
    ("target-permission-for-another-principal", svc.event_target_lambda_permission,
     [rule("r"), target("t"), permission("p", principal="sns.amazonaws.com")],
     [("t", TARGET_NOT_PERMITTED.format(f"rule {RULE_ARN}"))]),
    ("target-permission-for-another-action", svc.event_target_lambda_permission,
     [rule("r"), target("t"), permission("p", action="lambda:GetFunction")],
     [("t", TARGET_NOT_PERMITTED.format(f"rule {RULE_ARN}"))]),
    ("target-by-rule-arn-permission-of-another-rule", svc.event_target_lambda_permission,
     [rule("r"), target("t", rule=RULE_ARN), permission("p", sourceArn=RULE_ARN + "-2")],
     [("t", TARGET_NOT_PERMITTED.format(f"rule {RULE_ARN}"))]),
    ("target-not-permitted-after-a-topic-target", svc.event_target_lambda_permission,
     [rule("r"), target("sns", arn=TOPIC_ARN), target("t")], [("t", TARGET_NOT_PERMITTED.format(f"rule {RULE_ARN}"))]),
    ("target-of-an-undeclared-rule", svc.event_target_lambda_permission, [target("t")],
     [("t", TARGET_NOT_PERMITTED.format("its rule"))]),
    ("target-lambda-arn-that-is-not-a-function", svc.event_target_lambda_permission,
     [rule("r"), target("t", arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:psycopg")], []),
    # -- Route 53 zones and records
    ("zone-private-with-delegation-set", svc.route53_zone, [zone("z", delegationSetId="N1")],
     [("z", "delegationSetId with vpcs: \"delegation sets can only be used for public zones\" (SDK route53/zone.py)")]),
    ("zone-public-under-internal", svc.route53_zone, [zone("z", vpcs=MISSING, name="DB.Edumatrix.Internal.")],
     [("z", "db.edumatrix.internal is under a top-level domain nobody delegates: as a public zone (no vpcs) its names "
            "never resolve; make it a private zone associated with the VPC")]),
    ("zone-public-under-a-delegated-domain", svc.route53_zone, [zone("z", vpcs=MISSING, name="db.edumatrix.com")], []),
    ("zone-bad-label-read-without-dot-or-case", svc.route53_zone, [zone("z", name="-ns.DB.BOX.")],
     [("z", NOT_A_DNS_NAME.format("-ns.db.box"))]),
    ("zone-without-name", svc.route53_zone, [zone("z", name=MISSING)], [("z", NOT_A_DNS_NAME.format(""))]),
    ("zone-wildcard-label", svc.route53_zone, [zone("z", name="*.db.edumatrix.internal")], []),
    ("zone-name-of-253-characters", svc.route53_zone, [zone("z", name=".".join(["a" * 63] * 3 + ["b" * 61]))], []),
    ("zone-name-of-254-characters", svc.route53_zone, [zone("z", name=".".join(["a" * 63] * 3 + ["b" * 62]))],
     [("z", NOT_A_DNS_NAME.format(".".join(["a" * 63] * 3 + ["b" * 62])))]),
    ("record-unknown-type", svc.route53_record, [record("r", type="CNAMEX")],
     [("r", "type 'CNAMEX' is not a Route 53 record type (A, AAAA, CAA, CNAME, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, "
            "SPF, SRV, SSHFP, SVCB, TLSA, TXT)")]),
    ("record-without-type", svc.route53_record, [record("r", type=MISSING)],
     [("r", "type '' is not a Route 53 record type (A, AAAA, CAA, CNAME, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SPF, "
            "SRV, SSHFP, SVCB, TLSA, TXT)")]),
    ("record-alias-with-ttl", svc.route53_record,
     [record("r", type="A", records=MISSING, aliases=[{"name": "x", "zoneId": "Z2", "evaluateTargetHealth": False}])],
     [("r", "aliases with ttl or records: \"Conflicts with ttl & records\" (SDK route53/record.py)")]),
    ("record-alias-only", svc.route53_record,
     [record("r", type="A", records=MISSING, ttl=MISSING, aliases=[{"name": "x", "zoneId": "Z2"}])], []),
    ("record-without-ttl", svc.route53_record, [record("r", ttl=MISSING)], [("r", NOT_ALIAS_NEEDS_TTL)]),
    ("record-without-records", svc.route53_record, [record("r", records=[])], [("r", NOT_ALIAS_NEEDS_TTL)]),
    ("record-ttl-negative", svc.route53_record, [record("r", ttl=-1)],
     [("r", "ttl -1: Route 53 takes 0 to 2147483647 seconds")]),
    ("record-ttl-past-the-maximum", svc.route53_record, [record("r", ttl=2147483648)],
     [("r", "ttl 2147483648: Route 53 takes 0 to 2147483647 seconds")]),
    ("record-ttl-bounds", svc.route53_record, [record("r", ttl=0), record("s", ttl=2147483647)], []),
    ("record-cname-with-two-values", svc.route53_record, [record("r", records=["a.example.com", "b.example.com"])],
     [("r", "a CNAME has exactly one value, not 2 (RFC 1034 3.6.2; Route 53 refuses the change batch)")]),
    ("record-a-with-two-values", svc.route53_record, [record("r", type="A", records=["10.0.0.1", "10.0.0.2"])], []),
    ("record-routing-without-set-identifier", svc.route53_record,
     [record("r", latencyRoutingPolicies=[{"region": "us-east-1"}], weightedRoutingPolicies=[{"weight": 1}])],
     [("r", "latencyRoutingPolicies needs setIdentifier (SDK route53/record.py: \"Required if using ...\")")]),
    ("record-routing-with-set-identifier", svc.route53_record,
     [record("r", weightedRoutingPolicies=[{"weight": 1}], setIdentifier="blue")], []),
    ("record-set-identifier-without-routing", svc.route53_record, [record("r", setIdentifier="blue")],
     [("r", "setIdentifier without a routing policy: Route 53 refuses a simple record with a SetIdentifier")]),
    ("record-outside-its-zone", svc.route53_record_zone,
     [zone("z"), record("o", zoneId="Z9", name="x.other.internal"), record("r", name="app.other.internal")],
     [("r", "\"InvalidChangeBatch: RRSet with DNS name app.other.internal. is not permitted in zone "
            "db.edumatrix.internal.\"")]),
    ("record-cname-at-apex-of-a-zone-known-by-id", svc.route53_record_zone,
     [zone("z", zoneId=MISSING, id="Z1"), record("r", name="DB.edumatrix.internal.")],
     [("r", "\"InvalidChangeBatch: RRSet of type CNAME with DNS name db.edumatrix.internal. is not permitted at apex "
            "in zone db.edumatrix.internal.\"")]),
    ("record-a-at-apex", svc.route53_record_zone, [zone("z"), record("r", type="A", name="db.edumatrix.internal")], []),
    ("record-declared-twice", svc.route53_record_zone, [zone("z"), record("r"), record("s")],
     [("s", "CNAME app.db.edumatrix.internal is declared twice in db.edumatrix.internal (also by r): \"Tried to "
            "create resource record set ... but it already exists\"")]),
    ("record-name-with-two-types", svc.route53_record_zone,
     [zone("z"), record("r", type="A", records=["10.0.0.1"]), record("s", type="AAAA", records=["::1"])], []),
    ("record-name-with-two-set-identifiers", svc.route53_record_zone,
     [zone("z"), record("r", setIdentifier="blue"), record("s", setIdentifier="green")], []),
    # -- CloudWatch dashboards
    ("dashboard-name-with-slash", svc.dashboard, [dashboard("d", dashboardName="edumatrix/test", dashboardBody=body())],
     [("d", DASHBOARD_NAME.format("edumatrix/test"))]),
    ("dashboard-without-name", svc.dashboard, [dashboard("d", dashboardName=MISSING, dashboardBody=body())],
     [("d", DASHBOARD_NAME.format(""))]),
    ("dashboard-body-without-widgets", svc.dashboard, [dashboard("d")],
     [("d", "dashboardBody is not a JSON object with a widgets array: PutDashboard answers "
            "\"InvalidParameterInput\"")]),
    ("dashboard-500-widgets-of-2500-metrics", svc.dashboard,
     [dashboard("d", dashboardBody=body(*[metric_widget(5)] * 500))], []),
    ("dashboard-501-widgets", svc.dashboard, [dashboard("d", dashboardBody=body(*[{"type": "text"}] * 501))],
     [("d", "501 widgets: a dashboard holds at most 500")]),
    ("dashboard-2501-metrics", svc.dashboard,
     [dashboard("d", dashboardBody=body(*[metric_widget(500)] * 5, metric_widget(1)))],
     [("d", "2501 metrics: a dashboard holds at most 2500")]),
    ("widget-off-the-grid", svc.dashboard,
     [dashboard("d", dashboardBody=body(metric_widget(width=25, height=0, x=24), metric_widget(width="wide")))],
     [("d", "widget 0: width 25 is outside 1-24"), ("d", "widget 0: height 0 is outside 1-1000"),
      ("d", "widget 0: x 24 is outside 0-23"), ("d", "widget 1: width 'wide' is outside 1-24")]),
    ("widget-at-the-grid-edges", svc.dashboard,
     [dashboard("d", dashboardBody=body(metric_widget(width=24, height=1000, x=23), metric_widget(width=1, x=0)))],
     []),
    ("widget-metric-without-region-or-with-501-metrics", svc.dashboard,
     [dashboard("d", dashboardBody=body(metric_widget(properties={"metrics": []}), {"type": "text"},
                                        metric_widget(501)))],
     [("d", "widget 0: a metric widget needs properties.region"), ("d", "widget 2: more than 500 metrics")]),
    ("widget-metric-with-500-metrics", svc.dashboard, [dashboard("d", dashboardBody=body(metric_widget(500)))], []),
    # -- CloudWatch Logs metric filters
    ("filter-name-with-colon", svc.metric_filter, [metric_filter("f", name="failed:logins")],
     [("f", "name 'failed:logins': PutMetricFilter filterName is 1-512 characters without ':' or '*'")]),
    ("filter-without-name", svc.metric_filter, [metric_filter("f", name=MISSING)],
     [("f", "name '': PutMetricFilter filterName is 1-512 characters without ':' or '*'")]),
    ("filter-pattern-of-1024-characters", svc.metric_filter, [metric_filter("f", pattern="x" * 1024)], []),
    ("filter-pattern-of-1025-characters", svc.metric_filter, [metric_filter("f", pattern="x" * 1025)],
     [("f", "pattern is longer than 1024 characters (PutMetricFilter filterPattern)")]),
    ("filter-metric-name-with-dollar-and-no-namespace", svc.metric_filter,
     [metric_filter("f", metricTransformation={"name": "a$b", "namespace": MISSING})],
     [("f", METRIC_TEXT.format("name", "a$b")), ("f", METRIC_TEXT.format("namespace", ""))]),
    ("filter-dimensions-with-default", svc.metric_filter,
     [metric_filter("f", metricTransformation={"dimensions": {"User": "$user"}, "defaultValue": "0"})],
     [("f", "metricTransformation sets dimensions and defaultValue: \"Conflicts with\" (SDK; CloudWatch Logs "
            "MetricTransformation: \"If you specify dimensions, you can't also specify a default value\")")]),
    ("filter-three-dimensions", svc.metric_filter,
     [metric_filter("f", metricTransformation={"dimensions": {"A": "$a", "B": "$b", "C": "$c"}})], []),
    ("filter-four-dimensions", svc.metric_filter,
     [metric_filter("f", metricTransformation={"dimensions": {"A": "$a", "B": "$b", "C": "$c", "D": "$d"}})],
     [("f", "4 dimensions: \"Up to 3 dimensions are allowed\"")]),
    ("filter-unknown-unit", svc.metric_filter, [metric_filter("f", metricTransformation={"unit": "Logins"})],
     [("f", "unit 'Logins' is not a CloudWatch StandardUnit")]),
    ("filter-on-undeclared-group", svc.metric_filter_log_group,
     [log_group("g"), metric_filter("f", logGroupName="/aws/lambda/ops")],
     [("f", "log group /aws/lambda/ops is not declared in this stack (in us-east-1): PutMetricFilter answers "
            "\"ResourceNotFoundException: The specified log group does not exist\" until RDS or Lambda first "
            "writes to it")]),
    ("filter-without-group", svc.metric_filter_log_group, [log_group("g"), metric_filter("f", logGroupName=MISSING)],
     [("f", "log group  is not declared in this stack (in us-east-1): PutMetricFilter answers "
            "\"ResourceNotFoundException: The specified log group does not exist\" until RDS or Lambda first "
            "writes to it")]),
    # -- Secrets Manager
    ("version-with-two-values", svc.secret_version, [version("v", secretBinary="eA==")],
     [("v", "a secret version takes exactly one of secretString, secretBinary, secretStringWo (got secretString, "
            "secretBinary; SDK secretsmanager/secret_version.py)")]),
    ("version-with-a-write-only-value-too", svc.secret_version, [version("v", secretStringWo="x")],
     [("v", "a secret version takes exactly one of secretString, secretBinary, secretStringWo (got secretString, "
            "secretStringWo; SDK secretsmanager/secret_version.py)")]),
    ("version-without-value", svc.secret_version, [version("v", secretString=MISSING)],
     [("v", "a secret version takes exactly one of secretString, secretBinary, secretStringWo (got none; SDK "
            "secretsmanager/secret_version.py)")]),
    ("version-of-65536-bytes", svc.secret_version, [version("v", secretString="é" * 32768)], []),
    ("version-of-65538-bytes", svc.secret_version, [version("v", secretString="é" * 32769)],
     [("v", "secretString is 65538 bytes: a secret value holds at most 65536 (Secrets Manager quotas)")]),
    ("rotation-without-value", svc.rotated_secret_value,
     [rotation("other-rotation", secretId="arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db"),
      *_secret_set()], [("admin-rotation", NO_VALUE)]),
    ("rotation-of-a-secret-its-value-knows-by-id", svc.rotated_secret_value,
     [secret("edumatrix-admin-secret", arn=MISSING, id="sec-1"), version("v", secretId="sec-1"),
      rotation("admin-rotation", secretId="sec-1")], [("admin-rotation", NOT_WAITING)]),
    ("rotation-of-a-secret-known-by-name", svc.rotated_secret_value,
     [secret("edumatrix-admin-secret"), rotation("admin-rotation", secretId="edumatrix-test-admin")],
     [("admin-rotation", NO_VALUE)]),
    ("rotation-not-waiting-for-its-value", svc.rotated_secret_value,
     _secret_set(version("v"), rotation_deps=False), [("admin-rotation", NOT_WAITING)]),
    ("rotated-value-lacking-keys", svc.rotated_secret_value,
     _secret_set(version("v0", secretString=None, secretStringWo="x"),
                 version("v", secretString=json.dumps({"engine": "postgres", "username": "admin"}))),
     [("admin-rotation", LACKS.format("edumatrix-admin-secret", "host, password"))]),
    ("rotations-after-one-without-value", svc.rotated_secret_value,
     [secret("edumatrix-admin-secret"), rotation("admin-rotation"), secret("other-secret", arn=SECRET_ARN + "-2"),
      version("v2", secretId=SECRET_ARN + "-2", secretString="{}"),
      rotation("other-rotation", secretId=SECRET_ARN + "-2", depends_on=[version("v2")])],
     [("admin-rotation", NO_VALUE),
      ("other-rotation", LACKS.format("other-secret", "engine, host, username, password"))]),
    ("rotated-value-not-an-object", svc.rotated_secret_value, _secret_set(version("v", secretString="[]")),
     [("admin-rotation", LACKS.format("edumatrix-admin-secret", "engine, host, username, password"))]),
    # -- the rotation application
    ("app-name-starting-with-a-digit", svc.rotation_application, [rotation_app("s", name="1-rotation")],
     [("s", STACK_NAME.format("1-rotation"))]),
    ("app-without-name", svc.rotation_application, [rotation_app("s", name=MISSING)], [("s", STACK_NAME.format(""))]),
    ("app-name-of-113-characters", svc.rotation_application, [rotation_app("s", name="r" * 113)], []),
    ("app-name-of-114-characters", svc.rotation_application, [rotation_app("s", name="r" * 114)],
     [("s", STACK_NAME.format("r" * 114))]),
    ("app-version-not-pinned", svc.rotation_application, [rotation_app("s", semanticVersion=MISSING)],
     [("s", "semanticVersion is not pinned: every new version of the application replaces the stack")]),
    ("app-without-capabilities", svc.rotation_application, [rotation_app("s", capabilities=MISSING)],
     [("s", "capabilities lack CAPABILITY_IAM, CAPABILITY_RESOURCE_POLICY: the rotation application creates an IAM "
            "role and a resource policy (\"Requires capabilities : [CAPABILITY_IAM, CAPABILITY_RESOURCE_POLICY]\")")]),
    ("app-without-required-parameters", svc.rotation_application,
     [rotation_app("s", parameters={"endpoint": MISSING, "functionName": MISSING})],
     [("s", "parameters.endpoint is required by the rotation application"),
      ("s", "parameters.functionName is required by the rotation application")]),
    ("app-function-name-with-space", svc.rotation_application,
     [rotation_app("s", parameters={"functionName": "edumatrix rotation"})],
     [("s", "parameters.functionName 'edumatrix rotation': a Lambda function name is 1-64 letters, digits, '-' or "
            "'_'")]),
    ("app-function-name-with-capitals", svc.rotation_application,
     [rotation_app("s", parameters={"functionName": "Edumatrix-Rotation_1"})], []),
    ("app-subnets-without-security-groups", svc.rotation_application,
     [rotation_app("s", parameters={"vpcSecurityGroupIds": MISSING})],
     [("s", "vpcSubnetIds and vpcSecurityGroupIds go together: with one only the function is not in the VPC and "
            "cannot reach the private instance")]),
    ("app-other-than-the-rds-rotation", svc.rotation_application,
     [rotation_app("s", applicationId="arn:aws:serverlessrepo:us-east-1:1:applications/other", parameters={},
                   capabilities=[])], []),
    # -- SNS topic policies and subscriptions
    ("topic-policy-not-json", svc.topic_policy, [topic_policy("p", policy="Statement")], [("p", NOT_A_POLICY)]),
    ("topic-policy-statement-not-a-list", svc.topic_policy, [topic_policy("p", policy='{"Statement": {}}')],
     [("p", NOT_A_POLICY)]),
    ("topic-policy-foreign-actions", svc.topic_policy,
     [topic_policy("p", policy=statements("skip", publish(), publish(action=("sns:Publish", "sqs:SendMessage",
                                                                              "kms:Decrypt")),
                                          publish(action="SQS:SendMessage"), publish(action="SNS:Publish")))],
     [("p", OUT_OF_SCOPE.format(1, "sqs:SendMessage, kms:Decrypt")), ("p", OUT_OF_SCOPE.format(2, "SQS:SendMessage"))]),
    ("topic-policy-other-resources", svc.topic_policy,
     [topic_policy("p", policy=statements(publish(), publish([TOPIC_ARN + "-2", TOPIC_ARN + "-3"]),
                                          publish(TOPIC_ARN[:-6] + "*")))],
     [("p", f"statement 1 names {TOPIC_ARN}-2, {TOPIC_ARN}-3, not this topic ({TOPIC_ARN}): it grants nothing on the "
            "topic the policy is attached to")]),
    ("topic-policy-without-topic", svc.topic_policy,
     [topic_policy("p", arn=MISSING, policy=statements(publish(TOPIC_ARN + "-2")))], []),
    ("topic-policy-in-another-region", svc.topic_policy,
     [topic_policy("p", region="eu-west-1", policy=statements(publish()))],
     [("p", "the policy is set in eu-west-1, the topic is in us-east-1: \"NotFound: Topic does not exist\"")]),
    ("subscription-unknown-protocol", svc.subscription, [subscription("s", protocol="slack")],
     [("s", f"protocol 'slack': SNS Subscribe takes {PROTOCOLS}")]),
    ("subscription-without-protocol", svc.subscription, [subscription("s", protocol=MISSING)],
     [("s", f"protocol '': SNS Subscribe takes {PROTOCOLS}")]),
    ("subscription-endpoint-of-another-protocol", svc.subscription,
     [subscription("s", endpoint="https://hooks.example.com/x")],
     [("s", NOT_AN_ENDPOINT.format("https://hooks.example.com/x", "email"))]),
    ("subscription-without-endpoint", svc.subscription, [subscription("s", endpoint=MISSING)], []),
    ("subscription-firehose-without-role", svc.subscription,
     [subscription("s", protocol="firehose",
                   endpoint=f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/alarms")],
     [("s", "a firehose subscription needs subscriptionRoleArn")]),
    ("subscription-firehose-with-role", svc.subscription,
     [subscription("s", protocol="firehose", endpoint=f"arn:aws:firehose:us-east-1:{ACCOUNT}:deliverystream/alarms",
                   subscriptionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/sns-firehose")], []),
    ("subscription-email-auto-confirming", svc.subscription, [subscription("s", endpointAutoConfirms=True)],
     [("s", "endpointAutoConfirms applies to http/https endpoints only")]),
    ("subscription-https-auto-confirming", svc.subscription,
     [subscription("s", protocol="https", endpoint="https://hooks.example.com/x", endpointAutoConfirms=True)], []),
    ("subscription-http-auto-confirming", svc.subscription,
     [subscription("s", protocol="http", endpoint="http://hooks.example.com/x", endpointAutoConfirms=True)], []),
    ("subscription-in-another-region", svc.subscription, [subscription("s", region="eu-west-1")],
     [("s", "the subscription is made in eu-west-1, the topic is in us-east-1: Subscribe is called in the topic's "
            "Region (\"InvalidParameter: Invalid parameter: TopicArn\")")]),
    # -- PostgreSQL extensions
    ("extension-rds-does-not-offer", svc.extension_supported, [instance(), extension("e", name="timescaledb")],
     [("e", "timescaledb is not an extension RDS for PostgreSQL 15 offers: CREATE EXTENSION fails (\"could not open "
            "extension control file\")")]),
    ("extension-without-name", svc.extension_supported, [instance(), extension("e", name=MISSING)],
     [("e", " is not an extension RDS for PostgreSQL 15 offers: CREATE EXTENSION fails (\"could not open "
            "extension control file\")")]),
    ("extension-of-an-unlisted-major", svc.extension_supported, [instance(engineVersion="17.2"), extension("e")],
     [("e", "no list of RDS for PostgreSQL 17 extensions is checked in (config/rds_extensions.py): pgcrypto cannot "
            "be checked")]),
    ("extension-major-from-the-primary", svc.extension_supported,
     [instance("mysql", engine="mysql", engineVersion="8.0"), instance("replica", replicateSourceDb="x",
                                                                       engineVersion="17.2"),
      instance("noversion", engineVersion=MISSING), instance(engineVersion="15.10"), extension("e")], []),
    ("extension-major-from-the-parameter-group", svc.extension_supported,
     [instance(engineVersion=MISSING), parameter_group(), extension("e", name="timescaledb")],
     [("e", "timescaledb is not an extension RDS for PostgreSQL 15 offers: CREATE EXTENSION fails (\"could not open "
            "extension control file\")")]),
    ("extension-not-preloaded", svc.extension_preloaded,
     [parameter_group(), extension("e", name="pg_cron", database="postgres"), extension("a", name="pgaudit")],
     [("e", "pg_cron is not in shared_preload_libraries: CREATE EXTENSION fails (\"unrecognized configuration "
            "parameter cron.database_name\"; AWS RDS user guide, pg_cron: \"add pg_cron to the "
            "shared_preload_libraries parameter\")")]),
    ("pg-cron-outside-its-database", svc.extension_preloaded,
     [parameter_group(shared_preload_libraries="pg_cron,pgaudit"), extension("e", name="pg_cron")],
     [("e", "pg_cron is created in 'edumatrix' but cron.database_name is 'postgres': \"ERROR: can only create "
            "extension in database postgres\"")]),
    ("pg-cron-in-the-default-database", svc.extension_preloaded,
     [parameter_group(shared_preload_libraries="pg_cron"), extension("e", name="pg_cron", database=MISSING)], []),
    ("pg-cron-in-cron-database-name", svc.extension_preloaded,
     [parameter_group(shared_preload_libraries="pg_cron", **{"cron.database_name": "edumatrix"}),
      extension("e", name="pg_cron")], []),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), CASES)
def test_the_service_preflight_reports_exactly(policy: Any, resources: list[Any], expected: list[Any]) -> None:
    assert reports(policy, resources) == expected


# (policy, resources with no region of their own, what it reports with the stack's region as defaultRegion only)
DEFAULT_REGION = rows(
    ("alias-key-of-another-region", svc.kms_alias_name, [alias("a")],
     [("a", "the alias is in eu-west-1, its key in us-east-1: an alias and its key must be in the same Region "
            "(CreateAlias TargetKeyId)")]),
    ("alias-declared-twice", svc.kms_alias_unique, [alias("a"), alias("b")],
     [("b", "alias/edumatrix-test-data is declared twice in eu-west-1 (also by a): \"AlreadyExistsException: An "
            "alias with the name ... already exists\"")]),
    ("filter-group-in-another-region", svc.metric_filter_log_group,
     [log_group("g", region="us-east-1"), metric_filter("f")],
     [("f", f"log group {LOG_GROUP_NAME} is not declared in this stack (in eu-west-1): PutMetricFilter answers "
            "\"ResourceNotFoundException: The specified log group does not exist\" until RDS or Lambda first "
            "writes to it")]),
    ("filter-group-in-the-default-region", svc.metric_filter_log_group, [log_group("g"), metric_filter("f")], []),
)


@pytest.mark.parametrize(("policy", "resources", "expected"), DEFAULT_REGION)
def test_a_resource_without_region_is_placed_in_the_default_region(policy: Any, resources: list[Any],
                                                                   expected: list[Any]) -> None:
    assert reports(policy, resources, region=None, default_region="eu-west-1") == expected


NOT_APPLICABLE = rows(
    ("extensions-without-rds", svc.extension_supported, [instance(engine="mysql"), extension("e")],
     "no RDS instance or parameter group in this stack: the engine is not RDS's"),
    ("preload-without-postgres-parameter-group", svc.extension_preloaded,
     [mysql_parameters("pg"), extension("e")], "no PostgreSQL parameter group in this stack"),
)


@pytest.mark.parametrize(("policy", "resources", "reason"), NOT_APPLICABLE)
def test_an_extension_policy_says_why_it_does_not_apply(policy: Any, resources: list[Any], reason: str) -> None:
    assert not_applicable(policy, resources) == reason

