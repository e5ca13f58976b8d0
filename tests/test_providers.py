"""The pulumi-postgresql provider: never a superuser, TLS verified, pointed at the right server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.providers import local_provider, rds_admin_provider
from config.loader import load_stack
from edumatrix_db.offline.engine import run_program
from edumatrix_db.offline.mocks import mock_master_password


class Providers:
    """The postgresql providers a program declared, recorded by the project's one engine."""

    def __init__(self) -> None:
        self.providers: list[dict[str, Any]] = []
        self.props: list[dict[str, Any]] = []

    def declare(self, fn: Any) -> None:
        recording = run_program("local", {}, settings=load_stack("local"), program=fn)
        found = recording.of_type("pulumi:providers:postgresql")
        self.providers = [r.inputs for r in found]
        self.props = [r.props for r in found]


@pytest.fixture
def mocks() -> Providers:
    return Providers()


def test_the_local_provider_uses_the_admin_uri_that_local_up_wrote(mocks: Providers, tmp_path: Path) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "connections.json").write_text(
        json.dumps(
            {
                "admin": "postgresql://edumatrix_admin:s3cret@127.0.0.1:55001/edumatrix?sslmode=verify-full"
                "&sslrootcert=/x/.local/tls/ca.crt",
                "database": "edumatrix",
                "services": {},
            }
        )
    )
    mocks.declare(lambda: local_provider(load_stack("local"), tmp_path))
    (inputs,) = mocks.providers
    assert (inputs["host"], int(inputs["port"]), inputs["username"]) == (
        "127.0.0.1",
        55001,
        "edumatrix_admin",
    )
    assert (inputs["sslmode"], inputs["sslrootcert"]) == ("verify-full", "/x/.local/tls/ca.crt")
    assert inputs["superuser"] == "false"  # provider inputs reach the engine as strings


def test_without_connections_json_the_local_provider_falls_back_to_the_defaults(
    mocks: Providers, tmp_path: Path
) -> None:
    mocks.declare(lambda: local_provider(load_stack("local"), tmp_path))
    (inputs,) = mocks.providers
    assert (inputs["host"], int(inputs["port"])) == ("127.0.0.1", 54329)
    assert inputs["sslrootcert"] == ".local/tls/ca.crt"  # relative to the project: every checkout plans the same


def test_the_rds_provider_reads_the_master_password_from_its_secret(mocks: Providers) -> None:
    mocks.declare(
        lambda: rds_admin_provider(
            "pg",
            address="edumatrix-dev.abc.us-east-1.rds.amazonaws.com",
            port=5432,
            master_username="edumatrix_admin",
            master_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:m",
            database="edumatrix",
            rds_ca_bundle="certs/rds-global-bundle.pem",
        )
    )
    (inputs,) = mocks.providers
    assert inputs["host"] == "edumatrix-dev.abc.us-east-1.rds.amazonaws.com"
    assert inputs["password"] == "[secret]"  # marked secret on its way to the engine
    assert mocks.props[0]["password"] == mock_master_password("arn:aws:secretsmanager:us-east-1:1:secret:m")
    assert (inputs["sslmode"], inputs["sslrootcert"]) == ("verify-full", "certs/rds-global-bundle.pem")
