"""gdpr contract: erase and export a person's feedback (docs/gdpr.md)

Revision 0005 of service feedback; comes after '0004'.

feedback holds personal data (config/services.yaml personal_tables: feedback_entry, feedback_response): the
person is `author_id` of entries and `responder_id` of responses. The two contract functions are created as
feedback_gdpr_definer (SECURITY DEFINER, BYPASSRLS: they reach every institution the person belongs to), so
only feedback_gdpr may execute them. Erasing deletes the person's entries (their responses and tags go with
them, ON DELETE CASCADE) and the person's responses to other entries. Reads of both tables are audited
(rds_pgaudit, pgaudit's object audit).
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "feedback_schema"
OWNER, DEFINER = "feedback_owner", "feedback_gdpr_definer"
PERSONAL_TABLES = f"{SCHEMA}.feedback_entry, {SCHEMA}.feedback_response"


def upgrade() -> None:
    op.execute(f"GRANT SELECT ON {PERSONAL_TABLES} TO rds_pgaudit")
    op.execute(f"SET LOCAL ROLE {DEFINER}")
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.feedback_fn_erase_subject(p_subject_id uuid) RETURNS jsonb
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = {SCHEMA}, pg_temp AS $fn$
        DECLARE
            responses bigint;
            entries bigint;
        BEGIN
            DELETE FROM feedback_response WHERE responder_id = p_subject_id;
            GET DIAGNOSTICS responses = ROW_COUNT;
            DELETE FROM feedback_entry WHERE author_id = p_subject_id;
            GET DIAGNOSTICS entries = ROW_COUNT;
            RETURN jsonb_build_object('feedback_entry', entries, 'feedback_response', responses);
        END $fn$""")
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.feedback_fn_export_subject(p_subject_id uuid) RETURNS jsonb
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = {SCHEMA}, pg_temp AS $fn$
            SELECT jsonb_build_object(
                'feedback_entry', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY e.institution_id, e.id), '[]')
                                     FROM feedback_entry e WHERE e.author_id = p_subject_id),
                'feedback_response', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.institution_id, r.id), '[]')
                                        FROM feedback_response r WHERE r.responder_id = p_subject_id))
        $fn$""")
    op.execute(f"SET LOCAL ROLE {OWNER}")  # Alembic records the revision as the owner


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.feedback_fn_export_subject(uuid)")
    op.execute(f"DROP FUNCTION {SCHEMA}.feedback_fn_erase_subject(uuid)")
    op.execute(f"REVOKE SELECT ON {PERSONAL_TABLES} FROM rds_pgaudit")
