"""requests (обращения), their history and the topic list

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

On PostgreSQL the full-text search of the «Обращения» page reads a GIN index over
``to_tsvector('russian', search_text)``.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'in_progress', 'waiting')"
TOPICS = (
    ('payment', 'Платёж'),
    ('requisites', 'Реквизиты'),
    ('restructuring', 'Реструктуризация'),
    ('prolongation', 'Пролонгация'),
    ('account_access', 'Доступ в ЛК'),
    ('complaint', 'Жалоба'),
    ('broken_promise', 'Нарушено обещание'),
    ('documents', 'Справки и документы'),
    ('other', 'Другое'),
)


def upgrade() -> None:
    topics = op.create_table(
        'request_topics',
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_request_topics')),
        sa.UniqueConstraint('name', name=op.f('uq_request_topics_name')),
    )
    op.bulk_insert(
        topics,
        [{'code': c, 'name': n, 'active': True, 'position': i} for i, (c, n) in enumerate(TOPICS)],
    )
    op.create_table(
        'requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('borrower_id', sa.Integer(), nullable=False),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('topic_code', sa.String(length=32), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('assignee_id', sa.Integer(), nullable=True),
        sa.Column('subject', sa.String(length=200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('search_text', sa.Text(), nullable=False),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_on', sa.Date(), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ['borrower_id'],
            ['borrowers.id'],
            name=op.f('fk_requests_borrower_id_borrowers'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['topic_code'], ['request_topics.code'], name=op.f('fk_requests_topic_code_request_topics')
        ),
        sa.ForeignKeyConstraint(['assignee_id'], ['users.id'], name=op.f('fk_requests_assignee_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_requests')),
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(
            'uq_requests_open_borrower_origin',
            ['borrower_id', 'origin'],
            unique=True,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )
        batch_op.create_index('ix_requests_borrower_id', ['borrower_id'], unique=False)
        batch_op.create_index('ix_requests_status_opened_at', ['status', 'opened_at'], unique=False)
        batch_op.create_index('ix_requests_assignee_id_status', ['assignee_id', 'status'], unique=False)
        batch_op.create_index('ix_requests_due_on', ['due_on'], unique=False)
        batch_op.create_index('ix_requests_opened_at', ['opened_at'], unique=False)
        batch_op.create_index('ix_requests_updated_at', ['updated_at'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            "CREATE INDEX ix_requests_search ON requests USING gin (to_tsvector('russian', search_text))"
        )
    op.create_table(
        'request_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('request_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=True),
        sa.Column('assignee_id', sa.Integer(), nullable=True),
        sa.Column('communication_id', sa.Integer(), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ['request_id'],
            ['requests.id'],
            name=op.f('fk_request_events_request_id_requests'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_request_events_actor_id_users')),
        sa.ForeignKeyConstraint(
            ['assignee_id'], ['users.id'], name=op.f('fk_request_events_assignee_id_users')
        ),
        sa.ForeignKeyConstraint(
            ['communication_id'],
            ['communications.id'],
            name=op.f('fk_request_events_communication_id_communications'),
            ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_request_events')),
    )
    with op.batch_alter_table('request_events', schema=None) as batch_op:
        batch_op.create_index('ix_request_events_request_id_at', ['request_id', 'at'], unique=False)


def downgrade() -> None:
    op.drop_table('request_events')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_requests_search')
    op.drop_table('requests')
    op.drop_table('request_topics')
