"""additional products: price and eligibility rules; sales per loan with the loan system's decision

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=32), server_default='service', nullable=False))
        batch_op.add_column(
            sa.Column('description', sa.String(length=1000), server_default='', nullable=False)
        )
        batch_op.add_column(
            sa.Column('price_base', sa.String(length=16), server_default='fixed', nullable=False)
        )
        batch_op.add_column(sa.Column('price_percent', sa.Numeric(precision=7, scale=3), nullable=True))
        batch_op.add_column(sa.Column('price_min', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('price_max', sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column('allowed_states', sa.String(length=64), server_default='active', nullable=False)
        )
        batch_op.add_column(sa.Column('dpd_min', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('dpd_max', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('overdue_min', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('overdue_max', sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column('once_per_loan', sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column('max_per_loan', sa.Integer(), nullable=True))

    with op.batch_alter_table('product_sales', schema=None) as batch_op:
        batch_op.add_column(sa.Column('loan_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sale_id', sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column('status', sa.String(length=16), server_default='confirmed', nullable=False)
        )
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('communication_id', sa.Integer(), nullable=True))
    # Sales made before this revision were final; they get a stable public id of their own.
    op.execute(
        "UPDATE product_sales SET sale_id = 'legacy-' || CAST(id AS VARCHAR(20)) WHERE sale_id IS NULL"
    )
    with op.batch_alter_table('product_sales', schema=None) as batch_op:
        batch_op.alter_column('sale_id', existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_product_sales_sale_id'), ['sale_id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_product_sales_loan_id_loans'), 'loans', ['loan_id'], ['id'], ondelete='CASCADE'
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_product_sales_communication_id_communications'),
            'communications',
            ['communication_id'],
            ['id'],
            ondelete='SET NULL',
        )
        batch_op.create_index(batch_op.f('ix_product_sales_loan_id'), ['loan_id'], unique=False)
        batch_op.create_index('ix_product_sales_status_sent_at', ['status', 'sent_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('product_sales', schema=None) as batch_op:
        batch_op.drop_index('ix_product_sales_status_sent_at')
        batch_op.drop_index(batch_op.f('ix_product_sales_loan_id'))
        batch_op.drop_constraint(
            batch_op.f('fk_product_sales_communication_id_communications'), type_='foreignkey'
        )
        batch_op.drop_constraint(batch_op.f('fk_product_sales_loan_id_loans'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_product_sales_sale_id'), type_='unique')
        batch_op.drop_column('communication_id')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('decided_at')
        batch_op.drop_column('reason')
        batch_op.drop_column('status')
        batch_op.drop_column('sale_id')
        batch_op.drop_column('loan_id')

    with op.batch_alter_table('products', schema=None) as batch_op:
        for column in (
            'max_per_loan',
            'once_per_loan',
            'overdue_max',
            'overdue_min',
            'dpd_max',
            'dpd_min',
            'allowed_states',
            'price_max',
            'price_min',
            'price_percent',
            'price_base',
            'description',
            'kind',
        ):
            batch_op.drop_column(column)
