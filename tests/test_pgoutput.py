"""The minimal pgoutput decoder (edumatrix_db/database/pgoutput.py) on hand-built messages; the real server's
messages are decoded in tests/pg/test_events.py."""

from __future__ import annotations

import struct

import pytest

from edumatrix_db.database.pgoutput import DecodeError, Decoder, lsn_text


def s(text: str) -> bytes:
    return text.encode() + b"\0"


RELATION = (b"R" + struct.pack("!I", 16384) + s("news_system_schema") + s("news_system_outbox") + b"d"
            + struct.pack("!H", 2) + b"\1" + s("id") + struct.pack("!Ii", 2950, -1)
            + b"\0" + s("payload") + struct.pack("!Ii", 3802, -1))
BEGIN = b"B" + struct.pack("!QqI", 0x16_0000_0100, 0, 731)
COMMIT = b"C" + struct.pack("!BQQq", 0, 0x16_0000_0100, 0x16_0000_0180, 0)


def insert(*values: bytes | None) -> bytes:
    body = b"I" + struct.pack("!I", 16384) + b"N" + struct.pack("!H", len(values))
    for v in values:
        body += b"n" if v is None else b"t" + struct.pack("!I", len(v)) + v
    return body


def test_a_transaction_decodes_to_its_inserts_with_the_relations_column_names() -> None:
    (tx,) = Decoder().transactions([BEGIN, RELATION, insert(b"e-1", b'{"a": 1}'), insert(b"e-2", None), COMMIT])
    assert (tx.xid, tx.end_lsn) == (731, 0x16_0000_0180)
    assert [(c.kind, c.table, c.values) for c in tx.changes] == [
        ("insert", "news_system_schema.news_system_outbox", {"id": "e-1", "payload": '{"a": 1}'}),
        ("insert", "news_system_schema.news_system_outbox", {"id": "e-2", "payload": None}),
    ]


def test_a_transaction_without_its_commit_is_not_returned() -> None:
    assert Decoder().transactions([BEGIN, RELATION, insert(b"e-1", b"{}")]) == []


@pytest.mark.parametrize(("messages", "error"), [
    ([BEGIN, insert(b"e-1", b"{}")], "before its Relation message"),
    ([BEGIN, RELATION, insert(b"e-1", b"{}")[:-3]], "truncated"),
    ([b"Z"], "unknown pgoutput message 'Z'"),
    ([COMMIT], "Commit without Begin"),
])
def test_what_it_cannot_decode_is_an_error_never_a_silent_skip(messages: list[bytes], error: str) -> None:
    with pytest.raises(DecodeError, match=error):
        Decoder().transactions(messages)


def test_an_lsn_prints_as_postgresql_writes_it() -> None:
    assert lsn_text(0x16_B374_D848) == "16/B374D848"
