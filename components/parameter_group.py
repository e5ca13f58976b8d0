"""The platform's DB parameter group: TLS-only, audited, logical replication on (config.parameters)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from config.parameters import platform_parameters
from config.settings import InstanceSettings


@dataclass(frozen=True)
class DatabaseParameterGroupArgs:
    instance: InstanceSettings
    tags: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None


class DatabaseParameterGroup(pulumi.ComponentResource):
    """`edumatrix:database:ParameterGroup`."""

    name: pulumi.Output[str]

    def __init__(self, name: str, args: DatabaseParameterGroupArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:database:ParameterGroup", name, None, opts)
        group = aws.rds.ParameterGroup(
            f"{name}-params",
            family=args.instance.parameter_family,
            description=f"edumatrix-db platform parameters ({args.instance.parameter_family})",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(name=p.name, value=p.value, apply_method=p.apply_method)
                for p in platform_parameters(args.instance)
            ],
            region=args.region,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = group.name
        self.register_outputs({"name": self.name})
