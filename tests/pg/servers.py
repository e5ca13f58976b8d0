"""Extra local servers for the recovery drills: each provisioned like production (`localpg.up`), its own root."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from config.access import AccessModel
from edumatrix_db.database import localpg
from edumatrix_db.ops.ledger import FileLedger
from tests.pg.conftest import provisioned


@dataclass
class Server:
    server: localpg.LocalServer
    connections: dict[str, Any]

    @property
    def admin_uri(self) -> str:
        return str(self.connections["admin"])

    @property
    def mover_uri(self) -> str:
        return str(self.connections["platform"]["data_mover"])

    def uri(self, service: str, kind: str) -> str:
        return str(self.connections["services"][service]["roles"][kind])

    def superuser(self) -> psycopg.Connection[Any]:
        return self.server.superuser()


@contextmanager
def local_server(prefix: str, model: AccessModel) -> Iterator[Server]:
    with provisioned(prefix, model) as (server, _state, connections):
        yield Server(server, connections)


def empty_ledger() -> FileLedger:
    """An erasure ledger with no erasure: what a restore of a service holding personal data needs when the drill
    is not about GDPR (tests/pg/test_gdpr.py restores with erasures)."""
    return FileLedger(Path(tempfile.mkdtemp(prefix="edumatrix-ledger-")) / "ledger.sqlite")
