"""«Журнал действий»: an administrator finds a card view by the borrower's PIN, with where it came from;
others are refused."""

from __future__ import annotations

from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import AuditEntry
from tests.factories import make_borrower
from tests.ui.conftest import WAIT, log_in, until


async def test_admin_finds_a_card_view_and_where_it_came_from(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Аудитов', first='Пётр')
    await log_in(user, 'admin', 'admin', path=f'/borrower/{borrower.id}')
    await user.should_see('Аудитов', retries=WAIT)

    def viewed_from() -> str | None:
        with sessions() as session:
            return session.scalar(
                select(AuditEntry.address).where(
                    AuditEntry.borrower_id == borrower.id, AuditEntry.action == 'card.view'
                )
            )

    await until(lambda: viewed_from() is not None)  # the page's service call carried the browser's address
    await user.open('/admin/audit')
    await user.should_see('Журнал действий', retries=WAIT)
    await user.should_see('Экспорт CSV')
    user.find(marker='audit-borrower').type(borrower.pin).trigger('keydown.enter')
    (total,) = user.find(marker='audit-total').elements
    await until(lambda: total.text == 'Записей: 1')  # exactly: «Записей: 12» before the filter would do
    (table,) = user.find(marker='audit-table').elements
    (row,) = table.rows
    assert (row['action'], row['borrower'], row['user']) == (
        'Просмотр карточки',
        f'Аудитов Пётр Тестович · {borrower.pin}',
        'Воронцов Андрей Игоревич',
    )
    assert row['address'] == viewed_from()
    user.find('Экспорт CSV').click()

    def exported() -> bool:
        with sessions() as session:
            details = session.scalars(select(AuditEntry.details).where(AuditEntry.action == 'audit.export'))
            return any(borrower.pin in (d or '') for d in details)

    await until(exported)


async def test_the_log_is_for_administrators_only(user: User) -> None:
    await log_in(user, 'operator3', 'operator', path='/admin/audit')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)
