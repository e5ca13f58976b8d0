"""Events on a real PostgreSQL 15 (docs/events.md): the outbox and inbox `local up` creates, the outbox's
publication, what the CDC login can read, and the slot: committed outbox rows, and only those, decode in
commit order; rolled-back transactions and other services' tables never appear; the inbox applies a
redelivered event once."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import errors

from config.catalog import load_catalog
from config.event_schemas import payload_problems, sample_payload
from config.naming import outbox_publication_name
from edumatrix_db.database import events
from edumatrix_db.database.events import Event, PayloadMismatch, UnknownEvent, apply_once, write_event
from edumatrix_db.database.pgoutput import lsn_text
from edumatrix_db.database.tenancy import TenantNotSet, tenant_transaction
from edumatrix_db.ops import relay
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

A = uuid.UUID(int=0xA)
B = uuid.UUID(int=0xB)
NEWS = "news_system"
HUB = "edu_matrix_hub"


def cdc(pg: Postgres) -> psycopg.Connection[Any]:
    return pg.connect(pg.connections["platform"]["cdc_replicator"])


@pytest.fixture
def news_slot(pg: Postgres) -> Iterator[psycopg.Connection[Any]]:
    """news_system's slot, created by the CDC login for one test and dropped after (as the relay would)."""
    with cdc(pg) as conn:
        relay.create_slot(conn, NEWS)
        try:
            yield conn
        finally:
            relay.drop_slot(conn, NEWS)


def publish(pg: Postgres, service: str, event_type: str, aggregate_id: str, tenant: uuid.UUID = A,
            keep_row: bool = False) -> uuid.UUID:
    spec = load_catalog().get(service)
    with pg.connect(pg.uri(service, "app")) as conn, tenant_transaction(conn, tenant):
        return write_event(conn, spec, event_type=event_type, aggregate_id=aggregate_id,
                           payload=article(aggregate_id) if event_type == "article_published" else
                           sample_payload(spec.events[0].fields, aggregate_id), keep_row=keep_row)


def article(article_id: str, title_length: int = 12) -> dict[str, Any]:
    """news_system's article_published payload (config/services.yaml)."""
    return {"article_id": article_id, "title_length": title_length}


def outbox_count(pg: Postgres, tenant: uuid.UUID, where: str = "true", params: Any = ()) -> int:
    """news_system's outbox rows the tenant sees (the app login; forced RLS)."""
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, tenant):
        row = conn.execute(f"SELECT count(*) FROM news_system_outbox WHERE {where}", params).fetchone()
    assert row is not None
    return int(row[0])


class _Abort(Exception):
    pass


def rolled_back(conn: psycopg.Connection[Any], work: Any) -> Any:
    """Run `work` in a tenant-A transaction that then fails (rolled back); return what `work` returned."""
    result = None
    try:
        with tenant_transaction(conn, A):
            result = work()
            raise _Abort
    except _Abort:
        pass
    return result


def decoded(conn: psycopg.Connection[Any]) -> list[Event]:
    return relay.outbox_events(NEWS, relay.peek(conn, NEWS))


def test_local_up_creates_each_publishing_services_outbox_inbox_and_publication(pg: Postgres) -> None:
    with pg.admin() as conn:
        row = conn.execute(
            "SELECT to_regclass('news_system_schema.news_system_outbox')::text, "
            "to_regclass('news_system_schema.news_system_inbox')::text, "
            "(SELECT relowner::regrole::text FROM pg_class WHERE oid = %(t)s::regclass), "
            "(SELECT relforcerowsecurity FROM pg_class WHERE oid = %(t)s::regclass)",
            {"t": "news_system_schema.news_system_outbox"}).fetchone()
        tables = conn.execute("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
                              [outbox_publication_name(NEWS)]).fetchall()
    assert row == ("news_system_schema.news_system_outbox", "news_system_schema.news_system_inbox",
                   "news_system_owner", True)
    assert tables == [("news_system_schema.news_system_outbox",)]


def test_a_service_that_publishes_nothing_gets_an_inbox_but_no_outbox_and_no_publication(pg: Postgres) -> None:
    with pg.admin() as conn:
        row = conn.execute(
            "SELECT to_regclass('statistics_schema.statistics_inbox') IS NOT NULL, "
            "to_regclass('statistics_schema.statistics_outbox') IS NULL, "
            "NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = 'statistics_outbox_pub')").fetchone()
    assert row == (True, True, True)


def test_the_outbox_publication_publishes_inserts_only(pg: Postgres) -> None:
    with pg.admin() as conn:
        row = conn.execute("SELECT pubinsert, pubupdate, pubdelete, pubtruncate, puballtables FROM pg_publication "
                           "WHERE pubname = %s", [outbox_publication_name(NEWS)]).fetchone()
    assert row == (True, False, False, False, False)


def test_applying_the_event_objects_again_changes_nothing(pg: Postgres) -> None:
    with pg.admin() as conn:
        assert events.apply_events(conn, pg.model) == []


def test_a_publication_widened_by_hand_is_put_back_to_the_outbox(pg: Postgres) -> None:
    with pg.admin() as conn:
        conn.execute("ALTER PUBLICATION news_system_outbox_pub ADD TABLE news_system_schema.news_system_inbox")
        done = events.apply_events(conn, pg.model)
        tables = conn.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = 'news_system_outbox_pub'"
                              ).fetchall()
    assert done == ["recreated publication news_system_outbox_pub (it covered news_system_schema.news_system_inbox, "
                    "news_system_schema.news_system_outbox; the outbox's inserts only)"]
    assert tables == [("news_system_outbox",)]


def test_the_cdc_login_reads_no_outbox_row_and_no_other_table(pg: Postgres) -> None:
    event_id = publish(pg, NEWS, "article_published", "cdc-visibility", keep_row=True)
    assert outbox_count(pg, A, "id = %s", [event_id]) == 1  # the row is there, for its tenant
    with cdc(pg) as conn:
        assert conn.execute("SELECT count(*) FROM news_system_schema.news_system_outbox").fetchone() == (0,)
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM news_system_schema.news_system_inbox")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM statistics_schema.statistics_inbox")


def test_an_outbox_row_is_visible_to_its_tenant_only(pg: Postgres) -> None:
    event_id = publish(pg, NEWS, "article_published", "tenant-a-only", tenant=A, keep_row=True)
    assert {t: outbox_count(pg, t, "id = %s", [event_id]) for t in (A, B)} == {A: 1, B: 0}


def test_committed_outbox_rows_decode_from_the_slot_in_commit_order(
        pg: Postgres, news_slot: psycopg.Connection[Any]) -> None:
    spec = load_catalog().get(NEWS)
    with (pg.connect(pg.uri(NEWS, "app")) as first, pg.connect(pg.uri(NEWS, "app")) as second,
          tenant_transaction(first, A)):
        early = write_event(first, spec, event_type="article_published", aggregate_id="begun-first",
                            payload=article("begun-first", 1))
        with tenant_transaction(second, B):  # begins later, commits earlier
            late = write_event(second, spec, event_type="article_published", aggregate_id="begun-second",
                               payload=article("begun-second", 2))
    got = decoded(news_slot)
    assert [(e.id, e.institution_id, e.aggregateid, e.payload) for e in got] == [
        (late, B, "begun-second", article("begun-second", 2)), (early, A, "begun-first", article("begun-first", 1))]
    assert {(e.aggregatetype, e.type, e.schema_version, e.source_service) for e in got} == {
        ("article", "article_published", 1, NEWS)}


def test_a_rolled_back_transaction_produces_nothing(pg: Postgres, news_slot: psycopg.Connection[Any]) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn:
        rolled_back(conn, lambda: write_event(conn, spec, event_type="article_published", aggregate_id="never",
                                              payload=article("never")))
    kept = publish(pg, NEWS, "article_published", "kept")
    assert [e.id for e in decoded(news_slot)] == [kept]


def test_other_services_tables_and_outboxes_never_reach_the_slot(
        pg: Postgres, news_slot: psycopg.Connection[Any]) -> None:
    publish(pg, HUB, "institution_created", "other-service")
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        conn.execute("INSERT INTO news_system_inbox (event_id, source_service, type, schema_version) "
                     "VALUES (gen_random_uuid(), 'edu_matrix_hub', 'institution_created', 1)")
    mine = publish(pg, NEWS, "article_published", "mine")
    tables = {c.table for tx in relay.peek(news_slot, NEWS) for c in tx.changes}
    assert tables == {"news_system_schema.news_system_outbox"}
    assert [e.id for e in decoded(news_slot)] == [mine]


def test_a_deleted_outbox_row_is_still_delivered_and_the_delete_is_not(
        pg: Postgres, news_slot: psycopg.Connection[Any]) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        event_id = write_event(conn, spec, event_type="article_published", aggregate_id="gone",
                               payload=article("gone"),
                               keep_row=True)
        conn.execute("DELETE FROM news_system_outbox WHERE id = %s", [event_id])
    changes = [(c.kind, c.values.get("id")) for tx in relay.peek(news_slot, NEWS) for c in tx.changes]
    assert changes == [("insert", str(event_id))]


def test_by_default_the_outbox_is_empty_after_commit(pg: Postgres) -> None:
    event_id = publish(pg, NEWS, "article_published", "not-kept")
    assert outbox_count(pg, A, "id = %s", [event_id]) == 0


def test_by_default_the_event_still_decodes_from_the_slot_with_its_row_and_no_delete(
    pg: Postgres, news_slot: Any
) -> None:
    event_id = publish(pg, NEWS, "article_published", "in-the-wal")
    changes = [(c.kind, c.values.get("id")) for tx in relay.peek(news_slot, NEWS) for c in tx.changes]
    got = decoded(news_slot)
    assert changes == [("insert", str(event_id))]
    assert [(e.id, e.aggregateid, e.payload) for e in got] == [(event_id, "in-the-wal", article("in-the-wal"))]


def test_keep_row_keeps_the_event_in_the_outbox(pg: Postgres) -> None:
    event_id = publish(pg, NEWS, "article_published", "audit-trail", keep_row=True)
    assert outbox_count(pg, A, "id = %s", [event_id]) == 1


def _age(pg: Postgres, tenant: uuid.UUID, event_id: uuid.UUID, days: int) -> None:
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, tenant):
        conn.execute("UPDATE news_system_outbox SET occurred_at = occurred_at - make_interval(days => %s) "
                     "WHERE id = %s", [days, event_id])


def test_deleting_kept_events_removes_the_tenants_old_rows_only(pg: Postgres) -> None:
    old_a, new_a, old_b = (publish(pg, NEWS, "article_published", name, tenant=t, keep_row=True)
                           for name, t in (("old-a", A), ("new-a", A), ("old-b", B)))
    _age(pg, A, old_a, 40)
    _age(pg, B, old_b, 40)
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        deleted = events.delete_kept_events(conn, NEWS, older_than=timedelta(days=30))
    ids = "id = ANY(%s)"
    left = {t: outbox_count(pg, t, ids, [[old_a, new_a, old_b]]) for t in (A, B)}
    assert (deleted, left) == (1, {A: 1, B: 1})


def test_deleting_kept_events_without_a_tenant_is_refused(pg: Postgres) -> None:
    with pg.connect(pg.uri(NEWS, "app")) as conn, conn.transaction(), pytest.raises(TenantNotSet):
        events.delete_kept_events(conn, NEWS, older_than=timedelta(days=30))


def test_advancing_the_slot_consumes_what_was_relayed(pg: Postgres, news_slot: psycopg.Connection[Any]) -> None:
    publish(pg, NEWS, "article_published", "relayed")
    transactions = relay.peek(news_slot, NEWS)
    relay.advance(news_slot, NEWS, lsn_text(transactions[-1].end_lsn))
    assert relay.peek(news_slot, NEWS) == []


class _Acknowledging:
    """A producer that the broker acknowledges at once (the broker is not what this test is about)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def produce(self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, str | bytes | None]]) -> None:
        self.sent.append(topic)

    def flush(self, timeout: float) -> int:
        return 0


def test_an_idle_outbox_does_not_hold_back_the_wal_of_other_services(pg: Postgres) -> None:
    with cdc(pg) as conn:
        idle = relay.Relay(conn, NEWS, _Acknowledging())
        try:
            publish(pg, HUB, "institution_created", "busy-elsewhere")
            before = relay.current_lsn(conn)
            assert idle.poll() == []
            row = conn.execute("SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                               "WHERE slot_name = 'news_system_outbox_slot'", [before]).fetchone()
        finally:
            relay.drop_slot(conn, NEWS)
    assert row == (True,)


def _event(service: str = NEWS) -> Event:
    return Event(id=uuid.uuid4(), source_service=service, institution_id=A, aggregatetype="article",
                 aggregateid="a-1", type="article_published", payload={}, schema_version=1)


def test_the_inbox_applies_a_redelivered_event_once(pg: Postgres) -> None:
    event = _event()
    with pg.connect(pg.uri("statistics", "app")) as conn:
        outcomes = []
        for _delivery in range(2):
            with tenant_transaction(conn, A):
                outcomes.append(apply_once(conn, "statistics", event))
    assert outcomes == [True, False]


def test_the_inbox_rejects_a_duplicate_event_id(pg: Postgres) -> None:
    event = _event()
    insert = ("INSERT INTO statistics_inbox (event_id, source_service, type, schema_version) "
              "VALUES (%s, 'news_system', 'article_published', 1)")
    with pg.connect(pg.uri("statistics", "app")) as conn:
        with tenant_transaction(conn, A):
            conn.execute(insert, [event.id])
        with pytest.raises(errors.UniqueViolation), tenant_transaction(conn, A):
            conn.execute(insert, [event.id])


def test_a_handler_whose_transaction_fails_leaves_the_event_to_be_applied_again(pg: Postgres) -> None:
    event = _event()
    with pg.connect(pg.uri("statistics", "app")) as conn:
        first = rolled_back(conn, lambda: apply_once(conn, "statistics", event))  # the handler failed
        with tenant_transaction(conn, A):
            again = apply_once(conn, "statistics", event)
    assert (first, again) == (True, True)


def test_writing_or_recording_an_event_outside_a_transaction_is_refused(pg: Postgres) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn:
        with pytest.raises(TenantNotSet):
            write_event(conn, spec, event_type="article_published", aggregate_id="x", payload=article("x"))
        with pytest.raises(TenantNotSet):
            apply_once(conn, NEWS, _event())


def test_an_event_without_a_tenant_fails_the_outbox_policy(pg: Postgres) -> None:
    spec = load_catalog().get(NEWS)
    with (pg.connect(pg.uri(NEWS, "app")) as conn,
          pytest.raises(errors.InsufficientPrivilege, match="row-level security"), conn.transaction()):
        write_event(conn, spec, event_type="article_published", aggregate_id="x", payload=article("x"))


def test_an_event_type_the_catalog_does_not_list_is_refused_before_any_sql(pg: Postgres) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        with pytest.raises(UnknownEvent, match="news_system does not publish 'student_registered'"):
            write_event(conn, spec, event_type="student_registered", aggregate_id="x", payload={})
        with pytest.raises(UnknownEvent, match="describes the payload of version 1 only, not 2"):
            write_event(conn, spec, event_type="article_published", aggregate_id="x", payload=article("x"),
                        schema_version=2)


@pytest.mark.parametrize(("payload", "problem"), [
    ({"article_id": "a"}, "'title_length' is missing"),
    ({**{"article_id": "a", "title_length": 1}, "extra": 1}, "'extra' is not in the event type's payload"),
    ({"article_id": None, "title_length": 1}, "'article_id' must be a string, not None"),
    ({"article_id": "a", "title_length": 1.0}, "'title_length' must be an integer within 32 bits"),
    ({"article_id": "a", "title_length": 2**31}, "'title_length' must be an integer within 32 bits"),
    ({"article_id": "a", "title_length": True}, "'title_length' must be an integer within 32 bits"),
    (["a", 1], "not a JSON object"),
])
def test_a_payload_that_does_not_match_its_catalog_description_is_refused_before_any_sql(
        pg: Postgres, payload: Any, problem: str) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        with pytest.raises(PayloadMismatch, match=re.escape(problem)):
            write_event(conn, spec, event_type="article_published", aggregate_id="refused", payload=payload,
                        keep_row=True)
        assert conn.execute("SELECT count(*) FROM news_system_outbox WHERE aggregateid = 'refused'").fetchone() == (0,)


@pytest.mark.parametrize("payload", [
    '{"article_id": "a"}', '{"article_id": "a", "title_length": 1.0}',
    '{"article_id": "a", "title_length": 2147483648}', '{"article_id": null, "title_length": 1}',
    '{"article_id": "a", "title_length": 1, "x": 1}', '[1]',
    '{"article_id": "a", "title_length": "1"}'])
def test_the_database_refuses_an_outbox_row_whose_payload_does_not_match_its_description(
        pg: Postgres, payload: str) -> None:
    with (pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A),
          pytest.raises(errors.CheckViolation, match="news_system_outbox_payload_check")):
        conn.execute("INSERT INTO news_system_outbox (aggregatetype, aggregateid, type, payload, schema_version) "
                     "VALUES ('article', 'raw', 'article_published', %s::jsonb, 1)", [payload])


def test_the_database_admits_a_hand_written_row_that_matches_its_description(pg: Postgres) -> None:
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        row = conn.execute("INSERT INTO news_system_outbox (aggregatetype, aggregateid, type, payload, schema_version) "
                           "VALUES ('article', 'raw', 'article_published', %s::jsonb, 1) RETURNING id",
                           ['{"title_length": -5, "article_id": "raw"}']).fetchone()
        assert row is not None
        conn.execute("DELETE FROM news_system_outbox WHERE id = %s", [row[0]])


def test_re_applying_the_event_objects_restores_a_dropped_payload_check_and_is_otherwise_a_no_op(
        pg: Postgres) -> None:
    service = pg.model.service(NEWS)
    with pg.admin() as conn:
        def apply() -> list[str]:
            return events.apply_service_events(conn, NEWS, publishes=True, cdc_role=pg.model.cdc_role,
                                               payloads=service.event_payloads)

        assert apply() == []
        with pg.superuser() as su:
            su.execute("ALTER TABLE news_system_schema.news_system_outbox "
                       "DROP CONSTRAINT news_system_outbox_payload_check")
        assert apply() == ["news_system_schema: outbox payload check set to the catalog's descriptions"]
        assert apply() == []


TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)  # jsonb's text
MEMBER_VALUES = st.one_of(TEXT, st.integers(-(2**40), 2**40), st.booleans(), st.none(),
                          st.floats(allow_nan=False, allow_infinity=False))
ARTICLES = st.fixed_dictionaries({"article_id": TEXT, "title_length": st.integers(-(2**31), 2**31 - 1)})


@settings(max_examples=300, deadline=None)
@given(st.one_of(ARTICLES, st.dictionaries(st.sampled_from(["article_id", "title_length", "x"]), MEMBER_VALUES)))
def test_the_database_check_and_write_events_check_agree_on_any_payload(pg: Postgres, payload: dict[str, Any]) -> None:
    fields = load_catalog().get(NEWS).events[0].fields
    with pg.connect(pg.uri(NEWS, "app")) as conn:
        row = conn.execute("SELECT news_system_schema.news_system_fn_outbox_payload_ok('article_published', 1, "
                           "%s::jsonb)", [json.dumps(payload)]).fetchone()
    assert row == ((payload_problems(fields, payload) == []),)
