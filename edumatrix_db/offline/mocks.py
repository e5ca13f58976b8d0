"""Realistic mocked cloud state for running the program offline (plans, the policy gate, tests).

Mocked outputs look like what AWS returns (ARNs with the stack's account and region, RDS addresses,
managed master secrets), so outputs that feed other resources (a key ARN into an instance, a stack's
outputs into a region stack) carry values a reviewer recognises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi

MOCK_ACCOUNT_ID = "123456789012"
# The minor version a mocked RDS picks for a major-only engineVersion (what engineVersionActual reports).
MOCK_LATEST_MINOR = {"13": 20, "14": 17, "15": 12, "16": 8, "17": 4}

StackOutputsResolver = Callable[[str], Mapping[str, Any]]


def _hex(seed: str, length: int = 17) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def mock_master_password(secret_id: str) -> str:
    """The password the mocked RDS-managed master secret holds (not a real one)."""
    return f"mock-{_hex(secret_id)}"


_LEAVES = frozenset({str, int, float, bool, type(None)})


def unwrap_secrets(value: Any) -> Any:
    """Plain values from the monitor's secret-wrapped inputs."""
    from pulumi.runtime import rpc

    if type(value) in _LEAVES:  # most values: returned as the checks below would return them, without them
        return value
    if rpc.is_rpc_secret(value):
        return unwrap_secrets(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


class PlatformMocks(pulumi.runtime.Mocks):
    """Mocks returning per-type realistic state; stack references resolve through `stack_outputs`."""

    def __init__(self, region: str, stack_outputs: StackOutputsResolver | None = None,
                 account_id: str = MOCK_ACCOUNT_ID) -> None:
        self.region = region
        self.account_id = account_id
        self.stack_outputs = stack_outputs

    # -- invokes ---------------------------------------------------------------------------------
    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        token = args.token
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": self.account_id, "arn": f"arn:aws:iam::{self.account_id}:user/ci",
                    "userId": "AIDAMOCK", "id": self.account_id}, []
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        if token == "aws:index/getRegion:getRegion":
            region = args.args.get("region") or self.region
            return {"region": region, "name": region, "id": region,
                    "endpoint": f"ec2.{region}.amazonaws.com", "description": region}, []
        if token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            # An RDS-managed master secret holds {"username", "password"}; the mocked one is not a real password.
            secret_id = str(args.args.get("secretId", ""))
            secret = {"username": "edumatrix_admin", "password": mock_master_password(secret_id)}
            return {"arn": secret_id, "id": secret_id, "secretId": secret_id, "versionId": "mock-version",
                    "secretString": json.dumps(secret)}, []
        return dict(args.args), []

    # -- resources -------------------------------------------------------------------------------
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = unwrap_secrets(dict(args.inputs))
        typ, name = args.typ, args.name
        if typ == "pulumi:pulumi:StackReference":
            ref = str(inputs.get("name", name))
            outputs = dict(self.stack_outputs(ref)) if self.stack_outputs else {}
            return ref, {"name": ref, "outputs": outputs, "secretOutputNames": []}
        region = inputs.get("region") or self.region
        ident = f"{name}-{_hex(typ + name, 8)}"
        state: dict[str, Any] = dict(inputs)
        arn_base = f"arn:aws:{{service}}:{region}:{self.account_id}"
        if typ == "aws:kms/key:Key":
            key_id = f"{_hex(name, 8)}-{_hex(name + '1', 4)}-{_hex(name + '2', 4)}-{_hex(name + '3', 4)}-" \
                     f"{_hex(name + '4', 12)}"
            ident = key_id
            state.update(keyId=key_id, arn=arn_base.format(service="kms") + f":key/{key_id}")
        elif typ == "aws:kms/alias:Alias":
            state.update(arn=arn_base.format(service="kms") + f":{inputs.get('name')}")
        elif typ == "aws:rds/instance:Instance":
            identifier = inputs.get("identifier") or ident
            ident = f"db-{_hex(identifier, 26).upper()}"
            address = f"{identifier}.c{_hex(identifier + region, 12)}.{region}.rds.amazonaws.com"
            port = int(inputs.get("port") or 5432)
            version = str(inputs.get("engineVersion") or "15")
            state.update(
                engineVersionActual=version if "." in version else f"{version}.{MOCK_LATEST_MINOR.get(version, 0)}",
                identifier=identifier, address=address, endpoint=f"{address}:{port}", port=port,
                arn=arn_base.format(service="rds") + f":db:{identifier}", resourceId=ident,
                hostedZoneId="Z2R2ITUGPM61AM", status="available",
            )
            if inputs.get("manageMasterUserPassword"):
                secret = f"rds!{ident.lower()}-{_hex(identifier, 6)}"
                state["masterUserSecrets"] = [{
                    "secretArn": arn_base.format(service="secretsmanager") + f":secret:{secret}",
                    "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""), "secretStatus": "active",
                }]
        elif typ == "aws:rds/parameterGroup:ParameterGroup":
            pg_name = inputs.get("name") or f"{name}-{_hex(name, 7)}"
            ident = pg_name
            state.update(name=pg_name, arn=arn_base.format(service="rds") + f":pg:{pg_name}")
        elif typ == "aws:rds/subnetGroup:SubnetGroup":
            sg_name = inputs.get("name") or f"{name}-{_hex(name, 7)}"
            ident = sg_name
            state.update(name=sg_name, arn=arn_base.format(service="rds") + f":subgrp:{sg_name}")
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            ident = f"sg-{_hex(name)}"
            state.update(arn=arn_base.format(service="ec2") + f":security-group/{ident}",
                         name=inputs.get("name") or f"{name}-{_hex(name, 7)}")
        elif typ == "aws:iam/role:Role":
            role_name = inputs.get("name") or f"{name}-{_hex(name, 7)}"
            ident = role_name
            state.update(name=role_name, arn=f"arn:aws:iam::{self.account_id}:role/{role_name}")
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            log_name = inputs.get("name") or name
            ident = log_name
            state.update(arn=arn_base.format(service="logs") + f":log-group:{log_name}")
        elif typ == "aws:secretsmanager/secret:Secret":
            secret_name = inputs.get("name") or name
            state.update(arn=arn_base.format(service="secretsmanager") + f":secret:{secret_name}-{_hex(name, 6)}")
            ident = state["arn"]
        elif typ == "aws:secretsmanager/secretVersion:SecretVersion":
            secret_arn = str(inputs.get("secretId", ""))
            state.update(arn=secret_arn, secretArn=secret_arn, versionId=f"mock-{_hex(name, 12)}")
            ident = f"{secret_arn}|{state['versionId']}"
        elif typ == "aws:serverlessrepository/cloudFormationStack:CloudFormationStack":
            # The single-user rotation application's one output (its template's Outputs).
            function = inputs.get("parameters", {}).get("functionName", name)
            state.update(outputs={"RotationLambdaARN": arn_base.format(service="lambda") + f":function:{function}"},
                         id=f"serverlessrepo-{inputs.get('name', name)}")
        elif typ == "aws:lambda/function:Function":
            function_name = inputs.get("name") or name
            ident = function_name
            state.update(arn=arn_base.format(service="lambda") + f":function:{function_name}",
                         invokeArn=f"arn:aws:apigateway:{region}:lambda:path/functions/{function_name}")
        elif typ == "aws:cloudwatch/eventRule:EventRule":
            # An EventBridge rule's ARN (events, `rule/NAME`): the lambda Permission's sourceArn must equal it.
            rule_name = inputs.get("name") or f"{name}-{_hex(name, 7)}"
            ident = rule_name
            state.update(name=rule_name, arn=arn_base.format(service="events") + f":rule/{rule_name}")
        elif typ == "aws:sqs/queue:Queue":
            queue_name = inputs.get("name") or name
            ident = f"https://sqs.{region}.amazonaws.com/{self.account_id}/{queue_name}"
            state.update(arn=arn_base.format(service="sqs") + f":{queue_name}", url=ident)
        elif typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            ident = f"vpce-{_hex(name)}"
            service = str(inputs.get("serviceName", "")).rsplit(".", 1)[-1]
            state.update(arn=arn_base.format(service="ec2") + f":vpc-endpoint/{ident}", dnsEntries=[
                {"dnsName": f"{ident}-{_hex(name + '1', 8)}.{service}.{region}.vpce.amazonaws.com",
                 "hostedZoneId": "Z7HUB22UULQXV"}])
        elif typ == "aws:rds/proxy:Proxy":
            proxy_name = inputs.get("name") or name
            ident = proxy_name
            resource_id = f"prx-{_hex(proxy_name)}"
            state.update(arn=arn_base.format(service="rds") + f":db-proxy:{resource_id}",
                         endpoint=f"{proxy_name}.proxy-c{_hex(proxy_name + region, 12)}.{region}.rds.amazonaws.com")
        elif typ == "aws:rds/proxyEndpoint:ProxyEndpoint":
            endpoint_name = inputs.get("dbProxyEndpointName") or name
            ident = f"{inputs.get('dbProxyName')}/{endpoint_name}"
            state.update(arn=arn_base.format(service="rds") + f":db-proxy-endpoint:prx-endpoint-{_hex(endpoint_name)}",
                         endpoint=f"{endpoint_name}.endpoint.proxy-c{_hex(endpoint_name + region, 12)}.{region}"
                                  ".rds.amazonaws.com", isDefault=False)
        elif typ == "aws:route53/zone:Zone":
            ident = f"Z{_hex(name, 20).upper()}"
            state.update(zoneId=ident, arn=f"arn:aws:route53:::hostedzone/{ident}")
        elif typ == "aws:sns/topic:Topic":
            topic_name = inputs.get("name") or f"{name}-{_hex(name, 7)}"
            state.update(name=topic_name, arn=arn_base.format(service="sns") + f":{topic_name}")
            ident = state["arn"]
        elif typ == "random:index/randomId:RandomId":
            suffix = _hex(name + str(inputs.get("keepers")), 2 * int(inputs.get("byteLength", 4)))
            state.update(hex=suffix, dec=str(int(suffix, 16)), b64Std="", b64Url="", id=suffix)
        elif typ.startswith("random:index/randomPassword"):
            state.update(result=f"mock-{_hex(name, 24)}")
        elif typ == "aws:lb/loadBalancer:LoadBalancer":
            lb_name = str(inputs.get("name", name))
            suffix = f"net/{lb_name}/{_hex(name, 16)}"
            state.update(arn=arn_base.format(service="elasticloadbalancing") + f":loadbalancer/{suffix}",
                         arnSuffix=suffix, dnsName=f"{lb_name}-{_hex(name, 16)}.elb.{region}.amazonaws.com")
        elif typ == "aws:lb/targetGroup:TargetGroup":
            suffix = f"targetgroup/{inputs.get('name', name)}/{_hex(name, 16)}"
            state.update(arn=arn_base.format(service="elasticloadbalancing") + f":{suffix}", arnSuffix=suffix)
        elif typ == "aws:ecs/cluster:Cluster":
            state.update(arn=arn_base.format(service="ecs") + f":cluster/{inputs.get('name', name)}")
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            state.update(arn=arn_base.format(service="ecs") + f":task-definition/{inputs.get('family', name)}:1",
                         revision=1)
        elif typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            state.setdefault("arn", arn_base.format(service=service) + f":{name}")
        return ident, state
