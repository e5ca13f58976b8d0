"""`edumatrix-db local up` end to end, into a scratch root: twice, then status and down."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from config.catalog import load_catalog
from tests.pg.conftest import scratch_root

pytestmark = pytest.mark.postgres
ROOT_DIR = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edumatrix_db.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT_DIR,
        check=False,
        timeout=180,
    )


@pytest.fixture(scope="module")
def twice() -> Iterator[tuple[Path, subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]]:
    root = scratch_root("edumatrix-localup-")
    # (the stack's preferred port may be taken, e.g. by a developer's own server: up then picks a free one)
    try:
        first = cli("local", "up", "--root", str(root))
        assert first.returncode == 0, first.stdout + first.stderr
        second = cli("local", "up", "--root", str(root))
        assert second.returncode == 0, second.stdout + second.stderr
        yield root, first, second
    finally:
        cli("local", "down", "--root", str(root))
        shutil.rmtree(root, ignore_errors=True)


def test_local_up_writes_connections_json_in_the_agreed_shape(twice: tuple[Path, ...]) -> None:
    root = twice[0]
    data = json.loads((root / ".local" / "connections.json").read_text())
    assert set(data) == {"admin", "database", "services", "pooler"}  # the pooler's key added, none removed
    assert data["database"] == "edumatrix"
    assert set(data["services"]) == set(load_catalog().names)
    for service, entry in data["services"].items():
        assert entry["schema"] == f"{service}_schema"
        assert set(entry["roles"]) == {"migrator", "app", "readonly"}
        assert set(entry["pooled"]) == {"app", "readonly"}
        for uri in [*entry["roles"].values(), *entry["pooled"].values()]:
            assert "sslmode=verify-full" in uri
            assert "sslrootcert=" in uri


def test_every_uri_connects_over_tls_with_full_verification(twice: tuple[Path, ...]) -> None:
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    uris = [data["admin"], *(u for e in data["services"].values() for u in [*e["roles"].values(),
                                                                              *e["pooled"].values()])]
    for uri in uris:
        with psycopg.connect(uri) as conn:
            assert conn.pgconn.ssl_in_use


def test_clients_limited_to_tls_1_2_are_refused(twice: tuple[Path, ...]) -> None:
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(data["admin"] + "&ssl_max_protocol_version=TLSv1.2").close()


def test_a_client_that_does_not_trust_the_local_ca_is_refused(
    twice: tuple[Path, ...], tmp_path: Path
) -> None:
    from edumatrix_db.database.localpg import LocalServer

    other = LocalServer(tmp_path)
    other.tls.parent.mkdir(parents=True)
    other._certificates()  # an unrelated CA
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    uri = data["admin"].split("sslrootcert=")[0] + f"sslrootcert={other.ca_cert}"
    with pytest.raises(psycopg.OperationalError, match=r"SSL error|certificate verify failed"):
        psycopg.connect(uri).close()


def test_local_up_says_which_server_it_used(twice: tuple[Path, ...]) -> None:
    first = twice[1]
    assert "server: PostgreSQL 15" in first.stdout
    assert "connections:" in first.stdout


def test_a_second_local_up_changes_nothing(twice: tuple[Path, ...]) -> None:
    second = twice[2]
    assert "access model: 0 change(s)" in second.stdout, second.stdout


def test_status_then_down_then_status(twice: tuple[Path, ...]) -> None:
    root = str(twice[0])
    assert cli("local", "status", "--root", root).returncode == 0
    assert "stopped" in cli("local", "down", "--root", root).stdout
    assert cli("local", "status", "--root", root).returncode == 3

