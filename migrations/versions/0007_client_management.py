"""client management: secret rotation with a grace period, per-client token lifetimes, a row version for ETags

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 12:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import idp.models.base


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_hash', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_expires_at', idp.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('access_token_lifetime', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('refresh_token_lifetime', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), nullable=False, server_default='1'))


def downgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('refresh_token_lifetime')
        batch_op.drop_column('access_token_lifetime')
        batch_op.drop_column('previous_secret_expires_at')
        batch_op.drop_column('previous_secret_hash')
