"""The outbox connectors' database TLS (docs/event-backbone.md, "The connector's database connection"), on the
real PostgreSQL 15 server with the real PostgreSQL JDBC driver (Debian's pgjdbc, the driver Debezium's
PostgreSQL connector bundles): `sslmode=verify-full` with `sslfactory=com.edumatrix.events.RdsCaBundleSocketFactory`
from the jar `make events-plugin` builds, as a replication connection of the CDC login the way Debezium opens its
stream (`replication=database`, simple query mode). The local server's certificate is signed by its own CA; the
jar built with a bundle holding that CA connects, a jar whose bundle lacks it is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from tests.events_plugin_support import build_jar, ca_certificate, classpath, compile_test_driver
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres


def probe(pg: Postgres, jar: Path, drivers: Path) -> subprocess.CompletedProcess[str]:
    """TlsProbe.java as the CDC login: host port database user password from its local connection URI."""
    uri = urlsplit(str(pg.connections["platform"]["cdc_replicator"]))
    args = [uri.hostname or "", str(uri.port), uri.path.lstrip("/"), unquote(uri.username or ""),
            unquote(uri.password or "")]
    return subprocess.run(["java", "-cp", classpath(jar, drivers), "com.edumatrix.events.TlsProbe", *args],
                          capture_output=True, text=True, check=False, timeout=120)


def jar_trusting(tmp_path: Path, *pems: bytes) -> tuple[Path, Path]:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"".join(pems))
    jar = build_jar(tmp_path / "build", bundle)
    return jar, compile_test_driver(jar, tmp_path / "drivers", "TlsProbe")


def test_the_cdc_login_connects_with_verify_full_through_a_bundle_holding_the_servers_ca(
        pg: Postgres, tmp_path: Path) -> None:
    assert pg.state.tls, "the local server runs without TLS: install Debian's postgresql-15 (built with OpenSSL)"
    jar, drivers = jar_trusting(tmp_path, ca_certificate("an unrelated CA first"), pg.server.ca_cert.read_bytes())
    ran = probe(pg, jar, drivers)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("connected, system ")


def test_a_bundle_without_the_servers_ca_is_refused_before_any_password_is_sent(
        pg: Postgres, tmp_path: Path) -> None:
    jar, drivers = jar_trusting(tmp_path, ca_certificate("an unrelated CA"))
    ran = probe(pg, jar, drivers)
    assert ran.returncode == 1
    assert ran.stdout.startswith("refused: SSL error")
