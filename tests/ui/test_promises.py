"""Promises on the screen: the list's filters and flag, the card's promises (by hand, cancelled, live)."""

from datetime import date, timedelta
from decimal import Decimal

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import Borrower, Communication, Loan, Promise
from crm.db.models import User as UserRow
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import post_event, sees


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
    assert all(row['broken_promise'] == (row['id'] == broken) for row in table.rows)  # the red marker


def head_flag(user: User) -> bool:
    """Whether the card's head shows «Нарушено обещание»."""
    with user:
        return any(
            'data-testid="broken-promise"' in (h.content or '') for h in user.find(kind=ui.html).elements
        )


async def test_the_broken_flag_on_the_list_and_the_card_goes_with_a_payment(user: User, sessions) -> None:
    with sessions() as session:
        operator_id = session.scalar(select(UserRow.id).where(UserRow.login == 'operator2'))
    borrower_id = make_borrower(sessions, last='Нарушителев', operator_id=operator_id).id
    with sessions.begin() as session:
        session.add(
            Promise(
                borrower_id=borrower_id,
                amount=Decimal(1000),
                paid_amount=Decimal(0),
                created_at=TEST_NOW - timedelta(days=5),
                status='broken',
                due_on=TEST_NOW.date() - timedelta(days=3),
                closed_at=TEST_NOW - timedelta(days=1),
            )
        )
    await log_in(user, 'operator2', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    (table,) = user.find(ui.table).elements
    (select_,) = user.find(marker='promise-filter').elements
    select_.value = 'broken'
    await until(lambda: any(row['id'] == borrower_id and row['broken_promise'] for row in table.rows))

    await user.open(f'/borrower/{borrower_id}')
    await until(lambda: head_flag(user))
    assert sees(user, 'Нарушено обещание: 1 000,00 ₽')
    await user.should_see('Нарушено', retries=WAIT)  # the promise in the card's promise part
    with sessions() as session:
        number = session.scalars(select(Loan.number).where(Loan.borrower_id == borrower_id)).first()
    await post_event(
        user,
        type='loan.payment.received',
        payment_id=f'ui-pay-{unique()}',
        loan_number=number,
        amount='300',
        at=TEST_NOW.isoformat(),
    )
    await until(lambda: not head_flag(user))  # the head is redrawn live: paid since the promise
    assert sees(user, 'Платёж 300,00 ₽')


async def test_a_promise_by_hand_on_the_card_and_cancelled(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Обещалкин')
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Обещаний нет', retries=WAIT)
    user.find(marker='promise-new').click()
    await user.should_see('Дата обещания', retries=WAIT)
    user.find(marker='promise-amount').type('5 000')
    user.find(marker='promise-date').type('2026-12-05')
    user.find(marker='promise-save').click()
    await user.should_see('Укажите дату обещания в виде ДД.ММ.ГГГГ, например 05.12.2026', retries=WAIT)
    user.find(marker='promise-date').clear().type('25.11.2026')
    user.find(marker='promise-save').click()
    await user.should_see('Дата обещания не может быть в прошлом', retries=WAIT)  # the service's refusal
    user.find(marker='promise-date').clear().type('05.12.2026')
    user.find(marker='promise-save').click()
    await user.should_see('Обещание записано: 5 000,00 ₽ до 05.12.2026', retries=WAIT)
    await user.should_see('Открыто', retries=WAIT)
    with sessions() as session:
        promise = session.scalars(select(Promise).where(Promise.borrower_id == borrower.id)).one()
        assert (promise.amount, promise.due_on, promise.status) == (Decimal(5000), date(2026, 12, 5), 'open')

    user.find('Отменить').click()
    await user.should_see('Отменить обещание?', retries=WAIT)
    user.find('Да, отменить').click()
    await user.should_see('Обещание отменено', retries=WAIT)
    await user.should_see('Отменено', retries=WAIT)
    await user.should_not_see('Открыто')
    with sessions() as session:
        assert session.get(Promise, promise.id).status == 'cancelled'
        number = session.scalars(select(Loan.number).where(Loan.borrower_id == borrower.id)).one()

    user.find(marker='promise-new').click()  # another, kept live by a payment from the loan system
    user.find(marker='promise-amount').type('700')
    user.find(marker='promise-date').type('27.11.2026')
    user.find(marker='promise-save').click()
    await user.should_see('Открыто', retries=WAIT)
    at = (TEST_NOW + timedelta(hours=1)).isoformat()  # after the promise was made on the app's clock
    await post_event(
        user,
        type='loan.payment.received',
        payment_id=f'ui-{unique()}',
        loan_number=number,
        amount='700',
        at=at,
    )
    await user.should_see('Выполнено', retries=WAIT)
    await user.should_see('оплачено 700,00 ₽', retries=WAIT)


async def test_a_promise_made_in_the_chat_is_recorded_from_the_cards_chat(user: User, sessions) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Чатобещалов', phones=(phone,))
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Обещаний нет', retries=WAIT)
    await post_event(
        user,
        type='chat.message.received',
        chat_id=f'ui-chat-{unique()}',
        text='Оплачу 2 000 в понедельник',
        at='2026-11-26T12:00:00+03:00',
        **{'from': '8' + phone[1:]},
    )
    await user.should_see('Чат с заёмщиком', retries=WAIT)
    user.find(marker='chat-promise').click()
    await user.should_see('Обещание оплаты в чате', retries=WAIT)
    user.find(marker='promise-amount').type('2 000')
    user.find(marker='promise-date').type('30.11.2026')
    user.find(marker='promise-save').click()
    await user.should_see('Обещание записано: 2 000,00 ₽ до 30.11.2026', retries=WAIT)
    await user.should_see('Открыто', retries=WAIT)  # the card's promise part, redrawn by HistoryChanged
    await until(lambda: sees(user, 'Чат · 26.11.2026'))  # where it was made
    with sessions() as session:
        promise = session.scalars(select(Promise).where(Promise.borrower_id == borrower.id)).one()
        message = session.get(Communication, promise.communication_id)
        assert (message.channel, message.body) == ('chat', 'Оплачу 2 000 в понедельник')
