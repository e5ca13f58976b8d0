"""The pulumi-postgresql provider: never a superuser, TLS verified, pointed at the right server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.service_schema import local_provider, rds_admin_provider
from config.loader import load_stack


class Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.providers: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[Any, Any]]:
        if args.typ == "pulumi:providers:postgresql":
            self.providers.append(dict(args.inputs))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[Any, Any]:
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            return {
                "secretString": json.dumps({"username": "edumatrix_admin", "password": "from-secret"}),
                "arn": args.args["secretId"],
                "id": "x",
                "versionId": "v",
                "versionStages": [],
                "secretBinary": "",
                "createdDate": "",
            }
        return {}


@pytest.fixture
def mocks() -> Mocks:
    m = Mocks()
    pulumi.runtime.set_mocks(m, project="edumatrix-db", stack="test", preview=False)
    return m


def declare(fn: Any) -> None:
    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        return pulumi.Output.from_input(fn().id)

    program()


def test_the_local_provider_uses_the_admin_uri_that_local_up_wrote(mocks: Mocks, tmp_path: Path) -> None:
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
    declare(lambda: local_provider(load_stack("local"), tmp_path))
    (inputs,) = mocks.providers
    assert (inputs["host"], int(inputs["port"]), inputs["username"]) == (
        "127.0.0.1",
        55001,
        "edumatrix_admin",
    )
    assert (inputs["sslmode"], inputs["sslrootcert"]) == ("verify-full", "/x/.local/tls/ca.crt")
    assert inputs["superuser"] == "false"  # provider inputs reach the engine as strings


def test_without_connections_json_the_local_provider_falls_back_to_the_defaults(
    mocks: Mocks, tmp_path: Path
) -> None:
    declare(lambda: local_provider(load_stack("local"), tmp_path))
    (inputs,) = mocks.providers
    assert (inputs["host"], int(inputs["port"])) == ("127.0.0.1", 54329)
    assert inputs["sslrootcert"] == str(tmp_path / ".local" / "tls" / "ca.crt")


def test_the_rds_provider_reads_the_master_password_from_its_secret(mocks: Mocks) -> None:
    declare(
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
    assert inputs["password"]["value"] == "from-secret"  # and marked secret (the envelope)
    assert (inputs["sslmode"], inputs["sslrootcert"]) == ("verify-full", "certs/rds-global-bundle.pem")
