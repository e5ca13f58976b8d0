"""create responses and tags

Revision 0002 of service feedback; comes after '0001'.
"""

from alembic import op

from edumatrix_db.database.tenancy import enable_tenant_isolation_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SERVICE = "feedback"
SCHEMA = "feedback_schema"


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE {SCHEMA}.feedback_response (
            institution_id uuid NOT NULL,
            id bigint GENERATED ALWAYS AS IDENTITY,
            entry_id bigint NOT NULL,
            responder_id uuid NOT NULL,
            body text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT feedback_response_pkey PRIMARY KEY (institution_id, id),
            CONSTRAINT feedback_response_entry_fkey FOREIGN KEY (institution_id, entry_id)
                REFERENCES {SCHEMA}.feedback_entry (institution_id, id) ON DELETE CASCADE
        )""")
    op.execute(f"CREATE INDEX feedback_response_entry_idx ON {SCHEMA}.feedback_response (institution_id, entry_id)")
    op.execute(f"""
        CREATE TABLE {SCHEMA}.feedback_entry_tag (
            institution_id uuid NOT NULL,
            entry_id bigint NOT NULL,
            tag text NOT NULL,
            CONSTRAINT feedback_entry_tag_pkey PRIMARY KEY (institution_id, entry_id, tag),
            CONSTRAINT feedback_entry_tag_entry_fkey FOREIGN KEY (institution_id, entry_id)
                REFERENCES {SCHEMA}.feedback_entry (institution_id, id) ON DELETE CASCADE
        )""")
    for table in ("feedback_response", "feedback_entry_tag"):
        for statement in enable_tenant_isolation_sql(SERVICE, table):
            op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP TABLE {SCHEMA}.feedback_entry_tag")
    op.execute(f"DROP TABLE {SCHEMA}.feedback_response")
