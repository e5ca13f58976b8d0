"""policy/pooler.py, every violation as a user reads it in CI: one row per way to break the compliant pooler
(tests/policy/test_pooler.py), with the policy that reports it, the resource it names and its whole message."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from policy import pooler
from policy.base import PackPolicy
from tests.policy.fixtures import resource
from tests.policy.reports import violations_of as reports
from tests.policy.test_pooler import (
    LB_ARN,
    ROLE_POLICY,
    TASK_ROLE,
    TG_ARN,
    Edit,
    _containers,
    pooler_resources,
    runner_on_endpoints,
)

Build = Callable[[], list]


def _edit(type_: str, edit: Edit) -> Build:
    return lambda: pooler_resources((type_, edit))


def _container(edit: Edit) -> Build:
    return _edit(pooler.ECS_TASK_DEFINITION, _containers(edit))


def _updated(type_: str, **values: Any) -> Build:
    """The pooler with `values` set in the props of its resource of `type_`."""
    return _edit(type_, lambda p: p.update(values))


def _health_check(**values: Any) -> Build:
    return _edit(pooler.TARGET_GROUP, lambda p: p["healthCheck"].update(values))


def _before(type_: str, *extra: Any, edit: tuple[str, Edit] | None = None) -> Build:
    """The pooler (with `edit`) with `extra` resources placed before its first resource of `type_`: a policy
    that stops at the first resource it should skip would never reach the pooler's."""
    def build() -> list:
        resources = pooler_resources(edit)
        at = next(i for i, r in enumerate(resources) if r.type == type_)
        return [*resources[:at], *extra, *resources[at:]]
    return build


def _env(name: str, value: str | None) -> Edit:
    """Set (or with None, remove the value of) one environment variable of the pooler's container."""
    def apply(c: dict[str, Any]) -> None:
        c["environment"] = [e for e in c["environment"] if e["name"] != name] + [
            {"name": name} if value is None else {"name": name, "value": value}]
    return apply


def _attached(policy_arn: str) -> Build:
    """The pooler with `policy_arn` attached to its task role."""
    return lambda: [*pooler_resources(), resource("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "attachment",
                                                  {"role": TASK_ROLE, "policyArn": policy_arn})]


def _levels(count: int) -> str:
    return "".join(f"/l{n}" for n in range(count))


P = pooler
CASES: list[Any] = [
    # aws-api-ecs-task-definition
    pytest.param(P.ecs_task_definition, _edit(P.ECS_TASK_DEFINITION, lambda p: p.update(networkMode="bridge")),
                 [("taskdefinition",
                   "networkMode 'bridge': a Fargate task definition takes awsvpc (ECS developer guide, task "
                   "definition parameters, networkMode: \"If you're using Fargate, the awsvpc network mode is "
                   'required")')], id="task-definition-bridge-mode"),
    pytest.param(P.ecs_task_definition, _edit(P.ECS_TASK_DEFINITION, lambda p: p.pop("cpu")),
                 [("taskdefinition",
                   "cpu None with memory '1024' is no Fargate task size: RegisterTaskDefinition answers "
                   "\"ClientException: Invalid 'cpu' setting for task\" (ECS developer guide, \"Troubleshoot "
                   'Amazon ECS task definition invalid CPU or memory errors")')],
                 id="task-definition-without-cpu"),
    pytest.param(P.ecs_task_definition, _container(lambda c: c["portMappings"][0].update(hostPort=5432)),
                 [("taskdefinition",
                   'container pgbouncer: hostPort 5432 differs from containerPort 6432: with awsvpc "hostPort must '
                   'either be left blank or set to the same value as the containerPort"')],
                 id="task-definition-host-port-differs"),
    pytest.param(P.ecs_task_definition, _container(lambda c: c["portMappings"][0].update(hostPort=6432)),
                 [], id="task-definition-host-port-equal-is-fine"),
    pytest.param(P.ecs_task_definition, _container(lambda c: c.update(linuxParameters={"tmpfs": [{"size": 16}]})),
                 [("taskdefinition",
                   "container pgbouncer: linuxParameters.tmpfs on Fargate: \"If you're using tasks that use the "
                   "Fargate launch type, the tmpfs parameter isn't supported\" (ECS API LinuxParameters); mount a "
                   "task volume (bind mount) instead")], id="task-definition-tmpfs"),
    pytest.param(P.ecs_task_definition, _edit(P.ECS_TASK_DEFINITION, lambda p: p.update(volumes=[])),
                 [("taskdefinition",
                   "container pgbouncer: mountPoints names volume 'pgbouncer-run', which the task definition does "
                   'not declare: sourceVolume "must be a volume name referenced in the name parameter of task '
                   'definition volume" (ECS API MountPoint)')],
                 id="task-definition-undeclared-volume"),
    pytest.param(P.ecs_task_definition, _container(lambda c: c.update(secrets=[{"name": "P", "valueFrom": "app"}])),
                 [("taskdefinition",
                   "container pgbouncer: secret P takes its value from 'app', not an ARN: a Secrets Manager "
                   "reference is the secret's full ARN, optionally :json-key:version-stage:version-id (ECS "
                   'developer guide, "Pass Secrets Manager secrets through Amazon ECS environment variables")')],
                 id="task-definition-secret-by-name"),
    # ecs-task-hardening
    pytest.param(P.ecs_task_hardening, _container(lambda c: c.update(privileged=True)),
                 [("taskdefinition", "container pgbouncer is privileged (Security Hub ECS.4)")],
                 id="hardening-privileged"),
    pytest.param(P.ecs_task_hardening, _container(lambda c: c.update(readonlyRootFilesystem=False)),
                 [("taskdefinition", "container pgbouncer has a writable root file system (Security Hub ECS.5)")],
                 id="hardening-writable-root"),
    pytest.param(P.ecs_task_hardening, _container(lambda c: c.pop("logConfiguration")),
                 [("taskdefinition", "container pgbouncer has no logConfiguration (Security Hub ECS.9)")],
                 id="hardening-no-logs"),
    pytest.param(P.ecs_task_hardening, _container(_env("DB_TOKEN", "x")),
                 [("taskdefinition",
                   "container pgbouncer passes DB_TOKEN as plain environment variables: secrets go in `secrets` "
                   "(Security Hub ECS.8)")], id="hardening-credential-in-env"),
    pytest.param(P.ecs_task_hardening, _container(lambda c: c["environment"].extend([
        {"name": "DB_TOKEN", "value": "x"}, {"name": "API_SECRET", "value": "y"}])),
                 [("taskdefinition",
                   "container pgbouncer passes DB_TOKEN, API_SECRET as plain environment variables: secrets go in "
                   "`secrets` (Security Hub ECS.8)")], id="hardening-two-credentials-in-env"),
    # aws-api-ecs-service
    pytest.param(P.ecs_service, _edit(P.ECS_SERVICE, lambda p: p.update(deploymentMaximumPercent=100)),
                 [("service",
                   "deploymentMaximumPercent 100 is not above deploymentMinimumHealthyPercent 100: ECS could "
                   "neither start a new task nor stop an old one (ECS API DeploymentConfiguration)")],
                 id="service-deployment-cannot-progress"),
    pytest.param(P.ecs_service, _edit(P.ECS_SERVICE, lambda p: p.update(deploymentMaximumPercent=101)),
                 [], id="service-deployment-one-percent-above-is-fine"),
    # ecs-service-posture
    pytest.param(P.ecs_service_posture, _edit(P.ECS_SERVICE, lambda p: p["networkConfiguration"].update(
        assignPublicIp=True)),
                 [("service", "the service assigns public IP addresses to its tasks (Security Hub ECS.2)")],
                 id="posture-public-ip"),
    pytest.param(P.ecs_service_posture, _edit(P.ECS_SERVICE, lambda p: p["networkConfiguration"].update(
        subnets=["subnet-1"])),
                 [("service",
                   "the tasks have fewer than two subnets: ECS spreads tasks over the subnets' Availability Zones")],
                 id="posture-one-subnet"),
    pytest.param(P.ecs_service_posture, _edit(P.ECS_SERVICE, lambda p: p.update(enableExecuteCommand=True)),
                 [("service",
                   "enableExecuteCommand opens a shell into the tasks (the pooler holds the service's passwords)")],
                 id="posture-execute-command"),
    pytest.param(P.ecs_service_posture, _edit(P.ECS_SERVICE, lambda p: p["deploymentCircuitBreaker"].update(
        rollback=False)),
                 [("service",
                   "no deployment circuit breaker with rollback: a broken image would replace healthy tasks")],
                 id="posture-circuit-breaker-without-rollback"),
    # ecs-cluster-container-insights
    pytest.param(P.ecs_cluster, _edit(P.ECS_CLUSTER, lambda p: p["settings"][0].update(value="enhanced")),
                 [], id="cluster-enhanced-insights-are-fine"),
    # aws-api-lb-names
    pytest.param(P.lb_names, _edit(P.TARGET_GROUP, lambda p: p.pop("name")),
                 [("targetgroup",
                   "name '': at most 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen "
                   "(ELBv2 API CreateLoadBalancer / CreateTargetGroup Name)")],
                 id="names-target-group-unnamed"),
    # aws-api-network-load-balancer
    pytest.param(P.network_lb, _edit(P.LOAD_BALANCER, lambda p: p.update(internal=False)),
                 [("loadbalancer",
                   "the load balancer is internet-facing: the pooler serves clients inside the VPC only")],
                 id="nlb-internet-facing"),
    pytest.param(P.network_lb, _edit(P.LOAD_BALANCER, lambda p: p["subnetMappings"].pop()),
                 [("loadbalancer", "the load balancer has fewer than two subnets: one Availability Zone")],
                 id="nlb-one-subnet"),
    # aws-api-lb-target-group
    *[pytest.param(P.target_group, _updated(P.TARGET_GROUP, deregistrationDelay=delay),
                   [] if ok else [("targetgroup", f"deregistrationDelay {delay}: 0-3600 seconds (ELBv2 target group "
                                                  "attributes)")], id=f"target-group-delay-{delay}")
      for delay, ok in (("0", True), ("3600", True), ("-1", False), ("3601", False))],
    *[pytest.param(P.target_group, _health_check(**{key: value}), [] if ok else [
        ("targetgroup", f"healthCheck.{key} {value}: {low}-{high} (ELBv2 API CreateTargetGroup)")],
                   id=f"target-group-{key}-{value}")
      for key, low, high in (("healthyThreshold", 2, 10), ("unhealthyThreshold", 2, 10), ("interval", 5, 300))
      for value, ok in ((low, True), (high, True), (low - 1, False), (high + 1, False))],
    pytest.param(P.target_group, _health_check(protocol="UDP"),
                 [("targetgroup", "healthCheck.protocol 'UDP': a TCP target group checks by TCP, HTTP or HTTPS")],
                 id="target-group-health-check-by-udp"),
    *[pytest.param(P.target_group, _health_check(protocol=protocol), [], id=f"target-group-health-check-by-{protocol}")
      for protocol in ("HTTP", "HTTPS")],
    *[pytest.param(P.target_group, _updated(P.TARGET_GROUP, protocol=protocol, deregistrationDelay="3601"),
        [("targetgroup", "deregistrationDelay 3601: 0-3600 seconds (ELBv2 target group attributes)")],
        id=f"target-group-{protocol}-is-checked") for protocol in ("TLS", "UDP", "TCP_UDP")],
    # aws-api-ecs-target-type-ip: names the target group
    pytest.param(P.awsvpc_targets, _edit(P.TARGET_GROUP, lambda p: p.update(targetType="instance")),
                 [("targetgroup",
                   "target group edumatrix-test-pgb-feedback has targetType 'instance', but the Fargate (awsvpc) "
                   'tasks of this service register by IP: "you must choose ip as the target type" (ECS developer '
                   "guide, load balancing)")], id="target-type-instance"),
    # aws-api-lb-listener
    pytest.param(P.listener, _edit(P.LISTENER, lambda p: p.update(protocol="TLS", port=443)),
                 [("listener",
                   'a TLS listener without certificateArn: "A certificate must be specified for TLS listeners"')],
                 id="listener-tls-without-certificate"),
    # pooler-alarms: each names what lacks its alarm
    pytest.param(P.pooler_alarms, lambda: [r for r in pooler_resources() if r.name != "alarm-RunningTaskCount"],
                 [("service",
                   "ECS service pgbouncer of cluster edumatrix-test-pooler-feedback has no RunningTaskCount alarm "
                   "paging a topic")], id="alarms-service-without-running-task-alarm"),
    pytest.param(P.pooler_alarms, lambda: [r for r in pooler_resources() if r.name != "alarm-UnHealthyHostCount"],
                 [("targetgroup",
                   "target group edumatrix-test-pgb-feedback has no UnHealthyHostCount alarm paging a topic")],
                 id="alarms-target-group-without-unhealthy-host-alarm"),
    pytest.param(P.pooler_alarms, _edit(P.ECS_SERVICE, lambda p: p.update(cluster="edumatrix-test-pooler-feedback")),
                 [], id="alarms-service-naming-its-cluster-by-name-is-watched"),
    pytest.param(P.pooler_alarms, _edit(P.ECS_SERVICE, lambda p: p.pop("cluster")),
                 [("service", "ECS service pgbouncer of cluster default has no RunningTaskCount alarm paging a topic")],
                 id="alarms-service-without-a-cluster-is-in-the-default-cluster"),
    pytest.param(P.pooler_alarms, lambda: [
        dataclasses.replace(r, props={**r.props, "dimensions": {**r.props["dimensions"], "ClusterName": "default"}})
        if r.name == "alarm-RunningTaskCount" else r
        for r in _edit(P.ECS_SERVICE, lambda p: p.pop("cluster"))()], [],
                 id="alarms-service-without-a-cluster-is-watched-by-an-alarm-on-the-default-cluster"),
    pytest.param(P.pooler_alarms, lambda: [r for r in _edit(P.TARGET_GROUP, lambda p: p.pop("arnSuffix"))()
                                           if r.name != "alarm-UnHealthyHostCount"], [],
                 id="alarms-target-group-without-arn-suffix-is-not-watched"),
    # aws-api-ssm-parameter
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name=_levels(16))),
                 [("parameter",
                   "parameter name '/l0/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14/l15' is 16 levels deep: "
                   '"Parameter hierarchies are limited to a maximum depth of fifteen levels" (SSM API '
                   "PutParameter, Name)")], id="parameter-sixteen-levels"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name=_levels(15))),
                 [], id="parameter-fifteen-levels-is-fine"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name=_levels(15) + "/X")),
                 [("parameter",
                   "parameter name '/l0/l1/l2/l3/l4/l5/l6/l7/l8/l9/l10/l11/l12/l13/l14/X' is 16 levels deep: "
                   '"Parameter hierarchies are limited to a maximum depth of fifteen levels" (SSM API '
                   "PutParameter, Name)")], id="parameter-sixteen-levels-the-last-named-x"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name="/Xaws/backend")),
                 [], id="parameter-name-with-aws-after-its-first-letter-is-fine"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name="/aws/backend")),
                 [("parameter",
                   "parameter name '/aws/backend': \"A parameter name can't be prefixed with aws or ssm "
                   '(case-insensitive)" (SSM API PutParameter, Name)')], id="parameter-name-prefixed-with-aws"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(type="StringList")),
                 [], id="parameter-string-list-is-fine"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name="/edumatrix test/backend")),
                 [("parameter",
                   "parameter name '/edumatrix test/backend': \"Parameter names can include only the following "
                   'symbols and letters: a-zA-Z0-9_.-" and / for the hierarchy (SSM API PutParameter, Name)')],
                 id="parameter-name-with-a-space"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(name="/ aws/backend")),
                 [("parameter",
                   "parameter name '/ aws/backend': \"Parameter names can include only the following symbols and "
                   'letters: a-zA-Z0-9_.-" and / for the hierarchy (SSM API PutParameter, Name)')],
                 id="parameter-name-beginning-with-a-space-then-aws-is-not-prefixed-with-aws"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(type="Secret")),
                 [("parameter", "parameter type 'Secret': \"Valid types are String, StringList and SecureString\"")],
                 id="parameter-unknown-type"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(type="SecureString")),
                 [("parameter",
                   'insecureValue with type SecureString: "This argument is not valid with a type of SecureString" '
                   "(pulumi-aws ssm.Parameter)")], id="parameter-secure-string-with-insecure-value"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(insecureValue="x" * 4097)),
                 [("parameter",
                   "a parameter of the Standard tier holds at most 4096 bytes; this value has 4097 (SSM Parameter "
                   "Store quotas: standard 4 KB, advanced 8 KB)")], id="parameter-standard-value-too-long"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(insecureValue="x" * 4096)),
                 [], id="parameter-standard-value-at-its-limit-is-fine"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(tier=None, insecureValue="x" * 4097)),
                 [("parameter",
                   "a parameter of the Standard tier holds at most 4096 bytes; this value has 4097 (SSM Parameter "
                   "Store quotas: standard 4 KB, advanced 8 KB)")], id="parameter-without-tier-is-standard"),
    pytest.param(P.ssm_parameter, _edit(P.SSM_PARAMETER, lambda p: p.update(tier="Advanced", insecureValue="x" * 8193)),
                 [("parameter",
                   "a parameter of the Advanced tier holds at most 8192 bytes; this value has 8193 (SSM Parameter "
                   "Store quotas: standard 4 KB, advanced 8 KB)")], id="parameter-advanced-value-too-long"),
    # pooler-task-role-read-only: names the attachment or inline policy
    *[pytest.param(P.pooler_task_role_read_only, _attached(policy_arn), [(
        "attachment", f"the task role {TASK_ROLE} has the managed policy {policy_arn}, which may put SSM parameters: a "
        "pooler task that can put its backend record can move the service's traffic itself; only the ops runner's "
        "switch may")], id=case) for case, policy_arn in (
            ("task-role-with-administrator-access", "arn:aws:iam::aws:policy/AdministratorAccess"),
            ("task-role-with-a-managed-policy-named-without-its-arn", "PowerUserAccess"),
            ("task-role-with-a-policy-under-a-path-named-like-a-writing-managed-one",
             "arn:aws:iam::123456789012:policy/platform/PowerUserAccess"))],
    pytest.param(P.pooler_task_role_read_only, _before(P.ROLE, resource(P.ROLE, "execution", {
        "name": "edumatrix-test-pooler-feedback-execution", "arn": "arn:aws:iam::123456789012:role/execution",
        "assumeRolePolicy": json.dumps({"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                       "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]})}),
        edit=(ROLE_POLICY, lambda p: p.update(policy=json.dumps({"Statement": [
            {"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]})))),
        [("rolepolicy",
          "the task role edumatrix-test-pooler-feedback-task may write SSM parameters (ssm:*): a pooler task that "
          "can put its backend record can move the service's traffic itself; only the ops runner's switch may")],
                 id="task-role-after-an-execution-role"),
    # pooler-switch-route: names the runner
    pytest.param(P.pooler_switch_route, lambda: [*pooler_resources(), resource(P.FUNCTION, "rotation", {
        "name": "edumatrix-test-rotation", "environment": {"variables": {}}}), *runner_on_endpoints(without="ssm")],
        [("edumatrix-test-ops-runner",
          "the stack runs an extraction pooler and the ops runner edumatrix-test-ops-runner reaches AWS through "
          "its own endpoints, but has none for ssm (EDUMATRIX_SSM_ENDPOINT): the cutover's switch (backend record, "
          "task look-up) would have no route")],
                 id="switch-route-runner-after-another-function"),
    pytest.param(P.pooler_switch_route, lambda: [*pooler_resources(), *[
        r for r in runner_on_endpoints(without="ecs") if not r.name.endswith("-ssm")]],
                 [("edumatrix-test-ops-runner",
                   "the stack runs an extraction pooler and the ops runner edumatrix-test-ops-runner reaches AWS "
                   "through its own endpoints, but has none for ecs (EDUMATRIX_ECS_ENDPOINT), ssm "
                   "(EDUMATRIX_SSM_ENDPOINT): the cutover's switch (backend record, task look-up) would have no "
                   "route")],
                 id="switch-route-runner-without-ssm-and-ecs-endpoints"),
    # pooler-admin-console-direct-only: names the target group, the load balancer or the task definition
    pytest.param(P.pooler_admin_console_direct_only, _edit(P.TARGET_GROUP, lambda p: p.update(preserveClientIp="true")),
                 [("targetgroup",
                   'target group edumatrix-test-pgb-feedback does not say preserveClientIp "false": with the '
                   "clients' addresses preserved, PgBouncer cannot tell a connection through the NLB from the ops "
                   "runner's, and its admin console answers whoever reaches the NLB with the admin password (NLB "
                   'guide, "Edit target group attributes": disabled, "the source IP address is the private IP '
                   'address of the Network Load Balancer")')],
                 id="admin-console-client-addresses-preserved"),
    pytest.param(P.pooler_admin_console_direct_only, _edit(P.LOAD_BALANCER, lambda p: p["subnetMappings"][1].pop(
        "privateIpv4Address")),
                 [("loadbalancer",
                   "load balancer edumatrix-test-pgb-feedback has no fixed private address in every subnet "
                   "(subnetMappings[].privateIpv4Address, an internal NLB's: ELBv2 API SubnetMapping): the tasks "
                   "of pgbouncer cannot know which addresses to refuse the admin console to")],
                 id="admin-console-nlb-address-not-fixed-in-one-subnet"),
    pytest.param(P.pooler_admin_console_direct_only, _container(_env("PGBOUNCER_NLB_ADDRESSES", None)),
                 [("taskdefinition",
                   "the tasks of pgbouncer refuse the admin console to no address (PGBOUNCER_NLB_ADDRESSES), but "
                   "their load balancer edumatrix-test-pgb-feedback connects from 10.20.1.250, 10.20.2.250: the "
                   "admin console would answer through it")],
                 id="admin-console-addresses-without-a-value"),
    pytest.param(P.pooler_admin_console_direct_only, _container(_env("PGBOUNCER_NLB_ADDRESSES", "10.20.1.250")),
                 [("taskdefinition",
                   "the tasks of pgbouncer refuse the admin console to 10.20.1.250 (PGBOUNCER_NLB_ADDRESSES), but "
                   "their load balancer edumatrix-test-pgb-feedback connects from 10.20.1.250, 10.20.2.250: the "
                   "admin console would answer through it")],
                 id="admin-console-one-address-missing"),
    pytest.param(P.pooler_admin_console_direct_only,
                 _container(_env("PGBOUNCER_NLB_ADDRESSES", "10.20.1.250,10.20.9.9")),
                 [("taskdefinition",
                   "the tasks of pgbouncer refuse the admin console to 10.20.1.250, 10.20.9.9 "
                   "(PGBOUNCER_NLB_ADDRESSES), but their load balancer edumatrix-test-pgb-feedback connects from "
                   "10.20.1.250, 10.20.2.250: the admin console would answer through it")],
                 id="admin-console-one-address-wrong"),
    pytest.param(P.pooler_admin_console_direct_only, _before(P.ECS_SERVICE, resource(P.ECS_SERVICE, "other", {
        "name": "other", "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/other:1"}),
        edit=(P.TARGET_GROUP, lambda p: p.update(preserveClientIp="true"))),
        [("targetgroup",
          "target group edumatrix-test-pgb-feedback does not say preserveClientIp \"false\": with the clients' "
          "addresses preserved, PgBouncer cannot tell a connection through the NLB from the ops runner's, and its "
          'admin console answers whoever reaches the NLB with the admin password (NLB guide, "Edit target group '
          'attributes": disabled, "the source IP address is the private IP address of the Network Load Balancer")')],
                 id="admin-console-pooler-after-another-service"),
    pytest.param(P.pooler_admin_console_direct_only, _before(P.LISTENER, resource(P.LISTENER, "other-listener", {
        "port": 80, "protocol": "TCP", "loadBalancerArn": LB_ARN,
        "defaultActions": [{"type": "forward", "targetGroupArn": TG_ARN + "0"}]}),
        edit=(P.LOAD_BALANCER, lambda p: p.update(subnetMappings=[{"subnetId": "subnet-1"}]))),
        [("loadbalancer",
          "load balancer edumatrix-test-pgb-feedback has no fixed private address in every subnet "
          "(subnetMappings[].privateIpv4Address, an internal NLB's: ELBv2 API SubnetMapping): the tasks of "
          "pgbouncer cannot know which addresses to refuse the admin console to")],
                 id="admin-console-after-a-listener-of-another-group"),
    pytest.param(P.pooler_admin_console_direct_only, _before(P.LISTENER, resource(P.LISTENER, "elsewhere", {
        "port": 5432, "protocol": "TCP", "loadBalancerArn": LB_ARN + "0",
        "defaultActions": [{"type": "forward", "targetGroupArn": TG_ARN}]}),
        edit=(P.LOAD_BALANCER, lambda p: p.update(subnetMappings=[{"subnetId": "subnet-1"}]))),
        [("loadbalancer",
          "load balancer edumatrix-test-pgb-feedback has no fixed private address in every subnet "
          "(subnetMappings[].privateIpv4Address, an internal NLB's: ELBv2 API SubnetMapping): the tasks of "
          "pgbouncer cannot know which addresses to refuse the admin console to")],
                 id="admin-console-after-a-listener-of-a-balancer-not-in-the-stack"),
]


@pytest.mark.parametrize(("policy", "build", "expected"), CASES)
def test_the_pooler_policy_names_the_resource_and_says_why(policy: PackPolicy, build: Build,
                                                           expected: list[tuple[str, str]]) -> None:
    assert [(name, message) for _, name, message in reports(build(), [policy])] == expected
