"""touch trigger and rating function

Revision 0003 of service feedback; comes after '0002'.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "feedback_schema"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.feedback_fn_touch_updated_at() RETURNS trigger
        LANGUAGE plpgsql SET search_path = pg_catalog AS $$
        BEGIN
            NEW.updated_at := now();
            RETURN NEW;
        END $$""")
    op.execute(f"""
        CREATE TRIGGER feedback_trg_entry_updated BEFORE UPDATE ON {SCHEMA}.feedback_entry
        FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.feedback_fn_touch_updated_at()""")
    # SECURITY INVOKER (the default): the caller's tenant policy applies inside the function too.
    op.execute(f"""
        CREATE FUNCTION {SCHEMA}.feedback_fn_average_rating(p_author uuid) RETURNS numeric
        LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
            SELECT round(avg(rating), 2) FROM {SCHEMA}.feedback_entry WHERE author_id = p_author
        $$""")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION {SCHEMA}.feedback_fn_average_rating(uuid)")
    op.execute(f"DROP TRIGGER feedback_trg_entry_updated ON {SCHEMA}.feedback_entry")
    op.execute(f"DROP FUNCTION {SCHEMA}.feedback_fn_touch_updated_at()")
