"""`make runner-package`: the ops runner's Lambda package, `build/ops-runner.zip`, built reproducibly.

    python -m edumatrix_db.ops.runner_package [--output build/ops-runner.zip] [--python-version 3.13]
                                              [--ca-bundle certs/rds-global-bundle.pem] [--fresh]

What goes in (paths in the zip = paths below the Lambda's task root):
- the dependencies of `requirements/ops-runner.txt`, installed for the Lambda (pip `--platform
  manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --implementation cp --python-version X
  --only-binary=:all: --no-deps --require-hashes --no-compile`), cached per requirements/version/platform
  under `build/ops-runner-deps/` (`--fresh` installs anew);
- this project's `config/` (the catalog and the access model) and `edumatrix_db/` without `cli/`,
  `offline/` (it imports Pulumi: the package never contains Pulumi) and this builder;
- the RDS CA bundle at `certs/rds-global-bundle.pem` (TLS verify-full; the build stops without it).

Reproducible: the same inputs give the same bytes. Entries are sorted, carry one fixed timestamp
(1980-01-01, or `SOURCE_DATE_EPOCH`), mode 0644, the same compression (deflate, level 6); `__pycache__`,
`*.pyc` and `bin/` are left out. The zip's base64 SHA-256 is what `components/ops_runner.py` passes as
`source_code_hash`.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from config.loader import PROJECT_ROOT
from config.settings import OPS_RUNNER_RUNTIME

REQUIREMENTS = PROJECT_ROOT / "requirements" / "ops-runner.txt"
DEFAULT_OUTPUT = PROJECT_ROOT / "build" / "ops-runner.zip"
DEPS_CACHE = PROJECT_ROOT / "build" / "ops-runner-deps"
DEFAULT_CA_BUNDLE = PROJECT_ROOT / "certs" / "rds-global-bundle.pem"
CA_BUNDLE_IN_PACKAGE = "certs/rds-global-bundle.pem"
HANDLER = "edumatrix_db.ops.runner.handler"
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_28_x86_64")
# Project code that goes in: (folder, folders below it left out).
PROJECT_PACKAGES: tuple[tuple[str, frozenset[str]], ...] = (
    ("config", frozenset()),
    ("edumatrix_db", frozenset({"cli", "offline"})),
)
PROJECT_DATA_SUFFIXES = (".py", ".yaml")
# Build tooling, and operator commands that need libraries the package does not ship (Rich, Alembic,
# SQLAlchemy): not runtime code of the runner's jobs.
PROJECT_FILES_LEFT_OUT = frozenset({
    "edumatrix_db/ops/runner_package.py",
    "edumatrix_db/ops/migrate.py",
    "edumatrix_db/ops/maintenance.py",
    "edumatrix_db/ops/schemadoc.py",
    "edumatrix_db/ops/health.py",
    "edumatrix_db/ops/verify.py",
    "edumatrix_db/ops/restore.py",
    "edumatrix_db/ops/extract.py",
    "edumatrix_db/ops/traffic.py",
    "edumatrix_db/ops/pooler_tasks.py",  # the cutover's task look-up: an operator command, beside traffic.py
})
EXCLUDED_DIRS = frozenset({"__pycache__", "bin"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
FILE_MODE = 0o100644  # a regular file, rw-r--r--
# zlib's default level: level 9 took 10.6 s here instead of 3.6 s for a 5% smaller zip. The bytes also
# depend on the zlib version: two machines with different zlibs can produce different (equally valid) zips.
COMPRESS_LEVEL = 6


class PackageError(Exception):
    """The package cannot be built as asked; the message says what to do."""


def runtime_python(runtime: str = OPS_RUNNER_RUNTIME) -> str:
    """`python3.13` -> `3.13`."""
    return runtime.removeprefix("python")


@dataclass(frozen=True)
class BuildResult:
    path: Path
    sha256: str
    files: int
    size: int
    python_version: str
    dependencies: tuple[str, ...]

    @property
    def source_code_hash(self) -> str:
        """Base64 of the SHA-256, the form Lambda reports as CodeSha256."""
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


def dependencies_key(requirements: Path, python_version: str) -> str:
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{python_version}|{'|'.join(PLATFORMS)}".encode())
    return f"cp{python_version.replace('.', '')}-{digest.hexdigest()[:16]}"


def install_dependencies(requirements: Path, python_version: str, target: Path) -> None:
    """pip-install the pinned wheels for the Lambda's platform into `target` (never the local platform's)."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(target), "--implementation", "cp", "--python-version", python_version,
               *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
               "--only-binary=:all:", "--no-deps", "--require-hashes", "--no-compile", "-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PackageError(f"pip could not install {requirements} for CPython {python_version}:\n"
                           f"{result.stderr.strip() or result.stdout.strip()}")


def dependencies_dir(requirements: Path, python_version: str, cache: Path, *, fresh: bool = False) -> Path:
    """The installed dependencies, from the cache unless `fresh` (then installed into a new directory)."""
    if fresh:
        target = Path(tempfile.mkdtemp(prefix="ops-runner-deps-"))
        install_dependencies(requirements, python_version, target)
        return target
    final = cache / dependencies_key(requirements, python_version)
    if not final.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="staging-", dir=cache))
        install_dependencies(requirements, python_version, staging)
        staging.rename(final)  # only a complete install becomes the cache entry
    return final


def _files_below(root: Path, excluded: Iterable[str] = ()) -> list[Path]:
    skip = EXCLUDED_DIRS | set(excluded)
    found = []
    for path in root.rglob("*"):
        parts = path.relative_to(root).parts
        if path.is_file() and not skip.intersection(parts[:-1]) and not path.name.endswith(EXCLUDED_SUFFIXES):
            found.append(path)
    return found


def package_entries(project_root: Path, deps: Path, ca_bundle: Path) -> list[tuple[str, Path]]:
    """(name in the zip, file to read), sorted by name; the project's files win over a dependency's."""
    entries: dict[str, Path] = {}
    for path in _files_below(deps):
        entries[path.relative_to(deps).as_posix()] = path
    for package, excluded in PROJECT_PACKAGES:
        folder = project_root / package
        for path in _files_below(folder, excluded):
            name = path.relative_to(project_root).as_posix()
            if path.suffix in PROJECT_DATA_SUFFIXES and name not in PROJECT_FILES_LEFT_OUT:
                entries[name] = path
    entries[CA_BUNDLE_IN_PACKAGE] = ca_bundle
    return sorted(entries.items())


def zip_timestamp() -> tuple[int, int, int, int, int, int]:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return ZIP_EPOCH
    stamp = time.gmtime(max(int(epoch), 315532800))  # not before 1980-01-01, which zip cannot store
    return (stamp.tm_year, stamp.tm_mon, stamp.tm_mday, stamp.tm_hour, stamp.tm_min, stamp.tm_sec & ~1)


def write_zip(entries: Sequence[tuple[str, Path]], output: Path) -> str:
    """Write the entries as a deterministic zip (atomically); returns its SHA-256 (hex)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    stamp = zip_timestamp()
    with zipfile.ZipFile(partial, "w") as archive:
        for name, source in entries:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so external_attr carries the mode
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, source.read_bytes(), compresslevel=COMPRESS_LEVEL)
    partial.replace(output)
    return hashlib.sha256(output.read_bytes()).hexdigest()


def check_ca_bundle(path: Path) -> None:
    if not path.is_file():
        raise PackageError(
            f"{path} is missing: the runner verifies the RDS server certificate with it (verify-full). Download "
            "AWS's RDS global-bundle.pem there (README, 'Environments and pulumi up') or pass --ca-bundle PATH")
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes():
        raise PackageError(f"{path} holds no PEM certificate")


def dependency_names(deps: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name.removesuffix(".dist-info") for p in deps.glob("*.dist-info")))


def build(*, output: Path = DEFAULT_OUTPUT, python_version: str | None = None, ca_bundle: Path = DEFAULT_CA_BUNDLE,
          requirements: Path = REQUIREMENTS, project_root: Path = PROJECT_ROOT, cache: Path = DEPS_CACHE,
          fresh: bool = False) -> BuildResult:
    """Build the package; raises PackageError with the fix when an input is missing."""
    version = python_version or runtime_python()
    check_ca_bundle(ca_bundle)
    deps = dependencies_dir(requirements, version, cache, fresh=fresh)
    try:
        entries = package_entries(project_root, deps, ca_bundle)
        sha256 = write_zip(entries, output)
        names = dependency_names(deps)
    finally:
        if fresh:
            shutil.rmtree(deps, ignore_errors=True)
    return BuildResult(output, sha256, len(entries), output.stat().st_size, version, names)


# The import check runs in a bare interpreter (-S: no site-packages, -E: no PYTHON* variables) that sees only
# the unpacked package, as the Lambda runtime does (plus its boto3, which the runner imports only in a handler).
IMPORT_CHECK = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
import psycopg
from edumatrix_db.ops import runner
modules = []
for package in ("config", "edumatrix_db.ops", "edumatrix_db.database"):
    base = importlib.import_module(package)
    for info in pkgutil.iter_modules(base.__path__, package + "."):
        importlib.import_module(info.name)
        modules.append(info.name)
model = runner.RunnerConfig(environment="check", secret_arn="arn").access_model()
print(json.dumps({"jobs": sorted(runner.JOBS), "psycopg": psycopg.pq.__impl__, "modules": modules,
                  "services": len(model.services),
                  "pulumi": any(m.split(".")[0].startswith("pulumi") for m in sys.modules)}))
"""


def import_check(package: Path, python: str = sys.executable) -> dict[str, object]:
    """Unpack the zip and import the handler (and every shipped module) from it alone."""
    import json

    with tempfile.TemporaryDirectory(prefix="ops-runner-check-") as tmp:
        with zipfile.ZipFile(package) as archive:
            archive.extractall(tmp)
        result = subprocess.run([python, "-S", "-E", "-c", IMPORT_CHECK, tmp], capture_output=True, text=True,
                                check=False, cwd=tmp)
    if result.returncode != 0:
        raise PackageError(f"the package does not import on its own:\n{result.stderr.strip()}")
    found: dict[str, object] = json.loads(result.stdout)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edumatrix_db.ops.runner_package",
                                     description="Build the ops runner's Lambda package reproducibly.")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--python-version", default=runtime_python(),
                        help=f"CPython of the Lambda runtime (default: {runtime_python()}, {OPS_RUNNER_RUNTIME})")
    parser.add_argument("--ca-bundle", type=Path, default=DEFAULT_CA_BUNDLE)
    parser.add_argument("--fresh", action="store_true", help="install the dependencies anew, not from the cache")
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        with console.status(f"building {args.output} for CPython {args.python_version} ..."):
            result = build(output=args.output, python_version=args.python_version, ca_bundle=args.ca_bundle,
                           fresh=args.fresh)
            local = f"{sys.version_info.major}.{sys.version_info.minor}"
            checked = import_check(result.path) if local == result.python_version else None
    except PackageError as exc:
        console.print(f"[red]runner-package:[/red] {exc}")
        return 2
    table = Table(title="ops runner package", show_header=False)
    table.add_row("file", str(result.path))
    table.add_row("handler", HANDLER)
    table.add_row("python", result.python_version)
    table.add_row("files / size", f"{result.files} / {result.size / 1_048_576:.1f} MiB (Lambda: 50 MiB zipped)")
    table.add_row("sha256 (source_code_hash)", result.source_code_hash)
    table.add_row("dependencies", ", ".join(result.dependencies))
    table.add_row("import check", f"jobs {checked['jobs']}" if checked else
                  f"skipped: this interpreter is {local}, the package is for {result.python_version}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
