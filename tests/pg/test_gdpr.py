"""GDPR on the real server: two services holding the same person (students_platform and courses_platform),
their contracts as docs/examples/gdpr/*.sql writes them, the orchestrator, the ledger, the replay after a
restore, and pgaudit's object audit (docs/gdpr.md)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from rich.console import Console

from components.personal_data_reads import read_pattern
from config.naming import contract_functions
from edumatrix_db.cli import main
from edumatrix_db.database.catalog import read_catalog
from edumatrix_db.database.drift import evaluate
from edumatrix_db.database.tenancy import enable_tenant_isolation
from edumatrix_db.ops import gdpr
from edumatrix_db.ops.ledger import FileLedger, requests
from edumatrix_db.ops.restore import RestoreError, RestoreRequest, RestoreResult, restore_schema
from tests.pg.conftest import Postgres

pytestmark = pytest.mark.postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gdpr"
SERVICES = ("students_platform", "courses_platform")
INSTITUTIONS = (uuid.UUID(int=1), uuid.UUID(int=2))


EXAMPLE_TABLES = {"students_platform": ("students_platform_contact", "students_platform_student"),
                  "courses_platform": ("courses_platform_enrolment", "courses_platform_course")}


@pytest.fixture(scope="module")
def contracts(pg: Postgres) -> Iterator[Postgres]:
    """Each example service's migration, run as its migrator; dropped afterwards (the server is shared)."""
    for service in SERVICES:
        with pg.connect(pg.uri(service, "migrator")) as conn:
            conn.execute((EXAMPLES / f"{service}.sql").read_text().encode())
            for table in EXAMPLE_TABLES[service]:  # what the example's comment says the migration does
                enable_tenant_isolation(conn, service, table)
    yield pg
    for service in SERVICES:
        with pg.connect(pg.uri(service, "migrator")) as conn:
            for function in contract_functions(service):
                conn.execute(f"DROP FUNCTION {function}")
            conn.execute(f"DROP TABLE {', '.join(EXAMPLE_TABLES[service])}")


def seed(pg: Postgres, subject: uuid.UUID) -> None:
    """The subject in both institutions of both services (as the superuser, which RLS does not bind)."""
    with pg.superuser() as su:
        for inst in INSTITUTIONS:
            su.execute("INSERT INTO students_platform_schema.students_platform_student "
                       "(institution_id, subject_id, full_name, email) VALUES (%s, %s, 'A Person', 'a@example.org')",
                       [inst, subject])
            su.execute("INSERT INTO students_platform_schema.students_platform_contact "
                       "(institution_id, subject_id, phone) VALUES (%s, %s, '+100')", [inst, subject])
            course = su.execute("INSERT INTO courses_platform_schema.courses_platform_course (institution_id, code) "
                                "VALUES (%s, %s) RETURNING id", [inst, f"C-{uuid.uuid4().hex[:8]}"]).fetchone()
            assert course is not None
            su.execute("INSERT INTO courses_platform_schema.courses_platform_enrolment "
                       "(institution_id, course_id, subject_id, grade) VALUES (%s, %s, %s, 'A')",
                       [inst, course[0], subject])


def rows_of(pg: Postgres, subject: uuid.UUID, dbname: str | None = None) -> dict[str, int]:
    """The subject's rows per personal table (in a restore drill's database: students_platform's only)."""
    tables = {"students_platform_student": "students_platform_schema",
              "students_platform_contact": "students_platform_schema",
              "courses_platform_enrolment": "courses_platform_schema"}
    if dbname is not None:
        tables = {t: s for t, s in tables.items() if s == "students_platform_schema"}
    with psycopg.connect(pg.server.bootstrap_conninfo(dbname or pg.model.database), autocommit=True) as su:
        out = {}
        for table, schema in tables.items():
            row = su.execute(f"SELECT count(*) FROM {schema}.{table} WHERE subject_id = %s", [subject]).fetchone()
            assert row is not None
            out[table] = int(row[0])
        return out


@pytest.fixture
def people(contracts: Postgres) -> tuple[uuid.UUID, uuid.UUID]:
    """(the subject, another person), both in both services and both institutions."""
    subject, other = uuid.uuid4(), uuid.uuid4()
    seed(contracts, subject)
    seed(contracts, other)
    return subject, other


@pytest.fixture
def ledger(tmp_path: Path) -> FileLedger:
    return FileLedger(tmp_path / "ledger.sqlite")


def targets(pg: Postgres) -> dict[str, str]:
    return gdpr.local_targets(pg.connections)


def run_erase(pg: Postgres, subject: uuid.UUID, ledger: FileLedger, **kwargs: Any) -> gdpr.GdprReport:
    return gdpr.erase(str(subject), gdpr.Orchestration(**{"model": pg.model, "targets": targets(pg), "ledger": ledger,
                                                          "services": SERVICES, **kwargs}))


def test_erase_removes_the_subjects_rows_in_every_tenant_of_both_services_and_nothing_else(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger
) -> None:
    subject, other = people
    report = run_erase(contracts, subject, ledger)
    assert report.ok
    assert {s.service: s.result for s in report.steps} == {
        "students_platform": {"students_platform_student": 2, "students_platform_contact": 2},
        "courses_platform": {"courses_platform_enrolment": 2},
    }
    assert rows_of(contracts, subject) == dict.fromkeys(rows_of(contracts, subject), 0)
    assert rows_of(contracts, other) == {"students_platform_student": 2, "students_platform_contact": 2,
                                         "courses_platform_enrolment": 2}


def test_erase_is_idempotent(contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger) -> None:
    subject, _ = people
    run_erase(contracts, subject, ledger)
    again = run_erase(contracts, subject, ledger)
    assert again.ok
    assert not again.resumed
    assert {s.service: s.result for s in again.steps} == {
        "students_platform": {"students_platform_student": 0, "students_platform_contact": 0},
        "courses_platform": {"courses_platform_enrolment": 0},
    }


def test_erase_resumes_after_a_failure_between_services(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger
) -> None:
    subject, _ = people
    broken = {**targets(contracts), "courses_platform": make_conninfo(targets(contracts)["courses_platform"],
                                                                      password="wrong")}
    first = run_erase(contracts, subject, ledger, targets=broken)
    assert [(s.service, s.status) for s in first.steps] == [("students_platform", "done"),
                                                            ("courses_platform", "failed")]
    assert rows_of(contracts, subject)["courses_platform_enrolment"] == 2

    second = run_erase(contracts, subject, ledger)
    assert second.resumed
    assert second.request_id == first.request_id
    assert [(s.service, s.status) for s in second.steps] == [("students_platform", "skipped"),
                                                             ("courses_platform", "done")]
    assert sum(rows_of(contracts, subject).values()) == 0
    (request,) = requests(ledger)
    assert request.complete
    assert set(request.confirmed) == set(SERVICES)


def test_export_returns_every_row_of_the_subject_from_both_services_in_one_document(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger
) -> None:
    subject, _ = people
    report = gdpr.export(str(subject), gdpr.Orchestration(contracts.model, targets(contracts), ledger, SERVICES))
    document = report.document()
    assert set(document["services"]) == set(SERVICES)
    students = document["services"]["students_platform"]
    assert {r["institution_id"] for r in students["students_platform_student"]} == {str(i) for i in INSTITUTIONS}
    assert {r["subject_id"] for r in students["students_platform_contact"]} == {str(subject)}
    assert len(students["students_platform_contact"]) == 2
    assert [r["grade"] for r in document["services"]["courses_platform"]["courses_platform_enrolment"]] == ["A", "A"]
    (request,) = requests(ledger)  # the ledger keeps sizes, not the data
    assert request.confirmed["courses_platform"]["result"] == {"courses_platform_enrolment": 2}


def test_the_gdpr_login_executes_its_contract_and_reads_no_table(contracts: Postgres) -> None:
    with contracts.connect(contracts.uri("students_platform", "gdpr")) as conn:
        assert conn.execute("SELECT students_platform_fn_export_subject(%s::uuid)", [str(uuid.uuid4())]).fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM students_platform_student")


def test_the_app_login_cannot_call_the_contract(contracts: Postgres) -> None:
    with contracts.connect(contracts.uri("students_platform", "app")) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("SELECT students_platform_fn_erase_subject(%s::uuid)", [str(uuid.uuid4())])


def test_one_services_gdpr_login_cannot_call_another_services_contract(contracts: Postgres) -> None:
    with contracts.connect(contracts.uri("courses_platform", "gdpr")) as conn, pytest.raises(
        psycopg.errors.InsufficientPrivilege
    ):
        conn.execute("SELECT students_platform_schema.students_platform_fn_erase_subject(%s::uuid)",
                     [str(uuid.uuid4())])


def test_without_the_definer_a_function_sees_only_the_current_tenant(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID]
) -> None:
    """Why the contract runs as the BYPASSRLS definer: as the owner (forced RLS) one tenant is all there is."""
    subject, _ = people
    with contracts.connect(contracts.uri("students_platform", "migrator")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.institution_id', %s, true)", [str(INSTITUTIONS[0])])
        row = conn.execute("SELECT count(*) FROM students_platform_student WHERE subject_id = %s",
                           [subject]).fetchone()
    assert row == (1,)


@pytest.fixture
def restore_database(contracts: Postgres) -> Iterator[str]:
    name = "gdpr_restore_drill"
    with contracts.superuser() as su:
        su.execute(f"DROP DATABASE IF EXISTS {name}")
        su.execute(f"CREATE DATABASE {name}")
        su.execute(f"GRANT CONNECT ON DATABASE {name} TO students_platform_gdpr")
    yield name
    with contracts.superuser() as su:
        su.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_schema_restored_from_before_an_erasure_is_erased_again_by_the_ledger_replay(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger, restore_database: str,
    tmp_path: Path,
) -> None:
    subject, other = people
    bindir = Path(contracts.state.bindir)
    dump = tmp_path / "students_platform.dump"
    source = contracts.server.bootstrap_conninfo(contracts.model.database)
    subprocess.run([str(bindir / "pg_dump"), "--dbname", source, "--schema", "students_platform_schema",
                    "--format", "custom", "--file", str(dump)], check=True, capture_output=True)
    run_erase(contracts, subject, ledger)  # after the backup was taken

    restored = contracts.server.bootstrap_conninfo(restore_database)
    subprocess.run([str(bindir / "pg_restore"), "--dbname", restored, "--exit-on-error", str(dump)], check=True,
                   capture_output=True)
    before = rows_of(contracts, subject, restore_database)
    assert before["students_platform_student"] == 2  # the backup still holds the erased person

    gdpr_login = make_conninfo(targets(contracts)["students_platform"], dbname=restore_database)
    replayed = gdpr.replay_erasures(ledger, gdpr_login, "students_platform")
    assert [r.subject for r in replayed] == [str(subject)]
    assert rows_of(contracts, subject, restore_database) == {"students_platform_student": 0,
                                                             "students_platform_contact": 0}
    assert rows_of(contracts, other, restore_database)["students_platform_student"] == 2
    (request,) = requests(ledger)
    assert list(request.replayed) == ["students_platform"]


def _audit_lines(pg: Postgres, since: int) -> list[str]:
    text = pg.server.log_file.read_text(errors="replace")[since:]
    return [line for line in text.splitlines() if "AUDIT: OBJECT" in line]


def test_object_audit_logs_a_read_of_a_personal_table_and_not_of_another(contracts: Postgres) -> None:
    since = len(contracts.server.log_file.read_text(errors="replace"))
    tenant = str(INSTITUTIONS[0])
    with contracts.connect(contracts.uri("students_platform", "app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.institution_id', %s, true)", [tenant])
        conn.execute("SELECT count(*) FROM students_platform_student")
    with contracts.connect(contracts.uri("courses_platform", "app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.institution_id', %s, true)", [tenant])
        conn.execute("SELECT count(*) FROM courses_platform_course")
    lines = _audit_lines(contracts, since)
    assert any("READ,SELECT,TABLE,students_platform_schema.students_platform_student" in line for line in lines)
    assert not any("courses_platform_course" in line for line in lines)


def _matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs' rule for a pattern of quoted terms: every term occurs in the line (case-sensitive)."""
    return all(term in line for term in re.findall(r'"([^"]*)"', pattern))


def test_the_personal_data_read_filters_count_a_real_read_for_its_service_only(contracts: Postgres) -> None:
    since = len(contracts.server.log_file.read_text(errors="replace"))
    with contracts.connect(contracts.uri("courses_platform", "app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.institution_id', %s, true)", [str(INSTITUTIONS[1])])
        conn.execute("SELECT count(*) FROM courses_platform_enrolment")
    (line,) = [line for line in _audit_lines(contracts, since) if "courses_platform_enrolment" in line]
    assert _matches(read_pattern("courses_platform"), line)
    assert not _matches(read_pattern("students_platform"), line)


def test_the_audit_finds_the_contracts_in_place(contracts: Postgres) -> None:
    with contracts.admin() as conn:
        found = [d for d in evaluate(read_catalog(conn, contracts.model), contracts.model)
                 if d.service in SERVICES and (d.rule in ("gdpr", "ownership") or "rds_pgaudit" in d.message
                                               or "_subject(" in d.object)]
    assert found == []


def _gdpr_findings(pg: Postgres, service: str) -> list[tuple[str, str]]:
    with pg.admin() as conn:
        return [(d.object, d.message) for d in evaluate(read_catalog(conn, pg.model), pg.model)
                if d.rule == "gdpr" and d.service == service]


@pytest.fixture
def jobs_table(contracts: Postgres) -> Iterator[psycopg.Connection[Any]]:
    """jobs_portal (personal data in the catalog) gets a table, as the migrator; dropped afterwards."""
    with contracts.connect(contracts.uri("jobs_portal", "migrator")) as conn:
        conn.execute("CREATE TABLE jobs_portal_gdpr_drill (institution_id uuid NOT NULL, id bigint, "
                     "PRIMARY KEY (institution_id, id))")
        try:
            yield conn
        finally:
            conn.execute("DROP TABLE jobs_portal_gdpr_drill")
            conn.execute("DROP FUNCTION IF EXISTS jobs_portal_fn_erase_subject(uuid)")


def test_the_audit_reports_a_missing_contract_once_the_service_has_tables(
    contracts: Postgres, jobs_table: psycopg.Connection[Any]
) -> None:
    found = _gdpr_findings(contracts, "jobs_portal")
    assert [obj for obj, message in found if message.startswith("missing")] == [
        "function jobs_portal_schema.jobs_portal_fn_erase_subject",
        "function jobs_portal_schema.jobs_portal_fn_export_subject",
    ]


def test_the_audit_reports_a_contract_function_owned_by_the_owner_without_security_definer(
    contracts: Postgres, jobs_table: psycopg.Connection[Any]
) -> None:
    jobs_table.execute("CREATE FUNCTION jobs_portal_fn_erase_subject(p uuid) RETURNS jsonb LANGUAGE sql "
                       "AS $$ SELECT '{}'::jsonb $$")
    (message,) = [m for obj, m in _gdpr_findings(contracts, "jobs_portal") if "erase_subject(p uuid)" in obj]
    assert "owned by jobs_portal_owner, not jobs_portal_gdpr_definer" in message
    assert "not SECURITY DEFINER" in message


def cli(pg: Postgres, action: str, subject: str, *options: str) -> int:
    return main(["gdpr", action, subject, "local", "--root", str(pg.server.root), *options])


def test_the_command_exports_one_document_with_a_section_per_service(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], tmp_path: Path
) -> None:
    subject, _ = people
    out = tmp_path / "export.json"
    assert cli(contracts, "export", str(subject), "--services", ",".join(SERVICES), "--output", str(out)) == 0
    document = json.loads(out.read_text())
    assert document["subject"] == str(subject)
    assert sorted(document["services"]) == sorted(SERVICES)
    assert out.stat().st_mode & 0o077 == 0


def test_the_command_erases_and_reports_per_service(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], capsys: pytest.CaptureFixture[str]
) -> None:
    subject, other = people
    assert cli(contracts, "erase", str(subject), "--services", ",".join(SERVICES), "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert {s: v["status"] for s, v in report["services"].items()} == dict.fromkeys(SERVICES, "done")
    assert sum(rows_of(contracts, subject).values()) == 0
    assert sum(rows_of(contracts, other).values()) == 6


def test_the_command_refuses_a_service_without_personal_data(
    contracts: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(contracts, "erase", str(uuid.uuid4()), "--services", "news_system") == 2
    assert "news_system hold no personal data" in capsys.readouterr().err


def test_the_command_refuses_a_subject_that_is_not_a_uuid(
    contracts: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(contracts, "export", "jane@example.org") == 2
    assert "is not a UUID" in capsys.readouterr().err


def test_the_ledger_command_lists_who_asked_to_erase_whom_and_who_confirmed(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], capsys: pytest.CaptureFixture[str]
) -> None:
    subject, _ = people
    assert cli(contracts, "erase", str(subject), "--services", "students_platform", "--requested-by", "dpo") == 0
    capsys.readouterr()
    assert main(["gdpr", "ledger", "local", "--root", str(contracts.server.root)]) == 0
    (entry,) = [r for r in json.loads(capsys.readouterr().out) if r["subject"] == str(subject)]
    assert (entry["action"], entry["requested_by"], list(entry["confirmed"])) == ("erase", "dpo",
                                                                                 ["students_platform"])


def test_the_replay_command_runs_the_recorded_erasures_again(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], capsys: pytest.CaptureFixture[str]
) -> None:
    subject, _ = people
    assert cli(contracts, "erase", str(subject), "--services", "students_platform") == 0
    seed(contracts, subject)  # as a restore from before the erasure would bring the person back
    root = str(contracts.server.root)
    assert main(["gdpr", "replay", "students_platform", "local", "--root", root]) == 0
    assert rows_of(contracts, subject)["students_platform_student"] == 0
    assert "erasure(s) replayed" in capsys.readouterr().err


def test_feedbacks_own_migration_implements_the_contract(migrated: Postgres, ledger: FileLedger) -> None:
    pg = migrated  # feedback's real migrations; 0005 is its GDPR contract
    author, other = uuid.uuid4(), uuid.uuid4()
    with pg.superuser() as su:
        for person in (author, other):
            for inst in INSTITUTIONS:
                su.execute("INSERT INTO feedback_schema.feedback_entry (institution_id, author_id, subject, rating) "
                           "VALUES (%s, %s, 'course', 4)", [inst, person])
    report = gdpr.erase(str(author), gdpr.Orchestration(pg.model, targets(pg), ledger, ["feedback"]))
    assert [(s.service, s.status, s.result) for s in report.steps] == [
        ("feedback", "done", {"feedback_entry": 2, "feedback_response": 0})]
    with pg.superuser() as su:
        left = su.execute("SELECT author_id, count(*) FROM feedback_schema.feedback_entry GROUP BY 1").fetchall()
    assert left == [(other, 2)]
    with pg.admin() as conn:
        assert [d for d in evaluate(read_catalog(conn, pg.model), pg.model) if d.rule == "gdpr"
                and d.service == "feedback"] == []


@pytest.fixture
def backup_database(contracts: Postgres, tmp_path: Path) -> Iterator[str]:
    """A database holding students_platform's schema as it is now (the backup a restore reads), with its
    ownership and grants (the contract functions owned by the GDPR definer); readable by the data mover."""
    name = "gdpr_restore_source"
    bindir = Path(contracts.state.bindir)
    dump = tmp_path / "before.dump"
    subprocess.run([str(bindir / "pg_dump"), "--dbname", contracts.server.bootstrap_conninfo(contracts.model.database),
                    "--schema", "students_platform_schema", "--format", "custom", "--file", str(dump)],
                   check=True, capture_output=True)
    with contracts.superuser() as su:
        su.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        su.execute(f"CREATE DATABASE {name}")
        su.execute(f"GRANT CONNECT ON DATABASE {name} TO {contracts.model.platform.role('data_mover').name}")
    subprocess.run([str(bindir / "pg_restore"), "--dbname", contracts.server.bootstrap_conninfo(name),
                    "--exit-on-error", str(dump)], check=True, capture_output=True)
    yield name
    with contracts.superuser() as su:
        su.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _restore_students(pg: Postgres, source_db: str, **kwargs: Any) -> RestoreResult:
    source = make_conninfo(str(pg.connections["platform"]["data_mover"]), dbname=source_db)
    request = RestoreRequest("students_platform", source, pg.admin_uri, replace=True, **kwargs)
    return restore_schema(request, pg.model, console=Console(file=io.StringIO()))


def test_restore_schema_replays_the_ledger_so_a_schema_from_before_an_erasure_keeps_the_subject_erased(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger, backup_database: str,
) -> None:
    subject, other = people
    run_erase(contracts, subject, ledger)  # after the backup was taken
    result = _restore_students(contracts, backup_database, erasures=ledger)
    assert [r.subject for r in result.erasures_replayed] == [str(subject)]
    assert rows_of(contracts, subject) == {"students_platform_student": 0, "students_platform_contact": 0,
                                           "courses_platform_enrolment": 0}
    assert rows_of(contracts, other)["students_platform_student"] == 2
    assert [list(r.replayed) for r in requests(ledger)] == [["students_platform"]]


def test_a_restored_contract_is_owned_by_the_definer_and_callable_by_the_gdpr_login_only(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger, backup_database: str,
) -> None:
    subject, _ = people
    _restore_students(contracts, backup_database, erasures=ledger)
    with contracts.superuser() as su:
        # (other tests of the session may add functions of their own to the schema: only the contract's count)
        owners = su.execute("SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.pronamespace = "
                            "'students_platform_schema'::regnamespace AND p.proname = ANY(%s) ORDER BY 1",
                            (list(contract_functions("students_platform")),)).fetchall()
    assert owners == [(f, "students_platform_gdpr_definer") for f in sorted(contract_functions("students_platform"))]
    report = run_erase(contracts, subject, ledger, services=["students_platform"])
    assert [s.status for s in report.steps] == ["done"]
    with contracts.connect(contracts.uri("students_platform", "app")) as app, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        app.execute(f"SELECT students_platform_schema.{contract_functions('students_platform')[0]}(%s)", [subject])


def test_restore_schema_of_a_personal_data_service_without_a_ledger_is_refused_before_anything_changes(
    contracts: Postgres, backup_database: str,
) -> None:
    with pytest.raises(RestoreError, match="erasure ledger"):
        _restore_students(contracts, backup_database)


def test_skipping_the_erasure_replay_needs_a_reason_and_the_result_says_it_was_skipped(
    contracts: Postgres, people: tuple[uuid.UUID, uuid.UUID], ledger: FileLedger, backup_database: str,
) -> None:
    subject, _ = people
    run_erase(contracts, subject, ledger)
    result = _restore_students(contracts, backup_database, skip_erasure_replay="restored into a quarantined copy")
    assert result.erasure_replay_skipped == "restored into a quarantined copy"
    assert rows_of(contracts, subject)["students_platform_student"] == 2  # the person came back, as warned
