/*
 * COMPILE-ONLY declaration, never packaged (make events-plugin keeps it out of the jar): the plugin zip carries
 * the real class inside the AWS Glue Schema Registry library. Written here from what was read in
 * github.com/awslabs/aws-glue-schema-registry at commit eed1506be00e6e4f9c910ddcbe451203b0a5b2de (Apache-2.0):
 * serializer-deserializer/src/main/java/com/amazonaws/services/schemaregistry/serializers/json/
 * JsonDataWithSchema.java (two final String fields `schema` and `payload` with Lombok @Getter, so getSchema() and
 * getPayload(), built by `builder(schema, payload).build()`, a blank schema refused), which the JSON Schema Kafka
 * Connect converter (jsonschema-kafkaconnect-converter JsonSchemaConverter.fromConnectData) hands to the
 * serializer and so to the naming strategy as `data`.
 */
package com.amazonaws.services.schemaregistry.serializers.json;

public final class JsonDataWithSchema {
    private final String schema;
    private final String payload;

    private JsonDataWithSchema(String schema, String payload) {
        this.schema = schema;
        this.payload = payload;
    }

    public String getSchema() {
        return schema;
    }

    public String getPayload() {
        return payload;
    }

    public static Builder builder(String schema, String payload) {
        if (schema == null || schema.trim().isEmpty()) {
            throw new IllegalArgumentException("schema can't be blank/empty/null");
        }
        return new Builder(schema, payload);
    }

    public static final class Builder {
        private final String schema;
        private final String payload;

        private Builder(String schema, String payload) {
            this.schema = schema;
            this.payload = payload;
        }

        public JsonDataWithSchema build() {
            return new JsonDataWithSchema(schema, payload);
        }
    }
}
