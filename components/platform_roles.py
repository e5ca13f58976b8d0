"""Renderer 1 of the platform's own roles (`config.access.PlatformAccess`): pulumi-postgresql.

Children of `PlatformRoles("edumatrix-db-platform", ...)`: one `Role` and one `RandomPassword` per platform
login (`<name>-ops`, `<name>-data_mover`, ...), a `GrantRole` per membership in a predefined role
(`pg_monitor`, `pg_read_all_data`, `pg_write_all_data`; `rds_replication` on RDS, where it stands in for the
REPLICATION attribute the master user cannot grant), a CONNECT `Grant` per login, a USAGE `Grant` on each
event-publishing service schema for the CDC login (`AccessModel.cdc_grants`, docs/events.md), and, with a
secret store, one Secrets Manager secret per login under the CMK (`<prefix>/platform/<kind>`). Outputs: `opsSecretArn`
(the ops runner's login) and `secretArns` by kind. Who may read which secret: docs/platform-roles.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from components.secrets import CredentialSecret
from components.service_schema import SecretStore, declare_role, login_secret
from config.access import Grant, PlatformAccess, PlatformRoleKind, model_for_settings
from config.settings import StackSettings


@dataclass
class PlatformRolesArgs:
    platform: PlatformAccess
    """The platform's slice of the access model (`config.access.platform_access`)."""
    database: str
    secret_store: SecretStore | None = None
    """None (the local stack): passwords are only exported, as secret outputs."""
    cdc_grants: tuple[Grant, ...] = ()
    """USAGE on each publishing service's schema for the CDC login (`AccessModel.cdc_grants`)."""


class PlatformRoles(pulumi.ComponentResource):
    def __init__(self, name: str, args: PlatformRolesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:database:PlatformRoles", name, None, opts)
        platform = args.platform
        kinds = {r.name: r.kind.value for r in platform.roles}
        self.roles: dict[str, postgresql.Role] = {}
        self.passwords: dict[str, pulumi.Output[str]] = {}
        for r in platform.roles:
            role, password = declare_role(self, f"{name}-{r.kind.value}", r)
            self.roles[r.kind.value] = role
            if password is not None:  # the audit role (rds_pgaudit) never logs in
                self.passwords[r.kind.value] = password
        previous: pulumi.Resource | None = None
        for m in platform.memberships:
            previous = postgresql.GrantRole(
                f"{name}-{kinds[m.member]}-in-{m.group}",
                role=m.member,
                grant_role=m.group,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.roles[kinds[m.member]], *([previous] if previous else [])]
                ),
            )
        for g in (*platform.grants, *args.cdc_grants):  # one after another: they all touch the database's ACL row
            previous = postgresql.Grant(
                f"{name}-{kinds[g.role]}-{g.object_type.value}" + (f"-{g.schema}" if g.schema else ""),
                database=g.database,
                schema=g.schema,
                role=g.role,
                object_type=g.object_type.value,
                privileges=sorted(g.privileges),
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*self.roles.values(), *([previous] if previous else [])]
                ),
            )
        self.secrets: dict[str, CredentialSecret] = {}
        if args.secret_store is not None:
            for r in platform.roles:
                if not r.login:
                    continue
                kind = r.kind.value
                self.secrets[kind] = login_secret(
                    self, f"{name}-{kind}", args.secret_store, r, "platform", kind, self.passwords[kind],
                    args.database, self.roles[kind],
                )
        ops = self.secrets.get(PlatformRoleKind.OPS.value)
        self.ops_secret_arn: pulumi.Output[str] | None = ops.arn if ops is not None else None
        self.register_outputs(
            {
                "roles": {kind: role.name for kind, role in self.roles.items()},
                "passwords": pulumi.Output.secret(self.passwords),
                "secretArns": {kind: s.arn for kind, s in self.secrets.items()},
                "opsSecretArn": self.ops_secret_arn,
            }
        )


def declare_platform_roles(
    settings: StackSettings,
    provider: postgresql.Provider,
    secret_store: SecretStore | None = None,
    after: Sequence[pulumi.Resource] = (),
) -> PlatformRoles:
    """The platform's roles through `provider`, after the service schemas (grants on the database row
    must not run in parallel with theirs)."""
    model = model_for_settings(settings)
    return PlatformRoles(
        "edumatrix-db-platform",
        PlatformRolesArgs(platform=model.platform, database=model.database, secret_store=secret_store,
                          cdc_grants=model.cdc_grants()),
        opts=pulumi.ResourceOptions(providers={"postgresql": provider}, depends_on=list(after)),
    )
