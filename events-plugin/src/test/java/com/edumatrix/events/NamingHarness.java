package com.edumatrix.events;

import com.amazonaws.services.schemaregistry.common.AWSSchemaNamingStrategy;
import com.amazonaws.services.schemaregistry.serializers.json.JsonDataWithSchema;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;

/**
 * Test driver of the naming class (tests/test_events_plugin.py): loads the class by name as the Glue library
 * does (GlueSchemaRegistryUtils.initializeStrategy: Class.forName(name).newInstance(), then an instanceof
 * check), reads one case per line on stdin and answers one line per case on stdout, both JSON.
 *
 * <p>A case: {"id", "topic", "format", "value", "call"}. format JSON wraps the value's JSON text in a
 * JsonDataWithSchema (what the JSON Schema converter passes), AVRO converts it to an Avro GenericRecord (what
 * the Avro converter passes), MAP passes a java.util.Map (a kind no converter passes), NULL passes null. call
 * "value" (default) is the serializers' getSchemaName(topic, data, false); "key" is (topic, data, true);
 * "topic" is getSchemaName(topic). An answer: {"id", "schema"} or {"id", "error"}.
 */
public final class NamingHarness {
    private static final ObjectMapper JSON = new ObjectMapper();

    private NamingHarness() {
    }

    public static void main(String[] args) throws Exception {
        Object loaded = Class.forName(args[0]).getDeclaredConstructor().newInstance();
        if (!(loaded instanceof AWSSchemaNamingStrategy)) {
            throw new IllegalStateException(args[0] + " does not implement AWSSchemaNamingStrategy");
        }
        AWSSchemaNamingStrategy naming = (AWSSchemaNamingStrategy) loaded;
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            JsonNode test = JSON.readTree(line);
            ObjectNode answer = JSON.createObjectNode();
            answer.set("id", test.get("id"));
            String topic = test.get("topic").textValue();
            String call = test.has("call") ? test.get("call").textValue() : "value";
            try {
                Object data = data(test.get("format").textValue(), test.get("value"));
                String name = "topic".equals(call) ? naming.getSchemaName(topic)
                        : naming.getSchemaName(topic, data, "key".equals(call));
                answer.put("schema", name);
            } catch (RuntimeException e) {
                answer.put("error", e.getClass().getName() + ": " + e.getMessage());
            }
            System.out.println(JSON.writeValueAsString(answer));
        }
    }

    private static Object data(String format, JsonNode value) throws Exception {
        switch (format) {
            case "JSON":
                return JsonDataWithSchema.builder("{\"type\":\"object\"}", JSON.writeValueAsString(value)).build();
            case "AVRO":
                return avroValue(value, avroSchema(value, "Envelope"));
            case "MAP":
                Map<String, Object> map = new HashMap<>();
                value.fields().forEachRemaining(e -> map.put(e.getKey(), e.getValue().asText()));
                return map;
            case "NULL":
                return null;
            default:
                throw new IllegalStateException("harness: unknown format " + format);
        }
    }

    private static Schema avroSchema(JsonNode node, String name) {
        if (node.isObject()) {
            List<Schema.Field> fields = new ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> entry = it.next();
                fields.add(new Schema.Field(entry.getKey(), avroSchema(entry.getValue(), name + "_" + entry.getKey()),
                        null, (Object) null));
            }
            return Schema.createRecord(name, null, "edumatrix.harness", false, fields);
        }
        if (node.isTextual()) {
            return Schema.create(Schema.Type.STRING);
        }
        if (node.isIntegralNumber()) {
            return Schema.create(Schema.Type.LONG);
        }
        if (node.isBoolean()) {
            return Schema.create(Schema.Type.BOOLEAN);
        }
        throw new IllegalStateException("harness: no Avro type for " + node);
    }

    private static Object avroValue(JsonNode node, Schema schema) {
        switch (schema.getType()) {
            case RECORD:
                GenericData.Record record = new GenericData.Record(schema);
                for (Schema.Field field : schema.getFields()) {
                    record.put(field.name(), avroValue(node.get(field.name()), field.schema()));
                }
                return record;
            case STRING:
                return node.textValue();
            case LONG:
                return node.longValue();
            default:
                return node.booleanValue();
        }
    }
}
