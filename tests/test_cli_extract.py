"""`edumatrix-db extract`: wiring and refusals that need no server (the drills are tests/pg/test_extraction.py)."""

from __future__ import annotations

import pytest

from edumatrix_db.cli import main


def test_an_unknown_service_exits_2_naming_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "billing", "status", "--source", "host=/nonexistent", "--target", "host=/nonexistent"])
    err = capsys.readouterr().err
    assert (code, "unknown service 'billing'" in err, "feedback" in err) == (2, True, True)


def test_an_unreachable_source_exits_2_before_anything_changes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "feedback", "clone-schema", "--source", "postgresql://x@127.0.0.1:1/edumatrix",
                 "--target", "postgresql://x@127.0.0.1:1/edumatrix"])
    assert (code, "cannot reach the source" in capsys.readouterr().err) == (2, True)


def test_the_operations_are_the_phase_models() -> None:
    with pytest.raises(SystemExit):
        main(["extract", "feedback", "migrate", "--source", "x", "--target", "y"])


def test_a_pooler_admin_without_its_configuration_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "feedback", "cutover", "--source", "host=/nonexistent", "--target", "host=/nonexistent",
                 "--pooler-admin", "postgresql://a@127.0.0.1:1/pgbouncer", "--pooler-ini", "/tmp/one.ini",
                 "--pooler-admin", "postgresql://a@127.0.0.1:2/pgbouncer"])
    assert (code, "2 --pooler-admin but 1 --pooler-ini" in capsys.readouterr().err) == (2, True)


def test_a_backend_record_with_an_ini_exits_2_saying_the_agents_write_theirs(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["extract", "feedback", "cutover", "--source", "host=/nonexistent", "--target", "host=/nonexistent",
                 "--pooler-record", "/tmp/feedback-backend.json",
                 "--pooler-admin", "postgresql://a@127.0.0.1:1/pgbouncer", "--pooler-ini", "/tmp/one.ini"])
    assert (code, "each PgBouncer's agent writes its own" in capsys.readouterr().err) == (2, True)
