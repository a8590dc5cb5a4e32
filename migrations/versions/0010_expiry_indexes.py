"""expiry indexes: the purge jobs delete codes, tokens and sessions in batches, oldest expires_at first

(status, expires_at) on sessions replaces the index on status alone: it also serves every lookup by
status, and lets the cleanup job find ACTIVE sessions past their expiry without reading the others.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLES = ('authorization_codes', 'access_tokens', 'refresh_tokens', 'sessions')


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f'ix_{table}_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_status')
        batch_op.create_index('ix_sessions_status_expires_at', ['status', 'expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_status_expires_at')
        batch_op.create_index('ix_sessions_status', ['status'], unique=False)
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_expires_at'))
