"""messaging: templates, the outbox and its attempts, mailings, the cluster's send rates, chats

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        'send_rates',
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('tokens', sa.Numeric(precision=12, scale=3, asdecimal=False), nullable=False),
        sa.Column('refilled_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('channel', name=op.f('pk_send_rates')),
    )
    op.create_table(
        'message_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['updated_by'], ['users.id'], name=op.f('fk_message_templates_updated_by_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    )
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.create_index('ix_message_templates_channel_kind', ['channel', 'kind'], unique=False)

    op.create_table(
        'chats',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('chat_id', sa.String(length=128), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=True),
        sa.Column('sender', sa.String(length=64), nullable=False),
        sa.Column('unread', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_chats_borrower_id_borrowers'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_chats')),
        sa.UniqueConstraint('chat_id', name=op.f('uq_chats_chat_id')),
    )
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chats_borrower_id'), ['borrower_id'], unique=False)

    op.create_table(
        'mailings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('template_id', sa.Integer(), nullable=False),
        sa.Column('segment', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('cursor', sa.Integer(), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_mailings_created_by_users')),
        sa.ForeignKeyConstraint(
            ['template_id'], ['message_templates.id'], name=op.f('fk_mailings_template_id_message_templates')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mailings')),
    )
    op.create_table(
        'outbox_messages',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=8), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=True),
        sa.Column('communication_id', sa.Integer(), nullable=True),
        sa.Column('mailing_id', sa.Integer(), nullable=True),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('to_address', sa.String(length=254), nullable=False),
        sa.Column('subject', sa.String(length=300), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('secret', sa.Boolean(), nullable=False),
        sa.Column('not_before', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('gateway_id', sa.String(length=128), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('rule', sa.String(length=32), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_outbox_messages_borrower_id_borrowers'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['communication_id'],
            ['communications.id'],
            name=op.f('fk_outbox_messages_communication_id_communications'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['mailing_id'], ['mailings.id'], name=op.f('fk_outbox_messages_mailing_id_mailings')
        ),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['users.id'], name=op.f('fk_outbox_messages_operator_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_messages')),
        sa.UniqueConstraint('key', name=op.f('uq_outbox_messages_key')),
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_created', ['created_at'], unique=False)
        batch_op.create_index('ix_outbox_messages_due', ['status', 'not_before', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_gateway_id'), ['gateway_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_messages_mailing_id'), ['mailing_id'], unique=False)

    op.create_table(
        'outbox_attempts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['message_id'],
            ['outbox_messages.id'],
            name=op.f('fk_outbox_attempts_message_id_outbox_messages'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_attempts')),
    )
    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_attempts_message_id'), ['message_id'], unique=False)

    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chat_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('subject', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('collection', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.create_index(batch_op.f('ix_communications_chat_id'), ['chat_id'], unique=False)


def downgrade() -> None:

    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communications_chat_id'))
        batch_op.drop_column('collection')
        batch_op.drop_column('subject')
        batch_op.drop_column('chat_id')

    with op.batch_alter_table('outbox_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_attempts_message_id'))

    op.drop_table('outbox_attempts')
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_messages_mailing_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_messages_gateway_id'))
        batch_op.drop_index('ix_outbox_messages_due')
        batch_op.drop_index('ix_outbox_messages_created')

    op.drop_table('outbox_messages')
    op.drop_table('mailings')
    with op.batch_alter_table('chats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chats_borrower_id'))

    op.drop_table('chats')
    with op.batch_alter_table('message_templates', schema=None) as batch_op:
        batch_op.drop_index('ix_message_templates_channel_kind')

    op.drop_table('message_templates')
    op.drop_table('send_rates')
