"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Money columns are BIGINT kopecks; on PostgreSQL names get a pg_trgm GIN index for fragment search.
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'products',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('price', sa.BigInteger(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
        sa.UniqueConstraint('code', name=op.f('uq_products_code')),
    )
    op.create_table(
        'users',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('login', sa.String(length=64), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('full_name', sa.String(length=200), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('extension', sa.String(length=16), nullable=True),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('email', name=op.f('uq_users_email')),
        sa.UniqueConstraint('extension', name=op.f('uq_users_extension')),
        sa.UniqueConstraint('login', name=op.f('uq_users_login')),
    )
    op.create_table(
        'borrowers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pin', sa.String(length=20), nullable=False),
        sa.Column('last_name', sa.String(length=100), nullable=False),
        sa.Column('first_name', sa.String(length=100), nullable=False),
        sa.Column('middle_name', sa.String(length=100), nullable=True),
        sa.Column('search_name', sa.String(length=310), nullable=False),
        sa.Column('birth_date', sa.Date(), nullable=False),
        sa.Column('inn', sa.String(length=12), nullable=True),
        sa.Column('snils', sa.String(length=11), nullable=True),
        sa.Column('passport', sa.String(length=10), nullable=True),
        sa.Column('passport_issued', sa.String(length=300), nullable=True),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('city', sa.String(length=100), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('employer', sa.String(length=200), nullable=True),
        sa.Column('monthly_payment', sa.BigInteger(), nullable=False),
        sa.Column('assigned_operator_id', sa.Integer(), nullable=True),
        sa.Column('archived', sa.Boolean(), nullable=False),
        sa.Column('total_debt', sa.BigInteger(), nullable=False),
        sa.Column('overdue_amount', sa.BigInteger(), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('last_contact_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['assigned_operator_id'], ['users.id'], name=op.f('fk_borrowers_assigned_operator_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_borrowers')),
        sa.UniqueConstraint('pin', name=op.f('uq_borrowers_pin')),
    )
    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_borrowers_inn'), ['inn'], unique=False)
        batch_op.create_index(
            'ix_borrowers_operator_days_past_due', ['assigned_operator_id', 'days_past_due'], unique=False
        )
        batch_op.create_index(
            'ix_borrowers_operator_last_name', ['assigned_operator_id', 'last_name'], unique=False
        )
        batch_op.create_index(batch_op.f('ix_borrowers_passport'), ['passport'], unique=False)
        batch_op.create_index(batch_op.f('ix_borrowers_snils'), ['snils'], unique=False)

    op.create_table(
        'audit_entries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=True),
        sa.Column('details', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_audit_entries_borrower_id_borrowers'),
            ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_entries_user_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries')),
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_at'), ['at'], unique=False)
        batch_op.create_index('ix_audit_entries_borrower_at', ['borrower_id', 'at'], unique=False)

    op.create_table(
        'borrower_phones',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('phone', sa.String(length=15), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('is_primary', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_borrower_phones_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_borrower_phones')),
    )
    with op.batch_alter_table('borrower_phones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_borrower_phones_borrower_id'), ['borrower_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_borrower_phones_phone'), ['phone'], unique=False)

    op.create_table(
        'communications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=True),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('direction', sa.String(length=8), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('phone', sa.String(length=15), nullable=True),
        sa.Column('result_code', sa.String(length=32), nullable=True),
        sa.Column('result_name', sa.String(length=100), nullable=True),
        sa.Column('reached', sa.Boolean(), nullable=True),
        sa.Column('promise_amount', sa.BigInteger(), nullable=True),
        sa.Column('promise_date', sa.Date(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('delivery_status', sa.String(length=16), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=True),
        sa.Column('recording_url', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_communications_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['users.id'], name=op.f('fk_communications_operator_id_users')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_communications')),
    )
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.create_index(
            'ix_communications_borrower_started', ['borrower_id', 'started_at'], unique=False
        )

    op.create_table(
        'credit_applications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('product', sa.String(length=100), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('term_days', sa.Integer(), nullable=False),
        sa.Column('applied_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('status_name', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_credit_applications_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_applications')),
        sa.UniqueConstraint('number', name=op.f('uq_credit_applications_number')),
    )
    with op.batch_alter_table('credit_applications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_applications_borrower_id'), ['borrower_id'], unique=False)

    op.create_table(
        'loans',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('product', sa.String(length=100), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('term_days', sa.Integer(), nullable=False),
        sa.Column('rate', sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column('issued_on', sa.Date(), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=False),
        sa.Column('status_name', sa.String(length=200), nullable=False),
        sa.Column('principal_outstanding', sa.BigInteger(), nullable=False),
        sa.Column('total_debt', sa.BigInteger(), nullable=False),
        sa.Column('overdue_amount', sa.BigInteger(), nullable=False),
        sa.Column('days_past_due', sa.Integer(), nullable=False),
        sa.Column('closed_on', sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'], ['borrowers.id'], name=op.f('fk_loans_borrower_id_borrowers'), ondelete='CASCADE'
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_loans')),
        sa.UniqueConstraint('number', name=op.f('uq_loans_number')),
    )
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_loans_borrower_id'), ['borrower_id'], unique=False)

    op.create_table(
        'product_sales',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('product_id', sa.Integer(), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=True),
        sa.Column('price', sa.BigInteger(), nullable=False),
        sa.Column('sold_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_product_sales_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['operator_id'], ['users.id'], name=op.f('fk_product_sales_operator_id_users')
        ),
        sa.ForeignKeyConstraint(
            ['product_id'], ['products.id'], name=op.f('fk_product_sales_product_id_products')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_product_sales')),
    )
    with op.batch_alter_table('product_sales', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_product_sales_borrower_id'), ['borrower_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        op.execute(
            'CREATE INDEX ix_borrowers_search_name_trgm ON borrowers USING gin (search_name gin_trgm_ops)'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_borrowers_search_name_trgm')
    with op.batch_alter_table('product_sales', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_product_sales_borrower_id'))

    op.drop_table('product_sales')
    with op.batch_alter_table('loans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_loans_borrower_id'))

    op.drop_table('loans')
    with op.batch_alter_table('credit_applications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_applications_borrower_id'))

    op.drop_table('credit_applications')
    with op.batch_alter_table('communications', schema=None) as batch_op:
        batch_op.drop_index('ix_communications_borrower_started')

    op.drop_table('communications')
    with op.batch_alter_table('borrower_phones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_borrower_phones_phone'))
        batch_op.drop_index(batch_op.f('ix_borrower_phones_borrower_id'))

    op.drop_table('borrower_phones')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_borrower_at')
        batch_op.drop_index(batch_op.f('ix_audit_entries_at'))

    op.drop_table('audit_entries')
    with op.batch_alter_table('borrowers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_borrowers_snils'))
        batch_op.drop_index(batch_op.f('ix_borrowers_passport'))
        batch_op.drop_index('ix_borrowers_operator_last_name')
        batch_op.drop_index('ix_borrowers_operator_days_past_due')
        batch_op.drop_index(batch_op.f('ix_borrowers_inn'))

    op.drop_table('borrowers')
    op.drop_table('users')
    op.drop_table('products')
