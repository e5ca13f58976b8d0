"""The PostgreSQL parameters the platform sets on every instance it declares (pure data).

One function so the shared instance, read replicas and regional replicas cannot drift apart. The apply method of
every parameter comes from the family's parameter table (config/rds_parameters): a static parameter is always
sent `pending-reboot`, which is the only method RDS accepts for it, and a dynamic one `immediate`. A parameter
whose value is the family's default on RDS is left out: the provider never reads such a parameter back, so it
would show as a change on every preview (hashicorp/terraform-provider-aws#23335; `rds.force_ssl=1` on postgres15
and later, cloud-gov/terraform-provision#1863).
"""

from __future__ import annotations

from dataclasses import dataclass

from config.access import AUDIT_ROLE
from config.maintenance import AUTOVACUUM_PARAMETERS, PG_CRON, cron_parameters
from config.parameter_table import ApplyMethod, parameter_table
from config.settings import InstanceSettings

# Libraries every instance preloads: query statistics and the audit extension (spec 4.A "query logging").
# pg_cron: scheduled per-schema maintenance (config/maintenance.py).
PRELOAD_LIBRARIES = ("pg_stat_statements", "pgaudit", PG_CRON)
PGAUDIT_LOG_CLASSES = ("ddl", "role")
# Log hygiene (spec 4.A GDPR). log_parameter_max_length=0: statements logged for their duration keep their text
# but not their bind parameters (personal data, pgcrypto keys). It is superuser-only in PostgreSQL 15 (pg_settings
# context `superuser`), so a service role cannot raise it; its sibling log_parameter_max_length_on_error (bind
# parameters in error lines) is user-settable and left at its default 0: a session may turn it on for itself, so
# that one is a default, not a control. log_min_error_statement=panic: the text of a failed statement is not
# logged (the error itself is); a failed `ALTER ROLE ... PASSWORD '...'`, e.g. from AWS's rotation function, would
# otherwise reach CloudWatch in clear.
LOG_PARAMETER_MAX_LENGTH = "0"
LOG_MIN_ERROR_STATEMENT = "panic"
# Lock-table headroom: every login may take session advisory locks on RDS (the master user cannot revoke the
# functions), and a full lock table refuses every new connection. 4x PostgreSQL's default of 64; measured
# cost at max_connections=1000: shared memory 184 MB -> 257 MB (`postgres -C shared_memory_size`, PG 15).
MAX_LOCKS_PER_TRANSACTION = 256


@dataclass(frozen=True)
class Parameter:
    name: str
    value: str
    apply_method: ApplyMethod


def platform_values(instance: InstanceSettings) -> dict[str, str]:
    """Name -> value of every parameter the platform decides, before defaults are left out."""
    return {
        "rds.force_ssl": "1",
        "ssl_min_protocol_version": instance.ssl_min_protocol_version,
        "shared_preload_libraries": ",".join(PRELOAD_LIBRARIES),
        "pgaudit.log": ",".join(PGAUDIT_LOG_CLASSES),
        # object audit (GDPR access tracking, docs/gdpr.md): reads and writes of the tables this role holds a
        # privilege on, i.e. the catalog's personal tables, are logged with the role; no session-wide read log
        "pgaudit.role": AUDIT_ROLE,
        "log_connections": "1",
        "log_disconnections": "1",
        "log_min_duration_statement": str(instance.log_min_duration_statement_ms),
        "rds.logical_replication": "1",
        "idle_in_transaction_session_timeout": str(instance.idle_in_transaction_session_timeout_ms),
        "max_connections": str(instance.max_connections),
        "max_locks_per_transaction": str(MAX_LOCKS_PER_TRANSACTION),
        **dict(AUTOVACUUM_PARAMETERS),
        **dict(cron_parameters(instance.database_name)),
        "log_parameter_max_length": LOG_PARAMETER_MAX_LENGTH,
        "log_min_error_statement": LOG_MIN_ERROR_STATEMENT,
        "temp_file_limit": str(instance.temp_file_limit_mb * 1024),  # the parameter's unit is kB
        # Only members of rds_password may set passwords: the master (rds_superuser is one) and the service logins
        # whose secrets AWS's single-user rotation function rotates (components/service_schema.py grants it).
        "rds.restrict_password_commands": "1",
    }


def platform_parameters(instance: InstanceSettings) -> list[Parameter]:
    """Every parameter of the platform's parameter group, each with the apply method its family requires."""
    table = parameter_table(instance.parameter_family)
    values = {**platform_values(instance), **dict(sorted(instance.parameters.items()))}
    out = []
    for name, value in values.items():
        spec = table.get(name)
        if spec is None:
            raise KeyError(f"{name} is not a {table.family} parameter (config/rds_parameters/{table.family}.json)")
        if spec.rds_default is not None and spec.rds_default == value:
            continue  # the family default already: sending it would only show a diff on every preview
        out.append(Parameter(name, value, spec.apply_method))
    return out
