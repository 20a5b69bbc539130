"""«Журнал действий»: where an act came from, and indexes for the viewer's filters

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

The viewer lists entries newest first (``at``, then ``id``) narrowed by a period, a user, a borrower or
an action: each is an index that starts with the filter's column and then gives that order, so a page
is an index walk that stops after it, on ten million rows as on ten (bench/audit.py); a user's entries of
one action have their own index (without it, counting a user's rare action read the user's every entry).
``address`` is the client address of the request an entry was written for (``crm.domain.origin``).
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address', sa.String(length=64), nullable=True))
        batch_op.drop_index('ix_audit_entries_at')
        batch_op.drop_index('ix_audit_entries_borrower_at')
        batch_op.create_index('ix_audit_entries_at_id', ['at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_user_at', ['user_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_borrower_at', ['borrower_id', 'at', 'id'], unique=False)
        batch_op.create_index('ix_audit_entries_action_at', ['action', 'at', 'id'], unique=False)
        batch_op.create_index(
            'ix_audit_entries_user_action_at', ['user_id', 'action', 'at', 'id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_user_action_at')
        batch_op.drop_index('ix_audit_entries_action_at')
        batch_op.drop_index('ix_audit_entries_borrower_at')
        batch_op.drop_index('ix_audit_entries_user_at')
        batch_op.drop_index('ix_audit_entries_at_id')
        batch_op.create_index('ix_audit_entries_borrower_at', ['borrower_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_entries_at', ['at'], unique=False)
        batch_op.drop_column('address')
