package com.edumatrix.events;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.debezium.embedded.Connect;
import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.storage.Converter;

/**
 * Runs the real Debezium PostgreSQL connector (Debezium's embedded engine, which applies the configuration's
 * transforms and predicates as a Kafka Connect worker does) with a connector configuration read from a JSON file
 * (arg 1: the stack's own `connector_configuration`, plus the engine's offset-storage keys), and converts each
 * record's key and value with the converters the configuration names, as the worker would before producing.
 *
 * stdout, one JSON object a line after "@@record ": {"event": "polling"} once the task polls its slot (the slot exists then),
 * then per record {"topic", "key", "headers": {name: {"value", "type"}}, "value": the value converter's output
 * parsed as JSON}. The engine stops when stdin closes; a failure of the engine prints {"event": "failed", ...}.
 */
public final class DebeziumHarness {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Our lines start with it: a logger writing to stdout all the same cannot be mistaken for a record. */
    private static final String MARK = "@@record ";

    private DebeziumHarness() {
    }

    private static Converter converter(Map<String, String> config, String prefix, boolean isKey) throws Exception {
        Converter converter = (Converter) Class.forName(config.get(prefix)).getDeclaredConstructor().newInstance();
        Map<String, String> own = new HashMap<>();
        config.forEach((k, v) -> {
            if (k.startsWith(prefix + ".")) {
                own.put(k.substring(prefix.length() + 1), v);
            }
        });
        converter.configure(own, isKey);
        return converter;
    }

    private static synchronized void emit(PrintStream out, ObjectNode line) {
        out.println(MARK + line.toString());
        out.flush();
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                StandardCharsets.UTF_8);
        System.setOut(new PrintStream(System.err, true, StandardCharsets.UTF_8));  // loggers: stderr
        @SuppressWarnings("unchecked")
        Map<String, String> config = JSON.readValue(Files.readString(Path.of(args[0])), Map.class);
        Properties props = new Properties();
        props.putAll(config);
        Converter keys = converter(config, "key.converter", true);
        Converter values = converter(config, "value.converter", false);

        DebeziumEngine<RecordChangeEvent<SourceRecord>> engine = DebeziumEngine
                .create(ChangeEventFormat.of(Connect.class))
                .using(props)
                .using(new DebeziumEngine.ConnectorCallback() {
                    @Override
                    public void pollingStarted() {
                        emit(out, JSON.createObjectNode().put("event", "polling"));
                    }
                })
                .using((success, message, error) -> {
                    if (!success) {
                        ObjectNode line = JSON.createObjectNode().put("event", "failed").put("message", message);
                        line.put("error", String.valueOf(error));
                        emit(out, line);
                    }
                })
                .notifying(change -> {
                    SourceRecord record = change.record();
                    ObjectNode line = JSON.createObjectNode().put("topic", record.topic());
                    byte[] key = keys.fromConnectData(record.topic(), record.keySchema(), record.key());
                    line.put("key", key == null ? null : new String(key, StandardCharsets.UTF_8));
                    ObjectNode headers = line.putObject("headers");
                    for (Header header : record.headers()) {
                        headers.putObject(header.key()).put("value", String.valueOf(header.value()))
                                .put("type", header.schema() == null ? null : header.schema().type().getName());
                    }
                    byte[] value = values.fromConnectData(record.topic(), record.valueSchema(), record.value());
                    try {
                        line.set("value", value == null ? null : JSON.readTree(value));
                    } catch (java.io.IOException e) {
                        throw new IllegalStateException(e);
                    }
                    emit(out, line);
                })
                .build();
        ExecutorService executor = Executors.newSingleThreadExecutor();
        executor.execute(engine);
        try (BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            while (stdin.readLine() != null) {
                // the test closes stdin when it has what it waited for
            }
        }
        engine.close();
        executor.shutdown();
        executor.awaitTermination(60, TimeUnit.SECONDS);
        emit(out, JSON.createObjectNode().put("event", "stopped"));
        System.exit(0);
    }
}
