"""management indexes: the audit API's filters and the admin user list page by (created_at, id)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:05:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_organization_id')
        batch_op.drop_index('ix_audit_events_actor_user_id')
        batch_op.create_index('ix_audit_events_organization_created', ['organization_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_actor_created', ['actor_user_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_target_created', ['target_type', 'target_id', 'created_at'], unique=False)
        batch_op.create_index('ix_audit_events_request_id', ['request_id'], unique=False)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_created_at_id', ['created_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_created_at_id')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_request_id')
        batch_op.drop_index('ix_audit_events_target_created')
        batch_op.drop_index('ix_audit_events_actor_created')
        batch_op.drop_index('ix_audit_events_organization_created')
        batch_op.create_index('ix_audit_events_actor_user_id', ['actor_user_id'], unique=False)
        batch_op.create_index('ix_audit_events_organization_id', ['organization_id'], unique=False)
