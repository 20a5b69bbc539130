"""operator states: the current state of every operator and the history of its changes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

``operator_states`` holds one row per operator (locked to change it; the worker's time-outs read it by
state and since). ``operator_state_changes`` is the history the dashboard reads by day: all operators'
changes of a day by ``at`` (operators by state over the day), one operator's by ``(user_id, at)``.
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operator_states',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=True),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('call_id', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name='fk_operator_states_user_id_users', ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('user_id', name='pk_operator_states'),
    )
    op.create_index('ix_operator_states_state_since', 'operator_states', ['state', 'since'], unique=False)
    op.create_table(
        'operator_state_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('from_state', sa.String(length=16), nullable=True),
        sa.Column('to_state', sa.String(length=16), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=True),
        sa.Column('call_id', sa.String(length=64), nullable=True),
        sa.Column('by_user_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['user_id'], ['users.id'], name='fk_operator_state_changes_user_id_users', ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(
            ['by_user_id'], ['users.id'], name='fk_operator_state_changes_by_user_id_users'
        ),
        sa.PrimaryKeyConstraint('id', name='pk_operator_state_changes'),
    )
    op.create_index('ix_operator_state_changes_at', 'operator_state_changes', ['at'], unique=False)
    op.create_index(
        'ix_operator_state_changes_user_id_at', 'operator_state_changes', ['user_id', 'at'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_operator_state_changes_user_id_at', table_name='operator_state_changes')
    op.drop_index('ix_operator_state_changes_at', table_name='operator_state_changes')
    op.drop_table('operator_state_changes')
    op.drop_index('ix_operator_states_state_since', table_name='operator_states')
    op.drop_table('operator_states')
