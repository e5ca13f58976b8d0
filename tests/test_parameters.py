"""config/parameters.py: the parameter group every instance gets, parameter by parameter."""

from __future__ import annotations

from config.parameters import Parameter, platform_parameters
from config.settings import InstanceSettings


def test_the_default_instance_gets_the_platform_parameters_with_their_apply_methods() -> None:
    """Apply methods from the family's table (static: pending-reboot); rds.force_ssl is left out on postgres15,
    where 1 is the default (setting it diffs on every preview)."""
    assert platform_parameters(InstanceSettings()) == [
        Parameter("ssl_min_protocol_version", "TLSv1.2", "immediate"),
        Parameter("shared_preload_libraries", "pg_stat_statements,pgaudit,pg_cron", "pending-reboot"),
        Parameter("pgaudit.log", "ddl,role", "immediate"),
        Parameter("pgaudit.role", "rds_pgaudit", "immediate"),
        Parameter("log_connections", "1", "immediate"),
        Parameter("log_disconnections", "1", "immediate"),
        Parameter("log_min_duration_statement", "100", "immediate"),
        Parameter("rds.logical_replication", "1", "pending-reboot"),
        Parameter("idle_in_transaction_session_timeout", "60000", "immediate"),
        Parameter("max_connections", "1000", "pending-reboot"),
        # the lock table's headroom (issue 11: advisory locks cannot be revoked on RDS)
        Parameter("max_locks_per_transaction", "256", "pending-reboot"),
        # scheduled maintenance (issue 17, config/maintenance.py)
        Parameter("autovacuum_vacuum_scale_factor", "0.05", "immediate"),
        Parameter("autovacuum_analyze_scale_factor", "0.02", "immediate"),
        Parameter("autovacuum_vacuum_insert_scale_factor", "0.05", "immediate"),
        Parameter("autovacuum_vacuum_cost_limit", "2000", "immediate"),
        Parameter("log_autovacuum_min_duration", "10000", "immediate"),
        Parameter("cron.database_name", "edumatrix", "pending-reboot"),
        Parameter("log_parameter_max_length", "0", "immediate"),
        Parameter("log_min_error_statement", "panic", "immediate"),
        Parameter("temp_file_limit", "1048576", "immediate"),
        Parameter("rds.restrict_password_commands", "1", "pending-reboot"),
    ]


def test_the_stacks_typed_settings_become_their_parameters() -> None:
    instance = InstanceSettings(ssl_min_protocol_version="TLSv1.2", log_min_duration_statement_ms=250,
                                idle_in_transaction_session_timeout_ms=30_000, max_connections=800)
    values = {p.name: p.value for p in platform_parameters(instance)}
    assert (values["ssl_min_protocol_version"], values["log_min_duration_statement"],
            values["idle_in_transaction_session_timeout"], values["max_connections"]) == ("TLSv1.2", "250", "30000",
                                                                                        "800")


def test_extra_parameters_come_after_the_platforms_sorted_and_apply_as_their_family_table_says() -> None:
    instance = InstanceSettings(parameters={"work_mem": "65536", "autovacuum_naptime": "30",
                                            "max_prepared_transactions": "10"})
    assert platform_parameters(instance)[-3:] == [Parameter("autovacuum_naptime", "30", "immediate"),
                                                  Parameter("max_prepared_transactions", "10", "pending-reboot"),
                                                  Parameter("work_mem", "65536", "immediate")]
