"""«Видимость полей»: what each role sees of a borrower's personal fields (hidden / masked / visible)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02

``field_visibility`` holds one mode per role and field; a field without a row is visible. The single row
of ``field_visibility_version`` is bumped by every save: each process re-reads the matrix when it sees a
new number (checked at most every few seconds), so a change takes effect without a restart. Defaults:
operators see passport, INN and SNILS masked and the rest in clear; supervisors and admins see all.
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_MASKED_FOR_OPERATORS = ('passport', 'inn', 'snils')


def upgrade() -> None:
    table = op.create_table(
        'field_visibility',
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('field', sa.String(length=32), nullable=False),
        sa.Column('mode', sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint('role', 'field', name=op.f('pk_field_visibility')),
    )
    version = op.create_table(
        'field_visibility_version',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['updated_by'],
            ['users.id'],
            name=op.f('fk_field_visibility_version_updated_by_users'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_field_visibility_version')),
    )
    op.bulk_insert(
        table, [{'role': 'operator', 'field': field, 'mode': 'masked'} for field in _MASKED_FOR_OPERATORS]
    )
    op.bulk_insert(version, [{'id': 1, 'version': 1}])


def downgrade() -> None:
    op.drop_table('field_visibility_version')
    op.drop_table('field_visibility')
