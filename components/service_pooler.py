"""The platform's PgBouncer in front of one service during its extraction (spec 3.B; issue 13, "How traffic
moves": docs/extraction-runbook.md). Declared while `FACTS[phase].pooler` holds (config/extraction.py:
replicate, cutover, rollback), for each service so extracted.

`ServicePooler` (`edumatrix:extraction:ServicePooler`, named `<prefix>-pooler-<service>`):
- ECS Fargate tasks (at least two, spread by ECS over the subnets' Availability Zones) running PgBouncer in
  transaction mode from an image in the stack's ECR repository, pinned by digest (`extractionPooler.imageDigest`);
- an internal Network Load Balancer with a plain TCP listener on the PostgreSQL port: PostgreSQL starts TLS
  inside its own protocol (an SSLRequest message, then the handshake), so an NLB TLS listener, which expects a
  TLS ClientHello first, cannot terminate it. The NLB passes TCP through; PgBouncer terminates TLS itself
  (`client_tls_sslmode=require` with the certificate from `extractionPooler.tlsSecretArn`) and verifies the
  instances (`server_tls_sslmode=verify-full` with the RDS CA bundle in the image);
- the service's DNS name leads here (components/connection_layer.py `pooled`: one source of truth for where a
  name points), so clients connect to the pooler before the cutover and are paused, not cut, by it;
- the NLB at fixed private addresses (`extractionPooler.nlbAddresses`), client IP preservation off: every
  connection through it reaches PgBouncer from one of them, and the task's hba.conf refuses those addresses the
  admin console (before any line that admits it), so only a direct connection (the ops runner) reaches it;
- security groups: clients -> NLB (the stack's client groups/CIDRs), NLB -> tasks, the ops runner -> tasks
  directly (its admin console: PAUSE/RESUME must reach every task, which the NLB would spread over one),
  tasks -> the shared instance and the target instance, tasks -> HTTPS (ECR, Secrets Manager, CloudWatch Logs
  through the VPC's route);
- an execution role that may pull exactly this repository's images, write exactly this log group and read
  exactly the secrets the task needs (the service's app and read-only logins, the TLS secret, the admin
  secret), decrypting only through Secrets Manager;
- the service's backend record (where its pools lead: host, port, dbname, generation, the freeze marker; JSON) in
  an SSM Parameter Store `String` parameter `/<prefix>/extraction/<service>/pooler-backend`, first leading to the
  shared instance; later values are the ops runner's switch's alone (`ignore_changes`: a `pulumi up` never moves
  traffic back). Each task's agent (edumatrix_db/ops/pooler_agent.py, the image's entrypoint) applies it to its own
  ini and RELOADs over the local unix socket; the task role may only read that one parameter;
- the ops runner's role may read and put that parameter, read the admin secret (PAUSE / RESUME /
  SHOW DATABASES on each task) and list and describe this cluster's tasks and service (each task's address:
  edumatrix_db/ops/pooler_tasks.py): the switch is edumatrix_db/ops/traffic.py `AgentPoolerSet`;
- the admin console user's password in a CMK-encrypted secret (the ops runner reads it);
- a CMK-encrypted log group; alarms on the region's AlarmTopic: unhealthy targets, healthy targets below the
  task count, running tasks below the task count (Container Insights).

The image (pooler-image/; what it reads: docs/extraction-runbook.md, "The pooler image") is built and pushed
outside this repository's tests: no registry is reachable here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.network import allow_tcp, client_sources
from components.secrets import CredentialSecret, CredentialSecretArgs
from config.settings import ExtractionPoolerSettings, NetworkSettings

POOLER_PORT = 6432
"""Where PgBouncer listens in the task (its default); clients reach it on the PostgreSQL port through the NLB."""
ADMIN_USER = "edumatrix_pooler_admin"
"""PgBouncer's `admin_users` entry: the ops runner's login to the admin console (PAUSE, RESUME, RELOAD)."""
HTTPS = 443
SERVICE_NAME = "pgbouncer"
"""The ECS service's name in the pooler's cluster (`--pooler-tasks ecs:<cluster>/pgbouncer`)."""
RUN_DIR = "/run/pgbouncer"
"""Where the agent writes PgBouncer's files and PgBouncer its unix socket: a task volume (Fargate has no tmpfs), the
only writable path of the read-only root file system."""
RUN_VOLUME = "pgbouncer-run"
NLB_ADDRESSES_ENV = "PGBOUNCER_NLB_ADDRESSES"
"""The task's environment: the NLB's private addresses, comma-separated (edumatrix_db/ops/pooler_agent.py
`render` refuses them the admin console)."""
NAME_MAX = 32  # ELB CreateLoadBalancer / CreateTargetGroup Name: at most 32 characters
ECS_NAMESPACE = "ECS/ContainerInsights"
NLB_NAMESPACE = "AWS/NetworkELB"
ALARM_PERIOD_SECONDS = 60


def elb_name(prefix: str, service: str) -> str:
    """A load balancer / target group name within ELB's 32 characters: `<prefix>-pgb-<service>`, or, when
    longer, its start and a hash of it (stable per stack and service, never ending with a hyphen)."""
    full = f"{prefix}-pgb-{service.replace('_', '-')}"
    if len(full) <= NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:8]
    return f"{full[:NAME_MAX - 9].rstrip('-')}-{digest}"


def backend_parameter_name(prefix: str, service: str) -> str:
    """The SSM parameter holding the service's backend record (beside the admin secret's name)."""
    return f"/{prefix}/extraction/{service}/pooler-backend"


def backend_record(host: str, port: int, dbname: str, generation: int = 0) -> str:
    """The record's JSON as edumatrix_db/ops/pooler_agent.py `BackendRecord.to_json` writes it."""
    return json.dumps({"dbname": dbname, "frozen": False, "generation": generation, "host": host, "port": port},
                      sort_keys=True)


def nlb_addresses_value(addresses: Mapping[str, str]) -> str:
    """The NLB's addresses as the task's environment carries them (sorted, comma-separated)."""
    return ",".join(sorted(addresses.values()))


def image_uri(account: str, region: str, dns_suffix: str, repository: str, digest: str) -> str:
    """The image by digest (`REPO@sha256:...`): the tag can move, the digest cannot."""
    return f"{account}.dkr.ecr.{region}.{dns_suffix}/{repository}@{digest}"


@dataclass(frozen=True)
class PoolerBackend:
    """One side the pooler can send the service's transactions to."""

    address: pulumi.Input[str]
    port: pulumi.Input[int]
    security_group_id: pulumi.Input[str]


@dataclass(frozen=True)
class ServicePoolerArgs:
    service: str
    name_prefix: str
    settings: ExtractionPoolerSettings
    network: NetworkSettings
    port: int
    """The PostgreSQL port clients use (the NLB listener's)."""
    database: str
    source: PoolerBackend
    target: PoolerBackend
    logins: Mapping[str, pulumi.Input[str]]
    """The service's pooled login roles (app, readonly) -> the ARN of each one's credential secret (the shared
    instance's: the target's logins have the same passwords, docs/extraction-runbook.md checklist).

    Nothing here depends on the phase, so moving between pooled phases never redeploys the tasks: the traffic
    moves only by the ops runner's PAUSE / record / RESUME on every task (edumatrix_db/ops/traffic.py), and a
    task that starts later leads where the backend record says."""
    pool_sizes: Mapping[str, int]
    """Login role -> server connections per task: the role's connection limit divided over the tasks."""
    runner_security_group_id: pulumi.Input[str]
    runner_role_arn: pulumi.Input[str]
    """The ops runner's role: it gets read and put on the backend record and read on the admin secret."""
    kms_key_arn: pulumi.Input[str]
    alarm_topic_arn: pulumi.Input[str]
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


def execution_policy(repository_arn: str, log_group_arn: str, secret_arns: Sequence[str], key_arn: str,
                     region: str) -> str:
    """Pull this repository's images, write this log group, read these secrets (decrypting only through
    Secrets Manager). ecr:GetAuthorizationToken takes no resource (ECR's IAM reference: Resource "*")."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "EcrLogin", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Sid": "PullThePoolerImage", "Effect": "Allow",
         "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "Resource": repository_arn},
        {"Sid": "WriteItsLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": f"{log_group_arn}:*"},
        {"Sid": "ReadItsSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": sorted(secret_arns)},
        {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]})


def runner_policy(parameter_arn: str, admin_secret_arn: str, key_arn: str, region: str, cluster_arn: str) -> str:
    """The ops runner's switch: read and put the backend record (a `String` parameter: no KMS), read the admin
    console's password (decrypting only through Secrets Manager), and find the pooler's running tasks
    (edumatrix_db/ops/pooler_tasks.py) in this cluster only. ECS's IAM reference: ListTasks names a
    container-instance resource, which Fargate tasks have none of, so it takes "*" narrowed by the `ecs:cluster`
    condition key (as awsdocs/amazon-ecs-developer-guide#211 settles); DescribeTasks and DescribeServices take the
    cluster's task and service ARNs (`task/<cluster>/<id>`, `service/<cluster>/<name>`)."""
    cluster = {"ArnEquals": {"ecs:cluster": cluster_arn}}
    tasks = cluster_arn.replace(":cluster/", ":task/", 1) + "/*"
    service = cluster_arn.replace(":cluster/", ":service/", 1) + f"/{SERVICE_NAME}"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "SwitchTheBackendRecord", "Effect": "Allow", "Action": ["ssm:GetParameter", "ssm:PutParameter"],
         "Resource": parameter_arn},
        {"Sid": "ReadThePoolerAdminSecret", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": admin_secret_arn},
        {"Sid": "DecryptItThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
        {"Sid": "ListThePoolerTasks", "Effect": "Allow", "Action": "ecs:ListTasks", "Resource": "*",
         "Condition": cluster},
        {"Sid": "DescribeThePoolerTasks", "Effect": "Allow", "Action": ["ecs:DescribeServices", "ecs:DescribeTasks"],
         "Resource": [service, tasks], "Condition": cluster},
    ]})


def task_policy(parameter_arn: str) -> str:
    """The agent in the task: read its backend record, nothing else (no put: a task cannot move traffic)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheBackendRecord", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": parameter_arn},
    ]})


def container_definitions(*, name: str, image: str, args: ServicePoolerArgs, parameter_name: str,
                          admin_secret_arn: str, log_group: str, region: str, logins: Mapping[str, str]) -> str:
    """The one container: the agent renders PgBouncer's files from the environment (the image contract in the
    runbook) and the backend record, then runs PgBouncer beside it; passwords are injected by ECS from Secrets
    Manager (never in the task definition)."""
    environment = {
        "EDUMATRIX_POOLER_RECORD": f"ssm:{parameter_name}",
        "AWS_REGION": region,
        "PGBOUNCER_DATABASE": args.database,
        "PGBOUNCER_POOL_MODE": "transaction",
        "PGBOUNCER_LISTEN_PORT": str(POOLER_PORT),
        "PGBOUNCER_CLIENT_TLS_SSLMODE": "require",
        "PGBOUNCER_SERVER_TLS_SSLMODE": "verify-full",
        "PGBOUNCER_ADMIN_USER": ADMIN_USER,
        "PGBOUNCER_POOLS": ",".join(f"{role}:{args.pool_sizes[role]}" for role in sorted(logins)),
        # every connection through the NLB comes from one of these (client IP preservation off): hba.conf refuses
        # them the admin console, which only the ops runner reaches directly
        NLB_ADDRESSES_ENV: nlb_addresses_value(args.settings.nlb_addresses),
    }
    secrets = [{"name": "PGBOUNCER_ADMIN_PASSWORD", "valueFrom": f"{admin_secret_arn}:password::"},
               {"name": "PGBOUNCER_TLS_CERTIFICATE", "valueFrom": f"{args.settings.tls_secret_arn}:certificate::"},
               {"name": "PGBOUNCER_TLS_KEY", "valueFrom": f"{args.settings.tls_secret_arn}:privateKey::"}]
    secrets += [{"name": f"PGBOUNCER_PASSWORD_{role.upper()}", "valueFrom": f"{arn}:password::"}
                for role, arn in sorted(logins.items())]
    return json.dumps([{
        "name": name,
        "image": image,
        "essential": True,
        "readonlyRootFilesystem": True,  # the agent writes PgBouncer's files to the task volume at RUN_DIR
        "mountPoints": [{"sourceVolume": RUN_VOLUME, "containerPath": RUN_DIR, "readOnly": False}],
        "user": "pgbouncer",
        "portMappings": [{"containerPort": POOLER_PORT, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(environment.items())],
        "secrets": secrets,
        "linuxParameters": {"initProcessEnabled": True},
        "healthCheck": {"command": ["CMD-SHELL", f"pg_isready -h 127.0.0.1 -p {POOLER_PORT} -q"],
                        "interval": 10, "timeout": 5, "retries": 3, "startPeriod": 10},
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": log_group, "awslogs-region": region, "awslogs-stream-prefix": "pgbouncer"}},
    }])


class ServicePooler(pulumi.ComponentResource):
    """`edumatrix:extraction:ServicePooler`: PgBouncer on ECS Fargate behind an internal NLB, for one service."""

    dns_name: pulumi.Output[str]
    admin_secret_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    backend_parameter: pulumi.Output[str]
    pooler_tasks: pulumi.Output[str]
    """`ecs:<cluster>/pgbouncer`: the cutover's --pooler-tasks (output extractionPoolers.<service>.poolerTasks)."""
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ServicePoolerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:extraction:ServicePooler", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "db-service": args.service}
        region = args.region
        settings = args.settings
        assert not settings.missing(), "the loader refuses a pooled extraction without its pooler settings"
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region_name = pulumi.Output.from_input(region) if region else aws.get_region_output(opts=invoke).region
        identity = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        lb_name = elb_name(args.name_prefix, args.service)

        # -- network -------------------------------------------------------------------------------------
        nlb_sg = aws.ec2.SecurityGroup(f"{name}-nlb-sg", description=f"PgBouncer NLB of {args.service}",
                                       vpc_id=args.network.vpc_id, region=region, tags=tags, opts=child)
        task_sg = aws.ec2.SecurityGroup(f"{name}-task-sg", description=f"PgBouncer tasks of {args.service}",
                                        vpc_id=args.network.vpc_id, region=region, tags=tags, opts=child)

        def rule(kind: type, label: str, group: pulumi.Input[str], port: int, description: str,
                 **peer: pulumi.Input[str]) -> None:
            kind(f"{name}-{label}", security_group_id=group, ip_protocol="tcp", from_port=port, to_port=port,
                 description=description, region=region, tags=tags, opts=child, **peer)

        ingress, egress = aws.vpc.SecurityGroupIngressRule, aws.vpc.SecurityGroupEgressRule
        for suffix, source in client_sources(args.network.allowed_security_group_ids, args.network.allowed_cidrs):
            rule(ingress, f"nlb-from-{suffix}", nlb_sg.id, args.port, "PostgreSQL clients to the pooler", **source)
        rule(egress, "nlb-to-tasks", nlb_sg.id, POOLER_PORT, "NLB to the PgBouncer tasks",
             referenced_security_group_id=task_sg.id)
        rule(ingress, "tasks-from-nlb", task_sg.id, POOLER_PORT, "NLB (clients, health checks) to PgBouncer",
             referenced_security_group_id=nlb_sg.id)
        allow_tcp(source=args.runner_security_group_id, target=task_sg.id, port=POOLER_PORT,
                  egress_name=f"{name}-runner-to-tasks", ingress_name=f"{name}-tasks-from-runner",
                  egress_description="the ops runner to each PgBouncer task's admin console",
                  ingress_description="the ops runner to the admin console", region=region, tags=tags, opts=child)
        rule(egress, "tasks-to-https", task_sg.id, HTTPS, "ECR, Secrets Manager, CloudWatch Logs",
             cidr_ipv4="0.0.0.0/0")
        for side, backend in (("source", args.source), ("target", args.target)):
            rule(egress, f"tasks-to-{side}", task_sg.id, args.port, f"PgBouncer to the {side} instance",
                 referenced_security_group_id=backend.security_group_id)
            rule(ingress, f"{side}-from-tasks", backend.security_group_id, args.port,
                 f"PgBouncer of {args.service} to the instance", referenced_security_group_id=task_sg.id)

        # -- secrets, logs, roles ------------------------------------------------------------------------
        password = random.RandomPassword(f"{name}-admin-password", length=40, special=False, opts=child)
        admin = CredentialSecret(f"{name}-admin", CredentialSecretArgs(
            name=f"{args.name_prefix}/extraction/{args.service}/pooler-admin",
            description=f"PgBouncer admin console of {args.service}'s extraction pooler (the ops runner's login)",
            kms_key_id=args.kms_key_arn,
            value={"username": ADMIN_USER, "password": password.result},
            tags=tags,
        ), opts=child)
        logs = aws.cloudwatch.LogGroup(f"{name}-logs", name=f"/ecs/{args.name_prefix}/pooler-{args.service}",
                                       kms_key_id=args.kms_key_arn, retention_in_days=settings.log_retention_days,
                                       region=region, tags=tags, opts=child)
        # The repository is named by the stack file, not declared here (it outlives any extraction).
        repository_arn = pulumi.Output.all(partition.partition, region_name, identity.account_id).apply(
            lambda v: f"arn:{v[0]}:ecr:{v[1]}:{v[2]}:repository/{settings.image_repository}")
        execution = aws.iam.Role(
            f"{name}-execution",
            description=f"ECS pulls the PgBouncer image of {args.service} and reads its secrets",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags, opts=child)
        secret_arns = [admin.arn, settings.tls_secret_arn, *args.logins.values()]
        parameter_name = backend_parameter_name(args.name_prefix, args.service)
        record = aws.ssm.Parameter(
            f"{name}-backend", name=parameter_name, type="String", tier="Standard",
            description=f"where the PgBouncer tasks of {args.service} send its transactions (the ops runner's switch "
                        "writes it; docs/extraction-runbook.md)",
            # not secret (host names and a port): `insecure_value` keeps it readable in a preview
            insecure_value=pulumi.Output.all(args.source.address, args.source.port).apply(
                lambda v: backend_record(str(v[0]), int(v[1]), args.database)),
            region=region, tags=tags,
            # The first value leads to the shared instance; after that only the switch moves it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["insecureValue"]))
        task_role = aws.iam.Role(
            f"{name}-task-role",
            description=f"the PgBouncer agent of {args.service} reads its backend record",
            assume_role_policy=identity.account_id.apply(lambda account: json.dumps({
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]})),
            tags=tags, opts=child)
        aws.iam.RolePolicy(f"{name}-task-policy", role=task_role.id, policy=record.arn.apply(task_policy), opts=child)
        runner_role = pulumi.Output.from_input(args.runner_role_arn).apply(lambda arn: arn.rsplit("/", 1)[-1])
        # -- the tasks -------------------------------------------------------------------------------------
        cluster = aws.ecs.Cluster(
            f"{name}-cluster", name=f"{args.name_prefix}-pooler-{args.service.replace('_', '-')}",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            region=region, tags=tags, opts=child)
        aws.iam.RolePolicy(f"{name}-runner-policy", role=runner_role, policy=pulumi.Output.all(
            record.arn, admin.arn, args.kms_key_arn, region_name, cluster.arn).apply(
            lambda v: runner_policy(v[0], v[1], v[2], v[3], v[4])), opts=child)
        aws.iam.RolePolicy(f"{name}-execution-policy", role=execution.id, policy=pulumi.Output.all(
            repository_arn, logs.arn, pulumi.Output.all(*secret_arns), args.kms_key_arn, region_name).apply(
            lambda v: execution_policy(v[0], v[1], v[2], v[3], v[4])), opts=child)

        logins = dict(args.logins)
        definitions = pulumi.Output.all(
            identity.account_id, region_name, partition.dns_suffix, admin.arn, logs.name,
            pulumi.Output.all(**logins)).apply(
            lambda v: container_definitions(
                name="pgbouncer", image=image_uri(v[0], v[1], v[2], str(settings.image_repository),
                                                  str(settings.image_digest)),
                args=args, parameter_name=parameter_name, admin_secret_arn=v[3], log_group=v[4], region=v[1],
                logins=v[5]))
        task = aws.ecs.TaskDefinition(
            f"{name}-task", family=f"{args.name_prefix}-pooler-{args.service.replace('_', '-')}",
            requires_compatibilities=["FARGATE"], network_mode="awsvpc", cpu=str(settings.cpu),
            memory=str(settings.memory_mb), execution_role_arn=execution.arn, task_role_arn=task_role.arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=RUN_VOLUME)],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=settings.cpu_architecture),
            container_definitions=definitions, region=region, tags=tags, opts=child)

        # -- the load balancer -----------------------------------------------------------------------------
        # Fixed private addresses (an internal NLB only: ELBv2 SubnetMapping PrivateIPv4Address), the ones the
        # tasks' hba.conf refuses the admin console to.
        nlb = aws.lb.LoadBalancer(
            f"{name}-nlb", name=lb_name, load_balancer_type="network", internal=True,
            subnet_mappings=[aws.lb.LoadBalancerSubnetMappingArgs(
                subnet_id=subnet, private_ipv4_address=settings.nlb_addresses[subnet])
                for subnet in args.network.subnet_ids],
            security_groups=[nlb_sg.id],
            enable_cross_zone_load_balancing=True, enable_deletion_protection=False,
            region=region, tags=tags, opts=child)
        group = aws.lb.TargetGroup(
            f"{name}-targets", name=lb_name, port=POOLER_PORT, protocol="TCP", target_type="ip",
            vpc_id=args.network.vpc_id,
            # Said, not left to the default (off for ip targets over TCP: NLB guide, "Edit target group attributes",
            # client IP preservation): PgBouncer must see the NLB's address, not the client's, for hba.conf to
            # tell a connection through the NLB from the ops runner's direct one.
            preserve_client_ip="false",
            # Transactions in flight finish within the app roles' statement timeout; long-lived client
            # connections are cut after this when a task is replaced (clients retry).
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                protocol="TCP", port=str(POOLER_PORT), interval=10, healthy_threshold=3, unhealthy_threshold=3),
            region=region, tags=tags, opts=child)
        listener = aws.lb.Listener(
            f"{name}-listener", load_balancer_arn=nlb.arn, port=args.port, protocol="TCP",
            default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=group.arn)],
            region=region, tags=tags, opts=child)
        aws.ecs.Service(
            f"{name}-service", name=SERVICE_NAME, cluster=cluster.arn, task_definition=task.arn,
            desired_count=settings.task_count, launch_type="FARGATE", platform_version="LATEST",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=list(args.network.subnet_ids), security_groups=[task_sg.id], assign_public_ip=False),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=group.arn, container_name="pgbouncer", container_port=POOLER_PORT)],
            health_check_grace_period_seconds=30,
            # A new task starts before an old one stops: never fewer than task_count serving.
            deployment_minimum_healthy_percent=100, deployment_maximum_percent=200,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            availability_zone_rebalancing="ENABLED",
            enable_execute_command=False, propagate_tags="SERVICE",
            region=region, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[listener]))

        # -- alarms ----------------------------------------------------------------------------------------
        lb_dims: dict[str, pulumi.Input[str]] = {"LoadBalancer": nlb.arn_suffix, "TargetGroup": group.arn_suffix}
        ecs_dims: dict[str, pulumi.Input[str]] = {"ClusterName": cluster.name, "ServiceName": SERVICE_NAME}
        count = settings.task_count
        self.alarm_names = [self._alarm(f"{name}-{label}", description, namespace, metric, dims, statistic,
                                        threshold, operator, args.alarm_topic_arn, region, tags)
                            for label, description, namespace, metric, dims, statistic, threshold, operator in (
            ("unhealthy", f"a PgBouncer task of {args.service} fails the NLB health check",
             NLB_NAMESPACE, "UnHealthyHostCount", lb_dims, "Maximum", 0, "GreaterThanThreshold"),
            ("healthy", f"fewer than {count} healthy PgBouncer tasks of {args.service} behind the NLB",
             NLB_NAMESPACE, "HealthyHostCount", lb_dims, "Minimum", count, "LessThanThreshold"),
            ("running", f"fewer than {count} PgBouncer tasks of {args.service} running",
             ECS_NAMESPACE, "RunningTaskCount", ecs_dims, "Minimum", count, "LessThanThreshold"),
        )]
        self.dns_name = nlb.dns_name
        self.admin_secret_arn = admin.arn
        self.security_group_id = task_sg.id
        self.backend_parameter = record.name
        self.pooler_tasks = cluster.name.apply(lambda c: f"ecs:{c}/{SERVICE_NAME}")
        self.register_outputs({"dnsName": self.dns_name, "adminSecretArn": self.admin_secret_arn,
                               "backendParameter": self.backend_parameter, "clusterName": cluster.name,
                               "alarmNames": self.alarm_names})

    def _alarm(self, name: str, description: str, namespace: str, metric: str,
               dimensions: Mapping[str, pulumi.Input[str]], statistic: str, threshold: int, operator: str,
               topic: pulumi.Input[str], region: str | None, tags: Mapping[str, str]) -> pulumi.Output[str]:
        return aws.cloudwatch.MetricAlarm(
            name, alarm_description=f"{description}; runbook: docs/extraction-runbook.md", namespace=namespace,
            metric_name=metric, dimensions=dict(dimensions), statistic=statistic, period=ALARM_PERIOD_SECONDS,
            evaluation_periods=3, datapoints_to_alarm=2, threshold=threshold, comparison_operator=operator,
            # No datapoints means no tasks or no load balancer: page.
            treat_missing_data="breaching", alarm_actions=[topic], ok_actions=[topic],
            region=region, tags=dict(tags), opts=pulumi.ResourceOptions(parent=self)).name
