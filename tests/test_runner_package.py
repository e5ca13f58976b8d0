"""`make runner-package` (edumatrix_db/ops/runner_package.py): the ops runner's Lambda zip is reproducible,
lean, and imports its handler on its own.

The dependencies come from PyPI through pip (pinned with hashes); they are installed once per
requirements/version into build/ops-runner-deps/ and reused, so only the first run here downloads.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import zipfile
from pathlib import Path

import pytest

from config.settings import OPS_RUNNER_RUNTIME
from edumatrix_db.ops import runner_package as rp
from tests.ops_runner_support import self_signed_ca

LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return self_signed_ca(tmp_path_factory.mktemp("ca") / "bundle.pem", "stand-in RDS CA bundle")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, ca_bundle: Path) -> rp.BuildResult:
    """The package built for this interpreter's CPython (so it can be imported here)."""
    return rp.build(output=tmp_path_factory.mktemp("pkg") / "ops-runner.zip", python_version=LOCAL_PYTHON,
                    ca_bundle=ca_bundle)


def test_the_same_inputs_give_the_same_bytes_whatever_the_files_times_and_paths(
        built: rp.BuildResult, ca_bundle: Path, tmp_path: Path) -> None:
    """Rebuilt from a copy of the installed dependencies in another directory, every file touched."""
    key = rp.dependencies_key(rp.REQUIREMENTS, LOCAL_PYTHON)
    copy = shutil.copytree(rp.DEPS_CACHE / key, tmp_path / "cache" / key)
    later = time.time() + 3600
    for path in copy.rglob("*"):
        os.utime(path, (later, later))
    again = rp.build(output=tmp_path / "elsewhere" / "again.zip", python_version=LOCAL_PYTHON,
                     ca_bundle=ca_bundle, cache=tmp_path / "cache")
    assert again.sha256 == built.sha256
    assert again.source_code_hash == built.source_code_hash


def test_the_package_imports_the_handler_and_every_shipped_module_without_site_packages(
        built: rp.BuildResult) -> None:
    checked = rp.import_check(built.path)
    jobs, modules = checked["jobs"], checked["modules"]  # JSON lists of names
    assert isinstance(jobs, list)
    assert isinstance(modules, list)
    assert {"ping", "audit"} <= set(jobs)
    assert checked["psycopg"] == "binary"  # the manylinux wheel's libpq, not a pure-Python fallback
    assert checked["services"] == 9  # config/ and its catalog (services.yaml) are in
    assert "edumatrix_db.ops.runner" in modules
    assert checked["pulumi"] is False


def test_entries_are_sorted_files_with_one_timestamp_and_mode(built: rp.BuildResult) -> None:
    with zipfile.ZipFile(built.path) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {rp.ZIP_EPOCH}
    assert {i.external_attr >> 16 for i in infos} == {rp.FILE_MODE}
    assert not [n for n in names if n.endswith("/")]


def test_the_package_is_lean_no_bytecode_pulumi_tooling_or_boto3(built: rp.BuildResult) -> None:
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
    tops = {n.split("/")[0] for n in names}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [t for t in tops if t.startswith(("pulumi", "boto3", "botocore"))]
    assert not [n for n in names if n.startswith(("edumatrix_db/cli/", "edumatrix_db/offline/"))]
    assert "edumatrix_db/ops/runner_package.py" not in names
    assert {"edumatrix_db/ops/runner.py", "config/services.yaml", "certs/rds-global-bundle.pem"} <= set(names)
    assert built.size < 50 * 1024 * 1024  # Lambda's limit for a zip uploaded directly


def test_the_ca_bundle_is_shipped_as_given(built: rp.BuildResult, ca_bundle: Path) -> None:
    with zipfile.ZipFile(built.path) as archive:
        assert archive.read(rp.CA_BUNDLE_IN_PACKAGE) == ca_bundle.read_bytes()


def test_a_missing_ca_bundle_stops_the_build_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(rp.PackageError, match=r"global-bundle\.pem there .* or pass --ca-bundle PATH"):
        rp.build(output=tmp_path / "x.zip", ca_bundle=tmp_path / "absent.pem")
    assert not (tmp_path / "x.zip").exists()


def test_the_runtime_build_ships_the_lambda_runtimes_cpython_wheels(ca_bundle: Path, tmp_path: Path) -> None:
    """The default build targets the function's runtime (python3.13): its compiled modules are cp313 ones."""
    result = rp.build(output=tmp_path / "ops-runner.zip", ca_bundle=ca_bundle)
    assert result.python_version == rp.runtime_python(OPS_RUNNER_RUNTIME) == "3.13"
    with zipfile.ZipFile(result.path) as archive:
        compiled = [n for n in archive.namelist() if n.endswith(".so") and ".cpython-" in n]
    assert compiled
    assert all(".cpython-313-x86_64-linux-gnu.so" in n for n in compiled), compiled


def test_source_date_epoch_sets_the_timestamp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # 2023-11-14 22:13:20 UTC
    assert rp.zip_timestamp() == (2023, 11, 14, 22, 13, 20)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # before 1980: clamped to what zip can store
    assert rp.zip_timestamp() == rp.ZIP_EPOCH
