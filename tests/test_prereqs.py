"""The prerequisite step of `make up` / `make test` (scripts/prereqs.py): install as root, else one message."""

from __future__ import annotations

import importlib.util
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "prereqs.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prereqs", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["prereqs"] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


prereqs = _load()
# scripts/prereqs.py is a script loaded at run time, not an importable package: its Layout is no type here
LayoutFinder = Callable[[], Any]


def _executable(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _fake_postgres_15(root: Path, *, extensions: tuple[str, ...]) -> tuple[Path, Path]:
    """A Debian-shaped PostgreSQL 15 under `root` (no pg_config: the Debian default directories apply)."""
    bindir = root / "lib" / "postgresql" / "15" / "bin"
    for name in ("initdb", "pg_ctl"):
        _executable(bindir / name, "exit 0\n")
    _executable(bindir / "postgres", 'echo "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"\n')
    share = root / "share" / "postgresql"
    for name in extensions:
        _add_extension(bindir.parent / "lib", share / "15" / "extension", name)
    return root / "lib" / "postgresql", share


def _add_extension(pkglibdir: Path, extdir: Path, name: str) -> None:
    pkglibdir.mkdir(parents=True, exist_ok=True)
    extdir.mkdir(parents=True, exist_ok=True)
    (pkglibdir / f"{name}.so").write_text("")
    (extdir / f"{name}.control").write_text("")


@pytest.fixture
def without_pgaudit(tmp_path: Path) -> LayoutFinder:
    debian_root, share_root = _fake_postgres_15(tmp_path, extensions=("pgcrypto", "pg_stat_statements", "pg_cron"))
    return lambda: prereqs.find_layout(path="", debian_root=debian_root, share_root=share_root)


def _fake_apt(tmp_path: Path, *, installs_into: Path | None, fails: bool = False) -> tuple[Path, Path]:
    log = tmp_path / "apt.log"
    body = f'echo "$@" >> {log}\n'
    if fails:
        body += 'case "$1" in install) exit 100;; esac\n'
    if installs_into is not None:
        lib, ext = installs_into / "lib" / "postgresql" / "15" / "lib", installs_into / "share" / "postgresql" / "15"
        files = f"{lib}/pgaudit.so {ext}/extension/pgaudit.control"
        body += f'case "$1" in install) mkdir -p {ext}/extension && touch {files};; esac\n'
    return _executable(tmp_path / "bin" / "apt-get", body), log


def test_finds_postgres_15_in_debians_directory(without_pgaudit: LayoutFinder) -> None:
    layout = without_pgaudit()
    assert layout.bindir is not None
    assert layout.bindir.parts[-3:] == ("postgresql", "15", "bin")


def test_a_missing_extension_names_its_debian_package(without_pgaudit: LayoutFinder) -> None:
    assert prereqs.packages_of(prereqs.missing(without_pgaudit())) == ["postgresql-15-pgaudit"]


def test_no_postgres_at_all_asks_for_the_server_package(tmp_path: Path) -> None:
    layout = prereqs.find_layout(path="", debian_root=tmp_path / "none", share_root=tmp_path / "none")
    assert "postgresql-15" in prereqs.packages_of(prereqs.missing(layout))


def test_non_root_stops_with_the_one_command_to_run_and_installs_nothing(
        without_pgaudit: LayoutFinder, tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path, installs_into=None)
    said: list[str] = []
    rc = prereqs.main([], layout_finder=without_pgaudit, is_root=lambda: False, apt_get=str(apt), out=said.append)
    assert rc == 1
    assert len(said) == 1
    assert ("Run: sudo apt-get update && sudo apt-get install -y --no-install-recommends postgresql-15-pgaudit"
            in said[0])
    assert not log.exists()


def test_root_with_apt_installs_exactly_the_missing_packages(without_pgaudit: LayoutFinder, tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path, installs_into=tmp_path)
    rc = prereqs.main([], layout_finder=without_pgaudit, is_root=lambda: True, apt_get=str(apt), out=lambda _: None)
    assert rc == 0
    assert log.read_text().splitlines() == [
        "update -qq",
        "install -y -qq --no-install-recommends postgresql-15-pgaudit",
    ]


def test_root_fails_when_the_install_fails(without_pgaudit: LayoutFinder, tmp_path: Path) -> None:
    apt, _ = _fake_apt(tmp_path, installs_into=None, fails=True)
    said: list[str] = []
    rc = prereqs.main([], layout_finder=without_pgaudit, is_root=lambda: True, apt_get=str(apt), out=said.append)
    assert rc == 1
    assert "failed" in said[-1]


def test_root_fails_when_the_package_did_not_provide_the_file(without_pgaudit: LayoutFinder, tmp_path: Path) -> None:
    apt, _ = _fake_apt(tmp_path, installs_into=None)
    said: list[str] = []
    rc = prereqs.main([], layout_finder=without_pgaudit, is_root=lambda: True, apt_get=str(apt), out=said.append)
    assert rc == 1
    assert "still missing" in said[-1]


def test_check_only_never_installs_even_as_root(without_pgaudit: LayoutFinder, tmp_path: Path) -> None:
    apt, log = _fake_apt(tmp_path, installs_into=tmp_path)
    rc = prereqs.main(["--check-only"], layout_finder=without_pgaudit, is_root=lambda: True, apt_get=str(apt),
                      out=lambda _: None)
    assert rc == 1
    assert not log.exists()


def test_this_machine_has_every_prerequisite() -> None:
    """`make test` runs the step first; running pytest alone on an incomplete machine fails here, loudly."""
    absent = prereqs.missing(prereqs.find_layout())
    command = prereqs.install_command(prereqs.packages_of(absent), sudo=True)
    assert absent == [], f"run `make prereqs` as root, or: {command}"


def test_no_javac_asks_for_the_jdk_the_events_plugin_builds_with(
        without_pgaudit: LayoutFinder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert "openjdk-17-jdk-headless" in prereqs.packages_of(prereqs.missing(without_pgaudit()))


def test_missing_java_libraries_name_their_debian_packages(
        without_pgaudit: LayoutFinder, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(prereqs, "JAVA_LIBRARIES", tmp_path / "no-jars")
    packages = prereqs.packages_of(prereqs.missing(without_pgaudit()))
    assert {"libavro-java", "libjackson2-databind-java", "libpostgresql-jdbc-java"} <= set(packages)
