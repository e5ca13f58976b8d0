"""How services reach the shared instance (spec 2.A pooling, 3.B "deploy database proxy layer", 5.B connection
settings, 8.B load balancing): RDS Proxy in front of the instance, a private DNS name per service, and the
connection settings each service stack reads through a `StackReference` (output `connections`).

RDS Proxy (`mode` shared or per-service; docs/connections.md explains the choice):
- `engine_family` POSTGRESQL, `require_tls`; clients authenticate with IAM (`iam_auth` REQUIRED) and the
  proxy logs in to PostgreSQL with SCRAM (`POSTGRES_SCRAM_SHA_256`) using one Secrets Manager secret per
  proxied login role (each service's app and read-only role, `components/service_schema.py`);
- a role the proxy assumes that may read only those secrets and decrypt only with their key, through
  Secrets Manager (`kms:ViaService`);
- the default target group: `connection_borrow_timeout` (spec: 30 s max wait), `max_connections_percent`
  and `max_idle_connections_percent` from the catalog (`config/connections.py`); `idle_client_timeout`
  longer than the services' own 10-minute idle timeout, so clients close idle connections first;
- shared mode: one READ_WRITE endpoint per service, so CloudWatch reports each service's proxy traffic under
  its own `EndpointName`. READ_ONLY proxy endpoints exist only for Aurora clusters; read-only clients use the
  replicas' reader name instead.
Migrations and replication connect to the instance directly: migrations take session-level locks and run
DDL (both pin a proxy connection), and RDS Proxy does not support PostgreSQL's streaming replication mode.

DNS: a private hosted zone in the VPC holds `<service>.<zone>` (CNAME to the service's proxy endpoint, or the
instance), `primary.<zone>` (the instance: migrations, replication) and `reader.<zone>` (weighted over the
read replicas, or the primary when there are none). Moving a service later means moving its name.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.network import client_sources
from config.connections import PROXIED_KINDS, ProxyPool
from config.naming import RoleKind
from config.settings import ConnectionSettings, NetworkSettings

DNS_TTL_SECONDS = 60
PROXY_CA = ("Amazon Root CA 1 (RDS Proxy presents an ACM certificate: "
            "https://www.amazontrust.com/repository/AmazonRootCA1.pem, or sslrootcert=system with libpq 16+)")
RDS_CA = "the RDS CA bundle (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"


@dataclass(frozen=True)
class ServiceLogins:
    """A service's login roles and the secrets holding their credentials."""

    service: str
    roles: Mapping[RoleKind, str]
    secret_arns: Mapping[RoleKind, pulumi.Input[str]]
    pool_sizes: Mapping[RoleKind, int]  # the roles' connection limits
    statement_timeout_ms: int


@dataclass(frozen=True)
class ConnectionLayerArgs:
    name_prefix: str
    mode: str  # shared | per-service | none
    pools: Sequence[ProxyPool]
    settings: ConnectionSettings
    services: Sequence[ServiceLogins]
    network: NetworkSettings
    instance_identifier: pulumi.Input[str]
    instance_address: pulumi.Input[str]
    instance_security_group_id: pulumi.Input[str]
    port: int
    database: str
    kms_key_arn: pulumi.Input[str]  # the key of the login secrets
    zone_name: str
    reader_addresses: pulumi.Input[Sequence[str]] | None = None
    replica_count: int = 0
    region: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    moved: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extracted services whose traffic is on their own instance: service -> that instance's address. Their
    name points there (no proxy), and so do their migrations (components/extraction.py)."""
    pooled: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Services with the platform's extraction pooler in front of them (components/service_pooler.py): service ->
    the pooler's NLB DNS name. Their name points there (no proxy: the pooler is their pool), whichever side the
    pooler serves from; their migrations still go to the instance (`moved` or the shared one)."""
    pooler_ca: str = ""
    """What clients of a pooled service verify the pooler's certificate with (`extractionPooler.caName`)."""


def _nth(index: int, values: Sequence[str]) -> str:
    return str(values[index])


def hostname(service: str) -> str:
    """DNS label of a service: underscores are not valid in host names (RFC 952/1123)."""
    return service.replace("_", "-")


def proxy_role_policy(secret_arns: Sequence[str], key_arn: str, region: str) -> str:
    """Read only these secrets; decrypt only with their key, only through Secrets Manager."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheLoginSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": sorted(secret_arns)},
        {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": key_arn,
         "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}},
    ]})


class ConnectionLayer(pulumi.ComponentResource):
    """`edumatrix:network:ConnectionLayer`: RDS Proxy (or none), the private zone and the connection settings."""

    connections: pulumi.Output[dict[str, Any]]
    proxy_names: list[pulumi.Output[str]]
    endpoint_names: dict[str, pulumi.Output[str]]
    zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: ConnectionLayerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("edumatrix:network:ConnectionLayer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags, region = dict(args.tags), args.region
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region_name = pulumi.Output.from_input(region) if region else aws.get_region_output(opts=invoke).region

        # -- where each service connects: a proxy endpoint, or the instance --------------------------------
        service_hosts: dict[str, pulumi.Output[str]] = {}
        proxy_of: dict[str, aws.rds.Proxy] = {}
        self.proxy_names, self.endpoint_names = [], {}
        if args.mode != "none":
            proxy_sg = self._proxy_security_group(name, args, child, tags)
            role = self._proxy_role(name, args, region_name, child, tags)
            by_service = {s.service: s for s in args.services}
            for pool in args.pools:
                served_here = [s for s in pool.services if s not in args.moved and s not in args.pooled]
                if not served_here:
                    continue  # a per-service proxy of an extracted service: its traffic is on its own instance
                proxy = self._proxy(f"{name}-{hostname(pool.name)}", f"{args.name_prefix}-{hostname(pool.name)}",
                                    [by_service[s] for s in served_here], pool, args, role, proxy_sg, child, tags)
                self.proxy_names.append(proxy.name)
                for served in served_here:
                    proxy_of[served] = proxy
                    if args.mode == "per-service":
                        service_hosts[served] = proxy.endpoint
                        self.endpoint_names[served] = proxy.name
                        continue
                    endpoint = aws.rds.ProxyEndpoint(
                        f"{name}-{hostname(served)}",
                        db_proxy_name=proxy.name,
                        db_proxy_endpoint_name=f"{args.name_prefix}-{hostname(served)}",
                        target_role="READ_WRITE",  # READ_ONLY endpoints are Aurora-only
                        vpc_subnet_ids=list(args.network.subnet_ids),
                        vpc_security_group_ids=[proxy_sg.id],
                        region=region,
                        tags={**tags, "db-service": served},
                        opts=child,
                    )
                    service_hosts[served] = endpoint.endpoint
                    self.endpoint_names[served] = endpoint.db_proxy_endpoint_name
        address = pulumi.Output.from_input(args.instance_address)
        for service, target in {**args.moved, **args.pooled}.items():
            service_hosts[service] = pulumi.Output.from_input(target)
        for logins in args.services:
            service_hosts.setdefault(logins.service, address)

        # -- stable names -----------------------------------------------------------------------------------
        zone = aws.route53.Zone(
            f"{name}-zone",
            name=args.zone_name,
            comment=f"{args.name_prefix}: stable names of the database per service (extraction moves them)",
            vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args.network.vpc_id, vpc_region=region)],
            tags=tags,
            opts=child,
        )
        self.zone_id = zone.zone_id

        def record(label: str, target: pulumi.Input[str], **extra: Any) -> None:
            aws.route53.Record(f"{name}-{label}{extra.pop('suffix', '')}", zone_id=zone.zone_id,
                               name=f"{label}.{args.zone_name}", type="CNAME", ttl=DNS_TTL_SECONDS,
                               records=[target], opts=child, **extra)

        for logins in args.services:
            record(hostname(logins.service), service_hosts[logins.service])
        record("primary", address)
        if args.reader_addresses is not None and args.replica_count > 0:
            readers = pulumi.Output.from_input(args.reader_addresses)
            # One weighted record per replica: Route 53 answers each with equal probability (load balancing).
            for index in range(args.replica_count):
                record("reader", readers.apply(functools.partial(_nth, index)), suffix=f"-{index + 1}",
                       set_identifier=f"replica-{index + 1}",
                       weighted_routing_policies=[aws.route53.RecordWeightedRoutingPolicyArgs(weight=1)])
        else:
            record("reader", address)

        # -- what service stacks read ---------------------------------------------------------------------
        self.connections = pulumi.Output.all(**{
            s.service: self._settings(s, args, proxy_of.get(s.service), service_hosts[s.service], region_name)
            for s in args.services
        })
        self.register_outputs({"connections": self.connections, "zoneId": self.zone_id,
                               "proxyNames": self.proxy_names})

    # -- pieces ---------------------------------------------------------------------------------------------
    def _proxy_security_group(self, name: str, args: ConnectionLayerArgs, child: pulumi.ResourceOptions,
                              tags: dict[str, str]) -> aws.ec2.SecurityGroup:
        """The proxy's group: PostgreSQL from the stack's clients in; to the instance out (and the instance's
        group admits the proxy)."""
        group = aws.ec2.SecurityGroup(f"{name}-proxy-sg", description=f"RDS Proxy of {args.name_prefix}",
                                      vpc_id=args.network.vpc_id, region=args.region, tags=tags, opts=child)
        for suffix, source in client_sources(args.network.allowed_security_group_ids, args.network.allowed_cidrs):
            aws.vpc.SecurityGroupIngressRule(f"{name}-proxy-from-{suffix}", security_group_id=group.id,
                                             ip_protocol="tcp", from_port=args.port, to_port=args.port,
                                             description="PostgreSQL clients to RDS Proxy", region=args.region,
                                             tags=tags, opts=child, **source)
        aws.vpc.SecurityGroupEgressRule(f"{name}-proxy-to-db", security_group_id=group.id, ip_protocol="tcp",
                                        from_port=args.port, to_port=args.port,
                                        referenced_security_group_id=args.instance_security_group_id,
                                        description="RDS Proxy to the instance", region=args.region, tags=tags,
                                        opts=child)
        aws.vpc.SecurityGroupIngressRule(f"{name}-db-from-proxy", security_group_id=args.instance_security_group_id,
                                         ip_protocol="tcp", from_port=args.port, to_port=args.port,
                                         referenced_security_group_id=group.id,
                                         description="RDS Proxy to the instance", region=args.region, tags=tags,
                                         opts=child)
        return group

    def _proxy_role(self, name: str, args: ConnectionLayerArgs, region: pulumi.Output[str],
                    child: pulumi.ResourceOptions, tags: dict[str, str]) -> aws.iam.Role:
        role = aws.iam.Role(
            f"{name}-proxy-role",
            description=f"RDS Proxy of {args.name_prefix}: reads the proxied login secrets",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags,
            opts=child,
        )
        arns = [s.secret_arns[k] for s in args.services if s.service not in args.moved and s.service not in args.pooled
                for k in PROXIED_KINDS]
        aws.iam.RolePolicy(
            f"{name}-proxy-secrets",
            role=role.id,
            policy=pulumi.Output.all(pulumi.Output.all(*arns), args.kms_key_arn, region).apply(
                lambda v: proxy_role_policy(v[0], v[1], v[2])),
            opts=child,
        )
        return role

    def _proxy(self, resource_name: str, proxy_name: str, services: Sequence[ServiceLogins], pool: ProxyPool,
               args: ConnectionLayerArgs, role: aws.iam.Role, group: aws.ec2.SecurityGroup,
               child: pulumi.ResourceOptions, tags: dict[str, str]) -> aws.rds.Proxy:
        settings = args.settings
        proxy = aws.rds.Proxy(
            resource_name,
            name=proxy_name,
            engine_family="POSTGRESQL",
            require_tls=True,
            debug_logging=False,  # it would log statement text
            idle_client_timeout=settings.proxy_idle_client_timeout_seconds,
            role_arn=role.arn,
            vpc_subnet_ids=list(args.network.subnet_ids),
            vpc_security_group_ids=[group.id],
            auths=[aws.rds.ProxyAuthArgs(
                auth_scheme="SECRETS",
                iam_auth="REQUIRED",
                client_password_auth_type="POSTGRES_SCRAM_SHA_256",
                secret_arn=s.secret_arns[k],
                description=f"{s.roles[k]} ({s.service})",
            ) for s in services for k in PROXIED_KINDS],
            region=args.region,
            tags=tags,
            opts=child,
        )
        aws.rds.ProxyDefaultTargetGroup(
            f"{resource_name}-pool",
            db_proxy_name=proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                connection_borrow_timeout=settings.borrow_timeout_seconds,
                max_connections_percent=pool.max_connections_percent,
                max_idle_connections_percent=pool.max_idle_connections_percent,
            ),
            region=args.region,
            opts=child,
        )
        aws.rds.ProxyTarget(
            f"{resource_name}-target",
            db_proxy_name=proxy.name,
            target_group_name="default",
            db_instance_identifier=args.instance_identifier,
            region=args.region,
            opts=child,
        )
        return proxy

    def _settings(self, service: ServiceLogins, args: ConnectionLayerArgs, proxy: aws.rds.Proxy | None,
                  target: pulumi.Output[str], region: pulumi.Output[str]) -> pulumi.Output[dict[str, Any]]:
        """The map a service stack reads: where to connect, as whom, how to verify TLS, pool and retry."""
        dbuser: pulumi.Input[str] = (
            proxy.arn.apply(lambda arn: arn.replace(":rds:", ":rds-db:", 1).replace(":db-proxy:", ":dbuser:", 1))
            if proxy is not None else "")
        kinds = (RoleKind.APP, RoleKind.READONLY, RoleKind.MIGRATOR)
        own_instance = args.moved.get(service.service, args.instance_address)
        return pulumi.Output.all(target, region, dbuser, own_instance,
                                 *(service.secret_arns[k] for k in kinds)).apply(
            lambda v: connection_settings(service, args, target=v[0], region=v[1], dbuser_base=v[2],
                                          instance_address=v[3], secrets=dict(zip(kinds, v[4:], strict=True))))


def connection_settings(service: ServiceLogins, args: ConnectionLayerArgs, *, target: str, region: str,
                        dbuser_base: str, instance_address: str, secrets: Mapping[RoleKind, str]) -> dict[str, Any]:
    """Plain data: one service's connection settings (spec 5.B: credentials, pool, timeouts, retry policy)."""
    settings, zone = args.settings, args.zone_name
    via_proxy = bool(dbuser_base)
    name = f"{hostname(service.service)}.{zone}"

    pooled = service.service in args.pooled

    def login(kind: RoleKind, host: str, tls_name: str | None, *, proxied: bool) -> dict[str, Any]:
        user = service.roles[kind]
        out: dict[str, Any] = {
            "host": host, "port": args.port, "database": args.database, "user": user,
            "secretArn": secrets[kind], "auth": "iam" if proxied else "password",
            "sslmode": "verify-full",
            "sslrootcert": PROXY_CA if proxied else (args.pooler_ca if pooled and host == name else RDS_CA),
            # The name the server's certificate carries; a CNAME is not in it (docs/connections.md, "TLS").
            "tlsServerName": tls_name,
        }
        if proxied:
            out["iamDbUserArn"] = f"{dbuser_base}/{user}"  # the service's IAM policy: rds-db:connect on it
        if kind in service.pool_sizes:
            out["pool"] = {
                "maxSize": service.pool_sizes[kind],
                "acquireTimeoutSeconds": settings.borrow_timeout_seconds,
                "idleTimeoutSeconds": settings.client_idle_timeout_seconds,
                "statementTimeoutMs": service.statement_timeout_ms,
            }
        return out

    return {
        "region": region,
        "host": name,
        "viaProxy": via_proxy,
        # Behind the extraction pooler, PgBouncer presents a certificate issued for the service's own name.
        "viaExtractionPooler": pooled,
        "app": login(RoleKind.APP, name, name if pooled else target, proxied=via_proxy),
        # A reader name spreads over several replicas, each with its own certificate name: none to pin.
        "readonly": (login(RoleKind.READONLY, name, name, proxied=False) if pooled
                     else login(RoleKind.READONLY, name, instance_address, proxied=False)
                     if service.service in args.moved
                     else login(RoleKind.READONLY, f"reader.{zone}", None, proxied=False)),
        # An extracted service's migrations (and reads) go to its own instance, by its own name; behind the
        # extraction pooler (migrations frozen anyway) to the serving instance's address, never through PgBouncer.
        "migrations": (login(RoleKind.MIGRATOR, instance_address, instance_address, proxied=False) if pooled
                       else login(RoleKind.MIGRATOR, name, instance_address, proxied=False)
                       if service.service in args.moved
                       else login(RoleKind.MIGRATOR, f"primary.{zone}", instance_address, proxied=False)),
        "retry": {"strategy": "exponential backoff with full jitter: sleep random(0, min(capMs, baseMs * 2^n))",
                  "baseMs": settings.retry_base_ms, "capMs": settings.retry_cap_ms,
                  "maxAttempts": settings.retry_attempts},
        "clientNotes": [
            "set the tenant per transaction: set_config('app.institution_id', $1, true) (docs/tenancy.md)",
            "behind RDS Proxy, SET, session set_config, named prepared statements, advisory locks, LISTEN and "
            "statements over 16 KB pin the client to one server connection: avoid them on the app login",
            "psycopg through the local PgBouncer: prepare_threshold=None",
        ],
    }
