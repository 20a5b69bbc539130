"""dashboard thresholds an administrator can change

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02

``dashboard_thresholds``: one row per operator state whose colour thresholds (seconds in the state) an
administrator changed on «Мониторинг»; a state with no row uses the setting CRM_DASHBOARD_THRESHOLDS.
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dashboard_thresholds',
        sa.Column('state', sa.String(length=32), nullable=False),
        sa.Column('warn_after', sa.Integer(), nullable=False),
        sa.Column('alert_after', sa.Integer(), nullable=False),
        sa.Column('critical_after', sa.Integer(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['updated_by'], ['users.id'], name=op.f('fk_dashboard_thresholds_updated_by_users')
        ),
        sa.PrimaryKeyConstraint('state', name=op.f('pk_dashboard_thresholds')),
    )


def downgrade() -> None:
    op.drop_table('dashboard_thresholds')
