"""Database credentials in Secrets Manager: names, copies in the region stacks' regions, rotation.

Every credential secret holds `{"username", "password", "host", "port", "dbname", "engine"}`, the shape AWS's
PostgreSQL rotation functions expect (Secrets Manager user guide, "AWS Secrets Manager rotation function
templates", RDS PostgreSQL single user). Once a secret exists it is the only source of truth: rotation changes
the password in the database and in the secret, so the value Pulumi generated is stale from then on. The
initial `SecretVersion` therefore ignores later changes of its value, and nothing the program declares pushes
the generated password again.

Names are fixed (`<prefix>/db/master`, `<prefix>/db/<service>/<kind>`), so a promoted region stack, whose
copies carry the same names, can name them without reading its primary's state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

RECOVERY_WINDOW_DAYS = 30


def secrets_prefix(stack_prefix: str) -> str:
    """`<stack prefix>/db`: where a stack's database credentials are named (e.g. `edumatrix-prod/db`)."""
    return f"{stack_prefix}/db"


def master_secret_name(stack_prefix: str) -> str:
    return f"{secrets_prefix(stack_prefix)}/master"


def service_secret_name(stack_prefix: str, service: str, kind: str) -> str:
    return f"{secrets_prefix(stack_prefix)}/{service}/{kind}"


def replica_args(replica_keys: Mapping[str, pulumi.Input[str]]) -> list[aws.secretsmanager.SecretReplicaArgs]:
    """Copies of a secret in other regions, each under a customer-managed key of its region (without one the
    replica would use `aws/secretsmanager` there). Rotation runs on the primary secret and propagates."""
    return [aws.secretsmanager.SecretReplicaArgs(region=region, kms_key_id=key)
            for region, key in sorted(replica_keys.items())]


def replica_arn(arn: str, region: str) -> str:
    """A replica's ARN: the primary secret's ARN in the replica's region (same name and suffix)."""
    parts = arn.split(":")
    return ":".join([*parts[:3], region, *parts[4:]]) if len(parts) > 4 else arn


@dataclass(frozen=True)
class Rotation:
    """How a secret is rotated: AWS's single-user rotation function, every `days` days."""

    function_arn: pulumi.Input[str]
    days: int


def rotate(name: str, secret_id: pulumi.Input[str], rotation: Rotation,
           opts: pulumi.ResourceOptions) -> aws.secretsmanager.SecretRotation:
    """Rotate `secret_id` on a schedule, starting right away: the value Pulumi generated is replaced at once."""
    return aws.secretsmanager.SecretRotation(
        name,
        secret_id=secret_id,
        rotation_lambda_arn=rotation.function_arn,
        rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(automatically_after_days=rotation.days),
        rotate_immediately=True,
        opts=opts,
    )


class RotationSchedule(pulumi.ComponentResource):
    """`edumatrix:security:RotationSchedule`: the rotation of one secret declared outside the component that owns
    it (the master secret's starts only after every schema change of the `up`, see components/platform.py)."""

    def __init__(self, name: str, secret_id: pulumi.Input[str], rotation: Rotation, *,
                 after: Sequence[pulumi.Resource] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:security:RotationSchedule", name, None, opts)
        schedule = rotate(f"{name}-rotation", secret_id, rotation,
                          pulumi.ResourceOptions(parent=self, depends_on=list(after)))
        self.register_outputs({"secretId": schedule.secret_id})


@dataclass(frozen=True)
class CredentialSecretArgs:
    name: str
    description: str
    kms_key_id: pulumi.Input[str]
    value: Mapping[str, Any]
    """The JSON fields (username, password, host, port, dbname, engine); values may be outputs."""
    replica_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    recovery_window_in_days: int = RECOVERY_WINDOW_DAYS
    depends_on: Sequence[pulumi.Resource] = ()
    """What must exist before the value is written (e.g. the login role or instance it describes)."""


class CredentialSecret(pulumi.ComponentResource):
    """`edumatrix:security:CredentialSecret`: a CMK-encrypted secret, its copies in other regions, and its first
    value, which later `up`s never write again (rotation owns it)."""

    secret: aws.secretsmanager.Secret
    arn: pulumi.Output[str]
    version: aws.secretsmanager.SecretVersion

    def __init__(self, name: str, args: CredentialSecretArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:security:CredentialSecret", name, None, opts)
        self.secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name=args.name,
            description=args.description,
            kms_key_id=args.kms_key_id,
            replicas=replica_args(args.replica_keys) or None,
            recovery_window_in_days=args.recovery_window_in_days,
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.version = aws.secretsmanager.SecretVersion(
            f"{name}-value",
            secret_id=self.secret.id,
            secret_string=pulumi.Output.json_dumps(dict(args.value)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on),
                                        ignore_changes=["secretString"]),
        )
        # The secret's ARN, resolved once the value is written: whoever reads the secret waits for it.
        self.arn = self.version.secret_arn
        self.register_outputs({"arn": self.arn})
