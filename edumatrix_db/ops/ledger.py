"""The erasure ledger: who asked to erase whom, when, and which services confirmed (docs/gdpr.md).

It lives outside the database instance, so that it survives a restore of a schema or of the whole instance
(backups and point-in-time recovery keep erased rows for up to 30 days): the restore procedure replays it
(`edumatrix_db.ops.gdpr.replay_erasures`). Two stores, one interface:

- `FileLedger`: an SQLite file (local server and tests: `.local/gdpr-ledger.sqlite`, outside the server's
  data directory, so `local down`, a restore or a new data directory leave it alone);
- `DynamoLedger`: the DynamoDB table the platform declares on AWS (`components/erasure_ledger.py`:
  encrypted with the platform CMK, point-in-time recovery, deletion protection).

Records are appended, never changed: a request (`REQUEST`), then per service and attempt a start
(`STARTED#<service>#<time>`) and a failure (`FAILED#<service>#<time>`, with the error) or the one
confirmation (`CONFIRMED#<service>`, with the counts the service's function returned), and one record per
replay (`REPLAYED#<service>#<time>`). The subject id is kept: proving an erasure and replaying it after a
restore need it (it is the platform-wide pseudonymous id, never a name or an address).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

ERASE = "erase"
EXPORT = "export"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Request:
    """One erase or export request and what each service did with it."""

    request_id: str
    action: str  # ERASE | EXPORT
    subject: str
    services: tuple[str, ...]
    requested_at: str
    requested_by: str
    confirmed: dict[str, dict[str, Any]] = field(default_factory=dict)  # service -> {"at", "result"}
    replayed: dict[str, list[str]] = field(default_factory=dict)  # service -> times

    @property
    def remaining(self) -> tuple[str, ...]:
        return tuple(s for s in self.services if s not in self.confirmed)

    @property
    def complete(self) -> bool:
        return not self.remaining


class Ledger(Protocol):
    """Where requests and confirmations are kept (append-only)."""

    def append(self, request_id: str, record: str, body: dict[str, Any]) -> None: ...

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every (request_id, record, body), in no particular order."""
        ...


def new_request(ledger: Ledger, action: str, subject: str, services: Sequence[str], requested_by: str) -> Request:
    request = Request(str(uuid.uuid4()), action, subject, tuple(services), now(), requested_by)
    ledger.append(request.request_id, "REQUEST", {
        "action": action, "subject": subject, "services": list(services), "requested_at": request.requested_at,
        "requested_by": requested_by,
    })
    return request


def requests(ledger: Ledger) -> list[Request]:
    """Every request with its confirmations and replays, oldest first."""
    heads: dict[str, dict[str, Any]] = {}
    confirmed: dict[str, dict[str, dict[str, Any]]] = {}
    replayed: dict[str, dict[str, list[str]]] = {}
    for request_id, record, body in ledger.records():
        kind, _, rest = record.partition("#")
        if kind == "REQUEST":
            heads[request_id] = body
        elif kind == "CONFIRMED":
            confirmed.setdefault(request_id, {})[rest] = {"at": body["at"], "result": body.get("result")}
        elif kind == "REPLAYED":
            service = rest.partition("#")[0]
            replayed.setdefault(request_id, {}).setdefault(service, []).append(body["at"])
    out = [
        Request(rid, h["action"], h["subject"], tuple(h["services"]), h["requested_at"], h["requested_by"],
                confirmed.get(rid, {}), {s: sorted(t) for s, t in replayed.get(rid, {}).items()})
        for rid, h in heads.items()
    ]
    return sorted(out, key=lambda r: (r.requested_at, r.request_id))


def open_erasure(ledger: Ledger, subject: str) -> Request | None:
    """The subject's oldest erasure that some service has not confirmed yet (resumed instead of restarted)."""
    return next((r for r in requests(ledger) if r.action == ERASE and r.subject == subject and not r.complete),
                None)


def started(ledger: Ledger, request: Request, service: str) -> None:
    at = now()
    ledger.append(request.request_id, f"STARTED#{service}#{at}", {"at": at})


def failed(ledger: Ledger, request: Request, service: str, error: str) -> None:
    at = now()
    ledger.append(request.request_id, f"FAILED#{service}#{at}", {"at": at, "error": error})


def confirmed(ledger: Ledger, request: Request, service: str, result: Any) -> None:
    ledger.append(request.request_id, f"CONFIRMED#{service}", {"at": now(), "result": result})


def replayed(ledger: Ledger, request: Request, service: str) -> None:
    at = now()
    ledger.append(request.request_id, f"REPLAYED#{service}#{at}", {"at": at})


class FileLedger:
    """The ledger in an SQLite file: one row per record, the primary key refuses a record written twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS ledger (request_id TEXT NOT NULL, record TEXT NOT NULL, "
                       "body TEXT NOT NULL, PRIMARY KEY (request_id, record))")
        path.chmod(0o600)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def append(self, request_id: str, record: str, body: dict[str, Any]) -> None:
        with self._connect() as db:  # commits on success
            db.execute("INSERT INTO ledger VALUES (?, ?, ?)", (request_id, record, json.dumps(body)))

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        with self._connect() as db:
            rows = db.execute("SELECT request_id, record, body FROM ledger").fetchall()
        for request_id, record, body in rows:
            yield request_id, record, json.loads(body)


class DynamoLedger:
    """The ledger in the platform's DynamoDB table (`components/erasure_ledger.py`): partition key
    `request_id`, sort key `record`; a conditional put refuses to overwrite a record."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client  # a boto3 DynamoDB client

    def append(self, request_id: str, record: str, body: dict[str, Any]) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={"request_id": {"S": request_id}, "record": {"S": record}, "body": {"S": json.dumps(body)}},
            ConditionExpression="attribute_not_exists(request_id)",
        )

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        kwargs: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                yield item["request_id"]["S"], item["record"]["S"], json.loads(item["body"]["S"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
