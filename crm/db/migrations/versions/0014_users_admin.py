"""users administration: groups of operators led by a supervisor; a password to change at next login

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

``user_groups`` (not ``groups``: GROUPS is an SQL keyword) and ``users.group_id``; users get
``must_change_password`` (set by an administrator's reset and on creation) and ``password_changed_at``.
On SQLite the foreign key comes with ``ADD COLUMN … REFERENCES`` (no batch copy of ``users``: with
foreign keys on, re-creating that table would cascade into its sessions).
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'user_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('supervisor_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ['supervisor_id'],
            ['users.id'],
            name=op.f('fk_user_groups_supervisor_id_users'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_groups')),
        sa.UniqueConstraint('name', name=op.f('uq_user_groups_name')),
    )
    if op.get_bind().dialect.name == 'sqlite':
        op.execute(
            'ALTER TABLE users ADD COLUMN group_id INTEGER REFERENCES user_groups (id) ON DELETE SET NULL'
        )
    else:
        op.add_column('users', sa.Column('group_id', sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f('fk_users_group_id_user_groups'),
            'users',
            'user_groups',
            ['group_id'],
            ['id'],
            ondelete='SET NULL',
        )
    op.create_index(op.f('ix_users_group_id'), 'users', ['group_id'], unique=False)
    op.add_column(
        'users', sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column('users', sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_index(op.f('ix_users_group_id'), table_name='users')
    with op.batch_alter_table('users', schema=None) as batch_op:
        if op.get_bind().dialect.name != 'sqlite':
            batch_op.drop_constraint(op.f('fk_users_group_id_user_groups'), type_='foreignkey')
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('group_id')
    op.drop_table('user_groups')
