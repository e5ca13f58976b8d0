"""Event payload schemas (issue 19, docs/events.md "Payload schemas"): one source of truth from the catalog's
`payload` description of each event type to (1) what `write_event` admits into the outbox, (2) the Kafka Connect
schema Debezium's outbox router gives the routed record's value, and (3) the JSON Schema definition the AWS Glue
Schema Registry converter derives from that Connect schema, which the stack registers as the event type's schema
version. With auto-registration off the converter finds a record's version by that definition
(`GetSchemaByDefinition`), so (3) must be exactly what it derives from (2). Pure data: no resources, no I/O.

(2) is what Debezium 3.6.3 does (debezium-connect-plugins `EventRouterDelegate`, `JsonSchemaData`; proven on the
JVM by tests/pg/test_events_debezium.py with the real connector and the stack's configuration):
- `table.expand.json.payload=true` parses the jsonb text and infers an OPTIONAL struct named `payload` whose
  fields come in the order of the JSON text. PostgreSQL prints jsonb keys shorter first, then bytewise
  (`jsonb_order`), whatever order the writer used;
- a JSON string is an optional `string`, `true`/`false` an optional `boolean`, an integer that fits 32 bits an
  optional `int32` (a larger one `int64`, a number with a fraction or exponent `float64`: not admitted, so the
  type never depends on the value); a `null` member and an empty array are dropped (the field vanishes: not
  admitted); nested objects and arrays are not admitted (kept out until a service needs them);
- with `type:envelope:eventType` the value is a struct `{payload, eventType}` (`eventType`: the `type` column,
  a required string). The value schema's NAME is Debezium's table schema name with the aggregate inserted, and
  the router caches it by payload schema (`getValueSchema`), so two aggregates with equal payloads share the first
  one's name: the converter is told `connect.meta.data=false`, and names stay out of the definitions.

(3) mirrors github.com/awslabs/aws-glue-schema-registry at eed1506b (jsonschema-kafkaconnect-converter:
`ConnectSchemaToJsonSchemaConverter`, `typeconverters/*`; not run here: no Glue library and no Glue): an optional
schema becomes `oneOf` [the schema, `null`] (a struct: [`null`, the struct]), integers carry `connect.type`, a
struct's fields carry `connect.index`, and a struct's field conversions share one cache keyed by Connect schema,
so a field whose schema equals an earlier field's gets the EARLIER field's `connect.index` (the cache ignores the
index). Glue canonicalizes a definition before hashing it (`GetSchemaByDefinition`), so key order and
whitespace do not matter; the definitions are written compactly with sorted keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

PayloadType = Literal["string", "integer", "boolean"]
PAYLOAD_TYPES: tuple[str, ...] = ("string", "integer", "boolean")
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ENVELOPE_TYPE_FIELD = "eventType"
"""The alias of `type:envelope:eventType` (components/event_backbone.py), the value's second field."""
PAYLOAD_FIELD = "payload"
HEARTBEAT_SCHEMA_NAME = "io.debezium.connector.common.Heartbeat"
"""Debezium's heartbeat value: a struct (version 1) with the required int64 `ts_ms` (the JVM test reads it from
a real heartbeat record)."""

ConnectSchema = dict[str, Any]
"""A Kafka Connect schema in the JSON form Kafka's JsonConverter writes (`schemas.enable=true`): `type`,
`optional`, `fields` (each with `field`, its name), `name`."""


class PayloadMismatch(ValueError):
    """An outbox payload that does not match its event type's catalog description."""


def jsonb_order(names: Any) -> list[str]:
    """Keys in the order PostgreSQL prints a jsonb object: shorter keys first, equal lengths bytewise."""
    return sorted(names, key=lambda n: (len(n.encode()), n.encode()))


def payload_problems(fields: Mapping[str, str], payload: Any) -> list[str]:
    """Why `payload` is not an instance of the description (empty: it is): every declared member present,
    nothing else, no null, each of its type (integers within 32 bits, never a float or a bool)."""
    if not isinstance(payload, Mapping):
        return [f"the payload is a {type(payload).__name__}, not a JSON object"]
    problems = [f"{name!r} is missing" for name in fields if name not in payload]
    problems += [f"{name!r} is not in the event type's payload" for name in payload if name not in fields]
    for name, kind in fields.items():
        if name not in payload:
            continue
        value = payload[name]
        if kind == "string":
            ok = isinstance(value, str)
        elif kind == "boolean":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and INT32_MIN <= value <= INT32_MAX
        if not ok:
            what = "an integer within 32 bits" if kind == "integer" else f"a {kind}"
            problems.append(f"{name!r} must be {what}, not {value!r}")
    return problems


def sample_payload(fields: Mapping[str, str], seed: str = "x") -> dict[str, Any]:
    """A payload the description admits (tests, docs)."""
    values = {"string": f"{seed}", "integer": 7, "boolean": True}
    return {name: values[kind] for name, kind in fields.items()}


# -- (2) the routed record's Connect schema ---------------------------------------------------------------------
_CONNECT_TYPE = {"string": "string", "integer": "int32", "boolean": "boolean"}


def connect_payload_schema(fields: Mapping[str, str]) -> ConnectSchema:
    """The `payload` field's schema after `table.expand.json.payload` (JsonSchemaData.toConnectSchema)."""
    return {"type": "struct", "optional": True, "name": PAYLOAD_FIELD,
            "fields": [{"field": name, "type": _CONNECT_TYPE[fields[name]], "optional": True}
                       for name in jsonb_order(fields)]}


def connect_value_schema(fields: Mapping[str, str]) -> ConnectSchema:
    """The routed record's value schema, without its name (see the module docstring): `{payload, eventType}`.
    The name Debezium gives it is `<topic.prefix>.<schema>.<outbox>.<aggregatetype>.Value` for the first
    aggregate whose records had this payload shape."""
    return {"type": "struct", "optional": False,
            "fields": [{**connect_payload_schema(fields), "field": PAYLOAD_FIELD},
                       {"field": ENVELOPE_TYPE_FIELD, "type": "string", "optional": False}]}


def heartbeat_connect_schema() -> ConnectSchema:
    return {"type": "struct", "optional": False, "name": HEARTBEAT_SCHEMA_NAME, "version": 1,
            "fields": [{"field": "ts_ms", "type": "int64", "optional": False}]}


# -- (3) the Glue JSON Schema converter's derivation (connect.meta.data=false) --------------------------------
_INTEGERS = ("int8", "int16", "int32", "int64")
_NUMBERS = ("float32", "float64")


def _cache_key(schema: ConnectSchema) -> str:
    """ConnectSchema.equals: everything but the field's own name."""
    return json.dumps({k: v for k, v in schema.items() if k != "field"}, sort_keys=True)


def _from_connect(schema: ConnectSchema, ignore_optional: bool, index: int, cache: dict[str, dict[str, Any]]
                  ) -> dict[str, Any]:
    """ConnectSchemaToJsonSchemaConverter.fromConnectSchema (one converter instance = one `cache`)."""
    key = _cache_key(schema)
    if key in cache:
        return cache[key]
    extra: dict[str, Any] = {}
    kind = schema["type"]
    combined = False
    if kind == "struct":
        if schema.get("optional"):
            inner = {**schema, "optional": False}
            base: dict[str, Any] = {"oneOf": [{"type": "null"}, _from_connect(inner, False, -1, {})]}
            combined = True
        else:
            fields_cache: dict[str, dict[str, Any]] = {}
            base = {"type": "object", "properties": {
                f["field"]: _from_connect(f, False, i, fields_cache) for i, f in enumerate(schema["fields"])}}
    elif kind == "string":
        base = {"type": "string"}
    elif kind == "boolean":
        base = {"type": "boolean"}
    elif kind in _INTEGERS or kind in _NUMBERS:
        base = {"type": "integer" if kind in _INTEGERS else "number"}
        extra["connect.type"] = kind
    else:
        raise ValueError(f"no mirror of the Glue converter for Connect type {kind!r}")
    if index != -1:
        extra["connect.index"] = index
    if combined or ignore_optional or not schema.get("optional"):
        result = {**base, **extra}
    else:
        result = {"oneOf": [{**base, **extra}, {"type": "null"}],
                  **({"connect.index": index} if index != -1 else {})}
    cache[key] = result
    return result


def glue_json_schema(schema: ConnectSchema) -> dict[str, Any]:
    """The JSON Schema the Glue converter derives from a record's Connect value schema."""
    return _from_connect(schema, False, -1, {})


def definition_text(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def event_definition(fields: Mapping[str, str]) -> str:
    """The registered definition of an event type's version: what the converter derives from its records."""
    return definition_text(glue_json_schema(connect_value_schema(fields)))


def heartbeat_json_definition() -> str:
    return definition_text(glue_json_schema(heartbeat_connect_schema()))
