"""The exact words and numbers of the connection layer's rules (config/connections.py): what a person reads when
a stack's `connections` asks for a proxy it cannot have or for more proxies, endpoints or secrets than AWS allows,
and the proxies' pools as RDS Proxy is told them. The checks run on the project's own stacks with the one setting
changed (and, for the AWS quotas, a catalog of that many services in place of the project's nine)."""

from __future__ import annotations

import pytest

import config.settings
from config.catalog import Catalog, DataClassification, ServiceSpec
from config.connections import ProxyPool, connection_problems, effective_proxy_mode, proxy_budget, proxy_pools
from config.loader import load_stack
from config.settings import StackSettings

PROXY_KEY = "edumatrix-db:connections.proxy"
LOCAL_PROXY = ("the local stack has no RDS instance for a proxy; it runs PgBouncer (edumatrix-db local up)",
               "remove the key")
REGION_PROXY = ("a region stack's instance is a read replica, and RDS Proxy can only target the writer instance (AWS: "
                "'you can associate a proxy only with the writer DB instance, not a read replica'); a promoted region "
                "gets its proxy in a follow-up change (not built yet)",
                "remove the key (region stacks default to none)")
SPLIT_FIX = "use proxy: shared (one proxy, one endpoint per service)"


def service(name: str, pool_size: int, readonly_pool_size: int) -> ServiceSpec:
    return ServiceSpec(name=name, title="t", pool_size=pool_size, readonly_pool_size=readonly_pool_size,
                       statement_timeout_ms=5000, owner_team="t", data_classification=DataClassification.INTERNAL)


def services(count: int, pool_size: int = 1) -> Catalog:
    """`count` services whose app and read-only pools hold `pool_size` connections each (migrators hold 2)."""
    return Catalog(services=tuple(service(f"svc{i}", pool_size, pool_size) for i in range(count)))


def with_proxy(stack: str, proxy: str | None) -> StackSettings:
    settings = load_stack(stack)
    return settings.model_copy(update={"connections": settings.connections.model_copy(update={"proxy": proxy})})


def prod_serving(monkeypatch: pytest.MonkeyPatch, catalog: Catalog, proxy: str) -> StackSettings:
    """The prod stack with `proxy`, whose catalog is `catalog` (loaded first: the loader would refuse it)."""
    settings = with_proxy("prod", proxy)
    monkeypatch.setattr(config.settings, "load_catalog", lambda: catalog)
    return settings


def problems_of(settings: StackSettings) -> list[tuple[str, str, str]]:
    found = connection_problems(settings)
    assert {p.source for p in found} <= {settings.source}
    return [(p.key, p.message, p.fix) for p in found]


@pytest.mark.parametrize(("stack", "proxy", "expected"), [
    pytest.param("local", "shared", [(PROXY_KEY, *LOCAL_PROXY)], id="local-asks-for-a-shared-proxy"),
    pytest.param("local", "per-service", [(PROXY_KEY, *LOCAL_PROXY)], id="local-asks-for-per-service-proxies"),
    pytest.param("local", "none", [], id="local-says-none"),
    pytest.param("prod-eu-west-1", "shared", [(PROXY_KEY, *REGION_PROXY)], id="region-asks-for-a-shared-proxy"),
    pytest.param("prod-eu-west-1", "per-service", [(PROXY_KEY, *REGION_PROXY)], id="region-asks-for-proxies"),
    pytest.param("prod-eu-west-1", "none", [], id="region-says-none"),
    pytest.param("prod", None, [], id="prod-by-default"),
    pytest.param("prod", "per-service", [], id="prod-per-service"),
])
def test_a_proxy_where_there_can_be_none_is_told_in_these_words(stack: str, proxy: str | None,
                                                                expected: list[tuple[str, str, str]]) -> None:
    assert problems_of(with_proxy(stack, proxy)) == expected


def proxies_over_quota(count: int) -> tuple[str, str, str]:
    return (PROXY_KEY, f"{count} services need {count} proxies; AWS allows 20 per account and Region", SPLIT_FIX)


ENDPOINTS_OVER_QUOTA = (PROXY_KEY, "21 services need 21 proxy endpoints; AWS allows 20 per proxy",
                        "use proxy: per-service")
SECRETS_OVER_QUOTA = (PROXY_KEY, "a proxy holds at most 200 secrets", "split")


@pytest.mark.parametrize(("count", "proxy", "expected"), [
    pytest.param(20, "per-service", [], id="20-proxies-are-the-quota"),
    pytest.param(21, "per-service", [proxies_over_quota(21)], id="21-proxies"),
    pytest.param(20, "shared", [], id="20-endpoints-are-the-quota"),
    pytest.param(21, "shared", [ENDPOINTS_OVER_QUOTA], id="21-endpoints"),
    pytest.param(21, "none", [], id="21-services-without-a-proxy"),
    pytest.param(100, "per-service", [proxies_over_quota(100)], id="200-secrets-are-the-quota"),
    pytest.param(101, "per-service", [proxies_over_quota(101), SECRETS_OVER_QUOTA], id="202-secrets"),
    pytest.param(101, "none", [], id="101-services-without-a-proxy"),
])
def test_more_proxies_endpoints_or_secrets_than_aws_allows_are_told_in_these_words(
        monkeypatch: pytest.MonkeyPatch, count: int, proxy: str, expected: list[tuple[str, str, str]]) -> None:
    """AWS quotas (RDS Proxy): 20 proxies per account and Region, 20 endpoints per proxy, 200 secrets per proxy
    (an app and a read-only secret per service)."""
    assert problems_of(prod_serving(monkeypatch, services(count), proxy)) == expected


def test_pools_over_the_connections_left_for_proxies_are_told_with_their_numbers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """prod: max_connections 1500, reserved 50, 20 migrators holding 2 each; each service's 80 pooled connections
    ask for 6 % (90 connections) of its own proxy."""
    assert problems_of(prod_serving(monkeypatch, services(20, pool_size=40), "per-service")) == [(
        "edumatrix-db:services", "the proxies' pools open 1800 connections, over the 1410 left for them "
        "(max_connections 1500 - reserved 50 - migrators)",
        "shrink poolSize/readonlyPoolSize or raise edumatrix-db:instance.maxConnections")]


def test_a_quota_problem_is_told_alone_without_the_pool_arithmetic_behind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """21 services of 80 pooled connections would also overflow the pools, but the quota is the fix to make first."""
    settings = prod_serving(monkeypatch, services(21, pool_size=40), "per-service")
    assert problems_of(settings) == [proxies_over_quota(21)]


@pytest.mark.parametrize(("stack", "proxy", "mode"), [
    pytest.param("prod", None, "shared", id="primary-aws-stack-defaults-to-shared"),
    pytest.param("local", None, "none", id="local-defaults-to-none"),
    pytest.param("prod-eu-west-1", None, "none", id="region-stack-defaults-to-none"),
    pytest.param("dev", "none", "none", id="as-set-none"),
    pytest.param("prod", "per-service", "per-service", id="as-set-per-service"),
    pytest.param("local", "shared", "shared", id="as-set-even-where-refused"),
])
def test_the_proxy_mode_is_the_one_set_else_the_stacks_default(stack: str, proxy: str | None, mode: str) -> None:
    assert effective_proxy_mode(with_proxy(stack, proxy)) == mode


# a: 60 + 40 pooled connections, b: 10 + 5; each with a migrator holding 2.
TWO = Catalog(services=(service("a", 60, 40), service("b", 10, 5)))


def test_the_proxies_budget_is_max_connections_less_reserved_and_migrator_connections() -> None:
    assert proxy_budget(TWO, 1000, 50) == 946


@pytest.mark.parametrize(("mode", "expected"), [
    pytest.param("shared", [ProxyPool("shared", ("a", "b"), 115, 12, 6, 1000)], id="shared-12-percent-for-115"),
    pytest.param("per-service", [ProxyPool("a", ("a",), 100, 10, 5, 1000), ProxyPool("b", ("b",), 15, 2, 1, 1000)],
                 id="per-service-10-and-2-percent"),
    pytest.param("none", [], id="none"),
])
def test_each_proxy_pool_is_the_percentage_its_services_pools_need_with_half_of_it_idle(
        mode: str, expected: list[ProxyPool]) -> None:
    assert proxy_pools(TWO, mode=mode, max_connections=1000, reserved=50, idle_pool_percent=50) == expected


def test_a_per_service_pool_rounds_up_to_its_services_need_when_that_still_fits() -> None:
    """100 connections of 150 are 66.7 %: 67 % opens 100 (rounded down), exactly the 100 left after reserved 48
    and the migrator's 2, where a cap computed from the budget would round down to 66 %."""
    catalog = Catalog(services=(service("a", 60, 40),))
    assert proxy_pools(catalog, mode="per-service", max_connections=150, reserved=48, idle_pool_percent=0) == [
        ProxyPool("a", ("a",), 100, 67, 0, 150)]


def test_a_service_needing_more_than_the_whole_instance_gets_100_percent_and_is_refused_in_these_words() -> None:
    catalog = Catalog(services=(service("a", 150, 50),))
    with pytest.raises(ValueError, match=r"^the proxies' pools open 150 connections, over the 100 left for them "
                       r"\(max_connections 150 - reserved 48 - migrators\)$"):
        proxy_pools(catalog, mode="per-service", max_connections=150, reserved=48, idle_pool_percent=50)
