package com.edumatrix.events;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.HashSet;
import java.util.Set;
import javax.net.ssl.CertPathTrustManagerParameters;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManagerFactory;

/**
 * TLS for the outbox connectors' database connections, verifying the RDS server against AWS's RDS CA bundle
 * (docs/event-backbone.md, "The connector's database connection").
 *
 * <p>Debezium's PostgreSQL connector hands every {@code database.*} property, prefix removed, to the PostgreSQL
 * JDBC driver (Debezium 2.7 RelationalDatabaseConnectorConfig), so the connector sets {@code
 * database.sslmode=verify-full} and {@code database.sslfactory=com.edumatrix.events.RdsCaBundleSocketFactory}.
 * pgjdbc loads the factory by name ({@code ObjectFactory.instantiate}: a (Properties), (String) or no-argument
 * constructor; this class has the last), makes the TLS handshake through it, and, under verify-full, checks the
 * host name itself (MakeSSL.verifyPeerName). The trust anchors are every certificate of the bundle that
 * {@code make events-plugin} copies from certs/rds-global-bundle.pem into this jar: pgjdbc's own
 * SingleCertValidatingFactory trusts one certificate only, and {@code sslrootcert} needs a file path on the
 * worker, which MSK Connect does not document. Revocation is not checked (the worker reaches no CRL or OCSP
 * responder), as pgjdbc's factories do by default.
 */
public final class RdsCaBundleSocketFactory extends SSLSocketFactory {
    /** Where the build puts the bundle inside the jar. */
    public static final String BUNDLE_RESOURCE = "com/edumatrix/events/rds-ca-bundle.pem";

    private final SSLSocketFactory delegate;

    public RdsCaBundleSocketFactory() throws GeneralSecurityException, IOException {
        try (InputStream bundle = RdsCaBundleSocketFactory.class.getClassLoader()
                .getResourceAsStream(BUNDLE_RESOURCE)) {
            if (bundle == null) {
                throw new GeneralSecurityException(BUNDLE_RESOURCE + " is not in this jar: build it with "
                        + "`make events-plugin` (it copies certs/rds-global-bundle.pem)");
            }
            delegate = verifyingFactory(bundle);
        }
    }

    private static SSLSocketFactory verifyingFactory(InputStream pem) throws GeneralSecurityException {
        Collection<? extends Certificate> certificates = CertificateFactory.getInstance("X.509")
                .generateCertificates(pem);
        Set<TrustAnchor> anchors = new HashSet<>();
        for (Certificate certificate : certificates) {
            anchors.add(new TrustAnchor((X509Certificate) certificate, null));
        }
        if (anchors.isEmpty()) {
            throw new GeneralSecurityException(BUNDLE_RESOURCE + " holds no certificate");
        }
        PKIXBuilderParameters parameters = new PKIXBuilderParameters(anchors, null);
        parameters.setRevocationEnabled(false);
        TrustManagerFactory trust = TrustManagerFactory.getInstance("PKIX");
        trust.init(new CertPathTrustManagerParameters(parameters));
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, trust.getTrustManagers(), null);
        return context.getSocketFactory();
    }

    /** How many trust anchors the packaged bundle gave (for the build's check and the tests). */
    public static void main(String[] args) throws GeneralSecurityException, IOException {
        new RdsCaBundleSocketFactory();
        try (InputStream bundle = RdsCaBundleSocketFactory.class.getClassLoader()
                .getResourceAsStream(BUNDLE_RESOURCE)) {
            System.out.println(CertificateFactory.getInstance("X.509").generateCertificates(bundle).size());
        }
    }

    @Override
    public String[] getDefaultCipherSuites() {
        return delegate.getDefaultCipherSuites();
    }

    @Override
    public String[] getSupportedCipherSuites() {
        return delegate.getSupportedCipherSuites();
    }

    @Override
    public Socket createSocket() throws IOException {
        return delegate.createSocket();
    }

    @Override
    public Socket createSocket(Socket socket, String host, int port, boolean autoClose) throws IOException {
        return delegate.createSocket(socket, host, port, autoClose);
    }

    @Override
    public Socket createSocket(String host, int port) throws IOException {
        return delegate.createSocket(host, port);
    }

    @Override
    public Socket createSocket(String host, int port, InetAddress localHost, int localPort) throws IOException {
        return delegate.createSocket(host, port, localHost, localPort);
    }

    @Override
    public Socket createSocket(InetAddress host, int port) throws IOException {
        return delegate.createSocket(host, port);
    }

    @Override
    public Socket createSocket(InetAddress address, int port, InetAddress localAddress, int localPort)
            throws IOException {
        return delegate.createSocket(address, port, localAddress, localPort);
    }
}
