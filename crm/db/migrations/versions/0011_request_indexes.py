"""the «Обращения» page's indexes: each sort column with the id after it, open requests by due day

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03

The page sorts by a column and then by id (a stable order), and reads only a page: an index on
``(column, id)`` gives that order without a sort over the filtered rows. Topic, channel, status and
assignee are sorted by label as one index walk per value (``crm/services/request_views.py``), hence their
``(column, id)`` indexes too. Single-column indexes on the same first column are replaced. Open
requests by due day (a partial index) answer the deadline filter; borrowers by ``search_name`` the sort
by borrower.

On PostgreSQL the full-text vector is a stored generated column, ``search_vector`` (not in the model: the
database keeps it from ``search_text``), with the GIN index moved onto it: a page sorted by date walks its
index and tests each row's vector, which must not mean parsing the text again for every row.
"""

from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OPEN = "status IN ('new', 'in_progress', 'waiting')"
PAIRS = ('opened_at', 'updated_at', 'due_on', 'topic_code', 'channel', 'status', 'assignee_id')
REPLACED = ('opened_at', 'updated_at', 'due_on')


def upgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        for column in REPLACED:
            batch_op.drop_index(f'ix_requests_{column}')
        for column in PAIRS:
            batch_op.create_index(f'ix_requests_{column}_id', [column, 'id'], unique=False)
    op.execute(f'CREATE INDEX ix_requests_open_due_on ON requests (due_on, id) WHERE {OPEN}')
    op.create_index('ix_borrowers_search_name_id', 'borrowers', ['search_name', 'id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(
            'ALTER TABLE requests ADD COLUMN search_vector tsvector '
            "GENERATED ALWAYS AS (to_tsvector('russian', search_text)) STORED"
        )
        op.execute('DROP INDEX IF EXISTS ix_requests_search')
        op.execute('CREATE INDEX ix_requests_search_vector ON requests USING gin (search_vector)')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP INDEX IF EXISTS ix_requests_search_vector')
        op.execute('ALTER TABLE requests DROP COLUMN IF EXISTS search_vector')
        op.execute(
            "CREATE INDEX ix_requests_search ON requests USING gin (to_tsvector('russian', search_text))"
        )
    op.drop_index('ix_borrowers_search_name_id', table_name='borrowers')
    op.execute('DROP INDEX IF EXISTS ix_requests_open_due_on')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        for column in PAIRS:
            batch_op.drop_index(f'ix_requests_{column}_id')
        for column in REPLACED:
            batch_op.create_index(f'ix_requests_{column}', [column], unique=False)
