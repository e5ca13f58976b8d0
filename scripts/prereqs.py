#!/usr/bin/env python3
"""The system packages `make up` and `make test` need, checked (and installed as root) before anything else.

Runs with the machine's python3 and its standard library only: it comes before the virtualenv exists.

- Everything present: prints one line, exit 0.
- Something missing, running as root where `apt-get` exists: `apt-get update` then `apt-get install` of
  exactly the missing Debian packages, then checks again (exit 1 if still missing).
- Something missing otherwise: one message naming the exact command to run, exit 1, before any test.

The list is the one place the project's system packages are named; a later feature that needs another
(PgBouncer, pg_cron) adds a `Requirement` here and nothing else.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

PG_MAJOR = 15
"""The engine major of every RDS instance the platform declares (config: instance.engineVersion)."""
JAVA_LIBRARIES = Path("/usr/share/java")
"""Where Debian's Java library packages put their jars."""


@dataclass(frozen=True)
class Layout:
    """Where the PostgreSQL 15 installation keeps its binaries, libraries and extension files."""

    bindir: Path | None
    pkglibdir: Path | None
    sharedir: Path | None


def _major(postgres: Path) -> int | None:
    try:
        out = subprocess.run([str(postgres), "--version"], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out.stdout)
    return int(match[1]) if out.returncode == 0 and match else None


def _pg_config(bindir: Path, flag: str) -> Path | None:
    pg_config = bindir / "pg_config"
    if not pg_config.exists():
        return None
    out = subprocess.run([str(pg_config), flag], capture_output=True, text=True, check=False)
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def find_layout(*, path: str | None = None, debian_root: Path = Path("/usr/lib/postgresql"),
                share_root: Path = Path("/usr/share/postgresql")) -> Layout:
    """PostgreSQL 15 as `edumatrix_db.database.localpg` finds servers: PATH first, then Debian's directory."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl", path=path)
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.append(debian_root / str(PG_MAJOR) / "bin")
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "postgres").exists() and _major(bindir / "postgres") == PG_MAJOR:
            pkglibdir = _pg_config(bindir, "--pkglibdir") or bindir.parent / "lib"
            sharedir = _pg_config(bindir, "--sharedir") or share_root / str(PG_MAJOR)
            return Layout(bindir, pkglibdir, sharedir)
    return Layout(None, None, None)


def _extension(name: str) -> Callable[[Layout], bool]:
    def present(layout: Layout) -> bool:
        return (layout.pkglibdir is not None and (layout.pkglibdir / f"{name}.so").exists()
                and layout.sharedir is not None and (layout.sharedir / "extension" / f"{name}.control").exists())
    return present


def _pgbouncer(_: Layout) -> bool:
    return bool(shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/local/sbin"))


def _javac(_: Layout) -> bool:
    return bool(shutil.which("javac")) and bool(shutil.which("jar"))


def _java_library(name: str) -> Callable[[Layout], bool]:
    """A jar of Debian's Java libraries (`make events-plugin` compiles against them)."""
    return lambda _: (JAVA_LIBRARIES / f"{name}.jar").is_file()


def _python_venv(_: Layout) -> bool:
    # Debian's python3 ships venv without ensurepip until python3-venv is installed.
    probe = subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True, check=False)
    return probe.returncode == 0


@dataclass(frozen=True)
class Requirement:
    package: str
    """The Debian package that provides it."""
    what: str
    present: Callable[[Layout], bool]


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("python3-venv", "Python's venv module with ensurepip (for .venv)", _python_venv),
    Requirement(f"postgresql-{PG_MAJOR}", f"PostgreSQL {PG_MAJOR} server binaries (initdb, postgres, pg_ctl)",
                lambda layout: layout.bindir is not None),
    Requirement(f"postgresql-{PG_MAJOR}", "pgcrypto (column encryption, spec 2)", _extension("pgcrypto")),
    Requirement(f"postgresql-{PG_MAJOR}", "pg_stat_statements (query metrics)", _extension("pg_stat_statements")),
    Requirement(f"postgresql-{PG_MAJOR}-pgaudit", "pgaudit (audit logging, spec 4.A)", _extension("pgaudit")),
    Requirement(f"postgresql-{PG_MAJOR}-cron", "pg_cron (scheduled maintenance, spec 5.B)", _extension("pg_cron")),
    Requirement("pgbouncer", "PgBouncer (the local pooler, like RDS Proxy in production)", _pgbouncer),
    # `make events-plugin` and its tests (docs/event-backbone.md): the schema naming class and TLS factory
    Requirement("openjdk-17-jdk-headless", "javac and jar (the events plugin's jar)", _javac),
    Requirement("libavro-java", "Apache Avro's classes (the events plugin compiles against them)",
                _java_library("avro")),
    Requirement("libjackson2-databind-java", "Jackson's JSON classes (the events plugin compiles against them)",
                _java_library("jackson-databind")),
    Requirement("libpostgresql-jdbc-java", "the PostgreSQL JDBC driver (the events plugin's TLS test)",
                _java_library("postgresql")),
)


def missing(layout: Layout, requirements: Sequence[Requirement] = REQUIREMENTS) -> list[Requirement]:
    return [r for r in requirements if not r.present(layout)]


def packages_of(requirements: Sequence[Requirement]) -> list[str]:
    return list(dict.fromkeys(r.package for r in requirements))


def install_command(packages: Sequence[str], *, sudo: bool) -> str:
    prefix = "sudo " if sudo else ""
    return f"{prefix}apt-get update && {prefix}apt-get install -y --no-install-recommends {' '.join(packages)}"


def main(argv: Sequence[str] | None = None, *, layout_finder: Callable[[], Layout] = find_layout,
         is_root: Callable[[], bool] = lambda: os.geteuid() == 0,
         apt_get: str | None = None, out: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-only", action="store_true", help="never install, only report")
    args = parser.parse_args(argv)

    absent = missing(layout_finder())
    if not absent:
        out("prerequisites: PostgreSQL 15 with pgaudit, pg_cron, pgcrypto, pg_stat_statements, PgBouncer, "
            "python3-venv, a JDK with Avro, Jackson and pgjdbc are present")
        return 0
    packages = packages_of(absent)
    apt = apt_get or shutil.which("apt-get")
    if is_root() and apt and not args.check_only:
        out(f"prerequisites: installing {' '.join(packages)} (missing: {'; '.join(r.what for r in absent)})")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", "--no-install-recommends", *packages]):
            if subprocess.run(command, env=env, check=False).returncode != 0:
                out(f"prerequisites: `{' '.join(command)}` failed; fix the package source and run it again")
                return 1
        still = missing(layout_finder())
        if still:
            out(f"prerequisites: still missing after install: {'; '.join(r.what for r in still)}")
            return 1
        return 0
    out(
        f"edumatrix-db: missing system packages: {'; '.join(r.what for r in absent)}.\n"
        f"Run: {install_command(packages, sudo=not is_root())}"
        + ("" if apt else f"\n(no apt-get here: install your system's equivalents of {' '.join(packages)})")
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
