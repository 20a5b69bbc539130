"""promises to pay and the payments that keep them

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.String(length=128), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_payments_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['loan_id'], ['loans.id'], name=op.f('fk_payments_loan_id_loans'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payments')),
        sa.UniqueConstraint('payment_id', name=op.f('uq_payments_payment_id')),
    )
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payments_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payments_loan_id'), ['loan_id'], unique=False)

    op.create_table(
        'promises',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('loan_id', sa.Integer(), nullable=True),
        sa.Column('communication_id', sa.Integer(), nullable=True),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('paid_amount', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_promises_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['communication_id'],
            ['communications.id'],
            name=op.f('fk_promises_communication_id_communications'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['loan_id'], ['loans.id'], name=op.f('fk_promises_loan_id_loans'), ondelete='SET NULL'
        ),
        sa.ForeignKeyConstraint(['operator_id'], ['users.id'], name=op.f('fk_promises_operator_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_promises')),
    )
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_promises_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index('ix_promises_operator_id_due_on', ['operator_id', 'due_on'], unique=False)
        batch_op.create_index('ix_promises_status_due_on', ['status', 'due_on'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('promises', schema=None) as batch_op:
        batch_op.drop_index('ix_promises_status_due_on')
        batch_op.drop_index('ix_promises_operator_id_due_on')
        batch_op.drop_index(batch_op.f('ix_promises_borrower_id'))
    op.drop_table('promises')

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payments_loan_id'))
        batch_op.drop_index(batch_op.f('ix_payments_borrower_id'))
    op.drop_table('payments')
