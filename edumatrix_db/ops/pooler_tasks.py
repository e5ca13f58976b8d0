"""The extraction pooler's running tasks and their admin consoles (issue 13): which PgBouncer tasks the cutover
must pause, switch and resume, looked up from the pooler's ECS service instead of listed by hand.

`running_tasks(ecs, cluster, service)` asks ECS (DescribeServices for the desired count, ListTasks with
`desiredStatus=RUNNING`, DescribeTasks for each task's state and its ENI's private IPv4 address) and refuses to
proceed unless exactly the service's desired count of tasks is running, each `RUNNING` with an address: a task
still starting (or one more during a deployment) would read the record before the switch writes it and serve the
old side, so the cutover must not start until the set is settled (docs/extraction-runbook.md, "How a running
task learns the new backend"). `admin_uris` puts each task's address into the admin console URI.

The runner's role may make these calls on the pooler's cluster only (components/service_pooler.py
`runner_policy`, conditioned on `ecs:cluster`); with `opsRunner.awsApiAccess: endpoints` the ECS API is reached
through the endpoint named by EDUMATRIX_ECS_ENDPOINT (components/ops_runner.py).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from edumatrix_db.ops.traffic import TrafficError

DESCRIBE_TASKS_MAX = 100
"""DescribeTasks takes at most 100 task ARNs per call (ECS API reference, DescribeTasks `tasks`)."""
ECS_ENDPOINT_VARIABLE = "EDUMATRIX_ECS_ENDPOINT"
SSM_ENDPOINT_VARIABLE = "EDUMATRIX_SSM_ENDPOINT"


class PoolerTasksError(TrafficError):
    """The pooler's tasks are not a settled set the cutover can switch (or ECS could not say which they are)."""


@dataclass(frozen=True)
class PoolerTask:
    arn: str
    address: str
    """The task's private IPv4 address (its awsvpc ENI): where its admin console listens."""


def parse_target(spec: str) -> tuple[str, str]:
    """`ecs:CLUSTER/SERVICE` -> (cluster, service)."""
    cluster, _, service = spec.removeprefix("ecs:").partition("/")
    if not spec.startswith("ecs:") or not cluster or not service or "/" in service:
        raise PoolerTasksError(f"--pooler-tasks {spec!r}: expected ecs:CLUSTER/SERVICE, e.g. "
                               "ecs:edumatrix-prod-pooler-feedback/pgbouncer")
    return cluster, service


def _address(task: dict[str, Any]) -> str:
    for attachment in task.get("attachments") or []:
        for detail in attachment.get("details") or []:
            if detail.get("name") == "privateIPv4Address" and detail.get("value"):
                return str(detail["value"])
    return ""


def _described(ecs: Any, cluster: str, service: str) -> list[dict[str, Any]]:
    """ListTasks (desiredStatus RUNNING) and DescribeTasks: the service's tasks, by ARN."""
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=service,
                                                         desiredStatus="RUNNING"):
        arns += page.get("taskArns") or []
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), DESCRIBE_TASKS_MAX):
        answer = ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + DESCRIBE_TASKS_MAX])
        if answer.get("failures"):
            raise PoolerTasksError(f"ECS could not describe tasks of {cluster}/{service}: {answer['failures']}")
        tasks += answer.get("tasks") or []
    return sorted(tasks, key=lambda t: str(t["taskArn"]))


def running_tasks(ecs: Any, cluster: str, service: str, *, settled: bool = True) -> list[PoolerTask]:
    """The service's tasks, when exactly its desired count is RUNNING with an address; else PoolerTasksError.
    `settled=False` (the re-listing inside a freeze, when ECS may be replacing a task): every task RUNNING with an
    address, whatever the count, without DescribeServices (one call fewer inside the freeze); one still starting
    is left to its agent (it reads the freeze marker)."""
    if not settled:
        return [PoolerTask(str(t["taskArn"]), _address(t)) for t in _described(ecs, cluster, service)
                if t.get("lastStatus") == "RUNNING" and _address(t)]
    described = ecs.describe_services(cluster=cluster, services=[service])
    found = [s for s in described.get("services") or [] if s.get("status") == "ACTIVE"]
    if not found:
        raise PoolerTasksError(f"ECS service {service} of cluster {cluster} is not active (failures: "
                               f"{described.get('failures') or 'none'})")
    desired = int(found[0]["desiredCount"])
    tasks = _described(ecs, cluster, service)
    problems = [f"{t['taskArn']} is {t.get('lastStatus')}" for t in tasks if t.get("lastStatus") != "RUNNING"]
    problems += [f"{t['taskArn']} has no private IPv4 address" for t in tasks
                 if t.get("lastStatus") == "RUNNING" and not _address(t)]
    if len(tasks) != desired:
        problems.insert(0, f"{len(tasks)} task(s) to run but the service wants {desired}")
    if problems:
        raise PoolerTasksError(f"the pooler {cluster}/{service} is not settled: {'; '.join(problems)}. A task "
                               "starting during the freeze would serve the old side: wait until ECS runs exactly "
                               "the desired count (aws ecs describe-services) and try again")
    return [PoolerTask(str(t["taskArn"]), _address(t)) for t in sorted(tasks, key=lambda t: str(t["taskArn"]))]


def admin_uris(template: str, tasks: Sequence[PoolerTask]) -> list[str]:
    """The admin console URI (`postgresql://USER:PASSWORD@ANY-HOST:6432/pgbouncer?...`) once per task, its host
    replaced by the task's address (port, credentials and TLS options kept)."""
    parts = urlsplit(template)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise PoolerTasksError("--pooler-admin-template must be a postgresql:// URI with a host (replaced by each "
                               "task's address), e.g. postgresql://edumatrix_pooler_admin:PASSWORD@TASK:6432/"
                               "pgbouncer?sslmode=verify-ca&sslrootcert=POOLER_CA")
    userinfo = parts.netloc.rpartition("@")[0]
    port = f":{parts.port}" if parts.port else ""
    return [urlunsplit(parts._replace(netloc=f"{userinfo + '@' if userinfo else ''}{t.address}{port}"))
            for t in tasks]


def lookup(spec: str, template: str, ecs: Any | None = None, *, settled: bool = True,
           endpoint_url: str | None = None) -> list[str]:
    """`--pooler-tasks ecs:CLUSTER/SERVICE` with `--pooler-admin-template URI`: every running task's admin URI
    (`settled=False`: the re-listing inside a freeze, see `running_tasks`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    cluster, service = parse_target(spec)
    try:
        client = ecs if ecs is not None else ecs_client(endpoint_url=endpoint_url)
        tasks = running_tasks(client, cluster, service, settled=settled)
    except (BotoCoreError, ClientError) as exc:
        raise PoolerTasksError(f"cannot list the tasks of {cluster}/{service}: {exc}") from exc
    return admin_uris(template, tasks)


def ecs_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """boto3's ECS client, through the runner's endpoint: `endpoint_url`, else EDUMATRIX_ECS_ENDPOINT if set."""
    import boto3  # only where the tasks are looked up

    return boto3.client("ecs", region_name=region,
                        endpoint_url=endpoint_url or os.environ.get(ECS_ENDPOINT_VARIABLE) or None)


@dataclass(frozen=True)
class SwitchRoute:
    """What the cutover's switch needs from the stack, read from its outputs (`--stack-outputs`)."""

    record: str
    """`ssm:<extractionPoolers.<service>.backendParameter>`"""
    tasks: str
    """extractionPoolers.<service>.poolerTasks: `ecs:<cluster>/pgbouncer`"""
    ssm_endpoint: str | None
    ecs_endpoint: str | None
    """opsRunnerAwsEndpoints (with awsApiAccess: endpoints), or None: the environment, else the AWS default."""


def from_stack_outputs(path: Path, service: str) -> SwitchRoute:
    """The switch's route from `pulumi stack output --json --stack STACK > FILE` (no hand-copied names); an
    environment variable EDUMATRIX_SSM_ENDPOINT / EDUMATRIX_ECS_ENDPOINT still wins over the file's endpoint."""
    how = "write it with `pulumi stack output --json --stack STACK > FILE`"
    try:
        outputs = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PoolerTasksError(f"--stack-outputs {path}: cannot read it as JSON ({exc}); {how}") from exc
    pooler = (outputs.get("extractionPoolers") or {}).get(service) if isinstance(outputs, dict) else None
    if not isinstance(pooler, dict) or not pooler.get("backendParameter") or not pooler.get("poolerTasks"):
        raise PoolerTasksError(f"--stack-outputs {path}: no extractionPoolers.{service}.backendParameter and "
                               f".poolerTasks: {service}'s extraction is not in a pooled phase (replicate, cutover, "
                               f"rollback) in that stack, or the file is from another stack; {how}")
    endpoints = outputs.get("opsRunnerAwsEndpoints") or {}
    return SwitchRoute(f"ssm:{pooler['backendParameter']}", str(pooler["poolerTasks"]),
                       os.environ.get(SSM_ENDPOINT_VARIABLE) or endpoints.get(SSM_ENDPOINT_VARIABLE) or None,
                       os.environ.get(ECS_ENDPOINT_VARIABLE) or endpoints.get(ECS_ENDPOINT_VARIABLE) or None)
