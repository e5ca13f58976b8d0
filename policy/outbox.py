"""The database side of events (docs/events.md): the platform's `ServiceEvents` resources
(components/service_events.py) create each service's inbox, and each publishing service's outbox and its
publication, as the master user over verified TLS.

- `service-events-outbox-only`: a `ServiceEvents` resource connects with `sslmode=verify-full` and a CA bundle
  (it sends the master password), publishes exactly the outbox publication `<service>_outbox_pub` of a service
  whose catalog entry lists events (none otherwise), and grants the outbox to the platform's CDC login, never
  to another role: a replication login decodes whatever a publication covers, so the publication is the only
  fence between it and a service's other tables (PostgreSQL 15 docs, "Logical Replication: Security": a
  publication's tables are replicated whatever the subscriber's privileges; research/issue11.md).

The AWS side of events (MSK, MSK Connect, the schema registry) is policy/events.py's.
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs, Severity

from config.access import PlatformRoleKind, platform_role_name
from config.catalog import load_catalog
from config.naming import outbox_publication_name
from policy.base import PackPolicy, TypedResourcePolicy

SERVICE_EVENTS = "pulumi-python:dynamic/edumatrix:ServiceEvents"


def _outbox_only(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    service = str(props.get("service") or "")
    names = {s.name: s for s in load_catalog()}
    if service not in names:
        report(f"ServiceEvents names {service!r}, which is not a catalog service", None)
        return
    problems = []
    if props.get("sslmode") != "verify-full" or not props.get("sslrootcert"):
        problems.append(f"connects with sslmode {props.get('sslmode')!r} and CA bundle "
                        f"{props.get('sslrootcert')!r}; the master password goes only over verify-full TLS")
    publishes = bool(names[service].events)
    want = outbox_publication_name(service) if publishes else None
    if bool(props.get("publishes")) != publishes or (props.get("publication") or None) != want:
        problems.append(f"publishes {props.get('publication')!r}; {service}'s catalog entry says "
                        f"{want or 'no publication (it lists no events)'}")
    cdc = platform_role_name(PlatformRoleKind.CDC_REPLICATOR)
    if props.get("cdcRole") != cdc:
        problems.append(f"grants the outbox to {props.get('cdcRole')!r}, not the platform's CDC login {cdc}")
    if problems:
        report(f"{service}: " + "; ".join(problems), None)


outbox_only = TypedResourcePolicy(
    "service-events-outbox-only",
    "A service's event objects are created over verified TLS, publish its outbox only (only when the catalog "
    "lists its events) and give the outbox to the platform's CDC login only.",
    types=[SERVICE_EVENTS], validate=_outbox_only, severity=Severity.CRITICAL,
    controls=["spec 2.B events, no cross-schema queries", "spec 4.A least privilege"],
    remediation="Declare it with components/platform.py declare_service_events, which takes every value from the "
                "catalog and config/naming.py.",
)

POLICIES: list[PackPolicy] = [outbox_only]
