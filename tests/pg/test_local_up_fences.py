"""`local up` after an extraction drill cut a service over from the local server: the fence stays
(edumatrix_db/database/fence.py). Re-applying the full access model would give the service's roles their writes
back on the old side while its traffic runs on the target, and rewriting the pooler's configuration would lead
its pools back there."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from config.access import AccessModel, ServiceAccess, build_access_model
from config.catalog import load_catalog
from config.naming import RoleKind
from edumatrix_db.database import localpg
from edumatrix_db.database.fence import FENCE_MARK, set_fence
from edumatrix_db.database.pooler import Pooler
from edumatrix_db.ops.extract import pooled_aliases
from edumatrix_db.ops.pooler_agent import configured_backends, point_pools
from tests.pg.conftest import provisioned

pytestmark = pytest.mark.postgres

FENCED, UNTOUCHED = "feedback", "news_system"
TARGET = ("127.0.0.1", 1, "edumatrix")  # where the drill's switch led the fenced service's pools


@dataclass
class Local:
    model: AccessModel
    server: localpg.LocalServer

    def access(self, service: str) -> ServiceAccess:
        return next(a for a in self.model.services if a.service == service)

    def up(self) -> list[str]:
        _, _, notes = localpg.up(self.server.root, self.model, preferred_port=self.server._port())
        return notes

    def superuser(self) -> psycopg.Connection[Any]:
        return self.server.superuser()

    def app_may_insert(self, service: str, table: str | None = None) -> bool:
        app = self.access(service).role(RoleKind.APP).name
        with self.superuser() as conn:
            row = conn.execute("SELECT has_table_privilege(%s, %s, 'INSERT')",
                               (app, table or probe(service))).fetchone()
        return bool(row and row[0])

    def migrator_logs_in(self, service: str) -> bool:
        with self.superuser() as conn:
            row = conn.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s",
                               (self.access(service).role(RoleKind.MIGRATOR).name,)).fetchone()
        return bool(row and row[0])

    def pools(self, service: str) -> dict[str, tuple[str, int, str]]:
        return configured_backends(Pooler(self.server).ini.read_text(), pooled_aliases(service))


def probe(service: str) -> str:
    return f"{service}_schema.{service}_fence_probe"


@pytest.fixture
def local() -> Iterator[Local]:
    """A local server provisioned by `local up`, a table in two services' schemas, the first service's schema
    fenced and its pools switched away, as an extraction's cutover leaves them."""
    model = build_access_model(load_catalog())
    with provisioned("edumatrix-fence-", model) as (server, _, _):
        env = Local(model, server)
        for service in (FENCED, UNTOUCHED):
            migrator = env.access(service).role(RoleKind.MIGRATOR).name
            with psycopg.connect(server.uri(migrator, server.passwords()[migrator]), autocommit=True) as conn:
                conn.execute(f"CREATE TABLE {probe(service)} (id bigserial PRIMARY KEY, note text)")
        with env.superuser() as conn:
            set_fence(conn, env.access(FENCED), fenced=True)
        ini = Pooler(server).ini
        ini.write_text(point_pools(ini.read_text(), pooled_aliases(FENCED), *TARGET))
        yield env


def test_local_up_keeps_a_fenced_schema_without_writes(local: Local) -> None:
    local.up()
    assert not local.app_may_insert(FENCED)


def test_local_up_keeps_the_fenced_services_migrator_locked_out(local: Local) -> None:
    local.up()
    assert not local.migrator_logs_in(FENCED)


def test_a_fence_stays_through_a_second_local_up(local: Local) -> None:
    local.up()
    local.up()
    assert (local.app_may_insert(FENCED), local.migrator_logs_in(FENCED)) == (False, False)


def test_local_up_leaves_the_fenced_services_pools_where_the_switch_led_them(local: Local) -> None:
    local.up()
    assert set(local.pools(FENCED).values()) == {TARGET}


def test_local_up_still_leads_the_other_services_pools_to_the_local_server(local: Local) -> None:
    local.up()
    assert set(local.pools(UNTOUCHED).values()) == {("127.0.0.1", local.server._port(), local.model.database)}


def test_local_up_says_which_fence_it_kept_and_how_to_lift_it(local: Local) -> None:
    notes = local.up()
    kept = [n for n in notes if "carries an extraction's fence" in n]
    assert len(kept) == 1
    assert kept[0].startswith(f"{FENCED}: ")
    assert f"edumatrix-db extract {FENCED} rollback" in kept[0]


def test_the_fenced_services_logins_stay_in_connections_json(local: Local) -> None:
    local.up()
    roles = json.loads(local.server.connections_file.read_text())["services"][FENCED]["roles"]
    assert {"migrator", "app", "readonly"} <= set(roles)


def test_local_up_still_gives_an_unfenced_service_its_writes_back(local: Local) -> None:
    """Drift that is not a fence (the app role lost INSERT, the migrator still logs in) is repaired as before."""
    app = local.access(UNTOUCHED).role(RoleKind.APP).name
    with local.superuser() as conn:
        conn.execute(f"REVOKE INSERT ON {probe(UNTOUCHED)} FROM {app}")
    local.up()
    assert local.app_may_insert(UNTOUCHED)


def test_a_lifted_fence_is_not_kept(local: Local) -> None:
    with local.superuser() as conn:
        set_fence(conn, local.access(FENCED), fenced=False)
    local.up()
    assert (local.app_may_insert(FENCED), local.migrator_logs_in(FENCED)) == (True, True)


def test_a_table_created_in_the_fenced_schema_later_does_not_lift_the_fence(local: Local) -> None:
    """The default privileges (left alone by the fence) give a new table's writes to the app role; the mark on the
    migrator still tells the fence, and `local up` fences the new table too."""
    with local.superuser() as conn:
        conn.execute(f"SET ROLE {local.access(FENCED).owner}")
        conn.execute(f"CREATE TABLE {probe(FENCED)}_later (id bigint PRIMARY KEY)")
    local.up()
    assert (local.app_may_insert(FENCED), local.app_may_insert(FENCED, f"{probe(FENCED)}_later"),
            local.migrator_logs_in(FENCED)) == (False, False, False)


def test_a_migrator_made_nologin_by_hand_is_drift_not_a_fence(local: Local) -> None:
    migrator = local.access(UNTOUCHED).role(RoleKind.MIGRATOR).name
    with local.superuser() as conn:
        conn.execute(f"ALTER ROLE {migrator} NOLOGIN")
    local.up()
    assert (local.migrator_logs_in(UNTOUCHED), local.app_may_insert(UNTOUCHED)) == (True, True)


def test_a_fence_set_before_the_mark_existed_is_still_kept(local: Local) -> None:
    with local.superuser() as conn:
        conn.execute(f"COMMENT ON ROLE {local.access(FENCED).role(RoleKind.MIGRATOR).name} IS NULL")
    local.up()
    assert (local.app_may_insert(FENCED), local.migrator_logs_in(FENCED)) == (False, False)


def test_set_fence_marks_the_migrator_and_lifting_it_clears_the_mark(local: Local) -> None:
    migrator = local.access(FENCED).role(RoleKind.MIGRATOR).name
    query = "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = %s"
    with local.superuser() as conn:
        marked = conn.execute(query, (migrator,)).fetchone()
        set_fence(conn, local.access(FENCED), fenced=False)
        cleared = conn.execute(query, (migrator,)).fetchone()
    assert (marked, cleared) == ((FENCE_MARK,), (None,))


def test_local_up_warns_when_a_fenced_services_pool_has_no_line_to_keep(local: Local) -> None:
    ini = Pooler(local.server).ini
    ini.write_text("\n".join(line for line in ini.read_text().splitlines()
                             if not line.startswith(f"{FENCED}_readonly ")) + "\n")
    notes = local.up()
    assert [n for n in notes if n.startswith("WARNING: pgbouncer.ini has no line")] == [
        f"WARNING: pgbouncer.ini has no line for {FENCED}_readonly: the pool of a fenced service now leads to this "
        "server again"]
