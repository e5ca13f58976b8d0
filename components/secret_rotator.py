"""The rotation function of a stack's database credentials: AWS's published single-user rotation application
for RDS PostgreSQL, deployed from the Serverless Application Repository into the instance's VPC.

Single-user rotation logs in as the secret's own user and runs `ALTER USER ... WITH PASSWORD` (Secrets Manager
user guide, "Rotation by Lambda function", single user). So the function must reach the instance on its port
(an ingress rule on the instance's security group from the function's own group) and the Secrets Manager API
(an interface VPC endpoint with private DNS, or a NAT gateway: without one, rotation times out). With
`rds.restrict_password_commands=1` the rotated user must be a member of `rds_password` (the master is, through
`rds_superuser`; service logins are granted it by components/service_schema.py).

Application and version: `arn:aws:serverlessrepo:us-east-1:297356227824:applications/
SecretsManagerRDSPostgreSQLRotationSingleUser` (other ARNs in aws-cn and aws-us-gov), pinned to the versions
aws-cdk pins (`secret-rotation.ts`); capabilities CAPABILITY_IAM and CAPABILITY_RESOURCE_POLICY (the template
creates the function's role and the permission letting Secrets Manager invoke it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.settings import ROTATION_APPLICATION_VERSIONS

APPLICATION = "SecretsManagerRDSPostgreSQLRotationSingleUser"
APPLICATION_ARNS = {
    "aws": f"arn:aws:serverlessrepo:us-east-1:297356227824:applications/{APPLICATION}",
    "aws-cn": f"arn:aws-cn:serverlessrepo:cn-north-1:193023089310:applications/{APPLICATION}",
    "aws-us-gov": f"arn:aws-us-gov:serverlessrepo:us-gov-west-1:023102451235:applications/{APPLICATION}",
}
CAPABILITIES = ("CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY")
FUNCTION_NAME_LIMIT = 64
HTTPS = 443


@dataclass(frozen=True)
class SecretRotatorArgs:
    function_name: str
    """The Lambda function's name (64 characters at most)."""
    partition: str
    """`aws`, `aws-cn` or `aws-us-gov`: which copy of the application to deploy."""
    vpc_id: str
    subnet_ids: Sequence[str]
    database_security_group_id: pulumi.Input[str]
    """The instance's security group: the function is admitted to it on `port`."""
    kms_key_arn: pulumi.Input[str]
    """The key the rotated secrets are encrypted with (the function's role may use it)."""
    port: int = 5432
    version: str | None = None
    """The application's semantic version; default the pin of config.settings.ROTATION_APPLICATION_VERSIONS."""
    tags: Mapping[str, str] = field(default_factory=dict)


class SecretRotator(pulumi.ComponentResource):
    """`edumatrix:security:SecretRotator`: the function's security group (out to the instance and to HTTPS), the
    instance's ingress rule for it, and the SAR application's CloudFormation stack. `function_arn` goes into each
    `SecretRotation`."""

    function_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: SecretRotatorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:security:SecretRotator", name, None, opts)
        if len(args.function_name) > FUNCTION_NAME_LIMIT:
            raise ValueError(f"{name}: function name {args.function_name!r} is longer than {FUNCTION_NAME_LIMIT}")
        if args.partition not in APPLICATION_ARNS:
            raise ValueError(f"{name}: no rotation application is published in partition {args.partition!r}")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"Secrets Manager rotation function {args.function_name}",
            vpc_id=args.vpc_id,
            tags=tags,
            opts=child,
        )
        egress: list[tuple[str, int, str, dict[str, pulumi.Input[str]]]] = [
            ("database", args.port, "PostgreSQL: the rotated user sets its new password",
             {"referenced_security_group_id": args.database_security_group_id}),
            # The Secrets Manager API through an interface endpoint or a NAT gateway: addresses not known here.
            ("secretsmanager", HTTPS, "HTTPS to the Secrets Manager API (VPC endpoint or NAT)",
             {"cidr_ipv4": "0.0.0.0/0"}),
        ]
        for target, port, description, destination in egress:
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-{target}",
                security_group_id=group.id,
                ip_protocol="tcp", from_port=port, to_port=port,
                description=description,
                tags=tags,
                opts=child,
                **destination,
            )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-into-database",
            security_group_id=args.database_security_group_id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp", from_port=args.port, to_port=args.port,
            description=f"PostgreSQL from the rotation function {args.function_name}",
            tags=tags,
            opts=child,
        )
        dns_suffix = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).dns_suffix
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        stack = aws.serverlessrepository.CloudFormationStack(
            f"{name}-app",
            name=args.function_name,
            application_id=APPLICATION_ARNS[args.partition],
            semantic_version=args.version or ROTATION_APPLICATION_VERSIONS[args.partition],
            capabilities=list(CAPABILITIES),
            parameters={
                # With private DNS on an interface endpoint this public name resolves to the endpoint.
                "endpoint": pulumi.Output.concat("https://secretsmanager.", region, ".", dns_suffix),
                "functionName": args.function_name,
                "vpcSubnetIds": ",".join(args.subnet_ids),
                "vpcSecurityGroupIds": group.id,
                "kmsKeyArn": args.kms_key_arn,
            },
            tags=tags,
            opts=child,
        )
        self.function_arn = stack.outputs.apply(lambda outputs: str((outputs or {}).get("RotationLambdaARN", "")))
        self.security_group_id = group.id
        self.register_outputs({"functionArn": self.function_arn, "securityGroupId": self.security_group_id})
