"""Migrations without a database: numbering, the revision template, and what is refused before connecting."""

from __future__ import annotations

from pathlib import Path

import pytest

from edumatrix_db.cli import main
from edumatrix_db.ops import maintenance, migrate


def test_new_revisions_are_numbered_in_sequence_each_after_the_previous(tmp_path: Path) -> None:
    first = migrate.new_revision("feedback", "create entries", tmp_path)
    second = migrate.new_revision("feedback", "add responses", tmp_path)
    assert (first.name, second.name) == ("0001_create_entries.py", "0002_add_responses.py")
    assert "down_revision = '0001'" in second.read_text()


def test_a_fresh_revision_fails_check_until_its_downgrade_is_written(tmp_path: Path) -> None:
    migrate.new_revision("feedback", "create entries", tmp_path)
    _ids, findings = migrate.lint_revisions("feedback", tmp_path)
    assert [(f.rule, f.object) for f in findings] == [("rollback", "0001_create_entries.py")]


def test_the_example_migrations_are_numbered_and_all_have_a_downgrade() -> None:
    ids, findings = migrate.lint_revisions("feedback")
    assert ids == ["0001", "0002", "0003", "0004", "0005"]
    assert findings == []


@pytest.mark.parametrize("body", ["pass", "...", '"""nothing"""', "raise NotImplementedError"])
def test_a_downgrade_that_does_nothing_counts_as_empty(tmp_path: Path, body: str) -> None:
    versions = tmp_path / "feedback" / "versions"
    versions.mkdir(parents=True)
    (versions / "0001_a.py").write_text(
        f"revision = '0001'\ndown_revision = None\ndef upgrade():\n    pass\ndef downgrade():\n    {body}\n")
    _ids, findings = migrate.lint_revisions("feedback", tmp_path)
    assert [f.rule for f in findings] == ["rollback"]


def test_an_rds_proxy_endpoint_is_refused_before_connecting() -> None:
    uri = "postgresql://feedback_migrator:x@edumatrix.proxy-abc123def.eu-west-1.rds.amazonaws.com:5432/edumatrix"
    with pytest.raises(migrate.MigrationError, match="RDS Proxy endpoint"):
        migrate.upgrade("feedback", uri)


def test_a_malformed_lock_timeout_is_refused_before_connecting() -> None:
    with pytest.raises(migrate.MigrationError, match="lock timeout"):
        migrate.upgrade("feedback", "postgresql://nowhere.invalid/x", lock_timeout="5 seconds; DROP")


def test_migrate_names_the_service_it_does_not_know(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "feedbak", "status"]) == 2
    assert "did you mean 'feedback'" in capsys.readouterr().err


def test_table_storage_options_are_checked_against_postgresqls_ranges() -> None:
    assert maintenance.table_storage_sql("feedback", "feedback_entry", autovacuum_vacuum_scale_factor=0.01) == [
        'ALTER TABLE "feedback_schema"."feedback_entry" SET (autovacuum_vacuum_scale_factor = 0.01)']
    with pytest.raises(ValueError, match="outside"):
        maintenance.table_storage_sql("feedback", "feedback_entry", fillfactor=5)
    with pytest.raises(ValueError, match="not a table storage option"):
        maintenance.table_storage_sql("feedback", "feedback_entry", toast_tuple_target=128)


def test_cron_jobs_only_name_objects_of_their_own_service() -> None:
    with pytest.raises(ValueError, match="not feedback's"):
        maintenance.analyze("feedback", "steal", "0 * * * *", "courses_platform_course")
    with pytest.raises(ValueError, match="cron expression"):
        maintenance.analyze("feedback", "nightly", "every night", "feedback_entry")
