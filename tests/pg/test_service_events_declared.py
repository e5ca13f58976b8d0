"""The AWS renderer of the event objects (components/service_events.py): its dynamic provider runs the same SQL
as `local up`, here as the admin login (the master user's stand-in) over TCP with TLS verified."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from components.service_events import ServiceEventsProvider
from edumatrix_db.database import events
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def _props(pg: Postgres, service: str = "news_system", publishes: bool = True) -> dict[str, Any]:
    uri = urlsplit(pg.admin_uri)
    query = {k: v[0] for k, v in parse_qs(uri.query).items()}
    return {"service": service, "publishes": publishes, "publication": f"{service}_outbox_pub" if publishes else None,
            "cdcRole": "edumatrix_cdc_replicator", "database": uri.path.lstrip("/"), "host": uri.hostname,
            "port": uri.port, "username": unquote(uri.username or ""), "password": unquote(uri.password or ""),
            "sslmode": "verify-full", "sslrootcert": query.get("sslrootcert")}


def _publication_tables(pg: Postgres, name: str) -> list[tuple[str]]:
    with pg.admin() as conn:
        return conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", [name]).fetchall()


def test_delete_drops_the_publication_but_keeps_the_outbox_and_create_puts_it_back(pg: Postgres) -> None:
    provider, props = ServiceEventsProvider(), _props(pg)
    try:
        provider.delete("edumatrix/news_system", props)
        with pg.admin() as conn:
            kept = conn.execute("SELECT to_regclass('news_system_schema.news_system_outbox') IS NOT NULL").fetchone()
        gone = _publication_tables(pg, "news_system_outbox_pub")
        result = provider.create(props)
    finally:
        with pg.admin() as conn:
            events.apply_events(conn, pg.model)
    assert (kept, gone) == ((True,), [])
    assert result.id == "edumatrix/news_system"
    assert _publication_tables(pg, "news_system_outbox_pub") == [("news_system_outbox",)]


def test_running_over_existing_objects_changes_nothing(pg: Postgres) -> None:
    assert ServiceEventsProvider().run_sql(_props(pg, "statistics", publishes=False)) == []
