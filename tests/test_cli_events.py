"""`edumatrix-db events sql`: the event objects of a catalog service, clear errors otherwise; and the relay's
message shape, which consumers rely on (docs/events.md)."""

from __future__ import annotations

import uuid

import pytest

from edumatrix_db.cli import main
from edumatrix_db.database.events import Event
from edumatrix_db.ops.relay import event_from_message, message


def test_a_publishing_service_gets_inbox_outbox_cdc_grant_and_publication_in_that_order(capsys):
    assert main(["events", "sql", "news_system"]) == 0
    out = capsys.readouterr().out
    order = ['"news_system_schema"."news_system_inbox" (', '"news_system_schema"."news_system_outbox" (',
             'TO "edumatrix_cdc_replicator"', "RESET ROLE", 'CREATE PUBLICATION "news_system_outbox_pub" FOR TABLE '
             '"news_system_schema"."news_system_outbox" WITH (publish = \'insert\')']
    positions = [out.index(fragment) for fragment in order]
    assert positions == sorted(positions)
    assert "article_published: aggregatetype 'article', schema_version 1" in out


def test_a_service_that_publishes_nothing_gets_an_inbox_only(capsys):
    assert main(["events", "sql", "statistics"]) == 0
    out = capsys.readouterr().out
    assert "statistics_inbox" in out
    assert "outbox" not in out.replace("no outbox", "")


def test_an_unknown_service_exits_2_with_a_suggestion(capsys):
    assert main(["events", "sql", "feedbak"]) == 2
    captured = capsys.readouterr()
    assert "did you mean 'feedback'?" in captured.err
    assert captured.out == ""


def _event() -> Event:
    return Event(id=uuid.uuid4(), source_service="news_system", institution_id=uuid.UUID(int=7),
                 aggregatetype="article", aggregateid="a-1", type="article_published", payload={"k": [1]},
                 schema_version=1, occurred_at="2026-11-27 05:00:00+00")


def test_a_relayed_message_reads_back_as_the_same_event():
    event = _event()
    topic, key, value, headers = message(event)
    assert (topic, key) == ("edumatrix.news_system.article", b"a-1")
    assert event_from_message(topic, key, value, headers) == event


def test_a_message_without_the_event_headers_is_refused():
    topic, key, value, headers = message(_event())
    with pytest.raises(ValueError, match="lacks the header\\(s\\) schema_version"):
        event_from_message(topic, key, value, [h for h in headers if h[0] != "schema_version"])
