"""`edumatrix-db health [SERVICE]`: what needs maintenance in a service's schema, each finding with its fix
(spec 5.B: index maintenance, statistics updates, vacuum scheduling).

Rules (thresholds below; each reads statistics, never the tables' data):
- `dead-tuples`: many dead rows waiting for vacuum (`pg_stat_user_tables.n_dead_tup`);
- `table-bloat`: free and dead space of a table, estimated from the visibility map
  (`pgstattuple_approx`, which skips all-visible pages);
- `index-bloat`: a B-tree whose leaf pages are mostly empty (`pgstatindex().avg_leaf_density`; a fresh
  B-tree is ~90 % dense);
- `unused-index`: no scan since statistics were reset, and not backing a constraint;
- `duplicate-index`: two indexes on the same columns, operator classes, expressions and predicate;
- `never-vacuumed`, `never-analyzed`: tables with rows that no (auto)vacuum/analyze has touched;
- `xid-age`: a table's oldest unfrozen transaction ID past half of `autovacuum_freeze_max_age`.

Needs a login with pg_monitor (statistics of every role, pgstattuple's functions: pg_stat_scan_tables)
and the pgstattuple extension (local server: created at bootstrap; RDS: components/maintenance.py).
"""

from __future__ import annotations

from typing import Any

import psycopg

from config.access import AccessModel
from config.naming import quote_ident
from edumatrix_db.ops.findings import Finding

DEAD_TUPLES_MIN = 10_000
DEAD_RATIO = 0.10
TABLE_BLOAT_PERCENT = 30.0
TABLE_BLOAT_MIN_BYTES = 8 * 1024 * 1024
INDEX_DENSITY_PERCENT = 50.0
INDEX_BLOAT_MIN_LEAF_PAGES = 10
XID_AGE_SHARE = 0.5


def _extension_schema(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n "
                       "ON n.oid = e.extnamespace WHERE e.extname = %s", [name]).fetchone()
    return None if row is None else str(row[0])


def check_service(conn: psycopg.Connection[Any], service: str, schema: str) -> list[Finding]:
    findings: list[Finding] = []

    def add(rule: str, obj: str, message: str, fix: str) -> None:
        findings.append(Finding(rule, service, obj, message, fix))

    tables = conn.execute(
        "SELECT relname, n_live_tup, n_dead_tup, last_vacuum, last_autovacuum, last_analyze, last_autoanalyze "
        "FROM pg_stat_user_tables WHERE schemaname = %s ORDER BY relname", [schema]).fetchall()
    for name, live, dead, vac, autovac, ana, autoana in tables:
        obj = f"{schema}.{name}"
        qualified = f"{quote_ident(schema)}.{quote_ident(name)}"
        if dead >= DEAD_TUPLES_MIN and dead > DEAD_RATIO * (live + dead):
            add("dead-tuples", obj, f"{dead} dead rows ({100 * dead / (live + dead):.0f} % of the table) wait for "
                "vacuum", f"VACUUM (ANALYZE) {qualified}; if it recurs, set a lower autovacuum_vacuum_scale_factor "
                "for the table in a migration (maintenance.table_storage_sql)")
        if live + dead > 0 and vac is None and autovac is None:
            add("never-vacuumed", obj, "no vacuum has run on this table", f"VACUUM (ANALYZE) {qualified}")
        if live + dead > 0 and ana is None and autoana is None:
            add("never-analyzed", obj, "the planner has no statistics for this table",
                f"ANALYZE {qualified} (after bulk loads: a pg_cron job, maintenance.analyze)")
    stattuple = _extension_schema(conn, "pgstattuple")
    if stattuple is not None:
        for name, free, dead_pct, size in conn.execute(
            f"SELECT c.relname, s.approx_free_percent, s.dead_tuple_percent, pg_table_size(c.oid) FROM pg_class c, "
            f"LATERAL {stattuple}.pgstattuple_approx(c.oid) s WHERE c.relnamespace = %s::regnamespace "
            "AND c.relkind = 'r' AND pg_table_size(c.oid) >= %s".encode(), [schema, TABLE_BLOAT_MIN_BYTES]
        ).fetchall():
            if free + dead_pct >= TABLE_BLOAT_PERCENT:
                add("table-bloat", f"{schema}.{name}", f"about {free + dead_pct:.0f} % of {size} bytes is free or dead",
                    f"VACUUM {quote_ident(schema)}.{quote_ident(name)} makes it reusable; to give it back, "
                    "pg_repack or VACUUM FULL in a maintenance window (locks the table)")
        for name, density, leaves in conn.execute(
            f"SELECT i.relname, s.avg_leaf_density, s.leaf_pages FROM pg_class i JOIN pg_index x "
            f"ON x.indexrelid = i.oid JOIN pg_am a ON a.oid = i.relam, LATERAL {stattuple}.pgstatindex(i.oid) s "
            "WHERE i.relnamespace = %s::regnamespace AND a.amname = 'btree' AND i.relkind = 'i'".encode(), [schema]
        ).fetchall():
            if leaves >= INDEX_BLOAT_MIN_LEAF_PAGES and density < INDEX_DENSITY_PERCENT:
                add("index-bloat", f"{schema}.{name}", f"leaf pages are {density:.0f} % full ({leaves} pages); a "
                    "fresh B-tree is about 90 % full", f"REINDEX INDEX CONCURRENTLY {quote_ident(schema)}."
                    f"{quote_ident(name)}; if it recurs, schedule it (maintenance.reindex)")
    for name, table in conn.execute(
        "SELECT s.indexrelname, s.relname FROM pg_stat_user_indexes s JOIN pg_index x ON x.indexrelid = s.indexrelid "
        "WHERE s.schemaname = %s AND s.idx_scan = 0 AND NOT x.indisunique AND NOT x.indisprimary "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid) ORDER BY 1", [schema]
    ).fetchall():
        add("unused-index", f"{schema}.{name}", f"never scanned since statistics were reset (table {table}); it "
            "still costs every write", f"if production statistics agree: DROP INDEX CONCURRENTLY "
            f"{quote_ident(schema)}.{quote_ident(name)} in a migration")
    for first, second in conn.execute(
        "SELECT a.relname, b.relname FROM pg_index xa JOIN pg_index xb ON xa.indrelid = xb.indrelid "
        "AND xa.indexrelid < xb.indexrelid AND xa.indkey = xb.indkey AND xa.indclass = xb.indclass "
        "AND coalesce(pg_get_expr(xa.indexprs, xa.indrelid), '') = coalesce(pg_get_expr(xb.indexprs, xb.indrelid), '') "
        "AND coalesce(pg_get_expr(xa.indpred, xa.indrelid), '') = coalesce(pg_get_expr(xb.indpred, xb.indrelid), '') "
        "JOIN pg_class a ON a.oid = xa.indexrelid JOIN pg_class b ON b.oid = xb.indexrelid "
        "WHERE a.relnamespace = %s::regnamespace ORDER BY 1, 2", [schema]
    ).fetchall():
        add("duplicate-index", f"{schema}.{second}", f"indexes the same as {first}",
            f"drop one of them (DROP INDEX CONCURRENTLY {quote_ident(schema)}.{quote_ident(second)}) in a migration")
    for name, age, limit in conn.execute(
        "SELECT c.relname, age(c.relfrozenxid), current_setting('autovacuum_freeze_max_age')::bigint FROM pg_class c "
        "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'm', 't') ORDER BY 2 DESC", [schema]
    ).fetchall():
        if age > XID_AGE_SHARE * limit:
            add("xid-age", f"{schema}.{name}", f"transaction ID age {age} is past half of autovacuum_freeze_max_age "
                f"({limit}); at the limit an anti-wraparound vacuum is forced", f"VACUUM (FREEZE) "
                f"{quote_ident(schema)}.{quote_ident(name)} at a quiet time")
    return findings


def check(conn: psycopg.Connection[Any], model: AccessModel, services: list[str] | None = None) -> list[Finding]:
    """Findings for the named services (all services when None)."""
    chosen = [s for s in model.services if services is None or s.service in services]
    return [f for s in chosen for f in check_service(conn, s.service, s.schema)]
