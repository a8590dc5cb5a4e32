"""invitations: mailed, single-use, expiring invitations to join an organization

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 12:10:00.000000

"""
from alembic import op
import sqlalchemy as sa

import idp.models.base


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('invitations',
    sa.Column('organization_id', sa.String(length=36), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('invited_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', idp.models.base.UTCDateTime(), nullable=False),
    sa.Column('expires_at', idp.models.base.UTCDateTime(), nullable=False),
    sa.Column('accepted_at', idp.models.base.UTCDateTime(), nullable=True),
    sa.Column('accepted_by', sa.String(length=36), nullable=True),
    sa.Column('revoked_at', idp.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_sent_at', idp.models.base.UTCDateTime(), nullable=False),
    sa.Column('send_count', sa.Integer(), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['accepted_by'], ['users.id'], name=op.f('fk_invitations_accepted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['invited_by'], ['users.id'], name=op.f('fk_invitations_invited_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_invitations_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_organization_created', ['organization_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_invitations_organization_email', ['organization_id', 'email'], unique=False)


def downgrade():
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_invitations_organization_email')
        batch_op.drop_index('ix_invitations_organization_created')

    op.drop_table('invitations')
