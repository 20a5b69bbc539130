"""The operator's list: «Обещания на сегодня» and «Нарушенные обещания»."""

from datetime import timedelta
from decimal import Decimal

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import Borrower, Promise
from crm.db.models import User as UserRow
from tests.conftest import TEST_NOW
from tests.ui.conftest import WAIT, log_in, until


def promise_for(sessions, login: str, index: int, **fields) -> int:
    """A promise for the operator's ``index``-th borrower; the borrower's id."""
    with sessions.begin() as session:
        borrower_id = session.scalars(
            select(Borrower.id)
            .join(UserRow, UserRow.id == Borrower.assigned_operator_id)
            .where(UserRow.login == login, Borrower.archived.is_(False))
            .order_by(Borrower.id)
            .offset(index)
        ).first()
        row = {'amount': Decimal(1000), 'paid_amount': Decimal(0), 'created_at': TEST_NOW - timedelta(days=5)}
        session.add(Promise(borrower_id=borrower_id, **(row | fields)))
        return borrower_id


async def test_promise_filters_on_the_list(user: User, sessions) -> None:
    due_today = promise_for(sessions, 'operator2', 3, status='open', due_on=TEST_NOW.date())
    broken = promise_for(
        sessions,
        'operator2',
        4,
        status='broken',
        due_on=TEST_NOW.date() - timedelta(days=3),
        closed_at=TEST_NOW - timedelta(days=1),
    )
    await log_in(user, 'operator2', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    (table,) = user.find(ui.table).elements
    total = table.pagination['rowsNumber']
    (select_,) = user.find(marker='promise-filter').elements
    select_.value = 'today'
    await until(lambda: table.pagination['rowsNumber'] < total)
    assert due_today in {row['id'] for row in table.rows} and broken not in {row['id'] for row in table.rows}
    select_.value = 'broken'
    await until(lambda: broken in {row['id'] for row in table.rows})
    assert due_today not in {row['id'] for row in table.rows}
    select_.value = None
    await until(lambda: table.pagination['rowsNumber'] == total)
