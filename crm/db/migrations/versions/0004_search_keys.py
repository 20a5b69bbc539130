"""search keys: e-mail in any case; on PostgreSQL the last digits of a phone

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_borrowers_email_lower', 'borrowers', [sa.text('lower(email)')])
    if op.get_bind().dialect.name == 'postgresql':
        # '0009977' finds +7 928 000-99-77: the prefix of the reversed number, in a b-tree
        op.execute(
            'CREATE INDEX ix_borrower_phones_phone_reversed '
            'ON borrower_phones (reverse(phone) text_pattern_ops)'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_borrower_phones_phone_reversed')
    op.drop_index('ix_borrowers_email_lower', table_name='borrowers')
