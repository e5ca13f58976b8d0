"""`edumatrix-db events sql`: the event objects of a catalog service, clear errors otherwise; and the relay's
message shape, which consumers rely on (docs/events.md)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import cast

import pytest

from edumatrix_db.cli import main
from edumatrix_db.database.events import Event
from edumatrix_db.ops.relay import Relay, event_from_message, message
from edumatrix_db.ops.relay import run as relay_run


def test_a_publishing_service_gets_inbox_outbox_cdc_grant_and_publication_in_that_order(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "sql", "news_system"]) == 0
    out = capsys.readouterr().out
    order = ['"news_system_schema"."news_system_inbox" (', '"news_system_schema"."news_system_outbox" (',
             'TO "edumatrix_cdc_replicator"', "RESET ROLE", 'CREATE PUBLICATION "news_system_outbox_pub" FOR TABLE '
             '"news_system_schema"."news_system_outbox" WITH (publish = \'insert\')']
    positions = [out.index(fragment) for fragment in order]
    assert positions == sorted(positions)
    assert "article_published: aggregatetype 'article', schema_version 1" in out


def test_the_printed_sql_tells_other_languages_each_types_payload_and_checks_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "sql", "news_system"]) == 0
    out = capsys.readouterr().out
    assert 'payload {"article_id": "string", "title_length": "integer"}' in out
    assert "ADD CONSTRAINT \"news_system_outbox_payload_check\" CHECK" in out


def test_a_service_that_publishes_nothing_gets_an_inbox_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "sql", "statistics"]) == 0
    out = capsys.readouterr().out
    assert "statistics_inbox" in out
    assert "outbox" not in out.replace("no outbox", "")


def test_an_unknown_service_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "sql", "feedbak"]) == 2
    captured = capsys.readouterr()
    assert "did you mean 'feedback'?" in captured.err
    assert captured.out == ""


def _event() -> Event:
    return Event(id=uuid.uuid4(), source_service="news_system", institution_id=uuid.UUID(int=7),
                 aggregatetype="article", aggregateid="a-1", type="article_published", payload={"k": [1]},
                 schema_version=1, occurred_at="2026-11-27 05:00:00+00")


def test_a_relayed_message_reads_back_as_the_same_event() -> None:
    event = _event()
    topic, key, value, headers = message(event)
    assert (topic, key) == ("edumatrix.news_system.article", b"a-1")
    assert event_from_message(topic, key, value, headers) == event


def test_a_message_without_the_event_headers_is_refused() -> None:
    topic, key, value, headers = message(_event())
    with pytest.raises(ValueError, match="lacks the header\\(s\\) schemaVersion"):
        event_from_message(topic, key, value, [h for h in headers if h[0] != "schemaVersion"])


class _Polls:
    """A relay whose polls return the given batches (then nothing): `relay.run` is only about when to stop."""

    def __init__(self, *batches: int) -> None:
        self.batches = list(batches)

    def poll(self) -> list[Event]:
        n = self.batches.pop(0) if self.batches else 0
        return [_event() for _ in range(n)]


def _polls(*batches: int) -> Relay:
    """_Polls where `relay.run` takes a Relay: it only calls `poll()` (a Relay needs a database and a broker)."""
    return cast(Relay, _Polls(*batches))


def test_a_relay_run_until_idle_stops_after_the_first_empty_poll() -> None:
    done = relay_run(_polls(2, 1, 0, 5), until_idle=True, sleep=lambda _: None)
    assert (done.polls, done.events, done.stopped) == (3, 3, "idle (a poll relayed nothing)")


def test_a_relay_run_with_max_events_stops_after_the_poll_that_reaches_it() -> None:
    done = relay_run(_polls(2, 2, 2), max_events=3, sleep=lambda _: None)
    assert (done.polls, done.events, done.stopped) == (2, 4, "reached --max-events 3")


def test_a_relay_run_counts_events_per_topic() -> None:
    done = relay_run(_polls(2), until_idle=True, sleep=lambda _: None)
    assert done.by_topic == {"edumatrix.news_system.article": 2}


def test_relaying_a_service_that_publishes_nothing_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "relay", "statistics", "--bootstrap", "127.0.0.1:1", "--until-idle"]) == 2
    assert "statistics publishes no events" in capsys.readouterr().err


def test_relaying_without_a_local_server_exits_2_naming_local_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["events", "relay", "news_system", "--root", str(tmp_path), "--bootstrap", "127.0.0.1:1"])
    assert code == 2
    assert "connections.json not found: run `edumatrix-db local up` first" in capsys.readouterr().err


def test_the_printed_sql_deletes_the_outbox_row_after_inserting_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["events", "sql", "news_system"]) == 0
    out = capsys.readouterr().out
    insert = out.index('-- INSERT INTO "news_system_schema"."news_system_outbox"')
    assert out.index('-- DELETE FROM "news_system_schema"."news_system_outbox" WHERE id = %s;') > insert
