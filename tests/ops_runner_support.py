"""AWS clients for the ops runner's tests: real boto3 clients behind botocore's Stubber (no network)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edumatrix_db.ops.runner import Clients

REGION = "us-east-1"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:edumatrix-test/db/platform/ops-AbCdEf"


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@dataclass
class StubbedClients:
    clients: Clients
    secrets: Stubber
    cloudwatch: Stubber

    def expect_secret(self, secret_string: str, arn: str = SECRET_ARN) -> None:
        self.secrets.add_response(
            "get_secret_value",
            {"ARN": arn, "Name": "edumatrix-test/db/platform/ops", "SecretString": secret_string},
            {"SecretId": arn},
        )

    def expect_metrics(self, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        self.cloudwatch.add_response("put_metric_data", {}, {"Namespace": namespace, "MetricData": metric_data})


@contextmanager
def stubbed_clients() -> Iterator[StubbedClients]:
    """Stubbed Secrets Manager and CloudWatch clients; every expected call must have been made."""
    secrets, cloudwatch = _client("secretsmanager"), _client("cloudwatch")
    with Stubber(secrets) as s, Stubber(cloudwatch) as c:
        yield StubbedClients(Clients(secrets=secrets, cloudwatch=cloudwatch), s, c)
        s.assert_no_pending_responses()
        c.assert_no_pending_responses()


def datum(name: str, value: float, environment: str = "test", unit: str = "Count",
          **dimensions: str) -> dict[str, Any]:
    """A MetricDatum as the runner sends it."""
    dims = [{"Name": "Environment", "Value": environment}]
    dims += [{"Name": k, "Value": v} for k, v in sorted(dimensions.items())]
    return {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit}


def self_signed_ca(path: Path, name: str = "a CA that signed nothing") -> Path:
    """A CA certificate (PEM) written to `path`: a stand-in bundle, or one that never signed the server's."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path
