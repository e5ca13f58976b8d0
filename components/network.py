"""Where an instance listens: a DB subnet group over private subnets and a security group that admits
PostgreSQL only from the clients the stack names (never from anywhere)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.settings import NetworkSettings


@dataclass(frozen=True)
class DatabaseNetworkArgs:
    vpc_id: str
    subnet_ids: Sequence[str]
    allowed_security_group_ids: Sequence[str] = ()
    allowed_cidrs: Sequence[str] = ()
    port: int = 5432
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None

    @classmethod
    def from_settings(cls, network: NetworkSettings, *, port: int, tags: Mapping[str, str],
                      region: str | None = None) -> DatabaseNetworkArgs:
        return cls(vpc_id=network.vpc_id, subnet_ids=network.subnet_ids,
                   allowed_security_group_ids=network.allowed_security_group_ids,
                   allowed_cidrs=network.allowed_cidrs, port=port, tags=tags, region=region)


def client_sources(security_group_ids: Sequence[str], cidrs: Sequence[str]) -> list[tuple[str, dict[str, str]]]:
    """The allowed clients as (name suffix, ingress-rule source argument) pairs: one rule per source."""
    return [
        *((f"sg-{i}", {"referenced_security_group_id": g}) for i, g in enumerate(security_group_ids)),
        *((f"cidr-{i}", {"cidr_ipv4": c}) for i, c in enumerate(cidrs)),
    ]


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
        for suffix, source in client_sources(args.allowed_security_group_ids, args.allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{suffix}",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=args.port,
                to_port=args.port,
                description=f"PostgreSQL from {next(iter(source.values()))}",
                region=args.region,
                tags=tags,
                opts=child,
                **source,
            )
        self.subnet_group_name = subnet_group.name
        self.security_group_id = group.id
        self.register_outputs({"subnetGroupName": self.subnet_group_name, "securityGroupId": self.security_group_id})


def allow_tcp(*, source: pulumi.Input[str], target: pulumi.Input[str], port: int, egress_name: str,
              ingress_name: str, egress_description: str, ingress_description: str, tags: Mapping[str, str],
              opts: pulumi.ResourceOptions, region: str | None = None) -> None:
    """One TCP port from one security group to another, both halves: an egress rule on `source` and an ingress
    rule on `target`, each naming the other group. The ops runner's way to what it operates: the database, the
    PITR check copy, the extraction poolers' admin consoles."""
    aws.vpc.SecurityGroupEgressRule(
        egress_name, security_group_id=source, ip_protocol="tcp", from_port=port, to_port=port,
        referenced_security_group_id=target, description=egress_description, region=region, tags=dict(tags),
        opts=opts)
    aws.vpc.SecurityGroupIngressRule(
        ingress_name, security_group_id=target, ip_protocol="tcp", from_port=port, to_port=port,
        referenced_security_group_id=source, description=ingress_description, region=region, tags=dict(tags),
        opts=opts)
