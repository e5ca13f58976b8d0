"""`edumatrix-db docs SERVICE`: a service's schema documented from the live catalog (spec 7.A "entity
relationships, index strategies, partition schemes, growth projections"; 7.B "performance baselines:
query patterns, resource utilization, growth trends").

What it reads (a login with pg_monitor: the local admin; on RDS the master or the ops login):
- structure: `catalog_snapshot.schema_snapshot` (tables, columns, keys, indexes, triggers, routines);
- sizes and row estimates: `pg_total_relation_size`, `pg_indexes_size`, `pg_class.reltuples`;
- what each index serves: the constraint it backs, else the columns it orders, and its use since the
  statistics were last reset (`pg_stat_user_indexes.idx_scan`);
- partitions: `pg_partitioned_table` keys and each partition's bound;
- tenant isolation: `institution_id` present, RLS enabled and forced, the policies;
- pg_cron jobs of the service (`cron.job`, last run);
- growth: needs a history of size samples, which nobody keeps yet (the metrics collector of the
  connection issue samples sizes but stores no history): the report says so;
- performance baseline: the top statements by total execution time of the service's roles
  (`pg_stat_statements`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import psycopg

from config.access import AccessModel
from edumatrix_db.database.catalog_snapshot import schema_snapshot
from edumatrix_db.database.cron import service_jobs
from edumatrix_db.database.tenancy import TENANT_COLUMN
from edumatrix_db.ops.migrate import version_table

TOP_STATEMENTS = 10
NO_HISTORY = ("no history yet: growth needs size samples kept over time; the metrics collector samples "
              "schema sizes but keeps no history so far (README, Limits)")
_KEY_KINDS = {"p": "primary key", "f": "foreign key", "u": "unique", "c": "check", "x": "exclusion"}


def _statements_relation(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT quote_ident(n.nspname) || '.pg_stat_statements' FROM pg_extension e "
                       "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
                       ).fetchone()
    return None if row is None else str(row[0])


def collect(conn: psycopg.Connection[Any], model: AccessModel, service: str,
            migrator: psycopg.Connection[Any] | None = None) -> dict[str, Any]:
    """Everything the documentation shows, as plain data (the JSON format). `migrator` (a connection of
    the service's migrator) lists its pg_cron jobs; without it the jobs are reported as not visible."""
    access = model.service(service)
    schema = access.schema
    snap = schema_snapshot(conn, schema)
    stats = {name: rest for name, *rest in conn.execute(
        "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid), "
        "pg_total_relation_size(c.oid), pg_get_partkeydef(c.oid) FROM pg_class c "
        "WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'm')", [schema]).fetchall()}
    tables = []
    for name, rel in snap["relations"].items():
        if rel["kind"] not in ("r", "p", "m"):
            continue
        rows, table_bytes, index_bytes, total_bytes, partkey = stats[name]
        columns = [c for c in snap["columns"].values() if c["table"] == name]
        policies = [k.split(".", 1)[1] for k, p in snap["policies"].items() if p["table"] == name]
        tables.append({
            "name": name, "kind": {"r": "table", "p": "partitioned table", "m": "materialized view"}[rel["kind"]],
            "comment": rel["comment"], "rows_estimate": max(rows, 0), "table_bytes": table_bytes,
            "index_bytes": index_bytes, "total_bytes": total_bytes, "storage_options": rel["options"],
            "partition_key": partkey, "partition_of": rel["parent"], "partition_bound": rel["partition_bound"],
            "columns": [{"name": c["column"], "type": c["type"], "nullable": not c["not_null"],
                         "default": c["default"]} for c in columns],
            "tenant_isolation": {
                "column": any(c["column"] == TENANT_COLUMN for c in columns), "rls": rel["rls"],
                "forced": rel["force_rls"], "policies": policies,
            },
        })
    keys = [{"table": c["table"], "name": c["name"], "kind": _KEY_KINDS.get(c["kind"], c["kind"]),
             "definition": c["definition"], "references": c["references"]} for c in snap["constraints"].values()]
    usage = {name: rest for name, *rest in conn.execute(
        "SELECT s.indexrelname, s.idx_scan, s.idx_tup_read, pg_relation_size(s.indexrelid) "
        "FROM pg_stat_user_indexes s WHERE s.schemaname = %s", [schema]).fetchall()}
    backs = {c["name"]: c for c in snap["constraints"].values() if c["kind"] in ("p", "u", "x")}
    indexes = []
    for name, index in snap["indexes"].items():
        scans, tuples_read, size = usage.get(name, (0, 0, 0))
        ordered = re.search(r"USING \w+ \((.*)\)", index["definition"])
        serves = (f"{_KEY_KINDS[backs[name]['kind']]} {name}" if name in backs
                  else f"lookups and ordering by ({ordered[1] if ordered else '?'})")
        indexes.append({"name": name, "table": index["table"], "definition": index["definition"], "bytes": size,
                        "scans": scans, "tuples_read": tuples_read, "serves": serves})
    return {
        "service": service,
        "schema": schema,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "stats_since": _stats_since(conn),
        "tables": tables,
        "keys": keys,
        "indexes": indexes,
        "functions": [{"signature": sig, "kind": f["kind"]} for sig, f in snap["functions"].items()],
        "triggers": [{"table": t["table"], "name": key.split(".", 1)[1], "definition": t["definition"]}
                     for key, t in snap["triggers"].items()],
        "jobs": None if migrator is None else [
            {k: (str(v) if isinstance(v, dt.datetime) else v) for k, v in job.items()}
            for job in service_jobs(migrator, service)],
        "growth": {"history": False, "note": NO_HISTORY},
        "top_statements": _top_statements(conn, [r.name for r in access.login_roles]),
    }


def _stats_since(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute("SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def _top_statements(conn: psycopg.Connection[Any], roles: list[str]) -> list[dict[str, Any]]:
    relation = _statements_relation(conn)
    if relation is None:
        return []
    rows = conn.execute(
        f"SELECT r.rolname, s.calls, round(s.total_exec_time::numeric, 3), round(s.mean_exec_time::numeric, 3), "
        f"s.rows, s.query FROM {relation} s JOIN pg_roles r ON r.oid = s.userid "
        "WHERE r.rolname = ANY(%s) AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "ORDER BY s.total_exec_time DESC LIMIT %s".encode(), [roles, TOP_STATEMENTS]).fetchall()
    return [{"role": role, "calls": calls, "total_ms": float(total), "mean_ms": float(mean), "rows": n,
             "query": " ".join(query.split())} for role, calls, total, mean, n, query in rows]


# -- Markdown ----------------------------------------------------------------------------------------------
def _mermaid_type(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_")


def _key_columns(definition: str) -> list[str]:
    m = re.match(r"(?:PRIMARY KEY|UNIQUE|FOREIGN KEY) \(([^)]*)\)", definition)
    return [c.strip() for c in m[1].split(",")] if m else []


def mermaid(doc: dict[str, Any]) -> str:
    """A Mermaid ER diagram: tables with columns (PK/FK/UK marks) and one edge per foreign key."""
    marks: dict[tuple[str, str], list[str]] = {}
    for key in doc["keys"]:
        mark = {"primary key": "PK", "foreign key": "FK", "unique": "UK"}.get(key["kind"], "")
        for column in _key_columns(key["definition"]) if mark else []:
            marks.setdefault((key["table"], column), [])
            if mark not in marks[(key["table"], column)]:
                marks[(key["table"], column)].append(mark)
    lines = ["erDiagram"]
    for table in doc["tables"]:
        lines.append(f"    {table['name']} {{")
        for column in table["columns"]:
            mark = ", ".join(marks.get((table["name"], column["name"]), []))
            lines.append(f"        {_mermaid_type(column['type'])} {column['name']}{' ' + mark if mark else ''}")
        lines.append("    }")
    for key in doc["keys"]:
        if key["kind"] == "foreign key" and key["references"]:
            parent = key["references"].split(".")[-1]
            lines.append(f'    {parent} ||--o{{ {key["table"]} : "{key["name"]}"')
    return "\n".join(lines)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def markdown(doc: dict[str, Any]) -> str:
    out: list[str] = [f"# {doc['schema']}: schema documentation", "",
           f"Generated {doc['generated_at']} from the live catalog; usage statistics since "
           f"{doc['stats_since'] or 'the server started'}.", "", "## Entity relationships", "", "```mermaid",
           mermaid(doc), "```", "", "## Tables", "",
           "| table | kind | rows (estimate) | table | indexes | total | storage options | tenant isolation |",
           "|---|---|---|---|---|---|---|---|"]
    for t in doc["tables"]:
        iso = t["tenant_isolation"]
        status = ("migration history (no tenant data)" if t["name"] == version_table(doc["service"]) else
                  "isolated" if iso["column"] and iso["rls"] and iso["forced"] and iso["policies"]
                  else "NOT isolated: " + ", ".join(w for w, ok in (
                      (TENANT_COLUMN, iso["column"]), ("RLS", iso["rls"]), ("FORCE", iso["forced"]),
                      ("policy", bool(iso["policies"]))) if not ok) + " missing")
        out.append(f"| {t['name']} | {t['kind']} | {t['rows_estimate']} | {_size(t['table_bytes'])} | "
                   f"{_size(t['index_bytes'])} | {_size(t['total_bytes'])} | {', '.join(t['storage_options']) or '-'} "
                   f"| {status} |")
    out += ["", "## Keys", "", "| table | constraint | kind | definition |", "|---|---|---|---|"]
    out += [f"| {k['table']} | {k['name']} | {k['kind']} | `{k['definition']}` |" for k in doc["keys"]]
    out += ["", "## Indexes and what they serve", "",
            "| index | table | serves | scans | size | definition |", "|---|---|---|---|---|---|"]
    out += [f"| {i['name']} | {i['table']} | {i['serves']} | {i['scans'] if i['scans'] else 'unused'} | "
            f"{_size(i['bytes'])} | `{i['definition']}` |" for i in doc["indexes"]]
    partitioned = [t for t in doc["tables"] if t["partition_key"] or t["partition_of"]]
    out += ["", "## Partitions", ""]
    out += [f"- {t['name']}: " + (f"partitioned by {t['partition_key']}" if t["partition_key"]
                                   else f"partition of {t['partition_of']} {t['partition_bound']}")
            for t in partitioned] or ["No partitioned tables."]
    out += ["", "## Routines and triggers", ""]
    out += [f"- {f['signature']}" for f in doc["functions"]]
    out += [f"- trigger {t['name']} on {t['table']}: `{t['definition']}`" for t in doc["triggers"]]
    out += ["", "## Scheduled maintenance (pg_cron)", ""]
    if doc["jobs"] is None:
        out.append("Not listed: pg_cron shows a login only its own jobs; pass the migrator's connection.")
    else:
        out += [f"- {j['name']} `{j['schedule']}`: `{j['command']}` (runs as {j['username']}; last run: "
                f"{j['last_status'] or 'not yet'})" for j in doc["jobs"]] or ["No jobs."]
    out += ["", "## Growth", "", doc["growth"]["note"], "", "## Performance baseline: top statements by total time",
            "", "| role | calls | total ms | mean ms | rows | statement |", "|---|---|---|---|---|---|"]
    out += [f"| {s['role']} | {s['calls']} | {s['total_ms']} | {s['mean_ms']} | {s['rows']} | "
            f"`{s['query'][:200].replace('|', '/')}` |" for s in doc["top_statements"]]
    if not doc["top_statements"]:
        out.append("| - | - | - | - | - | no statements recorded for this service yet |")
    return "\n".join(out) + "\n"
