"""The events plugin's jar (events-plugin/, `make events-plugin`, docs/event-backbone.md): the Glue Schema Registry
converter's schema naming class, built with the real javac and run on the real JVM.

The cases are generated here from the catalog and config/naming.py, the one source of the names: for every
publishing service and event type the class must answer `event_schema_name(...)`, for heartbeats the
`<service>.heartbeat` schema the registry declares, and anything else must fail (an exception: the converter then
fails the task) rather than fall back to a schema named after the topic. The values are what the converters hand
the class (AWS Glue Schema Registry library): the JSON Schema converter's `JsonDataWithSchema`, the Avro
converter's `GenericRecord`."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from config.catalog import load_catalog
from config.events import heartbeat_schema_name, heartbeat_topic_name
from config.naming import event_schema_name, event_topic_name
from edumatrix_db.offline.engine import Recording
from tests.events_plugin_support import (
    JAR_NAME,
    build_jar,
    ca_certificate,
    compile_test_driver,
    make_events_plugin,
    name_schemas,
    require_java,
)

PUBLISHERS = [s for s in load_catalog() if s.events]
FORMATS = ("JSON", "AVRO")
SCHEMA = "aws:glue/schema:Schema"


def envelope(event_type: Any) -> dict[str, Any]:
    """The outbox router's value with `type:envelope:eventType` and an expanded JSON payload."""
    return {"payload": {"id": "a3f0", "score": 4}, "eventType": event_type}


def event_cases() -> list[dict[str, Any]]:
    return [{"id": f"{fmt}:{s.name}:{e.aggregate}:{e.type}", "topic": event_topic_name(s.name, e.aggregate),
             "format": fmt, "value": envelope(e.type), "expected": event_schema_name(s.name, e.aggregate, e.type)}
            for s in PUBLISHERS for e in s.events for fmt in FORMATS]


def heartbeat_cases() -> list[dict[str, Any]]:
    return [{"id": f"{fmt}:{call}:{s.name}:heartbeat", "topic": heartbeat_topic_name(s.name), "format": fmt,
             "call": call, "value": {"ts_ms": 1764230400000}, "expected": heartbeat_schema_name(s.name)}
            for s in PUBLISHERS for fmt in FORMATS for call in ("value", "topic")]


SERVICE = PUBLISHERS[0]
EVENT = SERVICE.events[0]
TOPIC = event_topic_name(SERVICE.name, EVENT.aggregate)
REFUSED: dict[str, dict[str, Any]] = {  # id -> a JSON case for NamingHarness
    # a record without the envelope's eventType (the router not configured to place it)
    "json-without-event-type": {"topic": TOPIC, "format": "JSON", "value": {"payload": {"id": "a3f0"}}},
    "avro-without-event-type": {"topic": TOPIC, "format": "AVRO", "value": {"payload": {"id": "a3f0"}}},
    "event-type-not-text": {"topic": TOPIC, "format": "JSON", "value": envelope(7)},
    "event-type-not-an-identifier": {"topic": TOPIC, "format": "AVRO", "value": envelope("Created.v2")},
    "json-value-not-an-object": {"topic": TOPIC, "format": "JSON", "value": ["created"]},
    # topics that are no event topic of the platform
    "topic-without-prefix": {"topic": f"{SERVICE.name}.{EVENT.aggregate}", "format": "JSON",
                             "value": envelope(EVENT.type)},
    "topic-without-aggregate": {"topic": f"edumatrix.{SERVICE.name}", "format": "JSON", "value": envelope(EVENT.type)},
    "topic-with-extra-part": {"topic": f"{TOPIC}.extra", "format": "JSON", "value": envelope(EVENT.type)},
    "heartbeat-topic-of-no-service": {"topic": "__debezium-heartbeat.edumatrix.", "format": "JSON",
                                      "value": {"ts_ms": 1}},
    # an event topic named without its record: the topic alone never names an event type's schema
    "event-topic-by-name-only": {"topic": TOPIC, "format": "JSON", "value": envelope(EVENT.type), "call": "topic"},
    "event-topic-as-a-key": {"topic": TOPIC, "format": "JSON", "value": envelope(EVENT.type), "call": "key"},
    # values no converter of the plugin passes (a Connect Struct-like map), or none
    "value-of-another-kind": {"topic": TOPIC, "format": "MAP", "value": {"eventType": EVENT.type}},
    "no-value": {"topic": TOPIC, "format": "NULL", "value": None},
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The jar from `make events-plugin` (a throwaway CA bundle: TLS is tests/pg/test_events_plugin_tls.py's) and
    the compiled NamingHarness."""
    root = tmp_path_factory.mktemp("events-plugin")
    bundle = root / "bundle.pem"
    bundle.write_bytes(ca_certificate("edumatrix test CA one") + ca_certificate("edumatrix test CA two"))
    jar = build_jar(root / "build", bundle)
    return jar, compile_test_driver(jar, root / "drivers", "NamingHarness")


@pytest.fixture(scope="module")
def answers(plugin: tuple[Path, Path]) -> dict[str, dict[str, str]]:
    cases = [*event_cases(), *heartbeat_cases(), *({"id": k, **v} for k, v in REFUSED.items())]
    return name_schemas(*plugin, [{k: v for k, v in c.items() if k != "expected"} for c in cases])


# -- the build ---------------------------------------------------------------------------------------------------

def test_the_jar_holds_the_naming_class_the_tls_factory_and_the_ca_bundle_only(plugin: tuple[Path, Path]) -> None:
    jar, _ = plugin
    with zipfile.ZipFile(jar) as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    assert {n for n in names if not n.startswith("META-INF/")} == {
        "com/edumatrix/events/EventTypeSchemaNaming.class",
        "com/edumatrix/events/EventTypeSchemaNaming$AvroValues.class",
        "com/edumatrix/events/RdsCaBundleSocketFactory.class",
        "com/edumatrix/events/rds-ca-bundle.pem",
    }


def test_the_compile_only_glue_declarations_stay_out_of_the_jar(plugin: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(plugin[0]) as archive:
        assert not [n for n in archive.namelist() if n.startswith("com/amazonaws/")]


def test_the_classes_run_on_java_11_as_debezium_2_needs(plugin: tuple[Path, Path]) -> None:
    with zipfile.ZipFile(plugin[0]) as archive:
        header = archive.read("com/edumatrix/events/EventTypeSchemaNaming.class")[:8]
    assert int.from_bytes(header[6:8], "big") == 55  # class file major version 55: Java 11


def test_the_build_fails_loudly_without_javac(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(ca_certificate("edumatrix test CA"))
    built = make_events_plugin(tmp_path / "build", bundle, path=str(tmp_path / "empty-path"))
    assert built.returncode != 0
    assert "javac not found" in built.stderr
    assert "openjdk-17-jdk-headless" in built.stderr
    assert not (tmp_path / "build" / JAR_NAME).exists()


def test_the_build_stops_without_the_rds_ca_bundle_and_says_where_it_belongs(tmp_path: Path) -> None:
    require_java()
    built = make_events_plugin(tmp_path / "build", tmp_path / "absent.pem")
    assert built.returncode != 0
    assert f"no RDS CA bundle at {tmp_path / 'absent.pem'}" in built.stderr
    assert not (tmp_path / "build" / JAR_NAME).exists()


def test_the_build_says_how_many_ca_certificates_the_factory_trusts(tmp_path: Path) -> None:
    require_java()
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(ca_certificate(f"edumatrix test CA {i}") for i in range(3)))
    built = make_events_plugin(tmp_path / "build", bundle)
    assert built.returncode == 0, built.stderr
    assert "TLS factory with 3 CA certificates" in built.stdout


# -- naming ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_every_event_type_of_the_catalog_gets_its_registry_schema_name(answers: dict[str, dict[str, str]],
                                                                       fmt: str) -> None:
    cases = [c for c in event_cases() if c["format"] == fmt]
    assert len(cases) == sum(len(s.events) for s in PUBLISHERS)
    assert {c["id"]: answers[c["id"]] for c in cases} == {c["id"]: {"schema": c["expected"]} for c in cases}


def test_heartbeats_get_their_services_heartbeat_schema_with_or_without_the_record(
        answers: dict[str, dict[str, str]]) -> None:
    cases = heartbeat_cases()
    assert {c["id"]: answers[c["id"]] for c in cases} == {c["id"]: {"schema": c["expected"]} for c in cases}


def test_every_name_the_class_gives_is_a_schema_the_prod_registry_declares(answers: dict[str, dict[str, str]],
                                                                          prod: Recording) -> None:
    declared = {s.inputs["schemaName"] for s in prod.of_type(SCHEMA)}
    named = {answers[c["id"]]["schema"] for c in [*event_cases(), *heartbeat_cases()]}
    assert named == declared


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_record_the_platform_did_not_route_fails_closed(answers: dict[str, dict[str, str]], case: str) -> None:
    answer = answers[case]
    assert "schema" not in answer, f"{case} was named {answer.get('schema')!r} instead of failing"
    assert answer["error"].startswith("java.lang.IllegalArgumentException: edumatrix schema naming refuses topic")


def test_a_refusal_says_what_the_router_must_place(answers: dict[str, dict[str, str]]) -> None:
    assert "type:envelope:eventType" in answers["json-without-event-type"]["error"]

