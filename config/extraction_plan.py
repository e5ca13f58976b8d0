"""What a stack's `extractions:` mean for what it declares (the declared side of spec 3.B, issue 12).

Pure: the loader's rules for the `extractions` key (problems naming file, key and the allowed next phase), the
target instance's settings, and the access model as each instance must hold it in a phase. The phase model
itself (phases, facts, allowed moves) is config/extraction.py, shared with the operated side.

How the loader knows the previous phase: the stack file says it. `history` lists the phases already applied,
oldest first, and `phase` is the one this update applies; the path "not extracted" -> history... -> phase must
consist of allowed moves, so a skipped phase or an impossible move is refused before anything is declared, and
the pull request that moves a service shows one phase appended to `history` and one new `phase` (reviewable;
the deployed state itself cannot be read offline). Docs: docs/extraction-declared.md.

The migration freeze is enforced by PostgreSQL, not by tooling: while the phase freezes migrations, the
service's migrator has `CONNECTION LIMIT 0` on both instances, so no migration (through any tool) can log in;
superusers are exempt, which is the RDS master user's business only.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping

from config import aws_names
from config.access import (
    APP_SEQUENCE_PRIVILEGES,
    APP_TABLE_PRIVILEGES,
    READONLY_SEQUENCE_PRIVILEGES,
    READONLY_TABLE_PRIVILEGES,
    AccessModel,
    ObjectType,
    ServiceAccess,
)
from config.errors import Problem
from config.extraction import FACTS, Phase, PhaseFacts, move_problem, phase_named
from config.monitoring import INSTANCE_MEMORY_GIB, instance_memory_gib
from config.naming import RoleKind
from config.preflight import instance_problems
from config.settings import NAMESPACE, ExtractionSettings, InstanceSettings, StackSettings

KEY = f"{NAMESPACE}:extractions"
# What the app role keeps on the shared instance once the service's traffic has moved: reads only.
FENCED_PRIVILEGES = {ObjectType.TABLE: READONLY_TABLE_PRIVILEGES, ObjectType.SEQUENCE: READONLY_SEQUENCE_PRIVILEGES}
WRITE_PRIVILEGES = {ObjectType.TABLE: APP_TABLE_PRIVILEGES - READONLY_TABLE_PRIVILEGES,
                    ObjectType.SEQUENCE: APP_SEQUENCE_PRIVILEGES - READONLY_SEQUENCE_PRIVILEGES}
FROZEN_CONNECTION_LIMIT = 0


def hostname(service: str) -> str:
    """A service in DNS labels and RDS identifiers: underscores are valid in neither."""
    return service.replace("_", "-")


def target_identifier(settings: StackSettings, service: str) -> str:
    """The target instance's RDS identifier: `extractions.<service>.instance.identifier`, or
    `<shared identifier>-<service>`."""
    chosen = settings.extractions[service].instance.identifier
    return chosen or f"{settings.instance_identifier}-{hostname(service)}"


def target_instance_settings(settings: StackSettings, service: str) -> InstanceSettings:
    """The shared instance's settings with the extraction's few overrides: the same posture by construction."""
    inst = settings.extractions[service].instance
    update: dict[str, object] = {"identifier": target_identifier(settings, service)}
    for field, value in (("instance_class", inst.instance_class), ("allocated_storage_gb", inst.allocated_storage_gb),
                         ("max_allocated_storage_gb", inst.max_allocated_storage_gb), ("multi_az", inst.multi_az)):
        if value is not None:
            update[field] = value
    return settings.instance.model_copy(update=update)


def target_memory_gib(settings: StackSettings, service: str) -> float | None:
    """The target's memory for its alarms: the stack's `alarms.instanceMemoryGb` describes the shared instance's
    class, so a target of another class is sized from the table."""
    target_class = target_instance_settings(settings, service).instance_class
    if target_class == settings.instance.instance_class:
        return instance_memory_gib(target_class, settings.alarms)
    memory = INSTANCE_MEMORY_GIB.get(target_class)
    return float(memory) if memory is not None else None


def phases(settings: StackSettings) -> dict[str, Phase]:
    """service -> its phase, for every service the stack extracts."""
    return {service: extraction.phase for service, extraction in settings.extractions.items()}


# -- the access model per instance and phase -------------------------------------------------------------------
def source_access(access: ServiceAccess, phase_facts: PhaseFacts | None) -> ServiceAccess:
    """The service's access on the shared instance in a phase: writes revoked from the app role once the traffic
    has moved (cutover and later), the migrator unable to log in while migrations are frozen."""
    if phase_facts is None:
        return access
    if not phase_facts.source_writable:
        access = fence_writes(access)
    if phase_facts.migrations_frozen:
        access = freeze_migrations(access)
    return access


def target_access(access: ServiceAccess, phase_facts: PhaseFacts) -> ServiceAccess:
    """The service's access on its target: the full model, the migrator frozen while migrations are."""
    return freeze_migrations(access) if phase_facts.migrations_frozen else access


def fence_writes(access: ServiceAccess) -> ServiceAccess:
    """The app role keeps SELECT on tables and sequences, now and for objects created later."""
    app = access.role(RoleKind.APP).name

    def fenced(privileges: frozenset[str], role: str, object_type: ObjectType) -> frozenset[str]:
        if role == app and object_type in FENCED_PRIVILEGES:
            return privileges & FENCED_PRIVILEGES[object_type]
        return privileges

    grants = tuple(dataclasses.replace(g, privileges=fenced(g.privileges, g.role, g.object_type))
                   for g in access.grants)
    defaults = tuple(dataclasses.replace(d, privileges=fenced(d.privileges, d.role, d.object_type))
                     for d in access.default_privileges)
    return dataclasses.replace(access, grants=grants, default_privileges=defaults)


def freeze_migrations(access: ServiceAccess) -> ServiceAccess:
    """The migrator cannot log in (CONNECTION LIMIT 0): DDL is not replicated, so no migration may run."""
    roles = tuple(dataclasses.replace(r, connection_limit=FROZEN_CONNECTION_LIMIT) if r.kind is RoleKind.MIGRATOR
                  else r for r in access.roles)
    return dataclasses.replace(access, roles=roles)


def source_model(model: AccessModel, phase_of: Mapping[str, Phase]) -> AccessModel:
    """The stack's access model as the shared instance holds it, given each extracted service's phase: each as
    its phase says; a service whose schema was cleaned up is no longer on the shared instance. (The program
    passes the stack file's phases, the ops runner those the program gave it, so its audit judges the same.)"""
    services = []
    for access in model.services:
        phase = phase_of.get(access.service)
        phase_facts = FACTS[phase] if phase is not None else None
        if phase_facts is not None and not phase_facts.source_schema:
            continue
        services.append(source_access(access, phase_facts))
    return dataclasses.replace(model, services=tuple(services))


def target_model(model: AccessModel, service: str, phase_facts: PhaseFacts) -> AccessModel:
    """The access model of the service's own instance: that service only (baseline, extensions, its roles)."""
    return dataclasses.replace(model, services=tuple(target_access(a, phase_facts) for a in model.services
                                                      if a.service == service))


# -- the loader's rules ----------------------------------------------------------------------------------------
def extraction_problems(settings: StackSettings, catalog_names: tuple[str, ...]) -> list[Problem]:
    """Every problem of the `extractions` key: where it may appear, unknown services, impossible moves, targets
    named twice, single-AZ prod targets without a reason."""
    src = settings.source
    if not settings.extractions:
        return []
    if settings.is_local or settings.is_region_stack:
        where = "the local stack" if settings.is_local else "a region stack"
        return [Problem(src, KEY, f"{where} has no shared RDS instance to extract a service from",
                        "remove the key; extractions belong to the primary stack holding the shared instance")]
    problems: list[Problem] = []
    owners: dict[str, str] = {settings.instance_identifier: "the shared instance"}
    owners.update({f"{settings.instance_identifier}-replica-{n}": "a read replica"
                   for n in range(1, settings.replicas.count + 1)})
    for service, extraction in settings.extractions.items():
        key = f"{KEY}.{service}"
        if service not in catalog_names:
            hint = difflib.get_close_matches(service, catalog_names, n=1)
            problems.append(Problem(src, key, "unknown service",
                                    (f"did you mean {hint[0]!r}? " if hint else "")
                                    + f"services: {', '.join(catalog_names)}"))
            continue
        problems.extend(_path_problems(src, key, service, extraction))
        identifier = target_identifier(settings, service)
        problem = aws_names.rds_identifier_problem(identifier)
        if problem:
            problems.append(Problem(src, f"{key}.instance.identifier", f"target identifier {identifier!r}: "
                                    f"{problem[0]}", f"set {key}.instance.identifier; {problem[1]}"))
        elif identifier in owners:
            problems.append(Problem(src, f"{key}.instance.identifier",
                                    f"target identifier {identifier!r} is already {owners[identifier]}'s: a service "
                                    "is extracted to an instance of its own",
                                    f"choose another identifier, e.g. {settings.instance_identifier}-"
                                    f"{hostname(service)}"))
        else:
            owners[identifier] = f"the extraction target of {service}"
        target = target_instance_settings(settings, service)
        if target_memory_gib(settings, service) is None:
            problems.append(Problem(src, f"{key}.instance.instanceClass", f"the memory of {target.instance_class} "
                                    "is not in config/monitoring.py INSTANCE_MEMORY_GIB, so the target's 'memory > 80 %"
                                    " used' alarm has no total", "choose a listed class or add it to the table"))
        for found in instance_problems(src, target, local=False):  # what RDS would refuse of the target
            problems.append(dataclasses.replace(
                found, key=found.key.replace(f"{NAMESPACE}:instance.", f"{key}.instance.", 1),
                message=f"the extraction target of {service}: {found.message}"))
        inst = extraction.instance
        if settings.is_prod and inst.multi_az is False and not inst.single_az_reason:
            problems.append(Problem(src, f"{key}.instance.multiAz", "a prod extraction target runs Multi-AZ "
                                    "unless the stack file says why not",
                                    f"remove the key, or add {key}.instance.singleAzReason explaining it"))
        if inst.single_az_reason and inst.multi_az is not False:
            problems.append(Problem(src, f"{key}.instance.singleAzReason", "only a single-AZ target needs a reason",
                                    "remove the key, or set multiAz: false"))
    problems.extend(pooler_problems(settings))
    return problems


POOLER_KEY = f"{NAMESPACE}:extractionPooler"


def pooled_services(settings: StackSettings) -> tuple[str, ...]:
    """The services whose extraction phase has the platform's pooler in front of them (FACTS[phase].pooler)."""
    return tuple(s for s, e in settings.extractions.items() if FACTS[e.phase].pooler)


def pooler_problems(settings: StackSettings) -> list[Problem]:
    """A pooled phase needs the pooler's image and certificate, and the ops runner that pauses it."""
    pooled = pooled_services(settings)
    if not pooled:
        return []
    src, first = settings.source, pooled[0]
    phase = settings.extractions[first].phase.value
    problems = [Problem(src, f"{POOLER_KEY}.{key}",
                        f"the extraction of {first} is in phase {phase}, which puts the platform's PgBouncer in "
                        f"front of it (docs/extraction-runbook.md, 'How traffic moves'), and the pooler has no {key}",
                        _POOLER_FIX[key]) for key in settings.extraction_pooler.missing()]
    problems.extend(nlb_address_problems(settings))
    if not settings.ops_runner.enabled:
        problems.append(Problem(src, f"{NAMESPACE}:opsRunner.enabled",
                                f"the extraction of {first} (phase {phase}) has a pooler whose admin console only the "
                                "ops runner's security group may reach, and the ops runner is off",
                                "remove the key (the runner is on by default)"))
    return problems


def nlb_address_problems(settings: StackSettings) -> list[Problem]:
    """One NLB address for each of network.subnetIds, none for another subnet: the NLB is created with exactly
    these subnet mappings, and the tasks' hba.conf refuses the admin console to exactly these addresses."""
    given = settings.extraction_pooler.nlb_addresses
    subnets = settings.network.subnet_ids if settings.network else ()
    if not given:
        return []  # missing(): named above
    key = f"{POOLER_KEY}.nlbAddresses"
    problems = [Problem(settings.source, key, f"network.subnetIds has {subnet}, which has no NLB address",
                        f"add '{subnet}: <a free private IPv4 address inside that subnet's CIDR>'")
                for subnet in subnets if subnet not in given]
    problems += [Problem(settings.source, f"{key}.{subnet}", f"{subnet} is not one of network.subnetIds",
                         f"remove it, or add the subnet to network.subnetIds; allowed: {', '.join(subnets)}")
                 for subnet in given if subnet not in subnets]
    return problems


_POOLER_FIX = {
    "nlbAddresses": "map each of network.subnetIds to a free private IPv4 address inside that subnet's CIDR (not its "
                    "first four or last address: `aws ec2 describe-subnets`); the NLB takes these addresses and the "
                    "pooler refuses its admin console to them (docs/extraction-runbook.md, 'What the admin console "
                    "admits')",
    "imageRepository": "set it to the ECR repository holding the PgBouncer image, e.g. platform/pgbouncer "
                       "(docs/extraction-runbook.md, 'The pooler image')",
    "imageDigest": "set it to the image's digest (sha256:...; `aws ecr describe-images --repository-name REPO`)",
    "tlsSecretArn": "set it to the ARN of the secret holding the pooler's certificate and key (JSON keys "
                    "certificate, privateKey) issued for the services' DNS names",
}


def _path_problems(src: str, key: str, service: str, extraction: ExtractionSettings) -> list[Problem]:
    """The history followed by the phase must be allowed moves from "not extracted", one phase per update."""
    current: Phase | None = None
    steps = [*extraction.history, extraction.phase]
    for index, requested in enumerate(steps):
        if index < len(extraction.history) and requested == current:
            return [Problem(src, f"{key}.history", f"history lists {requested.value} twice in a row",
                            "list each applied phase once, oldest first")]
        problem = move_problem(service, current, requested)
        if problem is not None:
            where = f"{key}.phase" if index == len(extraction.history) else f"{key}.history"
            done = ", ".join(p.value for p in steps[:index]) or "nothing yet"
            previously_done = current is not None and current in (Phase.COMPLETE, Phase.CLEANUP)
            if requested is Phase.PREPARE and previously_done:
                problem = f"{service} was already extracted; a service is extracted once"
            return [Problem(src, where, f"{problem} (applied so far: {done})",
                            _fix(key, current, index == len(extraction.history)))]
        current = requested
    return []


def _fix(key: str, current: Phase | None, at_phase: bool) -> str:
    from config.extraction import allowed_next

    allowed = allowed_next(current)
    if not allowed:
        return (f"keep {key}.phase: {current.value if current else ''} for good (removing the entry would declare "
                "the schema on the shared instance again)")
    if at_phase:
        return f"set {key}.phase to one of: {', '.join(allowed)}"
    return f"correct {key}.history: after {current.value if current else 'not extracted'} comes one of: " \
           f"{', '.join(allowed)}"


# -- one update at a time: a stack file against the one deployed before it -----------------------------------
def update_problem(service: str, before: tuple[str, tuple[str, ...]] | None,
                   after: tuple[str, tuple[str, ...]] | None) -> str | None:
    """Why moving `service` from `before` to `after` ((phase, history) of the base and the new stack file; None:
    no entry) is not one allowed update, or None. `edumatrix-db diff` reports it (the loader cannot see the base)."""
    if before == after:
        return None
    old_phase = phase_named(before[0]) if before else None
    new_phase = phase_named(after[0]) if after else None
    problem = move_problem(service, old_phase, new_phase)
    if problem is not None:
        return problem
    if after is None or before is None:
        if after is not None and after[1]:
            return (f"{service} is new to this stack but its history lists {', '.join(after[1])}: the history records "
                    "the phases applied to this stack, none yet")
        return None
    expected = before[1] if old_phase == new_phase else (*before[1], before[0])
    if tuple(after[1]) != tuple(expected):
        return (f"the history of {service} must become [{', '.join(expected)}] with this update (the phases applied "
                f"before it), not [{', '.join(after[1])}]")
    return None
