"""One service's extraction to an instance of its own, as its phase declares it (spec 3.B, issue 12).

`ServiceExtraction` (`edumatrix:extraction:ServiceExtraction`, named `<prefix>-extract-<service>`) holds, per
phase (config/extraction.py `FACTS`):
- always (prepare onwards): the target instance, a `TargetInstance` (`edumatrix:extraction:TargetInstance`):
  the shared instance's own component under another type token, so it stands on an `InstanceFoundation` of its
  own (CMK, network, parameter group with logical replication, monitoring role, log groups) with the shared
  instance's settings and posture (config/extraction_plan.py `target_instance_settings`) and its own
  platform-kept master secret; its own `DatabaseAlarms` (instance metrics, log filters, events, dashboard)
  paging the region's alarm topic; a pulumi-postgresql provider logging in to it as its master user; the
  database baseline and the service's `ServiceSchema` on it (the same component the shared instance uses, with
  the target's secret store: `<prefix>-<service>/db/...` under the target's CMK);
- replicate, cutover: a `SchemaPublication` of the service's schema on the shared instance, a `Subscription`
  on the target connecting to the shared instance as the platform's extraction replication login
  (`edumatrix_extraction_replicator`, a platform secret, never the service's). The slot it creates on the
  shared instance is watched by the stack's `OldestReplicationSlotLag` alarm (components/database_alarms.py;
  the policy `extraction-slot-lag-alarm` refuses a replicating stack without it);
- complete, cleanup, rollback: no publication or subscription (so no slot).
Where the service's traffic goes (its DNS name) and what its roles may do on the shared instance are decided
in components/platform.py and config/extraction_plan.py from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import pulumi
import pulumi_postgresql as postgresql

from components.backups import SELECTION_TAG
from components.database_alarms import DatabaseAlarms, DatabaseAlarmsArgs
from components.database_baseline import DatabaseBaseline, DatabaseBaselineArgs
from components.maintenance import ScheduledMaintenance, ScheduledMaintenanceArgs
from components.providers import rds_admin_provider
from components.publication import SchemaPublication
from components.secrets import CredentialSecret, master_secret_name
from components.service_schema import SecretStore, ServiceSchema, ServiceSchemaArgs
from components.shared_instance import SharedInstance, SharedInstanceArgs
from config.access import AccessModel
from config.extraction import FACTS, Phase, publication_name, subscription_name
from config.settings import AlarmSettings, InstanceSettings, NetworkSettings

# The subscriber verifies nothing it cannot read: RDS gives a subscription no CA file path we could verify, so
# the link requires TLS (rds.force_ssl on the shared instance refuses anything else) without verify-full.
SUBSCRIPTION_SSLMODE = "require"


class TargetInstance(SharedInstance):
    """`edumatrix:extraction:TargetInstance`: the shared instance's component, for one extracted service."""

    TYPE: ClassVar[str] = "edumatrix:extraction:TargetInstance"


@dataclass(frozen=True)
class SourceInstance:
    """What the extraction needs of the shared instance."""

    identifier: pulumi.Input[str]
    address: pulumi.Input[str]
    port: pulumi.Input[int]
    master_username: str
    master_password: pulumi.Input[str]
    replicator_login: str
    replicator_password: pulumi.Input[str]


@dataclass(frozen=True)
class ServiceExtractionArgs:
    service: str
    phase: Phase
    schema: str
    target_identifier: str
    target_instance: InstanceSettings
    """The target's settings: the shared instance's with the extraction's overrides."""
    network: NetworkSettings
    target_model: AccessModel
    """The access model of the target: only this service (config/extraction_plan.py `target_model`)."""
    source: SourceInstance
    stack_prefix: str
    backup_selection: str
    """The value of the `edumatrix-backup` tag that puts the target into the stack's AWS Backup selection."""
    ca_bundle_path: str
    environment: str
    alarm_settings: AlarmSettings
    alarm_topic_arn: pulumi.Input[str]
    instance_memory_gib: float
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class ServiceExtraction(pulumi.ComponentResource):
    target: TargetInstance
    schema: ServiceSchema
    secrets: dict[str, CredentialSecret]
    address: pulumi.Output[str]

    def __init__(self, name: str, args: ServiceExtractionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:extraction:ServiceExtraction", name, None, opts)
        facts = FACTS[args.phase]
        tags = {**args.tags, "extraction-of": args.service}
        target_prefix = f"{args.stack_prefix}-{args.target_identifier.removeprefix(args.stack_prefix + '-')}"
        self.target = TargetInstance(args.target_identifier, SharedInstanceArgs(
            identifier=args.target_identifier,
            instance=args.target_instance,
            network=args.network,
            # The phase is on the instance only: it is what a reviewer (and policy) reads; one tag per move.
            tags=tags,
            # and the stack's backup selection takes it by tag (components/backups.py)
            instance_tags={"extraction-phase": args.phase.value, SELECTION_TAG: args.backup_selection},
            master_secret_name=master_secret_name(target_prefix),
        ), opts=pulumi.ResourceOptions(parent=self))
        inst = args.target_instance
        # The instance's own alarms, as the shared instance has them (the per-service alarms follow the
        # service's collector metrics, which do not depend on the instance: declared once, by the stack).
        DatabaseAlarms(f"{args.target_identifier}-alarms", DatabaseAlarmsArgs(
            name_prefix=args.target_identifier,
            environment=args.environment,
            settings=args.alarm_settings,
            topic_arn=args.alarm_topic_arn,
            instance_identifier=self.target.identifier,
            instance_memory_gib=args.instance_memory_gib,
            allocated_storage_gb=inst.allocated_storage_gb,
            max_allocated_storage_gb=inst.max_allocated_storage_gb,
            max_connections=inst.max_connections,
            services=(),
            postgresql_log_group=f"/aws/rds/instance/{args.target_identifier}/postgresql",
            region=args.region,
            tags=tags,
        ), opts=pulumi.ResourceOptions(parent=self, depends_on=[self.target]))
        provider = rds_admin_provider(
            f"{args.target_identifier}-postgresql",
            address=self.target.address,
            port=self.target.port,
            master_username=args.target_instance.master_username,
            master_secret_arn=self.target.master_secret_arn,
            database=args.target_instance.database_name,
            rds_ca_bundle=args.ca_bundle_path,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_target = pulumi.ResourceOptions(parent=self, providers={"postgresql": provider})
        model = args.target_model
        baseline = DatabaseBaseline(f"{args.target_identifier}-baseline", DatabaseBaselineArgs(model), opts=on_target)
        store = SecretStore(kms_key_id=self.target.kms_key_arn, host=self.target.address, port=self.target.port,
                            stack_prefix=target_prefix, tags=tags)
        self.schema = ServiceSchema(f"{args.target_identifier}-{args.service}", ServiceSchemaArgs(
            access=model.service(args.service), database=model.database, extensions_schema=model.extensions_schema,
            secret_store=store,
        ), opts=pulumi.ResourceOptions.merge(on_target, pulumi.ResourceOptions(depends_on=[baseline])))
        # pg_cron and pgstattuple on the target too, and USAGE on schema cron for the service's migrator: its
        # maintenance jobs are scheduled by its migrations, which run here once the traffic has moved.
        ScheduledMaintenance(f"{args.target_identifier}-maintenance", ScheduledMaintenanceArgs(model),
                             opts=pulumi.ResourceOptions.merge(on_target, pulumi.ResourceOptions(
                                 depends_on=[self.schema])))
        self.secrets = self.schema.secrets
        self.address = self.target.address

        self.publication: SchemaPublication | None = None
        self.subscription: postgresql.Subscription | None = None
        if facts.replication:
            source = args.source
            self.publication = SchemaPublication(
                f"{name}-publication",
                publication=publication_name(args.service),
                schema=args.schema,
                database=model.database,
                host=source.address,
                port=source.port,
                username=source.master_username,
                password=source.master_password,
                sslrootcert=args.ca_bundle_path,
                opts=pulumi.ResourceOptions(parent=self),
            )
            conninfo = pulumi.Output.all(
                source.address, source.port, source.replicator_password).apply(
                lambda v: f"host={v[0]} port={v[1]} dbname={model.database} user={source.replicator_login} "
                          f"password={v[2]} sslmode={SUBSCRIPTION_SSLMODE}")
            self.subscription = postgresql.Subscription(
                f"{name}-subscription",
                name=subscription_name(args.service),
                database=model.database,
                conninfo=conninfo,  # secret: it carries the replicator's (secret) password
                publications=[publication_name(args.service)],
                create_slot=True,
                slot_name=subscription_name(args.service),
                opts=pulumi.ResourceOptions.merge(on_target, pulumi.ResourceOptions(
                    depends_on=[self.publication, self.schema], additional_secret_outputs=["conninfo"])),
            )
        self.register_outputs({
            "phase": args.phase.value,
            "targetAddress": self.address,
            "targetIdentifier": self.target.identifier,
            "publication": publication_name(args.service) if facts.replication else None,
        })
