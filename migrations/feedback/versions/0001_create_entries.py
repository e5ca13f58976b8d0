"""create entries

Revision 0001 of service feedback; comes after None.

Runs as feedback_migrator acting as feedback_owner, in its own transaction, with a lock_timeout
(`edumatrix-db migrate feedback up`).
"""

from alembic import op

from edumatrix_db.database.tenancy import enable_tenant_isolation_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SERVICE = "feedback"
SCHEMA = "feedback_schema"


def upgrade() -> None:
    # The tenant is part of every key (docs/tenancy.md): keys and foreign keys never cross institutions.
    op.execute(f"""
        CREATE TABLE {SCHEMA}.feedback_entry (
            institution_id uuid NOT NULL,
            id bigint GENERATED ALWAYS AS IDENTITY,
            author_id uuid NOT NULL,
            subject text NOT NULL,
            rating smallint NOT NULL CONSTRAINT feedback_entry_rating_check CHECK (rating BETWEEN 1 AND 5),
            body text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT feedback_entry_pkey PRIMARY KEY (institution_id, id)
        )""")
    op.execute(f"COMMENT ON TABLE {SCHEMA}.feedback_entry IS 'One piece of feedback a user left'")
    op.execute(f"CREATE INDEX feedback_entry_created_idx ON {SCHEMA}.feedback_entry (institution_id, created_at)")
    op.execute(f"CREATE INDEX feedback_entry_author_idx ON {SCHEMA}.feedback_entry (institution_id, author_id)")
    for statement in enable_tenant_isolation_sql(SERVICE, "feedback_entry"):
        op.execute(statement)


def downgrade() -> None:
    op.execute(f"DROP TABLE {SCHEMA}.feedback_entry")
