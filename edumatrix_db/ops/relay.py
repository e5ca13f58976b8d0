"""The LOCAL stand-in for the Debezium connector (docs/events.md, "The local relay"): outbox -> slot -> Kafka.

On AWS, MSK Connect runs Debezium's PostgreSQL connector with the outbox event router per publishing service
(docs/event-backbone.md). Locally there is no Kafka Connect, so this relay does the same job for one service,
with the same contract a consumer sees:

- it logs in as the CDC login (`edumatrix_cdc_replicator`, REPLICATION), creates the service's slot
  `<service>_outbox_slot` (pgoutput) if missing, and reads it with `pg_logical_slot_peek_binary_changes`
  through the publication `<service>_outbox_pub` (psycopg 3 speaks no replication protocol);
- each committed outbox insert becomes one message on `edumatrix.<service>.<aggregatetype>`: key = the
  `aggregateid` (one partition per aggregate keeps its events in order), value = the router's envelope
  `{"payload": <payload>, "eventType": <type>}` as JSON, headers `id`, `eventType`, `schemaVersion`,
  `institutionId`, `occurredAt` (the outbox router's `id` header plus `table.fields.additional.placement` for the
  others), as the AWS connector sends them except for the Glue converter's wire format around the value;
- at-least-once: messages are produced and flushed BEFORE the slot is advanced past their commit
  (`pg_replication_slot_advance`), so a crash in between delivers them again; consumers deduplicate with their
  inbox (`events.apply_once`). Each poll reads up to the WAL position it started at and confirms up to there,
  even when the outbox was idle, so the slot never holds the WAL of other services' traffic for long.

It polls; it is not a daemon with retries and metrics (Debezium is, on AWS): a development and test tool.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg

from config.naming import event_topic_name, outbox_publication_name, outbox_slot_name, outbox_table_name, schema_name
from edumatrix_db.database.events import Event
from edumatrix_db.database.pgoutput import Decoder, Transaction

HEADERS = ("id", "eventType", "schemaVersion", "institutionId", "occurredAt")
"""The connector's headers (components/event_backbone.py `table.fields.additional.placement`, and the router's
`id`), as the real Debezium connector sends them (tests/pg/test_events_debezium.py)."""


class Producer(Protocol):  # the part of confluent_kafka.Producer the relay uses
    def produce(self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, str | bytes | None]]) -> None:
        ...

    def flush(self, timeout: float) -> int: ...


def create_slot(conn: psycopg.Connection[Any], service: str) -> bool:
    """The service's pgoutput slot, if it does not exist yet (True when created). It retains WAL from now on
    until it is read: a slot nobody reads fills the disk (docs/events.md, slot sizing and lag)."""
    slot = outbox_slot_name(service)
    if conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [slot]).fetchone():
        return False
    conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [slot])
    return True


def drop_slot(conn: psycopg.Connection[Any], service: str) -> None:
    conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                 [outbox_slot_name(service)])


def peek(conn: psycopg.Connection[Any], service: str, upto_lsn: str | None = None) -> list[Transaction]:
    """The committed transactions waiting in the service's slot (up to `upto_lsn`, all when None), in commit order,
    without consuming them (each call is a new decoding session, which sends its Relation messages again: a
    fresh decoder each time)."""
    rows = conn.execute(
        "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, NULL, 'proto_version', '1', "
        "'publication_names', %s)", [outbox_slot_name(service), upto_lsn, outbox_publication_name(service)]).fetchall()
    return Decoder().transactions(r[0] for r in rows)


def current_lsn(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
    assert row is not None
    return str(row[0])


def advance(conn: psycopg.Connection[Any], service: str, lsn: str) -> None:
    """Confirm everything committed up to `lsn`: the slot releases that WAL."""
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [outbox_slot_name(service), lsn])


def outbox_events(service: str, transactions: Iterable[Transaction]) -> list[Event]:
    """The events the transactions inserted into the service's outbox (anything else is ignored)."""
    table = f"{schema_name(service)}.{outbox_table_name(service)}"
    events = []
    for tx in transactions:
        for change in tx.changes:
            if change.kind != "insert" or change.table != table:
                continue
            v = change.values
            events.append(Event(
                id=uuid.UUID(str(v["id"])), source_service=service, institution_id=uuid.UUID(str(v["institution_id"])),
                aggregatetype=str(v["aggregatetype"]), aggregateid=str(v["aggregateid"]), type=str(v["type"]),
                payload=json.loads(str(v["payload"])), schema_version=int(str(v["schema_version"])),
                occurred_at=str(v["occurred_at"])))
    return events


def message(event: Event) -> tuple[str, bytes, bytes, list[tuple[str, bytes]]]:
    """(topic, key, value, headers) of an event, as the outbox event router would publish it."""
    headers = [("id", str(event.id)), ("eventType", event.type), ("schemaVersion", str(event.schema_version)),
               ("institutionId", str(event.institution_id)), ("occurredAt", event.occurred_at)]
    value = json.dumps({"payload": event.payload, "eventType": event.type}).encode()
    return (event_topic_name(event.source_service, event.aggregatetype), event.aggregateid.encode(), value,
            [(k, v.encode()) for k, v in headers])


def event_from_message(topic: str, key: bytes, value: bytes, headers: Iterable[tuple[str, bytes]]) -> Event:
    """A consumer's view of a message (the inverse of `message`)."""
    _, service, aggregate = topic.split(".", 2)
    h = {k: v.decode() for k, v in headers}
    missing = [k for k in HEADERS if k not in h]
    if missing:
        raise ValueError(f"message on {topic} lacks the header(s) {', '.join(missing)}")
    envelope = json.loads(value)
    return Event(id=uuid.UUID(h["id"]), source_service=service, institution_id=uuid.UUID(h["institutionId"]),
                 aggregatetype=aggregate, aggregateid=key.decode(), type=h["eventType"], payload=envelope["payload"],
                 schema_version=int(h["schemaVersion"]), occurred_at=h["occurredAt"])


@dataclass
class Relay:
    """Relays one service's outbox: `poll()` publishes what committed since the last poll and advances."""

    conn: psycopg.Connection[Any]  # the CDC login, autocommit
    service: str
    producer: Producer
    flush_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        create_slot(self.conn, self.service)

    def poll(self) -> list[Event]:
        """Publish what committed up to now, then confirm up to now: also when nothing of the outbox committed,
        so the slot does not hold the WAL of every other service's traffic while this outbox is idle (pgoutput
        sends no empty transactions; Debezium needs its heartbeat for the same reason)."""
        upto = current_lsn(self.conn)
        transactions = peek(self.conn, self.service, upto)
        events = outbox_events(self.service, transactions)
        for event in events:
            topic, key, value, headers = message(event)
            self.producer.produce(topic, value=value, key=key, headers=list[tuple[str, str | bytes | None]](headers))
        left = self.producer.flush(self.flush_timeout_s)
        if left:
            raise RuntimeError(f"{left} message(s) not acknowledged by the broker; the slot is not advanced "
                               "(they are sent again on the next poll)")
        advance(self.conn, self.service, upto)
        return events


@dataclass
class RelayRun:
    """What a bounded run of the relay did (`run`): the CLI's summary."""

    polls: int = 0
    events: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    stopped: str = ""


def run(relay: Relay, *, max_events: int | None = None, until_idle: bool = False, interval_s: float = 1.0,
        on_poll: Callable[[RelayRun], None] = lambda _: None,
        sleep: Callable[[float], None] = time.sleep) -> RelayRun:
    """Poll until a bound is reached: `until_idle` stops after the first poll that relays nothing, `max_events`
    after the poll that brings the total to at least that many (a poll relays everything committed before it
    started, so the total may exceed it). With neither it polls until interrupted (KeyboardInterrupt ends the
    run with its summary; a poll interrupted midway is not advanced, so its events are relayed again later)."""
    done = RelayRun()
    try:
        while True:
            events = relay.poll()
            done.polls += 1
            done.events += len(events)
            for event in events:
                topic = event_topic_name(event.source_service, event.aggregatetype)
                done.by_topic[topic] = done.by_topic.get(topic, 0) + 1
            on_poll(done)
            if max_events is not None and done.events >= max_events:
                done.stopped = f"reached --max-events {max_events}"
                return done
            if until_idle and not events:
                done.stopped = "idle (a poll relayed nothing)"
                return done
            sleep(interval_s)
    except KeyboardInterrupt:
        done.stopped = "interrupted"
        return done
