"""Messages from the card in NiceGUI's user simulation: a template SMS lands in the history «В очереди»;
the law's refusal is shown in the dialog before and on sending; the password is never shown."""

from __future__ import annotations

from decimal import Decimal

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import select

from crm.config import Settings
from crm.db.models import Borrower, MessageTemplate, OutboxMessage
from crm.db.models import User as UserRow
from crm.domain.messages import PASSWORD_MASK
from crm.integrations import account
from tests.conftest import TEST_API_TOKEN, set_app_env
from tests.factories import make_borrower, make_user, unique, unique_phone
from tests.ui.conftest import WAIT, log_in, until
from tests.ui.test_screen_pop import sees

SIGN = f'{Settings.creditor_name}, {Settings.creditor_phone}'


@pytest.fixture(autouse=True)
def _outbox_stays_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app under test does not send the outbox, so what the card shows is «В очереди» every time
    (tests/e2e/test_messaging.py watches the dispatcher send it)."""
    set_app_env(monkeypatch, 'CRM_OUTBOX_DISPATCHER', '0')


def operator_id(sessions, login: str) -> int:
    with sessions() as session:
        found = session.scalar(select(UserRow.id).where(UserRow.login == login))
        assert found is not None
        return found


def debtor(sessions, login: str, **flags: bool) -> Borrower:
    borrower = make_borrower(
        sessions,
        last='Сообщаемый',
        phones=(unique_phone(),),
        operator_id=operator_id(sessions, login),
        overdue=Decimal('5200'),
        days_past_due=12,
    )
    with sessions.begin() as session:
        row = session.get(Borrower, borrower.id)
        row.email = f'soobshchaemyi{unique()}@example.ru'
        for name, value in flags.items():
            setattr(row, name, value)
    return borrower


def sms_template(sessions) -> tuple[int, str]:
    name = f'Напоминание {unique()}'
    with sessions.begin() as session:
        template = MessageTemplate(
            channel='sms',
            kind='overdue',
            name=name,
            body='{{ name }}, просрочка {{ overdue_amount }}. {{ creditor_name }}, {{ contact_phone }}',
        )
        session.add(template)
        session.flush()
        return template.id, name


def one(user: User, marker: str) -> ui.element:
    (element,) = user.find(marker=marker).elements
    return element


async def open_card(user: User, login: str, borrower: Borrower) -> None:
    await log_in(user, login, 'operator', path=f'/borrower/{borrower.id}')
    await user.should_see('История коммуникаций', retries=WAIT)
    await user.should_see('Отправить SMS', retries=WAIT)


async def test_a_template_sms_from_the_card_lands_in_the_history_queued(user: User, sessions) -> None:
    borrower = debtor(sessions, 'operator2')
    template_id, name = sms_template(sessions)
    await open_card(user, 'operator2', borrower)
    user.find(kind=ui.button, content='Отправить SMS').click()
    await user.should_see('Шаблон SMS сообщения', retries=WAIT)
    select_ = one(user, 'message-template')
    assert f'Просрочка · {name}' in select_.options.values()
    select_.set_value(template_id)
    text = one(user, 'message-text')
    await until(lambda: bool(text.value))
    assert text.value == f'Тест Тестович, просрочка 5 200,00 ₽. {SIGN}'
    await until(lambda: one(user, 'message-counter').text == 'UCS-2 · 73 симв. · 2 части (осталось 61)')
    text.set_value(text.value + ' Перезвоните нам.')  # the operator edits it
    await until(lambda: one(user, 'message-counter').text == 'UCS-2 · 90 симв. · 2 части (осталось 44)')
    user.find(marker='message-send').click()
    await user.should_see('SMS поставлено в очередь', retries=WAIT)
    await until(lambda: sees(user, 'Перезвоните нам.'))
    assert sees(user, 'В очереди')
    with sessions() as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id))
    assert row.status == 'queued' and row.body.endswith('Перезвоните нам.')


async def test_the_law_disables_sending_before_anything_is_typed(user: User, sessions) -> None:
    refused = debtor(sessions, 'operator3', contact_refused=True)
    await open_card(user, 'operator3', refused)
    user.find(kind=ui.button, content='Отправить SMS').click()
    await user.should_see('Шаблон SMS сообщения', retries=WAIT)
    reason = one(user, 'message-refusal').text
    assert reason.startswith('Сообщения запрещены: заёмщик отказался от взаимодействия')
    assert not one(user, 'message-send').enabled


async def test_the_law_refusing_on_sending_says_when_and_keeps_the_text(user: User, sessions) -> None:
    borrower = debtor(sessions, 'operator3')
    await open_card(user, 'operator3', borrower)
    user.find(kind=ui.button, content='Отправить SMS').click()
    await user.should_see('Шаблон SMS сообщения', retries=WAIT)
    typed = f'Просьба оплатить просрочку. {SIGN}'
    one(user, 'message-text').set_value(typed)
    for _ in range(2):  # meanwhile another system sends two: the day's limit is reached
        response = await user.http_client.post(
            f'/api/v1/borrowers/{borrower.pin}/messages',
            json={'channel': 'sms', 'text': typed},
            headers={'Authorization': f'Bearer {TEST_API_TOKEN}'},
        )
        assert response.status_code == 202, response.text
    user.find(marker='message-send').click()
    await user.should_see(marker='message-refusal', retries=WAIT)
    reason = one(user, 'message-refusal').text
    assert reason.startswith('Лимит 230-ФЗ: не более 2 сообщений в сутки')
    assert reason.endswith('Можно будет: 27.11.2026 08:00 МСК')
    assert not one(user, 'message-send').enabled and one(user, 'message-text').value == typed


async def test_a_refusal_on_sending_keeps_the_dialog_and_the_text(user: User, sessions) -> None:
    borrower = debtor(sessions, 'operator4')
    await open_card(user, 'operator4', borrower)
    user.find(kind=ui.button, content='Отправить SMS').click()
    await user.should_see('Шаблон SMS сообщения', retries=WAIT)
    typed = 'Просрочка по займу, оплатите.'  # names neither the creditor nor its phone
    one(user, 'message-text').set_value(typed)
    user.find(marker='message-send').click()
    await user.should_see(marker='message-refusal', retries=WAIT)
    assert 'должен видеть наименование кредитора' in one(user, 'message-refusal').text
    assert one(user, 'message-text').value == typed
    with sessions() as session:
        assert not session.scalars(
            select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id)
        ).all()


async def test_the_password_goes_by_sms_and_is_never_shown(user: User, sessions, monkeypatch) -> None:
    password = f'Pw{unique()}xQz'
    monkeypatch.setattr(account, 'new_password', lambda length=10: password)  # the embedded site's
    person = make_user(sessions, password='operator')  # no other test's call rings for a new operator
    borrower = debtor(sessions, person.login, contact_refused=True)  # a password is no collection contact
    await open_card(user, person.login, borrower)
    user.find(kind=ui.button, content='Отправить пароль ЛК').click()
    await user.should_see('получит только заёмщик', retries=WAIT)
    user.find(marker='password-send').click()
    await user.should_see('Пароль ЛК поставлен в очередь: SMS на +7', retries=WAIT)
    await until(lambda: sees(user, f'Новый пароль ЛК: {PASSWORD_MASK}'))
    assert not sees(user, password)
    with sessions() as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id))
    assert row.secret and row.purpose == 'password'


async def test_an_email_from_a_template_carries_its_subject(user: User, sessions) -> None:
    borrower = debtor(sessions, 'operator1')
    await open_card(user, 'operator1', borrower)
    user.find(kind=ui.button, content='Отправить E-mail').click()
    await user.should_see('Шаблон E-mail сообщения', retries=WAIT)
    select_ = one(user, 'message-template')
    demo = 'Просрочка · Уведомление о просроченной задолженности'  # other tests add templates of this kind
    overdue = [key for key, label in select_.options.items() if label == demo]
    select_.set_value(overdue[0])
    subject = one(user, 'message-subject')
    await until(lambda: subject.value.startswith('Просроченная задолженность по займу № T'))
    user.find(marker='message-send').click()
    await user.should_see('Письмо поставлено в очередь', retries=WAIT)
    await until(lambda: sees(user, 'Здравствуйте, Тест Тестович!'))
    with sessions() as session:
        (row,) = session.scalars(select(OutboxMessage).where(OutboxMessage.borrower_id == borrower.id))
    assert (row.channel, row.subject, row.status) == ('email', subject.value, 'queued')
