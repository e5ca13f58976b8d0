"""Which components a stack declares, decided from its settings alone (called by `__main__.py`)."""

from __future__ import annotations

from typing import Any

from components.shared_instance import SharedInstance, SharedInstanceArgs
from config.settings import StackSettings


def declare_platform(settings: StackSettings) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (name -> Output or value)."""
    outputs: dict[str, Any] = {"environment": settings.environment.value}
    if settings.is_local:
        return outputs
    assert settings.network is not None  # the loader guarantees a network for AWS stacks
    shared = SharedInstance(
        settings.name_prefix,
        SharedInstanceArgs(
            identifier=settings.instance_identifier,
            instance=settings.instance,
            network=settings.network,
            tags=settings.base_tags(),
        ),
    )
    outputs.update({
        "address": shared.address,
        "port": shared.port,
        "arn": shared.arn,
        "identifier": shared.identifier,
        "masterSecretArn": shared.master_secret_arn,
        "kmsKeyArn": shared.kms_key_arn,
        "parameterGroupName": shared.parameter_group_name,
        "region": settings.aws_region,
        "databaseName": settings.instance.database_name,
    })
    return outputs

