"""The RDS side of scheduled maintenance, under mocks: pg_cron and pgstattuple installed, and USAGE on schema
cron for every service's migrator and nobody else (the local server applies the same: tests/pg)."""

from __future__ import annotations

from config.access import build_access_model, model_for_settings
from config.catalog import Catalog, DataClassification, ServiceSpec
from config.loader import load_stack
from config.maintenance import cron_schedulers
from edumatrix_db.offline.engine import Recording

MAINTENANCE = "edumatrix:database:ScheduledMaintenance"


def test_prod_installs_pg_cron_and_pgstattuple_under_scheduled_maintenance(prod: Recording) -> None:
    component = prod.one(MAINTENANCE)
    extensions = {r.inputs["name"]: r.inputs.get("schema") for r in prod.children_of(component.urn)
                  if r.type == "postgresql:index/extension:Extension"}
    assert extensions == {"pg_cron": None, "pgstattuple": "extensions"}


def test_only_each_services_migrator_and_the_ops_login_may_use_schema_cron(prod: Recording) -> None:
    grants = [r.inputs for r in prod.of_type("postgresql:index/grant:Grant") if r.inputs.get("schema") == "cron"]
    migrators = {s.role("migrator").name for s in model_for_settings(load_stack("prod")).services}
    assert {(g["role"], g["objectType"], tuple(g["privileges"])) for g in grants} == {
        (m, "schema", ("USAGE",)) for m in migrators | {"edumatrix_ops"}}  # ops: the heartbeat (issue 15)


def test_the_cron_schedulers_are_each_services_migrator_then_the_ops_login() -> None:
    catalog = Catalog(services=tuple(
        ServiceSpec(name=name, title=name, pool_size=5, readonly_pool_size=2, statement_timeout_ms=1000,
                    owner_team="team", data_classification=DataClassification.INTERNAL) for name in ("news", "chat")))
    assert cron_schedulers(build_access_model(catalog)) == ["news_migrator", "chat_migrator", "edumatrix_ops"]
