"""Event payload schemas (config/event_schemas.py): what write_event admits, the Connect schema Debezium's outbox
router gives a routed record (proven on the JVM by tests/pg/test_events_debezium.py), and the JSON Schema the Glue
converter derives from it (mirrored from awslabs/aws-glue-schema-registry eed1506b, not run here), which is what
the stack registers for each event type and for heartbeats."""

from __future__ import annotations

import json
from typing import Any

import pytest

from config.catalog import load_catalog
from config.errors import ConfigError
from config.event_schemas import (
    connect_payload_schema,
    connect_value_schema,
    event_definition,
    glue_json_schema,
    heartbeat_connect_schema,
    heartbeat_json_definition,
    jsonb_order,
    payload_problems,
    sample_payload,
)
from config.events import heartbeat_schema_name
from config.naming import event_schema_name, outbox_publication_name
from edumatrix_db.offline.engine import Recording
from tests.test_event_backbone import CONNECTOR, SCHEMA

PUBLISHERS = [s for s in load_catalog() if s.events]


def test_jsonb_orders_keys_shorter_first_then_bytewise() -> None:
    assert jsonb_order(["title_length", "b", "article_id", "a", "Z"]) == ["Z", "a", "b", "article_id",
                                                                          "title_length"]


def test_every_catalog_event_types_sample_payload_matches_its_description() -> None:
    for service in PUBLISHERS:
        for event in service.events:
            assert payload_problems(event.fields, sample_payload(event.fields)) == []


def test_the_payloads_connect_schema_has_optional_members_in_jsonb_order() -> None:
    schema = connect_payload_schema({"title_length": "integer", "article_id": "string", "ok": "boolean"})
    assert schema["name"] == "payload"
    assert schema["optional"] is True
    assert [(f["field"], f["type"], f["optional"]) for f in schema["fields"]] == [
        ("ok", "boolean", True), ("article_id", "string", True), ("title_length", "int32", True)]


def test_an_optional_primitive_becomes_one_of_itself_and_null_with_its_index_on_both() -> None:
    derived = glue_json_schema({"type": "struct", "optional": False, "fields": [
        {"field": "n", "type": "int32", "optional": True}]})
    assert derived == {"type": "object", "properties": {"n": {
        "oneOf": [{"type": "integer", "connect.type": "int32", "connect.index": 0}, {"type": "null"}],
        "connect.index": 0}}}


def test_an_optional_struct_becomes_one_of_null_and_the_struct() -> None:
    derived = glue_json_schema({"type": "struct", "optional": True, "fields": [
        {"field": "b", "type": "boolean", "optional": False}]})
    assert derived == {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
        "b": {"type": "boolean", "connect.index": 0}}}]}


def test_a_member_whose_schema_equals_an_earlier_ones_gets_the_earlier_index_as_the_converters_cache_does(
        ) -> None:
    derived = glue_json_schema({"type": "struct", "optional": False, "fields": [
        {"field": "a", "type": "string", "optional": True}, {"field": "n", "type": "int64", "optional": False},
        {"field": "b", "type": "string", "optional": True}]})
    assert [p["connect.index"] for p in derived["properties"].values()] == [0, 1, 0]


def test_a_member_equal_to_an_earlier_one_written_in_another_key_order_also_gets_the_earlier_index() -> None:
    """Connect's equals compares fields, not the order a schema's JSON wrote them in."""
    derived = glue_json_schema({"type": "struct", "optional": False, "fields": [
        {"field": "a", "type": "string", "optional": True}, {"optional": True, "type": "string", "field": "b"}]})
    assert [p["connect.index"] for p in derived["properties"].values()] == [0, 0]


def test_floats_are_numbers_and_unknown_connect_types_are_refused() -> None:
    derived = glue_json_schema({"type": "float64", "optional": False})
    assert derived == {"type": "number", "connect.type": "float64"}
    with pytest.raises(ValueError, match="'bytes'"):
        glue_json_schema({"type": "bytes", "optional": False})


def test_an_event_definition_is_the_envelope_of_payload_and_event_type() -> None:
    definition = json.loads(event_definition({"article_id": "string"}))
    assert list(definition["properties"]) == ["eventType", "payload"]  # written with sorted keys
    assert definition["properties"]["eventType"] == {"type": "string", "connect.index": 1}
    assert definition["properties"]["payload"]["connect.index"] == 0


def test_prod_registers_each_event_types_derived_definition_and_the_heartbeats(prod: Recording) -> None:
    registered = {s.inputs["schemaName"]: s.inputs["schemaDefinition"] for s in prod.of_type(SCHEMA)}
    expected = {event_schema_name(s.name, e.aggregate, e.type): event_definition(e.fields)
                for s in PUBLISHERS for e in s.events}
    expected |= {heartbeat_schema_name(s.name): heartbeat_json_definition() for s in PUBLISHERS}
    assert registered == expected


def test_prods_connectors_keep_connect_names_out_of_the_derived_definitions(prod: Recording) -> None:
    configs = [c.inputs["connectorConfiguration"] for c in prod.of_type(CONNECTOR)]
    assert {c["publication.name"] for c in configs} == {outbox_publication_name(s.name) for s in PUBLISHERS}
    assert {c["value.converter.connect.meta.data"] for c in configs} == {"false"}


def test_a_catalog_event_without_a_payload_description_is_refused() -> None:
    from config.catalog import parse_catalog
    from tests.test_catalog import _entry

    with pytest.raises(ConfigError, match=r"events\.0\.payload: Field required"):
        parse_catalog({"services": [_entry(events=[{"aggregate": "feedback", "type": "sent"}])]}, "services.yaml")


def test_a_payload_member_that_is_not_an_identifier_is_refused() -> None:
    from config.catalog import parse_catalog
    from tests.test_catalog import _entry

    events = [{"aggregate": "feedback", "type": "sent", "payload": {"Not-OK": "string"}}]
    with pytest.raises(ConfigError, match="payload member"):
        parse_catalog({"services": [_entry(events=events)]}, "services.yaml")


INT32 = {"type": "integer", "connect.type": "int32"}
LIBRARY_CASES = {
    # the converter's own expectations (awslabs/aws-glue-schema-registry eed1506b, jsonschema-kafkaconnect-converter
    # TestDataProvider, run by FromConnectTest.testFromConnect_schemaAndValue_asExpected); unnamed schemas, so its
    # default connect.meta.data=true adds nothing
    "OPTIONAL_BOOLEAN_SCHEMA": ({"type": "boolean", "optional": True},
                                {"oneOf": [{"type": "boolean"}, {"type": "null"}]}),
    "OPTIONAL_LONG_SCHEMA": ({"type": "int64", "optional": True},
                             {"oneOf": [{"type": "integer", "connect.type": "int64"}, {"type": "null"}]}),
    "CONNECT_STRUCT_SCHEMA": ({"type": "struct", "optional": False,
                               "fields": [{"field": "int32", "type": "int32", "optional": False}]},
                              {"type": "object", "properties": {"int32": {**INT32, "connect.index": 0}}}),
    "CONNECT_OPTIONAL_STRUCT_SCHEMA": ({"type": "struct", "optional": True,
                                        "fields": [{"field": "int32", "type": "int32", "optional": False}]},
                                       {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
                                           "int32": {**INT32, "connect.index": 0}}}]}),
}


@pytest.mark.parametrize("case", LIBRARY_CASES)
def test_the_mirror_gives_what_the_converters_own_tests_expect(case: str) -> None:
    connect, expected = LIBRARY_CASES[case]
    assert glue_json_schema(connect) == expected


ARTICLE = {"article_id": "string", "views": "integer", "public": "boolean"}
GOOD = {"article_id": "a1", "views": 3, "public": True}
NOT_INT32 = "must be an integer within 32 bits, not"  # not INT32: that name is the JSON Schema above


@pytest.mark.parametrize(("payload", "problems"), [
    pytest.param(["a1"], ["the payload is a list, not a JSON object"], id="not-an-object"),
    pytest.param({}, ["'article_id' is missing", "'views' is missing", "'public' is missing"], id="empty"),
    pytest.param({**GOOD, "extra": 1}, ["'extra' is not in the event type's payload"], id="extra-member"),
    pytest.param({"views": 3, "public": True, "extra": 1},
                 ["'article_id' is missing", "'extra' is not in the event type's payload"],
                 id="missing-and-extra-member"),
    pytest.param({"views": "3", "public": True}, ["'article_id' is missing", f"'views' {NOT_INT32} '3'"],
                 id="missing-member-before-a-wrong-one"),
    pytest.param({**GOOD, "views": True}, [f"'views' {NOT_INT32} True"], id="boolean-for-an-integer"),
    pytest.param({**GOOD, "views": 1.5}, [f"'views' {NOT_INT32} 1.5"], id="float-for-an-integer"),
    pytest.param({**GOOD, "views": 2**31}, [f"'views' {NOT_INT32} 2147483648"], id="integer-above-32-bits"),
    pytest.param({**GOOD, "views": -(2**31) - 1}, [f"'views' {NOT_INT32} -2147483649"], id="integer-below-32-bits"),
    pytest.param({**GOOD, "views": 2**31 - 1}, [], id="largest-32-bit-integer"),
    pytest.param({**GOOD, "views": -(2**31)}, [], id="smallest-32-bit-integer"),
    pytest.param({**GOOD, "public": "yes"}, ["'public' must be a boolean, not 'yes'"], id="text-for-a-boolean"),
    pytest.param({**GOOD, "article_id": None}, ["'article_id' must be a string, not None"], id="null-for-a-string"),
    pytest.param(GOOD, [], id="admitted"),
])
def test_a_payload_is_judged_against_its_description_in_these_words(payload: Any, problems: list[str]) -> None:
    assert payload_problems(ARTICLE, payload) == problems


def test_the_heartbeat_records_connect_schema_is_debeziums() -> None:
    """Debezium's heartbeat value: a required struct `io.debezium.connector.common.Heartbeat` version 1 with one
    required int64 `ts_ms` (tests/pg/test_events_debezium.py reads the real connector's)."""
    assert heartbeat_connect_schema() == {
        "type": "struct", "optional": False, "name": "io.debezium.connector.common.Heartbeat", "version": 1,
        "fields": [{"field": "ts_ms", "type": "int64", "optional": False}]}


def test_the_routed_records_value_is_a_required_struct_of_the_optional_payload_and_a_required_event_type() -> None:
    assert connect_value_schema({"ok": "boolean"}) == {
        "type": "struct", "optional": False, "fields": [
            {"type": "struct", "optional": True, "name": "payload", "field": "payload",
             "fields": [{"field": "ok", "type": "boolean", "optional": True}]},
            {"field": "eventType", "type": "string", "optional": False}]}
