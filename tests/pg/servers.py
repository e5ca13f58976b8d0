"""Extra local servers for the recovery drills: each provisioned like production (`localpg.up`), its own root."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from config.access import AccessModel
from edumatrix_db.database import localpg
from tests.pg.conftest import free_port, scratch_root


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
    root = scratch_root(prefix)
    server = None
    try:
        try:
            server, _state, _notes = localpg.up(root, model, preferred_port=free_port())
        except localpg.LocalServerError as exc:
            pytest.fail(f"the recovery drills need a PostgreSQL server and could not start one: {exc}")
        yield Server(server, json.loads(server.connections_file.read_text()))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
