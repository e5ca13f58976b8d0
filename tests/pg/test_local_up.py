"""`edumatrix-db local up` end to end, into a scratch root: twice, then status and down."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

import psycopg
import pytest

from config.catalog import load_catalog
from tests.pg.conftest import scratch_root

pytestmark = pytest.mark.postgres
ROOT_DIR = Path(__file__).resolve().parents[2]
# The `twice` fixture: the scratch root, then the first and the second `local up` run into it.
Twice: TypeAlias = tuple[Path, subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]


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
def twice() -> Iterator[Twice]:
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


def test_local_up_writes_connections_json_in_the_agreed_shape(twice: Twice) -> None:
    root = twice[0]
    data = json.loads((root / ".local" / "connections.json").read_text())
    assert set(data) == {"admin", "database", "services", "platform", "pooler"}  # keys are added, never removed
    assert data["database"] == "edumatrix"
    assert set(data["services"]) == set(load_catalog().names)
    for service, entry in data["services"].items():
        assert entry["schema"] == f"{service}_schema"
        gdpr = {"gdpr"} if load_catalog().get(service).holds_personal_data else set()  # docs/gdpr.md
        assert set(entry["roles"]) == {"migrator", "app", "readonly", *gdpr}
        assert set(entry["pooled"]) == {"app", "readonly"}
        for uri in [*entry["roles"].values(), *entry["pooled"].values()]:
            assert "sslmode=verify-full" in uri
            assert "sslrootcert=" in uri


def test_connections_json_and_the_passwords_are_readable_by_their_owner_only(twice: Twice) -> None:
    local = twice[0] / ".local"
    modes = {name: stat.S_IMODE((local / name).stat().st_mode) for name in ("connections.json", "passwords.json")}
    assert modes == {"connections.json": 0o600, "passwords.json": 0o600}


def test_every_uri_connects_over_tls_with_full_verification(twice: Twice) -> None:
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    uris = [data["admin"], *(u for e in data["services"].values() for u in [*e["roles"].values(),
                                                                              *e["pooled"].values()])]
    for uri in uris:
        with psycopg.connect(uri) as conn:
            assert conn.pgconn.ssl_in_use


def test_clients_limited_to_tls_1_1_are_refused(twice: Twice) -> None:
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(data["admin"] + "&ssl_max_protocol_version=TLSv1.1").close()


def test_tls_1_2_clients_connect_as_on_rds_and_others_get_tls_1_3(twice: Twice) -> None:
    """The local floor is the stack's sslMinProtocolVersion (TLSv1.2, what RDS for PostgreSQL 15 offers);
    a client that can speak 1.3 still gets it."""
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    query = "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    with psycopg.connect(data["admin"] + "&ssl_max_protocol_version=TLSv1.2") as conn:
        assert conn.execute(query).fetchone() == ("TLSv1.2",)
    with psycopg.connect(data["admin"]) as conn:
        assert conn.execute(query).fetchone() == ("TLSv1.3",)


def test_a_client_that_does_not_trust_the_local_ca_is_refused(
    twice: Twice, tmp_path: Path
) -> None:
    from edumatrix_db.database.localpg import LocalServer

    other = LocalServer(tmp_path)
    other.tls.parent.mkdir(parents=True)
    other._certificates()  # an unrelated CA
    data = json.loads((twice[0] / ".local" / "connections.json").read_text())
    uri = data["admin"].split("sslrootcert=")[0] + f"sslrootcert={other.ca_cert}"
    with pytest.raises(psycopg.OperationalError, match=r"SSL error|certificate verify failed"):
        psycopg.connect(uri).close()


def test_local_up_says_which_server_it_used(twice: Twice) -> None:
    first = twice[1]
    assert "server: PostgreSQL 15" in first.stdout
    assert "connections:" in first.stdout


def test_a_second_local_up_changes_nothing(twice: Twice) -> None:
    second = twice[2]
    assert "access model: 0 change(s)" in second.stdout, second.stdout


def superuser(root: Path) -> psycopg.Connection:
    from edumatrix_db.database.localpg import LocalServer

    return LocalServer(root).superuser()


def test_local_up_survives_an_object_someone_else_owns_and_names_it(twice: Twice) -> None:
    root = twice[0]
    with superuser(root) as su:
        su.execute("CREATE TABLE jobs_portal_schema.jobs_portal_stray (id int); "
                   "ALTER TABLE jobs_portal_schema.jobs_portal_stray OWNER TO jobs_portal_app")
        try:
            result = cli("local", "up", "--root", str(root))
        finally:
            su.execute("DROP TABLE jobs_portal_schema.jobs_portal_stray")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "found (ownership, jobs_portal): table jobs_portal_schema.jobs_portal_stray: owned by jobs_portal_app" \
        in result.stdout


def test_local_up_reports_a_foreign_grant_and_revokes_it_only_with_the_flag(twice: Twice) -> None:
    root = twice[0]
    with superuser(root) as su:
        su.execute("SET ROLE feedback_owner; CREATE TABLE feedback_schema.feedback_shared "
                   "(institution_id uuid NOT NULL); RESET ROLE")
        su.execute("GRANT SELECT ON feedback_schema.feedback_shared TO statistics_readonly")  # no guard for it
        try:
            reported = cli("local", "up", "--root", str(root))
            revoked = cli("local", "up", "--root", str(root), "--revoke-foreign")
            row = su.execute("SELECT has_table_privilege('statistics_readonly', "
                             "'feedback_schema.feedback_shared', 'SELECT')").fetchone()
        finally:
            su.execute("DROP TABLE feedback_schema.feedback_shared")
    assert (reported.returncode, revoked.returncode) == (0, 0), reported.stdout + revoked.stdout
    assert "foreign grant: statistics_readonly holds SELECT" in reported.stdout
    assert "foreign grant" not in revoked.stdout
    assert row == (False,)


def test_status_then_down_then_status(twice: Twice) -> None:
    root = str(twice[0])
    assert cli("local", "status", "--root", root).returncode == 0
    assert "stopped" in cli("local", "down", "--root", root).stdout
    assert cli("local", "status", "--root", root).returncode == 3

