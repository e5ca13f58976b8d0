"""The PostgreSQL parameters the platform sets on every instance it declares (pure data).

One function so the shared instance, read replicas and regional replicas cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from config.maintenance import AUTOVACUUM_PARAMETERS, PG_CRON, cron_parameters
from config.settings import InstanceSettings

ApplyMethod = Literal["immediate", "pending-reboot"]

# Libraries every instance preloads: query statistics and the audit extension (spec 4.A "query logging").
# pg_cron: scheduled per-schema maintenance (config/maintenance.py).
PRELOAD_LIBRARIES = ("pg_stat_statements", "pgaudit", PG_CRON)
PGAUDIT_LOG_CLASSES = ("ddl", "role")
# Lock-table headroom: every login may take session advisory locks on RDS (the master user cannot revoke the
# functions), and a full lock table refuses every new connection. 4x PostgreSQL's default of 64; measured
# cost at max_connections=1000: shared memory 184 MB -> 257 MB (`postgres -C shared_memory_size`, PG 15).
MAX_LOCKS_PER_TRANSACTION = 256


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str
    apply_method: ApplyMethod


def platform_parameters(instance: InstanceSettings) -> list[Parameter]:
    """Every parameter of the platform's parameter group, static ones applied at the next reboot."""
    managed = [
        Parameter("rds.force_ssl", "1", "immediate"),
        Parameter("ssl_min_protocol_version", instance.ssl_min_protocol_version, "immediate"),
        Parameter("shared_preload_libraries", ",".join(PRELOAD_LIBRARIES), "pending-reboot"),
        Parameter("pgaudit.log", ",".join(PGAUDIT_LOG_CLASSES), "immediate"),
        Parameter("log_connections", "1", "immediate"),
        Parameter("log_disconnections", "1", "immediate"),
        Parameter("log_min_duration_statement", str(instance.log_min_duration_statement_ms), "immediate"),
        Parameter("rds.logical_replication", "1", "pending-reboot"),
        Parameter("idle_in_transaction_session_timeout", str(instance.idle_in_transaction_session_timeout_ms),
                  "immediate"),
        Parameter("max_connections", str(instance.max_connections), "pending-reboot"),
        Parameter("max_locks_per_transaction", str(MAX_LOCKS_PER_TRANSACTION), "pending-reboot"),
    ]
    managed += [Parameter(name, value, "immediate") for name, value in AUTOVACUUM_PARAMETERS]
    managed += [Parameter(name, value, "pending-reboot") for name, value in cron_parameters(instance.database_name)]
    extra = [Parameter(name, value, "pending-reboot") for name, value in sorted(instance.parameters.items())]
    return managed + extra
