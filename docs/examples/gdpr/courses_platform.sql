-- The GDPR contract of courses_platform (docs/gdpr.md): one personal table (enrolments) next to one that holds
-- no personal data (courses). Run as the service's migrator; tests/pg/test_gdpr.py runs this file.
CREATE TABLE IF NOT EXISTS courses_platform_course (
  institution_id uuid NOT NULL,
  id bigint GENERATED ALWAYS AS IDENTITY,
  code text NOT NULL,
  PRIMARY KEY (institution_id, id),
  UNIQUE (institution_id, code));
CREATE TABLE IF NOT EXISTS courses_platform_enrolment (
  institution_id uuid NOT NULL,
  id bigint GENERATED ALWAYS AS IDENTITY,
  course_id bigint NOT NULL,
  subject_id uuid NOT NULL,
  grade text,
  PRIMARY KEY (institution_id, id),
  FOREIGN KEY (institution_id, course_id) REFERENCES courses_platform_course (institution_id, id));
CREATE INDEX IF NOT EXISTS courses_platform_enrolment_subject ON courses_platform_enrolment (subject_id);

-- Tenant isolation of each table, in the same migration (docs/tenancy.md): the statements printed by
--   edumatrix-db tenancy sql courses_platform courses_platform_course
--   edumatrix-db tenancy sql courses_platform courses_platform_enrolment
-- (a Python migration calls edumatrix_db.database.tenancy.enable_tenant_isolation instead; the tests do).

GRANT SELECT ON courses_platform_enrolment TO rds_pgaudit;  -- object audit of the personal table

SET ROLE courses_platform_gdpr_definer;

CREATE OR REPLACE FUNCTION courses_platform_fn_erase_subject(p_subject_id uuid) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = courses_platform_schema, pg_temp AS $fn$
DECLARE
  enrolments bigint;
BEGIN
  DELETE FROM courses_platform_enrolment WHERE subject_id = p_subject_id;
  GET DIAGNOSTICS enrolments = ROW_COUNT;
  RETURN jsonb_build_object('courses_platform_enrolment', enrolments);
END
$fn$;

CREATE OR REPLACE FUNCTION courses_platform_fn_export_subject(p_subject_id uuid) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = courses_platform_schema, pg_temp AS $fn$
  SELECT jsonb_build_object(
    'courses_platform_enrolment',
      (SELECT coalesce(jsonb_agg(jsonb_build_object('institution_id', e.institution_id, 'course', c.code,
                                                    'grade', e.grade) ORDER BY e.institution_id, e.id), '[]')
         FROM courses_platform_enrolment e
         JOIN courses_platform_course c ON c.institution_id = e.institution_id AND c.id = e.course_id
        WHERE e.subject_id = p_subject_id))
$fn$;

RESET ROLE;
