"""client policy_uri and tos_uri (RFC 7591 2, OIDC Dynamic Client Registration 2)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 16:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy_uri', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('tos_uri', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('tos_uri')
        batch_op.drop_column('policy_uri')
