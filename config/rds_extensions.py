"""Which PostgreSQL extensions RDS for PostgreSQL offers, per major version, and which of them work only when
preloaded. Facts about AWS, read by the policy pack (policy/aws_api_services.py).

Source: the extensions RDS for PostgreSQL reports in `pg_available_extension_versions` (the list AWS publishes in
"Extension versions for Amazon RDS for PostgreSQL", PostgreSQLReleaseNotes/postgresql-extensions.html, and in
`rds.extensions` of the default parameter group), as recorded for PostgreSQL 14 at
https://zenn.dev/zenn_nh/scraps/6ab64a31b55997 (the only complete copy reachable offline). The PostgreSQL 15
list there starts identically but our copy is cut short, so 15 and 16 use the 14 list without plcoffee and plls
(PLV8 3.x, shipped from 15, dropped them). A lower bound: an extension added to RDS later is refused until it is
added here (README, Limits).
"""

from __future__ import annotations

_RDS_PG14 = frozenset({
    "address_standardizer", "address_standardizer_data_us", "amcheck", "autoinc", "aws_commons", "aws_lambda",
    "aws_s3", "bloom", "bool_plperl", "btree_gin", "btree_gist", "citext", "cube", "dblink", "dict_int",
    "dict_xsyn", "earthdistance", "flow_control", "fuzzystrmatch", "h3", "h3_postgis", "hll", "hstore",
    "hstore_plperl", "hypopg", "insert_username", "intagg", "intarray", "ip4r", "isn", "jsonb_plperl", "lo",
    "log_fdw", "ltree", "moddatetime", "mysql_fdw", "oracle_fdw", "orafce", "pageinspect", "pgactive", "pgaudit",
    "pgcrypto", "pglogical", "pgrouting", "pgrowlocks", "pgstattuple", "pgtap", "pg_bigm", "pg_buffercache",
    "pg_cron", "pg_freespacemap", "pg_hint_plan", "pg_partman", "pg_prewarm", "pg_proctab", "pg_repack",
    "pg_similarity", "pg_stat_statements", "pg_tle", "pg_transport", "pg_trgm", "pg_visibility", "plcoffee", "plls",
    "plperl", "plpgsql", "plprofiler", "plrust", "pltcl", "plv8", "postgis", "postgis_raster",
    "postgis_tiger_geocoder", "postgis_topology", "postgres_fdw", "prefix", "rdkit", "rds_tools", "refint", "seg",
    "sslinfo", "tablefunc", "tcn", "tds_fdw", "test_parser", "tsm_system_rows", "tsm_system_time", "unaccent",
    "uuid-ossp", "vector"
})

RDS_EXTENSIONS: dict[str, frozenset[str]] = {
    "14": _RDS_PG14,
    "15": _RDS_PG14 - {"plcoffee", "plls"},
    "16": _RDS_PG14 - {"plcoffee", "plls"},
}

# extension -> what happens when it is not in shared_preload_libraries
PRELOADED_EXTENSIONS: dict[str, str] = {
    "pg_cron": "CREATE EXTENSION fails (\"unrecognized configuration parameter cron.database_name\"; AWS RDS user "
               "guide, pg_cron: \"add pg_cron to the shared_preload_libraries parameter\")",
    "pgaudit": "nothing is audited (\"pgaudit must be loaded via shared_preload_libraries\"; AWS RDS user guide, "
               "\"Using pgAudit to log database activity\")",
    "pg_stat_statements": "its view fails (\"pg_stat_statements must be loaded via shared_preload_libraries\")",
}


def supported_extensions(major: str) -> frozenset[str] | None:
    """The extensions RDS offers for a PostgreSQL major version, or None when no list is checked in."""
    return RDS_EXTENSIONS.get(str(major))
