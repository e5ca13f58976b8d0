"""The extraction pooler's types (components/service_pooler.py): ECS Fargate and the internal Network Load Balancer.

Two groups, as elsewhere in the pack: `aws-api-*`, constraints of the ECS and Elastic Load Balancing APIs that the
SDK's mocks accept and `pulumi up` would hit (each description names its source, read through the docs corpus:
the ECS developer guide and API reference, the ELBv2 API reference and the Network Load Balancer guide); and the
posture rules (Security Hub ECS controls, the platform's own: TCP passthrough for PostgreSQL, alarms that page).
docs/policy-parity.md lists them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity, StackValidationArgs

from config.settings import FARGATE_MEMORY_MB
from policy.base import PackPolicy, StackPolicy, TypedResourcePolicy, of_type
from policy.lambdas import ROLE, _attachments, _inline_policies, _listed, _roles_of, _statements

ECS_CLUSTER = "aws:ecs/cluster:Cluster"
ECS_TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
FUNCTION = "aws:lambda/function:Function"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"

POSTGRES_PORTS = frozenset({5432, 6432})
"""Ports a listener forwards PostgreSQL on (the instance's, PgBouncer's)."""


def _containers(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    text = props.get("containerDefinitions")
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return []
    return [c for c in value if isinstance(c, Mapping)] if isinstance(value, list) else []


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# -- ECS ---------------------------------------------------------------------------------------------------

def _task_definition(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if "FARGATE" not in (props.get("requiresCompatibilities") or []):
        return
    if props.get("networkMode") != "awsvpc":
        report(f"networkMode {props.get('networkMode')!r}: a Fargate task definition takes awsvpc (ECS developer "
               "guide, task definition parameters, networkMode: \"If you're using Fargate, the awsvpc network mode "
               "is required\")", None)
    cpu, memory = _int(props.get("cpu")), _int(props.get("memory"))
    allowed = FARGATE_MEMORY_MB.get(cpu or -1)
    if cpu is None or memory is None or allowed is None or memory not in allowed:
        report(f"cpu {props.get('cpu')!r} with memory {props.get('memory')!r} is no Fargate task size: "
               "RegisterTaskDefinition answers \"ClientException: Invalid 'cpu' setting for task\" (ECS developer "
               "guide, \"Troubleshoot Amazon ECS task definition invalid CPU or memory errors\")", None)
    for container in _containers(props):
        for mapping in container.get("portMappings") or []:
            host = mapping.get("hostPort")
            if host is not None and host != mapping.get("containerPort"):
                report(f"container {container.get('name')}: hostPort {host} differs from containerPort "
                       f"{mapping.get('containerPort')}: with awsvpc \"hostPort must either be left blank or set "
                       "to the same value as the containerPort\"", None)
        if (container.get("linuxParameters") or {}).get("tmpfs"):
            report(f"container {container.get('name')}: linuxParameters.tmpfs on Fargate: \"If you're using tasks "
                   "that use the Fargate launch type, the tmpfs parameter isn't supported\" (ECS API LinuxParameters); "
                   "mount a task volume (bind mount) instead", None)
        volumes = {str(v.get("name")) for v in props.get("volumes") or [] if isinstance(v, Mapping)}
        for mount in container.get("mountPoints") or []:
            if str(mount.get("sourceVolume")) not in volumes:
                report(f"container {container.get('name')}: mountPoints names volume {mount.get('sourceVolume')!r}, "
                       "which the task definition does not declare: sourceVolume \"must be a volume name referenced "
                       "in the name parameter of task definition volume\" (ECS API MountPoint)", None)
        for secret in container.get("secrets") or []:
            if not str(secret.get("valueFrom") or "").startswith("arn:"):
                report(f"container {container.get('name')}: secret {secret.get('name')} takes its value from "
                       f"{secret.get('valueFrom')!r}, not an ARN: a Secrets Manager reference is the secret's full "
                       "ARN, optionally :json-key:version-stage:version-id (ECS developer guide, \"Pass Secrets "
                       "Manager secrets through Amazon ECS environment variables\")", None)


ecs_task_definition = TypedResourcePolicy(
    "aws-api-ecs-task-definition",
    "A Fargate task definition ECS registers: network mode awsvpc, a CPU/memory pair from the Fargate table, "
    "hostPort equal to containerPort, no tmpfs, mount points naming declared volumes, secrets referenced by ARN "
    "(ECS developer guide: task definition parameters, \"Troubleshoot ... invalid CPU or memory errors\", \"Pass "
    "Secrets Manager secrets through ... environment variables\"; ECS API LinuxParameters, MountPoint).",
    types=[ECS_TASK_DEFINITION], validate=_task_definition, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py writes the task definition; extractionPooler.cpu/memoryMb choose "
                "the size (the loader refuses pairs Fargate lacks).",
)

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Security Hub ECS.8 looks for these names among environment variables.
_CREDENTIAL_NAMES = re.compile(r"(PASSWORD|SECRET|ACCESS_KEY|PRIVATE_KEY|TOKEN|ECS_ENGINE_AUTH_DATA)", re.I)


def _task_hardening(args: ResourceValidationArgs, report: ReportViolation) -> None:
    for container in _containers(args.props):
        name = container.get("name")
        if container.get("privileged"):
            report(f"container {name} is privileged (Security Hub ECS.4)", None)
        if container.get("readonlyRootFilesystem") is not True:
            report(f"container {name} has a writable root file system (Security Hub ECS.5)", None)
        if not container.get("logConfiguration"):
            report(f"container {name} has no logConfiguration (Security Hub ECS.9)", None)
        leaked = [e.get("name") for e in container.get("environment") or [] if _CREDENTIAL_NAMES.search(
            str(e.get("name") or ""))]
        if leaked:
            report(f"container {name} passes {', '.join(map(str, leaked))} as plain environment variables: secrets "
                   "go in `secrets` (Security Hub ECS.8)", None)
        if not _DIGEST.search(str(container.get("image") or "")):
            report(f"container {name} runs image {container.get('image')!r}, not pinned by digest (@sha256:...): "
                   "a tag can be moved to other code between two task launches", None)


ecs_task_hardening = TypedResourcePolicy(
    "ecs-task-hardening",
    "Every container of a task definition is unprivileged (ECS.4), has a read-only root file system (ECS.5), logs "
    "(ECS.9), passes no credential as a plain environment variable (ECS.8) and runs an image pinned by digest.",
    types=[ECS_TASK_DEFINITION], validate=_task_hardening, severity=Severity.HIGH,
    controls=["ECS.4", "ECS.5", "ECS.8", "ECS.9"],
    remediation="components/service_pooler.py `container_definitions`; the digest is extractionPooler.imageDigest.",
)


def _service(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if props.get("launchType") == "FARGATE" and not (props.get("networkConfiguration") or {}).get("subnets"):
        report("a Fargate service has no networkConfiguration.subnets: CreateService answers \"InvalidParameter"
               "Exception: Network Configuration must be provided when networkMode 'awsvpc' is specified\"", None)
    if props.get("healthCheckGracePeriodSeconds") is not None and not props.get("loadBalancers"):
        report("healthCheckGracePeriodSeconds without loadBalancers: \"Health check grace period is only valid for "
               "services configured to use load balancers\" (ECS API CreateService)", None)
    low, high = _int(props.get("deploymentMinimumHealthyPercent")), _int(props.get("deploymentMaximumPercent"))
    if low is not None and high is not None and high <= low:
        report(f"deploymentMaximumPercent {high} is not above deploymentMinimumHealthyPercent {low}: ECS could "
               "neither start a new task nor stop an old one (ECS API DeploymentConfiguration)", None)


ecs_service = TypedResourcePolicy(
    "aws-api-ecs-service",
    "An ECS service CreateService accepts: a Fargate service names its awsvpc subnets, a health check grace period "
    "comes with a load balancer, and a deployment can make progress (maximum percent above minimum healthy; ECS "
    "API reference CreateService, DeploymentConfiguration).",
    types=[ECS_SERVICE], validate=_service, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py declares the service.",
)


def _service_posture(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    network = props.get("networkConfiguration") or {}
    if network.get("assignPublicIp"):
        report("the service assigns public IP addresses to its tasks (Security Hub ECS.2)", None)
    if (_int(props.get("desiredCount")) or 0) < 2:
        report(f"desiredCount {props.get('desiredCount')}: one task is one point of failure; run at least two", None)
    if len(network.get("subnets") or []) < 2:
        report("the tasks have fewer than two subnets: ECS spreads tasks over the subnets' Availability Zones", None)
    if props.get("enableExecuteCommand"):
        report("enableExecuteCommand opens a shell into the tasks (the pooler holds the service's passwords)", None)
    breaker = props.get("deploymentCircuitBreaker") or {}
    if not (breaker.get("enable") and breaker.get("rollback")):
        report("no deployment circuit breaker with rollback: a broken image would replace healthy tasks", None)


ecs_service_posture = TypedResourcePolicy(
    "ecs-service-posture",
    "An ECS service runs at least two tasks over at least two subnets, without public IPs (Security Hub ECS.2), "
    "without ECS Exec, and rolls a failed deployment back (circuit breaker).",
    types=[ECS_SERVICE], validate=_service_posture, severity=Severity.HIGH, controls=["ECS.2"],
    remediation="extractionPooler.taskCount (at least 2); network.subnetIds (two Availability Zones).",
)


def _cluster(args: ResourceValidationArgs, report: ReportViolation) -> None:
    settings = {s.get("name"): s.get("value") for s in args.props.get("settings") or [] if isinstance(s, Mapping)}
    if settings.get("containerInsights") not in ("enabled", "enhanced"):
        report("containerInsights is not enabled: the running-task alarm reads RunningTaskCount from "
               "ECS/ContainerInsights (Security Hub ECS.12)", None)


ecs_cluster = TypedResourcePolicy(
    "ecs-cluster-container-insights",
    "An ECS cluster has Container Insights on (Security Hub ECS.12): the pooler's RunningTaskCount alarm needs it.",
    types=[ECS_CLUSTER], validate=_cluster, severity=Severity.MEDIUM, controls=["ECS.12"],
    remediation="components/service_pooler.py sets containerInsights=enabled.",
)


# -- Elastic Load Balancing ----------------------------------------------------------------------------------

_ELB_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")


def _names(args: ResourceValidationArgs, report: ReportViolation) -> None:
    name = str(args.props.get("name") or "")
    if not _ELB_NAME.match(name):
        report(f"name {name!r}: at most 32 alphanumeric characters or hyphens, not beginning or ending with a "
               "hyphen (ELBv2 API CreateLoadBalancer / CreateTargetGroup Name)", None)
    if args.resource_type == LOAD_BALANCER and name.startswith("internal-"):
        report(f"name {name!r}: a load balancer name \"must not begin with 'internal-'\" (CreateLoadBalancer)", None)


lb_names = TypedResourcePolicy(
    "aws-api-lb-names",
    "Load balancer and target group names ELBv2 accepts: at most 32 alphanumerics or hyphens, no hyphen at either "
    "end, a load balancer's not beginning with \"internal-\" (ELBv2 API reference, CreateLoadBalancer and "
    "CreateTargetGroup, Name).",
    types=[LOAD_BALANCER, TARGET_GROUP], validate=_names, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py `elb_name` shortens long names with a hash.",
)


def _network_lb(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if props.get("loadBalancerType") != "network":
        return
    if not props.get("securityGroups"):
        report("a Network Load Balancer created without security groups can never get any: \"You can't add "
               "security groups to a Network Load Balancer that was created without them\" (NLB guide, "
               "\"Security groups for your Network Load Balancer\")", None)
    if props.get("internal") is not True:
        report("the load balancer is internet-facing: the pooler serves clients inside the VPC only", None)
    if len(props.get("subnets") or []) + len(props.get("subnetMappings") or []) < 2:
        report("the load balancer has fewer than two subnets: one Availability Zone", None)


network_lb = TypedResourcePolicy(
    "aws-api-network-load-balancer",
    "A Network Load Balancer gets its security groups when it is created (they cannot be added later: NLB guide, "
    "\"Security groups for your Network Load Balancer\"), is internal, and spans at least two subnets.",
    types=[LOAD_BALANCER], validate=_network_lb, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py declares the NLB with its group in the stack's subnets.",
)


def _target_group(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if props.get("protocol") not in ("TCP", "TLS", "UDP", "TCP_UDP"):
        return  # an Application Load Balancer's group; none is declared
    delay = _int(props.get("deregistrationDelay"))
    if delay is not None and not 0 <= delay <= 3600:
        report(f"deregistrationDelay {delay}: 0-3600 seconds (ELBv2 target group attributes)", None)
    check = props.get("healthCheck") or {}
    for key, low, high in (("healthyThreshold", 2, 10), ("unhealthyThreshold", 2, 10), ("interval", 5, 300)):
        value = _int(check.get(key))
        if value is not None and not low <= value <= high:
            report(f"healthCheck.{key} {value}: {low}-{high} (ELBv2 API CreateTargetGroup)", None)
    if check.get("protocol") not in (None, "TCP", "HTTP", "HTTPS"):
        report(f"healthCheck.protocol {check.get('protocol')!r}: a TCP target group checks by TCP, HTTP or HTTPS",
               None)


def _awsvpc_targets(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = {str(g.props.get("arn")): g for g in of_type(args.resources, TARGET_GROUP)}
    for service in of_type(args.resources, ECS_SERVICE):
        for lb in service.props.get("loadBalancers") or []:
            group = groups.get(str(lb.get("targetGroupArn")))
            if group is not None and group.props.get("targetType") != "ip":
                report(f"target group {group.props.get('name')} has targetType {group.props.get('targetType')!r}, "
                       "but the Fargate (awsvpc) tasks of this service register by IP: \"you must choose ip as the "
                       "target type\" (ECS developer guide, load balancing)", group.urn)


target_group = TypedResourcePolicy(
    "aws-api-lb-target-group",
    "A Network Load Balancer target group ELBv2 accepts: deregistration delay 0-3600 s, health check thresholds "
    "2-10 and interval 5-300 s, by TCP, HTTP or HTTPS (ELBv2 API CreateTargetGroup, target group attributes).",
    types=[TARGET_GROUP], validate=_target_group, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py declares the target group.",
)
awsvpc_targets = StackPolicy(
    "aws-api-ecs-target-type-ip",
    "A target group an awsvpc (Fargate) service registers into has targetType ip (ECS developer guide, \"Use load "
    "balancing to distribute Amazon ECS service traffic\": awsvpc tasks register by IP).",
    types=[TARGET_GROUP, ECS_SERVICE], validate=_awsvpc_targets, severity=Severity.HIGH,
    controls=["issue 13 pooler"], remediation="targetType=\"ip\" on the pooler's target group.",
)


def _listener(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    protocol = props.get("protocol")
    if protocol == "TLS" and not props.get("certificateArn"):
        report("a TLS listener without certificateArn: \"A certificate must be specified for TLS listeners\"", None)
    if protocol == "TLS" and _int(props.get("port")) in POSTGRES_PORTS:
        report(f"a TLS listener on PostgreSQL's port {props.get('port')}: a PostgreSQL client opens with an "
               "SSLRequest message before any TLS handshake, which a TLS listener (expecting a ClientHello) cannot "
               "read; forward TCP and let PgBouncer terminate TLS (client_tls_*)", None)


listener = TypedResourcePolicy(
    "aws-api-lb-listener",
    "A listener ELBv2 accepts and PostgreSQL can use: a TLS listener names its certificate (ELBv2 API "
    "CreateListener), and PostgreSQL's port is forwarded as TCP, since the protocol starts TLS with its own "
    "SSLRequest message (PostgreSQL protocol documentation, \"SSL Session Encryption\").",
    types=[LISTENER], validate=_listener, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py: protocol TCP; PgBouncer terminates TLS itself.",
)


def _dimension_values(alarm: Any) -> Iterator[str]:
    for value in (alarm.props.get("dimensions") or {}).values():
        yield str(value)


def _pooler_alarms(args: StackValidationArgs, report: ReportViolation) -> None:
    alarms = [a for a in of_type(args.resources, METRIC_ALARM) if a.props.get("alarmActions")]
    watched = {(str(a.props.get("metricName")), v) for a in alarms for v in _dimension_values(a)}
    for service in of_type(args.resources, ECS_SERVICE):
        # No cluster: ECS assumes the one named "default" (CreateService: "If you do not specify a cluster, the
        # default cluster is assumed"), which is the ClusterName its alarm watches.
        cluster = str(service.props.get("cluster") or "default").rsplit("/", 1)[-1]
        if ("RunningTaskCount", cluster) not in watched:
            report(f"ECS service {service.props.get('name')} of cluster {cluster} has no RunningTaskCount alarm "
                   "paging a topic", service.urn)
    for group in of_type(args.resources, TARGET_GROUP):
        suffix = str(group.props.get("arnSuffix") or "")
        if suffix and ("UnHealthyHostCount", suffix) not in watched:
            report(f"target group {group.props.get('name')} has no UnHealthyHostCount alarm paging a topic", group.urn)


pooler_alarms = StackPolicy(
    "pooler-alarms",
    "Every ECS service has a RunningTaskCount alarm and every target group an UnHealthyHostCount alarm, each with "
    "an alarm action (the region's AlarmTopic): a pooler losing tasks pages someone.",
    types=[ECS_SERVICE, TARGET_GROUP, METRIC_ALARM], validate=_pooler_alarms, severity=Severity.HIGH,
    controls=["issue 13 pooler"], remediation="components/service_pooler.py declares the alarms on the AlarmTopic.",
)


# -- the admin console: directly from the ops runner, never through the NLB ----------------------------------------

ADMIN_USER_ENV = "PGBOUNCER_ADMIN_USER"
NLB_ADDRESSES_ENV = "PGBOUNCER_NLB_ADDRESSES"
"""The pooler image's contract (edumatrix_db/ops/pooler_agent.py `render`): the admin user, and the NLB's addresses
that hba.conf refuses the admin console to."""


def _environment(container: Mapping[str, Any]) -> dict[str, str]:
    return {str(e.get("name")): str(e.get("value") or "") for e in container.get("environment") or []
            if isinstance(e, Mapping)}


def _admin_console_direct_only(args: StackValidationArgs, report: ReportViolation) -> None:
    groups = {str(g.props.get("arn")): g for g in of_type(args.resources, TARGET_GROUP)}
    balancers = {str(b.props.get("arn")): b for b in of_type(args.resources, LOAD_BALANCER)}
    definitions = {str(t.props.get("arn")): t for t in of_type(args.resources, ECS_TASK_DEFINITION)}
    listeners = list(of_type(args.resources, LISTENER))
    for service in of_type(args.resources, ECS_SERVICE):
        definition = definitions.get(str(service.props.get("taskDefinition")))
        poolers = [_environment(c) for c in _containers(definition.props if definition else {})
                   if ADMIN_USER_ENV in _environment(c)]
        if not poolers:
            continue  # not a PgBouncer of the pooler image
        refused = {a.strip() for a in poolers[0].get(NLB_ADDRESSES_ENV, "").split(",") if a.strip()}
        name = service.props.get("name")
        for attachment in service.props.get("loadBalancers") or []:
            arn = str(attachment.get("targetGroupArn"))
            group = groups.get(arn)
            if group is not None and str(group.props.get("preserveClientIp")).lower() != "false":
                report(f"target group {group.props.get('name')} does not say preserveClientIp \"false\": with the "
                       "clients' addresses preserved, PgBouncer cannot tell a connection through the NLB from the "
                       "ops runner's, and its admin console answers whoever reaches the NLB with the admin password "
                       "(NLB guide, \"Edit target group attributes\": disabled, \"the source IP address is the "
                       "private IP address of the Network Load Balancer\")", group.urn)
            for listener_ in listeners:
                if not any(str(a.get("targetGroupArn")) == arn for a in listener_.props.get("defaultActions") or []):
                    continue
                balancer = balancers.get(str(listener_.props.get("loadBalancerArn")))
                if balancer is None:
                    continue
                mappings = balancer.props.get("subnetMappings") or []
                fixed = {str(m.get("privateIpv4Address")) for m in mappings if m.get("privateIpv4Address")}
                if not mappings or len(fixed) != len(mappings):
                    report(f"load balancer {balancer.props.get('name')} has no fixed private address in every "
                           "subnet (subnetMappings[].privateIpv4Address, an internal NLB's: ELBv2 API SubnetMapping): "
                           f"the tasks of {name} cannot know which addresses to refuse the admin console to",
                           balancer.urn)
                elif fixed != refused:
                    told = ", ".join(sorted(refused)) or "no address"
                    report(f"the tasks of {name} refuse the admin console to {told} ({NLB_ADDRESSES_ENV}), but "
                           f"their load balancer {balancer.props.get('name')} "
                           f"connects from {', '.join(sorted(fixed))}: the admin console would answer through it",
                           definition.urn if definition else service.urn)


pooler_admin_console_direct_only = StackPolicy(
    "pooler-admin-console-direct-only",
    "A PgBouncer task's admin console is reached only directly (the ops runner), never through its NLB: the target "
    "group says preserveClientIp \"false\" (connections through the NLB come from its private addresses: NLB guide, "
    "\"Edit target group attributes\"), the NLB has a fixed private address in each subnet (ELBv2 SubnetMapping "
    "PrivateIPv4Address, internal load balancers only), and the task's PGBOUNCER_NLB_ADDRESSES, which hba.conf "
    "refuses the admin console to, are exactly those addresses.",
    types=[ECS_SERVICE, ECS_TASK_DEFINITION, TARGET_GROUP, LISTENER, LOAD_BALANCER],
    validate=_admin_console_direct_only, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py (preserve_client_ip, subnet_mappings, PGBOUNCER_NLB_ADDRESSES) from "
                "extractionPooler.nlbAddresses.",
)


# -- the backend record (SSM Parameter Store) -------------------------------------------------------------------

_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.\-/]+$")
PARAMETER_MAX_DEPTH = 15
PARAMETER_VALUE_MAX_BYTES = {"Standard": 4096, "Advanced": 8192}


def _ssm_parameter(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    name = str(props.get("name") or "")
    if name and not _PARAMETER_NAME.match(name):
        report(f"parameter name {name!r}: \"Parameter names can include only the following symbols and letters: "
               "a-zA-Z0-9_.-\" and / for the hierarchy (SSM API PutParameter, Name)", None)
    first = name.lstrip("/").split("/", 1)[0].lower()
    if first.startswith(("aws", "ssm")):
        report(f"parameter name {name!r}: \"A parameter name can't be prefixed with aws or ssm (case-insensitive)\" "
               "(SSM API PutParameter, Name)", None)
    depth = name.strip("/").count("/") + 1
    if depth > PARAMETER_MAX_DEPTH:
        report(f"parameter name {name!r} is {depth} levels deep: \"Parameter hierarchies are limited to a maximum "
               f"depth of fifteen levels\" (SSM API PutParameter, Name)", None)
    kind = props.get("type")
    if kind not in ("String", "StringList", "SecureString"):
        report(f"parameter type {kind!r}: \"Valid types are String, StringList and SecureString\"", None)
    if kind == "SecureString" and props.get("insecureValue") is not None:
        report("insecureValue with type SecureString: \"This argument is not valid with a type of SecureString\" "
               "(pulumi-aws ssm.Parameter)", None)
    tier = str(props.get("tier") or "Standard")
    value = props.get("insecureValue")
    limit = PARAMETER_VALUE_MAX_BYTES.get(tier)
    if isinstance(value, str) and limit is not None and len(value.encode()) > limit:
        report(f"a parameter of the {tier} tier holds at most {limit} bytes; this value has {len(value.encode())} (SSM "
               "Parameter Store quotas: standard 4 KB, advanced 8 KB)", None)


ssm_parameter = TypedResourcePolicy(
    "aws-api-ssm-parameter",
    "An SSM parameter PutParameter accepts: a name of a-zA-Z0-9_.-/ not prefixed with aws or ssm, at most fifteen "
    "levels deep, a valid type, no insecureValue on a SecureString, a value within its tier's size (SSM API "
    "PutParameter; Parameter Store quotas).",
    types=[SSM_PARAMETER], validate=_ssm_parameter, severity=Severity.HIGH, controls=["issue 13 pooler"],
    remediation="components/service_pooler.py declares the pooler's backend record (backend_parameter_name).",
)

_WRITES = ("ssm:putparameter", "ssm:deleteparameter", "ssm:labelparameterversion", "ssm:*", "*")
_WRITING_MANAGED = frozenset({"AmazonSSMFullAccess", "AdministratorAccess", "PowerUserAccess"})
"""AWS managed policies that allow ssm:PutParameter (AWS managed policy reference)."""


def _task_roles_read_only(args: StackValidationArgs, report: ReportViolation) -> None:
    task_roles = {str(t.props.get("taskRoleArn")) for t in of_type(args.resources, ECS_TASK_DEFINITION)}
    for role in _roles_of(args.resources, "ecs-tasks.amazonaws.com"):
        if str(role.props.get("arn")) not in task_roles:
            continue  # an execution role (ECS itself), not what the container's code runs with
        for attachment in _attachments(args.resources, role):
            arn = str(attachment.props.get("policyArn") or "")
            if arn.rsplit("/", 1)[-1] in _WRITING_MANAGED:
                report(f"the task role {role.props.get('name')} has the managed policy {arn}, which may put SSM "
                       "parameters: a pooler task that can put its backend record can move the service's traffic "
                       "itself; only the ops runner's switch may", attachment.urn)
        for policy in _inline_policies(args.resources, role):
            for statement in _statements(policy.props.get("policy")):
                actions = [a.lower() for a in _listed(statement.get("Action"))]
                if statement.get("Effect") == "Allow" and any(a in _WRITES for a in actions):
                    report(f"the task role {role.props.get('name')} may write SSM parameters ({', '.join(actions)}): "
                           "a pooler task that can put its backend record can move the service's traffic itself; "
                           "only the ops runner's switch may", policy.urn)


pooler_task_role_read_only = StackPolicy(
    "pooler-task-role-read-only",
    "An ECS task role may not put, delete or label SSM parameters (inline, or by AmazonSSMFullAccess, "
    "PowerUserAccess or AdministratorAccess): the pooler's agent only reads the backend record; moving traffic is "
    "the ops runner's switch alone (docs/extraction-runbook.md).",
    types=[ROLE, ECS_TASK_DEFINITION], validate=_task_roles_read_only, severity=Severity.HIGH,
    controls=["issue 13 pooler"], remediation="components/service_pooler.py task_policy: ssm:GetParameter only.",
)


_BACKEND_RECORD = re.compile(r"/extraction/[^/]+/pooler-backend$")
SWITCH_ENDPOINTS = {"ssm": "EDUMATRIX_SSM_ENDPOINT", "ecs": "EDUMATRIX_ECS_ENDPOINT"}
"""The AWS APIs the cutover's switch calls with the ops runner's role (the backend record, the task look-up)."""


def _switch_route(args: StackValidationArgs, report: ReportViolation) -> None:
    if not any(_BACKEND_RECORD.search(str(p.props.get("name") or "")) for p in of_type(args.resources, SSM_PARAMETER)):
        return
    endpoints = [e for e in of_type(args.resources, VPC_ENDPOINT) if e.props.get("vpcEndpointType") == "Interface"]
    for function in of_type(args.resources, FUNCTION):
        variables = (function.props.get("environment") or {}).get("variables") or {}
        if "EDUMATRIX_SECRETSMANAGER_ENDPOINT" not in variables:
            continue  # not the runner, or the runner on the VPC's own route (awsApiAccess: nat)
        missing = []
        for service, variable in sorted(SWITCH_ENDPOINTS.items()):
            found = [e for e in endpoints if str(e.props.get("serviceName") or "").endswith(f".{service}")
                     and e.props.get("privateDnsEnabled") is not True and e.props.get("policy")]
            if not found or variable not in variables:
                missing.append(f"{service} ({variable})")
        if missing:
            report(f"the stack runs an extraction pooler and the ops runner {function.props.get('name')} reaches AWS "
                   f"through its own endpoints, but has none for {', '.join(missing)}: the cutover's switch "
                   "(backend record, task look-up) would have no route", function.urn)


pooler_switch_route = StackPolicy(
    "pooler-switch-route",
    "While an extraction pooler is declared, an ops runner on VPC endpoints (awsApiAccess: endpoints) also has "
    "interface endpoints for SSM and ECS, private DNS off, with a policy, named in its environment: the cutover "
    "switches with its role from its security group.",
    types=[SSM_PARAMETER, FUNCTION, VPC_ENDPOINT], validate=_switch_route, severity=Severity.HIGH,
    controls=["issue 13 pooler"], remediation="components/ops_runner.py _endpoints (OpsRunnerArgs.pooler_parameters).",
)


POLICIES: list[PackPolicy] = [
    ecs_task_definition, ecs_task_hardening, ecs_service, ecs_service_posture, ecs_cluster, lb_names, network_lb,
    target_group, awsvpc_targets, listener, pooler_alarms, ssm_parameter, pooler_task_role_read_only,
    pooler_switch_route, pooler_admin_console_direct_only,
]
