"""client back- and front-channel logout metadata; queued back-channel logout deliveries; minimal ID token policy

OpenID Connect Back-Channel Logout 1.0 sections 2.2 and 2.5, Front-Channel Logout 1.0 section 2.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import idp.models.base


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_logout_uri', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('frontchannel_logout_uri', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('frontchannel_logout_session_required', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('minimal_id_token', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('logout_deliveries',
    sa.Column('oauth_client_id', sa.String(length=36), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('session_id', sa.String(length=36), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', idp.models.base.UTCDateTime(), nullable=False),
    sa.Column('created_at', idp.models.base.UTCDateTime(), nullable=False),
    sa.Column('delivered_at', idp.models.base.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['oauth_client_id'], ['oauth_clients.id'],
                            name=op.f('fk_logout_deliveries_oauth_client_id_oauth_clients'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_logout_deliveries'))
    )
    with op.batch_alter_table('logout_deliveries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_logout_deliveries_oauth_client_id'), ['oauth_client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_logout_deliveries_status'), ['status'], unique=False)


def downgrade():
    with op.batch_alter_table('logout_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_logout_deliveries_status'))
        batch_op.drop_index(batch_op.f('ix_logout_deliveries_oauth_client_id'))
    op.drop_table('logout_deliveries')
    with op.batch_alter_table('oauth_clients', schema=None) as batch_op:
        batch_op.drop_column('minimal_id_token')
        batch_op.drop_column('frontchannel_logout_session_required')
        batch_op.drop_column('frontchannel_logout_uri')
        batch_op.drop_column('backchannel_logout_session_required')
        batch_op.drop_column('backchannel_logout_uri')
