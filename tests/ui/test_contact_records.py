"""«Добавить запись» on the card: a note and a visit with a promise land in the history live; a call on
another phone over the 230-FZ limit is recorded with a warning."""

from datetime import timedelta
from decimal import Decimal

from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import Communication, Promise
from tests.conftest import TEST_NOW
from tests.factories import make_borrower
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import sees


def choose(user: User, marker: str, value: str) -> None:
    (select_,) = user.find(marker=marker).elements
    select_.value = value


async def test_a_note_and_a_visit_with_a_promise(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Записькин', overdue=Decimal(9000), days_past_due=12)
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Коммуникаций ещё не было', retries=WAIT)

    user.find(marker='record-new').click()
    await user.should_see('Новая запись', retries=WAIT)
    user.find(marker='record-save').click()
    await user.should_see('Напишите текст заметки', retries=WAIT)  # the service's refusal, in the dialog
    user.find(marker='record-comment').type('Просил звонить после 18:00')
    user.find(marker='record-save').click()
    await user.should_see('Запись добавлена: Заметка', retries=WAIT)
    await until(lambda: sees(user, 'Просил звонить после 18:00'))  # the history, redrawn live

    user.find(marker='record-new').click()
    await user.should_see('Новая запись', retries=WAIT)
    choose(user, 'record-channel', 'visit')
    choose(user, 'record-result', 'promise')
    user.find(marker='record-amount').type('3 000')
    user.find(marker='record-promise-date').type('30.11.2026')
    user.find(marker='record-at').clear().type('26.11.2026 10:30')
    user.find(marker='record-comment').type('Застали дома')
    user.find(marker='record-save').click()
    await user.should_see('Запись добавлена: Личная встреча', retries=WAIT)
    await until(lambda: sees(user, 'Личная встреча — Обещание оплаты'))
    assert sees(user, 'обещание 3 000,00 ₽ до 30.11.2026') and sees(user, 'Застали дома')
    with sessions() as session:
        visit = session.scalars(
            select(Communication).where(
                Communication.borrower_id == borrower.id, Communication.channel == 'visit'
            )
        ).one()
        assert visit.started_at == TEST_NOW - timedelta(minutes=90)  # 10:30 in Moscow, 12:00 now
        promise = session.scalars(select(Promise).where(Promise.communication_id == visit.id)).one()
        assert (promise.amount, promise.status) == (Decimal('3000.00'), 'open')


async def test_a_call_on_another_phone_over_the_limit_shows_a_warning(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Перезвонов', overdue=Decimal(9000), days_past_due=12)
    with sessions.begin() as session:  # a call the CRM made today already reached the borrower
        session.add(
            Communication(
                borrower_id=borrower.id,
                channel='call_out',
                direction='out',
                started_at=TEST_NOW - timedelta(hours=2),
                reached=True,
                result_code='refusal',
                result_name='Отказ от оплаты',
            )
        )
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Отказ от оплаты', retries=WAIT)
    user.find(marker='record-new').click()
    await user.should_see('Новая запись', retries=WAIT)
    choose(user, 'record-channel', 'call_other')
    choose(user, 'record-result', 'consultation')
    user.find(marker='record-save').click()
    await user.should_see('Звонок нарушил 230-ФЗ: Лимит 230-ФЗ: не более 1 звонка в сутки', retries=WAIT)
    await until(lambda: sees(user, 'Звонок с другого телефона — Консультация'))  # recorded all the same
