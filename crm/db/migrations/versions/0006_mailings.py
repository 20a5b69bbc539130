"""mailings: the template's text kept with the mailing, borrowers without an address, one message per
borrower and mailing

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('mailings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('body', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('no_address', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_mailings_status_start_at', ['status', 'start_at'], unique=False)

    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_mailing_id')
        # a mailing queues a borrower once, whichever process queued the batch
        batch_op.create_index(
            'uq_outbox_messages_mailing_borrower', ['mailing_id', 'borrower_id'], unique=True
        )


def downgrade() -> None:
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('uq_outbox_messages_mailing_borrower')
        batch_op.create_index('ix_outbox_messages_mailing_id', ['mailing_id'], unique=False)

    with op.batch_alter_table('mailings', schema=None) as batch_op:
        batch_op.drop_index('ix_mailings_status_start_at')
        batch_op.drop_column('started_at')
        batch_op.drop_column('no_address')
        batch_op.drop_column('body')
        batch_op.drop_column('subject')
