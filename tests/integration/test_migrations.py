"""Migrations keep data: upgrading a database that holds borrowers loses none of their rows."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import MetaData, func, select, text

from crm.db.engine import make_engine
from crm.db.migrate import alembic_config, head_revision, upgrade

BORROWER = {
    'id': 1,
    'pin': '1',
    'last_name': 'Старый',
    'first_name': 'Клиент',
    'search_name': 'старый клиент',
    'birth_date': date(1980, 1, 1),
    'city': 'Москва',
    'timezone': 'Europe/Moscow',
    'monthly_payment': 0,
    'archived': False,
    'total_debt': 0,
    'overdue_amount': 0,
    'days_past_due': 0,
    'created_at': datetime(2026, 1, 1),
}
PHONE = {'borrower_id': 1, 'phone': '79000000000', 'kind': 'mobile', 'is_primary': True}
LOAN = {
    'borrower_id': 1,
    'number': 'L1',
    'product': 'P',
    'amount': 10000,
    'term_days': 30,
    'rate': 0.8,
    'issued_on': date(2026, 1, 1),
    'due_on': date(2026, 1, 31),
    'state': 'active',
    'status_code': 2000,
    'status_name': 'Заём выдан',
    'principal_outstanding': 0,
    'total_debt': 0,
    'overdue_amount': 0,
    'days_past_due': 0,
}


def test_upgrade_from_the_first_revision_keeps_every_row(tmp_path: Path) -> None:
    url = f'sqlite:///{tmp_path / "old.sqlite3"}'
    command.upgrade(alembic_config(url), '0001')
    engine = make_engine(url)
    with engine.begin() as connection:
        tables = MetaData()
        tables.reflect(connection)
        connection.execute(tables.tables['borrowers'].insert(), BORROWER)
        connection.execute(tables.tables['borrower_phones'].insert(), PHONE)
        connection.execute(tables.tables['loans'].insert(), LOAN)
    upgrade(url)
    with engine.connect() as connection:
        assert connection.scalar(text('SELECT version_num FROM alembic_version')) == head_revision(url)
        for table in ('borrowers', 'borrower_phones', 'loans'):
            assert connection.scalar(select(func.count()).select_from(text(table))) == 1, table
        assert connection.scalar(text('PRAGMA foreign_keys')) == 1
    engine.dispose()
