"""one sessions expiry index: (status, expires_at) serves both cleanup batches; the index on
expires_at alone, which 0010 also made, goes

Measured with EXPLAIN ANALYZE on PostgreSQL 15 over 300k sessions (40 % live, the ended ones kept for
the retention): with expires_at alone, marking the stale ACTIVE sessions was a sequential scan (the
index walk would pass every ended row first), 103 ms per batch; with (status, expires_at) alone it is
an index range scan, and the purge's batch, taken per status and merged, three range scans (Merge
Append), 0.3 ms, against a sequential scan and sort (155 ms) for the single ORDER BY expires_at.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 17:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_expires_at'))


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_expires_at'), ['expires_at'], unique=False)
