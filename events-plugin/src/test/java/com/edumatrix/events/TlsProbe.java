package com.edumatrix.events;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;

/**
 * Test driver (tests/test_events_plugin.py): one connection through the PostgreSQL JDBC driver with the
 * properties Debezium passes it for the outbox connectors (sslmode verify-full, sslfactory this jar's
 * RdsCaBundleSocketFactory), as a replication connection the way Debezium opens its streaming one
 * (replication=database, preferQueryMode=simple). Arguments: host port database user password. Prints the
 * server's system identifier (IDENTIFY_SYSTEM) or exits 1 with the driver's error.
 */
public final class TlsProbe {
    private TlsProbe() {
    }

    public static void main(String[] args) throws Exception {
        Properties properties = new Properties();
        properties.setProperty("user", args[3]);
        properties.setProperty("password", args[4]);
        properties.setProperty("sslmode", "verify-full");
        properties.setProperty("sslfactory", RdsCaBundleSocketFactory.class.getName());
        properties.setProperty("replication", "database");
        properties.setProperty("preferQueryMode", "simple");
        properties.setProperty("assumeMinServerVersion", "9.4");
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2];
        try (Connection connection = DriverManager.getConnection(url, properties);
             Statement statement = connection.createStatement();
             ResultSet rows = statement.executeQuery("IDENTIFY_SYSTEM")) {
            rows.next();
            System.out.println("connected, system " + rows.getString(1));
        } catch (java.sql.SQLException e) {
            System.out.println("refused: " + e.getMessage() + (e.getCause() == null ? "" : " / " + e.getCause()));
            System.exit(1);
        }
    }
}
