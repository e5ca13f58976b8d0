"""The connection layer's arithmetic and rules (pure): which RDS Proxy a service goes through, how big each
proxy's pool is, and what a stack may not ask for. `components/connection_layer.py` declares it.

Pool arithmetic (spec 2.A "service-specific sizing", 8.B connection limits). Each service's app and
read-only roles have a connection limit (their pool sizes, `config/catalog.py`); the loader already checks
that all limits plus `reservedConnections` fit `maxConnections`. A proxy's pool is a percentage of
`max_connections` (`MaxConnectionsPercent`, 1-100, AWS API `ConnectionPoolConfiguration`); it is sized to
hold the pools of the services behind it and never more than the connections left for proxies
(`maxConnections - reservedConnections - migrator connections`, migrations connect directly), summed over
all proxies. `MaxIdleConnectionsPercent` is `idlePoolPercent` of that (AWS: at most MaxConnectionsPercent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from config.catalog import Catalog, ServiceSpec
from config.errors import Problem
from config.naming import RoleKind
from config.settings import NAMESPACE, StackSettings

# AWS quotas (RDS user guide, "Quotas and limitations for RDS Proxy"): 20 proxies per account and Region,
# 20 additional endpoints per proxy, 200 Secrets Manager secrets per proxy.
MAX_PROXIES_PER_REGION = 20
MAX_ENDPOINTS_PER_PROXY = 20
MAX_SECRETS_PER_PROXY = 200
PROXIED_KINDS = (RoleKind.APP, RoleKind.READONLY)


@dataclass(frozen=True)
class ProxyPool:
    """One proxy: the services behind it and its pool, as RDS Proxy is told and as it will open it."""

    name: str  # suffix of the proxy's name: "shared" or the service
    services: tuple[str, ...]
    demand: int  # the connection limits of the proxied roles of those services
    max_connections_percent: int
    max_idle_connections_percent: int
    max_connections: int  # the instance's max_connections

    @property
    def connections(self) -> int:
        """Server connections the proxy may open: MaxConnectionsPercent of max_connections (rounded down)."""
        return self.max_connections * self.max_connections_percent // 100


def proxied_demand(service: ServiceSpec) -> int:
    limits = service.connection_limits()
    return sum(limits[k] for k in PROXIED_KINDS)


def proxy_budget(catalog: Catalog, max_connections: int, reserved: int) -> int:
    """Connections all proxies together may open: what is left after reserved and migrator connections."""
    migrators = sum(s.connection_limits()[RoleKind.MIGRATOR] for s in catalog)
    return max_connections - reserved - migrators


def effective_proxy_mode(settings: StackSettings) -> str:
    """`connections.proxy` as set, else shared for a primary AWS stack and none for local and region stacks."""
    if settings.connections.proxy is not None:
        return settings.connections.proxy
    return "none" if settings.is_local or settings.is_region_stack else "shared"


def proxy_pools(catalog: Catalog, *, mode: str, max_connections: int, reserved: int,
                idle_pool_percent: int) -> list[ProxyPool]:
    """The proxies of a stack and their pools; [] for mode none. Raises ValueError if they cannot fit."""
    if mode == "none":
        return []
    groups = ([("shared", tuple(catalog))] if mode == "shared"
              else [(s.name, (s,)) for s in catalog])
    budget = proxy_budget(catalog, max_connections, reserved)
    pools = []
    for name, services in groups:
        demand = sum(proxied_demand(s) for s in services)
        wanted = math.ceil(100 * demand / max_connections)
        # never more than the budget allows (a percentage rounds; the cap rounds down)
        cap = 100 * budget // max_connections if mode == "shared" else wanted
        percent = max(1, min(100, wanted, cap))
        idle = percent * idle_pool_percent // 100
        pools.append(ProxyPool(name, tuple(s.name for s in services), demand, percent, idle, max_connections))
    opened = sum(p.connections for p in pools)
    if opened > budget:
        raise ValueError(f"the proxies' pools open {opened} connections, over the {budget} left for them "
                         f"(max_connections {max_connections} - reserved {reserved} - migrators)")
    return pools


def connection_problems(settings: StackSettings) -> list[Problem]:
    """What a stack's `connections` may not ask for: a proxy where there can be none, pools over budget."""
    src, key = settings.source, f"{NAMESPACE}:connections.proxy"
    asked = settings.connections.proxy
    problems: list[Problem] = []
    if asked not in (None, "none"):
        if settings.is_local:
            problems.append(Problem(src, key, "the local stack has no RDS instance for a proxy; it runs PgBouncer "
                                              "(edumatrix-db local up)", "remove the key"))
        elif settings.is_region_stack:
            problems.append(Problem(
                src, key, "a region stack's instance is a read replica, and RDS Proxy can only target the writer "
                          "instance (AWS: 'you can associate a proxy only with the writer DB instance, not a read "
                          "replica'); a promoted region gets its proxy in a follow-up change (not built yet)",
                "remove the key (region stacks default to none)"))
    if problems:
        return problems
    mode = effective_proxy_mode(settings)
    catalog = settings.catalog()
    if mode == "per-service" and len(catalog) > MAX_PROXIES_PER_REGION:
        problems.append(Problem(src, key, f"{len(catalog)} services need {len(catalog)} proxies; AWS allows "
                                          f"{MAX_PROXIES_PER_REGION} per account and Region",
                                "use proxy: shared (one proxy, one endpoint per service)"))
    if mode == "shared" and len(catalog) > MAX_ENDPOINTS_PER_PROXY:
        problems.append(Problem(src, key, f"{len(catalog)} services need {len(catalog)} proxy endpoints; AWS allows "
                                          f"{MAX_ENDPOINTS_PER_PROXY} per proxy", "use proxy: per-service"))
    if mode != "none" and 2 * len(catalog) > MAX_SECRETS_PER_PROXY:
        problems.append(Problem(src, key, f"a proxy holds at most {MAX_SECRETS_PER_PROXY} secrets", "split"))
    if not problems and mode != "none":
        inst = settings.instance
        try:
            proxy_pools(catalog, mode=mode, max_connections=inst.max_connections, reserved=inst.reserved_connections,
                        idle_pool_percent=settings.connections.idle_pool_percent)
        except ValueError as exc:
            problems.append(Problem(src, f"{NAMESPACE}:services", str(exc),
                                    f"shrink poolSize/readonlyPoolSize or raise {NAMESPACE}:instance.maxConnections"))
    return problems
