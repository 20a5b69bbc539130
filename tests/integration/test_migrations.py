"""Migrations keep data: upgrading a database that holds borrowers loses none of their rows."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import func, select, text

from crm.db.engine import make_engine
from crm.db.migrate import alembic_config, head_revision, upgrade


def test_upgrade_from_the_first_revision_keeps_every_row(tmp_path: Path) -> None:
    url = f'sqlite:///{tmp_path / "old.sqlite3"}'
    command.upgrade(alembic_config(url), '0001')
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO borrowers (id, pin, last_name, first_name, search_name, birth_date, city, timezone, '
                'monthly_payment, archived, total_debt, overdue_amount, days_past_due, created_at) VALUES '
                "(1, '1', 'Старый', 'Клиент', 'старый клиент', '1980-01-01', 'Москва', 'Europe/Moscow', "
                "0, 0, 0, 0, 0, '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO borrower_phones (borrower_id, phone, kind, is_primary) VALUES (1, '79000000000', 'mobile', 1)"
            )
        )
        connection.execute(
            text(
                'INSERT INTO loans (borrower_id, number, product, amount, term_days, rate, issued_on, due_on, state, '
                'status_code, status_name, principal_outstanding, total_debt, overdue_amount, days_past_due) VALUES '
                "(1, 'L1', 'P', 100, 30, 0.8, '2026-01-01', '2026-01-31', 'active', 2000, 'Заём выдан', 0, 0, 0, 0)"
            )
        )
    upgrade(url)
    with engine.connect() as connection:
        assert connection.scalar(text('SELECT version_num FROM alembic_version')) == head_revision(url)
        for table in ('borrowers', 'borrower_phones', 'loans'):
            assert connection.scalar(select(func.count()).select_from(text(table))) == 1, table
        assert connection.scalar(text('PRAGMA foreign_keys')) == 1
    engine.dispose()
