"""The verification core (extraction verify, restore verify) on a real PostgreSQL: equal data is equal, and
every kind of difference is found and named by its primary key."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from rich.console import Console

from edumatrix_db.ops import verify
from edumatrix_db.ops.verify import VerifyError, chunk_count, verify_schema
from tests.pg.conftest import Postgres

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


@pytest.mark.postgres
def test_equal_schemas_verify_equal_with_every_row_counted(source, target) -> None:
    _fill(source, target)
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert report.ok
    assert {t.table: (t.source_rows, t.target_rows) for t in report.tables} == {
        "feedback_entry": (5000, 5000), "feedback_vote": (300, 300), "feedback_log": (50, 50)}


@pytest.mark.postgres
def test_a_changed_row_is_named_by_its_key(source, target) -> None:
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_entry SET body = 'tampered' WHERE id = 4242")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    entry = next(t for t in report.tables if t.table == "feedback_entry")
    assert not report.ok
    assert (entry.changed, entry.missing_on_target, entry.extra_on_target) == (["4242"], [], [])


@pytest.mark.postgres
def test_missing_and_extra_rows_are_named_by_their_keys(source, target) -> None:
    _fill(source, target)
    target.execute("DELETE FROM feedback_schema.feedback_entry WHERE id IN (7, 3001)")
    target.execute("INSERT INTO feedback_schema.feedback_vote VALUES (9999, 'intruder')")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    by_name = {t.table: t for t in report.tables}
    assert by_name["feedback_entry"].missing_on_target == ["3001", "7"]
    assert by_name["feedback_vote"].extra_on_target == ["(9999,intruder)"]
    assert by_name["feedback_entry"].target_rows == 4998


@pytest.mark.postgres
def test_a_difference_that_keeps_the_row_count_is_still_found(source, target) -> None:
    _fill(source, target)
    # Same count, same keys: only a value differs, in a timestamp (printed in UTC on both sides).
    target.execute("UPDATE feedback_schema.feedback_entry SET created_at = created_at + interval '1 microsecond' "
                   "WHERE id = 1")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert next(t for t in report.tables if t.table == "feedback_entry").changed == ["1"]


@pytest.mark.postgres
def test_a_table_without_primary_key_is_compared_whole_and_said_unlocated(source, target) -> None:
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_log SET line = 'x' WHERE line = 'line 3'")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    log = next(t for t in report.tables if t.table == "feedback_log")
    assert log.unlocated
    assert not log.equal


@pytest.mark.postgres
def test_a_duplicated_row_without_primary_key_is_not_cancelled_out(source, target) -> None:
    _fill(source, target)
    target.execute("INSERT INTO feedback_schema.feedback_log VALUES ('line 1'), ('line 1')")
    source.execute("INSERT INTO feedback_schema.feedback_log VALUES ('line 2'), ('line 2')")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert not next(t for t in report.tables if t.table == "feedback_log").equal


@pytest.mark.postgres
def test_a_target_sequence_behind_the_source_is_reported(source, target) -> None:
    _fill(source, target)
    target.execute("SELECT setval('feedback_schema.feedback_entry_id_seq', 10)")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    (seq,) = report.sequences
    assert (seq.sequence, seq.source_next, seq.target_next, seq.ok) == ("feedback_entry_id_seq", 5001, 11, False)
    assert not report.ok


@pytest.mark.postgres
def test_a_different_table_shape_is_reported_before_any_data(source, target) -> None:
    _fill(source, target)
    target.execute("ALTER TABLE feedback_schema.feedback_entry DROP COLUMN tags")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    entry = next(t for t in report.tables if t.table == "feedback_entry")
    assert entry.shape_problem == "target lacks tags"
    assert entry.source_rows is None


@pytest.mark.postgres
def test_missing_and_extra_tables_are_reported(source, target) -> None:
    target.execute("DROP TABLE feedback_schema.feedback_log")
    target.execute("CREATE TABLE feedback_schema.feedback_extra (id int PRIMARY KEY)")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert (report.missing_tables, report.extra_tables) == (["feedback_log"], ["feedback_extra"])


@pytest.mark.postgres
def test_a_missing_schema_is_an_error_not_an_empty_comparison(source, target) -> None:
    with pytest.raises(VerifyError, match="schema nowhere_schema does not exist on the source"):
        verify_schema(source, target, "nowhere_schema", console=_quiet())


@pytest.mark.postgres
def test_a_role_bound_by_row_level_security_gets_an_error_not_one_tenants_rows(pg: Postgres, source, target) -> None:
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
def test_the_report_renders_a_summary_a_person_can_read(source, target) -> None:
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
def test_a_table_with_a_json_column_is_compared_by_its_row_text(source, target) -> None:
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
def test_enum_values_are_compared_by_label_not_by_their_oids(source, target) -> None:
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
def test_an_enum_difference_is_still_found(source, target) -> None:
    for conn in (source, target):
        _enum_table(conn, "'sad', 'happy'")
        conn.execute("INSERT INTO feedback_schema.feedback_reaction SELECT g, 'sad', NULL "
                     "FROM generate_series(1, 50) g")
    target.execute("UPDATE feedback_schema.feedback_reaction SET mood = 'happy' WHERE id = 7")
    report = verify_schema(source, target, SCHEMA, console=_quiet())
    assert next(t for t in report.tables if t.table == "feedback_reaction").changed == ["7"]


@pytest.mark.postgres
def test_a_difference_is_located_to_the_key_range_that_holds_it(source, target, monkeypatch) -> None:
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
def test_ranges_beyond_those_read_key_by_key_are_still_reported(source, target, monkeypatch) -> None:
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
def test_a_composite_key_is_cut_into_ranges_of_the_whole_key(source, target, monkeypatch) -> None:
    monkeypatch.setattr(verify, "CHUNK_ROWS", 50)  # 300 votes: about six chunks of (entry_id, voter)
    _fill(source, target)
    target.execute("UPDATE feedback_schema.feedback_vote SET voter = 'someone else' WHERE entry_id = 150")
    vote = next(t for t in verify_schema(source, target, SCHEMA, console=_quiet()).tables
                if t.table == "feedback_vote")
    assert (vote.missing_on_target, vote.extra_on_target) == (["(150,voter150)"], ['(150,"someone else")'])
    assert vote.differing_ranges_total == 1
