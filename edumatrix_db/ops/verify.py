"""The one verification core: is a schema's data on a target the same as on a source?

Shared by extraction (`extract verify`, the check inside `cutover`) and recovery (`restore-schema --verify`):
both ask the same question of two databases (or two schemas of one database) and want the same answer, a
report a person can read that says exactly what differs.

How it compares, per table, without moving the rows to the client:
1. Shape first: the columns (name, type, order) and the primary key must be the same on both sides; a table
   whose shape differs is reported and its data is not compared (the row texts would differ anyway).
2. Each side computes, in the database and in one sequential scan, the table's `count(*)` and a 64-bit hash of
   its rows (both sides at the same time, one thread each): the `bit_xor` of one hash per row. A row's hash is a
   chain over its columns: each value hashed by its type's own hash function (no text formatting, the costly
   part of hashing a row) with the hash of the columns before it as the seed, then hashed once more
   (`row_hash`). What is compared is each type's equality, made stricter where needed: text by its bytes
   (`COLLATE "C"`, so a case-insensitive collation cannot hide a change), enums by label (their hash is their
   OID, which differs between databases), NULL apart from '' and 0 (a salted seed); types without a usable
   hash function (json, interval, bytea, ranges, composites, arrays of those) by their text under the session
   settings below. By decision float -0.0 equals 0.0 and numeric 1.0 equals 1.00, as PostgreSQL's `=`, unique
   indexes and DISTINCT have them. Known weaknesses, from PostgreSQL's own hash functions: the timestamp types
   (and time) are folded from 64 bits to 32 first, so two such values whose 32-bit halves differ in exactly
   the same bits hash alike (bigint has the same fold and is hashed with its high half in the seed as well);
   numeric NaN, Infinity and -Infinity all hash to the seed, so a change among those three is not seen.
3. Equal counts and hashes: the table is equal (the common case costs one scan of each side). Otherwise the
   source's primary keys are cut into key-ordered chunks of about CHUNK_ROWS rows (boundaries from a sample of
   the keys, `TABLESAMPLE SYSTEM`) and both sides are scanned again per chunk (`width_bucket` of the key over
   the boundaries); a chunk whose count or hash differs is a key range that differs: reported as such. The
   first DRILL_CHUNKS differing ranges are read key by key on both sides (an index range scan each) and the
   difference is named by exact primary keys: missing on the target, extra on the target, changed.
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

CHUNK_ROWS = 20_000
"""Rows per key-ordered chunk: a differing chunk is a key range of about this many rows, read key by key on
both sides to name the rows (few chunks keep the per-row `width_bucket` search short)."""
MAX_CHUNKS = 4_096
DRILL_CHUNKS = 16
"""Differing chunks read key by key; further differing ranges are reported as ranges only."""
SAMPLED_PAGES_PER_CHUNK = 8
"""Pages sampled per chunk to place the boundaries (`TABLESAMPLE SYSTEM` samples whole pages, and the rows of
a page are often neighbours in key order: a boundary is every n-th key of the sorted sample)."""
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
    by_label: bool = False
    """An enum (or an array of or domain over one): hashed and ordered by its label, not its OID."""
    hash_type: str = field(default="", compare=False)
    """The type that chooses its hash (`_TYPED_HASHES`): a domain's base type, without modifiers."""
    base_type: str = field(default="", compare=False)
    """The type with its modifiers, a domain's base type: what the column is hashed as (a domain's default
    value could fail its checks)."""
    not_null: bool = field(default=False, compare=False)
    """Declared NOT NULL: hashed without the NULL handling (a NULL there, on a target that allows it, makes
    the row's hash NULL_ROW)."""


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    estimated_rows: int
    pages: int = 0
    """The table's pages as of its last ANALYZE (pg_class.relpages), for sampling its keys."""


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
    """All differing keys found in the ranges read key by key, also those beyond the listed sample."""
    differing_ranges: list[str] = field(default_factory=list)
    """Key ranges whose rows differ (`[from .. to)` in primary key order), the first `max_keys`."""
    differing_ranges_total: int = 0
    unlocated: bool = False
    """No primary key: the table differs as a whole and the rows cannot be named."""

    @property
    def equal(self) -> bool:
        return (self.shape_problem is None and not self.unlocated and self.differing_keys_total == 0
                and self.differing_ranges_total == 0 and self.source_rows == self.target_rows)


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
    text = "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
    if t.differing_ranges:
        others = t.differing_ranges_total - len(t.differing_ranges)
        text += ("; " if text else "") + f"key ranges: {', '.join(t.differing_ranges)}" + (
            f" (+{others} more)" if others > 0 else "")
    return f"[red]{text}[/red]"


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
               array_agg(coalesce((SELECT x.typtype = 'e' FROM pg_type ty JOIN pg_type x ON x.oid = coalesce(
                                       nullif(ty.typelem, 0), nullif(ty.typbasetype, 0), ty.oid)
                                   WHERE ty.oid = a.atttypid), false) ORDER BY a.attnum),
               array_agg((SELECT format_type(coalesce(nullif(ty.typbasetype, 0), ty.oid), NULL) FROM pg_type ty
                          WHERE ty.oid = a.atttypid) ORDER BY a.attnum),
               array_agg((SELECT format_type(coalesce(nullif(ty.typbasetype, 0), ty.oid),
                                             CASE WHEN ty.typbasetype <> 0 THEN ty.typtypmod ELSE a.atttypmod END)
                          FROM pg_type ty WHERE ty.oid = a.atttypid) ORDER BY a.attnum),
               array_agg(a.attnotnull ORDER BY a.attnum),
               coalesce((SELECT array_agg(k.attname::text ORDER BY x.n)
                         FROM pg_index i
                         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS x(attnum, n)
                         JOIN pg_attribute k ON k.attrelid = i.indrelid AND k.attnum = x.attnum
                         WHERE i.indrelid = c.oid AND i.indisprimary), '{}'),
               greatest(c.reltuples, 0)::bigint, c.relpages
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
        name: TableShape(name, tuple(Column(*column) for column in zip(
            names, types, (bool(e) for e in enums), hashed, bases, not_null, strict=True)), tuple(key), est, pages)
        for name, names, types, enums, hashed, bases, not_null, key, est, pages in rows
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


def _column(alias: str, column: Column) -> sql.Composable:
    """A column as it is hashed and ordered: enum labels as text (their OIDs differ between databases)."""
    ref = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column.name))
    return sql.SQL("{}::text").format(ref) if column.by_label else ref


ROW_SEED = 0x5BD1E9955BD1E995
"""Where every row's hash chain starts (any constant: the same on both sides)."""
NULL_ROW = 0x3C6EF372FE94F82B
"""The hash of a row whose chain is NULL: a NULL in a column the source declares NOT NULL (the target may not)."""
SEED_PASSING = frozenset({"numeric", "real", "double precision"})
"""Types whose hash returns its seed (or the seed - 1) for some values (float 0.0, numeric 0, NaN, infinities):
their seed is salted by the column's position, so that two such columns cannot trade values unseen, and a chain
that ends in one is hashed once more (`FINAL_MIX`), so that the row's hash is not a linear function of a seed."""
FINAL_MIX = "hashint4extended(0, {})"

_TYPED_HASHES: dict[str, tuple[str, str]] = {
    # type (a domain by its base type, no modifiers): (the type's own extended hash function, that of its
    # default hash operator class, as called on {v} with seed {s}; the value a NULL is hashed as). boolean and
    # date go through a lossless cast (their own functions take another SQL type; a date past 294276 AD does
    # not fit a timestamp: verify then stops with PostgreSQL's error instead of comparing). bigint's function folds its
    # two halves into 32 bits (so that it hashes like integer): the high half also goes into the seed, so no
    # two values collide by the fold.
    "smallint": ("hashint2extended({v}, {s})", "0"),
    "integer": ("hashint4extended({v}, {s})", "0"),
    "bigint": ("hashint8extended({v}, {s} # ({v} >> 32))", "0"),
    "boolean": ("hashint4extended({v}::integer, {s})", "false"),
    "numeric": ("hash_numeric_extended({v}, {s})", "0"),
    "real": ("hashfloat4extended({v}, {s})", "0"),
    "double precision": ("hashfloat8extended({v}, {s})", "0"),
    "uuid": ("uuid_hash_extended({v}, {s})", "00000000-0000-0000-0000-000000000000"),
    "text": ("hashtextextended({v} COLLATE \"C\", {s})", ""),
    "character varying": ("hashtextextended({v} COLLATE \"C\", {s})", ""),
    "character": ("hashbpcharextended({v} COLLATE \"C\", {s})", ""),
    "date": ("timestamp_hash_extended({v}::timestamp, {s})", "epoch"),
    "timestamp without time zone": ("timestamp_hash_extended({v}, {s})", "epoch"),
    "timestamp with time zone": ("timestamp_hash_extended(({v} AT TIME ZONE 'UTC'), {s})", "epoch"),
    "time without time zone": ("time_hash_extended({v}, {s})", "allballs"),
}
"""Column types hashed by their own hash function (no text formatting). Every other type is hashed as its text
(under SESSION_SETTINGS): enums (by label: their hash is their OID, which differs between databases), json,
intervals (their equality says '1 day' = '24 hours'), bytea (its hash function takes no SQL argument), arrays
and jsonb (their hash functions ignore the seed for an empty array or object, which would cut the chain),
ranges, composites."""


def _salt(index: int) -> int:
    """A constant per index (splitmix64 of it, as a positive bigint). Column position p has two: 2p, mixed into
    the seed of a column whose hash may return its seed (SEED_PASSING), and 2p + 1, mixed into the seed when the
    value is NULL (then hashed as its type's default: NULL and '' or 0 differ by the seed, not by the value)."""
    z = (index + 1) * 0x9E3779B97F4A7C15 % (1 << 64)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 % (1 << 64)
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB % (1 << 64)
    return (z ^ (z >> 31)) >> 1


def _value_hash(alias: str, column: Column, position: int, chain: sql.Composable, *,
                nullable: bool) -> sql.Composable:
    """One step of a row's hash chain: this column's value hashed with the chain so far (salted by the column's
    position) as its seed."""
    ref = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column.name))
    typed = None if column.by_label else _TYPED_HASHES.get(column.hash_type)
    template, default = typed or ('hashtextextended({v} COLLATE "C", {s})', "")
    # Typed: as its hashed type (a domain as its base type, whose default value its checks may refuse).
    value = sql.SQL("{}::{}").format(ref, sql.SQL(column.base_type if typed else "text"))
    seed = chain
    if column.hash_type in SEED_PASSING:
        seed = sql.SQL("({} # {})").format(chain, sql.Literal(_salt(2 * position)))
    if nullable:
        value = sql.SQL("coalesce({}, {})").format(value, sql.Literal(default))
        seed = sql.SQL("({} # CASE WHEN {} IS NULL THEN {} ELSE 0 END)").format(
            seed, ref, sql.Literal(_salt(2 * position + 1)))
    return sql.SQL(template).format(v=value, s=seed)


def row_hash(alias: str, shape: TableShape) -> sql.Composable:
    """A 64-bit hash of the whole row, computed as a chain: each column's value is hashed by its type's own hash
    function with the hash of the columns before it as the seed (a seed enters the hash non-linearly), then the
    chain is hashed once more. So the hash depends on every value and on its position: a value moved to another
    column or swapped with another row's changes it. A column that may be NULL has its NULL hashed as its type's
    default with a salted seed, so NULL differs from '' and from 0; NOT NULL columns (the source's declaration
    decides, for both sides) skip that work."""
    chain: sql.Composable = sql.Literal(ROW_SEED)
    for position, column in enumerate(shape.columns):
        chain = _value_hash(alias, column, position, chain,
                            nullable=not column.not_null and column.name not in shape.key)
    if shape.columns and shape.columns[-1].hash_type in SEED_PASSING:
        chain = sql.SQL(FINAL_MIX).format(chain)
    return sql.SQL("coalesce({}, {})").format(chain, sql.Literal(NULL_ROW))


def _key_columns(shape: TableShape) -> list[Column]:
    by_name = {c.name: c for c in shape.columns}
    return [by_name[k] for k in shape.key]


def _key_expr(alias: str, shape: TableShape) -> sql.Composable:
    """The primary key as text (a row constructor for composite keys), used to name rows."""
    cols = [_column(alias, c) for c in _key_columns(shape)]
    if len(cols) == 1:
        return sql.SQL("{}::text").format(cols[0])
    return sql.SQL("ROW({})::text").format(sql.SQL(", ").join(cols))


def _key_value(alias: str, shape: TableShape) -> sql.Composable:
    """The primary key as a comparable value: the column, or a row of the columns (compared column by column)."""
    cols = [_column(alias, c) for c in _key_columns(shape)]
    return cols[0] if len(cols) == 1 else sql.SQL("ROW({})").format(sql.SQL(", ").join(cols))


def _key_literal(shape: TableShape, texts: Sequence[str]) -> sql.Composable:
    """A boundary key (read as text) typed like the key, comparable with `_key_value`."""
    values = [sql.SQL("{}::{}").format(sql.Literal(text), sql.SQL("text" if c.by_label else c.type))
              for c, text in zip(_key_columns(shape), texts, strict=True)]
    return values[0] if len(values) == 1 else sql.SQL("ROW({})").format(sql.SQL(", ").join(values))


def chunk_count(estimated_rows: int) -> int:
    return max(1, min(MAX_CHUNKS, math.ceil(max(estimated_rows, 1) / CHUNK_ROWS)))


Bound = tuple[str, ...]
"""A primary key, column by column as text: where a chunk starts."""


def chunk_bounds(conn: psycopg.Connection[Any], schema: str, shape: TableShape, chunks: int) -> list[Bound]:
    """Keys that cut the table into about `chunks` key-ordered chunks of similar size, from a sample of the
    table's pages (exact when the sample is the whole table). Sorted and distinct; empty for one chunk."""
    if chunks <= 1:
        return []
    percent = min(100.0, 100.0 * chunks * SAMPLED_PAGES_PER_CHUNK / max(shape.pages, 1))
    cols = _key_columns(shape)
    query = sql.SQL("SELECT {texts} FROM {schema}.{table} AS t TABLESAMPLE SYSTEM ({percent}) ORDER BY {order}").format(
        texts=sql.SQL(", ").join(sql.SQL("{}::text").format(_column("t", c)) for c in cols),
        schema=sql.Identifier(schema), table=sql.Identifier(shape.name), percent=sql.Literal(percent),
        order=sql.SQL(", ").join(_column("t", c) for c in cols))
    sample = [tuple(str(v) for v in row) for row in conn.execute(query)]
    step = len(sample) / chunks
    bounds: list[Bound] = []
    for i in range(1, chunks):
        bound = sample[int(i * step)] if sample else None
        if bound is not None and (not bounds or bound != bounds[-1]):
            bounds.append(bound)
    return bounds


def _chunk_expr(alias: str, shape: TableShape, bounds: Sequence[Bound]) -> sql.Composable:
    """The chunk of a row: how many boundaries its key is at or past (0 .. len(bounds)), by binary search."""
    if not bounds:
        return sql.SQL("0")
    return sql.SQL("width_bucket({}, ARRAY[{}])").format(
        _key_value(alias, shape), sql.SQL(", ").join(_key_literal(shape, b) for b in bounds))


def chunk_summaries(conn: psycopg.Connection[Any], schema: str, table: str, shape: TableShape,
                    bounds: Sequence[Bound]) -> dict[int, tuple[int, int]]:
    """{chunk: (rows, xor of row hashes)} for one table, computed in one scan."""
    query = sql.SQL(
        "SELECT {chunk} AS c, count(*), bit_xor({hash}) FROM {schema}.{table} AS t GROUP BY 1"
    ).format(chunk=_chunk_expr("t", shape, bounds), hash=row_hash("t", shape),
             schema=sql.Identifier(schema), table=sql.Identifier(table))
    return {int(c): (int(n), int(h)) for c, n, h in conn.execute(query)}


def table_summary(conn: psycopg.Connection[Any], schema: str, table: str, shape: TableShape) -> tuple[int, int]:
    """(rows, hash) of a whole table in one sequential scan, the first and usually only pass over it.

    With a primary key the hash is the xor of the row hashes: no two rows are equal (they differ at least in the
    key), so their hashes are distinct values of a chained hash, and a set of differing rows (missing, extra,
    changed, values swapped between rows) leaves the xor unchanged only by a 64-bit coincidence. Without a
    primary key two equal rows would cancel out in a xor: the hashes are summed (modulo 2^64) instead."""
    aggregate = "bit_xor({})" if shape.key else "sum({}::numeric)"
    query = sql.SQL("SELECT count(*), coalesce({aggregate}, 0) FROM {schema}.{table} AS t").format(
        aggregate=sql.SQL(aggregate).format(row_hash("t", shape)), schema=sql.Identifier(schema),
        table=sql.Identifier(table))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]) % (1 << 64)


def _range_condition(alias: str, shape: TableShape, bounds: Sequence[Bound], chunk: int) -> sql.Composable:
    """Rows of chunk `chunk`: key at or past its first boundary and before the next (an index range scan)."""
    key = _key_value(alias, shape)
    parts = []
    if chunk > 0:
        parts.append(sql.SQL("{} >= {}").format(key, _key_literal(shape, bounds[chunk - 1])))
    if chunk < len(bounds):
        parts.append(sql.SQL("{} < {}").format(key, _key_literal(shape, bounds[chunk])))
    return sql.SQL(" AND ").join(parts) if parts else sql.SQL("true")


def rows_in_chunks(conn: psycopg.Connection[Any], schema: str, table: str, shape: TableShape,
                   bounds: Sequence[Bound], chosen: Sequence[int]) -> dict[str, int]:
    """{primary key text: row hash} of the rows in the chosen chunks."""
    out: dict[str, int] = {}
    for chunk in chosen:
        query = sql.SQL("SELECT {key}, {hash} FROM {schema}.{table} AS t WHERE {range}").format(
            key=_key_expr("t", shape), hash=row_hash("t", shape),
            range=_range_condition("t", shape, bounds, chunk), schema=sql.Identifier(schema),
            table=sql.Identifier(table))
        out.update({k: int(h) for k, h in conn.execute(query)})
    return out


def describe_range(shape: TableShape, bounds: Sequence[Bound], chunk: int) -> str:
    """`[from .. to)` of a chunk in primary key order (`start`/`end` for the open ends)."""
    def key(bound: Bound) -> str:
        return bound[0] if len(bound) == 1 else f"({','.join(bound)})"
    low = key(bounds[chunk - 1]) if chunk > 0 else "start"
    high = key(bounds[chunk]) if chunk < len(bounds) else "end"
    return f"[{low} .. {high})"


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
    """Compare one table whose shape is equal on both sides: one scan of each side (at the same time) for the
    count and hash of the whole table; only a table that differs is scanned again, in key-ordered chunks, to
    locate the difference to key ranges, and the first ranges are read key by key to name the rows."""
    verdict = TableVerdict(shape.name)
    whole_future = pool.submit(table_summary, source, source_schema, shape.name, shape)
    tgt_whole = table_summary(target, target_schema, shape.name, shape)
    src_whole = whole_future.result()
    verdict.source_rows, verdict.target_rows = src_whole[0], tgt_whole[0]
    if src_whole == tgt_whole:
        return verdict
    if not shape.key:
        verdict.unlocated = True
        return verdict
    bounds = chunk_bounds(source, source_schema, shape, chunk_count(shape.estimated_rows))
    src_future = pool.submit(chunk_summaries, source, source_schema, shape.name, shape, bounds)
    tgt_chunks = chunk_summaries(target, target_schema, shape.name, shape, bounds)
    src_chunks = src_future.result()
    differing = sorted(c for c in src_chunks.keys() | tgt_chunks.keys() if src_chunks.get(c) != tgt_chunks.get(c))
    if not differing:
        # The tables differed in the first scan and not in the second: rows changed while they were read.
        verdict.differing_ranges, verdict.differing_ranges_total = ["[start .. end) (changed while read)"], 1
        return verdict
    verdict.differing_ranges_total = len(differing)
    verdict.differing_ranges = [describe_range(shape, bounds, c) for c in differing[:max_keys]]
    drilled = differing[:DRILL_CHUNKS]
    src_rows_future = pool.submit(rows_in_chunks, source, source_schema, shape.name, shape, bounds, drilled)
    tgt_rows = rows_in_chunks(target, target_schema, shape.name, shape, bounds, drilled)
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
