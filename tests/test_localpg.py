"""Finding PostgreSQL binaries and laying out `.local/` (no server is started here)."""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from edumatrix_db.database import localpg


def fake_install(root: Path, version: str) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for name in ("pg_ctl", "initdb"):
        (bindir / name).write_text("#!/bin/sh\nexit 0\n")
        (bindir / name).chmod(0o755)
    postgres = bindir / "postgres"
    postgres.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}.3'\n")
    postgres.chmod(postgres.stat().st_mode | stat.S_IEXEC)
    return bindir


def test_the_highest_debian_version_wins_when_nothing_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDUMATRIX_PG_BINDIR", raising=False)
    for v in ("13", "16", "15"):
        fake_install(tmp_path, v)
    found = localpg.find_binaries(path=str(tmp_path / "empty"), debian_root=tmp_path, use_pgserver=False)
    assert (found.bindir, found.major, found.source) == (tmp_path / "16" / "bin", 16, str(tmp_path))


def test_binaries_on_path_win_over_the_debian_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDUMATRIX_PG_BINDIR", raising=False)
    fake_install(tmp_path / "debian", "16")
    on_path = fake_install(tmp_path / "custom", "14")
    found = localpg.find_binaries(path=str(on_path), debian_root=tmp_path / "debian", use_pgserver=False)
    assert (found.bindir, found.source) == (on_path, "PATH")


def test_no_server_anywhere_is_an_error_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EDUMATRIX_PG_BINDIR", raising=False)
    with pytest.raises(localpg.LocalServerError, match="no PostgreSQL server found"):
        localpg.find_binaries(path=str(tmp_path), debian_root=tmp_path, use_pgserver=False)


def test_the_local_ca_signs_a_server_certificate_for_localhost_and_127_0_0_1(tmp_path: Path) -> None:
    from cryptography import x509

    server = localpg.LocalServer(tmp_path)
    server.base.mkdir()
    server._certificates()
    ca = x509.load_pem_x509_certificate((server.tls / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((server.tls / "server.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(n.value) for n in san} == {"localhost", "127.0.0.1"}
    assert stat.S_IMODE((server.tls / "server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((server.tls / "ca.key").stat().st_mode) == 0o600


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A world-traversable directory directly under /tmp (pytest's own tmp root is 0700 for root)."""
    path = Path(tempfile.mkdtemp(prefix="edumatrix-reach-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_a_checkout_the_server_user_cannot_enter_is_refused_with_the_fix(
    open_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As root the server runs as `postgres`; a 0700 parent (e.g. /root) would fail deep inside initdb."""
    closed = open_dir / "closed"
    closed.mkdir(mode=0o700)
    server = localpg.LocalServer(root=closed / "checkout")
    monkeypatch.setattr(server, "_server_ids", lambda: (65534, 65534))  # not the owner of `closed`
    with pytest.raises(localpg.LocalServerError, match=r"cannot enter .*closed \(mode 0700\).*chmod o\+x"):
        server.start()
    assert not (closed / "checkout" / ".local").exists()


def test_a_reachable_checkout_passes_the_reachability_check(open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = localpg.LocalServer(root=open_dir / "checkout")
    monkeypatch.setattr(server, "_server_ids", lambda: (65534, 65534))
    server._check_server_can_reach_base()


def test_without_any_system_server_the_pgserver_wheel_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make up` installs the `local` extra, so a machine without PostgreSQL still gets a (degraded) server."""
    monkeypatch.delenv("EDUMATRIX_PG_BINDIR", raising=False)
    found = localpg.find_binaries(path=str(tmp_path), debian_root=tmp_path)
    assert found.source == "pgserver"
    assert (found.bindir / "postgres").is_file()
    assert not found.has_ssl()  # the wheel has no TLS: `local up` says so


def test_private_files_are_created_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "connections.json"
    localpg.write_private(path, "{}\n")
    assert (stat.S_IMODE(path.stat().st_mode), path.read_text()) == (0o600, "{}\n")


def test_a_new_private_file_is_private_from_its_creation_not_only_after_a_chmod(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nobody may read the file between its creation and the chmod: the mode is the creation's own."""
    import os

    monkeypatch.setattr(os, "fchmod", lambda fd, mode: None)  # only what os.open itself set remains
    path = tmp_path / "connections.json"
    umask = os.umask(0)  # the creation mode alone decides, not a umask that happens to be strict
    try:
        localpg.write_private(path, "{}\n")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rewriting_a_private_file_takes_away_what_others_could_read(tmp_path: Path) -> None:
    path = tmp_path / "connections.json"
    path.write_text("old, longer content")
    path.chmod(0o644)
    localpg.write_private(path, "new")
    assert (stat.S_IMODE(path.stat().st_mode), path.read_text()) == (0o600, "new")
