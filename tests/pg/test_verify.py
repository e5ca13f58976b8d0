"""The verification core (extraction verify, restore verify) on a real PostgreSQL: equal data is equal, and
every kind of difference is found and named by its primary key."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeAlias

import psycopg
import pytest
from rich.console import Console

from edumatrix_db.ops import verify
from edumatrix_db.ops.verify import VerifyError, chunk_count, verify_schema
from tests.pg.conftest import Postgres

Conn: TypeAlias = psycopg.Connection[Any]

SCHEMA = "feedback_schema"
TABLE_DDL = (
    "CREATE TABLE feedback_schema.feedback_entry (id bigserial PRIMARY KEY, institution_id uuid NOT NULL, "
    "body text, score numeric(4,1), created_at timestamptz NOT NULL DEFAULT now(), tags text[])",
    "CREATE TABLE feedback_schema.feedback_vote (entry_id bigint, voter text, PRIMARY KEY (entry_id, voter))",
    "CREATE TABLE feedback_schema.feedback_log (line text)",
)


def _database(pg: Postgres, name: str) -> Iterator[psycopg.Connection[Any]]:
    with pg.superuser() as su:
        su.execute(f"DROP DATABASE IF EXISTS {name}")
        su.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(pg.server.bootstrap_conninfo(name), autocommit=True)
    try:
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        for ddl in TABLE_DDL:
            conn.execute(ddl)
        yield conn
    finally:
        conn.close()
        with pg.superuser() as su:
            su.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def source(pg: Postgres) -> Iterator[psycopg.Connection[Any]]:
    yield from _database(pg, "verify_source")


@pytest.fixture
def target(pg: Postgres) -> Iterator[psycopg.Connection[Any]]:
    yield from _database(pg, "verify_target")


TENANT = uuid.UUID("00000000-0000-0000-0000-0000000000a1")


def _fill(*conns: psycopg.Connection[Any], rows: int = 5000) -> None:
    for conn in conns:
        conn.execute(
            "INSERT INTO feedback_schema.feedback_entry (institution_id, body, score, created_at, tags) "
            "SELECT %s, 'entry ' || g, (g %% 50) / 10.0, timestamptz '2026-01-01 00:00+00' + g * interval '1 min', "
            "ARRAY['a', g::text] FROM generate_series(1, %s) g",
            (TENANT, rows),
        )
        conn.execute("INSERT INTO feedback_schema.feedback_vote SELECT g, 'voter' || g FROM generate_series(1, 300) g")
        conn.execute("INSERT INTO feedback_schema.feedback_log SELECT 'line ' || g FROM generate_series(1, 50) g")
        conn.execute("ANALYZE")


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _verdict(report: verify.VerifyReport, table: str) -> verify.TableVerdict:
    return next(t for t in report.tables if t.table == table)


def _compare(source: psycopg.Connection[Any], target: psycopg.Connection[Any], columns: str, source_rows: str,
             target_rows: str) -> verify.TableVerdict:
    """feedback_schema.feedback_probe (`columns`) on both sides, holding `VALUES` lists: its verdict."""
    for conn, rows in ((source, source_rows), (target, target_rows)):
        conn.execute(f"CREATE TABLE feedback_schema.feedback_probe ({columns})")
        conn.execute(f"INSERT INTO feedback_schema.feedback_probe VALUES {rows}")
    return _verdict(verify_schema(source, target, SCHEMA, console=_quiet()), "feedback_probe")


@pytest.mark.postgres
def test_equal_schemas_verify_equal_with_every_row_counted(source: Conn, target: Conn) -> None:
    _fill(source, target)
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert report.ok
    assert {t.table: (t.source_rows, t.target_rows) for t in report.tables} == {
        "feedback_entry": (5000, 5000), "feedback_vote": (300, 300), "feedback_log": (50, 50)}


@pytest.mark.postgres
def test_a_changed_row_is_named_by_its_key(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_entry SET body = 'tampered' WHERE id = 4242")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    entry = next(t for t in report.tables if t.table == "feedback_entry")
    assert not report.ok
    assert (entry.changed, entry.missing_on_target, entry.extra_on_target) == (["4242"], [], [])


@pytest.mark.postgres
def test_missing_and_extra_rows_are_named_by_their_keys(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("DELETE FROM feedback_schema.feedback_entry WHERE id IN (7, 3001)")
    target.execute("INSERT INTO feedback_schema.feedback_vote VALUES (9999, 'intruder')")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    by_name = {t.table: t for t in report.tables}
    assert by_name["feedback_entry"].missing_on_target == ["3001", "7"]
    assert by_name["feedback_vote"].extra_on_target == ["(9999,intruder)"]
    assert by_name["feedback_entry"].target_rows == 4998


@pytest.mark.postgres
def test_a_difference_that_keeps_the_row_count_is_still_found(source: Conn, target: Conn) -> None:
    _fill(source, target)
    # Same count, same keys: only a value differs, in a timestamp (printed in UTC on both sides).
    target.execute("UPDATE feedback_schema.feedback_entry SET created_at = created_at + interval '1 microsecond' "
                   "WHERE id = 1")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert next(t for t in report.tables if t.table == "feedback_entry").changed == ["1"]


@pytest.mark.postgres
def test_a_table_without_primary_key_is_compared_whole_and_said_unlocated(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_log SET line = 'x' WHERE line = 'line 3'")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    log = next(t for t in report.tables if t.table == "feedback_log")
    assert log.unlocated
    assert not log.equal


@pytest.mark.postgres
def test_a_duplicated_row_without_primary_key_is_not_cancelled_out(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("INSERT INTO feedback_schema.feedback_log VALUES ('line 1'), ('line 1')")
    source.execute("INSERT INTO feedback_schema.feedback_log VALUES ('line 2'), ('line 2')")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert not next(t for t in report.tables if t.table == "feedback_log").equal


@pytest.mark.postgres
def test_a_target_sequence_behind_the_source_is_reported(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("SELECT setval('feedback_schema.feedback_entry_id_seq', 10)")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    (seq,) = report.sequences
    assert (seq.sequence, seq.source_next, seq.target_next, seq.ok) == ("feedback_entry_id_seq", 5001, 11, False)
    assert not report.ok


@pytest.mark.postgres
def test_a_different_table_shape_is_reported_before_any_data(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("ALTER TABLE feedback_schema.feedback_entry DROP COLUMN tags")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    entry = next(t for t in report.tables if t.table == "feedback_entry")
    assert entry.shape_problem == "target lacks tags"
    assert entry.source_rows is None


@pytest.mark.postgres
def test_missing_and_extra_tables_are_reported(source: Conn, target: Conn) -> None:
    target.execute("DROP TABLE feedback_schema.feedback_log")
    target.execute("CREATE TABLE feedback_schema.feedback_extra (id int PRIMARY KEY)")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert (report.missing_tables, report.extra_tables) == (["feedback_log"], ["feedback_extra"])


@pytest.mark.postgres
def test_a_missing_schema_is_an_error_not_an_empty_comparison(source: Conn, target: Conn) -> None:
    with pytest.raises(VerifyError, match="schema nowhere_schema does not exist on the source"):
        verify_schema(source, target, "nowhere_schema", console=_quiet())


@pytest.mark.postgres
def test_a_role_bound_by_row_level_security_gets_an_error_not_one_tenants_rows(
        pg: Postgres, source: Conn, target: Conn) -> None:
    _fill(source, target)
    with pg.superuser() as su:
        su.execute("DROP ROLE IF EXISTS verify_tenant_reader")
        su.execute("CREATE ROLE verify_tenant_reader LOGIN PASSWORD 'x'")
    try:
        for conn in (source, target):
            conn.execute("GRANT USAGE ON SCHEMA feedback_schema TO verify_tenant_reader")
            conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA feedback_schema TO verify_tenant_reader")
            conn.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA feedback_schema TO verify_tenant_reader")
            conn.execute("ALTER TABLE feedback_schema.feedback_entry ENABLE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY one_tenant ON feedback_schema.feedback_entry USING (false)")
        conninfo = pg.server.bootstrap_conninfo("verify_source")
        with psycopg.connect(conninfo, user="verify_tenant_reader", autocommit=True) as reader, \
                psycopg.connect(pg.server.bootstrap_conninfo("verify_target"), user="verify_tenant_reader",
                                autocommit=True) as reader_target, \
                pytest.raises(VerifyError, match="row-level security"):
            verify_schema(reader, reader_target, SCHEMA, console=_quiet())
    finally:
        for conn in (source, target):
            conn.execute("DROP OWNED BY verify_tenant_reader")
        with pg.superuser() as su:
            su.execute("DROP ROLE IF EXISTS verify_tenant_reader")


@pytest.mark.postgres
def test_the_report_renders_a_summary_a_person_can_read(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("DELETE FROM feedback_schema.feedback_entry WHERE id = 9")
    out = io.StringIO()
    verify_schema(source, target, SCHEMA, console=_quiet()).render(Console(file=out, width=200))
    text = out.getvalue()
    assert "missing: 9" in text
    assert "DIFFERENT: 2/3 tables equal" in text


def test_chunk_count_grows_with_the_table_and_stays_bounded() -> None:
    assert (chunk_count(0), chunk_count(20_000), chunk_count(20_001), chunk_count(10**12)) == (1, 1, 2, 4_096)


@pytest.mark.postgres
def test_a_json_column_without_a_hash_function_is_compared_by_its_text(source: Conn, target: Conn) -> None:
    for conn in (source, target):
        conn.execute("CREATE TABLE feedback_schema.feedback_raw (id int PRIMARY KEY, doc json)")
        conn.execute("INSERT INTO feedback_schema.feedback_raw SELECT g, json_build_object('g', g) "
                     "FROM generate_series(1, 100) g")
    target.execute("""UPDATE feedback_schema.feedback_raw SET doc = '{"g": 0}' WHERE id = 5""")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert next(t for t in report.tables if t.table == "feedback_raw").changed == ["5"]


def _enum_table(conn: psycopg.Connection[Any], labels: str) -> None:
    """An enum type created with its labels in the given order (so its OIDs differ between the databases)."""
    conn.execute(f"CREATE TYPE feedback_schema.feedback_mood AS ENUM ({labels})")
    conn.execute("CREATE TABLE feedback_schema.feedback_reaction (id int PRIMARY KEY, "
                 "mood feedback_schema.feedback_mood, moods feedback_schema.feedback_mood[])")


@pytest.mark.postgres
def test_enum_values_are_compared_by_label_not_by_their_oids(source: Conn, target: Conn) -> None:
    # A label added later (ALTER TYPE ... ADD VALUE) on one side gets another OID than the same label created
    # with the type on the other: same data, other OIDs.
    _enum_table(source, "'sad', 'happy'")
    _enum_table(target, "'sad'")
    target.execute("ALTER TYPE feedback_schema.feedback_mood ADD VALUE 'happy'")
    for conn in (source, target):
        conn.execute("INSERT INTO feedback_schema.feedback_reaction SELECT g, CASE WHEN g % 2 = 0 THEN 'happy' "
                     "ELSE 'sad' END::feedback_schema.feedback_mood, ARRAY['happy']::feedback_schema.feedback_mood[] "
                     "FROM generate_series(1, 200) g")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    reaction = next(t for t in report.tables if t.table == "feedback_reaction")
    assert (reaction.equal, reaction.changed) == (True, [])


@pytest.mark.postgres
def test_an_enum_difference_is_still_found(source: Conn, target: Conn) -> None:
    for conn in (source, target):
        _enum_table(conn, "'sad', 'happy'")
        conn.execute("INSERT INTO feedback_schema.feedback_reaction SELECT g, 'sad', NULL "
                     "FROM generate_series(1, 50) g")
    target.execute("UPDATE feedback_schema.feedback_reaction SET mood = 'happy' WHERE id = 7")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert next(t for t in report.tables if t.table == "feedback_reaction").changed == ["7"]


@pytest.mark.postgres
def test_a_difference_is_located_to_the_key_range_that_holds_it(
        source: Conn, target: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "CHUNK_ROWS", 500)  # 5000 rows: about ten key-ordered chunks
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_entry SET body = 'tampered' WHERE id = 4242")
    entry = next(t for t in verify_schema(source, target, SCHEMA, console=_quiet()).tables
                 if t.table == "feedback_entry")
    [located] = entry.differing_ranges
    low, high = located.removeprefix("[").removesuffix(")").split(" .. ")
    assert (entry.changed, entry.differing_ranges_total) == (["4242"], 1)
    assert int(low) <= 4242 < (int(high) if high != "end" else 10**9), located
    assert int(high if high != "end" else 5001) - int(low) < 2000  # a chunk, not the table


@pytest.mark.postgres
def test_ranges_beyond_those_read_key_by_key_are_still_reported(
        source: Conn, target: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "CHUNK_ROWS", 500)
    monkeypatch.setattr(verify, "DRILL_CHUNKS", 1)
    _fill(source, target)
    target.execute("DELETE FROM feedback_schema.feedback_entry WHERE id IN (10, 4990)")
    entry = next(t for t in verify_schema(source, target, SCHEMA, console=_quiet()).tables
                 if t.table == "feedback_entry")
    assert (entry.equal, entry.differing_ranges_total, entry.missing_on_target) == (False, 2, ["10"])
    assert entry.differing_ranges[0].startswith("[start .. ")
    assert entry.differing_ranges[1].endswith(" .. end)")


@pytest.mark.postgres
def test_a_composite_key_is_cut_into_ranges_of_the_whole_key(
        source: Conn, target: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "CHUNK_ROWS", 50)  # 300 votes: about six chunks of (entry_id, voter)
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_vote SET voter = 'someone else' WHERE entry_id = 150")
    vote = next(t for t in verify_schema(source, target, SCHEMA, console=_quiet()).tables
                if t.table == "feedback_vote")
    assert (vote.missing_on_target, vote.extra_on_target) == (["(150,voter150)"], ['(150,"someone else")'])
    assert vote.differing_ranges_total == 1


# One value per column type family: (type, a value on the source, a different value on the target). Each family
# is hashed its own way (its type's hash function, a cast, or its text): a change in any of them must be found.
TYPE_FAMILIES = (
    ("smallint", "7", "8"),
    ("integer", "7", "-7"),
    ("bigint", "7", "70000000000"),
    ("boolean", "true", "false"),
    ("numeric(8,2)", "1.50", "1.51"),
    ("real", "1.5", "1.25"),
    ("double precision", "0.1", "0.10000000000000002"),
    ("text", "same", "Same"),
    ("varchar(20)", "abc", "abd"),
    ("char(4)", "ab", "ac"),
    ("uuid", "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"),
    ("date", "2026-01-01", "2026-01-02"),
    ("timestamp", "2026-01-01 10:00", "2026-01-01 10:00:00.000001"),
    ("timestamptz", "2026-01-01 10:00+00", "2026-01-01 10:00+01"),
    ("time", "10:00", "10:01"),
    ("interval", "1 day", "24 hours"),
    ("jsonb", '{"a": 1}', '{"a": "1"}'),
    ("json", '{"a": 1}', '{"a":1}'),
    ("bytea", "\\x00", "\\x0000"),
    ("integer[]", "{1,2}", "{2,1}"),
    ("text[]", "{a,b}", "{a,B}"),
    ("int4range", "[1,5)", "[1,6)"),
    ("feedback_schema.feedback_score", "3", "4"),
    ("feedback_schema.feedback_mood", "sad", "happy"),
)


def _typed_table(conn: psycopg.Connection[Any], rows: list[list[str]]) -> None:
    """feedback_schema.feedback_typed: a column per TYPE_FAMILIES entry, the given rows (id = position) and an
    all-NULL row (id 1000)."""
    conn.execute("CREATE DOMAIN feedback_schema.feedback_score AS integer CHECK (VALUE > 0)")
    conn.execute("CREATE TYPE feedback_schema.feedback_mood AS ENUM ('sad', 'happy')")
    columns = ", ".join(f"c{i} {type_}" for i, (type_, _, _) in enumerate(TYPE_FAMILIES))
    conn.execute(f"CREATE TABLE feedback_schema.feedback_typed (id int PRIMARY KEY, {columns})")
    for row, values in enumerate(rows):
        conn.execute(f"INSERT INTO feedback_schema.feedback_typed VALUES (%s, {', '.join(['%s'] * len(values))})",
                     (row, *values))
    conn.execute("INSERT INTO feedback_schema.feedback_typed (id) VALUES (1000)")


@pytest.mark.postgres
def test_a_changed_value_is_found_in_every_column_type_family(source: Conn, target: Conn) -> None:
    olds = [old for _, old, _ in TYPE_FAMILIES]
    _typed_table(source, [olds] * len(TYPE_FAMILIES))
    # On the target, row i differs in column i only.
    _typed_table(target, [[new if i == row else old for i, (_, old, new) in enumerate(TYPE_FAMILIES)]
                          for row in range(len(TYPE_FAMILIES))])
    typed = _verdict(verify_schema(source, target, SCHEMA, console=_quiet(), max_keys=100), "feedback_typed")
    found = {TYPE_FAMILIES[int(key)][0] for key in typed.changed}
    assert sorted(t for t, _, _ in TYPE_FAMILIES if t not in found) == []
    assert typed.differing_keys_total == len(TYPE_FAMILIES)


@pytest.mark.postgres
def test_equal_values_of_every_column_type_family_verify_equal(source: Conn, target: Conn) -> None:
    for conn in (source, target):
        _typed_table(conn, [[old for _, old, _ in TYPE_FAMILIES], [new for _, _, new in TYPE_FAMILIES]])
    assert verify_schema(source, target, SCHEMA, console=_quiet()).ok


@pytest.mark.postgres
def test_values_swapped_between_two_rows_are_found(source: Conn, target: Conn) -> None:
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_entry SET body = CASE id WHEN 10 THEN 'entry 11' ELSE 'entry 10' "
                   "END WHERE id IN (10, 11)")
    entry = _verdict(verify_schema(source, target, SCHEMA, console=_quiet()), "feedback_entry")
    assert entry.changed == ["10", "11"]


@pytest.mark.postgres
def test_values_swapped_between_rows_of_a_table_without_primary_key_are_found(source: Conn, target: Conn) -> None:
    # Summed row hashes that are linear in their columns' hashes would not see this: the sum is the same.
    pair = _compare(source, target, "n int, v text", "(1, 'x'), (2, 'y')", "(1, 'y'), (2, 'x')")
    assert (pair.equal, pair.unlocated) == (False, True)


@pytest.mark.postgres
@pytest.mark.parametrize(("type_", "value"), [("text", "''"), ("double precision", "0.0"), ("numeric", "0"),
                                              ("integer", "0"), ("jsonb", "'null'"), ("integer[]", "'{}'")])
def test_null_differs_from_the_empty_or_zero_value_of_its_type(
        source: Conn, target: Conn, type_: str, value: str) -> None:
    nullable = _compare(source, target, f"id int PRIMARY KEY, v {type_}, w int", "(1, NULL, 5), (2, NULL, NULL)",
                        f"(1, {value}, 5), (2, {value}, NULL)")
    assert nullable.changed == ["1", "2"]


@pytest.mark.postgres
def test_minus_zero_and_zero_are_equal_as_postgresql_compares_them(source: Conn, target: Conn) -> None:
    # The decision (edumatrix_db/ops/verify.py): values are compared by their type's equality, for which
    # -0.0 = 0.0 (a unique index holds one of them, DISTINCT keeps one); a sign change of another value is found.
    floats = _compare(source, target, "id int PRIMARY KEY, v double precision", "(1, -0.0), (2, 1.5)",
                      "(1, 0.0), (2, -1.5)")
    assert floats.changed == ["2"]


@pytest.mark.postgres
def test_a_change_of_case_is_found_under_a_case_insensitive_collation(source: Conn, target: Conn) -> None:
    for conn in (source, target):
        conn.execute("CREATE COLLATION feedback_schema.feedback_ci (provider = icu, locale = 'und-u-ks-level2', "
                     "deterministic = false)")
        conn.execute("CREATE TABLE feedback_schema.feedback_name (id int PRIMARY KEY, "
                     "name text COLLATE feedback_schema.feedback_ci)")
        conn.execute("INSERT INTO feedback_schema.feedback_name VALUES (1, 'Ada'), (2, 'Grace')")
    target.execute("UPDATE feedback_schema.feedback_name SET name = 'ada' WHERE id = 1")
    name = _verdict(verify_schema(source, target, SCHEMA, console=_quiet()), "feedback_name")
    assert name.changed == ["1"]


@pytest.mark.postgres
def test_bigint_values_whose_halves_fold_alike_are_told_apart(source: Conn, target: Conn) -> None:
    # PostgreSQL's bigint hash folds the two 32-bit halves together: 4 and 2^32 + 5 fold to the same 4.
    big = _compare(source, target, "id int PRIMARY KEY, v bigint", "(1, 4)", f"(1, {(1 << 32) + 5})")
    assert big.changed == ["1"]


@pytest.mark.postgres
def test_only_a_table_that_differs_is_scanned_again_to_locate_it(
        source: Conn, target: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(source, target)
    located: list[str] = []
    original = verify.chunk_summaries

    def recording_chunk_summaries(conn: Conn, schema: str, table: str, shape: verify.TableShape,
                                  bounds: Sequence[verify.Bound]) -> dict[int, tuple[int, int]]:
        located.append(table)
        return original(conn, schema, table, shape, bounds)

    monkeypatch.setattr(verify, "chunk_summaries", recording_chunk_summaries)
    target.execute("UPDATE feedback_schema.feedback_vote SET voter = 'other' WHERE entry_id = 3")
    assert not verify_schema(source, target, SCHEMA, console=_quiet()).ok
    assert located == ["feedback_vote", "feedback_vote"]  # the differing table only, once per side


@pytest.mark.postgres
def test_a_table_that_differs_only_in_the_first_scan_is_not_called_equal(
        source: Conn, target: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows changed between the whole-table scan and the chunked one (a live source): still a difference.
    _fill(source, target)
    original = verify.table_summary

    def summary_changed_after_it(conn: Conn, schema: str, table: str, shape: verify.TableShape) -> tuple[int, int]:
        rows, hashed = original(conn, schema, table, shape)
        return rows, hashed + (conn is target and table == "feedback_entry")

    monkeypatch.setattr(verify, "table_summary", summary_changed_after_it)
    entry = _verdict(verify_schema(source, target, SCHEMA, console=_quiet()), "feedback_entry")
    assert (entry.equal, entry.differing_ranges) == (False, ["[start .. end) (changed while read)"])


@pytest.mark.postgres
def test_a_null_on_the_target_where_the_source_declares_not_null_is_found(source: Conn, target: Conn) -> None:
    source.execute("CREATE TABLE feedback_schema.feedback_strict (id int PRIMARY KEY, v text NOT NULL)")
    target.execute("CREATE TABLE feedback_schema.feedback_strict (id int PRIMARY KEY, v text)")
    source.execute("INSERT INTO feedback_schema.feedback_strict VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    target.execute("INSERT INTO feedback_schema.feedback_strict VALUES (1, NULL), (2, NULL), (3, 'c')")
    strict = _verdict(verify_schema(source, target, SCHEMA, console=_quiet()), "feedback_strict")
    assert strict.changed == ["1", "2"]


@pytest.mark.postgres
def test_values_swapped_between_two_columns_of_a_row_are_found_even_a_zero(source: Conn, target: Conn) -> None:
    # float 0.0 hashes to its seed unchanged: without a salt per column (0.0, 5.0) and (5.0, 0.0) would chain alike.
    pair = _compare(source, target, "id int PRIMARY KEY, a float8, b float8", "(1, 0.0, 5.0)", "(1, 5.0, 0.0)")
    assert pair.changed == ["1"]


@pytest.mark.postgres
@pytest.mark.parametrize(("type_", "empty"), [("integer[]", "{}"), ("jsonb", "{}")])
def test_rows_ending_in_an_empty_array_or_object_are_told_apart_by_their_keys(
        source: Conn, target: Conn, type_: str, empty: str) -> None:
    # The array and jsonb hash functions ignore their seed for an empty value: hashed so, the rows' other
    # columns would be lost and the rows of a table would cancel out in pairs.
    tail = _compare(source, target, f"id int PRIMARY KEY, v {type_}", f"(1, '{empty}'), (2, '{empty}')",
                    f"(1, '{empty}'), (3, '{empty}')")
    assert (tail.missing_on_target, tail.extra_on_target) == (["2"], ["3"])


@pytest.mark.postgres
def test_a_null_and_a_zero_swapped_between_two_float_columns_are_found(source: Conn, target: Conn) -> None:
    # Both hash to their (salted) seed: the salts of a NULL must differ per column, or the two rows chain alike.
    pair = _compare(source, target, "id int PRIMARY KEY, a float8, b float8", "(1, NULL, 0.0)", "(1, 0.0, NULL)")
    assert pair.changed == ["1"]
