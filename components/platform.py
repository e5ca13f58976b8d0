"""Which components a stack declares, decided from its settings alone (called by `__main__.py`).

Three kinds of stack: local (no AWS), a primary AWS stack (the shared instance and its same-region read
replicas), and a region stack (a cross-region replica of a primary stack's instance, or its promotion).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_postgresql as postgresql

from components.alarm_topic import AlarmTopic, AlarmTopicArgs
from components.backups import BackupPlatform, BackupPlatformArgs
from components.connection_layer import ConnectionLayer, ConnectionLayerArgs, ServiceLogins
from components.database_alarms import DatabaseAlarms, DatabaseAlarmsArgs
from components.erasure_ledger import ErasureLedger, ErasureLedgerArgs
from components.event_backbone import EventBackbone, EventBackboneArgs, Publisher
from components.extraction import ServiceExtraction, ServiceExtractionArgs, SourceInstance
from components.kms_key import PlatformKey, PlatformKeyArgs
from components.maintenance import ScheduledMaintenance, ScheduledMaintenanceArgs
from components.ops_runner import EventRoute, OpsRunner, OpsRunnerArgs, ScheduledJob
from components.personal_data_reads import PersonalDataReads, PersonalDataReadsArgs
from components.pitr_validation import PitrValidation, PitrValidationArgs
from components.platform_roles import PlatformRoles, declare_platform_roles
from components.providers import local_provider, master_password, rds_admin_provider
from components.read_replicas import ReadReplicas, ReadReplicasArgs
from components.region_replica import RegionReplica, RegionReplicaArgs
from components.secret_rotator import SecretRotator, SecretRotatorArgs
from components.secrets import Rotation, RotationSchedule, master_secret_name, replica_arn, service_secret_name
from components.service_events import ServiceEvents
from components.service_pooler import PoolerBackend, ServicePooler, ServicePoolerArgs
from components.service_schema import SecretStore, ServiceSchema, declare_service_schemas
from components.shared_instance import SharedInstance, SharedInstanceArgs
from config.access import PlatformRoleKind, full_model_for_settings, model_for_settings, platform_role_name
from config.connections import effective_proxy_mode, proxy_pools
from config.events import backbone_declared, publishers
from config.extraction import FACTS
from config.extraction_plan import (
    hostname,
    pooled_services,
    target_identifier,
    target_instance_settings,
    target_memory_gib,
    target_model,
)
from config.loader import PROJECT_ROOT
from config.monitoring import instance_memory_gib
from config.naming import RoleKind, outbox_publication_name
from config.regions import partition_of
from config.settings import PROJECT, StackSettings, stack_name_prefix
from config.stack_rules import pitr_validation_on


def declare_platform(settings: StackSettings) -> dict[str, Any]:
    """Declare every resource of the stack and return its outputs (name -> Output or value)."""
    outputs: dict[str, Any] = {"environment": settings.environment.value}
    if settings.is_local:
        provider = local_provider(settings, PROJECT_ROOT)
        schemas = declare_service_schemas(settings, provider)
        declare_maintenance(settings, provider, schemas)
        declare_platform_roles(settings, provider, after=list(schemas.values()))
        outputs["schemas"] = {name: schema.schema.name for name, schema in schemas.items()}
        return outputs
    if settings.is_region_stack:
        outputs.update(declare_region(settings))
        return outputs
    assert settings.network is not None  # the loader guarantees a network for AWS stacks
    assert settings.aws_region is not None
    prefix = settings.name_prefix
    # Copies of every credential in the region stacks' regions, each under a key of that region owned by this
    # stack: the region stacks are deployed after this one, and a promoted region finds its credentials there.
    replica_keys = {
        region: PlatformKey(f"{prefix}-secrets-{region}", PlatformKeyArgs(
            description=f"{settings.instance_identifier}: copies of its database credentials in {region}",
            alias=f"{settings.instance_identifier}-secrets",
            region=region,
            tags=settings.base_tags(),
        )).arn
        for region in settings.secrets.replica_regions
    }
    shared = SharedInstance(
        prefix,
        SharedInstanceArgs(
            identifier=settings.instance_identifier,
            instance=settings.instance,
            network=settings.network,
            tags=settings.base_tags(),
            master_secret_name=master_secret_name(prefix),
            secret_replica_keys=replica_keys,
        ),
    )
    rotator = SecretRotator(f"{prefix}-rotator", SecretRotatorArgs(
        function_name=f"{prefix}-secret-rotation",
        partition=partition_of(settings.aws_region),
        vpc_id=settings.network.vpc_id,
        subnet_ids=settings.network.subnet_ids,
        database_security_group_id=shared.security_group_id,
        kms_key_arn=shared.kms_key_arn,
        port=settings.instance.port,
        version=settings.secrets.rotation_application_version,
        tags=settings.base_tags(),
    ))
    rotation = Rotation(rotator.function_arn, settings.secrets.rotation_days)
    topic = alarm_topic(settings)
    ca_bundle = PROJECT_ROOT / settings.instance.ca_bundle_path
    if not ca_bundle.is_file():
        pulumi.log.warn(
            f"{settings.instance.ca_bundle_path} is missing: the schema provider verifies the RDS server "
            "certificate with it; download AWS's RDS global-bundle.pem there before `pulumi up` "
            "(README, 'Environments and pulumi up')"
        )
    provider = rds_admin_provider(
        f"{settings.name_prefix}-postgresql",
        address=shared.address,
        port=shared.port,
        master_username=settings.instance.master_username,
        master_secret_arn=shared.master_secret_arn,
        database=settings.instance.database_name,
        # Relative to the project root (where `pulumi up` runs the providers): every checkout plans the same.
        rds_ca_bundle=settings.instance.ca_bundle_path,
    )
    secret_store = SecretStore(
        kms_key_id=shared.kms_key_arn,
        host=shared.address,
        port=shared.port,
        stack_prefix=prefix,
        tags=settings.base_tags(),
        replica_keys=replica_keys,
        rotation=rotation,
    )
    schemas = declare_service_schemas(settings, provider, secret_store)
    personal = [s.name for s in settings.catalog() if s.holds_personal_data]
    if personal:
        # GDPR (docs/gdpr.md): the erasure ledger outside the instance, replayed after a restore; reads of
        # personal data counted per service from pgaudit's object audit in the exported log
        outputs["erasureLedgerTable"] = ErasureLedger(f"{prefix}-gdpr-ledger", ErasureLedgerArgs(
            table_name=settings.erasure_ledger_table, kms_key_arn=shared.kms_key_arn, replica_keys=replica_keys,
            tags=settings.base_tags(),
        )).table_name
        PersonalDataReads(f"{prefix}-personal-data-reads", PersonalDataReadsArgs(
            instance_identifier=settings.instance_identifier, services=personal,
        ), opts=pulumi.ResourceOptions(depends_on=[shared]))
    platform_roles = declare_platform_roles(settings, provider, secret_store, after=list(schemas.values()))
    maintenance = declare_maintenance(settings, provider, schemas)
    extractions = declare_extractions(settings, shared, platform_roles, topic.arn, after=[*schemas.values()])
    service_events = declare_service_events(settings, shared, after=[*schemas.values(), platform_roles])
    if shared.master_secret is not None:
        # After every schema change of this `up`: the provider read the master password once, at its start.
        RotationSchedule(f"{prefix}-master", shared.master_secret_arn, rotation,
                         after=[*schemas.values(), platform_roles, maintenance, *service_events])
    outputs.update({
        "schemas": {name: schema.schema.name for name, schema in schemas.items()},
        # The ops runner's login (edumatrix_ops): a Secrets Manager secret under the CMK.
        "opsSecretArn": platform_roles.ops_secret_arn,
        "address": shared.address,
        "port": shared.port,
        "arn": shared.arn,
        "identifier": shared.identifier,
        "masterSecretArn": shared.master_secret_arn,
        "masterPassword": settings.instance.master_password,
        "secretReplicaRegions": list(settings.secrets.replica_regions),
        "rotationFunctionArn": rotator.function_arn,
        "kmsKeyArn": shared.kms_key_arn,
        "parameterGroupName": shared.parameter_group_name,
        "region": settings.aws_region,
        "databaseName": settings.instance.database_name,
        # What region stacks read through their StackReference.
        "role": "primary",
        "engineVersion": settings.instance.engine_version,
        "engineVersionActual": shared.engine_version_actual,
        "parameterFamily": settings.instance.parameter_family,
        "backupRetentionDays": settings.instance.backup_retention_days,
        "alarmTopicArn": topic.arn,
    })
    replicas = None
    if settings.replicas.count > 0:
        replicas = ReadReplicas(
            f"{settings.name_prefix}-replicas",
            ReadReplicasArgs(
                source_identifier=settings.instance_identifier,
                source_arn=shared.arn,
                instance=settings.instance,
                replicas=settings.replicas,
                kms_key_arn=shared.kms_key_arn,
                parameter_group_name=shared.parameter_group_name,
                subnet_group_name=shared.subnet_group_name,
                security_group_id=shared.security_group_id,
                alarm_topic_arn=topic.arn,
                monitoring_role_arn=shared.monitoring_role_arn,
                tags=settings.base_tags(),
                region=settings.aws_region,
            ),
            opts=pulumi.ResourceOptions(depends_on=[shared]),
        )
        # Read-only clients connect here directly: RDS Proxy cannot route to instance read replicas.
        outputs["readerAddresses"] = replicas.reader_addresses
        outputs["replicaLagAlarmTopicArn"] = replicas.alarm_topic_arn
    runner = None
    if settings.ops_runner.enabled:
        assert platform_roles.ops_secret_arn is not None  # an AWS stack has a secret store
        runner = declare_ops_runner(settings, shared, platform_roles.ops_secret_arn,
                                    settings.ops_runner.alarm_topic_arn or topic.arn)
        outputs["opsRunnerFunctionName"] = runner.function_name
        if runner.aws_endpoints:
            outputs["opsRunnerAwsEndpoints"] = runner.aws_endpoints
    moved = {service: e for service, e in extractions.items()
             if FACTS[settings.extractions[service].phase].traffic_on_target}
    poolers = declare_poolers(settings, shared, extractions, schemas, runner, topic.arn)
    layer = connection_layer(settings, shared, schemas, replicas.reader_addresses if replicas else None,
                             moved=moved, pooled={service: p.dns_name for service, p in poolers.items()})
    if poolers:
        outputs["extractionPoolers"] = {service: {"dnsName": p.dns_name, "adminSecretArn": p.admin_secret_arn,
                                                     "backendParameter": p.backend_parameter,
                                                     "poolerTasks": p.pooler_tasks}
                                        for service, p in poolers.items()}
    if extractions:
        outputs["extractions"] = {service: {"phase": settings.extractions[service].phase.value,
                                            "history": [p.value for p in settings.extractions[service].history],
                                            "targetAddress": e.address, "targetIdentifier": e.target.identifier}
                                  for service, e in extractions.items()}
    outputs["connections"] = layer.connections  # what service stacks read (StackReference)
    outputs["dnsZoneId"] = layer.zone_id
    outputs["proxyNames"] = layer.proxy_names
    memory = instance_memory_gib(settings.instance.instance_class, settings.alarms)
    assert memory is not None  # the loader refuses a class it cannot size
    alarms = DatabaseAlarms(f"{settings.name_prefix}-alarms-db", DatabaseAlarmsArgs(
        name_prefix=settings.name_prefix,
        environment=settings.environment.value,
        settings=settings.alarms,
        topic_arn=topic.arn,
        instance_identifier=shared.identifier,
        instance_memory_gib=memory,
        allocated_storage_gb=settings.instance.allocated_storage_gb,
        max_allocated_storage_gb=settings.instance.max_allocated_storage_gb,
        max_connections=settings.instance.max_connections,
        services=settings.catalog().names,
        postgresql_log_group=f"/aws/rds/instance/{settings.instance_identifier}/postgresql",
        proxy_names=layer.proxy_names,
        endpoint_names=layer.endpoint_names,
        replica_identifiers=replicas.identifiers if replicas else (),
        region=settings.aws_region,
        tags=settings.base_tags(),
        personal_data_services=personal,
    ), opts=pulumi.ResourceOptions(depends_on=[shared, layer]))
    outputs["alarmNames"] = alarms.alarm_names
    if backbone_declared(settings):
        events = declare_events(settings, shared, platform_roles, topic.arn)
        outputs["events"] = {"clusterArn": events.cluster_arn, "bootstrapBrokers": events.bootstrap_brokers,
                             "registryArn": events.registry_arn, "topics": events.topics,
                             "connectorArns": events.connector_arns}
    if settings.backups.enabled:
        backups = declare_backups(settings, shared, settings.backups.alarm_topic_arn or topic.arn)
        outputs["backupPlanId"] = backups.plan_id
        outputs["backupVaultArns"] = {"daily": backups.daily_vault_arn, "sixHourly": backups.six_hourly_vault_arn,
                                      **{f"daily-{r}": arn for r, arn in backups.copy_vault_arns.items()}}
        outputs["restoreTestingPlanName"] = backups.restore_testing_plan_name
        if pitr_validation_on(settings):
            assert runner is not None  # the validation is on only where the ops runner is
            outputs["pitrValidationStateMachineArn"] = declare_pitr_validation(
                settings, shared, runner, settings.backups.alarm_topic_arn or topic.arn).state_machine_arn
    return outputs


def declare_events(settings: StackSettings, shared: SharedInstance, platform_roles: PlatformRoles,
                   topic_arn: pulumi.Input[str]) -> EventBackbone:
    """The event backbone of a primary stack (components/event_backbone.py): the connectors read the primary
    instance's outboxes as the platform's CDC login."""
    assert settings.network is not None  # a primary AWS stack
    assert settings.aws_region is not None
    cdc = platform_roles.secrets[PlatformRoleKind.CDC_REPLICATOR.value]
    return EventBackbone(f"{settings.name_prefix}-events", EventBackboneArgs(
        prefix=settings.name_prefix,
        settings=settings.events,
        network=settings.network,
        publishers=[Publisher.of(spec) for spec in publishers(settings)],
        kms_key_arn=shared.kms_key_arn,
        instance_address=shared.address,
        instance_security_group_id=shared.security_group_id,
        port=settings.instance.port,
        database=settings.instance.database_name,
        cdc_login=platform_role_name(PlatformRoleKind.CDC_REPLICATOR),
        cdc_secret_arn=cdc.arn,
        alarm_topic_arn=topic_arn,
        region=settings.aws_region,
        partition=partition_of(settings.aws_region),
        tags=settings.base_tags(),
        protect=settings.instance.deletion_protection,
    ), opts=pulumi.ResourceOptions(depends_on=[shared, platform_roles]))


def declare_pitr_validation(settings: StackSettings, shared: SharedInstance, runner: OpsRunner,
                            alarm_topic_arn: pulumi.Input[str]) -> PitrValidation:
    """The monthly point-in-time-restore validation of the shared instance (components/pitr_validation.py)."""
    assert settings.aws_region is not None  # a primary AWS stack
    assert settings.network is not None
    backups = settings.backups
    return PitrValidation(f"{settings.name_prefix}-pitr-validation", PitrValidationArgs(
        stack=settings.stack,
        name_prefix=settings.name_prefix,
        environment=settings.environment.value,
        instance_identifier=settings.instance_identifier,
        instance_arn=shared.arn,
        subnet_group_name=shared.subnet_group_name,
        parameter_group_name=shared.parameter_group_name,
        vpc_id=settings.network.vpc_id,
        port=settings.instance.port,
        runner_function_arn=runner.function_arn,
        runner_security_group_id=runner.security_group_id,
        kms_key_arn=shared.kms_key_arn,
        alarm_topic_arn=alarm_topic_arn,
        schedule=backups.pitr_validation_schedule,
        instance_class=backups.pitr_validation_instance_class,
        max_wait_minutes=backups.pitr_validation_max_wait_minutes,
        heartbeat_minutes=backups.pitr_validation_heartbeat_minutes,
        log_retention_days=settings.ops_runner.log_retention_days,
        partition=partition_of(settings.aws_region),
        region=settings.aws_region,
        tags=settings.base_tags(),
    ), opts=pulumi.ResourceOptions(depends_on=[shared, runner]))


def declare_backups(settings: StackSettings, shared: SharedInstance | RegionReplica,
                    alarm_topic_arn: pulumi.Input[str] | None) -> BackupPlatform:
    """AWS Backup for the shared instance (and, by tag, the extraction targets), or for a promoted region's
    instance (then with the defaults and no copies: that stack knows no other region); components/backups.py."""
    assert settings.aws_region is not None  # an AWS stack
    backups = settings.backups
    return BackupPlatform(f"{settings.name_prefix}-backup", BackupPlatformArgs(
        stack=settings.stack,
        prefix=settings.name_prefix,
        environment=settings.environment.value,
        instance_arn=shared.arn,
        subnet_group_name=shared.subnet_group_name,
        security_group_id=shared.security_group_id,
        daily_retention_days=backups.daily_retention_days,
        six_hourly_retention_days=backups.six_hourly_retention_days,
        start_window_minutes=backups.start_window_minutes,
        completion_window_minutes=backups.completion_window_minutes,
        compliance_lock=settings.is_prod,
        lock_grace_days=backups.lock_grace_days,
        copy_regions=() if settings.is_region_stack else settings.secrets.replica_regions,
        copy_retention_days=backups.copy_retention_days,
        restore_test_schedule=backups.restore_test_schedule,
        restore_test_validation_hours=backups.restore_test_validation_hours,
        alarm_topic_arn=alarm_topic_arn,
        partition=partition_of(settings.aws_region),
        tags=settings.base_tags(),
    ), opts=pulumi.ResourceOptions(depends_on=[shared]))


def declare_maintenance(settings: StackSettings, provider: postgresql.Provider,
                        schemas: dict[str, ServiceSchema]) -> ScheduledMaintenance:
    """pg_cron and pgstattuple, and USAGE on schema cron for each migrator, once the roles exist."""
    return ScheduledMaintenance(
        "edumatrix-db-maintenance", ScheduledMaintenanceArgs(model_for_settings(settings)),
        opts=pulumi.ResourceOptions(providers={"postgresql": provider}, depends_on=list(schemas.values())))


def declare_ops_runner(settings: StackSettings, shared: SharedInstance, secret_arn: pulumi.Input[str],
                       alarm_topic_arn: pulumi.Input[str]) -> OpsRunner:
    """The ops runner of a primary stack, in the shared instance's VPC, beside the database.

    Its routes: every `auditEveryMinutes` the audit and every minute the metrics (schedules); after an
    availability, failover or recovery event of the shared instance, `ping` (the runner reconnects through the
    new primary and says so). Another
    issue adds its job to edumatrix_db/ops/runner.py and a `ScheduledJob` or `EventRoute` here (README, "The
    ops runner").
    """
    every = settings.ops_runner.audit_every_minutes
    audit = ScheduledJob(
        name="audit", job="audit", expression=f"rate({every} minutes)",
        description="The isolation audit (edumatrix_db/ops/audit.py) inside the VPC",
        max_event_age_seconds=min(every * 60, 86_400),
    )
    # The collector's per-service figures (edumatrix_db/ops/metrics.py), every minute: the alarms on them
    # (components/database_alarms.py) evaluate one-minute periods. A sample that could not start within its
    # minute is dropped: the next one is due.
    metrics = ScheduledJob(
        name="metrics", job="metrics", expression="rate(1 minute)",
        description="Per-service metrics (connections, statements, query time, pool use, schema sizes)",
        max_event_age_seconds=60,
    )
    # a primary AWS stack: the loader guarantees both
    assert settings.network is not None
    assert settings.aws_region is not None
    instance_events = EventRoute(
        name="instance-events",
        job="ping",
        pattern=shared.arn.apply(lambda arn: {
            "source": ["aws.rds"],
            "detail-type": ["RDS DB Instance Event"],
            "detail": {"SourceArn": [arn], "EventCategories": ["availability", "failover", "recovery"]},
        }),
        description="The shared instance failed over, restarted or recovered: check the runner reaches it",
    )
    routes = [instance_events]
    schedules = [audit, metrics]
    if settings.backups.enabled:
        routes += backup_event_routes(settings)
        if pitr_validation_on(settings):
            # The heartbeat the monthly point-in-time validation reads (config/maintenance.py): kept scheduled.
            schedules.append(ScheduledJob(
                name="heartbeat", job="heartbeat-schedule", expression="rate(1 day)",
                description="Keep the platform's pg_cron heartbeat scheduled (the point-in-time validation's "
                            "evidence)", max_event_age_seconds=86_400))
    return OpsRunner(
        f"{settings.name_prefix}-ops-runner",
        OpsRunnerArgs(
            settings=settings.ops_runner,
            environment=settings.environment.value,
            region=settings.aws_region,
            vpc_id=settings.network.vpc_id,
            subnet_ids=settings.network.subnet_ids,
            database_security_group_id=shared.security_group_id,
            database_port=settings.instance.port,
            database_address=shared.address,
            database_name=settings.instance.database_name,
            database_secret_arn=secret_arn,
            kms_key_arn=shared.kms_key_arn,
            package=PROJECT_ROOT / settings.ops_runner.package_path,
            model={
                "database": settings.instance.database_name,
                "idleInTransactionMs": settings.instance.idle_in_transaction_session_timeout_ms,
                "services": {name: override.patch() for name, override in settings.services.items()},
                # What each extraction leaves on the shared instance (fenced writes, frozen migrator, no schema).
                "extractions": {name: e.phase.value for name, e in settings.extractions.items()},
            },
            schedules=schedules,
            event_routes=routes,
            alarm_topic_arn=alarm_topic_arn,
            tags=settings.base_tags(),
            reports_restore_tests=settings.backups.enabled,
            pooler_parameters=f"/{settings.name_prefix}/extraction/" if pooled_services(settings) else "",
        ),
        opts=pulumi.ResourceOptions(depends_on=[shared]),
    )


def declare_service_events(settings: StackSettings, shared: SharedInstance,
                           after: list[pulumi.Resource]) -> list[ServiceEvents]:
    """Per service on the shared instance: its inbox, and its outbox and publication when it publishes events
    (components/service_events.py, docs/events.md); after the schemas and the CDC login exist."""
    model = model_for_settings(settings)
    password = master_password(shared.master_secret_arn)
    return [ServiceEvents(
        f"{settings.name_prefix}-events-{hostname(s.service)}", service=s.service, publishes=s.publishes_events,
        publication=outbox_publication_name(s.service) if s.publishes_events else None, cdc_role=model.cdc_role,
        payloads=s.event_payloads, database=model.database, host=shared.address, port=shared.port,
        username=settings.instance.master_username, password=password,
        sslrootcert=settings.instance.ca_bundle_path, opts=pulumi.ResourceOptions(depends_on=[shared, *after]),
    ) for s in model.services]


def declare_extractions(settings: StackSettings, shared: SharedInstance, platform_roles: PlatformRoles,
                        topic_arn: pulumi.Input[str], after: list[pulumi.Resource]) -> dict[str, ServiceExtraction]:
    """One `ServiceExtraction` per service in `extractions:`, as its phase says (components/extraction.py)."""
    if not settings.extractions:
        return {}
    assert settings.network is not None
    full = full_model_for_settings(settings)
    replicator = platform_role_name(PlatformRoleKind.EXTRACTION_REPLICATOR)
    source = SourceInstance(
        identifier=shared.identifier, address=shared.address, port=shared.port,
        master_username=settings.instance.master_username, master_password=master_password(shared.master_secret_arn),
        replicator_login=replicator,
        replicator_password=platform_roles.passwords[PlatformRoleKind.EXTRACTION_REPLICATOR],
    )
    out: dict[str, ServiceExtraction] = {}
    for service, extraction in settings.extractions.items():
        phase_facts = FACTS[extraction.phase]
        target = target_instance_settings(settings, service)
        memory = target_memory_gib(settings, service)
        assert memory is not None  # the loader refuses a class it cannot size
        out[service] = ServiceExtraction(f"{settings.name_prefix}-extract-{hostname(service)}", ServiceExtractionArgs(
            service=service,
            phase=extraction.phase,
            schema=full.service(service).schema,
            target_identifier=target_identifier(settings, service),
            backup_selection=settings.stack,
            target_instance=target,
            network=settings.network,
            target_model=target_model(full, service, phase_facts),
            source=source,
            stack_prefix=settings.name_prefix,
            ca_bundle_path=settings.instance.ca_bundle_path,
            environment=settings.environment.value,
            alarm_settings=settings.alarms,
            alarm_topic_arn=topic_arn,
            instance_memory_gib=memory,
            region=settings.aws_region,
            tags=settings.base_tags(),
        ), opts=pulumi.ResourceOptions(depends_on=[shared, platform_roles, *after]))
    return out


def declare_poolers(settings: StackSettings, shared: SharedInstance, extractions: Mapping[str, ServiceExtraction],
                    schemas: Mapping[str, ServiceSchema], runner: OpsRunner | None,
                    topic_arn: pulumi.Input[str]) -> dict[str, ServicePooler]:
    """The platform's PgBouncer in front of each service whose extraction phase has one (FACTS[phase].pooler):
    components/service_pooler.py. Declared the same in every pooled phase (its logins are the shared instance's
    secrets; the target's have the same passwords: docs/extraction-runbook.md, checklist), so a phase move
    never redeploys it: traffic moves only by the ops runner's switch."""
    out: dict[str, ServicePooler] = {}
    for service in pooled_services(settings):
        # the loader refuses a pooled extraction without the ops runner; an AWS stack has a network
        assert runner is not None
        assert settings.network is not None
        extraction = extractions[service]
        spec = settings.catalog().get(service)
        limits = spec.connection_limits()
        secrets = schemas[service].secrets  # the same passwords on the target (the runbook's checklist)
        tasks = settings.extraction_pooler.task_count
        kinds = (RoleKind.APP, RoleKind.READONLY)
        out[service] = ServicePooler(f"{settings.name_prefix}-pooler-{hostname(service)}", ServicePoolerArgs(
            service=service,
            name_prefix=settings.name_prefix,
            settings=settings.extraction_pooler,
            network=settings.network,
            port=settings.instance.port,
            database=settings.instance.database_name,
            source=PoolerBackend(shared.address, shared.port, shared.security_group_id),
            target=PoolerBackend(extraction.address, extraction.target.port, extraction.target.security_group_id),
            logins={spec.role(k): secrets[k.value].arn for k in kinds},
            # each task opens at most its share of the role's connection limit (PgBouncer's pool_size)
            pool_sizes={spec.role(k): max(1, limits[k] // tasks) for k in kinds},
            runner_security_group_id=runner.security_group_id,
            runner_role_arn=runner.role_arn,
            kms_key_arn=shared.kms_key_arn,
            alarm_topic_arn=topic_arn,
            region=settings.aws_region,
            tags=settings.base_tags(),
        ), opts=pulumi.ResourceOptions(depends_on=[extraction]))
    return out


def connection_layer(settings: StackSettings, shared: SharedInstance, schemas: dict[str, Any],
                     reader_addresses: pulumi.Output[list[str]] | None,
                     moved: Mapping[str, ServiceExtraction] | None = None,
                     pooled: Mapping[str, pulumi.Input[str]] | None = None) -> ConnectionLayer:
    """RDS Proxy (as `connections.proxy` says), the private zone with a name per service, the settings.

    A service in `moved` (extracted, its traffic on its own instance) gets its name pointed at that instance,
    with the target's login secrets, and is no longer served by the shared instance's proxy."""
    moved = moved or {}
    assert settings.network is not None
    catalog = settings.catalog()
    mode = effective_proxy_mode(settings)
    inst = settings.instance
    logins = []
    for spec in catalog:
        limits = spec.connection_limits()
        logins.append(ServiceLogins(
            service=spec.name,
            roles={k: spec.role(k) for k in (RoleKind.MIGRATOR, RoleKind.APP, RoleKind.READONLY)},
            secret_arns={RoleKind(k): secret.arn for k, secret in
                         (moved[spec.name].secrets if spec.name in moved else schemas[spec.name].secrets).items()},
            pool_sizes={k: limits[k] for k in (RoleKind.APP, RoleKind.READONLY)},
            statement_timeout_ms=spec.statement_timeout_ms,
        ))
    return ConnectionLayer(f"{settings.name_prefix}-connections", ConnectionLayerArgs(
        name_prefix=settings.name_prefix,
        mode=mode,
        pools=proxy_pools(catalog, mode=mode, max_connections=inst.max_connections,
                          reserved=inst.reserved_connections, idle_pool_percent=settings.connections.idle_pool_percent),
        settings=settings.connections,
        services=logins,
        network=settings.network,
        instance_identifier=shared.identifier,
        instance_address=shared.address,
        instance_security_group_id=shared.security_group_id,
        port=inst.port,
        database=inst.database_name,
        kms_key_arn=shared.kms_key_arn,
        zone_name=settings.connections.dns_zone or f"{settings.stack}.db.edumatrix.internal",
        reader_addresses=reader_addresses,
        replica_count=settings.replicas.count,
        region=settings.aws_region,
        tags=settings.base_tags(),
        moved={service: extraction.address for service, extraction in moved.items()},
        pooled=dict(pooled or {}),
        pooler_ca=settings.extraction_pooler.ca_name,
    ), opts=pulumi.ResourceOptions(depends_on=[shared]))


def alarm_topic(settings: StackSettings) -> AlarmTopic:
    """The stack's alarm topic, in its region: every alarm and RDS event subscription of the stack pages it."""
    return AlarmTopic(f"{settings.name_prefix}-alarms", AlarmTopicArgs(
        topic_name=f"{settings.name_prefix}-alarms",
        subscriptions=settings.alarms.subscriptions,
        region=settings.aws_region,
        tags=settings.base_tags(),
    ))
def backup_event_routes(settings: StackSettings) -> list[EventRoute]:
    """AWS Backup's events the runner acts on: a finished restore test (validate the restored instance, report
    to AWS Backup) and a finished backup job of this stack's vaults (its duration, for the 1-hour alarm)."""
    vaults = [f"{settings.name_prefix}-daily", f"{settings.name_prefix}-six-hourly"]
    return [
        EventRoute(
            name="restore-tests", job="restore-verify",
            pattern={"source": ["aws.backup"], "detail-type": ["Restore Job State Change"],
                     "detail": {"status": ["COMPLETED"], "restoreTestingPlanArn": [{"exists": True}]}},
            description="AWS Backup restored a recovery point for a restore test: validate it and report"),
        EventRoute(
            name="backup-jobs", job="backup-job-duration",
            pattern={"source": ["aws.backup"], "detail-type": ["Backup Job State Change"],
                     "detail": {"state": ["COMPLETED"], "backupVaultName": vaults}},
            description="An AWS Backup job of the shared instance completed: publish how long it took"),
    ]


def primary_stack_reference_name(settings: StackSettings) -> str:
    """`<org>/edumatrix-db/<primaryStack>`; the org defaults to the one this stack runs in."""
    assert settings.region is not None
    organization = settings.region.organization or pulumi.get_organization()
    return f"{organization}/{PROJECT}/{settings.region.primary_stack}"


def declare_region(settings: StackSettings) -> dict[str, Any]:
    """A region stack: the primary's ARN from its stack's outputs, everything else declared in this region."""
    # The loader guarantees all four for a region stack.
    assert settings.region is not None
    assert settings.primary is not None
    assert settings.network is not None
    assert settings.aws_region is not None
    primary = pulumi.StackReference(primary_stack_reference_name(settings))
    topic = alarm_topic(settings)
    replica = RegionReplica(
        settings.name_prefix,
        RegionReplicaArgs(
            identifier=settings.name_prefix,
            region=settings.aws_region,
            primary_region=settings.primary.region,
            primary_arn=primary.require_output("arn"),
            instance=settings.replica_instance(),
            network=settings.network,
            settings=settings.region,
            alarm_topic_arn=topic.arn,
            tags=settings.base_tags(),
        ),
    )
    outputs: dict[str, Any] = {
        "role": "primary" if settings.region.promote else "replica",
        "region": settings.aws_region,
        "primaryStack": settings.region.primary_stack,
        "primaryRegion": settings.primary.region,
        "address": replica.address,
        "port": settings.replica_instance().port,
        "arn": replica.arn,
        "identifier": replica.identifier,
        "kmsKeyArn": replica.kms_key_arn,
        "parameterGroupName": replica.parameter_group_name,
        "databaseName": settings.replica_instance().database_name,
        "engineVersion": settings.replica_instance().engine_version,
        "lagThresholdSeconds": settings.region.lag_threshold_seconds,
        # The credentials a promoted region needs, in this region: copies of the primary stack's secrets.
        **region_credentials(settings, primary),
        "alarmTopicArn": topic.arn,
    }
    if settings.region.promote:  # now a primary: AWS Backup covers it (spec 6.A, RDS.26)
        backups = declare_backups(settings, replica, topic.arn)
        outputs["backupPlanId"] = backups.plan_id
    if not settings.region.promote:
        outputs["replicationSourceArn"] = primary.require_output("arn")
        outputs["primaryKmsKeyArn"] = primary.require_output("kmsKeyArn")  # for the record: keys are regional
        outputs["replicaLagAlarmTopicArn"] = replica.alarm_topic_arn
    return outputs


def region_credentials(settings: StackSettings, primary: pulumi.StackReference) -> dict[str, Any]:
    """Names (and the master's ARN) of the primary's credential secrets as copied into this region. The names
    are fixed, so they are known without the primary's outputs; clients connect to this stack's `address` (the
    copies' `host` is the primary's until the runbook updates it after a promotion)."""
    assert settings.region is not None
    assert settings.aws_region is not None
    region = settings.aws_region
    primary_prefix = stack_name_prefix(settings.region.primary_stack)
    model = model_for_settings(settings)
    services = {access.service: {r.kind.value: service_secret_name(primary_prefix, access.service, r.kind.value)
                                 for r in access.login_roles}
                for access in model.services}
    return {
        "masterSecretName": master_secret_name(primary_prefix),
        "masterSecretArn": primary.get_output("masterSecretArn").apply(
            lambda arn: replica_arn(str(arn), region) if arn else ""),
        "serviceSecretNames": services,
        "platformSecretNames": {r.kind.value: service_secret_name(primary_prefix, "platform", r.kind.value)
                                for r in model.platform.roles if r.login},
    }
