"""ScheduledMaintenance: what the database needs so services can schedule their own maintenance
(config/maintenance.py has the decisions).

Children: `Extension`s `pg_cron` (in the database `cron.database_name` names: the platform's database;
the parameter group preloads it) and `pgstattuple` (bloat figures for `edumatrix-db health`, in the shared
`extensions` schema), and one `Grant` of USAGE on schema `cron` per service migrator: each migrator
schedules its own jobs, which then run as that migrator acting as its owner. Applied by the provider's
login (the master user, rds_superuser on RDS), which owns schema `cron` once it created the extension.
The local server applies the same (edumatrix_db.database.cron.apply_cron_access).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_postgresql as postgresql

from config.access import AccessModel
from config.maintenance import CRON_SCHEMA, PG_CRON, cron_schedulers


@dataclass
class ScheduledMaintenanceArgs:
    model: AccessModel
    """The access model: its database and each service's migrator."""


class ScheduledMaintenance(pulumi.ComponentResource):
    def __init__(self, name: str, args: ScheduledMaintenanceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("edumatrix:database:ScheduledMaintenance", name, None, opts)
        model = args.model
        self.pg_cron = postgresql.Extension(
            f"{name}-{PG_CRON}", name=PG_CRON, database=model.database,
            opts=pulumi.ResourceOptions(parent=self))
        self.pgstattuple = postgresql.Extension(
            f"{name}-pgstattuple", name="pgstattuple", database=model.database, schema=model.extensions_schema,
            opts=pulumi.ResourceOptions(parent=self))
        self.grants: list[postgresql.Grant] = []
        previous: pulumi.Resource = self.pg_cron
        for role in cron_schedulers(model):  # each migrator, and the ops login (the platform's heartbeat)
            grant = postgresql.Grant(
                f"{name}-{role.removesuffix('_migrator')}-cron", database=model.database, role=role,
                schema=CRON_SCHEMA,
                object_type="schema", privileges=["USAGE"],
                # grants on one schema run one after another ("tuple concurrently updated")
                opts=pulumi.ResourceOptions(parent=self, depends_on=[previous]))
            self.grants.append(grant)
            previous = grant
        self.register_outputs({"extensions": [PG_CRON, "pgstattuple"],
                               "cronSchedulers": [g.role for g in self.grants]})
