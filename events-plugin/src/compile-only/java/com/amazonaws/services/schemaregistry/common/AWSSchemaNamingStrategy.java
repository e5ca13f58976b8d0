/*
 * COMPILE-ONLY declaration, never packaged (make events-plugin keeps it out of the jar): the plugin zip carries
 * the real interface inside the AWS Glue Schema Registry library. Written here from the signatures read in
 * github.com/awslabs/aws-glue-schema-registry, common/src/main/java/com/amazonaws/services/schemaregistry/
 * common/AWSSchemaNamingStrategy.java at commit eed1506be00e6e4f9c910ddcbe451203b0a5b2de (Apache-2.0): one
 * abstract method taking the transport (topic) name, and two default methods, the one with `isKey` being what the
 * Kafka serializers call (GlueSchemaRegistryKafkaSerializer, AWSKafkaAvroSerializer `getSchemaName(topic, data,
 * isKey)`). tests/test_events_plugin.py compiles the naming class against this file.
 */
package com.amazonaws.services.schemaregistry.common;

public interface AWSSchemaNamingStrategy {
    /** The schema for a record: by default the name for its topic alone. */
    default String getSchemaName(String transportName, Object data) {
        return getSchemaName(transportName);
    }

    /** Keys are named by topic only; values through {@link #getSchemaName(String, Object)}. */
    default String getSchemaName(String transportName, Object data, boolean isKey) {
        if (isKey) {
            return getSchemaName(transportName);
        }
        return getSchemaName(transportName, data);
    }

    /** The schema name for a topic (or stream) name. */
    String getSchemaName(String transportName);
}
