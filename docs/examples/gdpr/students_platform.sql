-- The GDPR contract of a service, as a service team writes it in a migration (docs/gdpr.md).
-- Run as the service's migrator (it works as students_platform_owner). The tests run this very file
-- (tests/pg/test_gdpr.py), so what the documentation shows is what is proven.

-- 1. The service's tables. Both are personal (config/services.yaml: personal_tables), both carry the
--    subject (the person's platform-wide id) and the tenant, under tenant isolation (docs/tenancy.md).
CREATE TABLE IF NOT EXISTS students_platform_student (
  institution_id uuid NOT NULL,
  id bigint GENERATED ALWAYS AS IDENTITY,
  subject_id uuid NOT NULL,
  full_name text NOT NULL,
  email text,
  PRIMARY KEY (institution_id, id));
CREATE TABLE IF NOT EXISTS students_platform_contact (
  institution_id uuid NOT NULL,
  id bigint GENERATED ALWAYS AS IDENTITY,
  subject_id uuid NOT NULL,
  phone text NOT NULL,
  PRIMARY KEY (institution_id, id));
CREATE INDEX IF NOT EXISTS students_platform_student_subject ON students_platform_student (subject_id);
CREATE INDEX IF NOT EXISTS students_platform_contact_subject ON students_platform_contact (subject_id);

-- Tenant isolation of each table, in the same migration (docs/tenancy.md): the statements printed by
--   edumatrix-db tenancy sql students_platform students_platform_student
--   edumatrix-db tenancy sql students_platform students_platform_contact
-- (a Python migration calls edumatrix_db.database.tenancy.enable_tenant_isolation instead; the tests do).

-- Access tracking: pgaudit's object audit logs every statement touching a table its role (rds_pgaudit) holds
-- a privilege on. The catalog lists these tables as personal; `edumatrix-db audit` reports one without it.
GRANT SELECT ON students_platform_student, students_platform_contact TO rds_pgaudit;

-- 2. The contract, created AS the GDPR definer: it owns the functions (SECURITY DEFINER runs them with its
--    rights: BYPASSRLS, so every tenant the person belongs to is reached; SELECT/UPDATE/DELETE on this schema's
--    tables only), and its default privileges let students_platform_gdpr execute them, nobody else.
SET ROLE students_platform_gdpr_definer;

-- Erase: idempotent (a second call finds nothing), returns counts only, never personal data.
CREATE OR REPLACE FUNCTION students_platform_fn_erase_subject(p_subject_id uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = students_platform_schema, pg_temp AS $fn$
DECLARE
  contacts bigint;
  students bigint;
BEGIN
  DELETE FROM students_platform_contact WHERE subject_id = p_subject_id;
  GET DIAGNOSTICS contacts = ROW_COUNT;
  DELETE FROM students_platform_student WHERE subject_id = p_subject_id;
  GET DIAGNOSTICS students = ROW_COUNT;
  RETURN jsonb_build_object('students_platform_student', students, 'students_platform_contact', contacts);
END
$fn$;

-- Export: every row of the subject, in every tenant, as one JSON document (a key per table).
CREATE OR REPLACE FUNCTION students_platform_fn_export_subject(p_subject_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = students_platform_schema, pg_temp AS $fn$
  SELECT jsonb_build_object(
    'students_platform_student',
      (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY s.institution_id, s.id), '[]')
         FROM students_platform_student s WHERE s.subject_id = p_subject_id),
    'students_platform_contact',
      (SELECT coalesce(jsonb_agg(to_jsonb(c) ORDER BY c.institution_id, c.id), '[]')
         FROM students_platform_contact c WHERE c.subject_id = p_subject_id))
$fn$;

RESET ROLE;
