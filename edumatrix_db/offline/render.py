"""How a recorded plan is shown: an indented tree, the JSON interface, or a Mermaid diagram."""

from __future__ import annotations

import json
import re
from typing import Any

from config.extraction import FACTS, phase_named, publication_name, subscription_name
from edumatrix_db.offline.engine import RecordedResource, Recording

# The inputs worth showing in the tree for each resource type (everything is in the JSON format).
KEY_SETTINGS: dict[str, tuple[str, ...]] = {
    "aws:rds/instance:Instance": (
        "identifier", "engineVersion", "instanceClass", "multiAz", "storageEncrypted", "kmsKeyId",
        "deletionProtection", "publiclyAccessible", "iamDatabaseAuthenticationEnabled", "backupRetentionPeriod",
        "backupWindow", "caCertIdentifier", "replicateSourceDb", "region",
    ),
    "aws:rds/parameterGroup:ParameterGroup": ("family", "parameters"),
    "aws:kms/key:Key": ("enableKeyRotation", "deletionWindowInDays", "region"),
    "aws:kms/alias:Alias": ("name",),
    "aws:rds/subnetGroup:SubnetGroup": ("subnetIds",),
    "aws:ec2/securityGroup:SecurityGroup": ("vpcId",),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (
        "fromPort", "referencedSecurityGroupId", "cidrIpv4"),
    "aws:cloudwatch/logGroup:LogGroup": ("name", "retentionInDays", "kmsKeyId"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": ("metricName", "threshold", "comparisonOperator", "dimensions",
                                               "region"),
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication": (
        "sourceDbInstanceArn", "kmsKeyId", "retentionPeriod", "region"),
    "aws:sns/topic:Topic": ("kmsMasterKeyId", "region"),
    "pulumi:pulumi:StackReference": ("name",),
    "postgresql:index/schema:Schema": ("name", "owner"),
    "postgresql:index/role:Role": ("name", "login", "connectionLimit", "statementTimeout"),
    "postgresql:index/grant:Grant": ("role", "schema", "objectType", "privileges"),
    "postgresql:index/defaultPrivileges:DefaultPrivileges": ("owner", "role", "schema", "objectType",
                                                             "privileges"),
    "postgresql:index/subscription:Subscription": ("name", "publications", "slotName"),
    "pulumi-python:dynamic/edumatrix:SchemaPublication": ("publication", "schema", "host"),
    "pulumi-python:dynamic/edumatrix:ServiceEvents": ("service", "publishes", "publication", "cdcRole"),
}


EXTRACTION = "edumatrix:extraction:ServiceExtraction"
SUBSCRIPTION = "postgresql:index/subscription:Subscription"


def _extraction_of(resource: RecordedResource) -> tuple[str, str] | None:
    """(service, phase) of an extraction target instance (its tags), else None."""
    tags = resource.inputs.get("tags") if resource.type == "aws:rds/instance:Instance" else None
    if isinstance(tags, dict) and tags.get("extraction-of"):
        return str(tags["extraction-of"]), str(tags.get("extraction-phase", ""))
    return None


def extraction_phases(recording: Recording) -> dict[str, str]:
    """service -> phase of every extraction in the plan (from the target instances' tags)."""
    return dict(found for r in recording.resources if (found := _extraction_of(r)) is not None)


def _short(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "name" in value[0]:
        return ", ".join(f"{p['name']}={p.get('value')}" for p in value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def render_tree(recording: Recording) -> str:
    """An indented tree: components with their children, custom resources with their key settings."""
    lines = [f"{recording.project} / {recording.stack}  ({len(recording.resources)} resources)"]
    known = {r.urn for r in recording.resources}
    phases = extraction_phases(recording)
    for service, phase in sorted(phases.items()):
        lines.append(f"  extraction: {service} in phase {phase}")

    def walk(resource: RecordedResource, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}- {resource.name}  [{resource.type}]")
        found = _extraction_of(resource)
        if found is not None:
            lines.append(f"{pad}    extraction: {found[0]}, phase {found[1]}")
        for key in KEY_SETTINGS.get(resource.type, ()):
            if key in resource.inputs and resource.inputs[key] not in (None, "", [], {}):
                lines.append(f"{pad}    {key}: {_short(resource.inputs[key])}")
        for child in recording.children_of(resource.urn):
            walk(child, depth + 1)

    for root in (r for r in recording.resources if r.parent not in known):
        walk(root, 1)
    if recording.outputs:
        lines.append("outputs:")
        lines.extend(f"  {k}: {v}" for k, v in recording.outputs.items())
    return "\n".join(lines)


def render_json(recording: Recording, extra: dict[str, Any] | None = None) -> str:
    """The plan JSON interface: {project, stack, resources: [{urn,type,name,parent,provider,inputs}], outputs}."""
    return json.dumps({**recording.to_json(), **(extra or {})}, indent=2, sort_keys=False, default=str)


def _node_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


_RDS_ARN = re.compile(r"^arn:aws[a-z-]*:rds:(?P<region>[a-z0-9-]+):\d{12}:db:(?P<identifier>[a-z][a-z0-9-]*)$")


def render_mermaid(recording: Recording) -> str:
    """A diagram a reviewer can paste into a pull request: regions, instances, replicas, service schemas.

    A replica whose source is not in this plan (a region stack's primary, read through a StackReference) is
    drawn with its source in the source's own region, so the cross-region edge is visible.
    """
    default_region = recording.settings.aws_region or "local"
    instances = sorted(recording.of_type("aws:rds/instance:Instance"), key=lambda r: r.name)
    schemas = [r for r in recording.resources if r.type == "edumatrix:database:ServiceSchema"]
    lines = ["flowchart LR"]
    arn_to_node = {str(i.props.get("arn")): _node_id(i.name) for i in instances}
    external: dict[str, tuple[str, str]] = {}  # source ARN -> (region, identifier), sources outside this plan
    for inst in instances:
        source = str(inst.inputs.get("replicateSourceDb") or "")
        match = _RDS_ARN.match(source)
        if source and source not in arn_to_node and match:
            external[source] = (match["region"], match["identifier"])
    by_region: dict[str, list[str]] = {}
    for inst in instances:
        ident = inst.props.get("identifier", inst.name)
        role = "replica" if inst.inputs.get("replicateSourceDb") else "primary"
        found = _extraction_of(inst)
        if found is not None:
            role = f"extraction target of {found[0]} · phase {found[1]}"
        by_region.setdefault(str(inst.inputs.get("region") or default_region), []).append(
            f"    {_node_id(inst.name)}[(\"{ident}<br/>{role} · {inst.inputs.get('instanceClass', '')}\")]")
    primary_stack = recording.settings.region.primary_stack if recording.settings.region else None
    for source, (region, ident) in external.items():
        arn_to_node[source] = _node_id("source_" + ident)
        label = f"{ident}<br/>primary · stack {primary_stack}" if primary_stack else f"{ident}<br/>source"
        by_region.setdefault(region, []).append(f"    {arn_to_node[source]}[(\"{label}\")]")
    for region, members in by_region.items():
        lines.append(f"  subgraph {_node_id('region_' + region)}[\"{region}\"]")
        lines.extend(members)
        lines.append("  end")
    for inst in instances:
        origin = str(inst.inputs.get("replicateSourceDb") or "")
        if origin:
            lines.append(f"  {arn_to_node.get(origin, _node_id(origin))} -. async replication .-> "
                         f"{_node_id(inst.name)}")
    primaries = [i for i in instances if not i.inputs.get("replicateSourceDb") and _extraction_of(i) is None]
    target = _node_id(primaries[0].name) if primaries else "local_postgresql"
    if not primaries and schemas:
        lines.append('  local_postgresql[("local PostgreSQL")]')
    extracted = {found[0]: (inst, found[1]) for inst in instances if (found := _extraction_of(inst)) is not None}
    subscriptions = {str(r.inputs.get("name")) for r in recording.of_type(SUBSCRIPTION)}
    services = [s.name for s in schemas if EXTRACTION not in s.urn]
    services += [service for service in extracted if service not in services]  # cleaned up on the shared instance
    for service in services:
        node = _node_id("svc_" + service)
        if service in extracted:
            inst, phase = extracted[service]
            named = phase_named(phase)
            facts = FACTS[named] if named is not None else None
            if subscription_name(service) in subscriptions:
                lines.append(f"  {target} == \"logical replication: {publication_name(service)}\" ==> "
                             f"{_node_id(inst.name)}")
            if facts is not None and facts.traffic_on_target:
                lines.append(f"  {node}([\"{service}\"]) --> {_node_id(inst.name)}")
                if facts.source_schema:
                    lines.append(f"  {node} -. read-only schema .- {target}")
                continue
        lines.append(f"  {node}([\"{service}\"]) --> {target}")
    return "\n".join(lines)
