"""Renderer 1 of the access model: one `ServiceSchema` component per service, with pulumi-postgresql.

Children of `ServiceSchema("feedback", ...)`: four `Role`s (`feedback-owner`, ...), one `RandomPassword`
and one `RandomId` (the SCRAM salt, stable in state) per login role, the `Schema`, the migrator's membership
in the owner (`GrantRole`), one `Grant` per (role, object type) and one `DefaultPrivileges` per (grantee,
object type), and, when a secret store is given, a `CredentialSecret` per login role encrypted with the CMK
and copied into the store's replica regions.

Rotation (a store with `rotation`): the app, readonly and gdpr logins' secrets are rotated by AWS's single-user
rotation function, which logs in as the login itself and runs `ALTER USER ... WITH PASSWORD`. With
`rds.restrict_password_commands=1` that needs membership in `rds_password`, granted here (a login without
CREATEROLE can only change its own password). Once rotated, the secret is the source of truth: the role's
password is not pushed again (`ignore_changes`). The migrator is not rotated: it logs in with `role` set to its
owner, so `ALTER USER <migrator>` runs as the owner and PostgreSQL refuses it (tests/pg/test_password_rotation.py);
its secret keeps the generated password (README, "Limits").

Traps of the provider this file avoids:
- `Role.roles` is never set: memberships are `GrantRole`s only (mixing the two makes them fight).
- Grants and default privileges touching one catalog row in parallel fail with "tuple concurrently
  updated": every grant depends on the previous one, and each service waits for the previous service.
- The owner role is NOLOGIN and never a member of `rds_iam` (enforced by `config.access`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_postgresql as postgresql
import pulumi_random as random

from components.database_baseline import DatabaseBaseline, DatabaseBaselineArgs
from components.secrets import CredentialSecret, CredentialSecretArgs, Rotation, rotate, service_secret_name
from config.access import PUBLIC, ObjectType, RoleSpec, ServiceAccess, model_for_settings
from config.naming import RoleKind
from config.scram import SALT_BYTES, scram_verifier
from config.settings import StackSettings

# Logins whose secrets AWS's single-user rotation function can rotate (see the module docstring).
ROTATED_KINDS = frozenset({RoleKind.APP.value, RoleKind.READONLY.value, RoleKind.GDPR.value})
# RDS's role whose members may set passwords while rds.restrict_password_commands=1.
RDS_PASSWORD_ROLE = "rds_password"


@dataclass
class SecretStore:
    """Where login credentials go: AWS Secrets Manager, encrypted with the platform's CMK."""

    kms_key_id: pulumi.Input[str]
    host: pulumi.Input[str]
    port: pulumi.Input[int]
    stack_prefix: str
    """Secret names are `<stack_prefix>/db/<group>/<kind>`, e.g. `edumatrix-prod/db/feedback/app`."""
    tags: dict[str, str] = field(default_factory=dict)
    recovery_window_in_days: int = 30
    replica_keys: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Region -> a CMK there: the region stacks' regions, where copies of every secret are kept."""
    rotation: Rotation | None = None
    """How the app, readonly and gdpr logins' secrets are rotated (None: not rotated)."""


@dataclass
class ServiceSchemaArgs:
    access: ServiceAccess
    """The service's slice of the access model (`config.access.service_access`)."""
    database: str
    """The database the schema lives in."""
    extensions_schema: str = "extensions"
    secret_store: SecretStore | None = None
    """None (the local stack): passwords are only exported, as secret outputs."""


class ServiceSchema(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceSchemaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:database:ServiceSchema", name, None, opts)
        access = args.access
        if args.database != next(g.database for g in access.grants):
            raise ValueError(f"ServiceSchemaArgs.database {args.database!r} differs from the access model's")
        kinds = {r.name: r.kind.value for r in access.roles}
        kinds[PUBLIC] = PUBLIC

        store = args.secret_store
        rotation = store.rotation if store is not None else None
        self.roles: dict[str, postgresql.Role] = {}
        self.passwords: dict[str, pulumi.Output[str]] = {}
        for r in access.roles:
            self.roles[r.kind.value], password = declare_role(
                self, f"{name}-{r.kind.value}", r, rotated=rotation is not None and r.kind.value in ROTATED_KINDS)
            if password is not None:
                self.passwords[r.kind.value] = password
        owner = self.roles["owner"]
        self.schema = postgresql.Schema(
            f"{name}-schema",
            name=access.schema,
            owner=owner.name,
            database=args.database,
            drop_cascade=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[owner]),
        )

        previous: pulumi.Resource = self.schema
        self.memberships: list[postgresql.GrantRole] = []
        for m in access.memberships:
            previous = postgresql.GrantRole(
                f"{name}-{kinds[m.member]}-in-{kinds[m.group]}",
                role=m.member,
                grant_role=m.group,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.roles[kinds[m.member]], self.roles[kinds[m.group]], previous],
                ),
            )
            self.memberships.append(previous)

        self.grants: list[postgresql.Grant] = []
        for g in access.grants:
            suffix = "-extensions" if g.schema == args.extensions_schema else ""
            previous = postgresql.Grant(
                f"{name}-{kinds[g.role]}-{g.object_type.value}{suffix}",
                database=g.database,
                role=g.role,
                object_type=g.object_type.value,
                schema=g.schema,
                privileges=sorted(g.privileges),
                objects=[] if g.object_type not in (ObjectType.DATABASE, ObjectType.SCHEMA) else None,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.roles.values(), previous]),
            )
            self.grants.append(previous)

        self.default_privileges: list[postgresql.DefaultPrivileges] = []
        for d in access.default_privileges:
            scope = "" if d.schema is not None else "-everywhere"
            # the owner's defaults keep their first names; another creator's (the GDPR definer) say whose
            creator = "" if d.owner == access.owner else f"-of-{kinds[d.owner]}"
            previous = postgresql.DefaultPrivileges(
                f"{name}-{kinds[d.role]}-{d.object_type.value}-defaults{scope}{creator}",
                owner=d.owner,
                role=d.role,
                database=d.database,
                schema=d.schema,
                object_type=d.object_type.value,
                privileges=sorted(d.privileges),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.roles.values(), previous]),
            )
            self.default_privileges.append(previous)

        self.secrets: dict[str, CredentialSecret] = {}
        if store is not None:
            for r in access.login_roles:
                kind = r.kind.value
                self.secrets[kind] = login_secret(
                    self, f"{name}-{kind}", store, r, access.service, kind, self.passwords[kind],
                    args.database, self.roles[kind],
                )
                if rotation is None or kind not in ROTATED_KINDS:
                    continue
                may_set_password = postgresql.GrantRole(
                    f"{name}-{kind}-in-{RDS_PASSWORD_ROLE}",
                    role=r.name,
                    grant_role=RDS_PASSWORD_ROLE,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.roles[kind], previous]),
                )
                previous = may_set_password
                rotate(f"{name}-{kind}-rotation", self.secrets[kind].arn, rotation,
                       pulumi.ResourceOptions(parent=self, depends_on=[may_set_password]))

        self.register_outputs(
            {
                "schema": self.schema.name,
                "roles": {kind: role.name for kind, role in self.roles.items()},
                "passwords": pulumi.Output.secret(self.passwords),
                "secretArns": {kind: secret.arn for kind, secret in self.secrets.items()},
            }
        )


def declare_role(
    parent: pulumi.Resource, name: str, r: RoleSpec, *, rotated: bool = False
) -> tuple[postgresql.Role, pulumi.Output[str] | None]:
    """The role `r` (every attribute stated), and for a login its generated password (`<name>-password`),
    set as a SCRAM verifier salted by a `RandomId` of its own (`<name>-scram-salt`, stable in state). A
    `rotated` login's password belongs to its secret after creation: it is never sent again."""
    password = verifier = None
    if r.login:
        password = random.RandomPassword(
            f"{name}-password",
            length=32,
            special=False,
            opts=pulumi.ResourceOptions(parent=parent, additional_secret_outputs=["result"]),
        ).result
        salt = random.RandomId(f"{name}-scram-salt", byte_length=SALT_BYTES, opts=pulumi.ResourceOptions(parent=parent))
        # A SCRAM verifier, never the clear text: PostgreSQL logs failing and slow statements.
        verifier = pulumi.Output.all(password, salt.hex).apply(lambda v: _verifier_of(v[0], v[1]))
    role = postgresql.Role(
        name,
        name=r.name,
        login=r.login,
        password=verifier,
        connection_limit=r.connection_limit,
        statement_timeout=r.statement_timeout_ms,
        idle_in_transaction_session_timeout=r.idle_in_transaction_session_timeout_ms,
        search_paths=list(r.search_path) or None,
        assume_role=r.assume_role,
        superuser=r.superuser,
        create_database=r.create_database,
        create_role=r.create_role,
        bypass_row_level_security=r.bypass_row_level_security,
        replication=r.replication,
        inherit=r.inherit,
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["password"] if rotated else None),
    )
    return role, password


def login_secret(
    parent: pulumi.Resource,
    name: str,
    store: SecretStore,
    role: RoleSpec,
    group: str,
    kind: str,
    password: pulumi.Input[str],
    database: str,
    role_resource: pulumi.Resource,
) -> CredentialSecret:
    """A login's credentials in Secrets Manager under the CMK: `<prefix>/db/<group>/<kind>` (`group` is the
    service, or `platform`), written once after the role exists, copied into the store's replica regions."""
    return CredentialSecret(name, CredentialSecretArgs(
        name=service_secret_name(store.stack_prefix, group, kind),
        description=f"PostgreSQL login {role.name} ({group})",
        kms_key_id=store.kms_key_id,
        value={"username": role.name, "password": password, "host": store.host, "port": store.port,
               "dbname": database, "engine": "postgres"},
        replica_keys=store.replica_keys,
        tags={**store.tags, "db-role": role.name},
        recovery_window_in_days=store.recovery_window_in_days,
        depends_on=[role_resource],
    ), opts=pulumi.ResourceOptions(parent=parent))


def _verifier_of(password: str, salt_hex: str) -> str:
    return scram_verifier(password, salt=bytes.fromhex(salt_hex))


def declare_service_schemas(
    settings: StackSettings,
    provider: postgresql.Provider,
    secret_store: SecretStore | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> dict[str, ServiceSchema]:
    """The database baseline and one ServiceSchema per catalog service, all through `provider`.

    Services are declared one after another (each depends on the previous) so that grants on the shared
    database row never run in parallel.
    """
    model = model_for_settings(settings)
    base = pulumi.ResourceOptions(providers={"postgresql": provider})
    if opts is not None:
        base = pulumi.ResourceOptions.merge(base, opts)
    baseline = DatabaseBaseline("edumatrix-db-baseline", DatabaseBaselineArgs(model), opts=base)
    out: dict[str, ServiceSchema] = {}
    previous: pulumi.Resource = baseline
    for access in model.services:
        out[access.service] = ServiceSchema(
            access.service,
            ServiceSchemaArgs(
                access=access,
                database=model.database,
                extensions_schema=model.extensions_schema,
                secret_store=secret_store,
            ),
            opts=pulumi.ResourceOptions.merge(base, pulumi.ResourceOptions(depends_on=[previous])),
        )
        previous = out[access.service]
    return out


def canonical_from_resources(
    resources: Sequence[tuple[str, dict[str, Any]]],
) -> frozenset[tuple[object, ...]]:
    """Reduce recorded pulumi-postgresql resources (type token, inputs in engine camelCase) to the
    canonical form of `config.access.AccessModel.canonical()` (the parity test compares the two)."""
    out: set[tuple[object, ...]] = set()

    def privs(inputs: dict[str, Any]) -> tuple[str, ...]:
        return tuple(sorted(str(p) for p in inputs.get("privileges") or []))

    for typ, i in resources:
        kind = typ.split(":")[-1]
        if kind == "Role":
            name = i["name"]
            out.add(
                (
                    "role",
                    name,
                    ("login", bool(i.get("login"))),
                    ("inherit", bool(i.get("inherit", True))),
                    ("connection_limit", int(i.get("connectionLimit", -1))),
                    ("superuser", bool(i.get("superuser"))),
                    ("create_database", bool(i.get("createDatabase"))),
                    ("create_role", bool(i.get("createRole"))),
                    ("bypass_row_level_security", bool(i.get("bypassRowLevelSecurity"))),
                    ("replication", bool(i.get("replication"))),
                )
            )
            settings: dict[str, Any] = {
                "statement_timeout": i.get("statementTimeout"),
                "idle_in_transaction_session_timeout": i.get("idleInTransactionSessionTimeout"),
                "search_path": ", ".join(i["searchPaths"]) if i.get("searchPaths") else None,
                "role": i.get("assumeRole"),
            }
            for key, value in settings.items():
                if value not in (None, 0, ""):
                    text = str(int(value)) if isinstance(value, float | int) else str(value)
                    out.add(("setting", name, key, text))
        elif kind == "Schema":
            if i.get("owner"):
                out.add(("schema", i["name"], i["owner"]))
        elif kind == "GrantRole":
            out.add(("member", i["role"], i["grantRole"]))
        elif kind == "Grant":
            out.add(("grant", i["role"], i["objectType"], i["database"], i.get("schema") or "", privs(i)))
        elif kind == "DefaultPrivileges":
            out.add(
                (
                    "default",
                    i["owner"],
                    i["role"],
                    i["objectType"],
                    i["database"],
                    i.get("schema") or "",
                    privs(i),
                )
            )
        elif kind == "Extension":
            out.add(("extension", i["name"], i.get("schema") or ""))
    return frozenset(out)
