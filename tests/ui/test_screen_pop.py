"""A ring puts the card on the operator's screen, in place, without a click; the call panel follows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from nicegui import ElementFilter, ui
from nicegui.testing import User

from crm.db.models import User as UserRow
from crm.domain import Role
from tests.conftest import TEST_API_TOKEN, TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, never, until

AUTH = {'Authorization': f'Bearer {TEST_API_TOKEN}'}


async def post_event(user: User, **body) -> None:
    response = await user.http_client.post('/api/v1/events', json=body, headers=AUTH)
    assert response.status_code == 202, response.text


async def ring(user: User, phone: str, extension: str, at: str = '2026-11-26T10:00:00+03:00') -> str:
    call_id = f'ui-{unique()}'
    await post_event(
        user,
        type='telephony.call.incoming',
        call_id=call_id,
        to_extension=extension,
        at=at,
        **{'from': phone},
    )
    return call_id


def sees(user: User, text: str) -> bool:
    with user:
        shown = (
            getattr(e, 'text', '') or getattr(e, 'content', '') for e in ui.context.client.elements.values()
        )
        return any(text in (content or '') for content in shown)


def shown(element: ui.element) -> bool:
    """The element and every element around it visible."""
    while element is not None:
        if not element.visible:
            return False
        element = element.parent_slot.parent if element.parent_slot is not None else None
    return True


def panel_says(user: User, text: str) -> bool:
    """The call panel (markup) shows ``text``: not the header's operator-state chip (a label)."""
    with user:
        return any(text in (getattr(e, 'content', '') or '') for e in ui.context.client.elements.values())


async def test_ring_pops_the_card_in_the_operators_tab_and_nowhere_else(
    user: User, create_user: Callable[[], User], sessions
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Всплывающий', first='Пётр', phones=(phone,))
    other = create_user()
    await log_in(user, 'operator1', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await log_in(other, 'operator2', 'operator')
    await other.should_see('Мои заёмщики', retries=WAIT)
    await ring(user, '8' + phone[1:], '101')
    await until(lambda: sees(user, 'Всплывающий Пётр Тестович'))
    await user.should_see('Входящий звонок — снимите трубку', retries=WAIT)
    await user.should_see(f'PIN: {borrower.pin}', retries=WAIT)
    assert not sees(other, 'Всплывающий')
    assert sees(other, 'Мои заёмщики')


async def test_unknown_number_shows_the_unknown_caller_panel_with_search(user: User) -> None:
    await log_in(user, 'operator3', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await ring(user, '+7 (800) 555-00-01', '103')  # no borrower has an 8-800 number
    await until(lambda: sees(user, 'Номер не найден среди заёмщиков'))
    (box,) = user.find('Поиск заёмщика').elements
    assert box.value == '78005550001'


async def test_whole_call_from_answer_to_the_promise_in_history(
    user: User, create_user: Callable[[], User], sessions
) -> None:
    phone = unique_phone()
    borrower = make_borrower(sessions, last='Обещающий', phones=(phone,))
    watcher = create_user()  # a second tab on the same card sees the result land
    await log_in(user, 'operator4', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await log_in(watcher, 'supervisor', 'supervisor', path=f'/borrower/{borrower.id}')
    await watcher.should_see('История коммуникаций', retries=WAIT)
    call_id = await ring(user, phone, '104')
    await until(lambda: sees(user, 'Обещающий'))
    await post_event(user, type='telephony.call.answered', call_id=call_id, at='2026-11-26T10:00:03+03:00')
    await until(lambda: panel_says(user, 'Разговор'))  # the header's state chip says «Разговор» too
    user.find('Удерживать звонок').click()
    await until(lambda: sees(user, 'На удержании'))
    user.find('Вернуть звонок').click()
    await until(lambda: panel_says(user, 'Разговор'))
    user.find('Завершить звонок').click()
    await post_event(
        user,
        type='telephony.call.ended',
        call_id=call_id,
        at='2026-11-26T10:04:03+03:00',
        duration_s=240,
        recording_url='https://pbx.example/rec/1.mp3',
    )
    await until(lambda: sees(user, 'Результат звонка'))
    (code,) = user.find(marker='result-code').elements
    (recording,) = user.find('Запись разговора').elements
    with user:
        (amount,) = ElementFilter(kind=ui.input, content='Сумма обещания, ₽')
    assert not shown(amount)  # until a promise is chosen
    user.find(marker='result-code').click()
    user.find('Обещание оплаты').click()
    user.find('Сумма обещания, ₽').type('7500')
    user.find('Дата платежа').type((TEST_NOW.date() + timedelta(days=3)).strftime('%d.%m.%Y'))
    user.find('Комментарий').type('Оплатит с зарплаты')
    user.find('Сохранить результат').click()
    await until(lambda: sees(user, 'Нет активного звонка'))
    await until(lambda: sees(watcher, 'Оплатит с зарплаты'))
    assert sees(watcher, 'обещание 7 500,00 ₽')
    assert not shown(code)  # no call waits for a result
    # the next call's result: the same form, empty, without the last call's recording
    second = await ring(user, phone, '104', at='2026-11-26T10:10:00+03:00')
    await until(lambda: panel_says(user, 'Обещающий'))
    await post_event(user, type='telephony.call.answered', call_id=second, at='2026-11-26T10:10:02+03:00')
    await post_event(user, type='telephony.call.ended', call_id=second, at='2026-11-26T10:11:02+03:00')
    await until(lambda: shown(code))
    assert user.find(marker='result-code').elements == {code}  # the same form
    (comment,) = user.find('Комментарий').elements
    assert (code.value, comment.value, shown(recording)) == (None, '', False)
    assert not shown(amount)  # shown again only for a promise


async def test_new_call_is_refused_on_a_card_with_a_legal_status(user: User, sessions) -> None:
    from crm.db.models import Borrower

    borrower = make_borrower(sessions, last='Банкротов', phones=(unique_phone(),))
    with sessions.begin() as session:
        session.get(Borrower, borrower.id).bankrupt = True
    operator = make_user(sessions)  # no call of an earlier test on its line: the law is what refuses
    await log_in(user, operator.login, 'secret', path=f'/borrower/{borrower.id}')
    await user.should_see('Правовой статус: Банкротство', retries=WAIT)
    await user.should_see('Звонки запрещены', retries=WAIT)
    (button,) = [b for b in user.find('Новый звонок').elements if isinstance(b, ui.button)]
    assert not button.enabled
    (dial,) = [b for b in user.find('Набрать номер').elements if isinstance(b, ui.button)]
    assert not dial.enabled  # a number typed by hand on this card is a call to this borrower
    assert 'Звонки запрещены' in dial.parent_slot.parent.props['title']  # why, before typing a number


async def test_without_an_extension_dialling_is_disabled_and_says_why(user: User, sessions) -> None:
    admin = make_user(sessions, role=Role.ADMIN)
    with sessions.begin() as session:
        session.get(UserRow, admin.id).extension = None
    borrower = make_borrower(sessions, last='Безномерной', phones=(unique_phone(),))
    await log_in(user, admin.login, 'secret', path=f'/borrower/{borrower.id}')
    await user.should_see('Безномерной', retries=WAIT)
    (dial,) = [b for b in user.find('Набрать номер').elements if isinstance(b, ui.button)]
    assert not dial.enabled and 'нет внутреннего номера' in dial.parent_slot.parent.props['title']


async def test_supervisor_records_a_refusal_of_interaction(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Отказной', phones=(unique_phone(),))
    await log_in(user, 'supervisor', 'supervisor', path=f'/borrower/{borrower.id}')
    await user.should_see('Отказной', retries=WAIT)
    user.find('Правовой статус').click()
    user.find('Отказ от взаимодействия').click()
    user.find('Сохранить').click()
    await until(lambda: sees(user, 'Правовой статус: Отказ от взаимодействия'))
    await user.should_see('Звонки запрещены', retries=WAIT)


async def test_operator_cannot_change_the_legal_status(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Неизменный')
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Неизменный', retries=WAIT)
    await user.should_not_see('Правовой статус')


async def test_a_call_ringing_when_the_page_is_drawn_pops_its_card(user: User, sessions) -> None:
    """The tab was away (loading, or reloading on another process after its own died) when the call rang:
    the page drawn meanwhile shows the caller's card and the ringing call, as the pop would have."""
    phone = unique_phone()
    caller = make_borrower(sessions, last='Пропущенный', first='Глеб', phones=(phone,))
    operator = make_user(sessions, role=Role.OPERATOR)
    await user.open('/login')  # the app (and its bus) is up; the operator has no tab yet
    await ring(user, phone, operator.extension or '', at=TEST_NOW.isoformat())  # the app's clock starts there
    await log_in(user, operator.login, 'secret')
    await user.should_see('Входящий звонок — снимите трубку', retries=WAIT)
    await until(lambda: sees(user, f'PIN: {caller.pin}'))  # the card, not only the call panel


async def test_an_answered_call_does_not_take_over_a_page_drawn_later(user: User, sessions) -> None:
    phone = unique_phone()
    caller = make_borrower(sessions, last='Отвеченный', first='Ян', phones=(phone,))
    operator = make_user(sessions, role=Role.OPERATOR)
    await user.open('/login')
    call_id = await ring(user, phone, operator.extension or '', at=TEST_NOW.isoformat())
    answered = (TEST_NOW + timedelta(seconds=5)).isoformat()
    await post_event(user, type='telephony.call.answered', call_id=call_id, at=answered)
    await log_in(user, operator.login, 'secret')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await until(lambda: panel_says(user, 'Отвеченный Ян Тестович'))  # the call panel names the caller
    await never(lambda: sees(user, f'PIN: {caller.pin}'))  # the operator's page, not the card


async def test_a_ring_whose_end_never_came_does_not_cover_a_page_hours_later(user: User, sessions) -> None:
    phone = unique_phone()
    caller = make_borrower(sessions, last='Забытый', first='Лев', phones=(phone,))
    operator = make_user(sessions, role=Role.OPERATOR)
    await user.open('/login')
    await ring(user, phone, operator.extension or '', at=(TEST_NOW - timedelta(hours=2)).isoformat())
    await log_in(user, operator.login, 'secret')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await until(lambda: panel_says(user, 'Забытый Лев Тестович'))  # the page has read the call
    await never(lambda: sees(user, f'PIN: {caller.pin}'))
