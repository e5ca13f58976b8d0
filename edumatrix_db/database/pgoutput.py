"""A minimal decoder of PostgreSQL's `pgoutput` logical replication messages, protocol version 1
(https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).

psycopg 3 has no replication protocol, so the local relay and the tests read a slot with SQL
(`pg_logical_slot_peek_binary_changes(slot, NULL, NULL, 'proto_version', '1', 'publication_names', pub)`),
which returns one bytea message per row. PyPI's decoders (`pypgoutput`, unmaintained since 2022 and built on
psycopg2; `pgoutput-decoder`, a 0.1 release) were not worth a dependency for the five messages the outbox needs:
Begin, Commit, Relation, Insert, and the rest recognised and skipped (Origin, Type, Truncate) or kept as raw
changes (Update, Delete: an outbox publication publishes inserts only, so they never appear there). Values
arrive as text (the protocol's default; no `binary` option is asked for).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class DecodeError(ValueError):
    """A message this decoder does not understand (or a truncated one)."""


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    kind: str  # "insert", "update" or "delete"
    relation: Relation
    values: dict[str, str | None]  # the new row (insert, update) or the key / old row (delete)

    @property
    def table(self) -> str:
        return f"{self.relation.schema}.{self.relation.name}"


@dataclass
class Transaction:
    xid: int
    final_lsn: int
    commit_time: datetime
    end_lsn: int = 0  # set by the Commit message: where a consumer may advance the slot to
    changes: list[Change] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise DecodeError(f"message truncated at byte {self.pos}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return int(value)

    def byte(self) -> str:
        return chr(self.take("!B"))

    def string(self) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise DecodeError("unterminated string")
        value = self.data[self.pos:end].decode()
        self.pos = end + 1
        return value

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"message truncated at byte {self.pos}")
        value = self.data[self.pos:self.pos + n]
        self.pos += n
        return value

    def timestamp(self) -> datetime:
        return _PG_EPOCH + timedelta(microseconds=self.take("!q"))

    def tuple_data(self, relation: Relation) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for name in relation.columns[:self.take("!H")]:
            kind = self.byte()
            if kind == "n":
                values[name] = None
            elif kind == "u":  # an unchanged TOASTed value: not sent
                continue
            elif kind == "t":
                values[name] = self.raw(self.take("!I")).decode()
            else:
                raise DecodeError(f"unsupported tuple column kind {kind!r} (binary values were not asked for)")
        return values


class Decoder:
    """Decodes a stream of pgoutput messages in order; relations are remembered across calls, as the
    protocol sends a Relation message before a relation's first change in each session only."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}

    def transactions(self, messages: Iterable[bytes]) -> list[Transaction]:
        """The committed transactions the messages hold (a slot only ever returns committed ones)."""
        done: list[Transaction] = []
        current: Transaction | None = None
        for message in messages:
            r = _Reader(bytes(message))
            tag = r.byte()
            if tag == "B":
                final_lsn, commit_time, xid = r.take("!Q"), r.timestamp(), r.take("!I")
                current = Transaction(xid=xid, final_lsn=final_lsn, commit_time=commit_time)
            elif tag == "C":
                r.take("!B")  # flags
                r.take("!Q")  # commit LSN
                end_lsn = r.take("!Q")
                if current is None:
                    raise DecodeError("Commit without Begin")
                current.end_lsn = end_lsn
                done.append(current)
                current = None
            elif tag == "R":
                oid, schema, name = r.take("!I"), r.string(), r.string()
                r.byte()  # replica identity
                columns = []
                for _ in range(r.take("!H")):
                    r.take("!B")  # flags (part of the key)
                    columns.append(r.string())
                    r.take("!I")  # type oid
                    r.take("!i")  # type modifier
                self.relations[oid] = Relation(oid, schema, name, tuple(columns))
            elif tag in "IUD":
                relation = self._relation(r.take("!I"))
                marker = r.byte()
                if tag == "U" and marker in "KO":  # the old key / row first, then 'N' and the new row
                    r.tuple_data(relation)
                    marker = r.byte()
                values = r.tuple_data(relation)
                if current is None:
                    raise DecodeError("change outside a transaction")
                kind = {"I": "insert", "U": "update", "D": "delete"}[tag]
                current.changes.append(Change(kind, relation, values))
            elif tag in "OYT":  # Origin, Type, Truncate: nothing the outbox relies on
                continue
            else:
                raise DecodeError(f"unknown pgoutput message {tag!r}")
        return done

    def _relation(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise DecodeError(f"change of relation {oid} before its Relation message") from None


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it (`16/B374D848`)."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
