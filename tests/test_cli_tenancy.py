"""`edumatrix-db tenancy sql`: SQL for a catalog service's conventional table, clear errors otherwise."""

from __future__ import annotations

import pytest

from edumatrix_db.cli import main


def test_prints_the_isolation_statements_for_a_conventional_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenancy", "sql", "feedback", "feedback_items"]) == 0
    out = capsys.readouterr().out
    assert 'ALTER TABLE "feedback_schema"."feedback_items" FORCE ROW LEVEL SECURITY;' in out
    assert "current_setting('app.institution_id', true)" in out


@pytest.mark.parametrize(("service", "table", "message"), [
    ("feedbak", "feedbak_items", "did you mean 'feedback'?"),
    ("feedback", 'feedback_x"; drop', "not a plain PostgreSQL identifier"),
    ("feedback", "statistics_items", "does not follow the convention feedback_<entity>"),
])
def test_bad_input_exits_2_with_a_message_and_no_traceback(capsys: pytest.CaptureFixture[str], service: str, table: str,
                                                           message: str) -> None:
    assert main(["tenancy", "sql", service, table]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""
