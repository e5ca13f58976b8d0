"""policy/pooler.py: the extraction pooler's ECS and load balancer types. A compliant pooler (as
components/service_pooler.py declares it) passes; each example breaks one thing and is refused by its policy
saying why (the examples also feed tests/policy/test_pack_examples.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from policy import pooler
from tests.policy.fixtures import TAGS, resource, run

TG_ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/edumatrix-test-pgb-feedback/0123456789abcdef"
TG_SUFFIX = "targetgroup/edumatrix-test-pgb-feedback/0123456789abcdef"
LB_SUFFIX = "net/edumatrix-test-pgb-feedback/fedcba9876543210"
TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:edumatrix-test/db/feedback/app-AbCdEf"
LONG_NAME = "edumatrix-production-pgb-students-platform"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/pgbouncer@sha256:" + "ab" * 32
PARAMETER = "/edumatrix-test/extraction/feedback/pooler-backend"
PARAMETER_ARN = f"arn:aws:ssm:us-east-1:123456789012:parameter{PARAMETER}"
TASK_ROLE = "edumatrix-test-pooler-feedback-task"
TASK_ROLE_ARN = f"arn:aws:iam::123456789012:role/{TASK_ROLE}"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LB_ARN = f"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/{LB_SUFFIX}"
TASK_DEFINITION_ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/edumatrix-test-pooler-feedback:1"
NLB_ADDRESSES = ("10.20.1.250", "10.20.2.250")

Edit = Callable[[dict[str, Any]], None]


def container(**overrides: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "pgbouncer", "image": IMAGE, "essential": True, "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": 6432, "protocol": "tcp"}],
        "environment": [{"name": "PGBOUNCER_POOL_MODE", "value": "transaction"},
                        {"name": "PGBOUNCER_ADMIN_USER", "value": "edumatrix_pooler_admin"},
                        {"name": "PGBOUNCER_NLB_ADDRESSES", "value": ",".join(NLB_ADDRESSES)}],
        "secrets": [{"name": "PGBOUNCER_PASSWORD_FEEDBACK_APP", "valueFrom": f"{SECRET}:password::"}],
        "mountPoints": [{"sourceVolume": "pgbouncer-run", "containerPath": "/run/pgbouncer", "readOnly": False}],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/p", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "pgbouncer"}},
    }
    out.update(overrides)
    return out


def pooler_resources(edit: tuple[str, Edit] | None = None) -> list:
    """A compliant pooler; `edit` = (type, change of that resource's props)."""
    props: dict[str, dict[str, Any]] = {
        pooler.ECS_CLUSTER: {"name": "edumatrix-test-pooler-feedback", "tags": dict(TAGS),
                             "settings": [{"name": "containerInsights", "value": "enabled"}]},
        pooler.ECS_TASK_DEFINITION: {"family": "edumatrix-test-pooler-feedback", "arn": TASK_DEFINITION_ARN,
                                     "requiresCompatibilities": ["FARGATE"],
                                     "networkMode": "awsvpc", "cpu": "512", "memory": "1024", "tags": dict(TAGS),
                                     "taskRoleArn": TASK_ROLE_ARN, "volumes": [{"name": "pgbouncer-run"}],
                                     "containerDefinitions": json.dumps([container()])},
        pooler.ECS_SERVICE: {"name": "pgbouncer", "launchType": "FARGATE", "desiredCount": 2,
                             "taskDefinition": TASK_DEFINITION_ARN,
                             "cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/edumatrix-test-pooler-feedback",
                             "networkConfiguration": {"subnets": ["subnet-1", "subnet-2"], "securityGroups": ["sg-1"],
                                                      "assignPublicIp": False},
                             "loadBalancers": [{"targetGroupArn": TG_ARN, "containerName": "pgbouncer",
                                                "containerPort": 6432}],
                             "healthCheckGracePeriodSeconds": 30, "deploymentMinimumHealthyPercent": 100,
                             "deploymentMaximumPercent": 200, "enableExecuteCommand": False,
                             "deploymentCircuitBreaker": {"enable": True, "rollback": True}, "tags": dict(TAGS)},
        pooler.LOAD_BALANCER: {"name": "edumatrix-test-pgb-feedback", "arn": LB_ARN, "loadBalancerType": "network",
                               "internal": True, "securityGroups": ["sg-2"], "tags": dict(TAGS),
                               "subnetMappings": [{"subnetId": f"subnet-{n}", "privateIpv4Address": address}
                                                  for n, address in enumerate(NLB_ADDRESSES, 1)]},
        pooler.TARGET_GROUP: {"name": "edumatrix-test-pgb-feedback", "arn": TG_ARN, "arnSuffix": TG_SUFFIX,
                              "port": 6432, "protocol": "TCP", "targetType": "ip", "deregistrationDelay": "30",
                              "preserveClientIp": "false",
                              "healthCheck": {"protocol": "TCP", "interval": 10, "healthyThreshold": 3,
                                              "unhealthyThreshold": 3}, "tags": dict(TAGS)},
        pooler.LISTENER: {"port": 5432, "protocol": "TCP", "tags": dict(TAGS), "loadBalancerArn": LB_ARN,
                          "defaultActions": [{"type": "forward", "targetGroupArn": TG_ARN}]},
        pooler.SSM_PARAMETER: {"name": PARAMETER, "arn": PARAMETER_ARN, "type": "String", "tier": "Standard",
                               "insecureValue": '{"dbname": "edumatrix", "generation": 0, "host": "db", "port": 5432}',
                               "tags": dict(TAGS)},
        pooler.ROLE: {"name": TASK_ROLE, "arn": TASK_ROLE_ARN, "tags": dict(TAGS), "assumeRolePolicy": json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})},
        ROLE_POLICY: {"role": TASK_ROLE, "policy": json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": PARAMETER_ARN}]})},
    }
    if edit is not None:
        edit[1](props[edit[0]])
    alarms = [resource(pooler.METRIC_ALARM, f"alarm-{metric}", {
        "metricName": metric, "dimensions": dims, "alarmActions": [TOPIC], "tags": dict(TAGS)})
        for metric, dims in (("UnHealthyHostCount", {"LoadBalancer": LB_SUFFIX, "TargetGroup": TG_SUFFIX}),
                             ("RunningTaskCount", {"ClusterName": "edumatrix-test-pooler-feedback",
                                                   "ServiceName": "pgbouncer"}))]
    return [resource(t, t.rsplit(":", 1)[-1].lower(), p) for t, p in props.items()] + alarms


def _containers(edit: Edit) -> Edit:
    def apply(props: dict[str, Any]) -> None:
        containers = json.loads(props["containerDefinitions"])
        edit(containers[0])
        props["containerDefinitions"] = json.dumps(containers)
    return apply


def runner_on_endpoints(without: str = "") -> list:
    """The ops runner with `awsApiAccess: endpoints` and the switch's endpoints (but `without`), as declared."""
    services = [s for s in ("secretsmanager", "ssm", "ecs") if s != without]
    variables = {f"EDUMATRIX_{s.upper()}_ENDPOINT": f"https://vpce-{s}.example" for s in services}
    policy = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:role/r"},
                                        "Action": "*", "Resource": "*"}]})
    return [resource(pooler.FUNCTION, "edumatrix-test-ops-runner", {
        "name": "edumatrix-test-ops-runner", "environment": {"variables": variables}, "tags": dict(TAGS)}),
        *[resource(pooler.VPC_ENDPOINT, f"edumatrix-test-ops-runner-{s}", {
            "serviceName": f"com.amazonaws.us-east-1.{s}", "vpcEndpointType": "Interface", "privateDnsEnabled": False,
            "policy": policy, "tags": dict(TAGS)}) for s in services]]


def test_a_runner_with_the_switch_endpoints_passes_the_switch_route_policy() -> None:
    assert _pooler_messages([*pooler_resources(), *runner_on_endpoints()]) == []


def test_a_switch_endpoint_with_private_dns_on_does_not_count() -> None:
    resources = [*pooler_resources(), *runner_on_endpoints()]
    ssm = next(r for r in resources if r.name == "edumatrix-test-ops-runner-ssm")
    ssm.props["privateDnsEnabled"] = True
    assert [m for p, m in _pooler_messages(resources) if p == "pooler-switch-route" and "none for ssm" in m]


def test_a_target_group_left_to_preserve_client_addresses_is_refused_for_the_admin_console() -> None:
    resources = pooler_resources((pooler.TARGET_GROUP, lambda p: p.pop("preserveClientIp")))
    assert [p for p, m in _pooler_messages(resources) if "preserveClientIp" in m] == [
        "pooler-admin-console-direct-only"]


def test_an_nlb_without_fixed_addresses_is_refused_for_the_admin_console() -> None:
    resources = pooler_resources((pooler.LOAD_BALANCER, lambda p: p.update(
        subnetMappings=[{"subnetId": "subnet-1"}, {"subnetId": "subnet-2"}])))
    assert [p for p, m in _pooler_messages(resources) if "no fixed private address" in m] == [
        "pooler-admin-console-direct-only"]


def _example(type_: str, edit: Edit) -> Callable[[], list]:
    return lambda: pooler_resources((type_, edit))


# policy -> (a one-edit break of the compliant pooler, the message its policy reports)
AWS_API_EXAMPLES: dict[str, tuple[Callable[[], list], str]] = {
    "aws-api-ecs-task-definition": (_example(pooler.ECS_TASK_DEFINITION, lambda p: p.update(memory="512")),
        "cpu '512' with memory '512' is no Fargate task size: RegisterTaskDefinition answers \"ClientException: "
        "Invalid 'cpu' setting for task\" (ECS developer guide, \"Troubleshoot Amazon ECS task definition invalid "
        "CPU or memory errors\")"),
    "aws-api-ecs-service": (_example(pooler.ECS_SERVICE, lambda p: p.pop("loadBalancers")),
        "healthCheckGracePeriodSeconds without loadBalancers: \"Health check grace period is only valid for "
        "services configured to use load balancers\" (ECS API CreateService)"),
    "aws-api-lb-names": (_example(pooler.TARGET_GROUP, lambda p: p.update(name=LONG_NAME)),
        "name 'edumatrix-production-pgb-students-platform': at most 32 alphanumeric characters or hyphens, not "
        "beginning or ending with a hyphen (ELBv2 API CreateLoadBalancer / CreateTargetGroup Name)"),
    "aws-api-network-load-balancer": (_example(pooler.LOAD_BALANCER, lambda p: p.pop("securityGroups")),
        "a Network Load Balancer created without security groups can never get any: \"You can't add security "
        "groups to a Network Load Balancer that was created without them\" (NLB guide, \"Security groups for your "
        "Network Load Balancer\")"),
    "aws-api-lb-target-group": (_example(pooler.TARGET_GROUP, lambda p: p.update(deregistrationDelay="7200")),
        "deregistrationDelay 7200: 0-3600 seconds (ELBv2 target group attributes)"),
    "aws-api-ecs-target-type-ip": (_example(pooler.TARGET_GROUP, lambda p: p.update(targetType="instance")),
        "target group edumatrix-test-pgb-feedback has targetType 'instance', but the Fargate (awsvpc) tasks of this "
        "service register by IP: \"you must choose ip as the target type\" (ECS developer guide, load balancing)"),
    "aws-api-ssm-parameter": (_example(pooler.SSM_PARAMETER, lambda p: p.update(name="/ssm/pooler-backend")),
        "parameter name '/ssm/pooler-backend': \"A parameter name can't be prefixed with aws or ssm "
        "(case-insensitive)\" (SSM API PutParameter, Name)"),
    "aws-api-lb-listener": (_example(pooler.LISTENER, lambda p: p.update(protocol="TLS", certificateArn="arn:c")),
        "a TLS listener on PostgreSQL's port 5432: a PostgreSQL client opens with an SSLRequest message before any "
        "TLS handshake, which a TLS listener (expecting a ClientHello) cannot read; forward TCP and let PgBouncer "
        "terminate TLS (client_tls_*)"),
}

EXAMPLES: dict[str, tuple[Callable[[], list], str]] = {
    "ecs-task-hardening": (_example(pooler.ECS_TASK_DEFINITION, _containers(lambda c: c.update(
        image="123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/pgbouncer:latest"))),
        "container pgbouncer runs image '123456789012.dkr.ecr.us-east-1.amazonaws.com/platform/pgbouncer:latest', "
        "not pinned by digest (@sha256:...): a tag can be moved to other code between two task launches"),
    "ecs-service-posture": (_example(pooler.ECS_SERVICE, lambda p: p.update(desiredCount=1)),
        "desiredCount 1: one task is one point of failure; run at least two"),
    "ecs-cluster-container-insights": (_example(pooler.ECS_CLUSTER, lambda p: p.update(settings=[])),
        "containerInsights is not enabled: the running-task alarm reads RunningTaskCount from ECS/ContainerInsights "
        "(Security Hub ECS.12)"),
    "pooler-task-role-read-only": (_example(ROLE_POLICY, lambda p: p.update(policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:PutParameter"], "Resource": PARAMETER_ARN}]}))),
        f"the task role {TASK_ROLE} may write SSM parameters (ssm:getparameter, ssm:putparameter): a pooler task "
        "that can put its backend record can move the service's traffic itself; only the ops runner's switch may"),
    "pooler-switch-route": (lambda: [*pooler_resources(), *runner_on_endpoints(without="ecs")],
        "the stack runs an extraction pooler and the ops runner edumatrix-test-ops-runner reaches AWS through its own "
        "endpoints, but has none for ecs (EDUMATRIX_ECS_ENDPOINT): the cutover's switch (backend record, task "
        "look-up) would have no route"),
    "pooler-admin-console-direct-only": (_example(pooler.ECS_TASK_DEFINITION, _containers(lambda c: c.update(
        environment=[e for e in c["environment"] if e["name"] != "PGBOUNCER_NLB_ADDRESSES"]))),
        "the tasks of pgbouncer refuse the admin console to no address (PGBOUNCER_NLB_ADDRESSES), but their load "
        "balancer edumatrix-test-pgb-feedback connects from 10.20.1.250, 10.20.2.250: the admin console would answer "
        "through it"),
    "pooler-alarms": (lambda: [r for r in pooler_resources() if r.name != "alarm-RunningTaskCount"],
        "ECS service pgbouncer of cluster edumatrix-test-pooler-feedback has no RunningTaskCount alarm paging a "
        "topic"),
}


def _pooler_messages(resources: list) -> list[tuple[str, str]]:
    names = {p.name for p in pooler.POLICIES}
    return [(v.policy, v.message) for v in run(resources, policies=pooler.POLICIES) if v.policy in names]


def test_the_pooler_as_declared_passes_every_pooler_policy() -> None:
    assert _pooler_messages(pooler_resources()) == []


def test_every_pooler_policy_has_an_example() -> None:
    assert set(AWS_API_EXAMPLES) | set(EXAMPLES) == {p.name for p in pooler.POLICIES}


@pytest.mark.parametrize("policy", sorted({**AWS_API_EXAMPLES, **EXAMPLES}))
def test_the_pooler_policy_refuses_its_example_and_only_it(policy: str) -> None:
    build, message = {**AWS_API_EXAMPLES, **EXAMPLES}[policy]
    assert _pooler_messages(build()) == [(policy, message)]


@pytest.mark.parametrize(("edit", "piece"), [
    (lambda c: c.update(privileged=True), "is privileged (Security Hub ECS.4)"),
    (lambda c: c.update(readonlyRootFilesystem=False), "writable root file system (Security Hub ECS.5)"),
    (lambda c: c.pop("logConfiguration"), "has no logConfiguration (Security Hub ECS.9)"),
    (lambda c: c["environment"].append({"name": "PGBOUNCER_ADMIN_PASSWORD", "value": "x"}),
     "passes PGBOUNCER_ADMIN_PASSWORD as plain environment variables"),
])
def test_each_container_hardening_rule_is_reported(edit: Edit, piece: str) -> None:
    messages = _pooler_messages(pooler_resources((pooler.ECS_TASK_DEFINITION, _containers(edit))))
    assert [policy for policy, _ in messages] == ["ecs-task-hardening"]
    assert piece in messages[0][1]


def test_a_fargate_task_in_bridge_mode_is_refused() -> None:
    edit = (pooler.ECS_TASK_DEFINITION, lambda p: p.update(networkMode="bridge"))
    messages = _pooler_messages(pooler_resources(edit))
    assert [(p, "a Fargate task definition takes awsvpc" in m) for p, m in messages] == [
        ("aws-api-ecs-task-definition", True)]


def test_a_secret_given_by_name_rather_than_arn_is_refused() -> None:
    edit = _containers(lambda c: c.update(secrets=[{"name": "P", "valueFrom": "edumatrix-test/db/feedback/app"}]))
    messages = _pooler_messages(pooler_resources((pooler.ECS_TASK_DEFINITION, edit)))
    assert [p for p, _ in messages] == ["aws-api-ecs-task-definition"]
    assert "not an ARN" in messages[0][1]


def test_a_fargate_service_without_subnets_is_refused() -> None:
    messages = _pooler_messages(pooler_resources((pooler.ECS_SERVICE, lambda p: p.pop("networkConfiguration"))))
    assert ("aws-api-ecs-service", "a Fargate service has no networkConfiguration.subnets: CreateService answers "
            "\"InvalidParameterException: Network Configuration must be provided when networkMode 'awsvpc' is "
            "specified\"") in messages


def test_a_public_ip_and_a_single_subnet_are_refused() -> None:
    def edit(p: dict[str, Any]) -> None:
        p["networkConfiguration"].update(assignPublicIp=True, subnets=["subnet-1"])
    messages = [m for _, m in _pooler_messages(pooler_resources((pooler.ECS_SERVICE, edit)))]
    assert any("Security Hub ECS.2" in m for m in messages)
    assert any("fewer than two subnets" in m for m in messages)


def test_an_internet_facing_load_balancer_is_refused() -> None:
    messages = _pooler_messages(pooler_resources((pooler.LOAD_BALANCER, lambda p: p.update(internal=False))))
    assert [p for p, _ in messages] == ["aws-api-network-load-balancer"]


def test_a_load_balancer_named_internal_is_refused() -> None:
    messages = _pooler_messages(pooler_resources((pooler.LOAD_BALANCER, lambda p: p.update(name="internal-pgb"))))
    assert messages == [("aws-api-lb-names", "name 'internal-pgb': a load balancer name \"must not begin with "
                                             "'internal-'\" (CreateLoadBalancer)")]


def test_a_target_group_without_an_unhealthy_host_alarm_is_reported() -> None:
    resources = [r for r in pooler_resources() if r.name != "alarm-UnHealthyHostCount"]
    assert _pooler_messages(resources) == [
        ("pooler-alarms", "target group edumatrix-test-pgb-feedback has no UnHealthyHostCount alarm paging a topic")]


def test_a_tmpfs_on_fargate_is_refused() -> None:
    edit = _containers(lambda c: c.update(linuxParameters={"tmpfs": [{"containerPath": "/run", "size": 16}]}))
    messages = _pooler_messages(pooler_resources((pooler.ECS_TASK_DEFINITION, edit)))
    assert [(p, "the tmpfs parameter isn't supported" in m) for p, m in messages] == [
        ("aws-api-ecs-task-definition", True)]


def test_a_mount_point_of_an_undeclared_volume_is_refused() -> None:
    messages = _pooler_messages(pooler_resources((pooler.ECS_TASK_DEFINITION, lambda p: p.update(volumes=[]))))
    assert [(p, "which the task definition does not declare" in m) for p, m in messages] == [
        ("aws-api-ecs-task-definition", True)]


@pytest.mark.parametrize(("edit", "piece"), [
    (lambda p: p.update(name="/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"), "16 levels deep"),
    (lambda p: p.update(name="/edumatrix test/backend"), "can include only"),
    (lambda p: p.update(insecureValue="x" * 4097), "at most 4096 bytes"),
    (lambda p: p.update(type="SecureString"), "insecureValue with type SecureString"),
])
def test_each_ssm_parameter_constraint_is_reported(edit: Edit, piece: str) -> None:
    messages = _pooler_messages(pooler_resources((pooler.SSM_PARAMETER, edit)))
    assert [(p, piece in m) for p, m in messages] == [("aws-api-ssm-parameter", True)]


def test_an_execution_role_that_may_write_parameters_is_not_a_task_role() -> None:
    edit = (pooler.ECS_TASK_DEFINITION, lambda p: p.pop("taskRoleArn"))
    broken = pooler_resources(edit)
    for r in broken:
        if r.type == ROLE_POLICY:
            r.props["policy"] = json.dumps({"Statement": [{"Effect": "Allow", "Action": "ssm:PutParameter",
                                                           "Resource": PARAMETER_ARN}]})
    assert [p for p, _ in _pooler_messages(broken)] == []


def test_a_task_role_given_ssm_full_access_is_refused() -> None:
    attachment = resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "ssm-full", {
        "role": TASK_ROLE, "policyArn": "arn:aws:iam::aws:policy/AmazonSSMFullAccess"})
    messages = _pooler_messages([*pooler_resources(), attachment])
    assert [(p, "AmazonSSMFullAccess" in m) for p, m in messages] == [("pooler-task-role-read-only", True)]
