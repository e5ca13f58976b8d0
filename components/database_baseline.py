"""Database-level pieces of the access model: PUBLIC stripped, extensions installed.

Children: a `Grant` revoking everything PUBLIC holds on the database (CONNECT, TEMPORARY), a `Grant`
revoking everything PUBLIC holds on schema `public`, the shared `extensions` schema (owned by the
provider's login, the platform admin), and one `Extension` per extension of the model (pgcrypto into
`extensions`, pgaudit). Every `ServiceSchema` depends on this component.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from config.access import AccessModel, ObjectType


@dataclass
class DatabaseBaselineArgs:
    model: AccessModel
    """The access model; its `database_grants` and `extensions` are declared here."""


class DatabaseBaseline(pulumi.ComponentResource):
    def __init__(self, name: str, args: DatabaseBaselineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:database:DatabaseBaseline", name, None, opts)
        model = args.model
        previous: pulumi.Resource | None = None
        self.grants: list[postgresql.Grant] = []
        for g in model.database_grants:
            suffix = "database" if g.object_type is ObjectType.DATABASE else f"schema-{g.schema}"
            grant = postgresql.Grant(
                f"{name}-{g.role}-{suffix}",
                database=g.database,
                role=g.role,
                object_type=g.object_type.value,
                schema=g.schema,
                privileges=sorted(g.privileges),
                # grants on one object run one after another ("tuple concurrently updated")
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous] if previous else None),
            )
            self.grants.append(grant)
            previous = grant
        self.extensions_schema = postgresql.Schema(
            f"{name}-extensions",
            name=model.extensions_schema,
            database=model.database,
            opts=pulumi.ResourceOptions(parent=self, protect=False),
        )
        self.extensions = [
            postgresql.Extension(
                f"{name}-{ext.name}",
                name=ext.name,
                database=model.database,
                schema=ext.schema,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.extensions_schema]),
            )
            for ext in model.extensions
        ]
        self.register_outputs(
            {
                "extensions": [e.name for e in self.extensions],
                "extensionsSchema": self.extensions_schema.name,
            }
        )
