"""${message}

Revision ${up_revision} of service ${service}; comes after ${down_revision | n,repr}. Created ${create_date}.

Runs as ${service}_migrator acting as ${service}_owner, in its own transaction, with a lock_timeout
(`edumatrix-db migrate ${service} up`). Name objects by the spec: tables ${service}_<entity>,
functions ${service}_fn_<action>, triggers ${service}_trg_<event>; put every table under tenant isolation
(edumatrix_db.database.tenancy.enable_tenant_isolation_sql). `downgrade()` must undo exactly what
`upgrade()` does: `edumatrix-db migrate ${service} check` refuses an empty one.
"""

from alembic import op

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = None
depends_on = None

SERVICE = ${repr(service)}
SCHEMA = ${repr(service + "_schema")}


def upgrade() -> None:
    op.execute("SELECT 1")  # replace with this revision's changes


def downgrade() -> None:
    pass  # replace with the exact undo of upgrade(); `migrate check` refuses an empty downgrade
