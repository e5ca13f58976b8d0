"""maintenance: autovacuum for the hot entry table, scheduled ANALYZE and REINDEX

Revision 0004 of service feedback; comes after '0003'.

feedback_entry takes a nightly bulk import and many updates: vacuum it at 1 % dead rows and analyze it at
0.5 % changed rows instead of the instance-wide 5 % / 2 % (config/maintenance.py), ANALYZE it at 02:30
UTC right after the 02:00 import, and rebuild its most-churned index every Sunday at 03:00 UTC.
"""

from alembic import op

from edumatrix_db.ops import maintenance

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SERVICE = "feedback"
HOT_TABLE_OPTIONS = {"autovacuum_vacuum_scale_factor": 0.01, "autovacuum_analyze_scale_factor": 0.005}
JOBS = (
    maintenance.analyze(SERVICE, "analyze_entries", "30 2 * * *", "feedback_entry"),
    maintenance.reindex(SERVICE, "reindex_entry_created", "0 3 * * 0", "feedback_entry_created_idx"),
)


def upgrade() -> None:
    for statement in maintenance.table_storage_sql(SERVICE, "feedback_entry", **HOT_TABLE_OPTIONS):
        op.execute(statement)
    for job in JOBS:
        maintenance.schedule(op.get_bind(), job)


def downgrade() -> None:
    for job in JOBS:
        maintenance.unschedule(op.get_bind(), SERVICE, job.action)
    for statement in maintenance.reset_table_storage_sql(SERVICE, "feedback_entry", *HOT_TABLE_OPTIONS):
        op.execute(statement)
