"""credit bureau: the reports kept per borrower, the borrowers' consents

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bureau_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('taken_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('report', sa.Text(), nullable=False),
        sa.Column('requested_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_bureau_reports_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['requested_by'], ['users.id'], name=op.f('fk_bureau_reports_requested_by_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bureau_reports')),
    )
    with op.batch_alter_table('bureau_reports', schema=None) as batch_op:
        batch_op.create_index(
            'ix_bureau_reports_borrower_id_taken_at', ['borrower_id', 'taken_at'], unique=False
        )

    op.create_table(
        'consents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('given_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recorded_by', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_consents_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(['recorded_by'], ['users.id'], name=op.f('fk_consents_recorded_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_consents')),
    )
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.create_index(
            'ix_consents_borrower_id_kind_given_at', ['borrower_id', 'kind', 'given_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('consents', schema=None) as batch_op:
        batch_op.drop_index('ix_consents_borrower_id_kind_given_at')
    op.drop_table('consents')

    with op.batch_alter_table('bureau_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_bureau_reports_borrower_id_taken_at')
    op.drop_table('bureau_reports')
