"""Which components a stack declares, decided from its settings alone (called by `__main__.py`)."""

from __future__ import annotations

from typing import Any

from components.service_schema import SecretStore, declare_service_schemas, local_provider, rds_admin_provider
from components.shared_instance import SharedInstance, SharedInstanceArgs
from config.loader import PROJECT_ROOT
from config.settings import StackSettings


def declare_platform(settings: StackSettings) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (name -> Output or value)."""
    outputs: dict[str, Any] = {"environment": settings.environment.value}
    if settings.is_local:
        schemas = declare_service_schemas(settings, local_provider(settings, PROJECT_ROOT))
        outputs["schemas"] = {name: schema.schema.name for name, schema in schemas.items()}
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
    provider = rds_admin_provider(
        f"{settings.name_prefix}-postgresql",
        address=shared.address,
        port=shared.port,
        master_username=settings.instance.master_username,
        master_secret_arn=shared.master_secret_arn,
        database=settings.instance.database_name,
        rds_ca_bundle=str(PROJECT_ROOT / settings.instance.ca_bundle_path),
    )
    schemas = declare_service_schemas(settings, provider, SecretStore(
        kms_key_id=shared.kms_key_arn,
        host=shared.address,
        port=shared.port,
        name_prefix=f"{settings.name_prefix}/db",
        tags=settings.base_tags(),
    ))
    outputs.update({
        "schemas": {name: schema.schema.name for name, schema in schemas.items()},
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

