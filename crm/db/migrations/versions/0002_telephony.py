"""calls, events, result codes, api tokens, legal flags

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

# the defaults of the configurable result list, as they stood when this migration was written
DEFAULT_RESULTS = [
    ('promise', 'Обещание оплаты', True),
    ('refusal', 'Отказ от оплаты', True),
    ('wrong_number', 'Неверный номер', False),
    ('no_answer', 'Не дозвонились', False),
    ('callback', 'Перезвонить', True),
    ('third_party', 'Третье лицо', False),
    ('consultation', 'Консультация', True),
    ('paid', 'Оплачено', True),
]


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'inbound_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('type', sa.String(length=64), nullable=False),
        sa.Column('call_id', sa.String(length=128), nullable=True),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_inbound_events')),
        sa.UniqueConstraint('key', name=op.f('uq_inbound_events_key')),
    )
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inbound_events_call_id'), ['call_id'], unique=False)

    op.create_table(
        'result_codes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('reached', sa.Boolean(), nullable=False),
        sa.Column('needs_promise', sa.Boolean(), nullable=False),
        sa.Column('needs_callback', sa.Boolean(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_result_codes')),
        sa.UniqueConstraint('code', name=op.f('uq_result_codes_code')),
    )
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('prefix', sa.String(length=12), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('scope', sa.String(length=16), nullable=False),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_api_tokens_created_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash')),
    )
    op.create_table(
        'calls',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('call_id', sa.String(length=128), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('extension', sa.String(length=16), nullable=True),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('borrower_id', sa.Integer(), nullable=True),
        sa.Column('communication_id', sa.Integer(), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('recording_url', sa.String(length=500), nullable=True),
        sa.Column('transferred_to', sa.String(length=16), nullable=True),
        sa.Column('other_borrower_ids', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_calls_borrower_id_borrowers'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['communication_id'],
            ['communications.id'],
            name=op.f('fk_calls_communication_id_communications'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_calls_operator_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
        sa.UniqueConstraint('call_id', name=op.f('uq_calls_call_id')),
    )
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calls_extension'), ['extension'], unique=False)
        batch_op.create_index('ix_calls_operator_state', ['operator_id', 'state'], unique=False)

    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('contact_refused', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column('representative_only', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('bankrupt', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(
            sa.Column('incapacitated', sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('call_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('callback_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_communications_call_id'), ['call_id'], unique=False)

    result_codes = sa.table(
        'result_codes',
        sa.column('code', sa.String),
        sa.column('name', sa.String),
        sa.column('reached', sa.Boolean),
        sa.column('needs_promise', sa.Boolean),
        sa.column('needs_callback', sa.Boolean),
        sa.column('active', sa.Boolean),
        sa.column('position', sa.Integer),
    )
    op.bulk_insert(
        result_codes,
        [
            {
                'code': code,
                'name': name,
                'reached': reached,
                'needs_promise': code == 'promise',
                'needs_callback': code == 'callback',
                'active': True,
                'position': position,
            }
            for position, (code, name, reached) in enumerate(DEFAULT_RESULTS)
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_communications_call_id'))
        batch_op.drop_column('callback_at')
        batch_op.drop_column('call_id')

    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.drop_column('incapacitated')
        batch_op.drop_column('bankrupt')
        batch_op.drop_column('representative_only')
        batch_op.drop_column('contact_refused')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_operator_state')
        batch_op.drop_index(batch_op.f('ix_calls_extension'))

    op.drop_table('calls')
    op.drop_table('api_tokens')
    op.drop_table('result_codes')
    with op.batch_alter_table('inbound_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbound_events_call_id'))

    op.drop_table('inbound_events')
