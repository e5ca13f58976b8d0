package com.edumatrix.events;

import com.amazonaws.services.schemaregistry.common.AWSSchemaNamingStrategy;
import com.amazonaws.services.schemaregistry.serializers.json.JsonDataWithSchema;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.regex.Pattern;

/**
 * The Glue Schema Registry converter's schema naming for the outbox connectors (docs/event-backbone.md): the
 * registry holds one schema per event type, {@code <service>.<aggregate>.<eventType>} (config/naming.py
 * {@code event_schema_name}), and one per service for Debezium's heartbeats, {@code <service>.heartbeat}
 * (config/events.py {@code heartbeat_schema_name}).
 *
 * <p>The converter loads this class by name ({@code schemaNameGenerationClass}; {@code Class.forName(name)
 * .newInstance()}, so it keeps a public no-argument constructor) and, for each record value, calls
 * {@code getSchemaName(topic, data, false)}, whose default calls {@link #getSchemaName(String, Object)}. What
 * {@code data} is depends on the converter: the JSON Schema converter passes a {@code JsonDataWithSchema} (its
 * payload is the value as JSON text), the Avro converter an Avro {@code GenericRecord}. Neither passes a Kafka
 * Connect {@code Struct}.
 *
 * <p>The value is the Debezium outbox router's envelope: {@code {"payload": ..., "eventType": ...}} (the router
 * places the outbox row's {@code type} column in the envelope as {@code eventType}). Anything else fails closed:
 * an unknown topic, a value without a textual {@code eventType}, an event type that is not a plain identifier,
 * or a value of another kind throw, so the converter fails the task instead of publishing under a schema named
 * after the topic.
 */
public final class EventTypeSchemaNaming implements AWSSchemaNamingStrategy {
    /** {@code config/naming.py EVENT_TOPIC_PREFIX}: event topics are {@code edumatrix.<service>.<aggregate>}. */
    static final String TOPIC_PREFIX = "edumatrix.";
    /** {@code config/events.py heartbeat_topic_name}: {@code __debezium-heartbeat.edumatrix.<service>}. */
    static final String HEARTBEAT_PREFIX = "__debezium-heartbeat." + TOPIC_PREFIX;
    static final String HEARTBEAT_SUFFIX = ".heartbeat";
    /** The envelope field the outbox router writes from the {@code type} column. */
    static final String EVENT_TYPE = "eventType";
    /** {@code config/naming.py check_identifier}'s pattern: what services, aggregates and event types look like. */
    private static final Pattern IDENTIFIER = Pattern.compile("[a-z_][a-z0-9_]*");
    private static final ObjectMapper JSON = new ObjectMapper();

    public EventTypeSchemaNaming() {
        // the converter instantiates the class reflectively
    }

    /** Heartbeats only: an event topic's schema depends on the record, which this overload does not see. */
    @Override
    public String getSchemaName(String topic) {
        String service = heartbeatService(topic);
        if (service == null) {
            throw refused(topic, "an event topic's schema is named after the record's " + EVENT_TYPE
                    + ", and this call has no record");
        }
        return service + HEARTBEAT_SUFFIX;
    }

    @Override
    public String getSchemaName(String topic, Object data) {
        String service = heartbeatService(topic);
        if (service != null) {
            return service + HEARTBEAT_SUFFIX;
        }
        return eventTopic(topic) + "." + eventType(topic, data);
    }

    /** The service of a heartbeat topic, or null when {@code topic} is not one. */
    private static String heartbeatService(String topic) {
        if (topic == null || !topic.startsWith(HEARTBEAT_PREFIX)) {
            return null;
        }
        String service = topic.substring(HEARTBEAT_PREFIX.length());
        if (!IDENTIFIER.matcher(service).matches()) {
            throw refused(topic, "not a service's heartbeat topic (" + HEARTBEAT_PREFIX + "<service>)");
        }
        return service;
    }

    /** {@code <service>.<aggregate>} of an event topic {@code edumatrix.<service>.<aggregate>}. */
    private static String eventTopic(String topic) {
        String[] parts = topic == null || !topic.startsWith(TOPIC_PREFIX)
                ? new String[0] : topic.substring(TOPIC_PREFIX.length()).split("\\.", -1);
        if (parts.length != 2 || !IDENTIFIER.matcher(parts[0]).matches()
                || !IDENTIFIER.matcher(parts[1]).matches()) {
            throw refused(topic, "not an event topic (" + TOPIC_PREFIX + "<service>.<aggregate>) nor a heartbeat topic");
        }
        return parts[0] + "." + parts[1];
    }

    private static String eventType(String topic, Object data) {
        Object value;
        if (data instanceof JsonDataWithSchema) {
            value = jsonField(topic, ((JsonDataWithSchema) data).getPayload());
        } else if (data != null && AvroValues.isRecord(data)) {
            value = AvroValues.field(data, EVENT_TYPE);
        } else {
            throw refused(topic, "the value is " + (data == null ? "null" : "a " + data.getClass().getName())
                    + ", neither the JSON converter's JsonDataWithSchema nor the Avro converter's GenericRecord");
        }
        if (!(value instanceof CharSequence)) {
            throw refused(topic, "the value has no textual " + EVENT_TYPE + " (the outbox router's "
                    + "table.fields.additional.placement must put type:envelope:" + EVENT_TYPE + ")");
        }
        String type = value.toString();
        if (!IDENTIFIER.matcher(type).matches()) {
            throw refused(topic, EVENT_TYPE + " '" + type + "' is not an event type of the catalog's form "
                    + IDENTIFIER.pattern());
        }
        return type;
    }

    private static Object jsonField(String topic, String payload) {
        JsonNode root;
        try {
            root = payload == null ? null : JSON.readTree(payload);
        } catch (IOException e) {
            throw refused(topic, "the JSON value does not parse: " + e.getMessage());
        }
        JsonNode field = root != null && root.isObject() ? root.get(EVENT_TYPE) : null;
        return field != null && field.isTextual() ? field.textValue() : null;
    }

    private static IllegalArgumentException refused(String topic, String why) {
        return new IllegalArgumentException("edumatrix schema naming refuses topic '" + topic + "': " + why);
    }

    /** Avro kept apart: this class is loaded only when a value is not JSON, so a JSON-only worker never needs it. */
    private static final class AvroValues {
        static boolean isRecord(Object data) {
            return data instanceof org.apache.avro.generic.GenericRecord;
        }

        static Object field(Object data, String name) {
            org.apache.avro.generic.GenericRecord record = (org.apache.avro.generic.GenericRecord) data;
            // Avro 1.10+ throws on an unknown field name where 1.8 returned null: ask the schema first
            return record.getSchema().getField(name) == null ? null : record.get(name);
        }
    }
}
