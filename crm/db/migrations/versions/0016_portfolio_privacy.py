"""portfolio moves, hidden communications, erasure acts

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02

``portfolio_moves``: one row per borrower an assignment moved (from, to, when, by whom, the operation's
id, which the one audit entry of the operation names). ``communications.hidden_*``: an administrator hid
a contact or a note from operators (kept, shown to administrators marked). ``erasure_acts``: the act of
erasing a borrower's personal data on request (who, when, why, the request's reference, what was erased).
"""

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'portfolio_moves',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('operation_id', sa.String(length=32), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('from_operator_id', sa.Integer(), nullable=True),
        sa.Column('to_operator_id', sa.Integer(), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('by_user_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_portfolio_moves_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['by_user_id'], ['users.id'], name=op.f('fk_portfolio_moves_by_user_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_portfolio_moves')),
    )
    op.create_index('ix_portfolio_moves_borrower_id_at', 'portfolio_moves', ['borrower_id', 'at'])
    op.create_index(
        op.f('ix_portfolio_moves_operation_id'), 'portfolio_moves', ['operation_id'], unique=False
    )
    op.add_column('communications', sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('communications', sa.Column('hidden_reason', sa.String(length=500), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':  # no batch copy: calls and outbox rows point at communications
        op.execute('ALTER TABLE communications ADD COLUMN hidden_by INTEGER REFERENCES users (id)')
    else:
        op.add_column('communications', sa.Column('hidden_by', sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f('fk_communications_hidden_by_users'), 'communications', 'users', ['hidden_by'], ['id']
        )
    op.create_table(
        'erasure_acts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('by_user_id', sa.Integer(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('reference', sa.String(length=200), nullable=False),
        sa.Column('legal_basis', sa.Text(), nullable=True),
        sa.Column('erased', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_erasure_acts_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(['by_user_id'], ['users.id'], name=op.f('fk_erasure_acts_by_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_acts')),
    )
    op.create_index(op.f('ix_erasure_acts_borrower_id'), 'erasure_acts', ['borrower_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_erasure_acts_borrower_id'), table_name='erasure_acts')
    op.drop_table('erasure_acts')
    with op.batch_alter_table('communications', schema=None) as batch_op:
        if op.get_bind().dialect.name != 'sqlite':
            batch_op.drop_constraint(op.f('fk_communications_hidden_by_users'), type_='foreignkey')
        batch_op.drop_column('hidden_reason')
        batch_op.drop_column('hidden_by')
        batch_op.drop_column('hidden_at')
    op.drop_index(op.f('ix_portfolio_moves_operation_id'), table_name='portfolio_moves')
    op.drop_index('ix_portfolio_moves_borrower_id_at', table_name='portfolio_moves')
    op.drop_table('portfolio_moves')
