"""The platform's ops runner: one AWS Lambda handler for every scheduled or event-triggered job that has to
run inside the VPC, next to the database (the audit of issue 11, the per-minute metrics of issue 14, the
restore-test validation of issue 15).

One event shape reaches the handler, whoever sends it:

    {"job": "audit"}                                   EventBridge Scheduler (the schedule's input)
    {"job": "restore-validate", "event": {...}}        an EventBridge rule; its target's input transformer
                                                       wraps the matched event (`<aws.events.event.json>`)

A job is a function registered with `@job("name")`; it receives a `JobContext` and returns a small JSON
summary (the Lambda's result, also logged). Through the context it opens its database connection and adds
CloudWatch datapoints; the handler publishes them after the job returned.

- The connection uses the platform login whose credentials are in one Secrets Manager secret
  (`EDUMATRIX_DB_SECRET_ARN`; JSON with `username` and `password`, and `host`/`port`/`dbname` unless the
  environment names them), TLS `verify-full` against the RDS CA bundle shipped in the package
  (`certs/rds-global-bundle.pem`, or `EDUMATRIX_DB_SSLROOTCERT`), read-only sessions unless a job says
  otherwise, a statement timeout that ends before the Lambda's own timeout.
- Metrics go to one namespace (`EDUMATRIX_METRICS_NAMESPACE`, default `EduMatrix/Database`), each datapoint
  with an `Environment` dimension, plus `Rule` or `Service` where a figure belongs to one.
- boto3 is imported only when the handler makes its clients: the Lambda runtime provides it, and the
  package imports without it (`make runner-package` checks that).

Adding a job (another issue): write `@job("name") def name(ctx: JobContext) -> dict` in this module (or in
a module imported at the end of it), then route a schedule or an event to it in `components/platform.py`
(README, "The ops runner").
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from config.access import AccessModel, build_access_model
from config.catalog import load_catalog
from config.monitoring import METRICS_NAMESPACE

NAMESPACE = METRICS_NAMESPACE
# PutMetricData takes at most 1000 metrics per request (CloudWatch API reference, PutMetricData).
PUT_METRIC_DATA_BATCH = 1000
# The RDS CA bundle, at the same place in the package as in the checkout (certs/ beside the packages).
PACKAGED_CA_BUNDLE = Path(__file__).resolve().parents[2] / "certs" / "rds-global-bundle.pem"
CONNECT_TIMEOUT_SECONDS = 10
# A statement must end this long before the Lambda's own timeout, so the job can still report.
STATEMENT_MARGIN_MS = 5_000
DEFAULT_STATEMENT_TIMEOUT_MS = 60_000

log = logging.getLogger("edumatrix_db.ops.runner")
log.setLevel(logging.INFO)


class RunnerError(Exception):
    """A problem with the event or the runner's configuration: the invocation fails with this message."""


# -- configuration -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunnerConfig:
    """What the Lambda's environment tells the runner (set by `components/ops_runner.py`)."""

    environment: str
    secret_arn: str
    namespace: str = NAMESPACE
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    sslrootcert: str = str(PACKAGED_CA_BUNDLE)
    model: Mapping[str, Any] = field(default_factory=dict)
    """The stack's access-model inputs: `database`, `idleInTransactionMs`, `services` (catalog overrides),
    `extractions` (service -> phase)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> RunnerConfig:
        missing = [k for k in ("EDUMATRIX_ENVIRONMENT", "EDUMATRIX_DB_SECRET_ARN") if not environ.get(k)]
        if missing:
            raise RunnerError(f"the function's environment lacks {', '.join(missing)} "
                              "(set by components/ops_runner.py)")
        try:
            model = json.loads(environ.get("EDUMATRIX_DB_MODEL") or "{}")
        except json.JSONDecodeError as exc:
            raise RunnerError(f"EDUMATRIX_DB_MODEL is not JSON: {exc}") from None
        port = environ.get("EDUMATRIX_DB_PORT")
        return cls(
            environment=environ["EDUMATRIX_ENVIRONMENT"],
            secret_arn=environ["EDUMATRIX_DB_SECRET_ARN"],
            namespace=environ.get("EDUMATRIX_METRICS_NAMESPACE") or NAMESPACE,
            host=environ.get("EDUMATRIX_DB_HOST") or None,
            port=int(port) if port else None,
            dbname=environ.get("EDUMATRIX_DB_NAME") or None,
            sslrootcert=environ.get("EDUMATRIX_DB_SSLROOTCERT") or str(PACKAGED_CA_BUNDLE),
            model=model,
        )

    def access_model(self) -> AccessModel:
        """The stack's access model, as the program derives it (catalog + the stack's service overrides)."""
        overrides = self.model.get("services") or {}
        catalog = load_catalog().with_overrides(overrides) if overrides else load_catalog()
        kwargs: dict[str, Any] = {}
        if self.model.get("database"):
            kwargs["database"] = str(self.model["database"])
        if self.model.get("idleInTransactionMs"):
            kwargs["idle_in_transaction_ms"] = int(self.model["idleInTransactionMs"])
        model = build_access_model(catalog, **kwargs)
        extractions = self.model.get("extractions") or {}
        if extractions:  # the shared instance as each extraction's phase leaves it (config/extraction_plan.py)
            from config.extraction import Phase
            from config.extraction_plan import source_model

            model = source_model(model, {service: Phase(phase) for service, phase in extractions.items()})
        return model


@dataclass(frozen=True)
class Clients:
    """The AWS clients a run uses (real boto3 clients in the Lambda; stubbed ones in tests)."""

    secrets: Any
    cloudwatch: Any
    backup: Any = None
    """AWS Backup (restore-test results), for the jobs of edumatrix_db/ops/backup_jobs.py."""


def aws_clients(environ: Mapping[str, str] = os.environ) -> Clients:
    """boto3 clients; through the runner's own VPC endpoints when the component declared them (their names
    arrive as EDUMATRIX_SECRETSMANAGER_ENDPOINT / EDUMATRIX_CLOUDWATCH_ENDPOINT), else AWS's public names."""
    import boto3  # the Lambda runtime's; see the module docstring

    return Clients(
        secrets=boto3.client("secretsmanager", endpoint_url=environ.get("EDUMATRIX_SECRETSMANAGER_ENDPOINT") or None),
        cloudwatch=boto3.client("cloudwatch", endpoint_url=environ.get("EDUMATRIX_CLOUDWATCH_ENDPOINT") or None),
        backup=boto3.client("backup", endpoint_url=environ.get("EDUMATRIX_BACKUP_ENDPOINT") or None),
    )


# -- metrics -----------------------------------------------------------------------------------------------

@dataclass
class Metrics:
    """Datapoints a job adds; published after the job in PutMetricData batches of at most 1000."""

    namespace: str
    environment: str
    data: list[dict[str, Any]] = field(default_factory=list)

    def add(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        """One datapoint of `name`, with the `Environment` dimension and the ones given (e.g. `Rule=...`)."""
        dims = [{"Name": "Environment", "Value": self.environment}]
        dims += [{"Name": k, "Value": str(v)} for k, v in sorted(dimensions.items())]
        self.data.append({"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": unit})

    def batches(self) -> Iterator[list[dict[str, Any]]]:
        for start in range(0, len(self.data), PUT_METRIC_DATA_BATCH):
            yield self.data[start:start + PUT_METRIC_DATA_BATCH]

    def publish(self, cloudwatch: Any) -> int:
        """Send every datapoint; returns the number of PutMetricData calls."""
        calls = 0
        for batch in self.batches():
            cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=batch)
            calls += 1
        return calls


# -- jobs --------------------------------------------------------------------------------------------------

@dataclass
class JobContext:
    """What a job works with: the invocation's event, its metrics, a database connection on demand."""

    name: str
    config: RunnerConfig
    clients: Clients
    metrics: Metrics
    event: Mapping[str, Any] | None = None
    read_only: bool = True
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS

    def credentials(self) -> dict[str, Any]:
        response = self.clients.secrets.get_secret_value(SecretId=self.config.secret_arn)
        try:
            secret = json.loads(response["SecretString"])
        except (KeyError, json.JSONDecodeError):
            raise RunnerError(f"secret {self.config.secret_arn} does not hold JSON credentials") from None
        if not secret.get("username") or not secret.get("password"):
            raise RunnerError(f"secret {self.config.secret_arn} lacks username or password")
        return dict(secret)

    def conninfo(self, host: str | None = None) -> dict[str, Any]:
        """Keyword arguments of `psycopg.connect` (the password included: never log this). `host`: another
        instance with the same logins (a restored copy of the database)."""
        secret = self.credentials()
        host = host or self.config.host or secret.get("host")
        if not host:
            raise RunnerError("no database host: neither EDUMATRIX_DB_HOST nor the secret's `host` is set")
        options = f"-c statement_timeout={self.statement_timeout_ms}"
        if self.read_only:
            options += " -c default_transaction_read_only=on"
        return {
            "host": host,
            "port": int(self.config.port or secret.get("port") or 5432),
            "dbname": self.config.dbname or secret.get("dbname") or "edumatrix",
            "user": secret["username"],
            "password": secret["password"],
            "sslmode": "verify-full",
            "sslrootcert": self.config.sslrootcert,
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "application_name": f"edumatrix-ops-runner:{self.name}",
            "options": options,
        }

    @contextmanager
    def connect(self, host: str | None = None) -> Iterator[psycopg.Connection[Any]]:
        if not Path(self.config.sslrootcert).is_file():
            raise RunnerError(f"the RDS CA bundle {self.config.sslrootcert} is missing: the package must ship "
                              "certs/rds-global-bundle.pem (make runner-package)")
        with psycopg.connect(autocommit=True, **self.conninfo(host)) as conn:
            yield conn

    def model(self) -> AccessModel:
        return self.config.access_model()


JobFunction = Callable[[JobContext], Mapping[str, Any]]


@dataclass(frozen=True)
class Job:
    name: str
    run: JobFunction
    read_only: bool = True


JOBS: dict[str, Job] = {}


def job(name: str, *, read_only: bool = True) -> Callable[[JobFunction], JobFunction]:
    """Register a job under `name` (the `job` of the event). Jobs run read-only unless they say otherwise."""

    def register(function: JobFunction) -> JobFunction:
        if name in JOBS:
            raise ValueError(f"job {name!r} is registered twice")
        JOBS[name] = Job(name, function, read_only)
        return function

    return register


# -- the handler -------------------------------------------------------------------------------------------

def parse_event(event: Any) -> tuple[Job, Mapping[str, Any] | None]:
    """The job an event names, and the EventBridge event it carries (if any)."""
    if not isinstance(event, Mapping) or not isinstance(event.get("job"), str):
        hint = ""
        if isinstance(event, Mapping) and "detail-type" in event:
            hint = (" (a raw EventBridge event: route it with a target whose input transformer wraps it as "
                    '{"job": NAME, "event": <aws.events.event.json>})')
        raise RunnerError(f'the event must be {{"job": NAME, ...}}{hint}; jobs: {", ".join(sorted(JOBS))}')
    found = JOBS.get(event["job"])
    if found is None:
        raise RunnerError(f"unknown job {event['job']!r}; jobs: {', '.join(sorted(JOBS))}")
    carried = event.get("event")
    if carried is not None and not isinstance(carried, Mapping):
        raise RunnerError("`event` must be the EventBridge event as a JSON object")
    return found, carried


def statement_timeout_for(context: Any) -> int:
    """A statement timeout that ends before the invocation does."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return DEFAULT_STATEMENT_TIMEOUT_MS
    return max(1_000, int(remaining()) - STATEMENT_MARGIN_MS)


def run(event: Any, config: RunnerConfig, clients: Clients, context: Any = None) -> dict[str, Any]:
    """Run the job the event names, publish its metrics, return its summary."""
    found, carried = parse_event(event)
    ctx = JobContext(
        name=found.name,
        config=config,
        clients=clients,
        metrics=Metrics(config.namespace, config.environment),
        event=carried,
        read_only=found.read_only,
        statement_timeout_ms=statement_timeout_for(context),
    )
    log.info("job %s started", found.name, extra={"job": found.name})
    summary = dict(found.run(ctx))
    calls = ctx.metrics.publish(clients.cloudwatch)
    result = {**summary, "job": found.name, "ok": True, "metrics": len(ctx.metrics.data),
              "putMetricDataCalls": calls}
    log.info("job %s done: %s", found.name, json.dumps(result, default=str), extra={"job": found.name})
    return result


_CLIENTS: Clients | None = None


def handler(event: Any, context: Any) -> dict[str, Any]:
    """The Lambda entry point (`edumatrix_db.ops.runner.handler`). Clients are reused by warm invocations."""
    global _CLIENTS
    if _CLIENTS is None:
        _CLIENTS = aws_clients()
    return run(event, RunnerConfig.from_environ(os.environ), _CLIENTS, context)


# -- the jobs of this issue --------------------------------------------------------------------------------

@job("ping")
def ping(ctx: JobContext) -> dict[str, Any]:
    """Proves the whole path: secret, network, TLS against the CA bundle, login, a query, a metric."""
    with ctx.connect() as conn:
        row = conn.execute("SELECT 1, current_user, version()").fetchone()
        tls = conn.pgconn.ssl_in_use
    if row is None or row[0] != 1:
        raise RunnerError("SELECT 1 did not return 1")
    ctx.metrics.add("RunnerHeartbeat", 1)
    return {"user": row[1], "server": row[2], "tls": tls}


# Published per rule by the audit job (the alarm watches the total, `AUDIT_FINDINGS` with only Environment).
AUDIT_FINDINGS = "AuditFindings"
LOCK_TABLE_USE = "LockTableUse"
PLATFORM = "platform"  # the Service dimension of findings that belong to no service (unknown roles, ...)


@job("audit")
def audit(ctx: JobContext) -> dict[str, Any]:
    """The isolation audit (edumatrix_db/ops/audit.py): findings per rule and per service, lock-table use."""
    from edumatrix_db.ops.audit import RULES, run_audit  # written by the guard (issue 11, part A)

    model = ctx.model()
    with ctx.connect() as conn:
        report = run_audit(conn, model)
    by_rule = report.counts_by_rule()
    for rule in RULES:
        ctx.metrics.add(AUDIT_FINDINGS, by_rule.get(rule, 0), Rule=rule)
    by_service = findings_by_service(report.findings, (s.service for s in model.services))
    for service, count in by_service.items():
        ctx.metrics.add(AUDIT_FINDINGS, count, Service=service)
    total = len(report.findings)
    ctx.metrics.add(AUDIT_FINDINGS, total)
    ctx.metrics.add(LOCK_TABLE_USE, round(report.lock_table_use * 100, 3), unit="Percent")
    log_findings(report.findings)
    return {"findings": total, "byRule": by_rule, "lockTableUse": report.lock_table_use}


# A drifted database can have thousands of findings; the log keeps the first ones and the count of the rest
# (`edumatrix-db audit --uri ...` lists them all).
LOGGED_FINDINGS = 200


def log_findings(findings: Sequence[Any], limit: int = LOGGED_FINDINGS) -> int:
    """Log each finding with its fix, at most `limit` of them; returns how many were logged."""
    for finding in findings[:limit]:
        log.warning("audit finding [%s] %s %s: %s (fix: %s)", finding.rule, finding.service or PLATFORM,
                    finding.object, finding.message, finding.fix)
    if len(findings) > limit:
        log.warning("%d more audit findings not logged; run `edumatrix-db audit` for all", len(findings) - limit)
    return min(len(findings), limit)


def findings_by_service(findings: Sequence[Any], services: Iterable[str]) -> dict[str, int]:
    """Findings per service, every service present (zeros included) plus `platform` for the rest."""
    counts = dict.fromkeys((*services, PLATFORM), 0)
    for finding in findings:
        key = finding.service if finding.service in counts else PLATFORM
        counts[key] += 1
    return counts


# -- the per-minute metrics (issue 14) ---------------------------------------------------------------------

# The previous sample, per database, of this warm execution environment: the collector's rates (statements
# and average query time per interval, cache hits) are deltas against it. Lambda keeps an environment warm
# between invocations a minute apart, but not forever: after a cold start the first sample has no previous
# one and publishes only the gauges (connections, pool use, sizes), never a made-up rate.
_PREVIOUS_SAMPLES: dict[str, Any] = {}


@job("metrics")
def metrics(ctx: JobContext) -> dict[str, Any]:
    """Per-service figures from pg_stat_activity, pg_stat_statements and schema sizes
    (edumatrix_db/ops/metrics.py), published with `Environment` and `Service` dimensions."""
    from edumatrix_db.ops import metrics as collector

    key = f"{ctx.config.host}:{ctx.config.port}/{ctx.config.dbname}"
    with ctx.connect() as conn:
        sample = collector.collect(conn, _PREVIOUS_SAMPLES.get(key), model=ctx.model())
    _PREVIOUS_SAMPLES[key] = sample
    data = collector.metric_data(sample, environment=ctx.config.environment)
    ctx.metrics.data.extend(data)
    for warning in sample.warnings:
        log.warning("metrics: %s", warning)
    return {"services": len(sample.services), "datapoints": len(data),
            "rates": sample.interval_seconds is not None, "warnings": list(sample.warnings)}
# The jobs of other issues, registered by importing their modules (after everything they import from here).
from edumatrix_db.ops import backup_jobs  # noqa: E402,F401  (issue 15: restore-verify, backup-job-duration)
