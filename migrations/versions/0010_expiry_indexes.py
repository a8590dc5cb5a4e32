"""expiry indexes: the purge jobs delete codes, tokens and sessions in batches by expires_at

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


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f'ix_{table}_expires_at'))
