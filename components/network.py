"""Where an instance listens: a DB subnet group over private subnets and a security group that admits
PostgreSQL only from the clients the stack names (never from anywhere)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class DatabaseNetworkArgs:
    vpc_id: str
    subnet_ids: Sequence[str]
    allowed_security_group_ids: Sequence[str] = ()
    allowed_cidrs: Sequence[str] = ()
    port: int = 5432
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None


class DatabaseNetwork(pulumi.ComponentResource):
    """`edumatrix:network:DatabaseNetwork`: subnet group + security group with explicit ingress rules."""

    subnet_group_name: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseNetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:network:DatabaseNetwork", name, None, opts)
        if len(args.subnet_ids) < 2:
            raise ValueError(f"{name}: subnet_ids needs subnets in at least two availability zones")
        if not args.allowed_security_group_ids and not args.allowed_cidrs:
            raise ValueError(f"{name}: name allowed_security_group_ids or allowed_cidrs; nobody could connect")
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            description=f"Private subnets of {name}",
            subnet_ids=list(args.subnet_ids),
            region=args.region,
            tags=tags,
            opts=child,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"PostgreSQL clients of {name}",
            vpc_id=args.vpc_id,
            region=args.region,
            tags=tags,
            opts=child,
        )
        for index, source_group in enumerate(args.allowed_security_group_ids):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-sg-{index}",
                security_group_id=group.id,
                referenced_security_group_id=source_group,
                ip_protocol="tcp",
                from_port=args.port,
                to_port=args.port,
                description=f"PostgreSQL from {source_group}",
                region=args.region,
                tags=tags,
                opts=child,
            )
        for index, cidr in enumerate(args.allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-cidr-{index}",
                security_group_id=group.id,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=args.port,
                to_port=args.port,
                description=f"PostgreSQL from {cidr}",
                region=args.region,
                tags=tags,
                opts=child,
            )
        self.subnet_group_name = subnet_group.name
        self.security_group_id = group.id
        self.register_outputs({"subnetGroupName": self.subnet_group_name, "securityGroupId": self.security_group_id})
