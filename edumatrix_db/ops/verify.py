"""The one verification core: is a schema's data on a target the same as on a source?

Shared by extraction (`extract verify`, the check inside `cutover`) and recovery (`restore-schema --verify`):
both ask the same question of two databases (or two schemas of one database) and want the same answer, a
report a person can read that says exactly what differs.

How it compares, per table, without moving the rows to the client:
1. Shape first: the columns (name, type, order) and the primary key must be the same on both sides; a table
   whose shape differs is reported and its data is not compared (the row texts would differ anyway).
2. Each side computes, in the database and in one sequential scan, `count(*)` and `bit_xor` of a 64-bit hash
   of every row (`hash_record_extended`: each column by its type's hash function, so equal values such as
   numeric 1.0 and 1.00 hash equally; a table with a column type that has no hash function, like json, is
   hashed by its row text instead), grouped into buckets by a hash of the row's primary key. The two sides
   run at the same time (one thread each), so a verify costs about one scan of the larger side plus hashing.
3. Buckets whose counts or hashes differ are fetched key by key from both sides (one more scan, filtered to
   those buckets) and the difference is located to exact primary keys: missing on the target, extra on the
   target, changed.
Sequences are compared by their next value: the target must not be behind the source (it would hand out
keys the source already used).

Safety: both sessions run with `row_security = off`, so a role subject to row-level security gets an error
instead of silently comparing only the rows of one tenant; use the platform's data-movement role. Both
sessions use the same TimeZone, DateStyle, IntervalStyle and float output so equal values print equally.
A table without a primary key is compared as a whole (count and hash) and said so: a difference there cannot
be located.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROWS_PER_BUCKET = 2_000
"""Buckets are sized so that locating a difference re-reads about this many rows per differing bucket."""
MAX_BUCKETS = 65_536
SESSION_SETTINGS = {
    "row_security": "off",
    "TimeZone": "UTC",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
}


class VerifyError(RuntimeError):
    """The comparison could not run (missing schema, a role bound by row-level security, ...)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    estimated_rows: int


@dataclass
class TableVerdict:
    table: str
    source_rows: int | None = None
    target_rows: int | None = None
    shape_problem: str | None = None
    missing_on_target: list[str] = field(default_factory=list)
    extra_on_target: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    differing_keys_total: int = 0
    """All differing keys, also those beyond the listed sample."""
    unlocated: bool = False
    """No primary key: the table differs as a whole and the rows cannot be named."""

    @property
    def equal(self) -> bool:
        return (self.shape_problem is None and not self.unlocated and self.differing_keys_total == 0
                and self.source_rows == self.target_rows)


@dataclass(frozen=True)
class SequenceVerdict:
    sequence: str
    source_next: int | None
    target_next: int | None

    @property
    def ok(self) -> bool:
        return (self.source_next is not None and self.target_next is not None
                and self.target_next >= self.source_next)


@dataclass
class VerifyReport:
    source_schema: str
    target_schema: str
    tables: list[TableVerdict]
    sequences: list[SequenceVerdict]
    missing_tables: list[str]
    extra_tables: list[str]

    @property
    def ok(self) -> bool:
        return (not self.missing_tables and not self.extra_tables and all(t.equal for t in self.tables)
                and all(s.ok for s in self.sequences))

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        for table, table_verdict in zip(out["tables"], self.tables, strict=True):
            table["equal"] = table_verdict.equal
        for seq, seq_verdict in zip(out["sequences"], self.sequences, strict=True):
            seq["ok"] = seq_verdict.ok
        return out

    def render(self, console: Console) -> None:
        table = Table(title=f"verify {self.source_schema} -> {self.target_schema}")
        for heading in ("table", "source rows", "target rows", "verdict"):
            table.add_column(heading)
        for name in self.missing_tables:
            table.add_row(name, "", "", "[red]missing on target[/red]")
        for name in self.extra_tables:
            table.add_row(name, "", "", "[red]only on target[/red]")
        for t in self.tables:
            table.add_row(t.table, _n(t.source_rows), _n(t.target_rows), _verdict(t))
        for s in self.sequences:
            if not s.ok:
                table.add_row(s.sequence, _n(s.source_next), _n(s.target_next), "[red]sequence behind[/red]")
        console.print(table)
        equal = sum(t.equal for t in self.tables)
        console.print(
            f"{'[green]EQUAL[/green]' if self.ok else '[red]DIFFERENT[/red]'}: {equal}/{len(self.tables)} tables "
            f"equal, {sum(s.ok for s in self.sequences)}/{len(self.sequences)} sequences not behind, "
            f"{sum(t.source_rows or 0 for t in self.tables):,} source rows compared"
        )


def _n(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _verdict(t: TableVerdict) -> str:
    if t.shape_problem:
        return f"[red]shape differs: {t.shape_problem}[/red]"
    if t.unlocated:
        return "[red]differs (no primary key: rows cannot be named)[/red]"
    if t.equal:
        return "[green]equal[/green]"
    parts = []
    for label, keys in (("missing", t.missing_on_target), ("extra", t.extra_on_target), ("changed", t.changed)):
        if keys:
            parts.append(f"{label}: {', '.join(keys)}")
    more = t.differing_keys_total - len(t.missing_on_target) - len(t.extra_on_target) - len(t.changed)
    return "[red]" + "; ".join(parts) + (f" (+{more} more)" if more > 0 else "") + "[/red]"


def prepare_session(conn: psycopg.Connection[Any]) -> None:
    """The settings under which both sides print equal values equally, and RLS errors instead of filtering."""
    for name, value in SESSION_SETTINGS.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def table_shapes(conn: psycopg.Connection[Any], schema: str) -> dict[str, TableShape]:
    """Ordinary and partitioned tables of `schema` (partitions are read through their parent)."""
    rows = conn.execute(
        """
        SELECT c.relname,
               array_agg(a.attname::text ORDER BY a.attnum),
               array_agg(format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum),
               coalesce((SELECT array_agg(k.attname::text ORDER BY x.n)
                         FROM pg_index i
                         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS x(attnum, n)
                         JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = x.attnum
                         WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
               greatest(c.reltuples, 0)::bigint
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        GROUP BY c.oid, c.relname
        ORDER BY c.relname
        """,
        (schema,),
    ).fetchall()
    return {
        name: TableShape(name, tuple(Column(n, t) for n, t in zip(names, types, strict=True)), tuple(key), est)
        for name, names, types, key, est in rows
    }


def sequence_positions(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    """The next value each sequence of `schema` would hand out (without consuming one)."""
    rows = conn.execute(
        """
        SELECT s.sequencename, CASE WHEN s.last_value IS NULL THEN s.start_value
                                    ELSE s.last_value + s.increment_by END,
               has_sequence_privilege(format('%%I.%%I', s.schemaname, s.sequencename), 'SELECT')
        FROM pg_sequences s WHERE s.schemaname = %s
        """,
        (schema,),
    ).fetchall()
    unreadable = [name for name, _, readable in rows if not readable]
    if unreadable:
        # pg_sequences shows NULL, not an error, to a role without SELECT: never read that as "not started".
        raise VerifyError(f"cannot read sequences {', '.join(unreadable)} of {schema}: grant SELECT or use the "
                          "platform's data-movement role")
    return {name: int(next_value) for name, next_value, _ in rows}


def _row_hash(alias: str, *, by_text: bool = False) -> sql.Composable:
    """A 64-bit hash of the whole row: `hash_record_extended` hashes each column with its type's own hash
    function (no text formatting: several times faster); `by_text` hashes the row's text instead, for tables
    with a column type that has no hash function (json, xml, geometric types)."""
    if by_text:
        return sql.SQL("hashtextextended({}::text, 0)").format(sql.Identifier(alias))
    return sql.SQL("hash_record_extended({}, 0)").format(sql.Identifier(alias))


def _key_expr(alias: str, key: Sequence[str]) -> sql.Composable:
    """The primary key as text (a row constructor for composite keys), used for bucketing and naming rows."""
    cols = [sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(k)) for k in key]
    if len(cols) == 1:
        return sql.SQL("{}::text").format(cols[0])
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(cols))


def _bucket_expr(alias: str, key: Sequence[str], buckets: int) -> sql.Composable:
    """The bucket of a row: its primary key hashed by the key types' own hash functions (primary key types
    always have one: they are btree-indexed and, for every built-in key type, hashable)."""
    cols = sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(k)) for k in key)
    return sql.SQL("mod(hash_record_extended(ROW({}), 1) & 9223372036854775807, {})").format(
        cols, sql.Literal(buckets))


def needs_text_hash(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    """Whether some column type of the table has no extended hash function (then rows are hashed as text).

    Probed on a row of NULLs (`json_populate_record`): `hash_record_extended` looks up every column's hash
    function even for NULL fields, so the probe fails exactly when the real query would."""
    probe = sql.SQL("SELECT hash_record_extended(json_populate_record(NULL::{}.{}, '{{}}'), 0)").format(
        sql.Identifier(schema), sql.Identifier(table))
    try:
        conn.execute(probe)
    except psycopg.errors.UndefinedFunction:
        return True
    return False


def bucket_summaries(conn: psycopg.Connection[Any], schema: str, table: str, key: Sequence[str],
                     buckets: int, by_text: bool = False) -> dict[int, tuple[int, int]]:
    """{bucket: (rows, xor of row hashes)} for one table, computed in one scan."""
    query = sql.SQL(
        "SELECT {bucket} AS b, count(*), bit_xor({hash}) FROM {schema}.{table} AS t GROUP BY 1"
    ).format(bucket=_bucket_expr("t", key, buckets), hash=_row_hash("t", by_text=by_text),
             schema=sql.Identifier(schema), table=sql.Identifier(table))
    return {int(b): (int(n), int(h)) for b, n, h in conn.execute(query)}


def whole_table_summary(conn: psycopg.Connection[Any], schema: str, table: str,
                        by_text: bool = False) -> tuple[int, int]:
    query = sql.SQL("SELECT count(*), coalesce(sum({hash}::numeric), 0) FROM {schema}.{table} AS t").format(
        hash=_row_hash("t", by_text=by_text), schema=sql.Identifier(schema), table=sql.Identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None
    # A sum, not a xor: without a primary key two equal rows must not cancel out.
    return int(row[0]), int(row[1]) % (1 << 64)


def rows_in_buckets(conn: psycopg.Connection[Any], schema: str, table: str, key: Sequence[str], buckets: int,
                    chosen: Sequence[int], by_text: bool = False) -> dict[str, int]:
    """{primary key text: row hash} of the rows in the chosen buckets."""
    query = sql.SQL(
        "SELECT {key}, {hash} FROM {schema}.{table} AS t WHERE {bucket} = ANY(%s)"
    ).format(key=_key_expr("t", key), hash=_row_hash("t", by_text=by_text), bucket=_bucket_expr("t", key, buckets),
             schema=sql.Identifier(schema), table=sql.Identifier(table))
    return {k: int(h) for k, h in conn.execute(query, (list(chosen),))}


def bucket_count(estimated_rows: int) -> int:
    return max(1, min(MAX_BUCKETS, math.ceil(max(estimated_rows, 1) / ROWS_PER_BUCKET)))


def shape_problem(source: TableShape, target: TableShape) -> str | None:
    """Why two tables' shapes differ (columns, their order and types, the primary key), or None."""
    if source.columns != target.columns:
        missing = [c.name for c in source.columns if c not in target.columns]
        extra = [c.name for c in target.columns if c not in source.columns]
        detail = "; ".join(p for p in (f"target lacks {', '.join(missing)}" if missing else "",
                                       f"target adds {', '.join(extra)}" if extra else "") if p)
        return detail or "column order differs"
    if source.key != target.key:
        return f"primary key ({', '.join(source.key)}) vs ({', '.join(target.key)})"
    return None


def compare_table(source: psycopg.Connection[Any], target: psycopg.Connection[Any], source_schema: str,
                  target_schema: str, shape: TableShape, *, max_keys: int = 20,
                  pool: ThreadPoolExecutor) -> TableVerdict:
    """Compare one table whose shape is equal on both sides."""
    verdict = TableVerdict(shape.name)
    # Both sides hash the same way: the shapes are equal, so the source decides.
    by_text = needs_text_hash(source, source_schema, shape.name)
    if not shape.key:
        whole_future = pool.submit(whole_table_summary, source, source_schema, shape.name, by_text)
        tgt = whole_table_summary(target, target_schema, shape.name, by_text)
        src = whole_future.result()
        verdict.source_rows, verdict.target_rows = src[0], tgt[0]
        verdict.unlocated = src != tgt
        return verdict
    buckets = bucket_count(shape.estimated_rows)
    src_future = pool.submit(bucket_summaries, source, source_schema, shape.name, shape.key, buckets, by_text)
    tgt_buckets = bucket_summaries(target, target_schema, shape.name, shape.key, buckets, by_text)
    src_buckets = src_future.result()
    verdict.source_rows = sum(n for n, _ in src_buckets.values())
    verdict.target_rows = sum(n for n, _ in tgt_buckets.values())
    differing = sorted(b for b in src_buckets.keys() | tgt_buckets.keys() if src_buckets.get(b) != tgt_buckets.get(b))
    if not differing:
        return verdict
    src_rows_future = pool.submit(rows_in_buckets, source, source_schema, shape.name, shape.key, buckets,
                                  differing, by_text)
    tgt_rows = rows_in_buckets(target, target_schema, shape.name, shape.key, buckets, differing, by_text)
    src_rows = src_rows_future.result()
    missing = sorted(k for k in src_rows.keys() - tgt_rows.keys())
    extra = sorted(k for k in tgt_rows.keys() - src_rows.keys())
    changed = sorted(k for k in src_rows.keys() & tgt_rows.keys() if src_rows[k] != tgt_rows[k])
    verdict.differing_keys_total = len(missing) + len(extra) + len(changed)
    verdict.missing_on_target, verdict.extra_on_target, verdict.changed = (
        missing[:max_keys], extra[:max_keys], changed[:max_keys])
    return verdict


def _schema_exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def verify_schema(
    source: psycopg.Connection[Any],
    target: psycopg.Connection[Any],
    schema: str,
    *,
    target_schema: str | None = None,
    max_keys: int = 20,
    console: Console | None = None,
    on_table: Callable[[TableVerdict], None] | None = None,
) -> VerifyReport:
    """Compare every table and sequence of `schema` on `source` with `target_schema` (default: the same name)
    on `target`. The connections must be in autocommit mode; their session settings are changed."""
    target_schema = target_schema or schema
    for conn, name, side in ((source, schema, "source"), (target, target_schema, "target")):
        if not _schema_exists(conn, name):
            raise VerifyError(f"schema {name} does not exist on the {side}")
        try:
            prepare_session(conn)
        except psycopg.Error as exc:
            raise VerifyError(f"cannot prepare the {side} session: {exc}") from exc
    src_shapes, tgt_shapes = table_shapes(source, schema), table_shapes(target, target_schema)
    verdicts: list[TableVerdict] = []
    common = [src_shapes[n] for n in sorted(src_shapes.keys() & tgt_shapes.keys())]
    console = console or Console(stderr=True)
    with ThreadPoolExecutor(max_workers=1) as pool, Progress(
        TextColumn("[bold]verify[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), console=console, transient=True,
    ) as progress:
        task = progress.add_task(schema, total=len(common), rows="0")
        rows_done = 0
        for shape in common:
            progress.update(task, description=f"{schema}.{shape.name}")
            problem = shape_problem(shape, tgt_shapes[shape.name])
            if problem:
                verdict = TableVerdict(shape.name, shape_problem=problem)
            else:
                try:
                    verdict = compare_table(source, target, schema, target_schema, shape, max_keys=max_keys,
                                            pool=pool)
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise VerifyError(
                        f"{schema}.{shape.name}: {exc.diag.message_primary}; verify needs a role that reads "
                        "every tenant's rows (the platform's data-movement role), never one bound by row-level "
                        "security") from exc
            verdicts.append(verdict)
            if on_table:
                on_table(verdict)
            rows_done += verdict.source_rows or 0
            progress.update(task, advance=1, rows=f"{rows_done:,}")
    src_seq, tgt_seq = sequence_positions(source, schema), sequence_positions(target, target_schema)
    sequences = [SequenceVerdict(name, src_seq[name], tgt_seq.get(name)) for name in sorted(src_seq)]
    return VerifyReport(
        source_schema=schema,
        target_schema=target_schema,
        tables=verdicts,
        sequences=sequences,
        missing_tables=sorted(src_shapes.keys() - tgt_shapes.keys()),
        extra_tables=sorted(tgt_shapes.keys() - src_shapes.keys()),
    )


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.to_json(), indent=2, sort_keys=True)
