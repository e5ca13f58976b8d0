"""Recorded-resource fixtures shaped exactly as the engine records them (camelCase props), and a runner
that evaluates policies through the gate's own code path."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from config.catalog import load_catalog
from config.naming import RoleKind, role_name, schema_name
from edumatrix_db.offline.engine import RecordedResource
from edumatrix_db.offline.gate import Violation, evaluate
from policy.base import PackPolicy
from policy.pack import POLICIES, load_policy_config

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_URN = "urn:pulumi:test::edumatrix-db::pulumi:pulumi:Stack::edumatrix-db-test"


class _Missing:
    """A props override that removes the key. Its repr is fixed (an `object()` shows its address), so the ids of
    the tests it parametrizes are the same in every process: mutmut stores test ids in one process and runs them
    in another."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()

TAGS = {"service": "edumatrix-db", "environment": "prod", "owner": "platform-team",
        "data-classification": "confidential", "managed-by": "pulumi", "stack": "test"}


def key_arn(region: str = REGION, key: str = "e6766703-97da-5b21-9a5b-ef0cd900cc76") -> str:
    return f"arn:aws:kms:{region}:{ACCOUNT}:key/{key}"


def resource(type_: str, name: str, props: Mapping[str, Any], *, provider: str | None = None,
             parent: str | None = None, custom_timeouts: Mapping[str, str] | None = None,
             retain_on_delete: bool = False) -> RecordedResource:
    clean = {k: v for k, v in props.items() if v is not MISSING}
    return RecordedResource(urn=f"urn:pulumi:test::edumatrix-db::{type_}::{name}", type=type_, name=name,
                            parent=parent, provider=provider, custom=True, inputs=dict(clean), props=clean,
                            custom_timeouts=dict(custom_timeouts or {}), retain_on_delete=retain_on_delete)


def instance_props(**overrides: Any) -> dict[str, Any]:
    """The shared instance as the prod stack records it."""
    props: dict[str, Any] = {
        "identifier": "edumatrix-test", "engine": "postgres", "engineVersion": "15.10",
        "instanceClass": "db.r6g.large", "allocatedStorage": 100, "storageEncrypted": True,
        "kmsKeyId": key_arn(), "username": "edumatrix_admin", "manageMasterUserPassword": True,
        "masterUserSecretKmsKeyId": key_arn(), "iamDatabaseAuthenticationEnabled": True, "multiAz": True,
        "deletionProtection": True, "publiclyAccessible": False, "dbSubnetGroupName": "edumatrix-test-subnets",
        "vpcSecurityGroupIds": ["sg-0123456789abcdef0"], "parameterGroupName": "edumatrix-test-params",
        "caCertIdentifier": "rds-ca-rsa2048-g1", "backupRetentionPeriod": 30, "backupWindow": "00:00-00:30",
        "copyTagsToSnapshot": True, "autoMinorVersionUpgrade": True, "performanceInsightsEnabled": True,
        "performanceInsightsKmsKeyId": key_arn(), "performanceInsightsRetentionPeriod": 7,
        "monitoringInterval": 60, "monitoringRoleArn": f"arn:aws:iam::{ACCOUNT}:role/edumatrix-test-monitoring",
        "enabledCloudwatchLogsExports": ["postgresql", "upgrade"], "tags": dict(TAGS),
        "arn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:edumatrix-test",
    }
    props.update(overrides)
    return props


def instance(name: str = "edumatrix-test-db", **overrides: Any) -> RecordedResource:
    return resource("aws:rds/instance:Instance", name, instance_props(**overrides))


def replica(name: str = "edumatrix-test-replica", **overrides: Any) -> RecordedResource:
    """A same-region read replica (source by identifier): no engine, username, backups or multi-AZ."""
    props = instance_props(identifier="edumatrix-test-replica", replicateSourceDb="edumatrix-test")
    for key in ("engine", "engineVersion", "username", "manageMasterUserPassword", "masterUserSecretKmsKeyId",
                "backupRetentionPeriod", "backupWindow", "multiAz", "dbSubnetGroupName", "allocatedStorage",
                "storageEncrypted", "kmsKeyId"):
        props.pop(key)
    props.update(overrides)
    return resource("aws:rds/instance:Instance", name, props)


PLATFORM_PARAMETERS = {  # as config/parameters.py sends them for postgres15 (rds.force_ssl is its default there)
    "ssl_min_protocol_version": "TLSv1.2",
    "shared_preload_libraries": "pg_stat_statements,pgaudit", "pgaudit.log": "ddl,role", "log_connections": "1",
    "log_disconnections": "1", "log_min_duration_statement": "100", "rds.logical_replication": "1",
    "idle_in_transaction_session_timeout": "60000", "max_connections": "1000", "log_parameter_max_length": "0",
    "log_min_error_statement": "panic", "temp_file_limit": "1048576", "rds.restrict_password_commands": "1",
}


def parameter_group(name: str = "edumatrix-test-pg-params", **overrides: Any) -> RecordedResource:
    """The platform parameter group; overrides change (or with MISSING remove) parameters."""
    values = {**PLATFORM_PARAMETERS, **overrides}
    params = [{"name": k, "value": v, "applyMethod": "immediate"} for k, v in values.items() if v is not MISSING]
    return resource("aws:rds/parameterGroup:ParameterGroup", name, {
        "name": "edumatrix-test-params", "family": "postgres15", "parameters": params, "tags": dict(TAGS)})


def role(name: str, **overrides: Any) -> RecordedResource:
    props: dict[str, Any] = {"name": name, "login": True, "connectionLimit": 5, "superuser": False,
                             "createRole": False, "createDatabase": False, "bypassRowLevelSecurity": False,
                             "replication": False, "inherit": True}
    props.update(overrides)
    return resource("postgresql:index/role:Role", name, props)


def service_roles(service: str, pool: int = 10) -> list[RecordedResource]:
    """The four roles of a service, shaped as the schema component declares them."""
    return [
        role(role_name(service, RoleKind.OWNER), login=False, connectionLimit=0),
        role(role_name(service, RoleKind.MIGRATOR), connectionLimit=2),
        role(role_name(service, RoleKind.APP), connectionLimit=pool, statementTimeout=5000),
        role(role_name(service, RoleKind.READONLY), connectionLimit=3, statementTimeout=30000),
    ]


def grant(name: str, role_: str, schema: str | None, privileges: Iterable[str], object_type: str = "schema",
          **extra: Any) -> RecordedResource:
    props: dict[str, Any] = {"database": "edumatrix", "role": role_, "objectType": object_type,
                             "privileges": list(privileges), **extra}
    if schema is not None:
        props["schema"] = schema
    return resource("postgresql:index/grant:Grant", name, props)


def service_access(service: str) -> list[RecordedResource]:
    """A compliant service schema: roles, schema, grants on its own schema, default privileges, revoke PUBLIC."""
    schema = schema_name(service)
    app, readonly = role_name(service, RoleKind.APP), role_name(service, RoleKind.READONLY)
    owner = role_name(service, RoleKind.OWNER)
    return [
        *service_roles(service),
        resource("postgresql:index/schema:Schema", schema, {"name": schema, "owner": owner, "database": "edumatrix"}),
        grant(f"{service}-app-usage", app, schema, ["USAGE"]),
        grant(f"{service}-app-tables", app, schema, ["SELECT", "INSERT", "UPDATE", "DELETE"], "table"),
        grant(f"{service}-ro-tables", readonly, schema, ["SELECT"], "table"),
        grant(f"{service}-app-connect", app, None, ["CONNECT"], "database"),
        grant(f"{service}-revoke-public", "public", schema, [], "schema"),
        resource("postgresql:index/defaultPrivileges:DefaultPrivileges", f"{service}-app-default", {
            "database": "edumatrix", "owner": owner, "role": app, "schema": schema, "objectType": "table",
            "privileges": ["SELECT", "INSERT", "UPDATE", "DELETE"]}),
    ]


def all_services_access() -> list[RecordedResource]:
    return [r for s in load_catalog() for r in service_access(s.name)]


def run(resources: Iterable[RecordedResource], *, environment: str = "prod", config: Mapping[str, Any] | None = None,
        policies: Iterable[PackPolicy] = POLICIES, region: str | None = REGION) -> list[Violation]:
    """Evaluate `policies` over `resources` with the environment's policy config (plus `config`)."""
    merged = {**load_policy_config(environment), **(config or {})}
    violations, _ = evaluate(list(resources), merged, region=region, stack_urn=STACK_URN, policies=policies)
    return violations


def edited(resources: Iterable[RecordedResource], type_token: str, edit: Callable[[dict[str, Any]], None], *,
           which: int = 0) -> list[RecordedResource]:
    """`resources` with the `which`-th resource of `type_token` replaced by a copy whose props `edit` changed."""
    resources = list(resources)
    target = [r for r in resources if r.type == type_token][which]
    out: list[RecordedResource] = []
    for res in resources:
        if res is target:
            props = json.loads(json.dumps(res.props))
            edit(props)
            res = dataclasses.replace(res, props=props, inputs=props)
        out.append(res)
    return out


def messages_after_edit(resources: Iterable[RecordedResource], type_token: str, edit: Callable[[dict[str, Any]], None],
                        policies: Iterable[PackPolicy], *, which: int = 0) -> dict[str, list[str]]:
    """policy -> messages, over `resources` with the `which`-th resource of `type_token` edited in place of it."""
    out: dict[str, list[str]] = {}
    for v in run(edited(resources, type_token, edit, which=which), policies=policies):
        out.setdefault(v.policy, []).append(v.message)
    return out


def by_policy(violations: Iterable[Violation]) -> dict[str, list[str]]:
    """policy name -> URNs it reported."""
    out: dict[str, list[str]] = {}
    for v in violations:
        out.setdefault(v.policy, []).append(v.urn)
    return out


def ledger_table_props(**overrides: Any) -> dict[str, Any]:
    """The GDPR erasure ledger as components/erasure_ledger.py declares it."""
    props: dict[str, Any] = {
        "name": "edumatrix-test-gdpr-erasure-ledger", "billingMode": "PAY_PER_REQUEST",
        "serverSideEncryption": {"enabled": True, "kmsKeyArn": key_arn()},
        "pointInTimeRecovery": {"enabled": True}, "deletionProtectionEnabled": True,
        "replicas": [{"regionName": "eu-west-1", "kmsKeyArn": key_arn("eu-west-1"), "pointInTimeRecovery": True,
                      "deletionProtectionEnabled": True}],
        "streamEnabled": True, "streamViewType": "NEW_AND_OLD_IMAGES",
        "tags": {**TAGS, "purpose": "gdpr-erasure-ledger"},
    }
    props.update(overrides)
    return props
