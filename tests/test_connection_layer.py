"""The connection layer under mocks: RDS Proxy as the spec sizes it (30 s borrow wait, idle timeouts in
order, pools from the catalog), a proxy role reading only its secrets, one endpoint and one stable DNS name
per service, and the connection settings service stacks read. Bad input is refused by the loader."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.catalog import Catalog, DataClassification, ServiceSpec, load_catalog
from config.connections import proxy_budget, proxy_pools
from config.errors import ConfigError
from config.loader import load_stack
from edumatrix_db.offline.engine import Planner, Recording
from tests.region_support import copy_stacks, edit_stack

PROXY = "aws:rds/proxy:Proxy"
POOL = "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup"
ENDPOINT = "aws:rds/proxyEndpoint:ProxyEndpoint"
RECORD = "aws:route53/record:Record"
SECRET = "aws:secretsmanager/secret:Secret"
SERVICES = load_catalog().names


def secrets_of(recording: Recording, kinds: tuple[str, ...]) -> set[str]:
    return {s.props["arn"] for s in recording.of_type(SECRET) if s.inputs["name"].rsplit("/", 1)[1] in kinds}


def test_prod_has_one_tls_proxy_for_postgresql_with_iam_clients_and_scram_to_the_database(prod: Recording) -> None:
    proxy = prod.one(PROXY)
    assert proxy.inputs["engineFamily"] == "POSTGRESQL"
    assert proxy.inputs["requireTls"] is True
    assert proxy.inputs["debugLogging"] is False
    auths = proxy.inputs["auths"]
    assert {(a["iamAuth"], a["clientPasswordAuthType"], a["authScheme"]) for a in auths} == {
        ("REQUIRED", "POSTGRES_SCRAM_SHA_256", "SECRETS")}
    assert {a["secretArn"] for a in auths} == secrets_of(prod, ("app", "readonly"))
    assert len(auths) == 2 * len(SERVICES)


def test_the_proxy_waits_at_most_30_s_for_a_connection_and_outlives_the_clients_idle_timeout(prod: Recording) -> None:
    pool = prod.one(POOL).inputs["connectionPoolConfig"]
    assert pool["connectionBorrowTimeout"] == 30  # spec 2.A "30 seconds max"
    assert prod.one(PROXY).inputs["idleClientTimeout"] == 1800
    app = prod.outputs["connections"]["feedback"]["app"]["pool"]
    assert app["idleTimeoutSeconds"] == 600  # spec 2.A "10 minutes", the clients' own pool
    assert app["acquireTimeoutSeconds"] == 30
    assert prod.one(PROXY).inputs["idleClientTimeout"] > app["idleTimeoutSeconds"]


def test_the_proxy_pool_holds_the_services_pools_within_max_connections(prod: Recording) -> None:
    settings_ = load_stack("prod")
    demand = sum(s.pool_size + s.readonly_pool_size for s in settings_.catalog())
    pool = prod.one(POOL).inputs["connectionPoolConfig"]
    assert pool["maxConnectionsPercent"] == math.ceil(100 * demand / settings_.instance.max_connections)
    assert 0 < pool["maxIdleConnectionsPercent"] <= pool["maxConnectionsPercent"]


def test_the_proxy_role_reads_only_the_proxied_secrets_and_decrypts_only_with_their_key(prod: Recording) -> None:
    (policy,) = [p for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if "proxy" in p.name]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    read = next(s for s in statements if s["Action"] == "secretsmanager:GetSecretValue")
    decrypt = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert set(read["Resource"]) == secrets_of(prod, ("app", "readonly"))  # no migrator secret, no wildcard
    assert decrypt["Resource"] == prod.outputs["kmsKeyArn"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    (role,) = [r for r in prod.of_type("aws:iam/role:Role") if "proxy" in r.name]
    assert "rds.amazonaws.com" in role.inputs["assumeRolePolicy"]


def test_each_service_has_a_read_write_proxy_endpoint(prod: Recording) -> None:
    endpoints = prod.of_type(ENDPOINT)
    assert {e.inputs["targetRole"] for e in endpoints} == {"READ_WRITE"}  # READ_ONLY is Aurora-only
    assert sorted(e.inputs["dbProxyEndpointName"] for e in endpoints) == sorted(
        f"edumatrix-prod-{s.replace('_', '-')}" for s in SERVICES)


def test_each_service_gets_a_stable_private_name_pointing_at_its_endpoint(prod: Recording) -> None:
    zone = prod.one("aws:route53/zone:Zone")
    assert zone.inputs["name"] == "prod.db.edumatrix.internal"
    assert zone.inputs["vpcs"][0]["vpcId"] == "vpc-0a1b2c3d4e5f60718"  # private: only this VPC resolves it
    records = {r.inputs["name"]: r for r in prod.of_type(RECORD)}
    endpoints = {e.inputs["dbProxyEndpointName"]: e.props["endpoint"] for e in prod.of_type(ENDPOINT)}
    for service in SERVICES:
        label = service.replace("_", "-")
        record = records[f"{label}.prod.db.edumatrix.internal"]
        assert (record.inputs["type"], record.inputs["records"]) == ("CNAME", [endpoints[f"edumatrix-prod-{label}"]])
        assert prod.outputs["connections"][service]["app"]["host"] == f"{label}.prod.db.edumatrix.internal"


def test_migrations_connect_to_the_instance_and_readers_spread_over_the_replicas(prod: Recording) -> None:
    records = prod.of_type(RECORD)
    primary = next(r for r in records if r.inputs["name"] == "primary.prod.db.edumatrix.internal")
    assert primary.inputs["records"] == [prod.outputs["address"]]
    readers = [r for r in records if r.inputs["name"] == "reader.prod.db.edumatrix.internal"]
    assert sorted(r.inputs["records"][0] for r in readers) == sorted(prod.outputs["readerAddresses"])
    assert {r.inputs["weightedRoutingPolicies"][0]["weight"] for r in readers} == {1}
    feedback = prod.outputs["connections"]["feedback"]
    assert feedback["migrations"]["host"] == "primary.prod.db.edumatrix.internal"
    assert feedback["migrations"]["auth"] == "password"  # migrations never go through the proxy
    assert feedback["readonly"]["host"] == "reader.prod.db.edumatrix.internal"


def test_connection_settings_name_credentials_tls_pool_and_retry(prod: Recording) -> None:
    app = prod.outputs["connections"]["jobs_portal"]["app"]
    assert app["user"] == "jobs_portal_app"
    assert app["auth"] == "iam"
    assert app["iamDbUserArn"].startswith("arn:aws:rds-db:us-east-1:123456789012:dbuser:prx-")
    assert app["iamDbUserArn"].endswith("/jobs_portal_app")
    assert app["secretArn"] in secrets_of(prod, ("app",))
    assert app["sslmode"] == "verify-full"
    assert "Amazon Root CA 1" in app["sslrootcert"]  # the proxy presents an ACM certificate
    assert app["tlsServerName"].endswith(".rds.amazonaws.com")
    assert app["pool"]["maxSize"] == load_catalog().get("jobs_portal").pool_size
    assert prod.outputs["connections"]["jobs_portal"]["retry"] == {
        "strategy": "exponential backoff with full jitter: sleep random(0, min(capMs, baseMs * 2^n))",
        "baseMs": 100, "capMs": 5000, "maxAttempts": 5}


def test_dev_has_no_proxy_and_its_names_point_at_the_instance() -> None:
    dev = Planner().plan("dev")
    assert dev.of_type(PROXY) == []
    record = next(r for r in dev.of_type(RECORD) if r.inputs["name"] == "feedback.dev.db.edumatrix.internal")
    assert record.inputs["records"] == [dev.outputs["address"]]
    assert dev.outputs["connections"]["feedback"]["app"]["auth"] == "password"
    assert "iamDbUserArn" not in dev.outputs["connections"]["feedback"]["app"]


def test_per_service_proxies_give_each_service_its_own_pool(tmp_path: Path) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, "prod", "  edumatrix-db:replicas:\n",
               "  edumatrix-db:connections:\n    proxy: per-service\n  edumatrix-db:replicas:\n")
    recording = Planner(stacks).plan("prod")
    proxies = recording.of_type(PROXY)
    assert len(proxies) == len(SERVICES)
    assert {len(p.inputs["auths"]) for p in proxies} == {2}
    assert recording.of_type(ENDPOINT) == []
    instance = load_stack("prod", stacks).instance
    opened = sum(instance.max_connections * p.inputs["connectionPoolConfig"]["maxConnectionsPercent"] // 100
                 for p in recording.of_type(POOL))
    assert opened <= proxy_budget(load_catalog(), instance.max_connections, instance.reserved_connections)


@pytest.mark.parametrize(("stack", "old", "new", "message"), [
    ("prod", "  edumatrix-db:replicas:\n", "  edumatrix-db:connections:\n    borrowTimeoutSeconds: 31\n"
     "  edumatrix-db:replicas:\n", r"connections.borrowTimeoutSeconds: .*less than or equal to 30"),
    ("prod", "  edumatrix-db:replicas:\n", "  edumatrix-db:connections:\n    proxyIdleClientTimeoutSeconds: 600\n"
     "  edumatrix-db:replicas:\n", r"must be longer than clientIdleTimeoutSeconds \(600\)"),
    ("local", "  edumatrix-db:instance:\n", "  edumatrix-db:connections:\n    proxy: shared\n"
     "  edumatrix-db:instance:\n", r"connections.proxy: the local stack has no RDS instance for a proxy"),
    ("prod-eu-west-1", "  edumatrix-db:network:\n", "  edumatrix-db:connections:\n    proxy: shared\n"
     "  edumatrix-db:network:\n", r"connections.proxy: a region stack's instance is a read replica"),
    ("prod", "  edumatrix-db:replicas:\n", "  edumatrix-db:connections:\n    proxy: pgbouncer\n"
     "  edumatrix-db:replicas:\n", r"connections.proxy: 'pgbouncer' is not allowed"),
])
def test_impossible_connection_settings_are_config_errors(tmp_path: Path, stack: str, old: str, new: str,
                                                          message: str) -> None:
    stacks = copy_stacks(tmp_path)
    edit_stack(stacks, stack, old, new)
    with pytest.raises(ConfigError, match=message):
        load_stack(stack, stacks)


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[Catalog, int, int]:
    count = draw(st.integers(min_value=1, max_value=20))
    services = tuple(ServiceSpec(name=f"svc{i}", title="t", pool_size=draw(st.integers(1, 200)),
                                 readonly_pool_size=draw(st.integers(1, 50)), statement_timeout_ms=5000,
                                 owner_team="t", data_classification=DataClassification.INTERNAL) for i in range(count))
    catalog = Catalog(services=services)
    reserved = draw(st.integers(3, 100))
    demand = sum(s.total_connections() for s in catalog)
    max_connections = draw(st.integers(max(20, demand + reserved), 5000).filter(lambda m: m > reserved))
    return catalog, max_connections, reserved


@settings(max_examples=300, deadline=None)
@given(catalogs(), st.sampled_from(["shared", "per-service"]), st.integers(0, 100))
def test_pool_arithmetic_never_exceeds_the_budget(drawn: tuple[Catalog, int, int], mode: str, idle: int) -> None:
    """For any catalog the loader accepts (its roles' limits fit max_connections - reserved), the proxies'
    pools fit the connections left for them, or the arithmetic refuses; idle never exceeds the pool."""
    catalog, max_connections, reserved = drawn
    try:
        pools = proxy_pools(catalog, mode=mode, max_connections=max_connections, reserved=reserved,
                            idle_pool_percent=idle)
    except ValueError:
        assert mode == "per-service"  # only per-service rounding (1 % minimum per proxy) can fail to fit
        return
    assert sum(p.connections for p in pools) <= proxy_budget(catalog, max_connections, reserved)
    for pool in pools:
        assert 1 <= pool.max_connections_percent <= 100
        assert 0 <= pool.max_idle_connections_percent <= pool.max_connections_percent
    if mode == "shared":
        (pool,) = pools
        # and it is big enough for every proxied role's pool, unless rounding would break the budget
        assert pool.connections >= pool.demand or pool.connections == proxy_budget(
            catalog, max_connections, reserved) * 100 // max_connections * max_connections // 100


def test_a_service_needing_under_one_percent_gets_the_one_percent_minimum_and_no_more() -> None:
    small = ServiceSpec(name="svc0", title="t", pool_size=5, readonly_pool_size=5, statement_timeout_ms=5000,
                        owner_team="t", data_classification=DataClassification.INTERNAL)
    (pool,) = proxy_pools(Catalog(services=(small,)), mode="per-service", max_connections=5000, reserved=3,
                          idle_pool_percent=50)
    assert pool.max_connections_percent == 1
