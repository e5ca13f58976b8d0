"""The smallest valid dev stack file's `config:` mapping, which the configuration-error tests break one key at a
time."""

from __future__ import annotations

from typing import Any

DEV: dict[str, Any] = {
    "aws:region": "us-east-1",
    "edumatrix-db:environment": "dev",
    "edumatrix-db:network": {"vpcId": "vpc-0c1b2c3d4e5f60718",
                             "subnetIds": ["subnet-0c1b2c3d4e5f60001", "subnet-0c1b2c3d4e5f60002"],
                             "allowedCidrs": ["10.20.0.0/16"]},
}
