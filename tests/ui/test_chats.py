"""Chat on the screen: a message arrives live on the open card and is answered there; the header's badge;
an unknown sender linked from «Чаты»; the «Симулятор чата» round trip; chat text shown as text."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ElementFilter, ui
from nicegui.testing import User
from sqlalchemy import select

from crm.db.models import Chat, Communication, MessageTemplate
from crm.db.models import User as UserRow
from tests.conftest import TEST_NOW
from tests.factories import make_borrower, make_user, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import post_event

HOSTILE = '<script>alert(1)</script><b>жирный</b>'


def user_id(sessions, login: str) -> int:
    with sessions() as session:
        found = session.scalar(select(UserRow.id).where(UserRow.login == login))
    assert found is not None
    return found


def full_name(sessions, login: str) -> str:
    with sessions() as session:
        return session.scalar(select(UserRow.full_name).where(UserRow.login == login)) or ''


async def chat_message(
    user: User, chat_id: str, sender: str, text: str, at: str = '2026-11-26T12:00:00+03:00'
):
    await post_event(
        user, type='chat.message.received', chat_id=chat_id, text=text, at=at, **{'from': sender}
    )


def messages(sessions, chat_id: str) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(Communication.direction, Communication.body)
            .where(Communication.chat_id == chat_id)
            .order_by(Communication.id)
        )
        return [(direction, body or '') for direction, body in rows]


def chat_markup(user: User) -> str:
    """Every conversation's markup on the user's page, as the browser gets it."""
    with user:
        return ''.join(
            e.content
            for e in ui.context.client.elements.values()
            if isinstance(e, ui.html) and 'crm-chat' in e.content
        )


def has(user: User, marker: str) -> bool:
    with user:
        return bool(list(ElementFilter(marker=marker)))


def badge(user: User) -> int | None:
    """The header's count (0 when hidden), or None before the tab loaded it."""
    with user:
        found = list(ElementFilter(kind=ui.badge, marker='chat-unread'))
    if not found:
        return None
    (count,) = found
    return int(count.text) if count.visible and count.text else 0


async def test_a_message_arrives_live_on_the_open_card_and_is_answered(user: User, sessions) -> None:
    phone = unique_phone()
    borrower = make_borrower(
        sessions, last='Чатный', phones=(phone,), operator_id=user_id(sessions, 'operator1')
    )
    chat_id = f'ui-chat-{unique()}'
    await log_in(user, 'operator1', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Чатный', retries=WAIT)
    assert 'Чат с заёмщиком' not in chat_markup(user)  # never wrote: no chat panel
    await chat_message(user, chat_id, '8' + phone[1:], 'Когда спишется платёж?')
    await until(lambda: 'Когда спишется платёж?' in chat_markup(user))
    await user.should_see('Чат с заёмщиком', retries=WAIT)
    await until(lambda: _unread(sessions, chat_id) == 0)  # shown to the assigned operator: read

    user.find(marker='chat-answer').type('Завтра до 12:00')
    user.find(marker='chat-send').click()
    await until(lambda: messages(sessions, chat_id)[-1] == ('out', 'Завтра до 12:00'))
    await until(lambda: 'Завтра до 12:00' in chat_markup(user))
    assert full_name(sessions, 'operator1') in chat_markup(user)  # who answered, beside the answer
    (box,) = user.find(marker='chat-answer').elements
    assert box.value == ''


async def test_an_empty_answer_is_refused_in_russian(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Пустой', operator_id=user_id(sessions, 'operator2'))
    chat_id = f'ui-chat-{unique()}'
    await log_in(user, 'operator2', 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('Пустой', retries=WAIT)
    await chat_message(user, chat_id, borrower.pin, 'Есть кто?')
    await user.should_see('Чат с заёмщиком', retries=WAIT)
    user.find(marker='chat-send').click()
    await user.should_see('Введите текст ответа', retries=WAIT)
    assert messages(sessions, chat_id) == [('in', 'Есть кто?')]


async def test_a_canned_answer_fills_the_answer_box_for_this_borrower(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Шаблонный', first='Пётр', middle='Ильич')
    name = f'Ответ в чат {unique()}'
    with sessions.begin() as session:
        session.add(
            MessageTemplate(
                channel='sms',
                kind='chat_answer',
                name=name,
                body='{{ name }}, реквизиты в ЛК. {{ creditor_name }}, {{ contact_phone }}',
                updated_at=TEST_NOW,
            )
        )
    await log_in(user, 'supervisor', 'supervisor', path=f'/borrower/{borrower.id}')
    await user.should_see('Шаблонный', retries=WAIT)
    await chat_message(user, f'ui-chat-{unique()}', borrower.pin, 'Пришлите реквизиты')
    await user.should_see('Шаблоны ответов', retries=WAIT)
    user.find('Шаблоны ответов').click()
    await user.should_see(name, retries=WAIT)
    user.find(name).click()
    (box,) = user.find(marker='chat-answer').elements
    await until(lambda: (box.value or '').startswith('Пётр Ильич, реквизиты в ЛК.'))


async def test_the_header_badge_counts_chats_waiting_for_the_operator(user: User, sessions) -> None:
    operator = user_id(sessions, 'operator3')
    first = make_borrower(sessions, last='Бейджев', operator_id=operator)
    second = make_borrower(sessions, last='Счётов', operator_id=operator)
    await log_in(user, 'operator3', 'operator')
    await user.should_see('Мои заёмщики', retries=WAIT)
    await until(lambda: badge(user) is not None)
    before = badge(user) or 0
    await chat_message(user, f'ui-chat-{unique()}', first.pin, 'Раз')
    await until(lambda: badge(user) == before + 1)
    await user.should_see('Новое сообщение в чате: Бейджев Тест Тестович', retries=WAIT)
    second_chat = f'ui-chat-{unique()}'
    await chat_message(user, second_chat, second.pin, 'Два')
    await chat_message(user, second_chat, second.pin, 'Три', at='2026-11-26T12:01:00+03:00')
    await until(lambda: badge(user) == before + 2)  # chats, not messages

    await user.open(f'/borrower/{second.id}')  # read on the card
    await until(lambda: 'Три' in chat_markup(user))
    await until(lambda: badge(user) == before + 1)


async def test_an_unknown_sender_is_linked_from_the_chats_page(user: User, sessions) -> None:
    borrower = make_borrower(sessions, last='Отыскан', phones=(unique_phone(),))
    chat_id = f'ui-chat-{unique()}'
    await log_in(user, 'operator4', 'operator', path='/chats')
    await user.should_see('Общая очередь', retries=WAIT)
    await chat_message(user, chat_id, 'аноним-' + chat_id, HOSTILE, at='2026-11-26T23:30:00+03:00')
    await until(lambda: has(user, f'chat-{chat_id}'))  # the list redrew live
    await user.should_see(HOSTILE, retries=WAIT)  # a label: the text itself, not markup
    user.find(marker=f'chat-{chat_id}').click()
    await user.should_see(f'Неизвестный отправитель: аноним-{chat_id}', retries=WAIT)
    await until(lambda: '&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;жирный&lt;/b&gt;' in chat_markup(user))
    assert '<script>' not in chat_markup(user) and '<b>' not in chat_markup(user)
    user.find('Поиск заёмщика').clear().type(borrower.pin)
    user.find('Найти').click()
    await user.should_see('Отыскан Тест Тестович', retries=WAIT)
    user.find('Привязать').click()
    await until(lambda: _chat(sessions, chat_id).borrower_id == borrower.id)
    await user.should_see('История коммуникаций', retries=WAIT)  # the card, with the chat under it
    await until(lambda: HOSTILE.replace('<', '&lt;').replace('>', '&gt;') in chat_markup(user))


async def test_the_chat_simulator_round_trip(user: User, create_user: Callable[[], User], sessions) -> None:
    # an operator of its own: a demo operator may have a call of another test still ringing, whose card
    # would be put over this one when the page is drawn
    person = make_user(sessions, password='operator')
    borrower = make_borrower(sessions, last='Симчатов', operator_id=person.id)
    operator = create_user()
    await log_in(operator, person.login, 'operator', path=f'/borrower/{borrower.id}')
    await operator.should_see('Симчатов', retries=WAIT)
    await log_in(user, 'admin', 'admin', path='/chat-simulator')
    await user.should_see('Симулятор чата', retries=WAIT)
    user.find('Телефон или PIN отправителя').clear().type(borrower.pin)
    user.find('Сообщение').type(HOSTILE)
    user.find('Написать в чат').click()
    await until(lambda: '&lt;script&gt;' in chat_markup(operator))  # at the operator's, as text
    assert '<script>' not in chat_markup(operator)
    await until(lambda: '&lt;script&gt;' in chat_markup(user))
    assert '<script>' not in chat_markup(user)
    operator.find(marker='chat-answer').type('Вижу <i>ваше</i> сообщение')
    operator.find(marker='chat-send').click()
    await until(lambda: 'Вижу &lt;i&gt;ваше&lt;/i&gt; сообщение' in chat_markup(user), timeout=15)


async def test_the_chat_simulator_is_for_administrators(user: User) -> None:
    await log_in(user, 'operator1', 'operator', path='/chat-simulator')
    await user.should_see('Раздел доступен только администратору', retries=WAIT)


def _chat(sessions, chat_id: str) -> Chat:
    with sessions() as session:
        found = session.scalar(select(Chat).where(Chat.chat_id == chat_id))
    assert found is not None
    return found


def _unread(sessions, chat_id: str) -> int:
    return _chat(sessions, chat_id).unread
