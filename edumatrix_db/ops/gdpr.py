"""GDPR across the service schemas: erase and export a subject, replay erasures after a restore (docs/gdpr.md).

Personal data of one person lives in several services' schemas and no service may query another's, so the
platform orchestrates: every service holding personal data (config/services.yaml `personal_tables`)
implements `<service>_fn_erase_subject(subject_id uuid) RETURNS jsonb` and
`<service>_fn_export_subject(subject_id uuid) RETURNS jsonb` in its schema, and the orchestrator calls them

- through the service's own `<service>_gdpr` login, which may execute those two functions and nothing else
  (one connection per service: no statement ever names two schemas);
- recording each step in the erasure ledger (`edumatrix_db.ops.ledger`), outside the instance: the request
  before the first call, a start and a confirmation per service. An erasure that failed half-way is resumed
  by the next `erase` of the same subject: services that confirmed are skipped, the others called again
  (the functions are idempotent);
- `export` returns one JSON document with a section per service.

`replay_erasures(ledger, conn, service)` is what a restore calls after a schema (or the instance) came back
from a backup: every erasure the ledger holds for that service is run again, so rows erased after the backup
was taken are erased again before the schema serves traffic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from config.access import AccessModel
from config.naming import contract_functions, schema_name
from edumatrix_db.ops import ledger as ledgers
from edumatrix_db.ops.ledger import ERASE, EXPORT, Ledger, Request

Targets = Mapping[str, str]
"""Service -> libpq connection string of its `<service>_gdpr` login."""


class GdprError(ValueError):
    """A request the orchestrator refuses before calling any service (unknown service, bad subject id)."""


@dataclass
class ServiceStep:
    service: str
    status: str  # done | skipped (confirmed before) | failed
    result: Any = None  # what the function returned (erase: counts per table; export: the section)
    error: str | None = None
    seconds: float = 0.0


@dataclass
class GdprReport:
    action: str
    subject: str
    request_id: str
    resumed: bool
    steps: list[ServiceStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status != "failed" for s in self.steps)

    def document(self) -> dict[str, Any]:
        """The export: one JSON document for the subject, a section per service (and the failures, if any)."""
        return {
            "subject": self.subject,
            "request_id": self.request_id,
            "exported_at": ledgers.now(),
            "services": {s.service: s.result for s in self.steps if s.status == "done"},
            **({"failed": {s.service: s.error for s in self.steps if s.status == "failed"}} if not self.ok else {}),
        }

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action, "subject": self.subject, "request_id": self.request_id,
                "resumed": self.resumed, "ok": self.ok,
                "services": {s.service: {"status": s.status, "error": s.error, "seconds": round(s.seconds, 3),
                                         **({"result": s.result} if self.action == ERASE else {})}
                             for s in self.steps}}


def check_subject(subject: str) -> str:
    """The subject id as the contract takes it: a UUID (the platform-wide id of the person)."""
    try:
        return str(uuid.UUID(subject))
    except ValueError:
        raise GdprError(f"subject {subject!r} is not a UUID: the contract functions take the person's "
                        "platform-wide id (docs/gdpr.md)") from None


def personal_services(model: AccessModel, requested: Sequence[str] | None = None) -> tuple[str, ...]:
    """The services to call: those holding personal data, in catalog order, or the requested subset."""
    holding = tuple(s.service for s in model.services if s.holds_personal_data)
    if not requested:
        return holding
    unknown = [s for s in requested if s not in holding]
    if unknown:
        raise GdprError(f"--services: {', '.join(unknown)} hold no personal data in the catalog (config/services."
                        f"yaml personal_tables); services that do: {', '.join(holding)}")
    return tuple(s for s in holding if s in requested)


def call_contract(conn: psycopg.Connection[Any], service: str, action: str, subject: str) -> Any:
    """`SELECT <service>_schema.<service>_fn_<action>_subject(subject)` in its own transaction."""
    erase_fn, export_fn = contract_functions(service)
    function = erase_fn if action == ERASE else export_fn
    query = sql.SQL("SELECT {}.{}(%s::uuid)").format(sql.Identifier(schema_name(service)), sql.Identifier(function))
    with conn.transaction():
        row = conn.execute(query, [subject]).fetchone()
    return None if row is None else row[0]


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=15)


def _run_step(conninfo: str | None, service: str, action: str, subject: str) -> ServiceStep:
    began = time.monotonic()
    if conninfo is None:
        return ServiceStep(service, "failed", error="no connection for its gdpr login (connections.json or the "
                                                    "stack's secret)")
    try:
        with _connect(conninfo) as conn:
            result = call_contract(conn, service, action, subject)
    except psycopg.Error as exc:
        return ServiceStep(service, "failed", error=str(exc).strip().splitlines()[0],
                           seconds=time.monotonic() - began)
    return ServiceStep(service, "done", result=result, seconds=time.monotonic() - began)


@dataclass(frozen=True)
class Orchestration:
    """What `erase` and `export` need besides the subject."""

    model: AccessModel
    targets: Targets
    ledger: Ledger
    services: Sequence[str] | None = None  # None: every service holding personal data
    requested_by: str = "edumatrix-db"
    progress: Callable[[str], None] = lambda _: None


def erase(subject: str, run: Orchestration) -> GdprReport:
    """Erase the subject in every service holding personal data (or `run.services`), resuming the subject's
    unfinished erasure if there is one. Each service's result is confirmed in the ledger as it completes;
    a failing service is reported and left for the next run, the others still run."""
    subject = check_subject(subject)
    request = ledgers.open_erasure(run.ledger, subject)
    resumed = request is not None
    if request is None:
        request = ledgers.new_request(run.ledger, ERASE, subject, personal_services(run.model, run.services),
                                      run.requested_by)
    return _call_each(GdprReport(ERASE, subject, request.request_id, resumed), request, run)


def export(subject: str, run: Orchestration) -> GdprReport:
    """Export the subject from every service holding personal data (or `run.services`): `report.document()`.
    The ledger records the request and, per service, the number of items of each section (never the data)."""
    subject = check_subject(subject)
    request = ledgers.new_request(run.ledger, EXPORT, subject, personal_services(run.model, run.services),
                                  run.requested_by)
    return _call_each(GdprReport(EXPORT, subject, request.request_id, resumed=False), request, run)


def _call_each(report: GdprReport, request: Request, run: Orchestration) -> GdprReport:
    """Call the request's services one by one, through their own logins; the ledger records each step."""
    for service in request.services:
        if service in request.confirmed:  # an erasure resumed: this service confirmed before
            report.steps.append(ServiceStep(service, "skipped", result=request.confirmed[service]["result"]))
        else:
            ledgers.started(run.ledger, request, service)
            step = _run_step(run.targets.get(service), service, report.action, report.subject)
            if step.status == "done":
                kept = step.result if report.action == ERASE else section_sizes(step.result)
                ledgers.confirmed(run.ledger, request, service, kept)
            else:
                ledgers.failed(run.ledger, request, service, step.error or "")
            report.steps.append(step)
        run.progress(service)
    return report


def section_sizes(section: Any) -> Any:
    """What the ledger keeps of an export: the number of items per key."""
    if isinstance(section, dict):
        return {k: len(v) if isinstance(v, list | dict) else 1 for k, v in section.items()}
    return None


def erasures_to_replay(ledger: Ledger, service: str) -> list[Request]:
    """Every erasure the ledger holds for `service`, oldest first: what a restore of its schema runs again."""
    return [r for r in ledgers.requests(ledger) if r.action == ERASE and service in r.services]


def erase_again(conn: psycopg.Connection[Any], service: str, wanted: Sequence[Request]) -> None:
    """Call the service's erase function for each request's subject on `conn` (a role that may execute it)."""
    for request in wanted:
        call_contract(conn, service, ERASE, request.subject)


def record_replays(ledger: Ledger, wanted: Sequence[Request], service: str) -> None:
    """One `REPLAYED` record per request, once the erasures are committed."""
    for request in wanted:
        ledgers.replayed(ledger, request, service)


def replay_erasures(ledger: Ledger, conn_or_uri: psycopg.Connection[Any] | str, service: str) -> list[Request]:
    """Run again, in the order they were requested, every erasure the ledger holds for `service`: the
    restore procedure calls this after restoring the service's schema (or the instance) and before
    traffic returns (`restore-schema` does it inside its swap transaction). `conn_or_uri` reaches the restored
    database as a role that may execute the service's erase function (its `<service>_gdpr` login). Each
    replay is recorded. Returns the requests replayed."""
    wanted = erasures_to_replay(ledger, service)
    if not wanted:
        return []
    conn = _connect(conn_or_uri) if isinstance(conn_or_uri, str) else conn_or_uri
    try:
        for request in wanted:
            erase_again(conn, service, [request])
            ledgers.replayed(ledger, request, service)
    finally:
        if isinstance(conn_or_uri, str):
            conn.close()
    return wanted


def local_targets(connections: Mapping[str, Any]) -> dict[str, str]:
    """Service -> its gdpr login's URI, from `.local/connections.json`."""
    return {name: entry["roles"]["gdpr"] for name, entry in connections.get("services", {}).items()
            if "gdpr" in entry.get("roles", {})}


def gdpr_secret_name(name_prefix: str, service: str) -> str:
    """The gdpr login's secret, named like every login secret (components/secrets.py `service_secret_name`)."""
    return f"{name_prefix}/db/{service}/gdpr"


def stack_targets(name_prefix: str, services: Sequence[str], secrets_client: Any, ca_bundle: str) -> dict[str, str]:
    """Service -> a libpq connection string for its gdpr login, read from the stack's Secrets Manager secrets
    (`secrets_client`: a boto3 client in the stack's region); TLS verified against the RDS CA bundle."""
    import json

    from psycopg.conninfo import make_conninfo

    out = {}
    for service in services:
        secret = json.loads(secrets_client.get_secret_value(SecretId=gdpr_secret_name(name_prefix, service))
                            ["SecretString"])
        out[service] = make_conninfo(host=secret["host"], port=str(secret["port"]), dbname=secret["dbname"],
                                     user=secret["username"], password=secret["password"], sslmode="verify-full",
                                     sslrootcert=ca_bundle, connect_timeout="15")
    return out
